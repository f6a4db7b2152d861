//! The header section of a message: reading (unfolded) and editing.
//!
//! Content is CR LF throughout (the spool's canonical form). Edits rebuild the
//! header section and leave untouched fields byte for byte; names and values
//! from plugins are sanitised so that no edit can inject a line.

/// Where the body starts: just after the first empty line, or at the end when
/// there is none (a message that is all headers).
pub fn body_offset(content: &[u8]) -> usize {
    if content.starts_with(b"\r\n") {
        return 2;
    }
    content
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(content.len(), |p| p + 4)
}

/// Header fields as raw byte ranges (each including its folded lines and the
/// final CR LF), in order.
fn fields(section: &[u8]) -> Vec<std::ops::Range<usize>> {
    let mut out: Vec<std::ops::Range<usize>> = Vec::new();
    let mut pos = 0;
    while pos < section.len() {
        let end = section[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(section.len(), |p| pos + p + 1);
        let line = &section[pos..end];
        if line == b"\r\n" {
            break;
        }
        match out.last_mut() {
            Some(last) if line.first().is_some_and(|b| *b == b' ' || *b == b'\t') => last.end = end,
            _ => out.push(pos..end),
        }
        pos = end;
    }
    out
}

/// Removes folding (RFC 5322 §2.2.3): CR LF before white space.
pub fn unfold(s: &str) -> String {
    s.replace("\r\n", "").replace('\n', "")
}

/// `(name, value)` for every field; values unfolded, without the leading space.
pub fn parse(section: &[u8]) -> Vec<(String, String)> {
    fields(section)
        .into_iter()
        .filter_map(|r| {
            let field = String::from_utf8_lossy(&section[r]).into_owned();
            let (name, value) = field.split_once(':')?;
            Some((name.trim().to_owned(), unfold(value).trim().to_owned()))
        })
        .collect()
}

/// A change to the header section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    /// Append at the end.
    Add(String, String),
    /// Insert at the top.
    Prepend(String, String),
    /// Replace the first field of the name, or append.
    Replace(String, String),
    /// Remove every field of the name.
    Remove(String),
}

/// A field name: printable ASCII without `:` or white space (RFC 5322 §2.2).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

fn field_bytes(name: &str, value: &str) -> Vec<u8> {
    // A value never carries its own line ends: that would inject fields.
    let value: String = value
        .chars()
        .map(|c| if c == '\r' || c == '\n' { ' ' } else { c })
        .collect();
    format!("{name}: {}\r\n", value.trim()).into_bytes()
}

fn field_name_is(field: &[u8], name: &str) -> bool {
    field.iter().position(|&b| b == b':').is_some_and(|c| {
        field[..c]
            .trim_ascii()
            .eq_ignore_ascii_case(name.as_bytes())
    })
}

/// Applies `edits` in order to the header section of `content`. Edits with an
/// invalid field name are skipped (and reported in the result).
pub fn apply(content: &mut Vec<u8>, edits: &[HeaderEdit]) -> Vec<String> {
    let mut skipped = Vec::new();
    if edits.is_empty() {
        return skipped;
    }
    let body = body_offset(content);
    let section = content[..body].to_vec();
    let mut out_fields: Vec<Vec<u8>> = fields(&section)
        .into_iter()
        .map(|r| section[r].to_vec())
        .collect();
    for edit in edits {
        let (HeaderEdit::Add(n, _)
        | HeaderEdit::Prepend(n, _)
        | HeaderEdit::Replace(n, _)
        | HeaderEdit::Remove(n)) = edit;
        if !valid_name(n) {
            skipped.push(n.clone());
            continue;
        }
        let is = |f: &Vec<u8>| field_name_is(f, n);
        match edit {
            HeaderEdit::Add(n, v) => out_fields.push(field_bytes(n, v)),
            HeaderEdit::Prepend(n, v) => out_fields.insert(0, field_bytes(n, v)),
            HeaderEdit::Replace(n, v) => match out_fields.iter().position(is) {
                Some(i) => out_fields[i] = field_bytes(n, v),
                None => out_fields.push(field_bytes(n, v)),
            },
            HeaderEdit::Remove(_) => out_fields.retain(|f| !is(f)),
        }
    }
    let mut rebuilt: Vec<u8> = out_fields.concat();
    rebuilt.extend_from_slice(b"\r\n");
    rebuilt.extend_from_slice(&content[body.min(content.len())..]);
    *content = rebuilt;
    skipped
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"Received: from x\r\n\tby y\r\nSubject: Hello\r\n world\r\nX-Spam: yes\r\nx-spam: again\r\n\r\nbody\r\n";

    #[test]
    fn parse_unfolds() {
        let h = parse(&MSG[..body_offset(MSG)]);
        assert_eq!(h[0], ("Received".into(), "from x\tby y".into()));
        assert_eq!(h[1], ("Subject".into(), "Hello world".into()));
        assert_eq!(h.len(), 4);
        assert_eq!(&MSG[body_offset(MSG)..], b"body\r\n");
        assert_eq!(body_offset(b"\r\nbody"), 2);
        assert_eq!(body_offset(b"A: b\r\n"), 6);
    }

    #[test]
    fn edits_keep_other_fields_byte_for_byte() {
        let mut m = MSG.to_vec();
        let skipped = apply(
            &mut m,
            &[
                HeaderEdit::Replace("subject".into(), "[TAG] Hello world".into()),
                HeaderEdit::Remove("X-Spam".into()),
                HeaderEdit::Add("X-Checked".into(), "by postern\r\nBcc: evil@x".into()),
                HeaderEdit::Prepend("X-First".into(), "1".into()),
                HeaderEdit::Add("Bad Name".into(), "x".into()),
            ],
        );
        assert_eq!(skipped, ["Bad Name"]);
        assert_eq!(
            String::from_utf8_lossy(&m),
            "X-First: 1\r\nReceived: from x\r\n\tby y\r\nsubject: [TAG] Hello world\r\nX-Checked: by postern  Bcc: evil@x\r\n\r\nbody\r\n"
        );
    }
}
