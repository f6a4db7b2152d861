//! RCPT TO (RFC 5321 §4.1.1.3): the rcpt chain first, then local domains
//! only (there is no relaying); unknown local users are refused as Postfix's
//! `local_recipient_maps` does.

use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use crate::delivery::resolve::Destination;
use crate::smtp::proto::{RcptTo, Reply};

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) async fn handle_rcpt(&mut self, rcpt: RcptTo) {
        let limit = self.cfg().smtpd_recipient_limit;
        let Some(txn) = self.txn.as_ref() else {
            self.reply(Reply::need_mail());
            return;
        };
        if txn.rcpts.len() >= limit {
            self.reply(Reply::too_many_recipients());
            return;
        }
        // Postfix's order: the restriction lists (with smtpd_delay_reject,
        // the client, helo and sender ones too) decide first; then whether
        // the address is deliverable here at all, whatever they said.
        if let Err(reply) = self.rcpt_gate(&rcpt.address).await {
            self.reply(reply);
            return;
        }
        if let Err(reply) = self.check_recipient(&rcpt.address) {
            self.reply(reply);
            return;
        }
        if let Some(txn) = self.txn.as_mut() {
            txn.rcpts.push(rcpt);
        }
        self.reply(Reply::recipient_ok());
    }

    /// Whether mail for `address` is accepted here (also VRFY's answer).
    pub(super) fn check_recipient(&self, address: &str) -> Result<(), Reply> {
        match self.ctx.resolver.classify(address) {
            Destination::Remote(_) => Err(Reply::relay_denied(address)),
            Destination::Local { user, .. } if !self.ctx.resolver.accepts_local(&user) => {
                Err(Reply::unknown_user(address))
            }
            Destination::Local { .. } => Ok(()),
        }
    }
}
