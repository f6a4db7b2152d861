//! Message content: DATA (dot-stuffed, ended by `<CRLF>.<CRLF>`) and BDAT chunks.
//!
//! # Smuggling
//!
//! Only `<CR><LF>.<CR><LF>` ends DATA — the dot line must itself end in CR LF and
//! so must the line before it (or the DATA command). `<LF>.<LF>`, `<CR><LF>.<LF>`,
//! `<LF>.<CR><LF>` and `<CR>.<CR>` never end a message, so one message can never
//! be read as two. What a bare LF does is `smtpd_forbid_bare_newline`'s choice,
//! as in Postfix 3.9:
//!
//! - `normalize` (the default): a bare LF ends a line as CR LF would; the stored
//!   message has CR LF everywhere. A dot line ended by a bare LF is content: it is
//!   unstuffed to an empty line.
//! - `reject`: the first bare LF stops the receiver with [`DataStatus::BareLf`];
//!   the session answers 521 and hangs up.
//!
//! A bare CR is ordinary content. Stored content is always canonical: CR LF line
//! ends, no dot-stuffing.
//!
//! Output is capped: past `limit` bytes the receiver keeps parsing (to find the
//! end) but stops storing, and reports the overflow.

/// What a receiver reports after a feed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataStatus {
    /// All input was consumed; the content goes on.
    NeedMore,
    /// The end marker was found after `consumed` bytes of this feed.
    Done {
        /// Bytes of this feed that belong to the content and its end marker.
        consumed: usize,
    },
    /// A bare LF arrived while bare LFs are refused.
    BareLf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line.
    LineStart,
    /// A line that so far is just ".".
    Dot,
    /// A line that so far is ".\r".
    DotCr,
    /// Inside a line.
    Text,
    /// Inside a line, after a CR that may begin the line end.
    TextCr,
}

/// The DATA receiver (RFC 5321 §4.1.1.4, §4.5.2).
#[derive(Debug)]
pub struct DataReceiver {
    state: State,
    /// Whether the line before the current one ended in CR LF.
    prev_crlf: bool,
    reject_bare_lf: bool,
    limit: usize,
    /// Content bytes seen, stored or not.
    seen: u64,
    bare_lf: bool,
}

impl DataReceiver {
    /// A receiver storing at most `limit` bytes; `reject_bare_lf` selects the
    /// `reject` behaviour.
    pub fn new(limit: usize, reject_bare_lf: bool) -> Self {
        DataReceiver {
            state: State::LineStart,
            prev_crlf: true,
            reject_bare_lf,
            limit,
            seen: 0,
            bare_lf: false,
        }
    }

    /// Whether more content arrived than `limit` allowed to store.
    pub fn overflowed(&self) -> bool {
        self.seen > self.limit as u64
    }

    /// Whether any line ended in a bare LF (normalised).
    pub fn saw_bare_lf(&self) -> bool {
        self.bare_lf
    }

    fn emit(&mut self, out: &mut Vec<u8>, bytes: &[u8]) {
        self.seen += bytes.len() as u64;
        let room = self.limit.saturating_sub(out.len());
        out.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    /// Feeds `input`; stored content is appended to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) -> DataStatus {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            i += 1;
            match self.state {
                State::LineStart => match b {
                    b'.' => self.state = State::Dot,
                    b'\r' => self.state = State::TextCr,
                    b'\n' => {
                        if let Some(s) = self.bare_newline(out) {
                            return s;
                        }
                    }
                    // Text: the Text state copies the run.
                    _ => {
                        i -= 1;
                        self.state = State::Text;
                    }
                },
                State::Dot => match b {
                    b'\r' => self.state = State::DotCr,
                    // "." then bare LF: content (an empty line once unstuffed), never the end.
                    b'\n' => {
                        if let Some(s) = self.bare_newline(out) {
                            return s;
                        }
                    }
                    // Dot-stuffing: the first dot of a line is dropped.
                    _ => {
                        i -= 1;
                        self.state = State::Text;
                    }
                },
                State::DotCr => match b {
                    b'\n' if self.prev_crlf => return DataStatus::Done { consumed: i },
                    b'\n' => {
                        self.emit(out, b"\r\n");
                        self.prev_crlf = true;
                        self.state = State::LineStart;
                    }
                    _ => {
                        self.emit(out, b"\r");
                        i -= 1;
                        self.state = State::Text;
                    }
                },
                State::Text => match b {
                    b'\r' => self.state = State::TextCr,
                    b'\n' => {
                        if let Some(s) = self.bare_newline(out) {
                            return s;
                        }
                    }
                    // Copy the run up to the next CR or LF in one go.
                    _ => {
                        let end = input[i..]
                            .iter()
                            .position(|&c| c == b'\r' || c == b'\n')
                            .map_or(input.len(), |p| i + p);
                        self.emit(out, &input[i - 1..end]);
                        i = end;
                    }
                },
                State::TextCr => match b {
                    b'\n' => {
                        self.emit(out, b"\r\n");
                        self.prev_crlf = true;
                        self.state = State::LineStart;
                    }
                    // A bare CR is content.
                    b'\r' => self.emit(out, b"\r"),
                    _ => {
                        self.emit(out, b"\r");
                        i -= 1;
                        self.state = State::Text;
                    }
                },
            }
        }
        DataStatus::NeedMore
    }

    /// A line ended in LF alone.
    fn bare_newline(&mut self, out: &mut Vec<u8>) -> Option<DataStatus> {
        if self.reject_bare_lf {
            return Some(DataStatus::BareLf);
        }
        self.bare_lf = true;
        self.emit(out, b"\r\n");
        self.prev_crlf = false;
        self.state = State::LineStart;
        None
    }
}

/// Canonicalises BDAT content (RFC 3030): no dot-stuffing, but a bare LF gets
/// the same treatment as in DATA so that stored content is always CR LF.
#[derive(Debug, Default)]
pub struct BdatNormalizer {
    /// The previous chunk ended in CR.
    pending_cr: bool,
    reject_bare_lf: bool,
    bare_lf: bool,
}

impl BdatNormalizer {
    /// A normaliser; `reject_bare_lf` selects the `reject` behaviour.
    pub fn new(reject_bare_lf: bool) -> Self {
        BdatNormalizer {
            reject_bare_lf,
            ..Default::default()
        }
    }

    /// Whether any bare LF was normalised.
    pub fn saw_bare_lf(&self) -> bool {
        self.bare_lf
    }

    /// Appends `chunk` to `out` (up to `limit` bytes in `out`); returns false on
    /// a bare LF that must be refused.
    pub fn push(&mut self, chunk: &[u8], out: &mut Vec<u8>, limit: usize) -> bool {
        let put = |out: &mut Vec<u8>, bytes: &[u8]| {
            let room = limit.saturating_sub(out.len());
            out.extend_from_slice(&bytes[..bytes.len().min(room)]);
        };
        let mut start = 0;
        for (i, &b) in chunk.iter().enumerate() {
            if b == b'\n' {
                let after_cr = if i == 0 {
                    self.pending_cr
                } else {
                    chunk[i - 1] == b'\r'
                };
                if !after_cr {
                    if self.reject_bare_lf {
                        return false;
                    }
                    self.bare_lf = true;
                    put(out, &chunk[start..i]);
                    put(out, b"\r");
                    start = i;
                }
            }
        }
        put(out, &chunk[start..]);
        if let Some(&last) = chunk.last() {
            self.pending_cr = last == b'\r';
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `input` one split at a time at every position, so state carried
    /// across feeds is exercised; all splits must agree.
    fn receive(input: &[u8]) -> (Vec<u8>, Option<usize>) {
        let whole = receive_split(input, input.len());
        for split in 0..input.len() {
            assert_eq!(receive_split(input, split), whole, "split at {split}");
        }
        whole
    }

    fn receive_split(input: &[u8], split: usize) -> (Vec<u8>, Option<usize>) {
        let mut rx = DataReceiver::new(1 << 20, false);
        let mut out = Vec::new();
        if let DataStatus::Done { consumed } = rx.feed(&input[..split], &mut out) {
            return (out, Some(consumed));
        }
        match rx.feed(&input[split..], &mut out) {
            DataStatus::Done { consumed } => (out, Some(split + consumed)),
            _ => (out, None),
        }
    }

    #[test]
    fn ends_only_at_crlf_dot_crlf() {
        // (input, stored content, bytes consumed when the end is found)
        let cases: &[(&[u8], &[u8], Option<usize>)] = &[
            (
                b"Subject: x\r\n\r\nbody\r\n.\r\n",
                b"Subject: x\r\n\r\nbody\r\n",
                Some(23),
            ),
            (b".\r\n", b"", Some(3)),
            (b"a\r\n.\r\nMAIL FROM:<x>\r\n", b"a\r\n", Some(6)),
            // Dot-stuffing.
            (b"..hidden\r\n...\r\n.\r\n", b".hidden\r\n..\r\n", Some(18)),
            // Smuggling attempts: none of these ends the message.
            (
                b"a\n.\r\nMAIL FROM:<evil>\r\n",
                b"a\r\n\r\nMAIL FROM:<evil>\r\n",
                None,
            ),
            (
                b"a\r\n.\nMAIL FROM:<evil>\r\n",
                b"a\r\n\r\nMAIL FROM:<evil>\r\n",
                None,
            ),
            (
                b"a\n.\nMAIL FROM:<evil>\r\n",
                b"a\r\n\r\nMAIL FROM:<evil>\r\n",
                None,
            ),
            (
                b"a\r.\r\nMAIL FROM:<evil>\r\n",
                b"a\r.\r\nMAIL FROM:<evil>\r\n",
                None,
            ),
            (b"a\r\n.\rMAIL\r\n", b"a\r\n\rMAIL\r\n", None),
            // ... and the real end after a smuggling attempt still works.
            (b"a\n.\nb\r\n.\r\n", b"a\r\n\r\nb\r\n", Some(10)),
            // Bare LF lines are normalised.
            (b"x\ny\r\n.\r\n", b"x\r\ny\r\n", Some(8)),
            // A bare CR is content.
            (b"x\ry\r\n.\r\n", b"x\ry\r\n", Some(8)),
            (b"x\r\r\n.\r\n", b"x\r\r\n", Some(7)),
        ];
        for (input, content, end) in cases {
            let (out, consumed) = receive(input);
            assert_eq!(
                (String::from_utf8_lossy(&out), consumed),
                (String::from_utf8_lossy(content), *end),
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn reject_mode_stops_at_bare_lf() {
        for input in [&b"a\nb\r\n.\r\n"[..], b"a\r\n.\n", b"\n"] {
            let mut rx = DataReceiver::new(100, true);
            assert_eq!(rx.feed(input, &mut Vec::new()), DataStatus::BareLf);
        }
        let mut rx = DataReceiver::new(100, true);
        assert_eq!(
            rx.feed(b"a\r\n.\r\n", &mut Vec::new()),
            DataStatus::Done { consumed: 6 }
        );
    }

    #[test]
    fn storage_is_capped() {
        let mut rx = DataReceiver::new(10, false);
        let mut out = Vec::new();
        let mut input = vec![b'x'; 100];
        input.extend_from_slice(b"\r\n.\r\n");
        assert_eq!(
            rx.feed(&input, &mut out),
            DataStatus::Done { consumed: 105 }
        );
        assert_eq!(out.len(), 10);
        assert!(rx.overflowed());
    }

    #[test]
    fn bdat_normalises_across_chunks() {
        let mut n = BdatNormalizer::new(false);
        let mut out = Vec::new();
        assert!(n.push(b"a\r", &mut out, 100));
        assert!(n.push(b"\nb\nc", &mut out, 100));
        assert!(n.push(b"\n", &mut out, 100));
        assert_eq!(out, b"a\r\nb\r\nc\r\n");
        assert!(n.saw_bare_lf());
        let mut strict = BdatNormalizer::new(true);
        assert!(!strict.push(b"a\nb", &mut Vec::new(), 100));
    }
}
