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
//! # Without std
//!
//! The SDK itself uses only `core` and `alloc` on wasm32. A plugin that does
//! the same leaves std's WASI imports (stdio, environment, exit) and its two
//! extra core modules out of the component, and a fresh instance costs about
//! two thirds as much:
//!
//! ```ignore
//! #![cfg_attr(target_arch = "wasm32", no_std)]
//!
//! use postern_plugin_sdk::prelude::*; // String, Vec, format!, …
//! use postern_plugin_sdk::{Config, Filter, no_std_runtime, register};
//!
//! struct Quiet;
//!
//! impl Filter for Quiet {
//!     fn configure(_config: Config) -> Result<Self, String> {
//!         Ok(Quiet)
//!     }
//! }
//!
//! register!(Quiet);
//! no_std_runtime!();
//! ```
//!
//! See [`no_std_runtime!`] for what it costs and how to build such a crate.
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
//! - [`no_std_runtime!`], [`prelude`] and the `cabi_realloc` behind them
//!   (`no_std`), for plugins without std.

#![deny(missing_docs)]
// Plugins need not link std (see `no_std_runtime!`); native builds (the
// crate's tests and the mock host) keep it.
#![cfg_attr(target_arch = "wasm32", no_std)]

// The generated code names this crate by its path, also from inside it.
extern crate self as postern_plugin_sdk;

extern crate alloc;

// `memcpy`, `memcmp` and the like come from the target's C library, as they
// do for std; without std nothing else would link it (only those functions
// are taken from it, and they import nothing).
#[cfg(target_arch = "wasm32")]
#[link(name = "c")]
#[allow(unsafe_code)]
unsafe extern "C" {}

/// The names std's prelude gives and a `#![no_std]` plugin lacks (all from
/// `alloc`): `use postern_plugin_sdk::prelude::*;`.
pub mod prelude {
    pub use alloc::borrow::ToOwned;
    pub use alloc::format;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec;
    pub use alloc::vec::Vec;
}

use prelude::*;

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
#[cfg(target_arch = "wasm32")]
mod no_std;
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

            #[cfg(target_arch = "wasm32")]
            static __POSTERN_FILTER: $crate::__private::FilterSlot<$filter> =
                $crate::__private::FilterSlot::new();

            #[cfg(not(target_arch = "wasm32"))]
            ::std::thread_local! {
                static __POSTERN_FILTER: $crate::__private::FilterSlot<$filter> =
                    const { $crate::__private::FilterSlot::new() };
            }

            impl $crate::__private::Plugin for __PosternPlugin {
                type Filter = $filter;

                fn with_slot<R>(
                    f: impl ::core::ops::FnOnce(&mut ::core::option::Option<$filter>) -> R,
                ) -> R {
                    #[cfg(target_arch = "wasm32")]
                    return __POSTERN_FILTER.with(f);
                    #[cfg(not(target_arch = "wasm32"))]
                    return __POSTERN_FILTER.with(|slot| slot.with(f));
                }
            }

            #[cfg(target_arch = "wasm32")]
            $crate::__private::bindings::__postern_export_plugin!(
                __PosternPlugin with_types_in $crate::__private::bindings
            );
        };
    };
}

/// What a `#![no_std]` plugin needs from std: a memory allocator (dlmalloc),
/// a panic handler and the canonical ABI's `cabi_realloc` export. Use it
/// once, beside [`register!`], in a crate that starts with
/// `#![cfg_attr(target_arch = "wasm32", no_std)]` (std stays for its native
/// unit tests) and takes `String`, `Vec` and `format!` from [`prelude`].
///
/// Such a component imports no WASI interface (std's stdio, environment and
/// exit), so it is a single core module instead of three (the no-op fixture:
/// 45 KB instead of 78), and a fresh instance costs about two thirds as much
/// (see the README's figures). The price: a
/// panic traps without its message (the host logs the trap), and nothing
/// that needs std (`std::collections::HashMap`, `regex`, …) can be used;
/// `alloc` (`String`, `Vec`, `BTreeMap`, `format!`) and this SDK can.
///
/// Build such a plugin on its own (`cargo build -p my-plugin`): in a build
/// that also compiles std plugins, cargo may turn on a shared dependency's
/// `std` feature, and std's panic handler then clashes with this one.
#[macro_export]
macro_rules! no_std_runtime {
    () => {
        #[cfg(target_arch = "wasm32")]
        #[global_allocator]
        static __POSTERN_ALLOCATOR: $crate::__private::dlmalloc::GlobalDlmalloc =
            $crate::__private::dlmalloc::GlobalDlmalloc;

        #[cfg(target_arch = "wasm32")]
        #[panic_handler]
        fn __postern_panic(_: &::core::panic::PanicInfo<'_>) -> ! {
            ::core::arch::wasm32::unreachable()
        }

        /// The canonical ABI's allocator export (std exports its own).
        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)]
        #[unsafe(no_mangle)]
        unsafe extern "C" fn cabi_realloc(
            old_ptr: *mut u8,
            old_len: usize,
            align: usize,
            new_len: usize,
        ) -> *mut u8 {
            // SAFETY: called by the host under the canonical ABI's contract.
            unsafe { $crate::__private::cabi_realloc(old_ptr, old_len, align, new_len) }
        }
    };
}

/// What `register!` expands to needs; not part of the API.
#[doc(hidden)]
pub mod __private {
    pub use crate::adapter::{FilterSlot, Plugin};
    pub use crate::bindings;
    #[cfg(target_arch = "wasm32")]
    pub use crate::no_std::cabi_realloc;
    #[cfg(target_arch = "wasm32")]
    pub use dlmalloc;
    pub use wit_bindgen;
}
