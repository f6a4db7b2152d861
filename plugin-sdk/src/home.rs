//! The current recipient's mail home, read only (capability `home`): where a
//! user keeps their own delivery rules, as procmail reads `~/.procmailrc`.
//!
//! Calling it makes the component import `postern:mta/home`, which must be
//! granted to the plugin. The host answers only during `on_deliver`; at the
//! SMTP stages every read finds nothing. On native targets the files are
//! [`crate::mock`]'s ([`crate::mock::home_file`]).

use crate::prelude::*;

#[cfg(target_arch = "wasm32")]
use crate::bindings::postern::mta::home as host;
#[cfg(not(target_arch = "wasm32"))]
use crate::mock::home_host as host;

/// The text of the file `name` directly in the recipient's mail home, or
/// `None` if there is none (or it is not a regular file owned by the user,
/// or larger than 256 KiB). `name` is a plain file name such as
/// `.procmailrc`.
pub fn read_file(name: &str) -> Option<String> {
    host::read_file(name)
}
