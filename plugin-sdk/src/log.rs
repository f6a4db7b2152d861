//! Lines in the server's log, tagged with the plugin's name (capability `log`).
//!
//! Calling any of these makes the component import `postern:mta/log`, which
//! must be granted to the plugin. The host escapes control characters and cuts
//! long lines. On native targets the lines are captured by [`crate::mock`]
//! (see `mock::logs()`) and echoed to stderr.

pub use crate::bindings::postern::mta::log::Level;

/// Writes one line at `level`.
pub fn write(level: Level, message: impl AsRef<str>) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::postern::mta::log::write(level, message.as_ref());
    #[cfg(not(target_arch = "wasm32"))]
    crate::mock::log_host::write(level, message.as_ref());
}

/// Writes a debug line (shown when the operator asks for them).
pub fn debug(message: impl AsRef<str>) {
    write(Level::Debug, message);
}

/// Writes an informational line.
pub fn info(message: impl AsRef<str>) {
    write(Level::Info, message);
}

/// Writes a warning: something the operator should look at.
pub fn warn(message: impl AsRef<str>) {
    write(Level::Warn, message);
}

/// Writes an error.
pub fn error(message: impl AsRef<str>) {
    write(Level::Error, message);
}
