//! `postern:mta/log`: a plugin's lines in the server log, tagged with its name.

use super::super::bindings::postern::mta::log::{Host, Level};
use super::super::state::HostState;
use crate::config::Capability;

/// Longest line a plugin may log; the rest is cut.
pub const MAX_LOG_LINE_BYTES: usize = 2048;

/// Escapes control characters (no forged log lines) and caps the length.
pub fn sanitize(message: &str) -> String {
    let mut out = String::with_capacity(message.len().min(MAX_LOG_LINE_BYTES));
    for c in message.chars() {
        if out.len() >= MAX_LOG_LINE_BYTES {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

impl Host for HostState {
    fn write(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        self.require(Capability::Log)?;
        let plugin = &*self.guest().plugin;
        let message = sanitize(&message);
        match level {
            Level::Debug => tracing::debug!(plugin, "{message}"),
            Level::Info => tracing::info!(plugin, "{message}"),
            Level::Warn => tracing::warn!(plugin, "{message}"),
            Level::Error => tracing::error!(plugin, "{message}"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn lines_cannot_be_forged() {
        assert_eq!(super::sanitize("a\nb\r\x1b[31m"), "a\\nb\\r\\u{1b}[31m");
        assert!(super::sanitize(&"x".repeat(5000)).len() <= super::MAX_LOG_LINE_BYTES + 4);
    }
}
