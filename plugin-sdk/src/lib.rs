//! The postern plugin SDK: write mail policy in Rust, ship it as a WebAssembly
//! component.
//!
//! A plugin is a type that implements [`Filter`]: `configure` builds it from
//! the plugin's table in `postern.toml`, and each hook it overrides answers one
//! SMTP stage with an [`Outcome`]. [`register!`] turns it into a component.
//! Here is a complete DNS blocklist filter:
//!
//! ```
//! use postern_plugin_sdk::{Config, Context, Filter, Outcome, Verdict, dns, dnsbl_query, register};
//!
//! /// Rejects clients whose address is listed in a DNS blocklist.
//! struct Rbl {
//!     zone: String,
//! }
//!
//! impl Filter for Rbl {
//!     fn configure(config: Config) -> Result<Self, String> {
//!         Ok(Rbl { zone: config.str("zone")?.to_owned() })
//!     }
//!
//!     fn on_connect(&mut self, cx: &Context) -> Outcome {
//!         let ip = &cx.client().ip;
//!         let query = dnsbl_query(ip, &self.zone);
//!         if query.is_some_and(|name| dns::lookup_a(&name).is_ok()) {
//!             let text = format!("Client host [{ip}] blocked using {}", self.zone);
//!             return Verdict::reject(554, "5.7.1", text).into();
//!         }
//!         Outcome::cont()
//!     }
//! }
//!
//! register!(Rbl);
//! ```
//!
//! # Lifetime and state
//!
//! The host creates one instance of the component per SMTP transaction and
//! calls `configure` first, so `self` is the transaction's state: whatever
//! `on_connect` stores is still there in `on_rcpt` and `on_data` of the same
//! transaction, and never longer. `on_deliver` runs in that same instance
//! when a single-recipient message is delivered straight after acceptance,
//! and in a fresh one per recipient otherwise (several recipients, a retry,
//! after a restart): pass what it needs in the message (a header added in
//! `on_data`), not in `self`. Use [`kv`] for anything that must outlive a
//! transaction.
//!
//! # Capabilities
//!
//! [`dns`], [`log`], [`kv`], [`clock`] and [`home`] are host capabilities. A component
//! imports only those it calls, and the host refuses to load a plugin whose
//! imports are not granted to it in `postern.toml`. The SDK never calls one on
//! its own behalf.
//!
//! # Errors
//!
//! A hook cannot fail: it answers with an [`Outcome`]. A panic (including a
//! [`Verdict`] constructor given a reply code of the wrong class) traps the
//! instance; the host logs it and applies the plugin's `on_error` policy.
//!
//! # Testing
//!
//! On native targets the capabilities talk to [`mock`], an in-memory host
//! with canned DNS answers, a key-value store, a settable clock and captured
//! log lines, so a plugin's logic is tested with plain `cargo test`:
//!
//! ```
//! # use postern_plugin_sdk::{Config, Context, Filter, Outcome, Verdict, dns, dnsbl_query};
//! # struct Rbl { zone: String }
//! # impl Filter for Rbl {
//! #     fn configure(config: Config) -> Result<Self, String> {
//! #         Ok(Rbl { zone: config.str("zone")?.to_owned() })
//! #     }
//! #     fn on_connect(&mut self, cx: &Context) -> Outcome {
//! #         if dnsbl_query(&cx.client().ip, &self.zone).is_some_and(|n| dns::lookup_a(&n).is_ok()) {
//! #             return Verdict::reject(554, "5.7.1", "blocked").into();
//! #         }
//! #         Outcome::cont()
//! #     }
//! # }
//! use postern_plugin_sdk::mock;
//!
//! mock::dns_answer("7.2.0.192.zen.test", Ok(vec!["127.0.0.2"]));
//! let mut rbl: Rbl = mock::configure(r#"{"zone": "zen.test"}"#).unwrap();
//!
//! let listed = rbl.on_connect(&Context::new(mock::client("192.0.2.7")));
//! assert_eq!(listed.verdict, Verdict::reject(554, "5.7.1", "blocked"));
//! assert!(rbl.on_connect(&Context::new(mock::client("192.0.2.8"))).is_continue());
//! ```
//!
//! # Building
//!
//! A plugin is a `cdylib` crate (add `rlib` to unit-test it from other crates)
//! that depends on this one:
//!
//! ```text
//! cargo build --target wasm32-wasip2 --profile plugin -p my-plugin
//! # -> target/wasm32-wasip2/plugin/my_plugin.wasm, a component
//! ```
//!
//! # Layout
//!
//! - [`Filter`] and [`register!`] (here), and the glue between them and the
//!   WIT exports (`adapter`).
//! - [`Verdict`], [`Outcome`] and their constructors (`verdict`).
//! - [`Config`]: the plugin's settings (`config`).
//! - [`Context`]: a hook's arguments, client and envelope, read on demand
//!   (`context`).
//! - [`Message`]: the message at the data and deliver stages (`message`).
//! - Capabilities: [`dns`], [`log`], [`kv`], [`clock`], [`home`]; [`mock`] stands in
//!   for the host on native targets.
//! - Address helpers: [`reverse_ip`], [`dnsbl_query`], [`split_address`],
//!   [`domain_of`], [`is_dns_name`] (`address`).
//! - The generated bindings (`bindings`, the one `generate!` site).

#![deny(missing_docs)]

// The generated code names this crate by its path, also from inside it.
extern crate self as postern_plugin_sdk;

mod adapter;
mod address;
// Generated code: wit-bindgen writes `unsafe` ABI glue and its own docs.
#[allow(missing_docs, unsafe_code, clippy::all, clippy::pedantic)]
#[doc(hidden)]
pub mod bindings;
pub mod clock;
mod config;
mod context;
pub mod dns;
pub mod home;
pub mod kv;
pub mod log;
mod message;
#[cfg(not(target_arch = "wasm32"))]
pub mod mock;
mod verdict;

pub use address::{dnsbl_query, domain_of, is_dns_name, reverse_ip, split_address};
pub use bindings::postern::mta::types::{
    Client, Delivery, Edit, Envelope, Header, MimePart, Outcome, Reply, Verdict,
};
pub use config::Config;
pub use context::Context;
pub use message::Message;
#[doc(no_inline)]
pub use serde;
#[doc(no_inline)]
pub use serde_json;
pub use verdict::MAX_REPLY_TEXT_BYTES;

/// A mail filter: build it from its configuration, then answer the hooks.
///
/// Every hook has a default that returns [`Outcome::cont`] ("no opinion"), so
/// a filter overrides only the stages it cares about. The host calls a hook
/// only for the stages where the plugin is listed in a chain; the [`Context`]
/// gives the arguments it is listed with there, the client and the envelope,
/// each fetched from the host only if the hook reads it.
pub trait Filter: Sized + 'static {
    /// Builds the filter from the plugin's table in `postern.toml`.
    ///
    /// Called once when the plugin set is loaded (an error is reported to the
    /// operator and keeps the previous set serving). Every instance (one per
    /// SMTP transaction) starts from the state it left: the host freezes the
    /// configured instance. Read tables and compile patterns here; what it
    /// reads from the host (clock, kv, dns) is read once per load.
    fn configure(config: Config) -> Result<Self, String>;

    /// A client connected (Postfix's `smtpd_client_restrictions`).
    ///
    /// Default: continue.
    fn on_connect(&mut self, _cx: &Context) -> Outcome {
        Outcome::cont()
    }

    /// The client said HELO or EHLO with `helo` (`smtpd_helo_restrictions`).
    ///
    /// Default: continue.
    fn on_helo(&mut self, _cx: &Context, _helo: &str) -> Outcome {
        Outcome::cont()
    }

    /// MAIL FROM; `sender` is empty for the null sender `<>`
    /// (`smtpd_sender_restrictions`).
    ///
    /// Default: continue.
    fn on_mail(&mut self, _cx: &Context, _sender: &str) -> Outcome {
        Outcome::cont()
    }

    /// RCPT TO `rcpt`; the context's envelope holds the sender and the
    /// recipients accepted so far (`smtpd_recipient_restrictions`).
    ///
    /// Default: continue.
    fn on_rcpt(&mut self, _cx: &Context, _rcpt: &str) -> Outcome {
        Outcome::cont()
    }

    /// The whole message has been received, before the reply to DATA
    /// (header and body checks, milters' place).
    ///
    /// Default: continue.
    fn on_data(&mut self, _cx: &Context, _message: &Message<'_>) -> Outcome {
        Outcome::cont()
    }

    /// Local delivery of the message to one recipient, after queueing
    /// (procmail's place): file into a folder, discard, redirect, add headers.
    ///
    /// Default: continue, which files into the inbox.
    fn on_deliver(
        &mut self,
        _cx: &Context,
        _delivery: &Delivery,
        _message: &Message<'_>,
    ) -> Outcome {
        Outcome::cont()
    }
}

/// Makes a [`Filter`] the component's implementation of every stage.
///
/// Use it once per plugin crate, at the top level: `register!(MyFilter);`.
/// The filter built by `configure` lives in instance-global state (one
/// instance is one thread); a hook called before a successful `configure`
/// continues. On native targets nothing is exported, so the crate's unit tests
/// link as usual.
#[macro_export]
macro_rules! register {
    ($filter:ty) => {
        // `unsafe_code`: wit-bindgen's export glue is `unsafe extern "C"`
        // functions with `#[unsafe(export_name)]`.
        #[allow(unsafe_code)]
        const _: () = {
            struct __PosternPlugin;

            ::std::thread_local! {
                static __POSTERN_FILTER: ::core::cell::RefCell<::core::option::Option<$filter>> =
                    const { ::core::cell::RefCell::new(::core::option::Option::None) };
            }

            impl $crate::__private::Plugin for __PosternPlugin {
                type Filter = $filter;

                fn instance() -> &'static ::std::thread::LocalKey<
                    ::core::cell::RefCell<::core::option::Option<$filter>>,
                > {
                    &__POSTERN_FILTER
                }
            }

            #[cfg(target_arch = "wasm32")]
            $crate::__private::bindings::__postern_export_plugin!(
                __PosternPlugin with_types_in $crate::__private::bindings
            );
        };
    };
}

/// What `register!` expands to needs; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::adapter::Plugin;
    pub use crate::bindings;
    pub use wit_bindgen;
}
