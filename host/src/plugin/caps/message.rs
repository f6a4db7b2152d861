//! `postern:mta/message`: the message resource, read on demand.
//!
//! The content is shared (`Arc`), never copied into the plugin unless the
//! plugin asks: `headers` crosses the header section, `read-body` a window of
//! the body, `mime-parts` the structure parsed by mail-parser on the host.

use std::sync::{Arc, OnceLock};

use wasmtime::component::Resource;

use super::super::bindings::postern::mta::message::{Host, HostMessage};
use super::super::bindings::postern::mta::types::{Header, MimePart};
use super::super::state::HostState;

/// Most bytes one `read-body` call returns.
pub const MAX_READ_BYTES: u32 = 1 << 20;

/// A message as the host holds it: CR LF line ends, headers then body.
/// Cloning shares it: the steps of one stage's chain get the same message,
/// so its MIME structure is parsed at most once.
#[derive(Debug, Clone)]
pub struct MessageBody(Arc<Parsed>);

/// The shared part of a [`MessageBody`].
#[derive(Debug)]
pub struct Parsed {
    content: Arc<Vec<u8>>,
    body_start: usize,
    parts: OnceLock<Vec<MimePart>>,
}

impl std::ops::Deref for MessageBody {
    type Target = Parsed;

    fn deref(&self) -> &Parsed {
        &self.0
    }
}

impl MessageBody {
    /// Wraps message content.
    pub fn new(content: Arc<Vec<u8>>) -> Self {
        let body_start = crate::policy::headers::body_offset(&content);
        MessageBody(Arc::new(Parsed {
            content,
            body_start,
            parts: OnceLock::new(),
        }))
    }
}

impl Parsed {
    fn headers(&self) -> Vec<Header> {
        crate::policy::headers::parse(&self.content[..self.body_start])
            .into_iter()
            .map(|(name, value)| Header { name, value })
            .collect()
    }

    fn raw_headers(&self) -> Vec<u8> {
        self.content[..self.body_start].to_vec()
    }

    fn read_body(&self, offset: u64, len: u32) -> Vec<u8> {
        let body = &self.content[self.body_start..];
        let start = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(body.len());
        let len = usize::try_from(len.min(MAX_READ_BYTES)).unwrap_or(0);
        body[start..body.len().min(start.saturating_add(len))].to_vec()
    }

    fn mime_parts(&self) -> Vec<MimePart> {
        self.parts.get_or_init(|| mime_parts(&self.content)).clone()
    }
}

/// Every part of the message, depth-first, with headers and decoded size.
fn mime_parts(raw: &[u8]) -> Vec<MimePart> {
    use mail_parser::{MessageParser, MimeHeaders, PartType};
    let mut out = Vec::new();
    let Some(msg) = MessageParser::default().parse(raw) else {
        return out;
    };
    // Depth: a part's depth is one more than its parent's; walk from the root.
    let mut depth = vec![0u32; msg.parts.len()];
    for (i, part) in msg.parts.iter().enumerate() {
        let children: &[u32] = match &part.body {
            PartType::Multipart(c) => c,
            _ => &[],
        };
        let child_depth = depth[i] + 1;
        for &c in children {
            if let Some(d) = depth.get_mut(c as usize) {
                *d = child_depth;
            }
        }
    }
    for (i, part) in msg.parts.iter().enumerate() {
        let headers = part
            .headers
            .iter()
            .map(|h| {
                let start = usize::try_from(h.offset_start).unwrap_or(0);
                let end = usize::try_from(h.offset_end).unwrap_or(0);
                let value = raw
                    .get(start..end)
                    .map(|v| String::from_utf8_lossy(v))
                    .unwrap_or_default();
                Header {
                    name: h.name.as_str().to_owned(),
                    value: crate::policy::headers::unfold(value.trim()),
                }
            })
            .collect();
        let content_type = part.content_type().map_or_else(
            || "text/plain".to_owned(),
            |ct| match ct.subtype() {
                Some(sub) => format!("{}/{}", ct.ctype(), sub).to_ascii_lowercase(),
                None => ct.ctype().to_ascii_lowercase(),
            },
        );
        let size = match &part.body {
            PartType::Text(t) | PartType::Html(t) => t.len(),
            PartType::Binary(b) | PartType::InlineBinary(b) => b.len(),
            PartType::Message(m) => m.raw_message.len(),
            PartType::Multipart(_) => 0,
        };
        out.push(MimePart {
            headers,
            content_type,
            filename: part.attachment_name().map(str::to_owned),
            size: size as u64,
            depth: depth[i],
        });
    }
    out
}

impl Host for HostState {}

impl HostMessage for HostState {
    fn headers(&mut self, this: Resource<MessageBody>) -> wasmtime::Result<Vec<Header>> {
        Ok(self.table.get(&this)?.headers())
    }

    fn raw_headers(&mut self, this: Resource<MessageBody>) -> wasmtime::Result<Vec<u8>> {
        Ok(self.table.get(&this)?.raw_headers())
    }

    fn size(&mut self, this: Resource<MessageBody>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&this)?.content.len() as u64)
    }

    fn read_body(
        &mut self,
        this: Resource<MessageBody>,
        offset: u64,
        len: u32,
    ) -> wasmtime::Result<Vec<u8>> {
        Ok(self.table.get(&this)?.read_body(offset, len))
    }

    fn mime_parts(&mut self, this: Resource<MessageBody>) -> wasmtime::Result<Vec<MimePart>> {
        Ok(self.table.get(&this)?.mime_parts())
    }

    fn drop(&mut self, this: Resource<MessageBody>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_parts() {
        let raw = b"Subject: hi\r\n there\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"virus.exe\"\r\n\r\nMZ\r\n--b--\r\n";
        let m = MessageBody::new(Arc::new(raw.to_vec()));
        let h = m.headers();
        assert_eq!(
            (h[0].name.as_str(), h[0].value.as_str()),
            ("Subject", "hi there")
        );
        assert_eq!(
            m.raw_headers(),
            b"Subject: hi\r\n there\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n"
        );
        assert!(m.read_body(0, 4).starts_with(b"--b"));
        assert!(m.read_body(10_000, 10).is_empty());
        let parts = m.mime_parts();
        assert_eq!(parts.len(), 3, "{parts:?}");
        assert_eq!(parts[0].content_type, "multipart/mixed");
        assert_eq!(parts[2].filename.as_deref(), Some("virus.exe"));
        assert_eq!((parts[1].depth, parts[2].depth), (1, 1));
    }
}
