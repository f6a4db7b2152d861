//! MAIL FROM (RFC 5321 §4.1.1.2, SIZE per RFC 1870 §6).

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Session, Transaction};
use crate::smtp::proto::{MailFrom, Reply};

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) async fn handle_mail(&mut self, mail: MailFrom) {
        if self.greeting.is_none() && self.cfg().smtpd_helo_required {
            self.reply(Reply::need_helo());
            return;
        }
        if self.txn.is_some() {
            self.reply(Reply::nested_mail());
            return;
        }
        let limit = self.cfg().message_size_limit;
        if limit > 0 && mail.params.size.is_some_and(|s| s > limit) {
            self.reply(Reply::size_exceeded());
            return;
        }
        self.txn = Some(Transaction::new(mail));
        if let Err(r) = self.mail_gate().await {
            self.end_transaction();
            self.reply(r);
            return;
        }
        self.reply(Reply::sender_ok());
    }
}
