//! Host capabilities: one file per WIT interface, each implementing only the
//! generated `Host` trait on [`super::state::HostState`]. The stores behind
//! them ([`kv::KvStore`], [`dns::Dns`]) are usable and tested without Wasm.

pub mod clock;
pub mod context;
pub mod dns;
pub mod home;
pub mod kv;
pub mod log;
pub mod message;
