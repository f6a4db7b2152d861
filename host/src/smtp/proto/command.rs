//! One command line → a typed [`Command`], or the [`Reply`] that refuses it.
//!
//! Parsing follows RFC 5321 §4.1 with Postfix's leniency where clients need it
//! (addresses without angle brackets, spaces after `FROM:`), and is strict where
//! leniency is dangerous: control characters, unbalanced brackets and quotes,
//! 8-bit addresses without SMTPUTF8 (RFC 6531 §3.4), and unknown parameters are
//! refused.

use super::reply::{Enhanced, Reply};

/// A parsed SMTP command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `HELO name`.
    Helo(String),
    /// `EHLO name`.
    Ehlo(String),
    /// `MAIL FROM:<addr> params`.
    Mail(MailFrom),
    /// `RCPT TO:<addr> params`.
    Rcpt(RcptTo),
    /// `DATA`.
    Data,
    /// `BDAT size [LAST]` (RFC 3030).
    Bdat {
        /// Octets in this chunk.
        size: u64,
        /// Whether this is the last chunk.
        last: bool,
    },
    /// `RSET`.
    Rset,
    /// `NOOP`.
    Noop,
    /// `QUIT`.
    Quit,
    /// `VRFY address`.
    Vrfy(String),
    /// `HELP`.
    Help,
}

impl Command {
    /// Whether a client may send this command without waiting for the reply to
    /// the previous one (RFC 2920 §3.1). Commands that change the session's
    /// footing (EHLO, DATA, BDAT's content, QUIT, VRFY) end a pipelined group.
    pub fn may_be_pipelined(&self) -> bool {
        matches!(
            self,
            Command::Mail(_)
                | Command::Rcpt(_)
                | Command::Rset
                | Command::Noop
                | Command::Bdat { .. }
        )
    }
}

/// `MAIL FROM` with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailFrom {
    /// The reverse path without brackets; empty for the null sender `<>`.
    pub address: String,
    /// ESMTP parameters.
    pub params: MailParams,
}

/// The parameters of `MAIL FROM` (RFC 1870, 6152, 6531, 3461).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailParams {
    /// `SIZE=`: the client's estimate of the message size.
    pub size: Option<u64>,
    /// `BODY=8BITMIME` (true) or `BODY=7BIT` (false).
    pub body_8bit: Option<bool>,
    /// `SMTPUTF8`.
    pub smtputf8: bool,
    /// `RET=`.
    pub ret: Option<DsnRet>,
    /// `ENVID=` (xtext, kept encoded).
    pub envid: Option<String>,
}

/// DSN `RET=` (RFC 3461 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DsnRet {
    /// Return the whole message.
    Full,
    /// Return only the headers.
    Hdrs,
}

/// DSN `NOTIFY=` (RFC 3461 §4.1): `NEVER`, or any of SUCCESS, FAILURE, DELAY.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DsnNotify {
    /// `SUCCESS`.
    pub success: bool,
    /// `FAILURE`.
    pub failure: bool,
    /// `DELAY`.
    pub delay: bool,
}

impl DsnNotify {
    /// The keyword form, as sent on the wire.
    pub fn keywords(&self) -> String {
        let words: Vec<&str> = [
            (self.success, "SUCCESS"),
            (self.failure, "FAILURE"),
            (self.delay, "DELAY"),
        ]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, w)| *w)
        .collect();
        if words.is_empty() {
            "NEVER".to_owned()
        } else {
            words.join(",")
        }
    }

    /// Parses the keyword form.
    pub fn parse(s: &str) -> Option<Self> {
        if s.eq_ignore_ascii_case("NEVER") {
            return Some(DsnNotify::default());
        }
        let mut n = DsnNotify::default();
        for word in s.split(',') {
            let flag = match word.to_ascii_uppercase().as_str() {
                "SUCCESS" => &mut n.success,
                "FAILURE" => &mut n.failure,
                "DELAY" => &mut n.delay,
                _ => return None,
            };
            *flag = true;
        }
        Some(n)
    }
}

/// `RCPT TO` with its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RcptTo {
    /// The forward path without brackets.
    pub address: String,
    /// `NOTIFY=`.
    pub notify: Option<DsnNotify>,
    /// `ORCPT=` (`type;xtext`, kept encoded).
    pub orcpt: Option<String>,
}

/// Parses one command line (without its CR LF).
pub fn parse(line: &[u8]) -> Result<Command, Reply> {
    let line = std::str::from_utf8(line)
        .map_err(|_| Reply::new(500, Enhanced(5, 5, 2), "Error: bad UTF-8 syntax"))?;
    if line.chars().any(|c| c.is_control() && c != '\t') {
        return Err(Reply::new(
            500,
            Enhanced(5, 5, 2),
            "Error: control characters in command",
        ));
    }
    let line = line.trim_end_matches([' ', '\t']);
    let (verb, arg) = match line.find([' ', '\t']) {
        Some(i) => (&line[..i], line[i..].trim_start_matches([' ', '\t'])),
        None => (line, ""),
    };
    let no_arg = |cmd: Command, usage: &'static str| {
        if arg.is_empty() {
            Ok(cmd)
        } else {
            Err(Reply::syntax(usage))
        }
    };
    match verb.to_ascii_uppercase().as_str() {
        "HELO" => helo_arg(arg, "HELO").map(Command::Helo),
        "EHLO" => helo_arg(arg, "EHLO").map(Command::Ehlo),
        "MAIL" => parse_mail(arg).map(Command::Mail),
        "RCPT" => parse_rcpt(arg).map(Command::Rcpt),
        "DATA" => no_arg(Command::Data, "DATA"),
        "BDAT" => parse_bdat(arg),
        "RSET" => no_arg(Command::Rset, "RSET"),
        "NOOP" => Ok(Command::Noop),
        "QUIT" => Ok(Command::Quit),
        "HELP" => Ok(Command::Help),
        "VRFY" if arg.is_empty() => Err(Reply::syntax("VRFY address")),
        "VRFY" => Ok(Command::Vrfy(
            arg.trim_start_matches('<').trim_end_matches('>').to_owned(),
        )),
        _ => Err(Reply::unrecognized()),
    }
}

fn helo_arg(arg: &str, verb: &'static str) -> Result<String, Reply> {
    match arg.split_whitespace().next() {
        Some(name) => Ok(name.to_owned()),
        None => Err(Reply::helo_syntax(verb)),
    }
}

fn parse_bdat(arg: &str) -> Result<Command, Reply> {
    let mut words = arg.split_whitespace();
    let size = words
        .next()
        .filter(|w| w.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|w| w.parse::<u64>().ok());
    let last = match words.next() {
        None => Some(false),
        Some(w) if w.eq_ignore_ascii_case("LAST") => Some(true),
        Some(_) => None,
    };
    match (size, last, words.next()) {
        (Some(size), Some(last), None) => Ok(Command::Bdat { size, last }),
        _ => Err(Reply::syntax("BDAT count [LAST]")),
    }
}

/// Strips `keyword:` (case-insensitive) from the front of `arg`.
fn strip_keyword<'a>(arg: &'a str, keyword: &str) -> Option<&'a str> {
    let head = arg.get(..keyword.len())?;
    head.eq_ignore_ascii_case(keyword)
        .then(|| arg[keyword.len()..].trim_start_matches([' ', '\t']))
}

fn parse_mail(arg: &str) -> Result<MailFrom, Reply> {
    let rest = strip_keyword(arg, "FROM:").ok_or(Reply::syntax("MAIL FROM:<address>"))?;
    let (address, params) = parse_path(rest).ok_or_else(Reply::bad_sender_syntax)?;
    let mut mail = MailFrom {
        address,
        params: MailParams::default(),
    };
    for (key, value) in esmtp_params(params)? {
        let p = &mut mail.params;
        match (key.to_ascii_uppercase().as_str(), value) {
            ("SIZE", Some(v)) if p.size.is_none() => {
                p.size = Some(
                    v.parse()
                        .map_err(|_| Reply::bad_parameter("Bad message size syntax"))?,
                );
            }
            ("BODY", Some(v)) if p.body_8bit.is_none() => {
                p.body_8bit = Some(match v.to_ascii_uppercase().as_str() {
                    "8BITMIME" => true,
                    "7BIT" => false,
                    _ => return Err(Reply::bad_parameter("Unsupported BODY parameter value")),
                });
            }
            ("SMTPUTF8", None) if !p.smtputf8 => p.smtputf8 = true,
            ("RET", Some(v)) if p.ret.is_none() => {
                p.ret = Some(match v.to_ascii_uppercase().as_str() {
                    "FULL" => DsnRet::Full,
                    "HDRS" => DsnRet::Hdrs,
                    _ => return Err(Reply::bad_parameter("Bad RET parameter syntax")),
                });
            }
            ("ENVID", Some(v)) if p.envid.is_none() && is_xtext(v) && v.len() <= 100 => {
                p.envid = Some(v.to_owned());
            }
            _ => return Err(unsupported(key)),
        }
    }
    if !mail.params.smtputf8 && !mail.address.is_ascii() {
        return Err(Reply::need_smtputf8());
    }
    Ok(mail)
}

fn parse_rcpt(arg: &str) -> Result<RcptTo, Reply> {
    let rest = strip_keyword(arg, "TO:").ok_or(Reply::syntax("RCPT TO:<address>"))?;
    let (address, params) = parse_path(rest).ok_or_else(Reply::bad_recipient_syntax)?;
    if address.is_empty() {
        return Err(Reply::bad_recipient_syntax());
    }
    let mut rcpt = RcptTo {
        address,
        notify: None,
        orcpt: None,
    };
    for (key, value) in esmtp_params(params)? {
        match (key.to_ascii_uppercase().as_str(), value) {
            ("NOTIFY", Some(v)) if rcpt.notify.is_none() => {
                rcpt.notify = Some(
                    DsnNotify::parse(v)
                        .ok_or(Reply::bad_parameter("Bad NOTIFY parameter syntax"))?,
                );
            }
            ("ORCPT", Some(v)) if rcpt.orcpt.is_none() => {
                let ok = v.split_once(';').is_some_and(|(t, x)| {
                    !t.is_empty()
                        && t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                        && is_xtext(x)
                });
                if !ok || v.len() > 500 {
                    return Err(Reply::bad_parameter("Bad ORCPT parameter syntax"));
                }
                rcpt.orcpt = Some(v.to_owned());
            }
            _ => return Err(unsupported(key)),
        }
    }
    Ok(rcpt)
}

fn unsupported(key: &str) -> Reply {
    Reply::new(555, Enhanced(5, 5, 4), format!("Unsupported option: {key}"))
}

/// RFC 3461 §4: xtext is printable ASCII other than `+` and `=`, or `+XX`.
fn is_xtext(s: &str) -> bool {
    s.bytes().all(|b| (b'!'..=b'~').contains(&b) && b != b'=')
}

/// Splits `KEY[=VALUE]` words.
fn esmtp_params(s: &str) -> Result<Vec<(&str, Option<&str>)>, Reply> {
    s.split_whitespace()
        .map(|word| {
            let (k, v) = match word.split_once('=') {
                Some((k, v)) => (k, Some(v)),
                None => (word, None),
            };
            if k.is_empty() || !k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                return Err(Reply::bad_parameter("Bad parameter syntax"));
            }
            Ok((k, v))
        })
        .collect()
}

/// The longest address accepted (RFC 5321 §4.5.3.1.3: 256 octets for a path).
const MAX_ADDRESS_BYTES: usize = 256;

/// Parses `<addr>` (or a bare address) at the front of `s`; returns the address
/// without brackets or source route, and what follows it.
fn parse_path(s: &str) -> Option<(String, &str)> {
    let (inner, rest) = if let Some(body) = s.strip_prefix('<') {
        let end = closing_bracket(body)?;
        (&body[..end], &body[end + 1..])
    } else {
        let end = s.find([' ', '\t']).unwrap_or(s.len());
        (&s[..end], &s[end..])
    };
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    // RFC 5321 §4.1.2: a source route (`@a,@b:user@c`) is accepted and ignored.
    let address = match inner.strip_prefix('@') {
        Some(route) => &route[route.find(':')? + 1..],
        None => inner,
    };
    if address.len() > MAX_ADDRESS_BYTES || !valid_address(address) {
        return None;
    }
    Some((address.to_owned(), rest))
}

/// Finds the `>` that closes a path, skipping quoted strings.
fn closing_bracket(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            '>' if !quoted => return Some(i),
            '<' if !quoted => return None,
            _ => {}
        }
    }
    None
}

/// A mailbox `local@domain`, a bare local name, or empty (the null path).
fn valid_address(a: &str) -> bool {
    if a.is_empty() {
        return true;
    }
    let (local, domain) = match a.rfind('@') {
        Some(at) => (&a[..at], Some(&a[at + 1..])),
        None => (a, None),
    };
    let local_ok = if let Some(q) = local.strip_prefix('"') {
        q.ends_with('"') && !q.is_empty()
    } else {
        !local.is_empty()
            && !local.contains([
                ' ', '\t', '<', '>', '(', ')', ',', ';', ':', '\\', '"', '[', ']',
            ])
            && !local.contains('@')
    };
    let domain_ok = domain.is_none_or(|d| {
        if let Some(lit) = d.strip_prefix('[') {
            lit.ends_with(']') && !lit.contains(['[', ' '])
        } else {
            !d.is_empty()
                && d.split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .chars()
                            .all(|c| c.is_alphanumeric() || c == '-' || c == '_' || !c.is_ascii())
                })
        }
    });
    local_ok && domain_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(line: &str) -> Command {
        match parse(line.as_bytes()) {
            Ok(c) => c,
            Err(r) => unreachable!("{line:?} refused: {r:?}"),
        }
    }

    fn refused(line: &[u8]) -> u16 {
        match parse(line) {
            Ok(c) => unreachable!("{:?} accepted as {c:?}", String::from_utf8_lossy(line)),
            Err(r) => r.code,
        }
    }

    #[test]
    fn verbs() {
        assert_eq!(
            ok("helo client.example"),
            Command::Helo("client.example".into())
        );
        assert_eq!(ok("EHLO [127.0.0.1]"), Command::Ehlo("[127.0.0.1]".into()));
        assert_eq!(ok("DATA"), Command::Data);
        assert_eq!(ok("rset"), Command::Rset);
        assert_eq!(ok("NOOP anything"), Command::Noop);
        assert_eq!(ok("QUIT"), Command::Quit);
        assert_eq!(ok("VRFY <root@x>"), Command::Vrfy("root@x".into()));
        assert_eq!(
            ok("BDAT 100"),
            Command::Bdat {
                size: 100,
                last: false
            }
        );
        assert_eq!(
            ok("BDAT 0 LAST"),
            Command::Bdat {
                size: 0,
                last: true
            }
        );
    }

    #[test]
    fn mail_from() {
        let Command::Mail(m) =
            ok("MAIL FROM:<a@b.example> SIZE=1000 BODY=8BITMIME RET=HDRS ENVID=QQ+2B1")
        else {
            unreachable!()
        };
        assert_eq!(m.address, "a@b.example");
        assert_eq!(m.params.size, Some(1000));
        assert_eq!(m.params.body_8bit, Some(true));
        assert_eq!(m.params.ret, Some(DsnRet::Hdrs));
        assert_eq!(m.params.envid.as_deref(), Some("QQ+2B1"));
        let Command::Mail(m) = ok("mail from: <>") else {
            unreachable!()
        };
        assert_eq!(m.address, "");
        let Command::Mail(m) = ok("MAIL FROM:bare@x.example") else {
            unreachable!()
        };
        assert_eq!(m.address, "bare@x.example");
        let Command::Mail(m) = ok("MAIL FROM:<@relay.example:u@x.example>") else {
            unreachable!()
        };
        assert_eq!(m.address, "u@x.example");
        let Command::Mail(m) = ok("MAIL FROM:<\"a > b\"@x.example>") else {
            unreachable!()
        };
        assert_eq!(m.address, "\"a > b\"@x.example");
        let Command::Mail(m) = ok("MAIL FROM:<jö@x.example> SMTPUTF8") else {
            unreachable!()
        };
        assert!(m.params.smtputf8);
    }

    #[test]
    fn rcpt_to() {
        let Command::Rcpt(r) =
            ok("RCPT TO:<u+tag@localhost> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;u+2Btag@localhost")
        else {
            unreachable!()
        };
        assert_eq!(r.address, "u+tag@localhost");
        assert_eq!(
            r.notify.map(|n| n.keywords()).as_deref(),
            Some("SUCCESS,DELAY")
        );
        assert_eq!(r.orcpt.as_deref(), Some("rfc822;u+2Btag@localhost"));
        let Command::Rcpt(r) = ok("RCPT TO:<postmaster>") else {
            unreachable!()
        };
        assert_eq!(r.address, "postmaster");
    }

    #[test]
    fn refusals() {
        let cases: &[(&[u8], u16)] = &[
            (b"FOO", 502),
            (b"STARTTLS", 502),
            (b"MAIL TO:<a@b>", 501),
            (b"MAIL FROM:<a@b", 501),
            (b"MAIL FROM:<a@b>junk", 501),
            (b"MAIL FROM:<a@b> SIZE=abc", 501),
            (b"MAIL FROM:<a@b> FROB=1", 555),
            (b"MAIL FROM:<a@b> SIZE=1 SIZE=2", 555),
            (b"MAIL FROM:<j\xc3\xb6@x>", 553),
            (b"MAIL FROM:<a@b..c>", 501),
            (b"RCPT TO:<>", 501),
            (b"RCPT TO:<a b@c>", 501),
            (b"RCPT TO:<a@b> NOTIFY=SOMETIMES", 501),
            (b"DATA now", 501),
            (b"BDAT", 501),
            (b"BDAT 12 FIRST", 501),
            (b"BDAT 99999999999999999999999", 501),
            (b"HELO", 501),
            (b"VRFY", 501),
            (b"NOOP \x00", 500),
            (b"MAIL FROM:<\xff@x>", 500),
        ];
        for (line, code) in cases {
            assert_eq!(refused(line), *code, "{:?}", String::from_utf8_lossy(line));
        }
    }

    #[test]
    fn pipelinable() {
        assert!(ok("MAIL FROM:<>").may_be_pipelined());
        assert!(ok("RCPT TO:<a@b>").may_be_pipelined());
        assert!(!ok("DATA").may_be_pipelined());
        assert!(!ok("EHLO x").may_be_pipelined());
    }
}
