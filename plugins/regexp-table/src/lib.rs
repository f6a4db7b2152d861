//! Postfix regexp tables (`regexp_table(5)`): parse the text, look strings up.
//!
//! In: the table's text, as the operator wrote it. Out: a [`Table`] whose
//! [`lookup`](Table::lookup) answers like Postfix's `dict_regexp` (first
//! matching rule wins, `$1`... substituted), and the [`Warning`]s Postfix
//! would log while loading it. A bad rule is skipped with a warning, never
//! fatal, exactly where Postfix skips it.
//!
//! The text is read as Postfix reads it (`readllines`, `dict_regexp_open`,
//! `mac_parse`, checked against Postfix 3.7's `postmap`):
//! - a logical line is a line that starts with non-whitespace plus every
//!   following line that starts with whitespace, concatenated *without* a
//!   separator; blank lines and lines whose first non-blank is `#` are
//!   dropped, also in the middle of a logical line; a logical line that
//!   starts with whitespace (the table's first line indented) is skipped with
//!   "logical line must not start with whitespace"; trailing whitespace goes;
//! - a rule is `[!]DpatternD[flags][!DpatternD[flags]] result` with any
//!   delimiter `D` (a backslash escapes it), flags `i` (toggle: case
//!   sensitive), `x` (toggle: basic regular expressions), `m` (toggle:
//!   `REG_NEWLINE`), `if [!]/pattern/` ... `endif` (nesting), case-insensitive
//!   `IF`/`ENDIF`;
//! - the result may use `$n`, `${n}`, `$(n)` and `$$`; an unmatched group
//!   substitutes nothing.
//!
//! Patterns are POSIX regular expressions with GNU extensions, translated by
//! [`posix`] to behave as glibc does in the C locale, then compiled together
//! (a few multi-pattern lazy DFAs per table): one pass over a key tells
//! which patterns match, and the rules are then read in order.
//!
//! Must not: panic on any input, or look at anything but the text given.

pub mod posix;

use std::borrow::Cow;
use std::fmt;

use posix::{Syntax, is_c_space};
use std::cell::RefCell;

use regex_automata::hybrid;
use regex_automata::nfa::thompson::{self, WhichCaptures, pikevm, pikevm::PikeVM};
use regex_automata::{Input, MatchKind, PatternSet};
use regex_syntax::hir::Hir;

/// A problem found while loading a table; the rule concerned is skipped
/// unless the message says otherwise (as Postfix's do).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// The line (1-based) of the logical line the problem is on.
    pub line: usize,
    /// Postfix's text for it, e.g. `unknown regexp option "$": skipping
    /// this rule`.
    pub message: String,
    /// How Postfix prefixes the message.
    pub form: WarningForm,
}

/// How Postfix 3.7 prefixes a table warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WarningForm {
    /// `regexp map NAME, line N: message` (`dict_regexp`).
    Map,
    /// `NAME: message`, without the line (`readllines`).
    File,
    /// `message` alone (`mac_parse`).
    Bare,
    /// A warning of postern's own, about a rule Postfix accepts as is
    /// (worded like [`WarningForm::Map`]).
    Postern,
}

impl Warning {
    fn map(line: usize, message: impl Into<String>) -> Warning {
        Warning {
            line,
            message: message.into(),
            form: WarningForm::Map,
        }
    }

    /// The warning worded exactly as Postfix 3.7 logs it after `postmap:
    /// warning: `, for a table opened as `map` (its path).
    pub fn postfix(&self, map: &str) -> String {
        match self.form {
            WarningForm::Map | WarningForm::Postern => {
                format!("regexp map {map}, line {}: {}", self.line, self.message)
            }
            WarningForm::File => format!("{map}: {}", self.message),
            WarningForm::Bare => self.message.clone(),
        }
    }
}

impl fmt::Display for Warning {
    /// `line N: message`: Postfix's text with the line number always given
    /// (Postfix 3.7 leaves it out of the `readllines` warning).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A compiled regexp table.
#[derive(Clone, Debug, Default)]
pub struct Table {
    rules: Vec<Rule>,
    /// Whether any pattern is negated (`!/.../`, `if !/.../`).
    negated: bool,
    /// Every pattern of every rule, tested together: see [`PatternSets`].
    sets: PatternSets,
    warnings: Vec<Warning>,
}

/// One pattern of a rule, possibly negated (`!/.../`).
#[derive(Clone, Debug)]
struct Pattern {
    /// Its index in the table's [`PatternSets`].
    id: usize,
    /// True for a positive match, false for `!`.
    matches: bool,
}

/// A piece of a result: literal bytes or a group number.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Piece {
    Literal(Vec<u8>),
    Group(usize),
}

#[derive(Clone, Debug)]
enum Rule {
    Match {
        first: Pattern,
        second: Option<Pattern>,
        result: Vec<Piece>,
        /// The first pattern with captures, when `result` uses `$n`.
        captures: Option<PikeVM>,
    },
    If {
        condition: Pattern,
        /// Index of the matching `endif`, if any.
        endif: Option<usize>,
    },
    Endif,
}

/// How many patterns share one automaton: enough that a line is read once
/// for a whole ordinary table, few enough that each lazy DFA stays small.
const PATTERNS_PER_SET: usize = 128;

/// All patterns of a table, compiled into a few multi-pattern automata: one
/// pass over a key says which patterns match anywhere in it.
///
/// A table is compiled once per transaction (a plugin instance lives for
/// one), so compiling must be cheap: each set is one Thompson NFA (no
/// captures) run by a lazy DFA, built as it is used, with a PikeVM for keys
/// that wear the DFA's cache out. That is a few microseconds per pattern,
/// against tens for a full `regex`/`meta` build, and a lookup is one pass
/// per [`PATTERNS_PER_SET`] rules instead of one per rule.
#[derive(Clone, Debug, Default)]
struct PatternSets {
    /// `None` for a chunk that could not be built (its patterns are broken).
    sets: Vec<Option<Automaton>>,
    /// Patterns that could not be compiled (too large): their rules are
    /// skipped.
    broken: Vec<bool>,
}

#[derive(Clone, Debug)]
struct Automaton {
    dfa: hybrid::dfa::DFA,
    pikevm: PikeVM,
    /// Search state, built on first use and reused by every lookup (a
    /// table serves one transaction, on one thread).
    scratch: RefCell<Option<Scratch>>,
}

#[derive(Clone, Debug)]
struct Scratch {
    dfa: hybrid::dfa::Cache,
    pikevm: pikevm::Cache,
    found: PatternSet,
}

impl Automaton {
    fn build(hirs: &[Hir]) -> Result<Automaton, String> {
        let nfa = thompson::Compiler::new()
            .configure(posix::nfa_config().which_captures(WhichCaptures::None))
            .build_many_from_hir(hirs)
            .map_err(|e| e.to_string())?;
        let dfa = hybrid::dfa::DFA::builder()
            .configure(hybrid::dfa::Config::new().match_kind(MatchKind::All))
            .build_from_nfa(nfa.clone())
            .map_err(|e| e.to_string())?;
        let pikevm = PikeVM::builder()
            .configure(pikevm::Config::new().match_kind(MatchKind::All))
            .build_from_nfa(nfa)
            .map_err(|e| e.to_string())?;
        Ok(Automaton {
            dfa,
            pikevm,
            scratch: RefCell::new(None),
        })
    }

    /// Finds which of the automaton's patterns match `key` anywhere, and
    /// passes them to `answer`.
    fn which<R>(&self, key: &[u8], answer: impl FnOnce(&PatternSet) -> R) -> R {
        let input = Input::new(key);
        let mut scratch = self.scratch.borrow_mut();
        let scratch = scratch.get_or_insert_with(|| Scratch {
            dfa: self.dfa.create_cache(),
            pikevm: self.pikevm.create_cache(),
            found: PatternSet::new(self.pikevm.pattern_len()),
        });
        scratch.found.clear();
        if self
            .dfa
            .try_which_overlapping_matches(&mut scratch.dfa, &input, &mut scratch.found)
            .is_err()
        {
            // The lazy DFA gave up on this key (its cache kept filling up).
            scratch.found.clear();
            self.pikevm
                .which_overlapping_matches(&mut scratch.pikevm, &input, &mut scratch.found);
        }
        answer(&scratch.found)
    }
}

impl PatternSets {
    /// Builds the sets. A pattern that cannot be compiled even alone is
    /// reported with its line and marked broken.
    fn build(hirs: &mut [Hir], lines: &[usize], warnings: &mut Vec<Warning>) -> PatternSets {
        let mut broken = vec![false; hirs.len()];
        let mut sets = Vec::new();
        for (chunk_index, chunk) in hirs.chunks_mut(PATTERNS_PER_SET).enumerate() {
            let automaton = Automaton::build(chunk).or_else(|_| {
                // Find the culprits, then build without them.
                for (i, hir) in chunk.iter_mut().enumerate() {
                    if let Err(e) = Automaton::build(std::slice::from_ref(hir)) {
                        let id = chunk_index * PATTERNS_PER_SET + i;
                        broken[id] = true;
                        warnings.push(Warning {
                            line: lines.get(id).copied().unwrap_or(0),
                            message: format!(
                                "this pattern ({e}) is not supported by postern: skipping this rule"
                            ),
                            form: WarningForm::Postern,
                        });
                        *hir = Hir::fail();
                    }
                }
                Automaton::build(chunk)
            });
            match automaton {
                Ok(automaton) => sets.push(Some(automaton)),
                Err(e) => {
                    // Each pattern builds alone but not together: give up
                    // on the chunk rather than guess.
                    let start = chunk_index * PATTERNS_PER_SET;
                    for flag in broken.iter_mut().skip(start).take(chunk.len()) {
                        *flag = true;
                    }
                    warnings.push(Warning {
                        line: lines.get(start).copied().unwrap_or(0),
                        message: format!(
                            "rules from here on ({} patterns) are too large together for postern \
                             ({e}): skipping them",
                            chunk.len()
                        ),
                        form: WarningForm::Postern,
                    });
                    sets.push(None);
                }
            }
        }
        PatternSets { sets, broken }
    }

    /// Which patterns match `key`, computed a set at a time as asked.
    fn matcher<'a>(&'a self, key: &'a [u8]) -> Matches<'a> {
        Matches {
            sets: self,
            key,
            searched: 0,
            found: vec![0; self.broken.len().div_ceil(64)],
        }
    }
}

/// The patterns found in one key so far.
struct Matches<'a> {
    sets: &'a PatternSets,
    key: &'a [u8],
    /// Bit n: set n searched (a table has few sets; beyond 64 a set is
    /// searched again, which is correct, only slower).
    searched: u64,
    /// Bit n: pattern n matches.
    found: Vec<u64>,
}

impl Matches<'_> {
    /// Searches set `set` unless done already.
    fn search(&mut self, set: usize) {
        let bit = 1u64
            .checked_shl(u32::try_from(set).unwrap_or(u32::MAX))
            .unwrap_or(0);
        if self.searched & bit != 0 {
            return;
        }
        self.searched |= bit;
        let Some(Some(automaton)) = self.sets.sets.get(set) else {
            return;
        };
        let found = &mut self.found;
        automaton.which(self.key, |matched| {
            if matched.is_empty() {
                return;
            }
            for pattern in matched.iter() {
                let id = set * PATTERNS_PER_SET + pattern.as_usize();
                if let Some(word) = found.get_mut(id / 64) {
                    *word |= 1 << (id % 64);
                }
            }
        });
    }

    /// Searches every set: then whether anything matched at all.
    fn search_all(&mut self) -> bool {
        for set in 0..self.sets.sets.len() {
            self.search(set);
        }
        self.found.iter().any(|&w| w != 0)
    }

    fn is_match(&mut self, id: usize) -> bool {
        self.search(id / PATTERNS_PER_SET);
        self.found
            .get(id / 64)
            .is_some_and(|w| w & (1 << (id % 64)) != 0)
    }

    fn test(&mut self, pattern: &Pattern) -> bool {
        self.is_match(pattern.id) == pattern.matches
    }

    /// Whether the rule using these patterns has to be skipped.
    fn broken(&self, patterns: &[Option<&Pattern>]) -> bool {
        patterns
            .iter()
            .flatten()
            .any(|p| self.sets.broken.get(p.id).copied().unwrap_or(true))
    }
}

impl Table {
    /// Parses a table from its text. Never fails: bad rules are skipped and
    /// reported in [`warnings`](Table::warnings).
    pub fn parse(text: &str) -> Table {
        Table::parse_bytes(text.as_bytes())
    }

    /// As [`parse`](Table::parse), for a table that is not UTF-8 (Postfix
    /// reads bytes).
    pub fn parse_bytes(text: &[u8]) -> Table {
        let mut table = Table::default();
        let mut patterns = Patterns {
            hirs: Vec::new(),
            lines: Vec::new(),
        };
        let mut open_ifs: Vec<(usize, usize)> = Vec::new();
        for logical in logical_lines(text, &mut table.warnings) {
            let line = trim_end(&logical.text);
            if line.is_empty() {
                continue;
            }
            let Some(rule) = parse_rule(
                logical.line,
                line,
                open_ifs.len(),
                &mut patterns,
                &mut table.warnings,
            ) else {
                continue;
            };
            let index = table.rules.len();
            match rule {
                Rule::If { .. } => open_ifs.push((index, logical.line)),
                Rule::Endif => {
                    if let Some((if_index, _)) = open_ifs.pop()
                        && let Some(Rule::If { endif, .. }) = table.rules.get_mut(if_index)
                    {
                        *endif = Some(index);
                    }
                }
                Rule::Match { .. } => {}
            }
            table.rules.push(rule);
        }
        while let Some((_, line)) = open_ifs.pop() {
            table
                .warnings
                .push(Warning::map(line, "IF has no matching ENDIF"));
        }
        table.sets = PatternSets::build(&mut patterns.hirs, &patterns.lines, &mut table.warnings);
        table.negated = table.rules.iter().any(|rule| match rule {
            Rule::Match { first, second, .. } => {
                !first.matches || second.as_ref().is_some_and(|s| !s.matches)
            }
            Rule::If { condition, .. } => !condition.matches,
            Rule::Endif => false,
        });
        table
    }

    /// What Postfix would log while loading the table, in order.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// Whether the table has no usable rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The result for `key`, with `$n` substituted, e.g. `REJECT Attachment
    /// type not allowed. File "virus.exe" has the unacceptable extension
    /// "exe"`; `None` when no rule matches. Bytes that are not UTF-8 (from an
    /// 8-bit key) are replaced.
    pub fn lookup(&self, key: &str) -> Option<String> {
        self.lookup_bytes(key.as_bytes())
            .map(|result| String::from_utf8_lossy(&result).into_owned())
    }

    /// As [`lookup`](Table::lookup), on bytes (Postfix compares bytes).
    pub fn lookup_bytes(&self, key: &[u8]) -> Option<Vec<u8>> {
        // A C string: Postfix never sees past a NUL.
        let key = &key[..key.iter().position(|&b| b == 0).unwrap_or(key.len())];
        let mut matches = self.sets.matcher(key);
        // Without `!` patterns a rule can only fire when something matched:
        // the common case (no rule fires) costs one pass per set.
        if !self.negated && !matches.search_all() {
            return None;
        }
        let mut index = 0;
        while let Some(rule) = self.rules.get(index) {
            index += 1;
            match rule {
                Rule::Match {
                    first,
                    second,
                    result,
                    captures,
                } => {
                    if matches.broken(&[Some(first), second.as_ref()])
                        || !matches.test(first)
                        || second.as_ref().is_some_and(|s| !matches.test(s))
                    {
                        continue;
                    }
                    return Some(expand(captures.as_ref(), key, result));
                }
                Rule::If { condition, endif } => {
                    // A broken condition skips its block.
                    if !matches.broken(&[Some(condition)]) && matches.test(condition) {
                        continue;
                    }
                    // An IF without ENDIF that does not match ends the search.
                    index = (*endif)? + 1;
                }
                Rule::Endif => {}
            }
        }
        None
    }
}

/// The result of a matched rule, with `$n` replaced by group n.
fn expand(captures: Option<&PikeVM>, key: &[u8], result: &[Piece]) -> Vec<u8> {
    let groups = captures.map(|pikevm| {
        let mut groups = pikevm.create_captures();
        pikevm.captures(&mut pikevm.create_cache(), key, &mut groups);
        groups
    });
    let mut out = Vec::new();
    for piece in result {
        match piece {
            Piece::Literal(text) => out.extend_from_slice(text),
            Piece::Group(n) => {
                if let Some(span) = groups.as_ref().and_then(|g| g.get_group(*n)) {
                    out.extend_from_slice(&key[span.range()]);
                }
            }
        }
    }
    out
}

/// The table's patterns so far, and the line of each.
struct Patterns {
    hirs: Vec<Hir>,
    lines: Vec<usize>,
}

/// A logical line and the physical line it starts on.
struct LogicalLine<'t> {
    line: usize,
    text: Cow<'t, [u8]>,
}

/// Postfix's `readllines`: joins continuation lines, drops comments and
/// blank lines, and skips (with a warning) a logical line that starts with
/// whitespace.
fn logical_lines<'t>(text: &'t [u8], warnings: &mut Vec<Warning>) -> Vec<LogicalLine<'t>> {
    // Physical lines, numbered from 1 (a last line without a newline too,
    // as Postfix 3.7 counts it).
    let mut physical = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (line, after) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        physical.push((line, physical.len() + 1));
        rest = after;
    }
    let is_content =
        |line: &[u8]| matches!(line.iter().find(|&&b| !is_c_space(b)), Some(&b) if b != b'#');
    let mut logical: Vec<LogicalLine<'t>> = Vec::new();
    let mut current: Option<LogicalLine<'t>> = None;
    for (line, number) in physical {
        // Postfix peeks at the next line's first byte: `#`, white space or
        // the newline of an empty line continue the logical line.
        let continues = line.first().is_none_or(|&b| b == b'#' || is_c_space(b));
        if !continues && let Some(done) = current.take() {
            logical.push(done);
        }
        if !is_content(line) {
            continue;
        }
        match &mut current {
            Some(open) => open.text.to_mut().extend_from_slice(line),
            None => {
                current = Some(LogicalLine {
                    line: number,
                    text: Cow::Borrowed(line),
                })
            }
        }
    }
    logical.extend(current);
    logical
        .into_iter()
        .filter(|l| {
            if !l.text.first().is_some_and(|&b| is_c_space(b)) {
                return true;
            }
            let shown: Vec<u8> = l.text.iter().copied().take(30).collect();
            let more = if l.text.len() > 30 { "..." } else { "" };
            warnings.push(Warning {
                line: l.line,
                message: format!(
                    "logical line must not start with whitespace: \"{}{more}\"",
                    String::from_utf8_lossy(&shown)
                ),
                form: WarningForm::File,
            });
            false
        })
        .collect()
}

/// `trimblanks(p, 0)[0] = 0`, after cutting the C string at a NUL.
fn trim_end(text: &[u8]) -> &[u8] {
    let text = &text[..text.iter().position(|&b| b == 0).unwrap_or(text.len())];
    let end = text
        .iter()
        .rposition(|&b| !is_c_space(b))
        .map_or(0, |i| i + 1);
    &text[..end]
}

fn skip_space(text: &[u8]) -> &[u8] {
    let start = text
        .iter()
        .position(|&b| !is_c_space(b))
        .unwrap_or(text.len());
    &text[start..]
}

/// A pattern as written: text, flags, sign.
struct RawPattern<'t> {
    source: &'t [u8],
    syntax: Syntax,
    matches: bool,
}

/// `dict_regexp_get_pat`: `[!...]DpatternD[flags]` at the start of `text`;
/// returns the pattern and the text after it.
fn get_pattern<'t>(
    line: usize,
    text: &'t [u8],
    warnings: &mut Vec<Warning>,
) -> Option<(RawPattern<'t>, &'t [u8])> {
    let mut matches = true;
    let mut p = 0;
    while let Some(&b) = text.get(p) {
        if b == b'!' {
            matches = !matches;
        } else if !is_c_space(b) {
            break;
        }
        p += 1;
    }
    let Some(&delimiter) = text.get(p) else {
        warnings.push(Warning::map(line, "no regexp: skipping this rule"));
        return None;
    };
    let start = p + 1;
    let mut end = start;
    loop {
        match text.get(end) {
            Some(b'\\') if text.get(end + 1).is_some() => end += 2,
            // Postfix stops at a final backslash and takes it for the
            // closing delimiter.
            Some(b'\\') => break,
            Some(&b) if b == delimiter => break,
            Some(_) => end += 1,
            None => {
                warnings.push(Warning::map(
                    line,
                    format!(
                        "no closing regexp delimiter \"{}\": skipping this rule",
                        String::from_utf8_lossy(&[delimiter])
                    ),
                ));
                return None;
            }
        }
    }
    let source = &text[start..end];
    let mut syntax = Syntax::default();
    let mut p = end + 1;
    while let Some(&flag) = text.get(p) {
        if is_c_space(flag) || flag == b'!' {
            break;
        }
        match flag {
            b'i' => syntax.icase = !syntax.icase,
            b'm' => syntax.newline = !syntax.newline,
            b'x' => syntax.extended = !syntax.extended,
            other => {
                warnings.push(Warning::map(
                    line,
                    format!(
                        "unknown regexp option \"{}\": skipping this rule",
                        String::from_utf8_lossy(&[other])
                    ),
                ));
                return None;
            }
        }
        p += 1;
    }
    Some((
        RawPattern {
            source,
            syntax,
            matches,
        },
        &text[p..],
    ))
}

/// Translates a pattern and adds it to the table's patterns (compiled
/// together later); the [`posix::Compiled`] is returned for its group count
/// and captures.
fn compile(
    line: usize,
    raw: &RawPattern<'_>,
    patterns: &mut Patterns,
    warnings: &mut Vec<Warning>,
) -> Option<(Pattern, usize)> {
    match posix::translate(raw.source, raw.syntax) {
        Ok(compiled) => {
            if let Some(why) = compiled.approximate {
                warnings.push(Warning {
                    line,
                    message: format!(
                        "postern may decide this rule differently from Postfix: {why}"
                    ),
                    form: WarningForm::Postern,
                });
            }
            let pattern = Pattern {
                id: patterns.hirs.len(),
                matches: raw.matches,
            };
            patterns.hirs.push(compiled.hir);
            patterns.lines.push(line);
            Some((pattern, compiled.groups))
        }
        Err(posix::Error::Posix(e)) => {
            warnings.push(Warning::map(line, e.text()));
            None
        }
        Err(posix::Error::Unsupported(why)) => {
            // Postfix would use this rule; postern cannot (see `posix`).
            warnings.push(Warning {
                line,
                message: format!("{why} by postern: skipping this rule"),
                form: WarningForm::Postern,
            });
            None
        }
    }
}

/// `dict_regexp_parseline`: one logical line (trimmed, not empty).
fn parse_rule(
    line: usize,
    text: &[u8],
    nesting: usize,
    patterns: &mut Patterns,
    warnings: &mut Vec<Warning>,
) -> Option<Rule> {
    let first = text.first().copied().unwrap_or(0);
    if !first.is_ascii_alphanumeric() {
        return parse_match_rule(line, text, patterns, warnings);
    }
    if keyword(text, b"if") {
        let (raw, rest) = get_pattern(line, skip_space(&text[2..]), warnings)?;
        let rest = skip_space(rest);
        if !rest.is_empty() {
            warnings.push(Warning::map(
                line,
                format!(
                    "ignoring extra text after IF statement: \"{}\"",
                    String::from_utf8_lossy(rest)
                ),
            ));
            warnings.push(Warning::map(
                line,
                "do not prepend whitespace to statements between IF and ENDIF",
            ));
        }
        let (condition, _) = compile(line, &raw, patterns, warnings)?;
        return Some(Rule::If {
            condition,
            endif: None,
        });
    }
    if keyword(text, b"endif") {
        if nesting == 0 {
            warnings.push(Warning::map(line, "ignoring ENDIF without matching IF"));
            return None;
        }
        if !skip_space(&text[5..]).is_empty() {
            warnings.push(Warning::map(line, "ignoring extra text after ENDIF"));
        }
        return Some(Rule::Endif);
    }
    warnings.push(Warning::map(line, "ignoring unrecognized request"));
    None
}

/// `strncasecmp(text, word, len) == 0 && !ISALNUM(text[len])`.
fn keyword(text: &[u8], word: &[u8]) -> bool {
    text.len() >= word.len()
        && text[..word.len()].eq_ignore_ascii_case(word)
        && !text.get(word.len()).is_some_and(u8::is_ascii_alphanumeric)
}

fn parse_match_rule(
    line: usize,
    text: &[u8],
    patterns: &mut Patterns,
    warnings: &mut Vec<Warning>,
) -> Option<Rule> {
    let (first_raw, rest) = get_pattern(line, text, warnings)?;
    let (second_raw, rest) = if rest.first() == Some(&b'!') {
        let (raw, rest) = get_pattern(line, rest, warnings)?;
        (Some(raw), rest)
    } else {
        (None, rest)
    };
    let result_text = skip_space(rest);
    if result_text.is_empty() {
        warnings.push(Warning::map(
            line,
            "no replacement text: using empty string",
        ));
    }
    let result = match parse_result(line, result_text, warnings) {
        Some(result) => result,
        None => {
            warnings.push(Warning::map(
                line,
                "bad replacement syntax: skipping this rule",
            ));
            return None;
        }
    };
    let max_group: usize = result
        .iter()
        .filter_map(|p| match p {
            Piece::Group(n) => Some(*n),
            Piece::Literal(_) => None,
        })
        .max()
        .unwrap_or(0);
    if max_group > 0 && !first_raw.matches {
        warnings.push(Warning::map(
            line,
            "$number found in negative match replacement text: skipping this rule",
        ));
        return None;
    }
    // A rule that fails after its first pattern leaves no pattern behind.
    let start = patterns.hirs.len();
    let parsed = parse_match_patterns(line, first_raw, second_raw, max_group, patterns, warnings);
    let Some((first, second, captures)) = parsed else {
        patterns.hirs.truncate(start);
        patterns.lines.truncate(start);
        return None;
    };
    Some(Rule::Match {
        first,
        second,
        result,
        captures,
    })
}

/// The patterns of a match rule, added to `patterns`.
fn parse_match_patterns(
    line: usize,
    first_raw: RawPattern<'_>,
    second_raw: Option<RawPattern<'_>>,
    max_group: usize,
    patterns: &mut Patterns,
    warnings: &mut Vec<Warning>,
) -> Option<(Pattern, Option<Pattern>, Option<PikeVM>)> {
    let (first, groups) = compile(line, &first_raw, patterns, warnings)?;
    if max_group > groups {
        warnings.push(Warning::map(
            line,
            format!("out of range replacement index \"{max_group}\": skipping this rule"),
        ));
        return None;
    }
    let second = match second_raw {
        Some(raw) => Some(compile(line, &raw, patterns, warnings)?.0),
        None => None,
    };
    let captures = if max_group > 0 {
        let hir = patterns
            .hirs
            .get(first.id)
            .cloned()
            .unwrap_or_else(Hir::fail);
        let compiled = posix::Compiled {
            hir,
            groups,
            approximate: None,
        };
        match compiled.matcher() {
            Ok(pikevm) => Some(pikevm),
            Err(e) => {
                warnings.push(Warning {
                    line,
                    message: format!("{e} by postern: skipping this rule"),
                    form: WarningForm::Postern,
                });
                return None;
            }
        }
    } else {
        None
    };
    Some((first, second, captures))
}

/// `mac_parse` with `dict_regexp_prescan`: splits the result into literal
/// text (`$$` is `$`) and `$n`/`${n}`/`$(n)`; `None` on bad syntax, after
/// Postfix's warnings.
fn parse_result(line: usize, text: &[u8], warnings: &mut Vec<Warning>) -> Option<Vec<Piece>> {
    let quoted = || String::from_utf8_lossy(text).into_owned();
    let mut pieces = Vec::new();
    let mut literal = Vec::new();
    let mut ok = true;
    let mut p = 0;
    while let Some(&b) = text.get(p) {
        if b != b'$' {
            literal.push(b);
            p += 1;
            continue;
        }
        if text.get(p + 1) == Some(&b'$') {
            literal.push(b'$');
            p += 2;
            continue;
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(std::mem::take(&mut literal)));
        }
        p += 1;
        let name: &[u8] = match text.get(p) {
            Some(&open @ (b'{' | b'(')) => {
                let close = if open == b'{' { b'}' } else { b')' };
                let mut level = 1;
                let mut end = p + 1;
                loop {
                    match text.get(end) {
                        None => {
                            warnings.push(Warning {
                                line,
                                message: format!("truncated macro reference: \"{}\"", quoted()),
                                form: WarningForm::Bare,
                            });
                            return None;
                        }
                        Some(&c) if c == open => level += 1,
                        Some(&c) if c == close => {
                            level -= 1;
                            if level == 0 {
                                break;
                            }
                        }
                        Some(_) => {}
                    }
                    end += 1;
                }
                let name = &text[p + 1..end];
                p = end + 1;
                name
            }
            _ => {
                let len = text[p..]
                    .iter()
                    .take_while(|&&c| c.is_ascii_alphanumeric() || c == b'_')
                    .count();
                let name = &text[p..p + len];
                p += len;
                name
            }
        };
        if name.is_empty() {
            warnings.push(Warning {
                line,
                message: format!("empty macro name: \"{}\"", quoted()),
                form: WarningForm::Bare,
            });
            return None;
        }
        let shown = String::from_utf8_lossy(name);
        if !name.iter().all(u8::is_ascii_digit) {
            warnings.push(Warning::map(
                line,
                format!("non-numeric replacement index \"{shown}\""),
            ));
            ok = false;
            continue;
        }
        // `atoi`, saturating: a huge index is out of range anyway.
        let n = name.iter().fold(0usize, |n, &d| {
            n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
        });
        if n < 1 {
            warnings.push(Warning::map(
                line,
                format!("out-of-range replacement index \"{shown}\""),
            ));
            ok = false;
            continue;
        }
        pieces.push(Piece::Group(n));
    }
    if !literal.is_empty() {
        pieces.push(Piece::Literal(literal));
    }
    ok.then_some(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed's table, as its author meant it.
    const SEED: &str = include_str!("../../header-checks/tests/data/mime_header_checks.regexp");
    /// The same table as printed on the web page it comes from.
    const SEED_AS_PRINTED: &str =
        include_str!("../../header-checks/tests/data/mime_header_checks.as-printed.regexp");

    fn messages(table: &Table) -> Vec<String> {
        table.warnings().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn the_seed_table_rejects_virus_exe_with_its_text() {
        let table = Table::parse(SEED);
        assert!(table.warnings().is_empty(), "{:?}", table.warnings());
        assert_eq!(
            table
                .lookup(r#"Content-Disposition: attachment; filename="virus.exe""#)
                .as_deref(),
            Some(
                r#"REJECT Attachment type not allowed. File "virus.exe" has the unacceptable extension "exe""#
            )
        );
        assert_eq!(
            table.lookup(r#"Content-Type: application/pdf; name="report.pdf""#),
            None
        );
    }

    #[test]
    fn the_seed_table_as_printed_loses_both_rules() {
        let table = Table::parse(SEED_AS_PRINTED);
        assert!(table.is_empty());
        assert_eq!(
            messages(&table),
            [
                r#"line 1: logical line must not start with whitespace: "   /filename=\\"?(.*)\.(bat|ch...""#,
                r#"line 4: unknown regexp option "$": skipping this rule"#,
            ]
        );
        assert_eq!(
            table.warnings()[0].postfix("/etc/postfix/mime_header_checks.regexp"),
            r#"/etc/postfix/mime_header_checks.regexp: logical line must not start with whitespace: "   /filename=\\"?(.*)\.(bat|ch...""#
        );
        assert_eq!(
            table.warnings()[1].postfix("/t"),
            r#"regexp map /t, line 4: unknown regexp option "$": skipping this rule"#
        );
        assert_eq!(
            table.lookup(r#"Content-Disposition: attachment; filename="virus.exe""#),
            None
        );
    }

    /// Table text, key, expected result.
    #[test]
    fn lookups() {
        let cases: &[(&str, &str, Option<&str>)] = &[
            (
                "/^Subject: (.*)/ REJECT $1",
                "Subject: hi",
                Some("REJECT hi"),
            ),
            ("/^subject:/ OK", "SUBJECT: x", Some("OK")),
            ("/^subject:/i OK", "SUBJECT: x", None),
            ("!/^From:/ NOT-FROM", "To: x", Some("NOT-FROM")),
            ("!/^From:/ NOT-FROM", "From: x", None),
            ("!!/a/ Y", "a", Some("Y")),
            ("! /a/ Y", "b", Some("Y")),
            ("/a/!/b/ Y", "ac", Some("Y")),
            ("/a/!/b/ Y", "ab", None),
            ("/a/ !/b/ Y", "ab", Some("!/b/ Y")),
            ("#a/b# Y", "a/b", None),
            ("%a/b% Y", "a/b", Some("Y")),
            (r"/a\/b/ Y", "a/b", Some("Y")),
            ("/(a)/ ${1}x$$y", "a", Some("ax$y")),
            ("/(a)/ $(1)", "a", Some("a")),
            ("/(a)(b)?/ [$2]", "a", Some("[]")),
            ("/a/", "a", Some("")),
            ("/x/\n/a/ first\n/a/ second", "a", Some("first")),
            ("/a/\n REJECT\n  split", "a", Some("REJECT  split")),
            ("/a/ x\n# comment\n  y", "a", Some("x  y")),
            ("/a/ x\n\n  y", "a", Some("x  y")),
            ("/a/ x   \n", "a", Some("x")),
            // Multi-line keys: `.` matches a newline unless `m`.
            ("/^Subject: a.b$/ Y", "Subject: a\n b", None),
            ("/^Subject: a.*b$/ Y", "Subject: a\n b", Some("Y")),
            ("/^ b$/m Y", "Subject: a\n b", Some("Y")),
            ("/^ b$/ Y", "Subject: a\n b", None),
            // if/endif, nested, case-insensitive keywords.
            (
                "if /^Subject:/\n/spam/ S\nendif\n/spam/ OTHER",
                "Subject: spam",
                Some("S"),
            ),
            (
                "if /^Subject:/\n/spam/ S\nendif\n/spam/ OTHER",
                "X: spam",
                Some("OTHER"),
            ),
            ("if !/^Subject:/\n/x/ NS\nendif", "X: x", Some("NS")),
            ("if !/^Subject:/\n/x/ NS\nendif", "Subject: x", None),
            (
                "IF /a/\nif /b/\n/c/ ABC\nENDIF\n/c/ AC\nendif\n/c/ C",
                "ac",
                Some("AC"),
            ),
            (
                "IF /a/\nif /b/\n/c/ ABC\nENDIF\n/c/ AC\nendif\n/c/ C",
                "abc",
                Some("ABC"),
            ),
            (
                "IF /a/\nif /b/\n/c/ ABC\nENDIF\n/c/ AC\nendif\n/c/ C",
                "c",
                Some("C"),
            ),
            ("If/a/\n/x/ X", "x", None),
            ("If/a/\n/x/ X", "ax", Some("X")),
            // A NUL ends the key, as in C.
            ("/b/ Y", "a\0b", None),
        ];
        for (text, key, want) in cases {
            let table = Table::parse(text);
            assert_eq!(table.lookup(key).as_deref(), *want, "{text:?} on {key:?}");
        }
    }

    /// Table text and the warnings Postfix 3.7 prints for it.
    #[test]
    fn warnings_name_the_line_and_skip_the_rule() {
        let cases: &[(&str, &[&str])] = &[
            (
                "/a/q Y",
                &[r#"line 1: unknown regexp option "q": skipping this rule"#],
            ),
            (
                "\n\n/a Y",
                &[r#"line 3: no closing regexp delimiter "/": skipping this rule"#],
            ),
            (
                "! Y",
                &[r#"line 1: no closing regexp delimiter "Y": skipping this rule"#],
            ),
            ("!", &["line 1: no regexp: skipping this rule"]),
            (
                r"/a\/b/ [$1]",
                &[r#"line 1: out of range replacement index "1": skipping this rule"#],
            ),
            (
                "!/a/ $1",
                &["line 1: $number found in negative match replacement text: skipping this rule"],
            ),
            (
                "/(a)/ $0",
                &[
                    r#"line 1: out-of-range replacement index "0""#,
                    "line 1: bad replacement syntax: skipping this rule",
                ],
            ),
            (
                "/a/ $x $y",
                &[
                    r#"line 1: non-numeric replacement index "x""#,
                    r#"line 1: non-numeric replacement index "y""#,
                    "line 1: bad replacement syntax: skipping this rule",
                ],
            ),
            (
                "/(a)/ $1b",
                &[
                    r#"line 1: non-numeric replacement index "1b""#,
                    "line 1: bad replacement syntax: skipping this rule",
                ],
            ),
            (
                "/a/ ${1",
                &[
                    r#"line 1: truncated macro reference: "${1""#,
                    "line 1: bad replacement syntax: skipping this rule",
                ],
            ),
            (
                "/a/ x$",
                &[
                    r#"line 1: empty macro name: "x$""#,
                    "line 1: bad replacement syntax: skipping this rule",
                ],
            ),
            ("/a/", &["line 1: no replacement text: using empty string"]),
            (
                "if /a/ extra",
                &[
                    r#"line 1: ignoring extra text after IF statement: "extra""#,
                    "line 1: do not prepend whitespace to statements between IF and ENDIF",
                    "line 1: IF has no matching ENDIF",
                ],
            ),
            ("endif", &["line 1: ignoring ENDIF without matching IF"]),
            (
                "if /a/\nendif x",
                &["line 2: ignoring extra text after ENDIF"],
            ),
            ("foo /a/ Y", &["line 1: ignoring unrecognized request"]),
            ("/[z-a]/ Y", &["line 1: Invalid range end"]),
            ("/(a/ Y", &["line 1: Unmatched ( or \\("]),
            (
                "/(a)\\1/ Y",
                &["line 1: back-references (\\1) are not supported by postern: skipping this rule"],
            ),
            (
                "  /a/ Y\n/b/ Z",
                &[r#"line 1: logical line must not start with whitespace: "  /a/ Y""#],
            ),
            (
                "/a/ Y\n/b/q Z",
                &[r#"line 2: unknown regexp option "q": skipping this rule"#],
            ),
        ];
        for (text, want) in cases {
            assert_eq!(messages(&Table::parse(text)), *want, "{text:?}");
        }
    }

    #[test]
    fn a_bad_if_leaves_its_endif_unmatched() {
        // The IF fails to compile, so its ENDIF closes nothing (Postfix).
        let table = Table::parse("if /(/\n/a/ A\nendif\n/b/ B");
        assert_eq!(
            messages(&table),
            [
                "line 1: Unmatched ( or \\(",
                "line 3: ignoring ENDIF without matching IF"
            ]
        );
        assert_eq!(table.lookup("a").as_deref(), Some("A"));
        assert_eq!(table.lookup("b").as_deref(), Some("B"));
    }

    #[test]
    fn results_may_hold_eight_bit_bytes() {
        let table = Table::parse_bytes(b"/^Subject: (.*)/ S=$1");
        assert_eq!(
            table.lookup_bytes(b"Subject: \xe9t\xe9"),
            Some(b"S=\xe9t\xe9".to_vec())
        );
        assert_eq!(table.lookup("Subject: été").as_deref(), Some("S=été"));
    }
}
