//! [`Message`]: the message at the data and deliver stages.
//!
//! In: on Wasm, the host's borrowed `message` resource, valid for one hook
//! call; on native targets, raw RFC 5322 bytes ([`Message::from_bytes`]).
//! Out: headers, size, body bytes and MIME structure. The body crosses into
//! the plugin only when asked for; headers and MIME parts are fetched once per
//! hook call and kept.

use core::cell::OnceCell;
use core::fmt;

use crate::bindings::postern::mta::message::Message as HostMessage;
use crate::prelude::*;
use crate::{Header, MimePart};

/// How many body bytes [`Message::body`] asks the host for at a time.
const BODY_CHUNK_BYTES: u32 = 64 * 1024;

/// The message being filtered.
///
/// ```
/// # use postern_plugin_sdk::Message;
/// let message = Message::from_bytes("Subject: hi\r\nTo: a@example.org\r\n\r\nHello\r\n");
/// assert_eq!(message.header("subject"), Some("hi"));
/// assert_eq!(message.body(), b"Hello\r\n");
/// assert_eq!(message.mime_parts()[0].content_type, "text/plain");
/// ```
pub struct Message<'a> {
    source: Source<'a>,
    headers: OnceCell<Vec<Header>>,
    mime_parts: OnceCell<Vec<MimePart>>,
}

enum Source<'a> {
    /// The host's message, borrowed for the duration of the hook call.
    Host(&'a HostMessage),
    /// A message held in memory, for tests.
    #[cfg(not(target_arch = "wasm32"))]
    Bytes { raw: Vec<u8>, body_offset: usize },
}

impl<'a> Message<'a> {
    pub(crate) fn from_host(message: &'a HostMessage) -> Message<'a> {
        Message {
            source: Source::Host(message),
            headers: OnceCell::new(),
            mime_parts: OnceCell::new(),
        }
    }

    /// A message from its raw RFC 5322 form (header section, blank line,
    /// body; CR LF or bare LF line ends), for tests. Native targets only.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_bytes(raw: impl Into<Vec<u8>>) -> Message<'static> {
        let raw = raw.into();
        let body_offset = native::body_offset(&raw);
        Message {
            source: Source::Bytes { raw, body_offset },
            headers: OnceCell::new(),
            mime_parts: OnceCell::new(),
        }
    }

    /// The header section, in order; values unfolded, without the leading
    /// space.
    pub fn headers(&self) -> &[Header] {
        self.headers.get_or_init(|| match &self.source {
            Source::Host(message) => message.headers(),
            #[cfg(not(target_arch = "wasm32"))]
            Source::Bytes { raw, body_offset } => native::parse_headers(&raw[..*body_offset]),
        })
    }

    /// The header section as received: the lines as they came (folded lines
    /// kept), CR LF line ends (as the host holds the message), and the empty
    /// line that ends the section when there is one. [`headers`](Message::headers)
    /// is the parsed form; this is for filters that must match headers
    /// exactly as Postfix's header_checks do.
    pub fn raw_headers(&self) -> Vec<u8> {
        match &self.source {
            Source::Host(message) => message.raw_headers(),
            #[cfg(not(target_arch = "wasm32"))]
            Source::Bytes { raw, body_offset } => raw[..*body_offset].to_vec(),
        }
    }

    /// The value of the first header called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let header = self
            .headers()
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))?;
        Some(&header.value)
    }

    /// The values of every header called `name` (case-insensitive), in order.
    pub fn header_values<'s>(&'s self, name: &'s str) -> impl Iterator<Item = &'s str> + 's {
        self.headers()
            .iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }

    /// The whole message size in bytes (headers and body).
    pub fn size(&self) -> u64 {
        match &self.source {
            Source::Host(message) => message.size(),
            #[cfg(not(target_arch = "wasm32"))]
            Source::Bytes { raw, .. } => raw.len() as u64,
        }
    }

    /// Up to `len` bytes of the body (after the blank line), from `offset`:
    /// fewer at the end, none past it.
    pub fn read_body(&self, offset: u64, len: u32) -> Vec<u8> {
        match &self.source {
            Source::Host(message) => message.read_body(offset, len),
            #[cfg(not(target_arch = "wasm32"))]
            Source::Bytes { raw, body_offset } => {
                let body = &raw[*body_offset..];
                let start = usize::try_from(offset)
                    .unwrap_or(usize::MAX)
                    .min(body.len());
                let end = start.saturating_add(len as usize).min(body.len());
                body[start..end].to_vec()
            }
        }
    }

    /// The whole body, read in chunks. Costs a copy of the body into the
    /// plugin's memory: prefer [`read_body`](Message::read_body) to look at a
    /// part of a large message.
    pub fn body(&self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let chunk = self.read_body(body.len() as u64, BODY_CHUNK_BYTES);
            body.extend_from_slice(&chunk);
            // A short read is the end: the host never returns more than asked.
            if chunk.len() < BODY_CHUNK_BYTES as usize {
                return body;
            }
        }
    }

    /// The MIME structure: every part with its headers and decoded size, in
    /// order; depth 0 is the message itself, a multipart's children are one
    /// deeper, and so are the parts of an attached message.
    pub fn mime_parts(&self) -> &[MimePart] {
        self.mime_parts.get_or_init(|| match &self.source {
            Source::Host(message) => message.mime_parts(),
            #[cfg(not(target_arch = "wasm32"))]
            Source::Bytes { raw, .. } => native::mime_parts(raw),
        })
    }
}

impl fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            Source::Host(_) => "host",
            #[cfg(not(target_arch = "wasm32"))]
            Source::Bytes { .. } => "bytes",
        };
        f.debug_struct("Message")
            .field("source", &source)
            .finish_non_exhaustive()
    }
}

/// The mock side: what the host does with a message, done in memory.
#[cfg(not(target_arch = "wasm32"))]
mod native {
    use mail_parser::{MessageParser, MimeHeaders, PartType};

    use crate::{Header, MimePart};

    /// How deep MIME parts are followed (mail-parser bounds it too).
    const MAX_MIME_DEPTH: u32 = 50;

    /// Where the body starts: after the first empty line, or at the end if
    /// there is none.
    pub(super) fn body_offset(raw: &[u8]) -> usize {
        let mut start = 0;
        while start < raw.len() {
            let end = raw[start..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(raw.len(), |i| start + i + 1);
            let line = &raw[start..end];
            if line == b"\n" || line == b"\r\n" {
                return end;
            }
            start = end;
        }
        raw.len()
    }

    /// Splits a header section into fields, unfolding continuation lines
    /// (RFC 5322 §2.2.3: the line break goes, the white space stays).
    /// Lines that are neither a field nor a continuation are skipped.
    pub(super) fn parse_headers(section: &[u8]) -> Vec<Header> {
        let text = String::from_utf8_lossy(section);
        let mut headers: Vec<Header> = Vec::new();
        let mut in_field = false;
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                break;
            }
            if line.starts_with([' ', '\t']) {
                if let (true, Some(last)) = (in_field, headers.last_mut()) {
                    last.value.push_str(line);
                }
                continue;
            }
            in_field = false;
            if let Some((name, value)) = line.split_once(':') {
                let name = name.trim_end();
                if !name.is_empty() && !name.contains([' ', '\t']) {
                    headers.push(Header {
                        name: name.to_owned(),
                        value: value.to_owned(),
                    });
                    in_field = true;
                }
            }
        }
        for header in &mut headers {
            header.value = header.value.trim_matches([' ', '\t']).to_owned();
        }
        headers
    }

    pub(super) fn mime_parts(raw: &[u8]) -> Vec<MimePart> {
        let mut parts = Vec::new();
        if let Some(message) = MessageParser::default().parse(raw) {
            walk(&message, 0, 0, &mut parts);
        }
        parts
    }

    fn walk(message: &mail_parser::Message<'_>, id: u32, depth: u32, parts: &mut Vec<MimePart>) {
        let Some(part) = message.part(id) else { return };
        if depth > MAX_MIME_DEPTH {
            return;
        }
        // The field, not `raw_message()`: part offsets count from its start
        // (the outer message's bytes, unless the nested one was decoded).
        let raw: &[u8] = &message.raw_message;
        let section = raw
            .get(part.offset_header as usize..part.offset_body as usize)
            .unwrap_or_default();
        let default_type = match part.body {
            PartType::Message(_) => "message/rfc822",
            // RFC 2045 §5.2.
            _ => "text/plain",
        };
        let content_type = part.content_type().map_or_else(
            || default_type.to_owned(),
            |ct| match ct.subtype() {
                Some(subtype) => format!("{}/{subtype}", ct.ctype()).to_ascii_lowercase(),
                None => ct.ctype().to_ascii_lowercase(),
            },
        );
        let size = match part.body {
            PartType::Multipart(_) => part.offset_end.saturating_sub(part.offset_body) as usize,
            _ => part.len(),
        };
        parts.push(MimePart {
            headers: parse_headers(section),
            content_type,
            filename: part.attachment_name().map(str::to_owned),
            size: size as u64,
            depth,
        });
        match &part.body {
            PartType::Multipart(children) => {
                for &child in children {
                    walk(message, child, depth + 1, parts);
                }
            }
            PartType::Message(nested) => walk(nested, 0, depth + 1, parts),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(name: &str, value: &str) -> Header {
        Header {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn headers_are_unfolded_and_found_case_insensitively() {
        let m = Message::from_bytes(
            "Received: from a\r\n\tby b\r\nSubject:  Hello\r\n  world \r\nX-Dup: 1\r\nx-dup: 2\r\n\
             not a header\r\n\r\nBody: not a header\r\n",
        );
        assert_eq!(
            m.headers(),
            [
                h("Received", "from a\tby b"),
                h("Subject", "Hello  world"),
                h("X-Dup", "1"),
                h("x-dup", "2")
            ]
        );
        assert_eq!(m.header("SUBJECT"), Some("Hello  world"));
        assert_eq!(m.header("x-dup"), Some("1"));
        assert_eq!(m.header_values("X-DUP").collect::<Vec<_>>(), ["1", "2"]);
        assert_eq!(m.header("Body"), None);
        assert_eq!(m.body(), b"Body: not a header\r\n");
        assert_eq!(
            m.raw_headers(),
            b"Received: from a\r\n\tby b\r\nSubject:  Hello\r\n  world \r\nX-Dup: 1\r\nx-dup: 2\r\n\
              not a header\r\n\r\n"
        );
    }

    #[test]
    fn body_boundaries() {
        for (raw, body) in [
            ("A: 1\r\n\r\nbody", "body"),
            ("A: 1\n\nbody\n", "body\n"),
            ("A: 1\r\n", ""),
            ("\r\nonly body", "only body"),
            ("", ""),
        ] {
            let m = Message::from_bytes(raw);
            assert_eq!(String::from_utf8(m.body()).unwrap(), body, "{raw:?}");
            let headers = [m.raw_headers(), m.body()].concat();
            assert_eq!(
                headers,
                raw.as_bytes(),
                "raw headers and body make the message"
            );
            assert_eq!(m.size(), raw.len() as u64);
        }
    }

    #[test]
    fn read_body_clamps_and_body_reads_in_chunks() {
        let body: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut raw = b"Subject: big\r\n\r\n".to_vec();
        raw.extend_from_slice(&body);
        let m = Message::from_bytes(raw);
        assert_eq!(m.read_body(0, 4), body[..4]);
        assert_eq!(m.read_body(199_998, 10), body[199_998..]);
        assert!(m.read_body(200_000, 10).is_empty());
        assert!(m.read_body(u64::MAX, u32::MAX).is_empty());
        assert_eq!(m.body(), body);
        // Exactly a multiple of the chunk size ends with an empty read.
        let exact = vec![b'x'; 2 * BODY_CHUNK_BYTES as usize];
        let mut raw = b"\r\n".to_vec();
        raw.extend_from_slice(&exact);
        assert_eq!(Message::from_bytes(raw).body(), exact);
    }

    #[test]
    fn mime_parts_of_a_multipart_message() {
        let raw = "From: a@example.org\r\n\
            Subject: report\r\n\
            MIME-Version: 1.0\r\n\
            Content-Type: multipart/mixed; boundary=\"b1\"\r\n\
            \r\n\
            --b1\r\n\
            Content-Type: text/plain; charset=utf-8\r\n\
            \r\n\
            see attached\r\n\
            --b1\r\n\
            Content-Type: application/PDF; name=\"r.pdf\"\r\n\
            Content-Disposition: attachment; filename=\"report.pdf\"\r\n\
            Content-Transfer-Encoding: base64\r\n\
            \r\n\
            JVBERi0xLjQK\r\n\
            --b1\r\n\
            Content-Type: message/rfc822\r\n\
            \r\n\
            Subject: inner\r\n\
            \r\n\
            inner body\r\n\
            --b1--\r\n";
        let m = Message::from_bytes(raw);
        let parts = m.mime_parts();
        let summary: Vec<_> = parts
            .iter()
            .map(|p| (p.content_type.as_str(), p.filename.as_deref(), p.depth))
            .collect();
        assert_eq!(
            summary,
            [
                ("multipart/mixed", None, 0),
                ("text/plain", None, 1),
                ("application/pdf", Some("report.pdf"), 1),
                ("message/rfc822", None, 1),
                ("text/plain", None, 2),
            ]
        );
        assert_eq!(parts[0].headers[1], h("Subject", "report"));
        assert_eq!(parts[2].size, 9, "decoded size of %PDF-1.4\\n");
        assert_eq!(parts[4].headers, [h("Subject", "inner")]);
        assert_eq!(m.header("subject"), Some("report"));
    }

    #[test]
    fn a_plain_message_is_one_part() {
        let m = Message::from_bytes("Subject: x\n\nhello\n");
        let parts = m.mime_parts();
        assert_eq!(parts.len(), 1);
        assert_eq!(
            (
                parts[0].content_type.as_str(),
                parts[0].depth,
                parts[0].size
            ),
            ("text/plain", 0, 6)
        );
        assert!(format!("{m:?}").contains("bytes"));
    }
}
