//! [`Context`]: what a hook is told about its call.
//!
//! In: on Wasm, the host's borrowed `context` resource, valid for one hook
//! call; anywhere, values given directly ([`Context::new`], for tests).
//! Out: the chain step's arguments, the client and the envelope, each fetched
//! from the host the first time it is read in a call and kept for the rest of
//! it. Nothing crosses into a hook that reads none of them.

use core::cell::OnceCell;
use core::fmt;

use crate::bindings::postern::mta::context::Context as HostContext;
use crate::prelude::*;
use crate::{Client, Envelope};

/// The call a hook answers: the chain step's arguments, the SMTP client and
/// the envelope.
///
/// ```
/// # use postern_plugin_sdk::{Context, mock};
/// let cx = Context::new(mock::client("192.0.2.7"))
///     .with_envelope(mock::envelope("a@example.org", &["b@example.org"]))
///     .with_args(["reject_unknown_client"]);
/// assert_eq!(cx.client().ip, "192.0.2.7");
/// assert_eq!(cx.envelope().recipients, ["b@example.org"]);
/// assert_eq!(cx.args(), ["reject_unknown_client"]);
/// ```
pub struct Context<'a> {
    host: Option<&'a HostContext>,
    args: OnceCell<Vec<String>>,
    client: OnceCell<Client>,
    envelope: OnceCell<Envelope>,
}

impl<'a> Context<'a> {
    pub(crate) fn from_host(host: &'a HostContext) -> Context<'a> {
        Context {
            host: Some(host),
            args: OnceCell::new(),
            client: OnceCell::new(),
            envelope: OnceCell::new(),
        }
    }

    /// A context for `client` with no arguments and an empty envelope (as
    /// before MAIL FROM), for tests; add the rest with
    /// [`with_envelope`](Context::with_envelope) and
    /// [`with_args`](Context::with_args).
    pub fn new(client: Client) -> Context<'static> {
        Context {
            host: None,
            args: OnceCell::from(Vec::new()),
            client: OnceCell::from(client),
            envelope: OnceCell::from(no_envelope()),
        }
    }

    /// This context with `envelope`.
    #[must_use]
    pub fn with_envelope(mut self, envelope: Envelope) -> Self {
        self.envelope = OnceCell::from(envelope);
        self
    }

    /// This context with the step arguments `args`.
    #[must_use]
    pub fn with_args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.args = OnceCell::from(args.into_iter().map(Into::into).collect::<Vec<_>>());
        self
    }

    /// The chain step's arguments: the words after the plugin's name in
    /// `postern.toml`'s chain (e.g. `["permit_mynetworks",
    /// "reject_unknown_client"]`).
    pub fn args(&self) -> &[String] {
        self.args
            .get_or_init(|| self.host.map(HostContext::args).unwrap_or_default())
    }

    /// The SMTP client. At the deliver stage only `ip` and `helo` are known
    /// (as queued; `ip` is empty for mail submitted locally).
    pub fn client(&self) -> &Client {
        self.client
            .get_or_init(|| self.host.map_or_else(no_client, HostContext::client))
    }

    /// The envelope: the sender (empty for `<>`) and the recipients accepted
    /// so far. Empty before MAIL FROM; at the deliver stage, the whole
    /// envelope as queued.
    pub fn envelope(&self) -> &Envelope {
        self.envelope
            .get_or_init(|| self.host.map_or_else(no_envelope, HostContext::envelope))
    }
}

/// An empty envelope (before MAIL FROM).
fn no_envelope() -> Envelope {
    Envelope {
        sender: String::new(),
        recipients: Vec::new(),
    }
}

/// A client nothing is known about (never read: a context without a host
/// is built with its client).
fn no_client() -> Client {
    Client {
        ip: String::new(),
        port: 0,
        helo: None,
        esmtp: false,
        tls: false,
        auth_user: None,
        in_mynetworks: false,
        improper_pipelining: false,
    }
}

impl fmt::Debug for Context<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("args", &self.args.get())
            .field("client", &self.client.get())
            .field("envelope", &self.envelope.get())
            .finish_non_exhaustive()
    }
}
