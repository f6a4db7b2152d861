//! RSET, VRFY (and the verbs so small they live in `dispatch`: NOOP, HELP, QUIT).

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Session, State};
use crate::smtp::proto::Reply;

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// RFC 5321 §4.1.1.5: abort the transaction, keep the greeting.
    pub(super) fn handle_rset(&mut self) {
        self.end_transaction();
        self.state = State::Command;
        self.reply(Reply::ok());
    }

    /// RFC 5321 §4.1.1.6, or 502 with `disable_vrfy_command`.
    pub(super) fn handle_vrfy(&mut self, address: &str) {
        if self.cfg().disable_vrfy_command {
            self.reply(Reply::vrfy_disabled());
            return;
        }
        match self.check_recipient(address) {
            Ok(()) => self.reply(Reply::vrfy_ok(address)),
            Err(r) => self.reply(r),
        }
    }
}
