//! Differential test against Postfix itself.
//!
//! For every table of a corpus and every message of another, Postfix's
//! `postmap -hmq - regexp:TABLE < MESSAGE` prints each header (as
//! header_checks, mime_header_checks and nested_header_checks see it) that a
//! rule matches, with the rule's result; `postmap -bmq -` does the same for
//! body lines (body_checks). This test computes the same output with the
//! plugin's engine ([`MimeState`] for the lines, [`Table`] for the lookups)
//! and compares byte for byte, along with the warnings Postfix prints
//! while loading each table.
//!
//! `postmap` must be installed (Debian: `apt-get install postfix` with
//! debconf `postfix/main_mailer_type` = "No configuration"); without it the
//! test fails. It runs with an empty `main.cf` of its own, so Postfix's
//! defaults apply (`header_size_limit` 102400, `mime_boundary_length_limit`
//! 2048, `mime_nesting_limit` 100); `postmap` reads lines whole, so the
//! engine runs without a `line_length_limit` here.
//!
//! Deliberate differences are listed in [`DELIBERATE`], each with its
//! reason; the test checks that they still differ, so the list stays true.

// Test helpers outside `#[test]` functions: failing loudly is their job.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use postern_header_checks::mime::{Event, Limits, Lines, MimeState};
use postern_header_checks::table::{Table, WarningForm};

/// Tables whose results differ from Postfix on purpose, and why.
const DELIBERATE: &[(&str, &str)] = &[
    (
        "backreference",
        "back-references (\\1) have no equivalent in the regex crate: postern skips the rule \
         with a warning, Postfix uses it",
    ),
    (
        "leftmost-longest",
        "glibc chooses submatches leftmost-longest, the regex crate leftmost-first: `$1` of \
         /(ex|exe)/ on `exe` is `exe` in Postfix, `ex` in postern (whether the rule matches \
         is the same)",
    ),
];

fn postmap() -> PathBuf {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")]);
    for dir in candidates {
        let path = dir.join("postmap");
        if path.is_file() {
            return path;
        }
    }
    panic!(
        "postmap(1) not found: this test compares the header-checks engine with Postfix \
         itself and cannot run without it. Install Postfix (Debian: `echo postfix \
         postfix/main_mailer_type select No configuration | debconf-set-selections && \
         apt-get install -y postfix`)."
    );
}

/// A C string: what `printf("%s")` prints.
fn c_str(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len())]
}

/// The keys `postmap -hmq -` (headers) or `-bmq -` (body) looks up.
fn keys(raw: &[u8], headers: bool) -> Vec<Vec<u8>> {
    let limits = Limits {
        line_length_limit: None,
        ..Limits::default()
    };
    let mut keys = Vec::new();
    let mut mime = MimeState::new(limits);
    let mut on_event = |event: Event<'_>| match event {
        Event::Header { text, .. } if headers => keys.push(text.to_vec()),
        Event::Body { text, .. } if !headers => keys.push(text.to_vec()),
        _ => {}
    };
    let mut lines = Lines::new(None);
    let mut records = Vec::new();
    lines.feed(raw, &mut |r, t| records.push((r, t.to_vec())));
    lines.finish(&mut |r, t| records.push((r, t.to_vec())));
    for (record, text) in &records {
        mime.update(*record, text, &mut on_event);
    }
    mime.end(&mut on_event);
    keys
}

/// What postmap prints on stdout and stderr, computed by the engine.
fn expected(table: &Table, path: &str, raw: &[u8], headers: bool) -> (Vec<u8>, Vec<u8>) {
    let keys = keys(raw, headers);
    let mut out = Vec::new();
    let mut err = Vec::new();
    if !keys.is_empty() {
        // postmap opens the table at its first lookup.
        for warning in table.warnings() {
            err.extend_from_slice(
                format!("postmap: warning: {}\n", warning.postfix(path)).as_bytes(),
            );
        }
    }
    for key in keys {
        let Some(value) = table.lookup_bytes(&key) else {
            continue;
        };
        let key = c_str(&key);
        out.extend_from_slice(key);
        out.push(b'\t');
        out.extend_from_slice(&value);
        out.push(b'\n');
        if value.is_empty() {
            let key = String::from_utf8_lossy(key);
            err.extend_from_slice(
                format!(
                    "postmap: warning: table regexp:{path}: key {key}: empty string result is not allowed\n\
                     postmap: warning: table regexp:{path} should return NO RESULT in case of NOT FOUND\n"
                )
                .as_bytes(),
            );
        }
    }
    (out, err)
}

fn run_postmap(
    postmap: &Path,
    config: &Path,
    table: &str,
    flags: &str,
    input: &[u8],
) -> (Vec<u8>, Vec<u8>) {
    let mut child = Command::new(postmap)
        .arg("-c")
        .arg(config)
        .arg(flags)
        .arg("-")
        .arg(format!("regexp:{table}"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", postmap.display()));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || {
        // postmap may exit before reading everything; that is its answer.
        let _ = stdin.write_all(&input);
    });
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (output.stdout, output.stderr)
}

/// Postfix's log output replaces unprintable bytes (`printable()`).
fn printable(bytes: &[u8]) -> Vec<u8> {
    bytes
        .iter()
        .map(|&b| {
            if (0x20..0x7f).contains(&b) || b == b'\n' {
                b
            } else {
                b'?'
            }
        })
        .collect()
}

#[test]
fn the_engine_agrees_with_postmap() {
    let postmap = postmap();
    let dir =
        PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("postmap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.cf"), "").unwrap();
    let tables = corpus::tables();
    let messages = corpus::messages();
    let mut failures: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut comparisons = 0;
    let mut lookups = 0;
    let mut matches = 0;
    for (name, text) in &tables {
        let path = dir.join(format!("{name}.regexp"));
        std::fs::write(&path, text).unwrap();
        let path = path.to_string_lossy().into_owned();
        let table = Table::parse_bytes(text);
        for (message, raw) in &messages {
            for (headers, flags) in [(true, "-hmq"), (false, "-bmq")] {
                let (want_out, want_err) = expected(&table, &path, raw, headers);
                let (out, err) = run_postmap(&postmap, &dir, &path, flags, raw);
                comparisons += 1;
                lookups += keys(raw, headers).len();
                matches += want_out.iter().filter(|&&b| b == b'\n').count();
                let mut problems = Vec::new();
                if out != want_out {
                    problems.push(format!(
                        "stdout differs\n--- postmap\n{}\n--- engine\n{}",
                        String::from_utf8_lossy(&out),
                        String::from_utf8_lossy(&want_out)
                    ));
                }
                if printable(&err) != printable(&want_err) {
                    problems.push(format!(
                        "stderr differs\n--- postmap\n{}\n--- engine\n{}",
                        String::from_utf8_lossy(&err),
                        String::from_utf8_lossy(&want_err)
                    ));
                }
                for problem in problems {
                    failures.entry(name).or_default().push(format!(
                        "table {name}, message {message}, postmap {flags}: {problem}"
                    ));
                }
            }
        }
    }
    eprintln!(
        "postmap differential: {} tables x {} messages: {comparisons} postmap runs, \
         {lookups} lookups, {matches} matches",
        tables.len(),
        messages.len()
    );
    let mut report = Vec::new();
    for (name, reason) in DELIBERATE {
        match failures.remove(name) {
            Some(diffs) => eprintln!(
                "deliberate difference ({} runs) in table {name}: {reason}",
                diffs.len()
            ),
            None => report.push(format!(
                "table {name} is listed as a deliberate difference but now agrees with Postfix: \
                 remove it from DELIBERATE"
            )),
        }
    }
    for diffs in failures.values() {
        report.extend(diffs.iter().take(3).cloned());
        if diffs.len() > 3 {
            report.push(format!(
                "... and {} more runs of that table",
                diffs.len() - 3
            ));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        report.is_empty(),
        "{} problems:\n\n{}",
        report.len(),
        report.join("\n\n")
    );
}

/// Random patterns against random (multi-line) headers: whether each rule
/// matches, and which patterns glibc refuses, must agree with Postfix.
/// Submatch text is left to the curated corpus above: it differs on purpose
/// where POSIX leftmost-longest and `regex` leftmost-first disagree.
#[test]
fn random_patterns_match_like_glibc() {
    // POSTMAP_RANDOM_SEED and POSTMAP_RANDOM_PATTERNS explore further.
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let seed = env("POSTMAP_RANDOM_SEED", 0x5eed_cafe_f00d);
    let patterns = env("POSTMAP_RANDOM_PATTERNS", 600);
    const KEYS: usize = 80;
    let postmap = postmap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("postmap-random-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.cf"), "").unwrap();
    let mut rng = random::Rng(seed | 1);
    let mut message = Vec::new();
    for _ in 0..KEYS {
        message.extend_from_slice(b"X-K: ");
        message.extend_from_slice(&rng.text(10));
        while rng.below(3) == 0 {
            message.extend_from_slice(if rng.below(2) == 0 { b"\n " } else { b"\n\t" });
            message.extend_from_slice(&rng.text(6));
        }
        message.push(b'\n');
    }
    message.extend_from_slice(b"\nbody\n");
    let mut problems = Vec::new();
    let mut refused = 0;
    let mut matched = 0;
    let mut deliberate = 0;
    for n in 0..patterns {
        let pattern = rng.pattern(3);
        let flags: String = ["i", "m", "x"]
            .iter()
            .filter(|_| rng.below(3) == 0)
            .copied()
            .collect();
        let text = format!("/{}/{flags} MATCHED\n", String::from_utf8_lossy(&pattern));
        let path = dir.join(format!("r{n}.regexp"));
        std::fs::write(&path, &text).unwrap();
        let path = path.to_string_lossy().into_owned();
        let table = Table::parse(&text);
        if table
            .warnings()
            .iter()
            .any(|w| w.form == WarningForm::Postern)
        {
            // A deliberate difference (back-references, or anchors postern
            // can only approximate): the curated corpus covers them.
            deliberate += 1;
            continue;
        }
        refused += usize::from(table.is_empty());
        let (want_out, want_err) = expected(&table, &path, &message, true);
        matched += want_out.iter().filter(|&&b| b == b'\n').count();
        let (out, err) = run_postmap(&postmap, &dir, &path, "-hmq", &message);
        if out != want_out || printable(&err) != printable(&want_err) {
            problems.push(format!(
                "{text}--- postmap\n{}{}--- engine\n{}{}",
                String::from_utf8_lossy(&out),
                String::from_utf8_lossy(&err),
                String::from_utf8_lossy(&want_out),
                String::from_utf8_lossy(&want_err)
            ));
        }
    }
    eprintln!(
        "random differential (seed {seed}): {patterns} patterns x {KEYS} headers, \
         {refused} refused by glibc, {matched} matches, {deliberate} skipped as deliberate \
         differences"
    );
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        problems.is_empty(),
        "{} patterns disagree:\n\n{}",
        problems.len(),
        problems
            .iter()
            .take(5)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// Random MIME structures: every header and body line, with its class of
/// line, must come out as Postfix's MIME parser produces them.
#[test]
fn random_messages_walk_like_postfix() {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let messages = env("POSTMAP_RANDOM_MESSAGES", 150);
    const LINES: &[&str] = &[
        "",
        "",
        "Subject: s",
        "X-Part: p",
        " folded",
        "\tfolded with a tab",
        "text line",
        "Content-Type: multipart/mixed; boundary=b1",
        "Content-Type: multipart/alternative; boundary=\"b2\"",
        "Content-Type: multipart/digest; boundary=b3",
        "Content-Type: message/rfc822",
        "Content-Type: text/plain",
        "Content-Type: MESSAGE/RFC822 (comment)",
        "Content-Disposition: attachment; filename=\"x.exe\"",
        "MIME-Version: 1.0",
        "--b1",
        "--b1",
        "--b1--",
        "--b2",
        "--b2--",
        "--b3",
        "--b3--",
        "--b1x",
        "--",
        "Subject : spaced",
        "not: a header? yes it is",
        "no colon here",
    ];
    let postmap = postmap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("postmap-mime-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("main.cf"), "").unwrap();
    let path = dir.join("echo.regexp");
    let text = "/^(.*)$/ KEY [$1]\n";
    std::fs::write(&path, text).unwrap();
    let path = path.to_string_lossy().into_owned();
    let table = Table::parse(text);
    let mut rng = random::Rng(env("POSTMAP_RANDOM_SEED", 0x6d69_6d65) | 1);
    let mut problems = Vec::new();
    let mut lines = 0;
    for n in 0..messages {
        let mut message = String::new();
        for _ in 0..rng.below(40) + 5 {
            message.push_str(LINES[rng.below(LINES.len() as u64) as usize]);
            message.push('\n');
            lines += 1;
        }
        for (headers, flags) in [(true, "-hmq"), (false, "-bmq")] {
            let (want_out, want_err) = expected(&table, &path, message.as_bytes(), headers);
            let (out, err) = run_postmap(&postmap, &dir, &path, flags, message.as_bytes());
            if out != want_out || err != want_err {
                problems.push(format!(
                    "message {n}, {flags}:\n{message}--- postmap\n{}--- engine\n{}",
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&want_out)
                ));
            }
        }
    }
    eprintln!("random MIME differential: {messages} messages, {lines} lines");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        problems.is_empty(),
        "{} runs disagree:\n\n{}",
        problems.len(),
        problems
            .iter()
            .take(3)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A small deterministic generator of subjects and POSIX patterns.
mod random {
    pub struct Rng(pub u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        pub fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
            items[self.below(items.len() as u64) as usize]
        }

        /// Up to `max` characters of header-safe text.
        pub fn text(&mut self, max: u64) -> Vec<u8> {
            let len = self.below(max + 1);
            let mut out = Vec::new();
            for _ in 0..len {
                out.extend_from_slice(
                    self.pick(&[
                        "a", "b", "A", "B", ":", "-", " ", "x", ".", "\t", "é", "_", "1",
                    ])
                    .as_bytes(),
                );
            }
            out
        }

        /// A pattern of nesting depth up to `depth`.
        pub fn pattern(&mut self, depth: u32) -> Vec<u8> {
            let mut out = self.branch(depth);
            while self.below(5) == 0 {
                out.push(b'|');
                out.extend(self.branch(depth));
            }
            out
        }

        fn branch(&mut self, depth: u32) -> Vec<u8> {
            let mut out = Vec::new();
            for _ in 0..self.below(4) + 1 {
                out.extend(self.piece(depth));
            }
            out
        }

        fn piece(&mut self, depth: u32) -> Vec<u8> {
            let mut out: Vec<u8> = match self.below(13) {
                0..=3 => self
                    .pick(&["a", "b", "A", "B", ":", "-", " ", "x", "é", "1", "_", "X-K"])
                    .into(),
                4 => self
                    .pick(&[
                        ".", "\\.", "\\d", "\\Q", "\\a", "\\x", "\\:", "\\{", "\\(", "\\|",
                    ])
                    .into(),
                5 => self
                    .pick(&[
                        "[ab]",
                        "[^a]",
                        "[a-c]",
                        "[[:alpha:]]",
                        "[[:upper:]]",
                        "[[:lower:]]",
                        "[^[:space:]]",
                        "[]a]",
                        "[a-]",
                        "[A-z]",
                        "[^]x]",
                        "[\\]",
                        "[[.a.]]",
                        "[_-a]",
                        "[[:digit:]x-]",
                        "[^-_]",
                    ])
                    .into(),
                6 => self.pick(&["\\w", "\\W", "\\s", "\\S"]).into(),
                7 => self
                    .pick(&["^", "$", "\\b", "\\B", "\\<", "\\>", "\\`", "\\'"])
                    .into(),
                8 | 9 if depth > 0 => {
                    let mut group = vec![b'('];
                    group.extend(self.pattern(depth - 1));
                    group.push(b')');
                    group
                }
                10 if depth > 0 => {
                    let mut group = b"\\(".to_vec();
                    group.extend(self.pattern(depth - 1));
                    group.extend_from_slice(b"\\)");
                    group
                }
                11 => self
                    .pick(&["[z-a]", "[[:foo:]]", "{2,1}", "*", "\\1", "(", "["])
                    .into(),
                _ => self.pick(&["a", "x", "b"]).into(),
            };
            while self.below(3) == 0 {
                out.extend_from_slice(
                    self.pick(&[
                        "*", "+", "?", "{1,2}", "{,2}", "{2}", "{0}", "{1,}", "\\{1\\}",
                        "\\{,2\\}", "\\+", "\\?",
                    ])
                    .as_bytes(),
                );
            }
            out
        }
    }
}

/// The tables and messages compared.
mod corpus {
    /// Tables: name and text.
    pub fn tables() -> Vec<(&'static str, Vec<u8>)> {
        let mut tables: Vec<(&'static str, Vec<u8>)> = vec![
            (
                "seed",
                include_bytes!("data/mime_header_checks.regexp").to_vec(),
            ),
            (
                "seed-as-printed",
                include_bytes!("data/mime_header_checks.as-printed.regexp").to_vec(),
            ),
        ];
        let texts: &[(&str, &str)] = &[
            // Every key, whole: checks which lines are looked up, and how
            // multi-line headers are joined.
            ("echo", "/^(.*)$/ KEY [$1]\n"),
            // REG_NEWLINE: `.` stops at newlines, `^`/`$` match at them.
            ("echo-m", "/^(.*)$/m FIRST [$1]\n"),
            (
                "lines",
                "/^([^:]*):.*\\n([ \\t]+)(.*)$/ FOLDED name=$1 indent=[$2] last=[$3]\n\
                       /^[^\\n]*$/m NEVER-WITH-NEWLINE\n\
                       /^ (.*)$/m CONT [$1]\n",
            ),
            (
                "attachments",
                "/^Content-(Disposition|Type):.*name[[:space:]]*=[[:space:]]*\"?([^;\"]*(\\.|=2E)(ade|adp|bat|chm|cmd|com|cpl|exe|hta|ins|isp|jse?|lnk|mdb|pif|scr|sct|shs|vb[es]?|wsf))\"?[[:space:]]*(;|$)/ REJECT Attachment name \"$2\" may not end with \".$4\"\n\
                 /^Content-Disposition:.*filename\\*=/ WARN RFC 2231 name: $0x\n\
                 /^Content-Type:[[:space:]]*(multipart|message)\\/([a-z0-9-]+)/ INFO container $1/$2\n\
                 /^Content-Type:.*boundary=\"?([^\";]+)/ INFO boundary [$1]\n",
            ),
            (
                "flags",
                "/^subject: URGENT/ REJECT case-insensitive by default\n\
                 /^X-Case: Exact/i WARN exact case only\n\
                 /^x-case: exact/ii WARN i twice is the default\n\
                 /^X-BRE: \\(a\\+\\)\\{2\\}\\(b*\\)/x INFO bre [$1] [$2]\n\
                 /^X-BRE: (a+){2}/x INFO bre literal parens\n\
                 /^X-Multi:.*^  second$/m INFO multi-line anchors\n\
                 /^X-Multi: first.second/ INFO dot matches newline\n\
                 /^X-Multi: first.second/m INFO never\n\
                 /^X-Mixed: (.*)/xim INFO xim $1\n\
                 !/^(From|To|Subject|Date|Received|Message-ID|MIME-Version|Content-[A-Za-z-]+|X-[A-Za-z0-9-]+):/ INFO odd header\n\
                 /^Subject:/!/important/ HOLD subject not important\n\
                 /^Subject:/ DUNNO\n",
            ),
            (
                "if-endif",
                "if /^Content-(Type|Disposition):/\n\
                 if /name=/\n\
                 /\\.exe\"?$/ REJECT exe in $0\n\
                 /\\.(pdf|doc)\"?/ INFO document $1\n\
                 endif\n\
                 /^Content-Type: multipart/ INFO multipart\n\
                 ENDIF\n\
                 IF !/^X-/\n\
                 /^Received: from ([^ ]+)/ INFO received from $1\n\
                 /^Subject: (.*)$/ INFO subject ${1}!\n\
                 endif\n\
                 if /^X-/\n\
                 /^X-([^:]+): (.*)/ INFO x-header $(1)=$2 cost $$5\n\
                 endif\n",
            ),
            (
                "actions",
                "/^Subject: reject$/ REJECT\n\
                 /^Subject: reject text$/ REJECT Go away\n\
                 /^Subject: reject dsn$/ REJECT 5.7.0 With code\n\
                 /^Subject: defer$/ REJECT 4.7.1 Try later\n\
                 /^Subject: (warn|info|discard|hold|pass|strip) (.*)$/ $1 $2\n\
                 /^Subject: ignore/ IGNORE\n\
                 /^Subject: prepend (.*)/ PREPEND X-Prepended: $1\n\
                 /^Subject: replace (.*)/ REPLACE Subject: [replaced] $1\n\
                 /^Subject: dunno/ DUNNO\n\
                 /^Subject: ok/ OK\n\
                 /^Subject: filter/ FILTER smtp:[127.0.0.1]:10025\n\
                 /^Subject: redirect/ REDIRECT quarantine@example.org\n\
                 /^Subject: bcc/ BCC audit@example.org\n\
                 /^Subject: unknown/ FROBNICATE\n\
                 /^X-Empty:/\n",
            ),
            (
                "body",
                "/^<iframe src=(3D)?cid:.* height=(3D)?0 width=(3D)?0>$/ REJECT IFRAME vulnerability exploit\n\
                 /^(--[^ ]*)$/ INFO boundary-like [$1]\n\
                 /viagra/ DISCARD\n\
                 /^$/ EMPTY\n\
                 /^[[:space:]]+$/ BLANKISH\n\
                 /[[:upper:]]{5,}/i WARN shouting\n\
                 /\\d+/ NEVER the glibc icase quirk\n\
                 /\\d+/i LITERAL-D\n\
                 /[0-9]{3}-[0-9]{4}/ PHONE\n\
                 /Grüße/ UMLAUT\n\
                 /\\<free\\>/ WORD free\n\
                 /^[A-Za-z0-9+\\/]{60,}=*$/ BASE64\n\
                 /^(.{0,8})/ PREFIX [$1]\n",
            ),
            (
                "glibc",
                "/\\d/ ESCAPED-LOWER never matches\n\
                 /\\Q\\E/ ESCAPED-UPPER both cases\n\
                 /^[[:lower:]]+:/ LOWER means alpha\n\
                 /^[[:lower:]]+:/i LOWER exactly\n\
                 /^Su{,2}b/ BRACE-COMMA\n\
                 /^S**u/ STACKED\n\
                 /^(S+?)u/ NOT-LAZY [$1]\n\
                 /^X-Paren: a)/ LITERAL-PAREN\n\
                 /[]x]yz/ BRACKET-CLOSE\n\
                 /[^]x]yz/ BRACKET-NOT-CLOSE\n\
                 /\\`Sub/ BUFFER-START\n\
                 /ject\\'/ BUFFER-END\n\
                 /^[A-z_]+:/ ICASE-RANGE\n\
                 /^[A-z_]+:/i RANGE\n\
                 /\\bbody\\b/ WORD-BOUNDARY\n\
                 /\\Bod\\B/ NOT-WORD-BOUNDARY\n\
                 /^[[.-.][=x=]]/ COLLATING\n\
                 /[\\]/ BACKSLASH-IN-BRACKET\n\
                 /\\//// SLASH\n\
                 #comment/ not a rule\n\
                 |^X-Alt| ALT-DELIMITER\n\
                 !#^X-#x NOT-X-BRE\n",
            ),
            (
                "substitutions",
                "/^(S)(u)(b)(j)(e)(c)(t)(:)( )(.)/ $9$8$7$6$5$4$3$2$1 [$10]\n\
                 /^(From): ((.*)<(.*)>|(.*))$/ from name=[$3] angle=[$4] plain=[$5]\n\
                 /^(X-Opt): (a)?(b)?/ opt [$2][$3]\n\
                 /^(To): (.*)/ dollars $$1 $${2} $$$1\n",
            ),
            (
                "continuations",
                "# a comment at the top\n\
                 /^Subject:/\n\
                 \x20   REJECT split over\n\
                 # a comment in the middle does not end the rule\n\
                 \t  three lines\n\
                 \n\
                 \x20 and a fourth after an empty line\n\
                 /^From:/ INFO trailing blanks   \t\n\
                 /^To:/ INFO crlf\r\n\
                 /^Date:/\tINFO tab before result\n",
            ),
            (
                "malformed",
                "/^Subject: a/q REJECT unknown option\n\
                 /^Subject: b REJECT no closing delimiter\n\
                 !\n\
                 /^Subject: (c)/ REJECT $2 out of range\n\
                 !/^Subject: d/ REJECT $1 in a negative rule\n\
                 /^Subject: e/ REJECT $0\n\
                 /^Subject: f/ REJECT $x and $y\n\
                 /^Subject: g/ REJECT ${1\n\
                 /^Subject: h/ REJECT at the end $\n\
                 /^Subject: (i)/ REJECT $1st\n\
                 /^Subject: j/\n\
                 if /^Subject:/ extra\n\
                 endif x\n\
                 endif\n\
                 frobnicate /x/ Y\n\
                 /^Subject: [z-a]/ REJECT bad range\n\
                 /^Subject: (/ REJECT paren\n\
                 /^Subject: [a/ REJECT bracket\n\
                 /^Subject: a{/ REJECT brace\n\
                 /^Subject: a{2,1}/ REJECT brace content\n\
                 /^Subject: *a/ REJECT repetition\n\
                 /^Subject: [[:word:]]/ REJECT class\n\
                 /^Subject: [[.space.]]/ REJECT collating\n\
                 /^Subject: a{99999}/ REJECT too big\n\
                 /^Subject: \\(a/x REJECT bre paren\n\
                 /^Subject: a\\)/x REJECT bre unmatched\n\
                 /^Subject: ok/ INFO the good rule still works\n\
                 if /^X-/\n\
                 /^X-Never-Closed/ INFO inside an if without endif\n",
            ),
            (
                "leading-whitespace",
                "  /^Subject:/ REJECT indented first line\n  still the same line\n/^From:/ INFO from\n",
            ),
            // Deliberate differences (see DELIBERATE).
            (
                "backreference",
                "/^Subject: (.)\\1/ REJECT doubled $1\n/^Subject:/ INFO subject\n",
            ),
            ("leftmost-longest", "/^Subject: (ex|exe)/ INFO [$1]\n"),
        ];
        tables.extend(texts.iter().map(|(n, t)| (*n, t.as_bytes().to_vec())));
        // Enough rules to span several of the engine's pattern sets, with
        // `!`, second patterns and if/endif across their boundaries.
        let mut many = String::new();
        for i in 0..400 {
            match i % 50 {
                7 => many.push_str(&format!("if /^Subject:/\n/{i}x/ IF-SUBJECT-{i}\nendif\n")),
                13 => many.push_str(&format!("!/^(X-N|Subject|From)/ NOT-{i}\n")),
                29 => many.push_str(&format!("/^X-N{i}:/!/skip/ SECOND-{i}\n")),
                _ => many.push_str(&format!("/^X-N{i}: (.*)/ RULE-{i} [$1]\n")),
            }
        }
        many.push_str("/^Subject: (.*)/ LAST [$1]\n/^/ ANY\n");
        tables.push(("many-rules", many.into_bytes()));
        tables
    }

    /// Messages: name and raw bytes (LF line ends: postmap keeps CRs).
    pub fn messages() -> Vec<(String, Vec<u8>)> {
        let mut messages: Vec<(String, Vec<u8>)> = Vec::new();
        let mut add =
            |name: &str, text: &str| messages.push((name.to_owned(), text.as_bytes().to_vec()));

        add(
            "plain",
            "Received: from mx.example.net (mx.example.net [192.0.2.1])\n\tby mail.example.org with ESMTP id 123\n\tfor <b@example.org>; Thu, 26 Nov 2026 10:00:00 +0000\nFrom: Alice <a@example.net>\nTo: b@example.org\nSubject: hello there\nDate: Thu, 26 Nov 2026 10:00:00 +0000\nMessage-ID: <1@example.net>\n\nHello Bob,\n\nthis is the body. It is free of charge.\nCall 555-1234 now! THIS IS LOUD\n-- \nAlice\n",
        );
        add(
            "folded",
            "Subject: first line\n  second line\n\tthird line\nX-Multi: first\n  second\nSubject : obsolete space before colon\nX-NoSpace:value\nX-Empty:\nX-Opt: ab\nFrom: \"Name\" <x@example.org>\nTo: plain@example.org\n\nbody\n",
        );
        add(
            "missing-blank-line",
            "Subject: x\nnot a header line\nSubject: in the body\n",
        );
        add("no-headers", "\nSubject: this is body\n\n");
        add(
            "body-only-indented",
            "Subject: s\n\n   \n\t\n  indented body line\n",
        );
        add(
            "header-like-body",
            "Subject: s\n\nSubject: looks like a header\nFrom: too\n",
        );
        add(
            "actions",
            "Subject: reject\nSubject: reject text\nSubject: reject dsn\nSubject: defer\nSubject: warn look here\nSubject: info fyi\nSubject: discard bye\nSubject: hold wait\nSubject: pass trusted\nSubject: strip it\nSubject: ignore me\nSubject: prepend tag\nSubject: replace me\nSubject: dunno\nSubject: ok\nSubject: filter\nSubject: redirect\nSubject: bcc\nSubject: unknown\nSubject: URGENT stuff\nSubject: important stuff\nX-Case: Exact\nX-Case: exact\nX-BRE: aab\nX-BRE: (a+){2}\nX-Mixed: MiXeD\nSubject: exe\nSubject: ee\n(odd): header\n\nbody\n",
        );
        add(
            "eight-bit",
            "Subject: Grüße aus Köln\nX-Latin1: caf\u{e9}\nFrom: =?UTF-8?B?R3LDvMOfZQ==?= <a@example.org>\n\nGrüße\nfree Grüße\n",
        );
        // Raw Latin-1 bytes (not UTF-8) in a header and the body.
        messages.push((
            "latin1-bytes".to_owned(),
            b"Subject: caf\xe9 cr\xe8me\nX-Bytes: \xff\xfe\x80\n\nna\xefve body \xe9\n\xc3\xa9\n"
                .to_vec(),
        ));
        messages.push((
            "nul-and-cr".to_owned(),
            b"Subject: a\rb\nX-Nul: before\0after\n\nline with\0nul\nline with\rcr inside\n"
                .to_vec(),
        ));
        let mut add =
            |name: &str, text: &str| messages.push((name.to_owned(), text.as_bytes().to_vec()));

        // Attachments with many names.
        for (i, name) in [
            "virus.exe",
            "VIRUS.EXE",
            "report.pdf",
            "my file.scr",
            "a.pdf.exe",
            "a.exe.pdf",
            "setup.com",
            "notes.c0m",
            "x.js",
            "y.jse",
            "script.vbs",
            "index.html",
            "archive.zip",
        ]
        .iter()
        .enumerate()
        {
            add(
                &format!("attachment-{i}-{name}"),
                &format!(
                    "From: a@example.org\nSubject: file {name}\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"=_b{i}\"\n\nThis is a multi-part message in MIME format.\n--=_b{i}\nContent-Type: text/plain; charset=us-ascii\n\nSee attached.\n--=_b{i}\nContent-Type: application/octet-stream; name=\"{name}\"\nContent-Disposition: attachment;\n\tfilename=\"{name}\"\nContent-Transfer-Encoding: base64\n\nTVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\nAAAAAAAAAA==\n--=_b{i}--\n"
                ),
            );
        }
        add(
            "attachment-unquoted",
            "Subject: u\nContent-Type: multipart/mixed; boundary=xyz\n\n--xyz\nContent-Type: application/x-msdownload; name=tool.exe\nContent-Disposition: attachment; filename=tool.exe; size=5\n\nMZ\n--xyz--\n",
        );
        add(
            "attachment-rfc2231",
            "Subject: r\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: application/octet-stream\nContent-Disposition: attachment; filename*=UTF-8''%E2%82%ACuro.exe\n\nxx\n--b--\n",
        );
        add(
            "attachment-encoded-dot",
            "Subject: e\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: application/octet-stream; name=\"=?us-ascii?Q?evil=2Eexe?=\"\n\nxx\n--b--\n",
        );
        add(
            "nested-multipart",
            "Subject: nested\nMIME-Version: 1.0\nContent-Type: multipart/mixed;\n boundary=\"outer\"\n\n--outer\nContent-Type: multipart/alternative; boundary=\"inner\"\n\n--inner\nContent-Type: text/plain\n\nplain\n--inner\nContent-Type: text/html\n\n<iframe src=3Dcid:x height=3D0 width=3D0>\n--inner--\n--outer\nContent-Type: application/pdf; name=\"doc.pdf\"\n\nJVBERi0=\n--outer--\nepilogue\n",
        );
        add(
            "attached-message",
            "Subject: fwd\nContent-Type: multipart/mixed; boundary=\"m\"\n\n--m\nContent-Type: text/plain\n\nsee below\n--m\nContent-Type: message/rfc822\nContent-Description: forwarded\n\nReceived: from inner.example\nSubject: inner subject\nFrom: inner@example.org\nX-Inner: yes\nContent-Type: multipart/mixed; boundary=\"n\"\n\n--n\nContent-Type: application/octet-stream; name=\"inner.exe\"\n\nMZ\n--n--\n\n--m--\n",
        );
        add(
            "message-rfc822-top",
            "Subject: bounce\nContent-Type: message/rfc822\n\nSubject: the original\nFrom: orig@example.org\n\noriginal body\n",
        );
        add(
            "message-partial",
            "Subject: partial\nContent-Type: message/partial; id=\"x\"; number=1\n\nSubject: not nested\n\nbody\n",
        );
        add(
            "digest",
            "Subject: digest\nContent-Type: multipart/digest; boundary=\"d\"\n\n--d\n\nSubject: digest part one\nFrom: one@example.org\n\none\n--d\nContent-Type: text/plain\n\ntwo\n--d--\n",
        );
        add(
            "boundary-prefix",
            "Subject: prefix\nContent-Type: multipart/mixed; boundary=\"b1\"\n\n--b1xyz cruft after boundary\nContent-Type: text/plain\nX-Part-Header: yes\n\ntext\n--b1--trailing\nafter the end\n--b1\nContent-Type: text/plain\n\nreopened?\n",
        );
        add(
            "two-boundaries",
            "Subject: two\nContent-Type: multipart/mixed; boundary=\"one\"; boundary=\"two\"\n\n--two\nContent-Type: text/plain\n\nvia two\n--one\nContent-Type: text/plain\n\nvia one\n--one--\n",
        );
        add(
            "part-without-blank",
            "Subject: nb\nContent-Type: multipart/mixed; boundary=\"b\"\n\n--b\nContent-Type: text/plain\nthis line ends the part headers\n--b\n--b\nContent-Type: text/plain\n\nok\n--b--\n",
        );
        add(
            "content-type-variants",
            "Subject: ct\nContent-Type: MULTIPART/Mixed (a comment; boundary=\"no\") ;boundary=\"q\\\"x\" ; charset=x\n\n--q\"x\nContent-Type:text/plain;charset=utf-8\n\nquoted boundary\n--q\"x--\n",
        );
        add(
            "unterminated-multipart",
            "Subject: unterminated\nContent-Type: multipart/mixed; boundary=\"u\"\n\n--u\nContent-Type: text/plain\n\nno closing boundary\n",
        );
        add(
            "empty-content-type",
            "Subject: e\nContent-Type:\nContent-Type: ; boundary=x\n\n--x\nContent-Type: text/plain\n\nx\n",
        );
        add(
            "shouting-and-iframe",
            "Subject: loud\n\nTHIS IS VERY LOUD\n<iframe src=cid:abc height=0 width=0>\n<iframe src=3Dcid:abc height=3D0 width=3D0>\nbuy viagra now\n",
        );

        // A header longer than header_size_limit: continuation lines past
        // the limit are dropped.
        let mut long = String::from("Subject: long\nX-Long: start\n");
        for i in 0..1100 {
            long.push_str(&format!(" continuation line {i:05} {}\n", "x".repeat(80)));
        }
        long.push_str("X-After: yes\n\nbody\n");
        add("header-size-limit", &long);

        // A very long single line (postmap reads it whole).
        add(
            "long-line",
            &format!("Subject: {}\n\n{}\n", "s".repeat(5000), "b".repeat(9000)),
        );

        // Nesting beyond mime_nesting_limit.
        let mut deep = String::from("Subject: deep\n");
        for depth in 0..105 {
            deep.push_str(&format!(
                "Content-Type: multipart/mixed; boundary=\"d{depth}\"\n\n--d{depth}\n"
            ));
        }
        deep.push_str("Content-Type: text/plain\n\ninnermost\n");
        for depth in (0..105).rev() {
            deep.push_str(&format!("--d{depth}--\nafter d{depth}\n"));
        }
        add("deep-nesting", &deep);

        // A boundary longer than mime_boundary_length_limit (compared by
        // its first 2048 bytes).
        let boundary = "B".repeat(2100);
        add(
            "long-boundary",
            &format!(
                "Subject: lb\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\n\n--{}\nContent-Type: text/plain\n\nshort boundary matches by prefix\n--{boundary}\nContent-Type: text/plain\n\nfull\n--{boundary}--\n",
                &boundary[..2048]
            ),
        );
        let mut numbered = String::from("Subject: 7x 57x 357x\n");
        for i in (0..400).step_by(7) {
            numbered.push_str(&format!("X-N{i}: value {i}\nX-N{i}: skip {i}\n"));
        }
        numbered.push_str("From: f\nTo: t\n\nbody\n");
        add("numbered-headers", &numbered);
        add(
            "no-trailing-newline",
            "Subject: nt\n\nlast line without newline",
        );
        add(
            "headers-only",
            "Subject: only headers\nX-Last: folded\n  at the end",
        );
        messages
    }
}
