//! Test fixture: `noop`'s twin that links std, as most Rust plugins do.
//!
//! std on wasm32-wasip2 brings WASI imports (stdio, environment, exit) and a
//! second and third core module with it; the plugin benchmark shows what that
//! costs a fresh instance next to the `no_std` noop.

use postern_plugin_sdk::{Config, Filter, register};

/// Nothing to remember.
#[derive(Debug)]
pub struct NoopStd;

impl Filter for NoopStd {
    fn configure(_config: Config) -> Result<Self, String> {
        Ok(NoopStd)
    }
}

register!(NoopStd);
