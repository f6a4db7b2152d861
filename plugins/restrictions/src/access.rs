//! access(5) tables: the text of a `check_*_access TYPE:NAME` table, parsed,
//! and looked up as Postfix's `dict_get` does.
//!
//! In: the table type and its text (from the plugin's `files`). Out: an
//! [`Access`] table that answers a key with its right-hand side, and the
//! warnings Postfix would log while reading it. What a right-hand side means
//! (OK, REJECT, a restriction list...) is decided by the caller.
//!
//! Flat types (`hash`, `btree`, `lmdb`, `cdb`, `dbm`, `sdbm`, `texthash`)
//! are read as `postmap(1)` reads their source file: `key whitespace value`,
//! `#` comments and blank lines ignored, a line that starts with white space
//! continues the previous one; keys compare case-insensitively (postmap
//! folds them to lower case, and so does every lookup); the first of
//! duplicate keys wins. `regexp` and `pcre` tables are Postfix regexp tables,
//! parsed and matched by the `postern-regexp-table` crate's [`Table`] (a `pcre` table is read
//! with the POSIX dialect: see the crate docs).
//!
//! Must not: panic on any table text; tables are the operator's files.

use std::collections::HashMap;

use postern_regexp_table::Table;

/// A parsed access table.
#[derive(Debug)]
pub enum Access {
    /// A `hash`-style table: lower-case key to value.
    Flat(HashMap<String, String>),
    /// A `regexp` or `pcre` table.
    Regexp(Box<Table>),
}

/// The table types read as postmap source text.
const FLAT_TYPES: [&str; 7] = ["hash", "btree", "lmdb", "cdb", "dbm", "sdbm", "texthash"];

impl Access {
    /// Parses the text of a table of type `kind` (`hash`, `regexp`...).
    /// Returns the table and the warnings to log, or why the type cannot be
    /// used.
    pub fn parse(kind: &str, text: &str) -> Result<(Access, Vec<String>), String> {
        let kind = kind.to_ascii_lowercase();
        if FLAT_TYPES.contains(&kind.as_str()) {
            let (map, warnings) = parse_flat(text);
            return Ok((Access::Flat(map), warnings));
        }
        if kind == "regexp" || kind == "pcre" {
            let table = Table::parse(text);
            let warnings = table.warnings().iter().map(|w| w.to_string()).collect();
            return Ok((Access::Regexp(Box::new(table)), warnings));
        }
        Err(format!(
            "table type \"{kind}\" is not supported here (use hash, texthash, regexp or pcre)"
        ))
    }

    /// Whether the table answers partial keys (parent domains, networks,
    /// `user@`): Postfix's `DICT_FLAG_FIXED`. Regexp tables see the whole
    /// string only.
    pub fn is_fixed(&self) -> bool {
        matches!(self, Access::Flat(_))
    }

    /// The right-hand side for `key`, if any.
    pub fn get(&self, key: &str) -> Option<String> {
        if key.is_empty() {
            return None;
        }
        match self {
            Access::Flat(map) => map.get(&key.to_ascii_lowercase()).cloned(),
            Access::Regexp(table) => table.lookup(key),
        }
    }
}

/// Reads postmap source text: logical lines, then `key value`.
fn parse_flat(text: &str) -> (HashMap<String, String>, Vec<String>) {
    let mut map = HashMap::new();
    let mut warnings = Vec::new();
    for (line_no, line) in logical_lines(text, &mut warnings) {
        let line = line.trim_end();
        let (key, value) = match line.split_once(|c: char| c.is_ascii_whitespace()) {
            Some((key, value)) => (key, value.trim_start()),
            None => (line, ""),
        };
        if value.is_empty() {
            warnings.push(format!(
                "line {line_no}: expected format: key whitespace value"
            ));
            continue;
        }
        let key = key.to_ascii_lowercase();
        if map.contains_key(&key) {
            warnings.push(format!(
                "line {line_no}: duplicate entry: \"{key}\" (the first one is used)"
            ));
            continue;
        }
        map.insert(key, value.to_owned());
    }
    (map, warnings)
}

/// Postfix's `readllines`: a line that starts with white space continues the
/// logical line before it (the newline goes, the white space stays); blank
/// lines and comment lines are skipped, also inside a logical line. Returns
/// each logical line with the number of its first line.
fn logical_lines(text: &str, warnings: &mut Vec<String>) -> Vec<(usize, String)> {
    let mut lines: Vec<(usize, String)> = Vec::new();
    let mut open = false;
    for (index, raw) in text.lines().enumerate() {
        let line_no = index + 1;
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let continues = raw.starts_with(|c: char| c.is_ascii_whitespace());
        match lines.last_mut() {
            Some((_, logical)) if continues && open => logical.push_str(raw),
            _ if continues => {
                warnings.push(format!(
                    "line {line_no}: logical line must not start with whitespace"
                ));
                open = false;
            }
            _ => {
                lines.push((line_no, raw.to_owned()));
                open = true;
            }
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flat_tables_read_like_postmap() {
        let text = "# comment\n\
                    Example.COM   REJECT go away\n\
                    \n\
                    user@example.org OK\n\
                    long.test  554 5.7.1\n\
                    \t  multi-line text\n\
                    # inside\n\
                    \x20 continued\n\
                    example.com   OK\n\
                    lonely\n";
        let (table, warnings) = Access::parse("hash", text).unwrap();
        assert!(table.is_fixed());
        assert_eq!(table.get("EXAMPLE.com").as_deref(), Some("REJECT go away"));
        assert_eq!(table.get("user@example.org").as_deref(), Some("OK"));
        assert_eq!(
            table.get("long.test").as_deref(),
            Some("554 5.7.1\t  multi-line text  continued")
        );
        assert_eq!(table.get("nope"), None);
        assert_eq!(table.get(""), None);
        assert_eq!(
            warnings,
            [
                "line 9: duplicate entry: \"example.com\" (the first one is used)",
                "line 10: expected format: key whitespace value",
            ]
        );
    }

    #[test]
    fn a_leading_continuation_is_skipped() {
        let (table, warnings) = Access::parse("texthash", "  orphan OK\nkey OK\n").unwrap();
        assert_eq!(table.get("key").as_deref(), Some("OK"));
        assert_eq!(table.get("orphan"), None);
        assert_eq!(
            warnings,
            ["line 1: logical line must not start with whitespace"]
        );
    }

    #[test]
    fn regexp_tables_match_the_whole_string_only() {
        let (table, warnings) =
            Access::parse("regexp", "/^user@/ REJECT no users\n/[/ OK\n").unwrap();
        assert!(!table.is_fixed());
        assert_eq!(
            table.get("USER@example.org").as_deref(),
            Some("REJECT no users")
        );
        assert_eq!(table.get("other@example.org"), None);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(Access::parse("pcre", "/x/ OK").is_ok());
    }

    #[test]
    fn other_types_are_refused() {
        for kind in ["inline", "mysql", "proxy", "ldap"] {
            let err = Access::parse(kind, "").unwrap_err();
            assert!(err.contains("not supported"), "{err}");
        }
    }
}
