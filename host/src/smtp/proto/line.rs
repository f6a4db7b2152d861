//! Command-line framing: find one line in a buffer, never buffering more than
//! [`MAX_LINE_BYTES`].

/// The longest command line accepted, terminator included. RFC 5321 §4.5.3.1.4
/// allows 512 octets plus what extensions add (SMTPUTF8 addresses, DSN
/// parameters); Postfix's `line_length_limit` is 2048. A longer line gets
/// `500 5.5.2 Error: line too long` and is discarded up to its end.
pub const MAX_LINE_BYTES: usize = 2048;

/// What the front of a buffer holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Line {
    /// A whole line: `buf[..len]` is its text (without CR LF), `consumed` bytes include the terminator.
    Complete {
        /// Length of the text.
        len: usize,
        /// Bytes to drop from the buffer, terminator included.
        consumed: usize,
        /// The line ended in LF without CR.
        bare_lf: bool,
    },
    /// No line end yet, and the line is still short enough to wait for.
    Incomplete,
    /// The line is too long: drop `consumed` bytes; if `ended` is false, keep
    /// discarding until the next LF.
    TooLong {
        /// Bytes to drop from the buffer.
        consumed: usize,
        /// Whether the dropped bytes included the line's end.
        ended: bool,
    },
}

/// Frames the first line of `buf`.
pub fn next_line(buf: &[u8]) -> Line {
    match buf.iter().position(|&b| b == b'\n') {
        Some(lf) if lf + 1 > MAX_LINE_BYTES => Line::TooLong {
            consumed: lf + 1,
            ended: true,
        },
        Some(lf) => {
            let crlf = lf > 0 && buf[lf - 1] == b'\r';
            Line::Complete {
                len: if crlf { lf - 1 } else { lf },
                consumed: lf + 1,
                bare_lf: !crlf,
            }
        }
        None if buf.len() >= MAX_LINE_BYTES => Line::TooLong {
            consumed: buf.len(),
            ended: false,
        },
        None => Line::Incomplete,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing() {
        let cases: &[(&[u8], Line)] = &[
            (
                b"NOOP\r\nQUIT\r\n",
                Line::Complete {
                    len: 4,
                    consumed: 6,
                    bare_lf: false,
                },
            ),
            (
                b"NOOP\nQUIT",
                Line::Complete {
                    len: 4,
                    consumed: 5,
                    bare_lf: true,
                },
            ),
            (b"NOO", Line::Incomplete),
            (
                b"\r\n",
                Line::Complete {
                    len: 0,
                    consumed: 2,
                    bare_lf: false,
                },
            ),
            (b"NOOP\r", Line::Incomplete),
        ];
        for (input, want) in cases {
            assert_eq!(
                next_line(input),
                *want,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn long_lines_are_capped() {
        let long = vec![b'a'; MAX_LINE_BYTES + 10];
        assert_eq!(
            next_line(&long),
            Line::TooLong {
                consumed: MAX_LINE_BYTES + 10,
                ended: false
            }
        );
        let mut ended = vec![b'a'; MAX_LINE_BYTES];
        ended.extend_from_slice(b"\r\nNOOP\r\n");
        assert_eq!(
            next_line(&ended),
            Line::TooLong {
                consumed: MAX_LINE_BYTES + 2,
                ended: true
            }
        );
    }
}
