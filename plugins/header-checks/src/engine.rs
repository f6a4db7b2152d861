//! Header and body checks over one message, as cleanup(8) runs them.
//!
//! In: the four tables ([`Checks`]) and the message's bytes, pushed in
//! chunks ([`Scan::feed`]). Out: a [`Report`]: every rule that fired, in
//! order, with its [`Action`], the line it matched and where that line is.
//!
//! Dispatch is cleanup's (`cleanup_header_callback`, `cleanup_body_callback`):
//! - a MIME header (see [`crate::mime`]) anywhere goes to
//!   `mime_header_checks`; other headers of the primary section to
//!   `header_checks`, of a multipart part to `mime_header_checks`, of an
//!   attached message to `nested_header_checks`;
//! - body lines go to `body_checks` while their offset in their segment is
//!   below `body_checks_size_limit` (0: no limit); an empty line never
//!   matches (Postfix's `maps_find` refuses empty keys);
//! - one lookup per line, the first matching rule decides; after `REJECT`,
//!   `DISCARD`, `REDIRECT` or `PASS` nothing more is inspected.
//!
//! Must not: know about the plugin SDK; applying actions to a transaction is
//! the plugin's business.

use crate::action::{Action, Context};
use crate::mime::{Event, HeaderClass, Limits, Lines, MimeState};
use crate::table::Table;

/// Postfix's default `body_checks_size_limit`.
pub const BODY_CHECKS_SIZE_LIMIT_BYTES: u64 = 51_200;

/// The tables, by the Postfix parameter they stand for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TableClass {
    /// `header_checks`.
    Header,
    /// `mime_header_checks`.
    MimeHeader,
    /// `nested_header_checks`.
    NestedHeader,
    /// `body_checks`.
    Body,
}

impl TableClass {
    /// Every class, in Postfix's order.
    pub const ALL: [TableClass; 4] = [
        TableClass::Header,
        TableClass::MimeHeader,
        TableClass::NestedHeader,
        TableClass::Body,
    ];

    /// The Postfix parameter name, e.g. `mime_header_checks`.
    pub fn name(self) -> &'static str {
        match self {
            TableClass::Header => "header_checks",
            TableClass::MimeHeader => "mime_header_checks",
            TableClass::NestedHeader => "nested_header_checks",
            TableClass::Body => "body_checks",
        }
    }
}

/// What one message is checked with.
#[derive(Clone, Debug)]
pub struct Checks {
    /// `header_checks`.
    pub header: Option<Table>,
    /// `mime_header_checks` (Postfix's default: the `header_checks` table).
    pub mime_header: Option<Table>,
    /// `nested_header_checks` (Postfix's default: the `header_checks` table).
    pub nested_header: Option<Table>,
    /// `body_checks`.
    pub body: Option<Table>,
    /// `body_checks_size_limit` in bytes; 0 for none.
    pub body_checks_size_limit: u64,
    /// Header, boundary, nesting and line limits.
    pub limits: Limits,
}

impl Default for Checks {
    /// No tables, Postfix's limits.
    fn default() -> Checks {
        Checks {
            header: None,
            mime_header: None,
            nested_header: None,
            body: None,
            body_checks_size_limit: BODY_CHECKS_SIZE_LIMIT_BYTES,
            limits: Limits::default(),
        }
    }
}

impl Checks {
    /// The table of a class.
    pub fn table(&self, class: TableClass) -> Option<&Table> {
        match class {
            TableClass::Header => self.header.as_ref(),
            TableClass::MimeHeader => self.mime_header.as_ref(),
            TableClass::NestedHeader => self.nested_header.as_ref(),
            TableClass::Body => self.body.as_ref(),
        }
    }

    /// Whether any header table is set (cleanup then also rejects messages
    /// nested deeper than `mime_nesting_limit`).
    pub fn has_header_tables(&self) -> bool {
        self.header.is_some() || self.mime_header.is_some() || self.nested_header.is_some()
    }

    /// Whether there is nothing to check.
    pub fn is_empty(&self) -> bool {
        !self.has_header_tables() && self.body.is_none()
    }
}

/// Where the matched line is, which decides what can be edited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// A header of the message's own header section.
    PrimaryHeader,
    /// A header of a MIME part or of an attached message.
    PartHeader,
    /// A body line.
    Body,
}

/// A rule that fired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hit {
    /// The table it is in.
    pub table: TableClass,
    /// Where the line is.
    pub place: Place,
    /// The logical header or body line, as matched.
    pub line: Vec<u8>,
    /// What the rule's result asks for.
    pub action: Action,
}

/// The outcome of checking one message.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Every rule that fired, in message order.
    pub hits: Vec<Hit>,
    /// A multipart was nested deeper than `mime_nesting_limit`.
    pub nesting_exceeded: bool,
}

/// Checks one message, fed in chunks.
pub struct Scan<'c> {
    checks: &'c Checks,
    lines: Lines,
    mime: MimeState,
    inspecting: bool,
    report: Report,
}

impl<'c> Scan<'c> {
    /// Starts on a message.
    pub fn new(checks: &'c Checks) -> Scan<'c> {
        Scan {
            checks,
            lines: Lines::new(checks.limits.line_length_limit),
            mime: MimeState::new(checks.limits),
            inspecting: true,
            report: Report::default(),
        }
    }

    /// Whether more input can still change the report: inspection is on,
    /// and there is a body table or a header section may still come.
    pub fn wants_more(&self) -> bool {
        self.inspecting && (self.checks.body.is_some() || self.mime.may_have_headers())
    }

    /// Takes the next bytes of the raw message (header section, blank line,
    /// body; CR LF or LF line ends).
    pub fn feed(&mut self, bytes: &[u8]) {
        let Scan {
            checks,
            lines,
            mime,
            inspecting,
            report,
        } = self;
        lines.feed(bytes, &mut |record, text| {
            mime.update(record, text, &mut |event| {
                inspect(checks, inspecting, report, event);
            });
        });
    }

    /// The end of the message.
    pub fn finish(mut self) -> Report {
        let Scan {
            checks,
            lines,
            mime,
            inspecting,
            report,
        } = &mut self;
        lines.finish(&mut |record, text| {
            mime.update(record, text, &mut |event| {
                inspect(checks, inspecting, report, event);
            });
        });
        mime.end(&mut |event| inspect(checks, inspecting, report, event));
        report.nesting_exceeded = mime.nesting_exceeded();
        std::mem::take(report)
    }
}

/// Checks a whole message held in memory.
pub fn scan(checks: &Checks, raw: &[u8]) -> Report {
    let mut scan = Scan::new(checks);
    scan.feed(raw);
    scan.finish()
}

/// One header or body line: look it up and record what fires.
fn inspect(checks: &Checks, inspecting: &mut bool, report: &mut Report, event: Event<'_>) {
    if !*inspecting {
        return;
    }
    let (table, place, context, line) = match event {
        Event::Header { class, mime, text } => {
            let table = match (mime, class) {
                (true, _) | (false, HeaderClass::Multipart) => TableClass::MimeHeader,
                (false, HeaderClass::Primary) => TableClass::Header,
                (false, HeaderClass::Nested) => TableClass::NestedHeader,
            };
            let place = if class == HeaderClass::Primary {
                Place::PrimaryHeader
            } else {
                Place::PartHeader
            };
            (table, place, Context::Header, text)
        }
        Event::Body { text, offset } => {
            let limit = checks.body_checks_size_limit;
            if limit != 0 && offset >= limit {
                return;
            }
            (TableClass::Body, Place::Body, Context::Body, text)
        }
        Event::HeaderEnd => return,
    };
    // `maps_find` never looks up an empty string (a C string: up to a NUL).
    if line.first().is_none_or(|&b| b == 0) {
        return;
    }
    let Some(result) = checks.table(table).and_then(|t| t.lookup_bytes(line)) else {
        return;
    };
    let action = Action::parse(&result, context, table.name());
    if action.ends_inspection() {
        *inspecting = false;
    }
    report.hits.push(Hit {
        table,
        place,
        line: line.to_vec(),
        action,
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks(header: &str, mime: Option<&str>, nested: Option<&str>, body: &str) -> Checks {
        let table = |t: &str| (!t.is_empty()).then(|| Table::parse(t));
        Checks {
            header: table(header),
            mime_header: mime.map_or_else(|| table(header), table),
            nested_header: nested.map_or_else(|| table(header), table),
            body: table(body),
            ..Checks::default()
        }
    }

    fn summary(report: &Report) -> Vec<String> {
        report
            .hits
            .iter()
            .map(|h| {
                format!(
                    "{} {:?} {:?} {}",
                    h.table.name(),
                    h.place,
                    h.action,
                    String::from_utf8_lossy(&h.line)
                )
            })
            .collect()
    }

    const MESSAGE: &str = "Subject: hello\r\n\
        MIME-Version: 1.0\r\n\
        Content-Type: multipart/mixed; boundary=b1\r\n\
        \r\n\
        --b1\r\n\
        Content-Type: application/octet-stream; name=\"virus.exe\"\r\n\
        X-Part: yes\r\n\
        \r\n\
        TVqQAAMAAAAEAAAA\r\n\
        --b1\r\n\
        Content-Type: message/rfc822\r\n\
        \r\n\
        Subject: inner\r\n\
        \r\n\
        inner body\r\n\
        --b1--\r\n";

    #[test]
    fn each_header_goes_to_its_table() {
        let all = "/^(.*)$/ WARN $1";
        let report = scan(
            &checks(all, Some("/^(.*)$/ INFO $1"), Some("/^(.*)$/ HOLD $1"), ""),
            MESSAGE.as_bytes(),
        );
        assert_eq!(
            summary(&report),
            [
                "header_checks PrimaryHeader Warn(\"Subject: hello\") Subject: hello",
                "mime_header_checks PrimaryHeader Info(\"MIME-Version: 1.0\") MIME-Version: 1.0",
                "mime_header_checks PrimaryHeader Info(\"Content-Type: multipart/mixed; boundary=b1\") Content-Type: multipart/mixed; boundary=b1",
                "mime_header_checks PartHeader Info(\"Content-Type: application/octet-stream; name=\\\"virus.exe\\\"\") Content-Type: application/octet-stream; name=\"virus.exe\"",
                "mime_header_checks PartHeader Info(\"X-Part: yes\") X-Part: yes",
                "mime_header_checks PartHeader Info(\"Content-Type: message/rfc822\") Content-Type: message/rfc822",
                "nested_header_checks PartHeader Hold(\"Subject: inner\") Subject: inner",
            ]
        );
    }

    #[test]
    fn body_lines_include_boundaries_but_not_part_headers() {
        let report = scan(
            &checks("", None, None, "/^(.+)$/ INFO $1"),
            MESSAGE.as_bytes(),
        );
        let lines: Vec<_> = report
            .hits
            .iter()
            .map(|h| String::from_utf8_lossy(&h.line).into_owned())
            .collect();
        assert_eq!(
            lines,
            ["--b1", "TVqQAAMAAAAEAAAA", "--b1", "inner body", "--b1--"]
        );
    }

    #[test]
    fn a_decisive_action_ends_inspection() {
        let report = scan(
            &checks(
                "/^Subject:/ HOLD\n/^Content-Type:/ REJECT no",
                None,
                None,
                "/./ WARN body",
            ),
            MESSAGE.as_bytes(),
        );
        assert_eq!(
            summary(&report),
            [
                "header_checks PrimaryHeader Hold(\"\") Subject: hello",
                "mime_header_checks PrimaryHeader Reject { code: 550, dsn: \"5.7.1\", text: \"no\", warning: None } Content-Type: multipart/mixed; boundary=b1",
            ]
        );
    }

    #[test]
    fn body_checks_size_limit_counts_per_segment() {
        let mut c = checks("", None, None, "/^x/ WARN");
        c.body_checks_size_limit = 5;
        let raw = "Content-Type: multipart/mixed; boundary=b\n\nx1\nx2\nx3\n--b\n\nx4\nx5\n";
        let lines: Vec<_> = scan(&c, raw.as_bytes())
            .hits
            .iter()
            .map(|h| String::from_utf8_lossy(&h.line).into_owned())
            .collect();
        // Offsets: "" 0, x1 1, x2 4, x3 7 | --b 10 | "" 0, x4 1, x5 4.
        assert_eq!(lines, ["x1", "x2", "x4", "x5"]);
    }

    #[test]
    fn deep_nesting_is_reported() {
        let mut raw = String::new();
        for depth in 0..102 {
            raw.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=b{depth}\n\n--b{depth}\n"
            ));
        }
        let report = scan(&checks("/x/ WARN", None, None, ""), raw.as_bytes());
        assert!(report.nesting_exceeded);
        assert!(!scan(&checks("/x/ WARN", None, None, ""), MESSAGE.as_bytes()).nesting_exceeded);
    }

    #[test]
    fn feeding_in_chunks_changes_nothing() {
        let c = checks("/^(.*)$/ WARN $1", None, None, "/^(.+)$/ INFO $1");
        let whole = scan(&c, MESSAGE.as_bytes());
        for size in [1, 2, 3, 7, 64] {
            let mut s = Scan::new(&c);
            for chunk in MESSAGE.as_bytes().chunks(size) {
                s.feed(chunk);
            }
            assert_eq!(s.finish(), whole, "chunks of {size}");
        }
    }
}
