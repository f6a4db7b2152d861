//! The plugin interface in host terms: what policy and delivery hand to a
//! hook and get back. No wasmtime type appears here (or anywhere outside
//! `plugin`); [`super::convert`] translates to and from the generated bindings.

use std::net::IpAddr;
use std::sync::Arc;

pub use crate::config::{Capability, OnError, Stage};
pub use crate::policy::headers::HeaderEdit;
use crate::smtp::proto::Reply;

/// The SMTP client, at every stage (at the deliver stage, as the queue file
/// recorded it: the address and the HELO name only).
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    /// Its address; `None` for mail submitted locally.
    pub ip: Option<IpAddr>,
    /// Its port.
    pub port: u16,
    /// The HELO/EHLO argument.
    pub helo: Option<String>,
    /// EHLO rather than HELO.
    pub esmtp: bool,
    /// TLS in use.
    pub tls: bool,
    /// SMTP AUTH user.
    pub auth_user: Option<String>,
    /// In `mynetworks`.
    pub in_mynetworks: bool,
    /// Talked out of turn (`reject_unauth_pipelining`).
    pub improper_pipelining: bool,
}

impl ClientInfo {
    /// The client as a queue file records it, which is all the deliver
    /// stage knows: its address and HELO name (empty: none).
    pub fn queued(ip: Option<IpAddr>, helo: &str) -> Self {
        ClientInfo {
            ip,
            helo: Some(helo.to_owned()).filter(|h| !h.is_empty()),
            ..ClientInfo::default()
        }
    }
}

/// The envelope so far.
#[derive(Debug, Clone, Default)]
pub struct EnvelopeInfo {
    /// MAIL FROM; empty for `<>`.
    pub sender: String,
    /// Recipients accepted so far.
    pub recipients: Vec<String>,
}

/// The recipient a deliver-stage call is about.
#[derive(Debug, Clone)]
pub struct DeliveryInfo {
    /// The envelope recipient.
    pub recipient: String,
    /// The local user.
    pub user: String,
    /// The address extension.
    pub extension: Option<String>,
    /// The message size.
    pub size: u64,
    /// The user's mail home and the owner its files must have, for the
    /// `home` capability (`None`: not readable, e.g. in `filter-test`).
    pub home: Option<HomeDir>,
}

/// A recipient's mail home, as the `home` capability may read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HomeDir {
    /// The directory.
    pub path: std::path::PathBuf,
    /// The uid a file must belong to (the user, when delivering as root);
    /// `None` when postern runs as the mail homes' owner itself.
    pub owner: Option<u32>,
}

/// A plugin's decision (see the WIT for each case's meaning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No opinion.
    Continue,
    /// Ends the stage's chain.
    Accept,
    /// 5xx.
    Reject(Reply),
    /// 4xx.
    Defer(Reply),
    /// Accept, then drop.
    Discard,
    /// Accept into the hold queue.
    Hold(String),
    /// Reply and hang up.
    Disconnect(Reply),
}

/// A change a plugin asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Edit {
    /// A header change.
    Header(HeaderEdit),
    /// New envelope sender.
    ChangeSender(String),
    /// An extra recipient.
    AddRecipient(String),
    /// A recipient dropped.
    RemoveRecipient(String),
    /// Deliver into this Maildir++ folder.
    SetFolder(String),
    /// Deliver to this address instead.
    Redirect(String),
}

/// A verdict and its edits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// The decision.
    pub verdict: Verdict,
    /// The changes.
    pub edits: Vec<Edit>,
}

impl Outcome {
    /// `continue` with no edits.
    pub fn cont() -> Self {
        Outcome {
            verdict: Verdict::Continue,
            edits: Vec::new(),
        }
    }
}

/// What one hook call receives.
#[derive(Debug, Clone)]
pub enum HookInput<'a> {
    /// A client connected.
    Connect {
        /// The client.
        client: &'a ClientInfo,
    },
    /// HELO/EHLO.
    Helo {
        /// The client.
        client: &'a ClientInfo,
        /// The argument.
        helo: &'a str,
    },
    /// MAIL FROM.
    Mail {
        /// The client.
        client: &'a ClientInfo,
        /// The sender.
        sender: &'a str,
    },
    /// RCPT TO.
    Rcpt {
        /// The client.
        client: &'a ClientInfo,
        /// The envelope so far.
        envelope: &'a EnvelopeInfo,
        /// The recipient.
        rcpt: &'a str,
    },
    /// End of data.
    Data {
        /// The client.
        client: &'a ClientInfo,
        /// The envelope.
        envelope: &'a EnvelopeInfo,
        /// The message (CR LF).
        message: Arc<Vec<u8>>,
    },
    /// Local delivery.
    Deliver {
        /// The client that sent the message, as queued.
        client: &'a ClientInfo,
        /// The recipient.
        delivery: &'a DeliveryInfo,
        /// The envelope.
        envelope: &'a EnvelopeInfo,
        /// The message (CR LF).
        message: Arc<Vec<u8>>,
    },
}

impl HookInput<'_> {
    /// The stage this call belongs to.
    pub fn stage(&self) -> Stage {
        match self {
            HookInput::Connect { .. } => Stage::Connect,
            HookInput::Helo { .. } => Stage::Helo,
            HookInput::Mail { .. } => Stage::Mail,
            HookInput::Rcpt { .. } => Stage::Rcpt,
            HookInput::Data { .. } => Stage::Data,
            HookInput::Deliver { .. } => Stage::Deliver,
        }
    }
}

/// Why a plugin could not give an outcome. Every case applies the plugin's
/// `on_error`; none ends the session or the process.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PluginError {
    /// The chain names a plugin that is not loaded.
    #[error("plugin is not loaded")]
    NotLoaded,
    /// The component does not export the stage's interface.
    #[error("plugin does not implement the {0} stage")]
    NoStage(&'static str),
    /// Instantiation failed (pool exhausted, start function trapped...).
    #[error("cannot instantiate: {0}")]
    Instantiate(String),
    /// `configure` returned an error.
    #[error("configure failed: {0}")]
    Configure(String),
    /// The CPU deadline passed.
    #[error("deadline of {0} ms exceeded")]
    Deadline(u64),
    /// The instance hit its memory cap.
    #[error("memory limit of {0} bytes exceeded")]
    Memory(u64),
    /// The guest trapped (panic, unreachable, host error).
    #[error("trapped: {0}")]
    Trap(String),
    /// The verdict broke the rules (e.g. a reject that is not 5xx).
    #[error("bad verdict: {0}")]
    BadVerdict(String),
}
