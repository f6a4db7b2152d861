//! HELO and EHLO (RFC 5321 §4.1.1.1): name the client, reset the transaction,
//! and (EHLO) list the extensions.

use tokio::io::{AsyncRead, AsyncWrite};

use super::{Greeting, Session};
use crate::smtp::proto::Reply;

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    pub(super) async fn handle_helo(&mut self, name: String, esmtp: bool) {
        self.end_transaction();
        self.greeting = Some(Greeting { name, esmtp });
        if let Err(r) = self.helo_gate().await {
            self.greeting = None;
            self.reply(r);
            return;
        }
        let host = self.cfg().myhostname.clone();
        if !esmtp {
            self.reply(Reply::helo(&host));
            return;
        }
        let mut ext = vec!["PIPELINING".to_owned()];
        ext.push(match self.cfg().message_size_limit {
            0 => "SIZE".to_owned(),
            n => format!("SIZE {n}"),
        });
        if !self.cfg().disable_vrfy_command {
            ext.push("VRFY".to_owned());
        }
        for e in ["ENHANCEDSTATUSCODES", "8BITMIME", "SMTPUTF8", "CHUNKING"] {
            ext.push(e.to_owned());
        }
        self.reply(Reply::ehlo(&host, &ext));
    }
}
