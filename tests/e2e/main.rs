//! End-to-end tests: the real `postern` binary over loopback, real clients
//! (raw sockets, swaks, Python's smtplib), real Maildir files.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

mod components;
mod dns;
mod harness;

mod bundle;
mod cli;
mod crash;
mod delivery;
mod plugins;
mod protocol;
mod seed;
