//! Postfix's built-in content inspection for postern: `header_checks`,
//! `mime_header_checks`, `nested_header_checks` and `body_checks`, with
//! Postfix regexp tables, at the end of DATA.
//!
//! An operator's existing tables work unchanged: the host reads the files
//! named in the plugin's `files` table and passes their text; this plugin
//! parses them as Postfix does ([`table`]), walks the message as cleanup(8)
//! does ([`mime`], [`engine`]) and answers with postern's verdicts and edits
//! ([`outcome`]).
//!
//! ```toml
//! [plugins.header-checks]
//! path = "postern_header_checks.wasm"
//! capabilities = ["log"]
//! config = { body_checks_size_limit = 51200 }
//!
//! [plugins.header-checks.files]
//! header_checks = "/etc/postfix/header_checks"
//! mime_header_checks = "/etc/postfix/mime_header_checks.regexp"
//!
//! [chains]
//! data = ["header-checks"]
//! ```
//!
//! # Configuration
//!
//! - `files.header_checks`, `files.mime_header_checks`,
//!   `files.nested_header_checks`, `files.body_checks`: table texts. As in
//!   Postfix, `mime_header_checks` and `nested_header_checks` default to the
//!   `header_checks` table; point one at an empty file to turn it off.
//! - `body_checks_size_limit` (51200), `header_size_limit` (102400),
//!   `mime_boundary_length_limit` (2048), `mime_nesting_limit` (100),
//!   `line_length_limit` (2048): Postfix's parameters and defaults.
//!
//! Tables are parsed in `configure`, which the host calls at the start of
//! every transaction: a table's patterns are compiled together into a few
//! lazy DFAs ([`table`]), about 10 µs per rule natively (550 rules: 5 ms
//! natively, about 12 ms as a component). Their warnings (a bad rule is
//! skipped, as Postfix skips it) go to the log, at every `configure`.
//!
//! # What is checked
//!
//! Postfix matches `Name: value` with continuation lines joined by `\n`,
//! each keeping its leading white space (`"Subject: a\n\tb"`), and `Name :`
//! normalised to `Name:`. The message's own header section comes from the
//! host's `raw-headers()` (as received), and the headers of MIME parts and
//! attached messages and every body line from the raw body, so all are
//! matched exactly as Postfix matches them.
//!
//! # Differences from Postfix, on purpose
//!
//! - Patterns run on the `regex` crate's engines, translated from glibc's
//!   POSIX dialect (see [`table::posix`]). Whether a rule matches is the
//!   same; the text of `$n` can differ where glibc's leftmost-longest
//!   submatch rule and `regex`'s leftmost-first rule disagree (`/(ex|exe)/`
//!   on `exe`: Postfix `$1` = `exe`, postern `ex`). Back-references (`\1`)
//!   are refused with a warning. Two rare anchor placements are approximated,
//!   with a warning: a `^`/`$` that may or may not be at an end of the match
//!   without the `m` flag, and anchors in groups repeated more than once
//!   (where glibc itself drops some).
//! - Edits reach only the message's own header section, and remove headers
//!   by name (see [`outcome`]).
//! - An empty line never matches (Postfix's `maps_find` refuses empty keys;
//!   `postmap -q` does look them up).
//!
//! # Layout
//!
//! - [`table`]: regexp tables: text to rules, lookups; [`table::posix`]:
//!   POSIX patterns to `regex`.
//! - [`mime`]: records and Postfix's MIME state machine: bytes to headers
//!   and body lines.
//! - [`action`]: a lookup result to an [`action::Action`].
//! - [`engine`]: which table sees which line, and when inspection stops.
//! - [`outcome`]: actions to postern's verdict, edits and log lines.
//! - The plugin (here): configuration and `on_data`.

pub mod action;
pub mod engine;
pub mod mime;
pub mod outcome;
/// Postfix regexp tables: the `postern-regexp-table` crate, shared with the
/// restrictions plugin's access(5) tables.
pub use postern_regexp_table as table;

use postern_plugin_sdk::serde_json::Value;
use postern_plugin_sdk::{Config, Context, Filter, Message, Outcome, log};

use crate::engine::{Checks, Scan, TableClass};
use crate::mime::Limits;
use crate::table::Table;

/// How many body bytes are read from the host at a time.
const BODY_CHUNK_BYTES: u32 = 64 * 1024;

/// Settings besides `files`, with their Postfix defaults.
const LIMIT_SETTINGS: [&str; 5] = [
    "body_checks_size_limit",
    "header_size_limit",
    "mime_boundary_length_limit",
    "mime_nesting_limit",
    "line_length_limit",
];

/// The plugin: the tables, parsed.
#[derive(Debug)]
pub struct HeaderChecks {
    checks: Checks,
}

impl HeaderChecks {
    /// The checks this plugin runs.
    pub fn checks(&self) -> &Checks {
        &self.checks
    }
}

impl Filter for HeaderChecks {
    fn configure(config: Config) -> Result<HeaderChecks, String> {
        for key in config.table().keys() {
            if key != "files" && !LIMIT_SETTINGS.contains(&key.as_str()) {
                return Err(format!("unknown setting `{key}`"));
            }
        }
        let files = match config.get("files") {
            None => Default::default(),
            Some(Value::Object(files)) => files.clone(),
            Some(_) => return Err("setting `files` must be a table".to_owned()),
        };
        let mut texts: [Option<String>; 4] = Default::default();
        for (key, value) in &files {
            let Some(index) = TableClass::ALL.iter().position(|c| c.name() == key) else {
                return Err(format!(
                    "files.{key}: not a table this plugin knows (header_checks, \
                     mime_header_checks, nested_header_checks, body_checks)"
                ));
            };
            let Some(text) = value.as_str() else {
                return Err(format!("files.{key} must be the table's text"));
            };
            texts[index] = Some(text.to_owned());
        }
        let [header, mime_header, nested_header, body] =
            texts.map(|text| text.map(|t| (Table::parse(&t), t)));
        for (class, parsed) in
            TableClass::ALL
                .iter()
                .zip([&header, &mime_header, &nested_header, &body])
        {
            for warning in parsed.iter().flat_map(|(table, _)| table.warnings()) {
                log::warn(format!("regexp map {}, {warning}", class.name()));
            }
        }
        let header = header.map(|(table, _)| table);
        let inherit = |own: Option<(Table, String)>| match own {
            Some((table, _)) => Some(table),
            None => header.clone(),
        };
        let limit = |key: &str, default: usize| -> Result<usize, String> {
            let value = config.u64_or(key, default as u64)?;
            usize::try_from(value).map_err(|_| format!("setting `{key}` is too large"))
        };
        let defaults = Limits::default();
        let line_length_limit = limit("line_length_limit", 2048)?;
        let checks = Checks {
            mime_header: inherit(mime_header),
            nested_header: inherit(nested_header),
            header,
            body: body.map(|(table, _)| table),
            body_checks_size_limit: config.u64_or(
                "body_checks_size_limit",
                engine::BODY_CHECKS_SIZE_LIMIT_BYTES,
            )?,
            limits: Limits {
                header_size_limit: limit("header_size_limit", defaults.header_size_limit)?,
                mime_boundary_length_limit: limit(
                    "mime_boundary_length_limit",
                    defaults.mime_boundary_length_limit,
                )?,
                mime_nesting_limit: limit("mime_nesting_limit", defaults.mime_nesting_limit)?,
                line_length_limit: Some(line_length_limit.max(1)),
            },
        };
        Ok(HeaderChecks { checks })
    }

    fn on_data(&mut self, cx: &Context, message: &Message<'_>) -> Outcome {
        if self.checks.is_empty() {
            return Outcome::cont();
        }
        let mut scan = Scan::new(&self.checks);
        let headers = message.headers();
        // The header section as received, so that folded headers are matched
        // as Postfix matches them (continuation lines joined by newlines).
        let raw = message.raw_headers();
        scan.feed(&raw);
        if !ends_with_empty_line(&raw) {
            // A message of headers only: the section ends here all the same.
            scan.feed(b"\r\n");
        }
        let mut offset = 0u64;
        while scan.wants_more() {
            let chunk = message.read_body(offset, BODY_CHUNK_BYTES);
            scan.feed(&chunk);
            if chunk.len() < BODY_CHUNK_BYTES as usize {
                break;
            }
            offset += chunk.len() as u64;
        }
        let report = scan.finish();
        let decision = outcome::decide(&report, &self.checks, cx, headers);
        for (level, line) in decision.logs {
            log::write(level, line);
        }
        decision.outcome
    }
}

/// Whether a raw header section ends with the empty line that separates it
/// from the body (or is only that line).
fn ends_with_empty_line(raw: &[u8]) -> bool {
    matches!(raw, b"\n" | b"\r\n") || raw.ends_with(b"\n\n") || raw.ends_with(b"\n\r\n")
}

postern_plugin_sdk::register!(HeaderChecks);

#[cfg(test)]
mod tests;
