//! DNS lookups through the host's resolver (capability `dns`).
//!
//! Calling any of these makes the component import `postern:mta/dns`, which
//! must be granted to the plugin in `postern.toml`. The host caches answers
//! and enforces timeouts; a lookup that fails for a reason other than
//! "no such name" is [`DnsError::Temporary`], which a filter should usually
//! treat as "no answer" (fail open) and log.
//!
//! On native targets the answers come from [`crate::mock`].

use crate::prelude::*;

pub use crate::bindings::postern::mta::dns::DnsError;

#[cfg(target_arch = "wasm32")]
use crate::bindings::postern::mta::dns as host;
#[cfg(not(target_arch = "wasm32"))]
use crate::mock::dns_host as host;

/// A records of `name`, as dotted quads.
pub fn lookup_a(name: &str) -> Result<Vec<String>, DnsError> {
    host::lookup_a(name)
}

/// AAAA records of `name`.
pub fn lookup_aaaa(name: &str) -> Result<Vec<String>, DnsError> {
    host::lookup_aaaa(name)
}

/// TXT records of `name`, each one's strings joined.
pub fn lookup_txt(name: &str) -> Result<Vec<String>, DnsError> {
    host::lookup_txt(name)
}

/// MX records of `name`: preference and exchange.
pub fn lookup_mx(name: &str) -> Result<Vec<(u16, String)>, DnsError> {
    host::lookup_mx(name)
}

/// PTR records (host names) of the IP address `ip`.
pub fn lookup_ptr(ip: &str) -> Result<Vec<String>, DnsError> {
    host::lookup_ptr(ip)
}
