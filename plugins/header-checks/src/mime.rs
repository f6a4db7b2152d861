//! The message as Postfix's cleanup(8) presents it to header and body checks:
//! records in, logical headers and body lines out.
//!
//! In: the message's lines as records ([`Lines`] splits raw bytes the way
//! smtpd(8) does: CR LF stripped, lines longer than `line_length_limit` cut
//! into continued records). Out: [`Event`]s from [`MimeState`], a port of
//! Postfix's `mime_state.c` (one pass, no decoding):
//! - a logical header is its lines joined with `\n`, each continuation line
//!   keeping its leading white space (`"Subject: a\n\tb"`); `Name :` becomes
//!   `Name:`; continuation lines are dropped once a header reaches
//!   `header_size_limit` bytes;
//! - each header carries its class: in the primary header section, after a
//!   multipart boundary, or at the start of an attached `message/rfc822`
//!   message, and whether Postfix counts it as a MIME header
//!   (`Content-Description`, `-Disposition`, `-ID`, `-Transfer-Encoding`,
//!   `-Type`, `MIME-Version`; not `Content-Length` or other `Content-*`);
//! - every other line is a body line, with its offset in its body segment:
//!   the blank line ending each header block, boundary lines, the epilogue,
//!   and a blank line Postfix inserts when the primary header section ends
//!   in a non-header line;
//! - boundaries are found by prefix (`--b1xyz` is a `--b1` boundary), up to
//!   `mime_boundary_length_limit` bytes, nested up to `mime_nesting_limit`.
//!
//! Must not: allocate without bound (every buffer is capped), or interpret
//! anything Postfix does not (no decoding, no RFC 2231).

/// Postfix's size limits for MIME processing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// `header_size_limit`: a logical header stops growing past this.
    pub header_size_limit: usize,
    /// `mime_boundary_length_limit`: boundaries are compared up to this.
    pub mime_boundary_length_limit: usize,
    /// `mime_nesting_limit`: deeper multiparts are not followed.
    pub mime_nesting_limit: usize,
    /// `line_length_limit`: longer lines become several records; `None`
    /// reads lines whole (as `postmap -q -` does).
    pub line_length_limit: Option<usize>,
}

impl Default for Limits {
    /// Postfix's defaults.
    fn default() -> Limits {
        Limits {
            header_size_limit: 102_400,
            mime_boundary_length_limit: 2048,
            mime_nesting_limit: 100,
            line_length_limit: Some(2048),
        }
    }
}

/// Where a header is (Postfix's `MIME_HDR_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HeaderClass {
    /// The message's own header section.
    Primary,
    /// A header section after a multipart boundary.
    Multipart,
    /// The header section of an attached `message/rfc822` message.
    Nested,
}

/// A record: a whole line, or a piece of a long line that continues in the
/// next record (Postfix's `REC_TYPE_NORM` and `REC_TYPE_CONT`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Record {
    /// The line ends with this record.
    Line,
    /// The line continues in the next record.
    Piece,
}

/// What [`MimeState`] reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event<'a> {
    /// A logical header.
    Header {
        /// Where it is.
        class: HeaderClass,
        /// Whether Postfix treats it as a MIME header.
        mime: bool,
        /// The header as Postfix matches it: `Name: value\n\tmore`.
        text: &'a [u8],
    },
    /// The primary header section is over.
    HeaderEnd,
    /// A body line (or a piece of one).
    Body {
        /// The line, without its line end.
        text: &'a [u8],
        /// Its offset in the current body segment (line ends count one).
        offset: u64,
    },
}

/// The length of the header name if `text` starts a header (`Name:` or the
/// obsolete `Name :`), else 0: Postfix's `is_header`.
pub fn is_header(text: &[u8]) -> usize {
    let mut len = 0;
    let mut after_space = false;
    for &c in text {
        match c {
            b':' => return len,
            b' ' | b'\t' => {
                if len == 0 {
                    return 0;
                }
                after_space = true;
            }
            _ if c == 0 || !c.is_ascii() || c.is_ascii_control() || after_space => return 0,
            _ => len += 1,
        }
    }
    0
}

/// What Postfix's `header_opts` says about a header name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct HeaderKind {
    mime: bool,
    content_type: bool,
}

fn header_kind(header: &[u8]) -> HeaderKind {
    let name_end = header
        .iter()
        .position(|&b| b == b':')
        .unwrap_or(header.len());
    let name = header[..name_end].trim_ascii_end();
    let is = |known: &str| name.eq_ignore_ascii_case(known.as_bytes());
    HeaderKind {
        mime: [
            "content-description",
            "content-disposition",
            "content-id",
            "content-transfer-encoding",
            "content-type",
            "mime-version",
        ]
        .into_iter()
        .any(is),
        content_type: is("content-type"),
    }
}

/// Cuts a C string at its NUL: Postfix's string functions stop there.
fn c_str(text: &[u8]) -> &[u8] {
    &text[..text.iter().position(|&b| b == 0).unwrap_or(text.len())]
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Primary,
    Multipart,
    Nested,
    Body,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ContentType {
    Other,
    Text,
    Message,
    Multipart,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SubType {
    Other,
    Plain,
    Rfc822,
}

struct Boundary {
    default_type: (ContentType, SubType),
    text: Vec<u8>,
}

/// Postfix's MIME state machine (`mime_state.c`), without 8-bit downgrading.
pub struct MimeState {
    limits: Limits,
    state: State,
    content_type: (ContentType, SubType),
    /// The logical header being collected.
    header: Vec<u8>,
    previous: Option<Record>,
    stack: Vec<Boundary>,
    body_offset: u64,
    nesting_exceeded: bool,
}

impl MimeState {
    /// A machine at the start of a message (`text/plain`, primary headers).
    pub fn new(limits: Limits) -> MimeState {
        MimeState {
            limits,
            state: State::Primary,
            content_type: (ContentType::Text, SubType::Plain),
            header: Vec::new(),
            previous: None,
            stack: Vec::new(),
            body_offset: 0,
            nesting_exceeded: false,
        }
    }

    /// Whether a multipart was nested deeper than `mime_nesting_limit`
    /// (cleanup then rejects the message when header checks are on).
    pub fn nesting_exceeded(&self) -> bool {
        self.nesting_exceeded
    }

    /// Whether a header section can still come: the machine is in one, or
    /// a multipart boundary is open. In a body with no boundary open, only
    /// body lines follow.
    pub fn may_have_headers(&self) -> bool {
        self.state != State::Body || !self.stack.is_empty()
    }

    /// Takes one record (`mime_state_update` with a text record).
    pub fn update(&mut self, record: Record, text: &[u8], out: &mut impl FnMut(Event<'_>)) {
        self.step(Some(record), text, out);
    }

    /// The end of the message: flushes what is pending.
    pub fn end(&mut self, out: &mut impl FnMut(Event<'_>)) {
        self.step(None, b"", out);
    }

    fn step(&mut self, record: Option<Record>, text: &[u8], out: &mut impl FnMut(Event<'_>)) {
        if record.is_none() && self.previous == Some(Record::Piece) {
            self.step(Some(Record::Line), b"", out);
        }
        if self.state != State::Body {
            if !self.header.is_empty() {
                if record.is_some() {
                    let continued = self.previous == Some(Record::Piece);
                    let folded = matches!(text.first(), Some(b' ' | b'\t'));
                    if continued || folded {
                        if self.header.len() < self.limits.header_size_limit {
                            if !continued {
                                self.header.push(b'\n');
                            }
                            self.header.extend_from_slice(c_str(text));
                        }
                        self.previous = record;
                        return;
                    }
                }
                self.flush_header(out);
            }
            if record.is_some() {
                let name_len = is_header(text);
                if name_len > 0 {
                    // Normalise the obsolete `Name :` to `Name:`.
                    let rest = &text[name_len..];
                    let colon = rest
                        .iter()
                        .position(|&b| b != b' ' && b != b'\t')
                        .unwrap_or(rest.len());
                    self.header.extend_from_slice(&text[..name_len]);
                    self.header.extend_from_slice(c_str(&rest[colon..]));
                    self.previous = record;
                    return;
                }
            }
            if self.state == State::Primary {
                out(Event::HeaderEnd);
            }
            if record.is_some() {
                if text.is_empty() {
                    self.body_offset = 0;
                    match self.content_type {
                        (ContentType::Message, SubType::Rfc822) => {
                            self.set_state(State::Nested, (ContentType::Text, SubType::Plain));
                        }
                        (ContentType::Multipart, _) => {
                            self.set_state(State::Body, (ContentType::Other, SubType::Other));
                        }
                        _ => self.set_current(State::Body),
                    }
                } else if self.state == State::Primary {
                    // The primary headers ended without their blank line:
                    // Postfix outputs one (not in attachments, so as not to
                    // break signatures).
                    self.body_out(b"", out);
                    self.set_current(State::Body);
                } else {
                    self.set_current(State::Body);
                }
            } else {
                self.set_current(State::Body);
            }
        }
        // Body text, including the line that ended a header block.
        if record.is_some() {
            if self.previous != Some(Record::Piece) && text.len() > 2 && text.starts_with(b"--") {
                self.boundary(&text[2..]);
            }
            self.body_out(text, out);
        }
        self.previous = record;
    }

    fn flush_header(&mut self, out: &mut impl FnMut(Event<'_>)) {
        let kind = header_kind(&self.header);
        if kind.content_type {
            self.parse_content_type();
        }
        let class = match self.state {
            State::Primary => HeaderClass::Primary,
            State::Multipart => HeaderClass::Multipart,
            State::Nested | State::Body => HeaderClass::Nested,
        };
        out(Event::Header {
            class,
            mime: kind.mime,
            text: &self.header,
        });
        self.previous = None;
        self.header.clear();
    }

    /// A line that starts with `--`: is it one of the open boundaries?
    fn boundary(&mut self, after_dashes: &[u8]) {
        let Some(level) = self
            .stack
            .iter()
            .rposition(|b| after_dashes.starts_with(&b.text))
        else {
            return;
        };
        self.stack.truncate(level + 1);
        let Some(boundary) = self.stack.last() else {
            return;
        };
        if after_dashes[boundary.text.len()..].starts_with(b"--") {
            self.stack.pop();
            self.set_state(State::Body, (ContentType::Other, SubType::Other));
        } else {
            let default_type = boundary.default_type;
            self.set_state(State::Multipart, default_type);
        }
    }

    fn body_out(&mut self, text: &[u8], out: &mut impl FnMut(Event<'_>)) {
        out(Event::Body {
            text,
            offset: self.body_offset,
        });
        self.body_offset += text.len() as u64 + 1;
    }

    /// `SET_MIME_STATE`.
    fn set_state(&mut self, state: State, content_type: (ContentType, SubType)) {
        self.content_type = content_type;
        self.set_current(state);
    }

    /// `SET_CURR_STATE`.
    fn set_current(&mut self, state: State) {
        self.state = state;
        if state == State::Body {
            self.body_offset = 0;
        }
    }

    /// `mime_state_content_type`, on the header being flushed.
    fn parse_content_type(&mut self) {
        const SPECIALS: &[u8] = b"()<>@,;:\\\"/[]?=";
        let value = c_str(&self.header["Content-Type:".len().min(self.header.len())..]);
        let mut cursor = 0;
        let Some(tokens) = header_token(value, &mut cursor, 3, SPECIALS, Some(b';')) else {
            return;
        };
        let word = |t: &HeaderToken, w: &str| {
            t.kind == TokenKind::Word && t.value.eq_ignore_ascii_case(w.as_bytes())
        };
        let Some(first) = tokens.first() else {
            return;
        };
        let subtype = match tokens.get(1..3) {
            Some([slash, sub]) if slash.kind == TokenKind::Special(b'/') => Some(sub),
            _ => None,
        };
        if word(first, "text") {
            let plain = subtype.is_some_and(|s| word(s, "plain"));
            self.content_type = (
                ContentType::Text,
                if plain {
                    SubType::Plain
                } else {
                    SubType::Other
                },
            );
        } else if word(first, "message") {
            // Only rfc822 matters here (partial and external-body are
            // treated as bodies, as Postfix does without recursion).
            let rfc822 = subtype.is_some_and(|s| word(s, "rfc822"));
            self.content_type = (
                ContentType::Message,
                if rfc822 {
                    SubType::Rfc822
                } else {
                    SubType::Other
                },
            );
        } else if word(first, "multipart") {
            let digest = subtype.is_some_and(|s| word(s, "digest"));
            let default_type = if digest {
                (ContentType::Message, SubType::Rfc822)
            } else {
                (ContentType::Text, SubType::Plain)
            };
            self.content_type.0 = ContentType::Multipart;
            // Every `boundary=` parameter is pushed, whatever its type, as
            // Postfix does (several hide nothing from it).
            while let Some(parameter) = header_token(value, &mut cursor, 3, SPECIALS, Some(b';')) {
                if let [name, equals, boundary] = parameter.as_slice()
                    && word(name, "boundary")
                    && equals.kind == TokenKind::Special(b'=')
                {
                    if self.stack.len() > self.limits.mime_nesting_limit {
                        self.nesting_exceeded = true;
                    } else {
                        let mut text = boundary.value.clone();
                        text.truncate(self.limits.mime_boundary_length_limit);
                        self.stack.push(Boundary { default_type, text });
                    }
                }
            }
        } else {
            self.content_type.0 = ContentType::Other;
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TokenKind {
    Word,
    Quoted,
    Special(u8),
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct HeaderToken {
    kind: TokenKind,
    value: Vec<u8>,
}

/// Postfix's `header_token`: RFC 822 tokens of `text` from `cursor`, up to
/// `max` kept, stopping after `terminator`; `None` when the text ran out
/// before any token.
fn header_token(
    text: &[u8],
    cursor: &mut usize,
    max: usize,
    specials: &[u8],
    terminator: Option<u8>,
) -> Option<Vec<HeaderToken>> {
    let lwsp = |c: u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r');
    let special = |c: u8| specials.contains(&c) || c.is_ascii_control();
    let mut tokens: Vec<HeaderToken> = Vec::new();
    let mut at_end = true;
    let mut p = *cursor;
    while let Some(&ch) = text.get(p) {
        if terminator.is_none() && tokens.len() >= max {
            at_end = false;
            break;
        }
        p += 1;
        if lwsp(ch) {
            continue;
        }
        if Some(ch) == terminator {
            at_end = false;
            break;
        }
        let keep = tokens.len() < max;
        if ch == b'(' {
            let mut level = 1;
            while let Some(&c) = text.get(p) {
                p += 1;
                match c {
                    b'(' => level += 1,
                    b')' => {
                        level -= 1;
                        if level == 0 {
                            break;
                        }
                    }
                    b'\\' => {
                        if text.get(p).is_none() {
                            break;
                        }
                        p += 1;
                    }
                    _ => {}
                }
            }
            continue;
        }
        if ch == b'"' {
            let mut value = Vec::new();
            while let Some(&c) = text.get(p) {
                p += 1;
                match c {
                    b'"' => break,
                    b'\n' => {
                        // Unfold: drop the white space before the line break.
                        while value.last().is_some_and(|&c| lwsp(c)) {
                            value.pop();
                        }
                    }
                    b'\\' => {
                        let Some(&escaped) = text.get(p) else { break };
                        p += 1;
                        value.push(escaped);
                    }
                    _ => value.push(c),
                }
            }
            if keep {
                tokens.push(HeaderToken {
                    kind: TokenKind::Quoted,
                    value,
                });
            }
            continue;
        }
        if special(ch) {
            if keep {
                tokens.push(HeaderToken {
                    kind: TokenKind::Special(ch),
                    value: vec![ch],
                });
            }
            continue;
        }
        let start = p - 1;
        while text.get(p).is_some_and(|&c| !lwsp(c) && !special(c)) {
            p += 1;
        }
        if keep {
            tokens.push(HeaderToken {
                kind: TokenKind::Word,
                value: text[start..p].to_vec(),
            });
        }
    }
    *cursor = p;
    if tokens.is_empty() && at_end {
        return None;
    }
    Some(tokens)
}

/// Splits raw message bytes into records as smtpd(8) does: a line ends at
/// LF, a CR before it goes, and with a `line_length_limit` a line that does
/// not fit (its LF counted) is cut into pieces of that many bytes.
#[derive(Debug, Default)]
pub struct Lines {
    limit: Option<usize>,
    pending: Vec<u8>,
}

impl Lines {
    /// A splitter for `line_length_limit` (`None`: whole lines).
    pub fn new(limit: Option<usize>) -> Lines {
        Lines {
            limit: limit.map(|l| l.max(1)),
            pending: Vec::new(),
        }
    }

    /// Feeds bytes; calls `out` for every complete record.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut impl FnMut(Record, &[u8])) {
        while !bytes.is_empty() {
            let room = self.limit.map_or(usize::MAX, |l| l - self.pending.len());
            let take = bytes.len().min(room);
            match bytes[..take].iter().position(|&b| b == b'\n') {
                Some(i) => {
                    self.pending.extend_from_slice(&bytes[..i]);
                    if self.pending.last() == Some(&b'\r') {
                        self.pending.pop();
                    }
                    out(Record::Line, &self.pending);
                    self.pending.clear();
                    bytes = &bytes[i + 1..];
                }
                None => {
                    self.pending.extend_from_slice(&bytes[..take]);
                    bytes = &bytes[take..];
                    if self.limit.is_some_and(|l| self.pending.len() >= l) {
                        out(Record::Piece, &self.pending);
                        self.pending.clear();
                    }
                }
            }
        }
    }

    /// The end of input: a last line without a line end.
    pub fn finish(&mut self, out: &mut impl FnMut(Record, &[u8])) {
        if !self.pending.is_empty() {
            out(Record::Line, &self.pending);
            self.pending.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a message through [`Lines`] and [`MimeState`] and describes
    /// the events: `H class mime text`, `B offset text`, `END`.
    fn events(raw: &str, limits: Limits) -> Vec<String> {
        let mut log = Vec::new();
        let mut mime = MimeState::new(limits);
        let record = |log: &mut Vec<String>, e: Event<'_>| {
            log.push(match e {
                Event::Header { class, mime, text } => format!(
                    "H {class:?}{} {}",
                    if mime { " mime" } else { "" },
                    String::from_utf8_lossy(text)
                ),
                Event::HeaderEnd => "END".to_owned(),
                Event::Body { text, offset } => {
                    format!("B {offset} {}", String::from_utf8_lossy(text))
                }
            });
        };
        let mut lines = Lines::new(limits.line_length_limit);
        let mut records = Vec::new();
        lines.feed(raw.as_bytes(), &mut |r, t| records.push((r, t.to_vec())));
        lines.finish(&mut |r, t| records.push((r, t.to_vec())));
        for (r, t) in records {
            mime.update(r, &t, &mut |e| record(&mut log, e));
        }
        mime.end(&mut |e| record(&mut log, e));
        log
    }

    #[test]
    fn folded_headers_keep_their_newlines_and_white_space() {
        assert_eq!(
            events(
                "Subject : hello\r\n  world\r\n\tagain\r\nX-A:no-space\r\n\r\nbody\r\n",
                Limits::default()
            ),
            [
                "H Primary Subject: hello\n  world\n\tagain",
                "H Primary X-A:no-space",
                "END",
                "B 0 ",
                "B 1 body"
            ]
        );
    }

    #[test]
    fn multipart_parts_and_attached_messages() {
        let raw = "MIME-Version: 1.0\n\
            Content-Type: multipart/mixed; boundary=\"b1\"\n\
            Subject: s\n\
            \n\
            preamble\n\
            --b1\n\
            Content-Type: text/plain\n\
            X-Part: p\n\
            \n\
            text\n\
            --b1x trailing cruft\n\
            Content-Type: message/rfc822\n\
            \n\
            Subject: inner\n\
            Content-Type: text/plain\n\
            \n\
            inner body\n\
            --b1--\n\
            epilogue\n";
        assert_eq!(
            events(raw, Limits::default()),
            [
                "H Primary mime MIME-Version: 1.0",
                "H Primary mime Content-Type: multipart/mixed; boundary=\"b1\"",
                "H Primary Subject: s",
                "END",
                "B 0 ",
                "B 1 preamble",
                "B 10 --b1",
                "H Multipart mime Content-Type: text/plain",
                "H Multipart X-Part: p",
                "B 0 ",
                "B 1 text",
                "B 6 --b1x trailing cruft",
                "H Multipart mime Content-Type: message/rfc822",
                "B 0 ",
                "H Nested Subject: inner",
                "H Nested mime Content-Type: text/plain",
                "B 0 ",
                "B 1 inner body",
                "B 0 --b1--",
                "B 7 epilogue",
            ]
        );
    }

    #[test]
    fn a_header_block_without_its_blank_line_gets_one() {
        assert_eq!(
            events("Subject: x\nnot a header\nmore\n", Limits::default()),
            [
                "H Primary Subject: x",
                "END",
                "B 0 ",
                "B 0 not a header",
                "B 13 more"
            ]
        );
    }

    #[test]
    fn long_lines_become_pieces() {
        let limits = Limits {
            line_length_limit: Some(16),
            ..Limits::default()
        };
        assert_eq!(
            events(
                "Subject: abcdefghijklmnop\n  d\n\n123456789012345678901\n1234567890123456\r\n",
                limits
            ),
            [
                "H Primary Subject: abcdefghijklmnop\n  d",
                "END",
                "B 0 ",
                "B 1 1234567890123456",
                "B 18 78901",
                "B 24 1234567890123456",
                "B 41 "
            ]
        );
    }

    #[test]
    fn header_size_limit_drops_continuation_lines() {
        let limits = Limits {
            header_size_limit: 12,
            ..Limits::default()
        };
        assert_eq!(
            events("Subject: 12345\n 6\n 7\nTo: x\n", limits),
            ["H Primary Subject: 12345", "H Primary To: x", "END"]
        );
    }

    #[test]
    fn is_header_like_postfix() {
        for (text, len) in [
            ("Subject: x", 7),
            ("Subject : x", 7),
            ("Subject:", 7),
            ("X-(odd)!: y", 8),
            (": x", 0),
            (" Subject: x", 0),
            ("Sub ject: x", 0),
            ("From x", 0),
            ("Sübject: x", 0),
        ] {
            assert_eq!(is_header(text.as_bytes()), len, "{text}");
        }
    }

    #[test]
    fn header_tokens() {
        let mut cursor = 0;
        let text = b" multipart/mixed (comment \\) here); boundary = \"a\\\"b\"; x";
        let tokens = header_token(text, &mut cursor, 3, b"()<>@,;:\\\"/[]?=", Some(b';')).unwrap();
        assert_eq!(
            tokens
                .iter()
                .map(|t| t.value.as_slice())
                .collect::<Vec<_>>(),
            [&b"multipart"[..], b"/", b"mixed"]
        );
        let tokens = header_token(text, &mut cursor, 3, b"()<>@,;:\\\"/[]?=", Some(b';')).unwrap();
        assert_eq!(tokens[2].value, b"a\"b");
        assert_eq!(tokens[2].kind, TokenKind::Quoted);
        let tokens = header_token(text, &mut cursor, 3, b"()<>@,;:\\\"/[]?=", Some(b';')).unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!(header_token(text, &mut cursor, 3, b"", Some(b';')), None);
    }
}
