//! Wall-clock time (capability `clock`).
//!
//! Calling it makes the component import `postern:mta/clock`, which must be
//! granted to the plugin. On native targets the time is [`crate::mock`]'s,
//! fixed until a test sets or advances it.

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::postern::mta::clock::now_ms();
    #[cfg(not(target_arch = "wasm32"))]
    return crate::mock::clock_host::now_ms();
}
