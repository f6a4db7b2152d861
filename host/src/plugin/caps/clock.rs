//! `postern:mta/clock`: wall-clock time.

use super::super::bindings::postern::mta::clock::Host;
use super::super::state::HostState;
use crate::config::Capability;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl Host for HostState {
    fn now_ms(&mut self) -> wasmtime::Result<u64> {
        self.require(Capability::Clock)?;
        Ok(now_ms())
    }
}
