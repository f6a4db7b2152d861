//! SMTP replies as smtpd_check.c builds them: a code, an RFC 3463 status
//! (DSN) code and a text, with Postfix's checks and fix-ups.
//!
//! In: codes from the configuration or from access tables, texts built by
//! the restrictions. Out: a [`Reply`] whose codes agree (the DSN class
//! follows the reply code, as `smtpd_check_reject` forces it), and the
//! plugin's [`Outcome`].
//!
//! Must not: build an [`Outcome`] that the SDK would refuse (it panics on a
//! mismatched code class): a bad code becomes Postfix's fallback,
//! `450 4.7.1 Service unavailable`.

use std::fmt;

use postern_plugin_sdk::Outcome;

/// A reply: `554 5.7.1 <a@b>: Relay access denied`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub dsn: String,
    pub text: String,
}

impl Reply {
    /// A reply as `smtpd_check_reject` formats it: an invalid code or DSN
    /// becomes `450 4.7.1 Service unavailable`; the DSN class becomes the
    /// code's.
    pub fn new(code: u16, dsn: &str, text: impl Into<String>) -> Reply {
        if !(400..=599).contains(&code) || dsn_valid(dsn) != Some(dsn.len()) {
            return Reply::service_unavailable();
        }
        let class = char::from(b'0' + (code / 100) as u8);
        Reply {
            code,
            dsn: format!("{class}{}", &dsn[1..]),
            text: text.into(),
        }
    }

    /// Postfix's reply after a configuration error (`reject_server_error`).
    pub fn server_error() -> Reply {
        Reply::new(451, "4.3.5", "Server configuration error")
    }

    /// Postfix's fallback for a bad reply code or DSN.
    fn service_unavailable() -> Reply {
        Reply {
            code: 450,
            dsn: "4.7.1".to_owned(),
            text: "Service unavailable".to_owned(),
        }
    }

    /// Whether the reply is permanent (5xx).
    pub fn is_permanent(&self) -> bool {
        self.code / 100 == 5
    }

    /// The plugin's answer: a reject for 5xx, a defer for 4xx.
    pub fn outcome(&self) -> Outcome {
        if self.is_permanent() {
            Outcome::reject(self.code, self.dsn.clone(), self.text.clone())
        } else {
            Outcome::defer(self.code, self.dsn.clone(), self.text.clone())
        }
    }
}

impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.code, self.dsn, self.text)
    }
}

/// Postfix's `dsn_valid`: the length of the RFC 3463 code `[245].d{1,3}.d{1,3}`
/// at the start of `text`, which must end there or at white space.
pub fn dsn_valid(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    if !matches!(bytes.first(), Some(b'2' | b'4' | b'5')) || bytes.get(1) != Some(&b'.') {
        return None;
    }
    let digits = |from: usize| {
        bytes
            .iter()
            .skip(from)
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let second = digits(2);
    if !(1..=3).contains(&second) || bytes.get(2 + second) != Some(&b'.') {
        return None;
    }
    let third_at = 3 + second;
    let third = digits(third_at);
    let end = third_at + third;
    if !(1..=3).contains(&third) || bytes.get(end).is_some_and(|b| !b.is_ascii_whitespace()) {
        return None;
    }
    Some(end)
}

/// Postfix's `dsn_split`: an optional DSN at the start of `text` (else
/// `default`), and the rest of the text.
pub fn dsn_split<'t>(default: &str, text: &'t str) -> (String, &'t str) {
    let text = text.trim_start();
    match dsn_valid(text) {
        Some(len) => (text[..len].to_owned(), text[len..].trim_start()),
        None => (default.to_owned(), text),
    }
}

/// Postfix's `smtpd_dsn_fix`: an address DSN (`X.1.Y`) made to fit what is
/// rejected (a sender, a recipient, or no address at all).
pub fn dsn_fix(status: &str, class: &str) -> String {
    let bytes = status.as_bytes();
    let is_address_dsn =
        bytes.first().is_some_and(u8::is_ascii_digit) && status.get(1..4) == Some(".1.");
    if !is_address_dsn {
        return status.to_owned();
    }
    // (micro code, sender DSN, recipient DSN), as smtpd_dsn_fix.c's table.
    const MAP: [(&str, &str, &str); 8] = [
        ("1", "4.1.0", "4.1.1"),
        ("2", "4.1.8", "4.1.2"),
        ("3", "4.1.7", "4.1.3"),
        ("4", "4.1.0", "4.1.4"),
        ("5", "4.1.0", "4.1.5"),
        ("6", "4.1.0", "4.1.6"),
        ("7", "4.1.7", "4.1.3"),
        ("8", "4.1.8", "4.1.2"),
    ];
    let micro = status.get(4..).unwrap_or("");
    let entry = MAP.iter().find(|(m, _, _)| *m == micro);
    let result = match class {
        crate::SENDER => entry.map_or("4.1.0", |e| e.1),
        crate::RECIPIENT => entry.map_or("4.1.0", |e| e.2),
        _ => "4.0.0",
    };
    result.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_keep_codes_consistent() {
        assert_eq!(
            Reply::new(554, "4.7.1", "x").to_string(),
            "554 5.7.1 x",
            "the DSN class follows the code"
        );
        assert_eq!(Reply::new(450, "5.1.8", "x").dsn, "4.1.8");
        assert_eq!(
            Reply::new(250, "2.0.0", "x").to_string(),
            "450 4.7.1 Service unavailable"
        );
        assert_eq!(
            Reply::new(554, "5.7", "x").to_string(),
            "450 4.7.1 Service unavailable"
        );
        assert_eq!(
            Reply::server_error().to_string(),
            "451 4.3.5 Server configuration error"
        );
        assert_eq!(
            Reply::new(554, "5.7.1", "no").outcome(),
            Outcome::reject(554, "5.7.1", "no")
        );
        assert_eq!(
            Reply::new(450, "4.7.1", "later").outcome(),
            Outcome::defer(450, "4.7.1", "later")
        );
    }

    #[test]
    fn dsn_codes_are_found_and_split() {
        for (text, want) in [
            ("5.7.1", Some(5)),
            ("4.123.456 text", Some(9)),
            ("2.0.0\ttext", Some(5)),
            ("5.7.1x", None),
            ("5.7.", None),
            ("5.1234.1", None),
            ("3.7.1", None),
            ("57.1", None),
            ("", None),
        ] {
            assert_eq!(dsn_valid(text), want, "{text:?}");
        }
        assert_eq!(
            dsn_split("5.7.1", "  4.1.1   Go away "),
            ("4.1.1".to_owned(), "Go away ")
        );
        assert_eq!(
            dsn_split("5.7.1", "Go away"),
            ("5.7.1".to_owned(), "Go away")
        );
        assert_eq!(dsn_split("5.7.1", ""), ("5.7.1".to_owned(), ""));
    }

    #[test]
    fn address_dsns_are_fixed_per_class() {
        for (status, class, want) in [
            ("5.1.1", crate::SENDER, "4.1.0"),
            ("5.1.1", crate::RECIPIENT, "4.1.1"),
            ("5.1.8", crate::RECIPIENT, "4.1.2"),
            ("5.1.2", crate::SENDER, "4.1.8"),
            ("5.1.99", crate::RECIPIENT, "4.1.0"),
            ("5.1.1", crate::CLIENT, "4.0.0"),
            ("5.7.1", crate::SENDER, "5.7.1"),
            ("4.2.2", crate::CLIENT, "4.2.2"),
        ] {
            assert_eq!(dsn_fix(status, class), want, "{status} {class}");
        }
    }
}
