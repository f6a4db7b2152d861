//! procmail's regular expressions, compiled for the `regex` crate's engines.
//!
//! In: the text of one condition (`^Subject:.*\/[0-9]+`) and whether case
//! counts (the `D` flag). Out: a [`Pattern`] that says whether it matches a
//! byte string and, for `\/`, what `MATCH` becomes; or why it cannot be
//! compiled.
//!
//! procmail's dialect is egrep's (`. * + ? | ( ) [ ]`, no `{n,m}`: braces are
//! ordinary characters) with its own extensions, translated here to
//! `regex-syntax`'s:
//! - `^` at the start of a branch and `$` at its end match at line ends
//!   (multi-line mode); elsewhere they match a newline, as in procmail;
//! - `^^` anchors at the very start (first in a branch) or end of the text;
//! - `\<` and `\>` match a non-word character or the edge of the text;
//! - `\/` splits the pattern: what the right part matches becomes `MATCH`;
//!   the left part matches as little as it can, as procmail's does;
//! - `[^...]` never matches a newline;
//! - `^TO_`, `^TO`, `^FROM_DAEMON` and `^FROM_MAILER` are replaced by the
//!   expansions in procmail's `config.h`;
//! - `\` before any character makes it literal (there are no `\d`, `\n`).
//!
//! Matching is on bytes, case-insensitively in ASCII by default; `.` is any
//! byte but a newline.
//!
//! Must not: panic on any pattern, or build an automaton without size
//! limits: patterns come from users' files.

use regex_automata::hybrid;
use regex_automata::nfa::thompson::{self, pikevm::PikeVM};
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input};

/// The longest condition accepted, in bytes (after macro expansion).
pub const MAX_PATTERN_BYTES: usize = 4096;

/// NFA size allowed to one pattern (a plugin instance has 64 MiB in all).
const NFA_SIZE_LIMIT_BYTES: usize = 1 << 20;

/// The lazy DFA's cache for one search.
const DFA_CACHE_BYTES: usize = 1 << 20;

/// How deeply groups may nest.
const NEST_LIMIT: u32 = 64;

/// procmail's `TO_substitute` (`config.h`): destination headers, followed by
/// a specific address.
const TO_ADDRESS: &str = "(^((Original-)?(Resent-)?(To|Cc|Bcc)|(X-Envelope|Apparently(-Resent)?)-To):(.*[^-a-zA-Z0-9_.])?)";

/// procmail's `TOsubstitute`: destination headers, followed by a word.
const TO_WORD: &str =
    "(^((Original-)?(Resent-)?(To|Cc|Bcc)|(X-Envelope|Apparently(-Resent)?)-To):(.*[^a-zA-Z])?)";

/// procmail's `FROMDsubstitute`: mail from most daemons and mailing lists.
const FROM_DAEMON: &str = "(^(Mailing-List:|Precedence:.*(junk|bulk|list)|To: Multiple recipients of |(((Resent-)?(From|Sender)|X-Envelope-From):|>?From )([^>]*[^(.%@a-z0-9])?(Post(ma?(st(e?r)?|n)|office)|(send)?Mail(er)?|daemon|m(mdf|ajordomo)|n?uucp|LIST(SERV|proc)|NETSERV|o(wner|ps)|r(e(quest|sponse)|oot)|b(ounce|bs\\.smtp)|echo|mirror|s(erv(ices?|er)|mtp(error)?|ystem)|A(dmin(istrator)?|MMGR|utoanswer))(([^).!:a-z0-9][-_a-z0-9]*)?[%@>\t ][^<)]*(\\(.*\\).*)?)?$([^>]|$)))";

/// procmail's `FROMMsubstitute`: mail from most mailer daemons.
const FROM_MAILER: &str = "(^(((Resent-)?(From|Sender)|X-Envelope-From):|>?From )([^>]*[^(.%@a-z0-9])?(Post(ma(st(er)?|n)|office)|(send)?Mail(er)?|daemon|mmdf|n?uucp|ops|r(esponse|oot)|(bbs\\.)?smtp(error)?|s(erv(ices?|er)|ystem)|A(dmin(istrator)?|MMGR))(([^).!:a-z0-9][-_a-z0-9]*)?[%@>\t ][^<)]*(\\(.*\\).*)?)?$([^>]|$))";

/// A compiled condition.
#[derive(Debug)]
pub struct Pattern {
    /// Says whether the pattern matches, fast.
    dfa: hybrid::dfa::DFA,
    /// The translated pattern, to fall back on the PikeVM if the lazy DFA
    /// ever gives up.
    translated: String,
    /// For `\/`: the engine that finds the text of `MATCH` (group 1).
    capture: Option<PikeVM>,
    case_sensitive: bool,
}

impl Pattern {
    /// Compiles a condition's regular expression.
    pub fn compile(text: &str, case_sensitive: bool) -> Result<Pattern, String> {
        let text = expand_macros(text);
        if text.len() > MAX_PATTERN_BYTES {
            return Err(format!("longer than {MAX_PATTERN_BYTES} bytes"));
        }
        let split = split_match(&text);
        let captures = split.is_some();
        let translated = match split {
            Some((left, right)) => {
                let left = translate(&left)?;
                let right = translate(&right)?;
                // The left part matches as little as it can, so MATCH starts
                // as early as possible (procmail's reading).
                format!("(?U:{left})({right})")
            }
            None => translate(&text)?,
        };
        let dfa = hybrid::dfa::DFA::builder()
            .configure(hybrid::dfa::Config::new().cache_capacity(DFA_CACHE_BYTES))
            .syntax(syntax_config(case_sensitive))
            .thompson(thompson_config())
            .build(&translated)
            .map_err(|e| e.to_string())?;
        let capture = if captures {
            Some(pikevm(&translated, case_sensitive)?)
        } else {
            None
        };
        Ok(Pattern {
            dfa,
            translated,
            capture,
            case_sensitive,
        })
    }

    /// Whether the pattern matches somewhere in `haystack`.
    pub fn is_match(&self, haystack: &[u8]) -> bool {
        let input = Input::new(haystack).earliest(true).anchored(Anchored::No);
        let mut cache = self.dfa.create_cache();
        match self.dfa.try_search_fwd(&mut cache, &input) {
            Ok(found) => found.is_some(),
            // Unicode is off, so this does not happen; the PikeVM never gives up.
            Err(_) => match pikevm(&self.translated, self.case_sensitive) {
                Ok(vm) => vm.is_match(&mut vm.create_cache(), input),
                Err(_) => false,
            },
        }
    }

    /// For a pattern with `\/`: the text its right part matched, if it
    /// matches. `None` for a pattern without `\/` or without a match.
    pub fn matched_text(&self, haystack: &[u8]) -> Option<String> {
        let vm = self.capture.as_ref()?;
        let mut caps = vm.create_captures();
        vm.captures(&mut vm.create_cache(), haystack, &mut caps);
        let span = caps.get_group(1)?;
        let text = haystack.get(span.start..span.end)?;
        Some(String::from_utf8_lossy(text).into_owned())
    }

    /// Whether the pattern sets `MATCH`.
    pub fn captures(&self) -> bool {
        self.capture.is_some()
    }
}

fn syntax_config(case_sensitive: bool) -> syntax::Config {
    syntax::Config::new()
        .case_insensitive(!case_sensitive)
        .multi_line(true)
        .unicode(false)
        .utf8(false)
        .nest_limit(NEST_LIMIT)
}

fn thompson_config() -> thompson::Config {
    thompson::Config::new()
        .utf8(false)
        .nfa_size_limit(Some(NFA_SIZE_LIMIT_BYTES))
}

fn pikevm(translated: &str, case_sensitive: bool) -> Result<PikeVM, String> {
    PikeVM::builder()
        .syntax(syntax_config(case_sensitive))
        .thompson(thompson_config())
        .build(translated)
        .map_err(|e| e.to_string())
}

/// Replaces procmail's macros (longest name first: `^TO_` before `^TO`).
fn expand_macros(text: &str) -> String {
    const MACROS: [(&str, &str); 4] = [
        ("^TO_", TO_ADDRESS),
        ("^TO", TO_WORD),
        ("^FROM_DAEMON", FROM_DAEMON),
        ("^FROM_MAILER", FROM_MAILER),
    ];
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('^') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        match MACROS.iter().find(|(name, _)| tail.starts_with(name)) {
            Some((name, expansion)) => {
                out.push_str(expansion);
                rest = &tail[name.len()..];
            }
            None => {
                out.push('^');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Splits at the first `\/` outside brackets: the left and the right part.
fn split_match(text: &str) -> Option<(String, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut in_bracket = false;
    let mut bracket_start = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if !in_bracket && chars.get(i + 1) == Some(&'/') => {
                let left = chars[..i].iter().collect();
                let right = chars[i + 2..].iter().collect();
                return Some((left, right));
            }
            '\\' => i += 1,
            '[' if !in_bracket => {
                in_bracket = true;
                bracket_start = i;
                if chars.get(i + 1) == Some(&'^') {
                    i += 1;
                }
            }
            // `]` first in a bracket is a member.
            ']' if in_bracket && i > bracket_start + 1 => {
                let after_caret = chars.get(bracket_start + 1) == Some(&'^');
                if !(after_caret && i == bracket_start + 2) {
                    in_bracket = false;
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// Translates a procmail pattern (macros expanded, without `\/`) to
/// `regex-syntax`'s syntax.
pub fn translate(text: &str) -> Result<String, String> {
    let mut t = Translator {
        chars: text.chars().collect(),
        i: 0,
    };
    let out = t.alternation(0)?;
    if t.i < t.chars.len() {
        return Err(format!("unexpected `{}`", t.chars[t.i]));
    }
    Ok(out)
}

struct Translator {
    chars: Vec<char>,
    i: usize,
}

/// An escaped literal character.
fn literal(c: char) -> String {
    if regex_syntax::is_meta_character(c) {
        format!("\\{c}")
    } else {
        c.to_string()
    }
}

impl Translator {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.i).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.chars.get(self.i + ahead).copied()
    }

    fn alternation(&mut self, depth: u32) -> Result<String, String> {
        if depth > NEST_LIMIT {
            return Err("groups nested too deeply".into());
        }
        let mut branches = vec![self.branch(depth)?];
        while self.peek() == Some('|') {
            self.i += 1;
            branches.push(self.branch(depth)?);
        }
        Ok(branches.join("|"))
    }

    /// Whether the next character ends the current branch.
    fn at_branch_end(&self, ahead: usize, depth: u32) -> bool {
        match self.peek_at(ahead) {
            None | Some('|') => true,
            Some(')') => depth > 0,
            _ => false,
        }
    }

    fn branch(&mut self, depth: u32) -> Result<String, String> {
        let mut atoms: Vec<String> = Vec::new();
        let mut quantified = false;
        while !self.at_branch_end(0, depth) {
            let Some(c) = self.peek() else { break };
            self.i += 1;
            let atom = match c {
                '*' | '+' | '?' => {
                    match atoms.last_mut() {
                        // Nothing to repeat: egrep reads it literally.
                        None => atoms.push(literal(c)),
                        Some(last) => {
                            // `a+?` is `(a+)?` here, not a lazy `+`.
                            if quantified {
                                *last = format!("(?:{last})");
                            }
                            last.push(c);
                        }
                    }
                    quantified = true;
                    continue;
                }
                '(' => {
                    let inner = self.alternation(depth + 1)?;
                    if self.peek() != Some(')') {
                        return Err("unmatched `(`".into());
                    }
                    self.i += 1;
                    format!("(?:{inner})")
                }
                '[' => self.bracket()?,
                '^' if self.peek() == Some('^') => {
                    self.i += 1;
                    if atoms.is_empty() { "\\A" } else { "\\z" }.to_owned()
                }
                '^' if atoms.is_empty() => "(?m:^)".to_owned(),
                // After a `$` the newline is already matched (`$^`).
                '^' if atoms.last().is_some_and(|a| a == "\\n") => continue,
                '^' => "\\n".to_owned(),
                '$' if self.at_branch_end(0, depth) => "(?m:$)".to_owned(),
                '$' => "\\n".to_owned(),
                '.' => ".".to_owned(),
                // An unmatched `)` at the top level is a literal.
                ')' => "\\)".to_owned(),
                '\\' => match self.peek() {
                    None => "\\\\".to_owned(),
                    Some(next) => {
                        self.i += 1;
                        match next {
                            '<' => "(?:\\A|[^a-zA-Z0-9_])".to_owned(),
                            '>' => "(?:[^a-zA-Z0-9_]|\\z)".to_owned(),
                            other => literal(other),
                        }
                    }
                },
                other => literal(other),
            };
            atoms.push(atom);
            quantified = false;
        }
        Ok(atoms.concat())
    }

    /// A bracket expression, after its `[`.
    fn bracket(&mut self) -> Result<String, String> {
        let negated = self.peek() == Some('^');
        if negated {
            self.i += 1;
        }
        let mut items = String::new();
        let mut first = true;
        loop {
            let Some(c) = self.peek() else {
                return Err("unmatched `[`".into());
            };
            self.i += 1;
            if c == ']' && !first {
                break;
            }
            first = false;
            if c == '[' && self.peek() == Some(':') {
                let rest: String = self.chars[self.i..].iter().collect();
                let Some(end) = rest.find(":]") else {
                    return Err("unmatched `[:`".into());
                };
                let Some(name) = rest.get(1..end) else {
                    return Err("bad `[:`".into());
                };
                const CLASSES: [&str; 12] = [
                    "alnum", "alpha", "blank", "cntrl", "digit", "graph", "lower", "print",
                    "punct", "space", "upper", "xdigit",
                ];
                if !CLASSES.contains(&name) {
                    return Err(format!("unknown class `[:{name}:]`"));
                }
                items.push_str(&format!("[:{name}:]"));
                self.i += rest[..end + 2].chars().count();
                continue;
            }
            let c = if c == '\\' {
                let Some(escaped) = self.peek() else {
                    return Err("unmatched `[`".into());
                };
                self.i += 1;
                escaped
            } else {
                c
            };
            match (self.peek(), self.peek_at(1)) {
                (Some('-'), Some(end)) if end != ']' => {
                    self.i += 2;
                    if end < c {
                        return Err(format!("invalid range `{c}-{end}`"));
                    }
                    items.push_str(&literal(c));
                    items.push('-');
                    items.push_str(&literal(end));
                }
                _ => items.push_str(&literal(c)),
            }
        }
        Ok(if negated {
            format!("[^\\n{items}]")
        } else {
            format!("[{items}]")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, subject: &str) -> bool {
        Pattern::compile(pattern, false)
            .unwrap_or_else(|e| panic!("{pattern}: {e}"))
            .is_match(subject.as_bytes())
    }

    #[test]
    fn procmail_dialect() {
        let headers = "From: a@example.org\nSubject: Hello {world}\nX-Spam-Status: Yes, score=7\n";
        for (pattern, want) in [
            ("^Subject:.*hello", true),
            ("^subject: HELLO", true),
            ("^Hello", false),
            ("world}$", true),
            ("{world}", true),
            ("^X-Spam-Status: Yes", true),
            ("^X-Spam-Status: No", false),
            ("score=[0-9]+", true),
            ("score=[^0-9]", false),
            ("(yes|no), score", true),
            ("^^From:", true),
            ("^^Subject:", false),
            ("=7$^^", true),
            ("org$^Subject", true),
            ("\\<score\\>", true),
            ("\\<core", false),
            ("a+?@", true),
            ("*literal", false),
            ("[[:digit:]]$", true),
            ("[]q]", false),
            ("", true),
            ("Hello \\{", true),
            ("^From:.*example\\.org", true),
            ("^From:.*example\\.com", false),
        ] {
            assert_eq!(matches(pattern, headers), want, "{pattern}");
        }
    }

    #[test]
    fn negated_brackets_never_match_a_newline() {
        assert!(!matches("a[^x]b", "a\nb"));
        assert!(matches("a[^x]b", "a-b"));
        assert!(!matches("a.b", "a\nb"));
    }

    #[test]
    fn macros() {
        let to = "To: Jo <jo@example.org>\nCc: list@lists.example.org\n";
        assert!(matches("^TO_jo@example\\.org", to));
        assert!(matches("^TO_list@", to));
        assert!(!matches("^TO_o@example", to));
        assert!(matches("^TOjo", to));
        for (from, daemon) in [
            ("From: MAILER-DAEMON@example.org\n", true),
            (
                "From: Mail Delivery System <postmaster@example.org>\n",
                true,
            ),
            ("Precedence: bulk\n", true),
            ("From: Jo <jo@example.org>\n", false),
        ] {
            assert_eq!(matches("^FROM_DAEMON", from), daemon, "{from}");
        }
        assert!(matches("^FROM_MAILER", "From: MAILER-DAEMON@example.org\n"));
    }

    #[test]
    fn match_takes_the_right_part() {
        let p = Pattern::compile("^Subject:.*\\/[0-9]+", false).unwrap();
        assert!(p.captures());
        assert_eq!(
            p.matched_text(b"From: x\nSubject: ticket 1234 open\n")
                .as_deref(),
            Some("1234")
        );
        let p = Pattern::compile("^X-Tag: *\\/[^ ]+", false).unwrap();
        assert_eq!(p.matched_text(b"X-Tag:  rust\n").as_deref(), Some("rust"));
        assert_eq!(p.matched_text(b"X-Other: rust\n"), None);
    }

    #[test]
    fn case_sensitivity() {
        let p = Pattern::compile("^Subject: Hello", true).unwrap();
        assert!(p.is_match(b"Subject: Hello"));
        assert!(!p.is_match(b"subject: hello"));
    }

    #[test]
    fn bad_patterns_are_errors_not_panics() {
        for pattern in [
            "(unclosed",
            "[unclosed",
            "[z-a]",
            "[[:nope:]]",
            &"(".repeat(200),
            &"x".repeat(MAX_PATTERN_BYTES + 1),
        ] {
            assert!(Pattern::compile(pattern, false).is_err(), "{pattern}");
        }
    }

    #[test]
    fn size_limits_hold() {
        // Large but legal: bounded by the NFA size limit, not by memory.
        let big = "(a|b|c|d|e|f|g|h)".repeat(200);
        let _ = Pattern::compile(&big, false);
        let nested = format!("{}x{}", "(".repeat(60), ")*".repeat(60));
        let _ = Pattern::compile(&nested, false);
    }
}
