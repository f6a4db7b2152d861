//! The actions of `header_checks(5)`: what a table's result asks for.
//!
//! In: a lookup result (`REJECT text`, `PREPEND X-Tag: 1`...), whether it
//! matched a header or a body line, and the table's parameter name. Out: an
//! [`Action`], checked as cleanup(8)'s `cleanup_act` checks it: names are
//! case-insensitive, a `REJECT` text may start with its own enhanced status
//! code, and a malformed action is [`Action::Invalid`] with the warning
//! Postfix logs (the line is then left alone).
//!
//! Must not: decide what postern does with an action (the plugin maps them
//! to verdicts and edits); this module only reads them.

use crate::mime::is_header;
use crate::table::posix::is_c_space;

/// Whether a rule matched a header or a body line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// A logical header (`header_checks`, `mime_header_checks`,
    /// `nested_header_checks`).
    Header,
    /// A body line (`body_checks`).
    Body,
}

impl Context {
    /// The word Postfix logs: `header` or `body`.
    pub fn name(self) -> &'static str {
        match self {
            Context::Header => "header",
            Context::Body => "body",
        }
    }
}

/// An action, with its text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Refuse the message: `code` is 550, or 451 when the status code is
    /// 4.x.x; `dsn` the enhanced status code (default 5.7.1).
    Reject {
        /// 550 or 451.
        code: u16,
        /// E.g. `5.7.1`.
        dsn: String,
        /// The reply text (Postfix's default: `message content rejected`).
        text: String,
        /// Postfix's warning for a text that starts with a 2.x.x code (the
        /// class becomes 4).
        warning: Option<String>,
    },
    /// Log a warning; carry on.
    Warn(String),
    /// Log; carry on.
    Info(String),
    /// Send the message through a content filter (`transport:destination`).
    Filter(String),
    /// Stop header, body and Milter inspection of this message.
    Pass(String),
    /// Accept and drop the message; stop inspection.
    Discard(String),
    /// Put the message on hold; carry on.
    Hold(String),
    /// Insert this line before the matched one.
    Prepend(String),
    /// Replace the matched line with this one.
    Replace(String),
    /// Deliver to this address instead of every recipient; stop inspection.
    Redirect(String),
    /// Add this recipient.
    Bcc(String),
    /// Remove the matched line, and log it.
    Strip(String),
    /// Remove the matched line.
    Ignore,
    /// Nothing (`DUNNO`, or `OK`).
    Dunno,
    /// A malformed or unknown action: Postfix logs this and leaves the line.
    Invalid(String),
}

impl Action {
    /// Reads a lookup result. `map` names the table in warnings
    /// (`header_checks`...).
    pub fn parse(value: &[u8], context: Context, map: &str) -> Action {
        let value = String::from_utf8_lossy(value);
        let command_len = value.find([' ', '\t']).unwrap_or(value.len());
        let (command, rest) = value.split_at(command_len);
        let text = rest.trim_start_matches(|c: char| c.is_ascii() && is_c_space(c as u8));
        let text_owned = text.to_owned();
        let is = |name: &str| command.eq_ignore_ascii_case(name);
        if is("REJECT") {
            return reject(text);
        }
        if is("WARN") {
            return Action::Warn(text_owned);
        }
        if is("INFO") {
            return Action::Info(text_owned);
        }
        if is("FILTER") {
            if text.is_empty() {
                return Action::Invalid(format!("missing FILTER command argument in {map} map"));
            }
            if !text.contains(':') {
                return Action::Invalid(format!(
                    "bad FILTER command {text} in {map} -- need transport:destination"
                ));
            }
            return Action::Filter(text_owned);
        }
        if is("PASS") {
            return Action::Pass(text_owned);
        }
        if is("DISCARD") {
            return Action::Discard(text_owned);
        }
        if is("HOLD") {
            return Action::Hold(text_owned);
        }
        for (name, make) in [
            ("PREPEND", Action::Prepend as fn(String) -> Action),
            ("REPLACE", Action::Replace),
        ] {
            if !is(name) {
                continue;
            }
            if text.is_empty() {
                return Action::Invalid(format!("{name} action without text in {map} map"));
            }
            if context == Context::Header && is_header(text.as_bytes()) == 0 {
                return Action::Invalid(format!(
                    "bad {name} header text \"{text}\" in {map} map -- need \"headername: headervalue\""
                ));
            }
            return make(text_owned);
        }
        if is("REDIRECT") {
            if !text.contains('@') {
                return Action::Invalid(format!(
                    "bad REDIRECT target \"{text}\" in {map} map -- need user@domain"
                ));
            }
            return Action::Redirect(text_owned);
        }
        if is("BCC") {
            if !text.contains('@') {
                return Action::Invalid(format!(
                    "bad BCC address \"{text}\" in {map} map -- need user@domain"
                ));
            }
            return Action::Bcc(text_owned);
        }
        if is("STRIP") {
            return Action::Strip(text_owned);
        }
        if is("IGNORE") {
            return Action::Ignore;
        }
        if is("DUNNO") || is("OK") {
            return Action::Dunno;
        }
        Action::Invalid(format!("unknown command in {map} map: {value}"))
    }

    /// Whether Postfix stops inspecting the message after this action
    /// (`CLEANUP_FLAG_FILTER_ALL` cleared).
    pub fn ends_inspection(&self) -> bool {
        matches!(
            self,
            Action::Reject { .. } | Action::Discard(_) | Action::Redirect(_) | Action::Pass(_)
        )
    }

    /// The action's name as Postfix logs it (`reject`, `warning`...).
    pub fn log_name(&self) -> &'static str {
        match self {
            Action::Reject { .. } => "reject",
            Action::Warn(_) => "warning",
            Action::Info(_) => "info",
            Action::Filter(_) => "filter",
            Action::Pass(_) => "pass",
            Action::Discard(_) => "discard",
            Action::Hold(_) => "hold",
            Action::Prepend(_) => "prepend",
            Action::Replace(_) => "replace",
            Action::Redirect(_) => "redirect",
            Action::Bcc(_) => "bcc",
            Action::Strip(_) => "strip",
            Action::Ignore => "ignore",
            Action::Dunno => "dunno",
            Action::Invalid(_) => "invalid",
        }
    }
}

/// `REJECT [text]`: Postfix's `dsn_prepend("5.7.1", text)` and its checks.
fn reject(text: &str) -> Action {
    if text.is_empty() {
        return Action::Reject {
            code: 550,
            dsn: "5.7.1".into(),
            text: "message content rejected".into(),
            warning: None,
        };
    }
    let (mut dsn, rest) = match dsn_valid(text) {
        0 => ("5.7.1".to_owned(), text),
        len => {
            // Postfix skips the status code and the byte after it.
            let rest = text.get(len + 1..).unwrap_or("");
            (text[..len].to_owned(), rest)
        }
    };
    let rest = rest.trim_start_matches(|c: char| c.is_ascii() && is_c_space(c as u8));
    let mut warning = None;
    if dsn.starts_with('2') {
        warning = Some(format!("bad DSN action in {text} -- need 4.x.x or 5.x.x"));
        dsn.replace_range(..1, "4");
    }
    let code = if dsn.starts_with('4') { 451 } else { 550 };
    Action::Reject {
        code,
        dsn,
        text: rest.to_owned(),
        warning,
    }
}

/// Postfix's `dsn_valid`: the length of an RFC 3463 status code at the
/// start of `text` (`[245].d{1,3}.d{1,3}` then the end or white space), or 0.
fn dsn_valid(text: &str) -> usize {
    let b = text.as_bytes();
    if !matches!(b.first(), Some(b'2' | b'4' | b'5')) || b.get(1) != Some(&b'.') {
        return 0;
    }
    let digits = |from: usize| {
        b[from.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count()
    };
    let second = digits(2);
    if !(1..=3).contains(&second) || b.get(2 + second) != Some(&b'.') {
        return 0;
    }
    let third_at = 3 + second;
    let third = digits(third_at);
    let end = third_at + third;
    if !(1..=3).contains(&third) || b.get(end).is_some_and(|&c| !is_c_space(c)) {
        return 0;
    }
    end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(value: &str) -> Action {
        Action::parse(value.as_bytes(), Context::Header, "header_checks")
    }

    fn reject(code: u16, dsn: &str, text: &str) -> Action {
        Action::Reject {
            code,
            dsn: dsn.into(),
            text: text.into(),
            warning: None,
        }
    }

    #[test]
    fn reads_every_action_like_cleanup() {
        let cases: &[(&str, Action)] = &[
            ("REJECT", reject(550, "5.7.1", "message content rejected")),
            ("reject go away", reject(550, "5.7.1", "go away")),
            ("REJECT 5.7.0 go away", reject(550, "5.7.0", "go away")),
            ("REJECT 4.7.1 later", reject(451, "4.7.1", "later")),
            (
                "REJECT 2.0.0 odd",
                Action::Reject {
                    code: 451,
                    dsn: "4.0.0".into(),
                    text: "odd".into(),
                    warning: Some("bad DSN action in 2.0.0 odd -- need 4.x.x or 5.x.x".into()),
                },
            ),
            ("REJECT 5.7.1000 x", reject(550, "5.7.1", "5.7.1000 x")),
            ("REJECT 5.7.0", reject(550, "5.7.0", "")),
            ("REJECT\t  spaced", reject(550, "5.7.1", "spaced")),
            ("WARN", Action::Warn(String::new())),
            ("WARN look", Action::Warn("look".into())),
            ("INFO x", Action::Info("x".into())),
            ("FILTER smtp:[127.0.0.1]:10025", Action::Filter("smtp:[127.0.0.1]:10025".into())),
            ("FILTER", Action::Invalid("missing FILTER command argument in header_checks map".into())),
            ("FILTER nocolon", Action::Invalid("bad FILTER command nocolon in header_checks -- need transport:destination".into())),
            ("PASS trusted", Action::Pass("trusted".into())),
            ("DISCARD", Action::Discard(String::new())),
            ("HOLD why", Action::Hold("why".into())),
            ("PREPEND X-Tag: 1", Action::Prepend("X-Tag: 1".into())),
            ("PREPEND", Action::Invalid("PREPEND action without text in header_checks map".into())),
            ("PREPEND not a header", Action::Invalid("bad PREPEND header text \"not a header\" in header_checks map -- need \"headername: headervalue\"".into())),
            ("REPLACE Subject: [x]", Action::Replace("Subject: [x]".into())),
            ("REPLACE", Action::Invalid("REPLACE action without text in header_checks map".into())),
            ("REDIRECT a@example.org", Action::Redirect("a@example.org".into())),
            ("REDIRECT nobody", Action::Invalid("bad REDIRECT target \"nobody\" in header_checks map -- need user@domain".into())),
            ("BCC b@example.org", Action::Bcc("b@example.org".into())),
            ("BCC b", Action::Invalid("bad BCC address \"b\" in header_checks map -- need user@domain".into())),
            ("STRIP gone", Action::Strip("gone".into())),
            ("IGNORE", Action::Ignore),
            ("ignore with text", Action::Ignore),
            ("DUNNO", Action::Dunno),
            ("OK", Action::Dunno),
            ("DELAY 1h", Action::Invalid("unknown command in header_checks map: DELAY 1h".into())),
            ("REJECTED", Action::Invalid("unknown command in header_checks map: REJECTED".into())),
            ("", Action::Invalid("unknown command in header_checks map: ".into())),
        ];
        for (value, want) in cases {
            assert_eq!(&header(value), want, "{value:?}");
        }
        // In a body, PREPEND and REPLACE take any text.
        assert_eq!(
            Action::parse(b"PREPEND plain text", Context::Body, "body_checks"),
            Action::Prepend("plain text".into())
        );
    }

    #[test]
    fn which_actions_end_inspection() {
        for (value, ends) in [
            ("REJECT", true),
            ("DISCARD", true),
            ("REDIRECT a@b", true),
            ("PASS", true),
            ("HOLD", false),
            ("WARN", false),
            ("PREPEND X: y", false),
            ("BCC a@b", false),
            ("FILTER a:b", false),
            ("IGNORE", false),
        ] {
            assert_eq!(header(value).ends_inspection(), ends, "{value}");
        }
    }
}
