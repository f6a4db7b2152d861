//! A small persistent key-value store, one namespace per plugin (capability
//! `kv`): what must outlive the SMTP transaction (greylisting triplets, rate
//! counters).
//!
//! Calling any of these makes the component import `postern:mta/kv`, which
//! must be granted to the plugin. On native targets the store is
//! [`crate::mock`]'s, in memory, with TTLs measured against the mock clock.

use crate::prelude::*;

#[cfg(target_arch = "wasm32")]
use crate::bindings::postern::mta::kv as host;
#[cfg(not(target_arch = "wasm32"))]
use crate::mock::kv_host as host;

/// The value under `key`, unless absent or expired.
pub fn get(key: &str) -> Option<Vec<u8>> {
    host::get(key)
}

/// Stores `value` under `key`, expiring after `ttl_secs` if given.
pub fn set(key: &str, value: impl AsRef<[u8]>, ttl_secs: Option<u64>) {
    host::set(key, value.as_ref(), ttl_secs);
}

/// Removes `key`.
pub fn delete(key: &str) {
    host::delete(key);
}
