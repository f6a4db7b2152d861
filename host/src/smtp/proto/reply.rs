//! Every reply postern sends, with Postfix's codes, enhanced codes and texts.
//!
//! Handlers never spell out reply text: they call a named constructor here, so
//! an operator can compare postern with Postfix in one place.

use std::borrow::Cow;
use std::fmt;

/// An RFC 3463 enhanced status code, `class.subject.detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enhanced(pub u8, pub u16, pub u16);

impl fmt::Display for Enhanced {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.0, self.1, self.2)
    }
}

/// One SMTP reply. A `text` with `\n` in it is sent as a multi-line reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code.
    pub code: u16,
    /// The enhanced status code, when the reply carries one.
    pub enhanced: Option<Enhanced>,
    /// The text; one line per `\n`-separated part.
    pub text: Cow<'static, str>,
}

impl Reply {
    /// A reply with an enhanced code.
    pub fn new(code: u16, enhanced: Enhanced, text: impl Into<Cow<'static, str>>) -> Self {
        Reply {
            code,
            enhanced: Some(enhanced),
            text: text.into(),
        }
    }

    /// A reply without an enhanced code (greeting, HELO, EHLO, 354).
    pub fn plain(code: u16, text: impl Into<Cow<'static, str>>) -> Self {
        Reply {
            code,
            enhanced: None,
            text: text.into(),
        }
    }

    /// Whether this is a 4xx or 5xx reply.
    pub fn is_error(&self) -> bool {
        self.code >= 400
    }

    /// Appends the wire form (`250-...\r\n250 ...\r\n`) to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) {
        let mut lines = self.text.split('\n').peekable();
        while let Some(line) = lines.next() {
            let sep = if lines.peek().is_some() { '-' } else { ' ' };
            let head = match self.enhanced {
                Some(e) => format!("{}{}{} ", self.code, sep, e),
                None => format!("{}{}", self.code, sep),
            };
            out.extend_from_slice(head.as_bytes());
            // A reply line never carries CR or LF of its own (no reply splitting).
            out.extend(line.bytes().filter(|b| *b != b'\r'));
            out.extend_from_slice(b"\r\n");
        }
    }

    // --- greeting and session ---

    /// `220 <banner>`.
    pub fn greeting(banner: &str) -> Self {
        Reply::plain(220, banner.to_owned())
    }

    /// `221 2.0.0 Bye`.
    pub fn bye() -> Self {
        Reply::new(221, Enhanced(2, 0, 0), "Bye")
    }

    /// `250 2.0.0 Ok` (RSET, NOOP).
    pub fn ok() -> Self {
        Reply::new(250, Enhanced(2, 0, 0), "Ok")
    }

    /// `250 <myhostname>` (HELO).
    pub fn helo(hostname: &str) -> Self {
        Reply::plain(250, hostname.to_owned())
    }

    /// The multi-line EHLO reply: host name, then one extension per line.
    pub fn ehlo(hostname: &str, extensions: &[String]) -> Self {
        let mut text = hostname.to_owned();
        for ext in extensions {
            text.push('\n');
            text.push_str(ext);
        }
        Reply::plain(250, text)
    }

    /// `421 4.3.2 <host> Service shutting down`.
    pub fn shutting_down(hostname: &str) -> Self {
        Reply::new(
            421,
            Enhanced(4, 3, 2),
            format!("{hostname} Service shutting down, closing transmission channel"),
        )
    }

    /// `421 4.4.2 <host> Error: timeout exceeded`.
    pub fn timeout(hostname: &str) -> Self {
        Reply::new(
            421,
            Enhanced(4, 4, 2),
            format!("{hostname} Error: timeout exceeded"),
        )
    }

    /// `421 4.7.0 <host> Error: too many errors` (smtpd_hard_error_limit).
    pub fn too_many_errors(hostname: &str) -> Self {
        Reply::new(
            421,
            Enhanced(4, 7, 0),
            format!("{hostname} Error: too many errors"),
        )
    }

    /// `521 5.5.2 <host> Error: bare <LF> received` (smtpd_forbid_bare_newline = reject).
    pub fn bare_newline(hostname: &str) -> Self {
        Reply::new(
            521,
            Enhanced(5, 5, 2),
            format!("{hostname} Error: bare <LF> received"),
        )
    }

    // --- command syntax ---

    /// `502 5.5.2 Error: command not recognized`.
    pub fn unrecognized() -> Self {
        Reply::new(502, Enhanced(5, 5, 2), "Error: command not recognized")
    }

    /// `500 5.5.2 Error: line too long`.
    pub fn line_too_long() -> Self {
        Reply::new(500, Enhanced(5, 5, 2), "Error: line too long")
    }

    /// `501 5.5.4 Syntax: <usage>`.
    pub fn syntax(usage: &'static str) -> Self {
        Reply::new(501, Enhanced(5, 5, 4), format!("Syntax: {usage}"))
    }

    /// `501 5.5.4 <what>` for a bad parameter.
    pub fn bad_parameter(what: impl Into<Cow<'static, str>>) -> Self {
        Reply::new(501, Enhanced(5, 5, 4), what)
    }

    /// `501 5.1.7 Bad sender address syntax`.
    pub fn bad_sender_syntax() -> Self {
        Reply::new(501, Enhanced(5, 1, 7), "Bad sender address syntax")
    }

    /// `501 5.1.3 Bad recipient address syntax`.
    pub fn bad_recipient_syntax() -> Self {
        Reply::new(501, Enhanced(5, 1, 3), "Bad recipient address syntax")
    }

    /// `553 5.6.7 Must declare SMTPUTF8 to send unicode address`.
    pub fn need_smtputf8() -> Self {
        Reply::new(
            553,
            Enhanced(5, 6, 7),
            "Must declare SMTPUTF8 to send unicode address",
        )
    }

    /// `504 5.5.2 <name>: Helo command rejected: need fully-qualified hostname`-style
    /// refusal of an empty HELO argument.
    pub fn helo_syntax(verb: &'static str) -> Self {
        Reply::new(501, Enhanced(5, 5, 4), format!("Syntax: {verb} hostname"))
    }

    // --- sequencing ---

    /// `503 5.5.1 Error: send HELO/EHLO first` (smtpd_helo_required).
    pub fn need_helo() -> Self {
        Reply::new(503, Enhanced(5, 5, 1), "Error: send HELO/EHLO first")
    }

    /// `503 5.5.1 Error: nested MAIL command`.
    pub fn nested_mail() -> Self {
        Reply::new(503, Enhanced(5, 5, 1), "Error: nested MAIL command")
    }

    /// `503 5.5.1 Error: need MAIL command`.
    pub fn need_mail() -> Self {
        Reply::new(503, Enhanced(5, 5, 1), "Error: need MAIL command")
    }

    /// `503 5.5.1 Error: need RCPT command`.
    pub fn need_rcpt() -> Self {
        Reply::new(503, Enhanced(5, 5, 1), "Error: need RCPT command")
    }

    /// `503 5.5.1 Error: DATA after BDAT` (RFC 3030 §2: the two never mix).
    pub fn data_after_bdat() -> Self {
        Reply::new(
            503,
            Enhanced(5, 5, 1),
            "Error: DATA command not allowed after BDAT",
        )
    }

    // --- MAIL / RCPT ---

    /// `250 2.1.0 Ok`.
    pub fn sender_ok() -> Self {
        Reply::new(250, Enhanced(2, 1, 0), "Ok")
    }

    /// `250 2.1.5 Ok`.
    pub fn recipient_ok() -> Self {
        Reply::new(250, Enhanced(2, 1, 5), "Ok")
    }

    /// `552 5.3.4 Message size exceeds fixed limit`.
    pub fn size_exceeded() -> Self {
        Reply::new(552, Enhanced(5, 3, 4), "Message size exceeds fixed limit")
    }

    /// `452 4.5.3 Error: too many recipients`.
    pub fn too_many_recipients() -> Self {
        Reply::new(452, Enhanced(4, 5, 3), "Error: too many recipients")
    }

    /// `554 5.7.1 <rcpt>: Relay access denied`.
    pub fn relay_denied(rcpt: &str) -> Self {
        Reply::new(
            554,
            Enhanced(5, 7, 1),
            format!("<{rcpt}>: Relay access denied"),
        )
    }

    /// `550 5.1.1 <rcpt>: Recipient address rejected: User unknown in local recipient table`.
    pub fn unknown_user(rcpt: &str) -> Self {
        Reply::new(
            550,
            Enhanced(5, 1, 1),
            format!("<{rcpt}>: Recipient address rejected: User unknown in local recipient table"),
        )
    }

    /// `502 5.5.1 VRFY command is disabled`.
    pub fn vrfy_disabled() -> Self {
        Reply::new(502, Enhanced(5, 5, 1), "VRFY command is disabled")
    }

    /// `252 2.0.0 <address>`: VRFY of a deliverable address.
    pub fn vrfy_ok(address: &str) -> Self {
        Reply::new(252, Enhanced(2, 0, 0), address.to_owned())
    }

    /// `214 2.0.0 ...`: HELP.
    pub fn help() -> Self {
        Reply::new(
            214,
            Enhanced(2, 0, 0),
            "Commands: HELO EHLO MAIL RCPT DATA BDAT RSET NOOP VRFY HELP QUIT",
        )
    }

    // --- DATA / BDAT ---

    /// `354 End data with <CR><LF>.<CR><LF>`.
    pub fn start_data() -> Self {
        Reply::plain(354, "End data with <CR><LF>.<CR><LF>")
    }

    /// `250 2.0.0 Ok: <n> bytes` for a BDAT chunk that is not the last.
    pub fn chunk_ok(bytes: u64) -> Self {
        Reply::new(250, Enhanced(2, 0, 0), format!("Ok: {bytes} bytes"))
    }

    /// `250 2.0.0 Ok: queued as <id>`.
    pub fn queued(id: &str) -> Self {
        Reply::new(250, Enhanced(2, 0, 0), format!("Ok: queued as {id}"))
    }

    /// `451 4.3.0 Error: policy plugin failure` (a plugin's `on_error = "tempfail"`).
    pub fn plugin_failure() -> Self {
        Reply::new(451, Enhanced(4, 3, 0), "Error: policy plugin failure")
    }

    /// `451 4.3.0 Error: queue file write error`.
    pub fn queue_write_error() -> Self {
        Reply::new(451, Enhanced(4, 3, 0), "Error: queue file write error")
    }

    /// `550 5.6.0 Error: message contains no header/body separator`-style
    /// refusal of a message whose headers cannot be read.
    pub fn bad_message(why: &'static str) -> Self {
        Reply::new(550, Enhanced(5, 6, 0), format!("Error: {why}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(r: &Reply) -> String {
        let mut out = Vec::new();
        r.write_to(&mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    #[test]
    fn single_and_multi_line() {
        assert_eq!(wire(&Reply::ok()), "250 2.0.0 Ok\r\n");
        assert_eq!(
            wire(&Reply::ehlo("mx", &["PIPELINING".into(), "SIZE 10".into()])),
            "250-mx\r\n250-PIPELINING\r\n250 SIZE 10\r\n"
        );
        assert_eq!(
            wire(&Reply::relay_denied("a@b")),
            "554 5.7.1 <a@b>: Relay access denied\r\n"
        );
    }

    #[test]
    fn text_cannot_split_a_reply() {
        let r = Reply::plain(250, "a\r\nb");
        assert_eq!(wire(&r), "250-a\r\n250 b\r\n");
    }
}
