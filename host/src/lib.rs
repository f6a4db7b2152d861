//! postern — a mail transfer agent whose policy runs as WebAssembly components.
//!
//! The host implements what must be fast and durable: the SMTP server, the queue
//! and local Maildir delivery. Policy (restrictions, DNSBLs, header checks,
//! per-user filing) is the plugins' job and arrives with the plugin runtime.
//!
//! # Layout
//!
//! ```text
//! listener ─► smtp::session ─► queue::Spool::enqueue (fsync) ─► 250
//!                                       │
//!                                       ▼
//!                        queue::manager (one actor) ─► delivery::local ─► Maildir
//!                              ▲            │
//!                              └─ deferred ◄┘ (backoff)
//! ```
//!
//! - [`smtp::proto`]: sans-IO parsing of command lines, DATA and BDAT content, and
//!   the typed [`smtp::proto::Reply`] values with every reply text in one place.
//! - [`smtp::session`]: one SMTP conversation, an explicit state machine, one file
//!   per verb.
//! - [`listener`]: accepts connections and owns the shutdown of sessions.
//! - [`queue`]: the spool on disk (one file per message, per-recipient status),
//!   the queue manager that schedules deliveries, and `mailq`-style listing.
//! - [`delivery`]: local delivery (aliases, address extensions, Maildir).
//! - [`config`]: `postern.toml`, keyed by Postfix's main.cf parameter names.
//! - [`plugin`]: the WebAssembly runtime (the only module naming wasmtime).
//! - [`policy`]: the chains of plugin steps per stage, swapped whole on reload.
//! - [`control`]: the control socket behind `postern reload` and `plugin list`.
//! - [`import`]: `postern import-postfix`, main.cf → postern.toml.
//! - [`filter_test`]: `postern filter-test`, every chain run on one message.
//! - [`cli`]: the `postern` command line.

pub mod cli;
pub mod config;
pub mod control;
pub mod delivery;
pub mod filter_test;
pub mod import;
pub mod listener;
pub mod plugin;
pub mod policy;
pub mod poll;
pub mod queue;
pub mod smtp;
