//! Test fixture: a postern plugin without std whose `rcpt` hook spins
//! forever; its other hooks continue.
//!
//! It imports no host function that can wait (no WASI, no capability), so
//! the host calls it without a fiber. Its first spin therefore holds a
//! worker thread until the deadline, and the host must then move the
//! plugin's calls to fibers, which yield at every epoch tick.

#![cfg_attr(target_arch = "wasm32", no_std)]

use core::hint::black_box;

use postern_plugin_sdk::prelude::*;
use postern_plugin_sdk::{Config, Context, Filter, Outcome, no_std_runtime, register};

/// Nothing to remember.
#[derive(Debug)]
pub struct Spin;

impl Filter for Spin {
    fn configure(_config: Config) -> Result<Self, String> {
        Ok(Spin)
    }

    fn on_rcpt(&mut self, _cx: &Context, _rcpt: &str) -> Outcome {
        spin()
    }
}

register!(Spin);
no_std_runtime!();

/// Spins forever. `black_box` makes every turn observable, so the optimizer
/// can neither delete the loop nor prove it does nothing.
fn spin() -> ! {
    let mut turns: u64 = 0;
    loop {
        turns = black_box(turns.wrapping_add(1));
    }
}
