//! Test fixture: a postern plugin that implements no hook.
//!
//! Every hook is the SDK's default (continue), and it calls no capability, so
//! the component imports none. The host's tests use it to measure what a hook
//! call costs by itself (instantiation, `configure`, the call, the lifting of
//! the outcome).
//!
//! It does not link std, as a plugin that needs nothing from it should not:
//! the component is one core module importing no WASI.

#![cfg_attr(target_arch = "wasm32", no_std)]

use postern_plugin_sdk::prelude::*;
use postern_plugin_sdk::{Config, Filter, no_std_runtime, register};

/// Nothing to remember.
#[derive(Debug)]
pub struct Noop;

impl Filter for Noop {
    fn configure(_config: Config) -> Result<Self, String> {
        Ok(Noop)
    }
}

register!(Noop);
no_std_runtime!();

#[cfg(test)]
mod tests {
    use postern_plugin_sdk::{Message, mock};

    use super::*;

    #[test]
    fn every_hook_continues() {
        let mut noop: Noop = mock::configure(r#"{"anything": 1}"#).unwrap();
        let client = mock::client("192.0.2.7");
        let envelope = mock::envelope("a@example.org", &["b@example.org"]);
        let message = Message::from_bytes("Subject: x\r\n\r\nbody\r\n");
        let outcomes = [
            noop.on_connect(&mock::context(&client, None, &[])),
            noop.on_helo(&mock::context(&client, None, &[]), "client.example.org"),
            noop.on_mail(&mock::context(&client, None, &[]), "a@example.org"),
            noop.on_rcpt(
                &mock::context(&client, Some(&envelope), &[]),
                "b@example.org",
            ),
            noop.on_data(&mock::context(&client, Some(&envelope), &[]), &message),
            noop.on_deliver(
                &mock::deliver_context(&envelope, &[]),
                &mock::delivery("b@example.org"),
                &message,
            ),
        ];
        assert!(
            outcomes
                .iter()
                .all(|o| o.is_continue() && o.edits.is_empty())
        );
        assert!(mock::dns_queries().is_empty() && mock::logs().is_empty());
    }
}
