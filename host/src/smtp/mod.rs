//! SMTP: the protocol (sans-IO, [`proto`]) apart from the conversation that uses it ([`session`]).

pub mod proto;
pub mod session;
