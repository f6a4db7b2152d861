//! DATA (RFC 5321 §4.1.1.4) and BDAT (RFC 3030): reading content, then
//! queueing the message with its `Received:` header (RFC 5321 §4.4).

use std::time::{SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Session, State};
use crate::config::BareNewline;
use crate::plugin::types::Edit;
use crate::policy::headers::{self, HeaderEdit};
use crate::queue::{Envelope, EnvelopeRcpt, QueueId};
use crate::smtp::proto::{BdatNormalizer, DataReceiver, DataStatus, Reply};

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    fn reject_bare_lf(&self) -> bool {
        self.cfg().smtpd_forbid_bare_newline == BareNewline::Reject
    }

    /// Why a transaction cannot take content now, if it cannot.
    fn content_refusal(&self) -> Option<Reply> {
        match &self.txn {
            None => Some(Reply::need_mail()),
            Some(t) if t.rcpts.is_empty() => Some(Reply::need_rcpt()),
            Some(_) => None,
        }
    }

    pub(super) fn handle_data(&mut self) {
        if let Some(r) = self.content_refusal() {
            self.reply(r);
            return;
        }
        if self.txn.as_ref().is_some_and(|t| t.bdat.is_some()) {
            self.reply(Reply::data_after_bdat());
            return;
        }
        self.state = State::Data(DataReceiver::new(
            self.content_limit(),
            self.reject_bare_lf(),
        ));
        self.reply(Reply::start_data());
    }

    pub(super) fn handle_bdat(&mut self, size: u64, last: bool) {
        // The chunk follows the command whatever we answer: it is always read.
        let refusal = self.content_refusal();
        let discard = refusal.is_some();
        let limit = self.content_limit() as u64;
        let reject = self.reject_bare_lf();
        if let Some(r) = refusal {
            self.reply(r);
        } else if let Some(txn) = self.txn.as_mut() {
            txn.bdat.get_or_insert_with(|| BdatNormalizer::new(reject));
            if txn.body.len() as u64 + size > limit {
                txn.too_big = true;
            }
        }
        if !matches!(self.state, State::Closed) {
            self.state = State::Bdat {
                remaining: size,
                last,
                discard,
            };
        }
    }

    /// Feeds buffered input to the DATA receiver; false when it needs more.
    pub(super) async fn data_content(&mut self) -> bool {
        let State::Data(rx) = &mut self.state else {
            return false;
        };
        let Some(txn) = self.txn.as_mut() else {
            self.state = State::Command;
            return true;
        };
        match rx.feed(&self.rbuf, &mut txn.body) {
            DataStatus::NeedMore => {
                self.rbuf.clear();
                false
            }
            DataStatus::Done { consumed } => {
                txn.too_big |= rx.overflowed();
                self.rbuf.drain(..consumed);
                self.state = State::Command;
                self.finish_message().await;
                true
            }
            DataStatus::BareLf => {
                let r = Reply::bare_newline(&self.cfg().myhostname);
                self.close_with(r);
                false
            }
        }
    }

    /// Reads buffered chunk bytes; false when it needs more.
    pub(super) async fn bdat_content(&mut self) -> bool {
        let limit = self.content_limit();
        let State::Bdat {
            remaining,
            last,
            discard,
        } = &mut self.state
        else {
            return false;
        };
        let n = usize::try_from(*remaining)
            .unwrap_or(usize::MAX)
            .min(self.rbuf.len());
        if !*discard && let Some(txn) = self.txn.as_mut() {
            let chunk = &self.rbuf[..n];
            let ok = match txn.bdat.as_mut() {
                Some(norm) if !txn.too_big => norm.push(chunk, &mut txn.body, limit),
                _ => true,
            };
            if !ok {
                let r = Reply::bare_newline(&self.cfg().myhostname);
                self.close_with(r);
                return false;
            }
        }
        self.rbuf.drain(..n);
        *remaining -= n as u64;
        if *remaining > 0 {
            return false;
        }
        let (last, discard) = (*last, *discard);
        self.state = State::Command;
        if discard {
            return true;
        }
        if last {
            self.finish_message().await;
        } else if self.txn.as_ref().is_some_and(|t| t.too_big) {
            // RFC 3030 §2: a failed chunk; the client should RSET.
            self.reply(Reply::size_exceeded());
        } else {
            let size = self.txn.as_ref().map_or(0, |t| t.body.len() as u64);
            self.reply(Reply::chunk_ok(size));
        }
        true
    }

    /// End of content: refuse an oversized message, run the data chain, then
    /// queue (or hold, or drop) the message and say 250.
    async fn finish_message(&mut self) {
        if self.txn.as_ref().is_some_and(|t| t.too_big) {
            tracing::info!(peer = %self.peer, "message size exceeds limit");
            self.end_transaction();
            self.reply(Reply::size_exceeded());
            return;
        }
        if let Err(r) = self.data_gate().await {
            tracing::info!(peer = %self.peer, "message refused by policy: {} {}", r.code, r.text);
            self.end_transaction();
            self.reply(r);
            return;
        }
        let Some(mut txn) = self.txn.take() else {
            return;
        };
        // The plugin instances may go on to the message's delivery.
        let ptxn = self.ptxn.take();
        self.end_transaction();
        if txn.rcpts.is_empty() {
            // Every recipient was removed by a plugin.
            self.reply(Reply::need_rcpt());
            return;
        }
        let header_edits: Vec<HeaderEdit> = txn
            .edits
            .drain(..)
            .filter_map(|e| match e {
                Edit::Header(h) => Some(h),
                _ => None,
            })
            .collect();
        for name in headers::apply(&mut txn.body, &header_edits) {
            tracing::warn!(peer = %self.peer, "plugin header edit with invalid name `{name}` ignored");
        }
        let id = QueueId::generate();
        if txn.discard {
            tracing::info!(
                "{id}: discard: message from <{}> discarded by policy",
                txn.mail.address
            );
            self.reply(Reply::queued(id.as_str()));
            return;
        }
        let arrival = SystemTime::now();
        let greeting = self.greeting.clone();
        let helo = greeting.as_ref().map_or("", |g| g.name.as_str());
        let protocol = match (
            greeting.as_ref().is_some_and(|g| g.esmtp),
            txn.mail.params.smtputf8,
        ) {
            (true, true) => "UTF8SMTP",
            (true, false) => "ESMTP",
            (false, _) => "SMTP",
        };
        let one_rcpt = match txn.rcpts.as_slice() {
            [only] => Some(only.address.as_str()),
            _ => None,
        };
        let received = received_header(
            helo,
            self.peer.ip(),
            &self.cfg().myhostname,
            protocol,
            &id,
            one_rcpt,
        );
        let envelope = Envelope {
            sender: txn.mail.address.clone(),
            params: txn.mail.params.clone(),
            client_ip: Some(self.peer.ip()),
            helo: helo.to_owned(),
            arrival: arrival
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            recipients: txn
                .rcpts
                .iter()
                .map(|r| EnvelopeRcpt {
                    address: r.address.clone(),
                    notify: r.notify,
                    orcpt: r.orcpt.clone(),
                })
                .collect(),
        };
        let size = txn.body.len() + received.len();
        let nrcpt = envelope.recipients.len();
        let sender = envelope.sender.clone();
        let held = txn.hold.is_some();
        // Handed over before the spool announces the message to the queue
        // manager, which takes it back when the delivery starts; otherwise
        // the instances end here.
        let handed = match ptxn {
            Some(p) if nrcpt == 1 && !held => {
                self.ctx.policy.hand_over(id.as_str(), p);
                Some(id.clone())
            }
            _ => None,
        };
        let queued = self
            .ctx
            .spool
            .enqueue(id, envelope, received.into_bytes(), txn.body, held)
            .await;
        if let (Err(_), Some(id)) = (&queued, handed) {
            // Not queued: its delivery will not come for the instances.
            drop(self.ctx.policy.take_over(id.as_str()));
        }
        match queued {
            Ok(id) => {
                let queue = if held { "hold" } else { "active" };
                tracing::info!(
                    "{id}: client=[{}], from=<{sender}>, size={size}, nrcpt={nrcpt} (queue {queue})",
                    self.peer.ip()
                );
                if let Some(why) = &txn.hold {
                    tracing::info!("{id}: hold: {why}");
                }
                self.reply(Reply::queued(id.as_str()));
            }
            Err(e) => {
                tracing::error!(peer = %self.peer, "cannot queue message: {e}");
                self.reply(Reply::queue_write_error());
            }
        }
    }
}

/// The trace header, RFC 5321 §4.4, in Postfix's layout.
fn received_header(
    helo: &str,
    ip: std::net::IpAddr,
    myhostname: &str,
    protocol: &str,
    id: &QueueId,
    rcpt: Option<&str>,
) -> String {
    let date = chrono::Local::now().to_rfc2822();
    let helo = if helo.is_empty() { "unknown" } else { helo };
    let ip = match ip {
        std::net::IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => format!("IPv6:{v6}"),
        },
        v4 => v4.to_string(),
    };
    let mut h = format!(
        "Received: from {helo} (unknown [{ip}])\r\n\tby {myhostname} ({}) with {protocol} id {id}",
        crate::config::MAIL_NAME
    );
    if let Some(r) = rcpt {
        h.push_str(&format!("\r\n\tfor <{r}>"));
    }
    h.push_str(&format!("; {date}\r\n"));
    h
}
