//! One SMTP conversation (RFC 5321), from greeting to QUIT.
//!
//! An explicit [`State`] says what the next input bytes are: command lines,
//! DATA content, or the rest of a BDAT chunk. All buffered input is processed
//! before the session reads again, and replies are flushed only when it must
//! wait for input, so a pipelined group (RFC 2920) gets its replies in one
//! write. One file per verb: [`helo`], [`mail`], [`rcpt`], [`data`] (DATA and
//! BDAT), [`misc`] (RSET, NOOP, VRFY, HELP, QUIT).
//!
//! Limits: a command line is at most [`crate::smtp::proto::MAX_LINE_BYTES`]; unread input is at
//! most [`MAX_BUFFERED_BYTES`]; message content at most `message_size_limit`
//! (the rest is read and dropped, then refused with 552 5.3.4). Every wait for
//! the client is bounded by `smtpd_timeout`; `smtpd_hard_error_limit` errors
//! end the session with 421.
//!
//! The session never touches queue files itself: a finished message goes to
//! [`Spool::enqueue`], and the 250 is sent only once that has returned.

mod data;
mod helo;
mod mail;
mod misc;
mod policy;
mod rcpt;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use crate::config::{BareNewline, Config};
use crate::delivery::Resolver;
use crate::plugin::types::Edit;
use crate::policy::{Policy, PolicyTxn};
use crate::queue::Spool;

use super::proto::{
    BdatNormalizer, Command, DataReceiver, Line, MailFrom, RcptTo, Reply, command, next_line,
};

/// Most unprocessed input held at once. Reads stop until it is consumed.
pub const MAX_BUFFERED_BYTES: usize = 64 * 1024;

/// Message content is held in memory until queued, so even
/// `message_size_limit = 0` ("no limit" in Postfix) stops here.
pub const HARD_MESSAGE_LIMIT: usize = 1 << 30;

/// What a session needs from the server, shared by all sessions.
#[derive(Debug, Clone)]
pub struct SessionContext {
    /// The configuration.
    pub config: Arc<Config>,
    /// Local address resolution (for RCPT and VRFY).
    pub resolver: Arc<Resolver>,
    /// Where finished messages go.
    pub spool: Arc<Spool>,
    /// The plugin chains.
    pub policy: Arc<Policy>,
}

/// What the next input bytes are.
#[derive(Debug)]
enum State {
    /// Command lines.
    Command,
    /// DATA content, until `<CRLF>.<CRLF>`.
    Data(DataReceiver),
    /// The rest of a BDAT chunk.
    Bdat {
        /// Octets of the chunk still to read.
        remaining: u64,
        /// Whether this chunk is the last.
        last: bool,
        /// Read and drop the chunk (the command was refused).
        discard: bool,
    },
    /// The session is over; flush and close.
    Closed,
}

/// What the client said in HELO/EHLO.
#[derive(Debug, Clone)]
struct Greeting {
    name: String,
    esmtp: bool,
}

/// One mail transaction, from MAIL to the end of data.
#[derive(Debug)]
struct Transaction {
    mail: MailFrom,
    rcpts: Vec<RcptTo>,
    body: Vec<u8>,
    /// More content arrived than `message_size_limit` allows.
    too_big: bool,
    /// Set once BDAT is used; DATA is then refused (RFC 3030 §2).
    bdat: Option<BdatNormalizer>,
    /// A plugin said `discard`: accept, then drop.
    discard: bool,
    /// A plugin said `hold`: queue into `hold/`.
    hold: Option<String>,
    /// Header edits from the stages before DATA, applied when queueing.
    edits: Vec<Edit>,
    /// The connect/helo/mail chains' verdict (`smtpd_delay_reject`), run
    /// at the first RCPT or just before it; every RCPT gets the same refusal.
    pre_rcpt: Option<policy::Gate>,
}

impl Transaction {
    fn new(mail: MailFrom) -> Self {
        Transaction {
            mail,
            rcpts: Vec::new(),
            body: Vec::new(),
            too_big: false,
            bdat: None,
            discard: false,
            hold: None,
            edits: Vec::new(),
            pre_rcpt: None,
        }
    }
}

/// An SMTP session over any byte stream (a TCP socket, or an in-memory pipe in tests).
pub struct Session<S> {
    io: S,
    ctx: SessionContext,
    peer: SocketAddr,
    state: State,
    rbuf: Vec<u8>,
    wbuf: Vec<u8>,
    greeting: Option<Greeting>,
    txn: Option<Transaction>,
    errors: u32,
    /// Discarding the rest of an over-long command line.
    skipping_line: bool,
    /// The client sent before it was its turn (before the greeting, after a
    /// command that ends a pipelined group, or without PIPELINING offered).
    /// Kept for `reject_unauth_pipelining`.
    improper_pipelining: bool,
    /// Plugin instances of the current transaction (created on first use).
    ptxn: Option<PolicyTxn>,
    /// The first transaction's instances: a spare made ahead, or being
    /// created while the client speaks its first commands
    /// ([`Session::warm_up`]).
    warming: Option<policy::Warming>,
    /// With `smtpd_delay_reject = no`: the connect or helo chain's refusal,
    /// the answer to every later command but QUIT, RSET, NOOP and HELP.
    session_reject: Option<Reply>,
    /// With `smtpd_delay_reject = no`: what the connect and helo chains asked
    /// of every transaction (discard, hold, edits).
    session_marks: SessionMarks,
}

/// Verdicts and edits from the connect and helo chains that apply to every
/// transaction of the session.
#[derive(Debug, Default, Clone)]
struct SessionMarks {
    discard: bool,
    hold: Option<String>,
    edits: Vec<Edit>,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// A session with the client at `peer`.
    pub fn new(io: S, ctx: SessionContext, peer: SocketAddr) -> Self {
        Session {
            io,
            ctx,
            peer,
            state: State::Command,
            rbuf: Vec::with_capacity(4096),
            wbuf: Vec::with_capacity(1024),
            greeting: None,
            txn: None,
            errors: 0,
            skipping_line: false,
            improper_pipelining: false,
            ptxn: None,
            warming: None,
            session_reject: None,
            session_marks: SessionMarks::default(),
        }
    }

    /// Whether the client talked out of turn (see `reject_unauth_pipelining`).
    pub fn improper_pipelining(&self) -> bool {
        self.improper_pipelining
    }

    fn cfg(&self) -> &Config {
        &self.ctx.config
    }

    /// Queues a reply, counting errors toward `smtpd_hard_error_limit`.
    fn reply(&mut self, reply: Reply) {
        if reply.is_error() {
            self.errors += 1;
        }
        reply.write_to(&mut self.wbuf);
        if self.errors >= self.cfg().smtpd_hard_error_limit && !matches!(self.state, State::Closed)
        {
            Reply::too_many_errors(&self.cfg().myhostname).write_to(&mut self.wbuf);
            tracing::info!(peer = %self.peer, "too many errors; disconnecting");
            self.state = State::Closed;
        }
    }

    /// Ends the session after `reply`.
    fn close_with(&mut self, reply: Reply) {
        reply.write_to(&mut self.wbuf);
        self.state = State::Closed;
    }

    /// Writes queued replies; a client that stops reading is cut off after
    /// `smtpd_timeout`, like one that stops writing.
    async fn flush(&mut self) -> std::io::Result<()> {
        if self.wbuf.is_empty() {
            return Ok(());
        }
        let timeout = self.cfg().smtpd_timeout;
        let (io, buf) = (&mut self.io, &self.wbuf);
        let write = async {
            io.write_all(buf).await?;
            io.flush().await
        };
        match tokio::time::timeout(timeout, write).await {
            Ok(result) => result?,
            Err(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "write timeout",
                ));
            }
        }
        self.wbuf.clear();
        Ok(())
    }

    /// Runs the conversation until QUIT, an error limit, a timeout, the client
    /// leaving, or `shutdown`.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let peer = self.peer;
        match self.converse(&mut shutdown).await {
            Ok(()) => tracing::debug!(%peer, "disconnect"),
            Err(e) => tracing::debug!(%peer, "connection lost: {e}"),
        }
        // The session's plugin transactions end with it (their instances go
        // to the housekeeper).
        let _ = self.io.shutdown().await;
    }

    async fn converse(&mut self, shutdown: &mut watch::Receiver<bool>) -> std::io::Result<()> {
        tracing::debug!(peer = %self.peer, "connect");
        // A client that talks before the greeting is pipelining without leave.
        let mut early = [0u8; 1024];
        let read = std::pin::pin!(self.io.read(&mut early));
        if let std::task::Poll::Ready(Ok(n)) = crate::poll::once(read).await {
            if n == 0 {
                return Ok(());
            }
            self.improper_pipelining = true;
            self.rbuf.extend_from_slice(&early[..n]);
        }
        if let Some(refusal) = self.connect_gate().await {
            self.close_with(refusal);
            return self.flush().await;
        }
        let banner = Reply::greeting(&self.cfg().smtpd_banner);
        self.reply(banner);
        // The greeting goes out first: the plugin instances are got ready
        // while the client answers it.
        self.flush().await?;
        self.warm_up();
        let timeout = self.cfg().smtpd_timeout;
        let mut stopping = *shutdown.borrow();
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            self.process().await;
            if matches!(self.state, State::Closed) {
                return self.flush().await;
            }
            if stopping && matches!(self.state, State::Command) && self.rbuf.is_empty() {
                let r = Reply::shutting_down(&self.cfg().myhostname);
                self.close_with(r);
                return self.flush().await;
            }
            self.flush().await?;
            self.ahead_of_rcpt().await;
            let room = MAX_BUFFERED_BYTES
                .saturating_sub(self.rbuf.len())
                .min(chunk.len());
            let read = tokio::select! {
                r = tokio::time::timeout(timeout, self.io.read(&mut chunk[..room])) => r,
                _ = shutdown.changed(), if !stopping => {
                    stopping = true;
                    continue;
                }
            };
            match read {
                Err(_) => {
                    tracing::info!(peer = %self.peer, "timeout after {}", self.state_name());
                    let r = Reply::timeout(&self.cfg().myhostname);
                    self.close_with(r);
                    return self.flush().await;
                }
                Ok(Err(e)) => return Err(e),
                Ok(Ok(0)) => {
                    tracing::info!(peer = %self.peer, "lost connection after {}", self.state_name());
                    return Ok(());
                }
                Ok(Ok(n)) => self.rbuf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn state_name(&self) -> &'static str {
        match self.state {
            State::Command => "command",
            State::Data(_) => "DATA",
            State::Bdat { .. } => "BDAT",
            State::Closed => "QUIT",
        }
    }

    /// Consumes as much buffered input as the state allows.
    async fn process(&mut self) {
        loop {
            match &mut self.state {
                State::Closed => return,
                State::Command => {
                    if !self.next_command().await {
                        return;
                    }
                }
                State::Data(_) => {
                    if !self.data_content().await {
                        return;
                    }
                }
                State::Bdat { .. } => {
                    if !self.bdat_content().await {
                        return;
                    }
                }
            }
        }
    }

    /// Handles one command line if a whole one is buffered; false if none is.
    async fn next_command(&mut self) -> bool {
        if self.skipping_line {
            match self.rbuf.iter().position(|&b| b == b'\n') {
                Some(lf) => {
                    self.rbuf.drain(..=lf);
                    self.skipping_line = false;
                }
                None => {
                    self.rbuf.clear();
                    return false;
                }
            }
        }
        let (len, consumed, bare_lf) = match next_line(&self.rbuf) {
            Line::Incomplete => return false,
            Line::TooLong { consumed, ended } => {
                self.rbuf.drain(..consumed);
                self.skipping_line = !ended;
                self.reply(Reply::line_too_long());
                return true;
            }
            Line::Complete {
                len,
                consumed,
                bare_lf,
            } => (len, consumed, bare_lf),
        };
        if bare_lf && self.cfg().smtpd_forbid_bare_newline == BareNewline::Reject {
            let r = Reply::bare_newline(&self.cfg().myhostname);
            self.close_with(r);
            return false;
        }
        let parsed = command::parse(&self.rbuf[..len]);
        self.rbuf.drain(..consumed);
        let cmd = match parsed {
            Ok(cmd) => cmd,
            Err(reply) => {
                self.reply(reply);
                return true;
            }
        };
        // RFC 2920 §3.1: more input behind a command that ends a group, or any
        // pipelining when PIPELINING was not offered, is out of turn.
        let offered = self.greeting.as_ref().is_some_and(|g| g.esmtp);
        if !self.rbuf.is_empty() && (!offered || !cmd.may_be_pipelined()) {
            self.improper_pipelining = true;
        }
        self.dispatch(cmd).await;
        true
    }

    async fn dispatch(&mut self, cmd: Command) {
        if let Some(r) = self.session_reject.clone()
            && !matches!(
                cmd,
                Command::Quit | Command::Rset | Command::Noop | Command::Help
            )
        {
            // smtpd_delay_reject = no: a refused client gets the refusal until it leaves.
            if let Command::Bdat { size, last } = cmd {
                self.state = State::Bdat {
                    remaining: size,
                    last,
                    discard: true,
                };
            }
            self.reply(r);
            return;
        }
        match cmd {
            Command::Helo(name) => self.handle_helo(name, false).await,
            Command::Ehlo(name) => self.handle_helo(name, true).await,
            Command::Mail(m) => self.handle_mail(m).await,
            Command::Rcpt(r) => self.handle_rcpt(r).await,
            Command::Data => self.handle_data(),
            Command::Bdat { size, last } => self.handle_bdat(size, last),
            Command::Rset => self.handle_rset(),
            Command::Noop => self.reply(Reply::ok()),
            Command::Quit => self.close_with(Reply::bye()),
            Command::Vrfy(addr) => self.handle_vrfy(&addr),
            Command::Help => self.reply(Reply::help()),
        }
    }

    /// The effective storage cap for message content: `message_size_limit`,
    /// and never more than [`HARD_MESSAGE_LIMIT`] (also when the limit is 0).
    fn content_limit(&self) -> usize {
        match usize::try_from(self.cfg().message_size_limit) {
            Ok(0) | Err(_) => HARD_MESSAGE_LIMIT,
            Ok(n) => n.min(HARD_MESSAGE_LIMIT),
        }
    }
}
