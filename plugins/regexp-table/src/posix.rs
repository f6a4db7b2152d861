//! POSIX regular expressions as glibc's `regcomp(3)` reads them, for the
//! `regex` crate's engines.
//!
//! In: one pattern from a regexp table and its `REG_EXTENDED`, `REG_ICASE`
//! and `REG_NEWLINE` flags. Out: the pattern as `regex-syntax` HIR
//! ([`Compiled`]) with its number of groups (`re_nsub`), or the error glibc
//! reports, with glibc's `regerror` text, or why postern cannot run a pattern
//! glibc accepts.
//!
//! Postfix never calls `setlocale`, so glibc runs in the C locale: patterns
//! and subjects are bytes, classes are ASCII, case folding is ASCII. The
//! parser below follows glibc's (`posix/regcomp.c`: `peek_token`,
//! `parse_expression`, `parse_dup_op`, `parse_bracket_exp`) so that it
//! accepts and refuses exactly what glibc does, and builds HIR directly:
//! every character is an explicit byte set, every anchor an explicit
//! assertion, nothing is left to `regex`'s own reading of case, newlines or
//! Unicode, and no pattern text is parsed twice (building HIR directly is
//! what makes compiling ten times cheaper than through `regex::Regex`).
//!
//! glibc behaviours reproduced on purpose (each checked with `postmap`):
//! - `\d`, `\n`, `\t`... are not escapes: an escaped ordinary character is
//!   itself. Under `REG_ICASE` (a table's default) glibc compares the escaped
//!   character untranslated with upper-cased input, so an escaped *lower-case*
//!   letter never matches anything (`/\d/` matches neither `d` nor `5`), and
//!   an escaped upper-case letter matches both cases.
//! - Under `REG_ICASE` bracket characters and range ends are upper-cased
//!   before the range is built (`[_-a]` is an invalid range, `[A-z]` does
//!   not hold `_`), and `[:lower:]`/`[:upper:]` mean `[:alpha:]`.
//! - `REG_NEWLINE`: `.` and non-matching lists `[^...]` do not match a
//!   newline, `^`/`$` match at line ends. Without it `.` matches a newline,
//!   and `^`/`$` match at the ends of the subject, or next to a newline that
//!   the same match consumes (`/a$./` matches `a\nb`, `/a$/` does not).
//! - ERE: stacked repetitions (`a**`, `a+?` = `(a+)?`, not lazy), `{,n}`,
//!   an unmatched `)` is a literal, a repetition operator with nothing to
//!   repeat is an error, anchors cannot be repeated, `[` at the end is
//!   "Invalid regular expression".
//! - BRE (the `x` flag): `\( \) \{ \} \| \+ \?`, `*` literal at the start
//!   of an expression, `^` an anchor only at the start, after `\(` or `\|`,
//!   `$` only at the end, before `\)` or `\|`.
//!
//! Deliberate differences (see [`Error::Unsupported`],
//! [`Compiled::approximate`] and the crate docs): back-references (`\1`)
//! are refused, since the `regex` engines have none; `regex` picks submatches
//! leftmost-first where glibc picks them leftmost-longest, which changes
//! `$n` text (never whether a rule matches) for patterns like `(ex|exe)`
//! against `exe`; a `^`/`$` that may or may not be at an end of the match
//! without the `m` flag, and anchors in groups repeated more than once
//! (where glibc loses some), are approximated, with a warning.
//!
//! Must not: panic on any pattern; patterns come from the operator's tables.

use std::fmt;

use regex_automata::nfa::thompson::{self, WhichCaptures, pikevm::PikeVM};
use regex_syntax::hir::{Capture, Class, ClassBytes, ClassBytesRange, Hir, Look, Repetition};

/// `RE_DUP_MAX`: the largest repetition count glibc accepts.
const RE_DUP_MAX: u32 = 0x7fff;

/// glibc's `BRACKET_NAME_BUF_SIZE`: longest `[:name:]`, `[.x.]`, `[=x=]`.
const BRACKET_NAME_MAX_BYTES: usize = 32;

/// NFA size allowed to one pattern (the `regex` default is 10 MiB; a plugin
/// instance has 64 MiB in all).
pub const NFA_SIZE_LIMIT_BYTES: usize = 8 << 20;

/// The `regcomp` flags a regexp table controls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Syntax {
    /// `REG_EXTENDED` (on by default; the `x` flag turns it off: BRE).
    pub extended: bool,
    /// `REG_ICASE` (on by default; the `i` flag turns it off).
    pub icase: bool,
    /// `REG_NEWLINE` (off by default; the `m` flag turns it on).
    pub newline: bool,
}

impl Default for Syntax {
    /// A regexp table's defaults: `REG_EXTENDED | REG_ICASE`.
    fn default() -> Syntax {
        Syntax {
            extended: true,
            icase: true,
            newline: false,
        }
    }
}

/// glibc's `regcomp` error codes, with `regerror`'s text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PosixError {
    /// `REG_BADPAT`.
    BadPattern,
    /// `REG_ECOLLATE`.
    Collate,
    /// `REG_ECTYPE`.
    CharClass,
    /// `REG_EESCAPE`.
    TrailingBackslash,
    /// `REG_ESUBREG`.
    BackReference,
    /// `REG_EBRACK`.
    Bracket,
    /// `REG_EPAREN`.
    Paren,
    /// `REG_EBRACE`.
    Brace,
    /// `REG_BADBR`.
    BraceContent,
    /// `REG_ERANGE`.
    Range,
    /// `REG_ESIZE`.
    TooBig,
    /// `REG_BADRPT`.
    Repetition,
    /// `REG_ERPAREN`.
    RightParen,
}

impl PosixError {
    /// glibc's `regerror(3)` text.
    pub fn text(self) -> &'static str {
        match self {
            PosixError::BadPattern => "Invalid regular expression",
            PosixError::Collate => "Invalid collation character",
            PosixError::CharClass => "Invalid character class name",
            PosixError::TrailingBackslash => "Trailing backslash",
            PosixError::BackReference => "Invalid back reference",
            PosixError::Bracket => "Unmatched [, [^, [:, [., or [=",
            PosixError::Paren => "Unmatched ( or \\(",
            PosixError::Brace => "Unmatched \\{",
            PosixError::BraceContent => "Invalid content of \\{\\}",
            PosixError::Range => "Invalid range end",
            PosixError::TooBig => "Regular expression too big",
            PosixError::Repetition => "Invalid preceding regular expression",
            PosixError::RightParen => "Unmatched ) or \\)",
        }
    }
}

/// Why a pattern cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// glibc refuses it too; Postfix logs the text and skips the rule.
    Posix(PosixError),
    /// glibc accepts it but postern cannot run it (a deliberate difference):
    /// the rule is skipped with this explanation.
    Unsupported(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Posix(e) => f.write_str(e.text()),
            Error::Unsupported(why) => f.write_str(why),
        }
    }
}

impl From<PosixError> for Error {
    fn from(e: PosixError) -> Error {
        Error::Posix(e)
    }
}

/// A pattern, translated for the `regex` engines.
#[derive(Clone, Debug)]
pub struct Compiled {
    /// The pattern as `regex-syntax` HIR: explicit byte sets and
    /// assertions, no flags left to interpret.
    pub hir: Hir,
    /// How many `( )` groups it has (glibc's `re_nsub`).
    pub groups: usize,
    /// Why postern may decide this pattern differently from glibc, if it
    /// may: [`MIXED_ANCHOR`] or [`REPEATED_ANCHOR`].
    pub approximate: Option<&'static str>,
}

/// Why [`Compiled::approximate`] is set: without `REG_NEWLINE` glibc lets
/// `^` match after, and `$` before, a newline that the same match consumes
/// (but not at the ends of the match); `regex` can express that only when
/// every path through the anchor agrees on whether something of the match
/// comes before (`^`) or after (`$`) it.
pub const MIXED_ANCHOR: &str =
    "a ^ or $ that may or may not be at an end of the match, without the m flag";

/// Why [`Compiled::approximate`] is set: glibc drops some anchors of a
/// group repeated more than once (`/(a\>){2}/` matches `aa`, `/(\<a)+/`
/// matches `aa`: a glibc bug); postern applies them as written.
pub const REPEATED_ANCHOR: &str = "an anchor inside a group repeated more than once";

/// The NFA configuration every pattern is built with: bytes, not UTF-8.
pub fn nfa_config() -> thompson::Config {
    thompson::Config::new()
        .utf8(false)
        .nfa_size_limit(Some(NFA_SIZE_LIMIT_BYTES))
}

/// Compiles `pattern` as glibc would with `syntax`: translates it and
/// checks that its NFA can be built. (A table translates its patterns and
/// builds them together instead.)
pub fn compile(pattern: &[u8], syntax: Syntax) -> Result<Compiled, Error> {
    let compiled = translate(pattern, syntax)?;
    thompson::Compiler::new()
        .configure(nfa_config().which_captures(WhichCaptures::None))
        .build_from_hir(&compiled.hir)
        .map_err(|e| Error::Unsupported(format!("this pattern ({e}) is not supported")))?;
    Ok(compiled)
}

impl Compiled {
    /// A leftmost-first matcher with captures, for `$n` and for tests.
    pub fn matcher(&self) -> Result<PikeVM, Error> {
        let unsupported =
            |e: String| Error::Unsupported(format!("this pattern ({e}) is not supported"));
        let nfa = thompson::Compiler::new()
            .configure(nfa_config())
            .build_from_hir(&self.hir)
            .map_err(|e| unsupported(e.to_string()))?;
        PikeVM::new_from_nfa(nfa).map_err(|e| unsupported(e.to_string()))
    }
}

/// Translates `pattern` into `regex-syntax` HIR.
pub fn translate(pattern: &[u8], syntax: Syntax) -> Result<Compiled, Error> {
    // A C string: glibc never sees past a NUL.
    let end = pattern
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(pattern.len());
    let mut parser = Parser {
        pattern: &pattern[..end],
        pos: 0,
        syntax,
        token: Token::End,
        groups: 0,
        completed: 0,
    };
    parser.fetch(true);
    let mut tree = parser.parse_alternation(0)?;
    let mut mixed = false;
    if !syntax.newline {
        forward(&mut tree, NONE, &mut mixed);
        backward(&mut tree, NONE, &mut mixed);
    }
    let approximate = if mixed {
        Some(MIXED_ANCHOR)
    } else if repeated_anchor(&tree, false) {
        Some(REPEATED_ANCHOR)
    } else {
        None
    };
    Ok(Compiled {
        hir: to_hir(&tree, syntax.newline),
        groups: parser.groups,
        approximate,
    })
}

/// A parsed pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Node {
    Empty,
    /// One byte out of a set.
    Set(ByteSet),
    /// A zero-width assertion; `context` collects, for `^` and `$` without
    /// `REG_NEWLINE`, whether bytes of the match can be consumed before
    /// (`^`) or after (`$`) it: [`NONE`], [`SOME`] or both.
    Assert {
        anchor: Anchor,
        context: u8,
    },
    /// Group number (from 1) and contents.
    Group(u32, Box<Node>),
    Concat(Vec<Node>),
    Alt(Vec<Node>),
    Repeat(Box<Node>, Repeat),
}

/// Nothing of the match consumed (yet, or any more).
const NONE: u8 = 1;
/// At least one byte of the match consumed.
const SOME: u8 = 2;

/// Whether a word or line anchor sits inside a repetition that may run
/// more than once.
fn repeated_anchor(node: &Node, repeated: bool) -> bool {
    match node {
        Node::Empty | Node::Set(_) => false,
        Node::Assert { anchor, .. } => {
            repeated && !matches!(anchor, Anchor::BufFirst | Anchor::BufLast)
        }
        Node::Group(_, inner) => repeated_anchor(inner, repeated),
        Node::Concat(items) | Node::Alt(items) => {
            items.iter().any(|i| repeated_anchor(i, repeated))
        }
        Node::Repeat(body, repeat) => {
            repeated_anchor(body, repeated || repeat.max.is_none_or(|max| max > 1))
        }
    }
}

/// Which consumption states reach the end of `node` from `entry`; records
/// them at each `^`.
fn forward(node: &mut Node, entry: u8, mixed: &mut bool) -> u8 {
    match node {
        Node::Empty => entry,
        Node::Set(_) => {
            if entry == 0 {
                0
            } else {
                SOME
            }
        }
        Node::Assert { anchor, context } => {
            if *anchor == Anchor::LineFirst {
                *context |= entry;
                *mixed |= *context == NONE | SOME;
            }
            entry
        }
        Node::Group(_, inner) => forward(inner, entry, mixed),
        Node::Concat(items) => items
            .iter_mut()
            .fold(entry, |state, item| forward(item, state, mixed)),
        Node::Alt(branches) => branches
            .iter_mut()
            .fold(0, |out, branch| out | forward(branch, entry, mixed)),
        Node::Repeat(body, repeat) => {
            repeat_states(body, *repeat, entry, &mut |b, s| forward(b, s, mixed))
        }
    }
}

/// As [`forward`], right to left: records at each `$` whether bytes can
/// still be consumed after it.
fn backward(node: &mut Node, exit: u8, mixed: &mut bool) -> u8 {
    match node {
        Node::Empty => exit,
        Node::Set(_) => {
            if exit == 0 {
                0
            } else {
                SOME
            }
        }
        Node::Assert { anchor, context } => {
            if *anchor == Anchor::LineLast {
                *context |= exit;
                *mixed |= *context == NONE | SOME;
            }
            exit
        }
        Node::Group(_, inner) => backward(inner, exit, mixed),
        Node::Concat(items) => items
            .iter_mut()
            .rev()
            .fold(exit, |state, item| backward(item, state, mixed)),
        Node::Alt(branches) => branches
            .iter_mut()
            .fold(0, |out, branch| out | backward(branch, exit, mixed)),
        Node::Repeat(body, repeat) => {
            repeat_states(body, *repeat, exit, &mut |b, s| backward(b, s, mixed))
        }
    }
}

/// The states after `repeat` iterations of `body` from `start`, where `step`
/// runs one iteration; iterates until the (four-valued) state settles.
fn repeat_states(
    body: &mut Node,
    repeat: Repeat,
    start: u8,
    step: &mut dyn FnMut(&mut Node, u8) -> u8,
) -> u8 {
    let mut out = if repeat.min == 0 { start } else { 0 };
    let mut state = start;
    let mut done = 0u32;
    loop {
        if repeat.max.is_some_and(|max| done >= max) {
            return out;
        }
        let next = step(body, state);
        done += 1;
        if done >= repeat.min {
            out |= next;
        }
        if next == state && done >= repeat.min {
            return out;
        }
        state = next;
    }
}

/// `node` as HIR.
fn to_hir(node: &Node, newline: bool) -> Hir {
    match node {
        Node::Empty => Hir::empty(),
        Node::Set(set) => set.to_hir(),
        Node::Assert { anchor, context } => Hir::look(match anchor {
            Anchor::LineFirst if newline || *context & SOME != 0 => Look::StartLF,
            Anchor::LineLast if newline || *context & SOME != 0 => Look::EndLF,
            Anchor::LineFirst | Anchor::BufFirst => Look::Start,
            Anchor::LineLast | Anchor::BufLast => Look::End,
            Anchor::WordFirst => Look::WordStartAscii,
            Anchor::WordLast => Look::WordEndAscii,
            Anchor::WordDelim => Look::WordAscii,
            Anchor::NotWordDelim => Look::WordAsciiNegate,
        }),
        Node::Group(index, inner) => Hir::capture(Capture {
            index: *index,
            name: None,
            sub: Box::new(to_hir(inner, newline)),
        }),
        Node::Concat(items) => {
            // Runs of single bytes become one literal (fewer HIR nodes).
            let mut out = Vec::with_capacity(items.len());
            let mut run = Vec::new();
            for item in items {
                match item {
                    Node::Set(set) if set.single().is_some() => run.extend(set.single()),
                    other => {
                        if !run.is_empty() {
                            out.push(Hir::literal(std::mem::take(&mut run)));
                        }
                        out.push(to_hir(other, newline));
                    }
                }
            }
            if !run.is_empty() {
                out.push(Hir::literal(run));
            }
            Hir::concat(out)
        }
        Node::Alt(branches) => {
            Hir::alternation(branches.iter().map(|b| to_hir(b, newline)).collect())
        }
        Node::Repeat(body, repeat) => {
            let sub = to_hir(body, newline);
            if repeat.max == Some(0) {
                // `x{0}` matches the empty string, but its groups must stay
                // (HIR would drop them, leaving a gap in the numbering).
                return Hir::alternation(vec![Hir::empty(), Hir::concat(vec![Hir::fail(), sub])]);
            }
            Hir::repetition(Repetition {
                min: repeat.min,
                max: repeat.max,
                greedy: true,
                sub: Box::new(sub),
            })
        }
    }
}

/// Zero-width assertions (glibc's `ANCHOR` tokens).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Anchor {
    LineFirst,
    LineLast,
    BufFirst,
    BufLast,
    WordFirst,
    WordLast,
    WordDelim,
    NotWordDelim,
}

/// The shorthand classes `\w \W \s \S`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Shorthand {
    Word,
    NotWord,
    Space,
    NotSpace,
}

/// glibc's tokens (`re_token_t`), as far as they matter here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    /// A character; `escaped` if written `\c` (see the `REG_ICASE` quirk).
    Char {
        byte: u8,
        escaped: bool,
    },
    End,
    /// A backslash at the end of the pattern.
    TrailingBackslash,
    Alt,
    Star,
    Plus,
    Question,
    OpenBrace,
    CloseBrace,
    OpenGroup,
    CloseGroup,
    OpenBracket,
    Period,
    Anchor(Anchor),
    BackReference(u8),
    Shorthand(Shorthand),
}

/// A repetition: `{min,max}`, `max` `None` for unbounded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Repeat {
    min: u32,
    max: Option<u32>,
}

/// A set of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
struct ByteSet([u64; 4]);

impl ByteSet {
    fn one(b: u8) -> ByteSet {
        let mut set = ByteSet::default();
        set.insert(b);
        set
    }

    fn insert(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }

    fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }

    fn insert_range(&mut self, from: u8, to: u8) {
        for b in from..=to {
            self.insert(b);
        }
    }

    fn from_fn(f: impl Fn(u8) -> bool) -> ByteSet {
        let mut set = ByteSet::default();
        for b in 0..=255u8 {
            if f(b) {
                set.insert(b);
            }
        }
        set
    }

    /// The set as ranges of consecutive bytes, read a word at a time.
    fn ranges(self) -> Vec<(u8, u8)> {
        // The first member at or after `from` (`set` true), or the first
        // non-member (`set` false); 256 for none.
        let next = |from: u32, set: bool| -> u32 {
            let mut at = from;
            while at < 256 {
                let word = self.0[(at / 64) as usize];
                let word = if set { word } else { !word } >> (at % 64);
                if word != 0 {
                    return at + word.trailing_zeros();
                }
                at = (at / 64 + 1) * 64;
            }
            256
        };
        let mut ranges = Vec::new();
        let mut at = 0;
        while at < 256 {
            let start = next(at, true);
            if start >= 256 {
                break;
            }
            let end = next(start, false);
            // INVARIANT: start < end <= 256, so both fit a byte.
            ranges.push((start as u8, (end - 1) as u8));
            at = end;
        }
        ranges
    }

    /// The member of a one-byte set.
    fn single(&self) -> Option<u8> {
        if self.0.iter().map(|w| w.count_ones()).sum::<u32>() != 1 {
            return None;
        }
        let word = self.0.iter().position(|&w| w != 0)?;
        // INVARIANT: word < 4 and the bit index < 64, so this is < 256.
        Some((word * 64 + self.0[word].trailing_zeros() as usize) as u8)
    }

    /// As HIR: a literal for one byte, else a class (an empty one never
    /// matches).
    fn to_hir(self) -> Hir {
        if let Some(byte) = self.single() {
            return Hir::literal([byte]);
        }
        let ranges = self
            .ranges()
            .into_iter()
            .map(|(a, b)| ClassBytesRange::new(a, b));
        Hir::class(Class::Bytes(ClassBytes::new(ranges)))
    }
}

/// The C locale's `<ctype.h>` classes, by the names `[:name:]` accepts.
fn posix_class(name: &[u8], icase: bool) -> Option<ByteSet> {
    let test: fn(u8) -> bool = match name {
        b"alpha" => |b| b.is_ascii_alphabetic(),
        // glibc: under REG_ICASE upper and lower mean alpha.
        b"upper" if icase => |b| b.is_ascii_alphabetic(),
        b"lower" if icase => |b| b.is_ascii_alphabetic(),
        b"upper" => |b| b.is_ascii_uppercase(),
        b"lower" => |b| b.is_ascii_lowercase(),
        b"digit" => |b| b.is_ascii_digit(),
        b"xdigit" => |b| b.is_ascii_hexdigit(),
        b"alnum" => |b| b.is_ascii_alphanumeric(),
        b"space" => is_c_space,
        b"blank" => |b| b == b' ' || b == b'\t',
        b"punct" => |b| b.is_ascii_punctuation(),
        b"print" => |b| (0x20..0x7f).contains(&b),
        b"graph" => |b| b.is_ascii_graphic(),
        b"cntrl" => |b| b < 0x20 || b == 0x7f,
        _ => return None,
    };
    Some(ByteSet::from_fn(test))
}

/// C `isspace` in the C locale.
pub fn is_c_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

struct Parser<'p> {
    pattern: &'p [u8],
    pos: usize,
    syntax: Syntax,
    /// The current token (glibc's `token`), already consumed from `pos`.
    token: Token,
    /// Groups opened so far: `re_nsub`.
    groups: usize,
    /// Bit n set once group n+1 is closed (glibc's `completed_bkref_map`).
    completed: u32,
}

impl Parser<'_> {
    fn byte_at(&self, i: usize) -> Option<u8> {
        self.pattern.get(i).copied()
    }

    /// glibc's `peek_token` at `at`: the token there and its length.
    /// `caret_here` is `RE_CARET_ANCHORS_HERE` (after `\(`, `\|` or an
    /// anchor, where a BRE `^` anchors).
    fn peek_at(&self, at: usize, caret_here: bool) -> (Token, usize) {
        let Some(c) = self.byte_at(at) else {
            return (Token::End, 0);
        };
        let ere = self.syntax.extended;
        if c == b'\\' {
            let Some(c2) = self.byte_at(at + 1) else {
                return (Token::TrailingBackslash, 1);
            };
            let token = match c2 {
                b'|' if !ere => Token::Alt,
                b'1'..=b'9' => Token::BackReference(c2 - b'0'),
                b'<' => Token::Anchor(Anchor::WordFirst),
                b'>' => Token::Anchor(Anchor::WordLast),
                b'b' => Token::Anchor(Anchor::WordDelim),
                b'B' => Token::Anchor(Anchor::NotWordDelim),
                b'w' => Token::Shorthand(Shorthand::Word),
                b'W' => Token::Shorthand(Shorthand::NotWord),
                b's' => Token::Shorthand(Shorthand::Space),
                b'S' => Token::Shorthand(Shorthand::NotSpace),
                b'`' => Token::Anchor(Anchor::BufFirst),
                b'\'' => Token::Anchor(Anchor::BufLast),
                b'(' if !ere => Token::OpenGroup,
                b')' if !ere => Token::CloseGroup,
                b'+' if !ere => Token::Plus,
                b'?' if !ere => Token::Question,
                b'{' if !ere => Token::OpenBrace,
                b'}' if !ere => Token::CloseBrace,
                _ => Token::Char {
                    byte: c2,
                    escaped: true,
                },
            };
            return (token, 2);
        }
        let token = match c {
            b'|' if ere => Token::Alt,
            b'*' => Token::Star,
            b'+' if ere => Token::Plus,
            b'?' if ere => Token::Question,
            b'{' if ere => Token::OpenBrace,
            b'}' if ere => Token::CloseBrace,
            b'(' if ere => Token::OpenGroup,
            b')' if ere => Token::CloseGroup,
            b'[' => Token::OpenBracket,
            b'.' => Token::Period,
            b'^' if ere || at == 0 || caret_here => Token::Anchor(Anchor::LineFirst),
            b'$' if ere || at + 1 == self.pattern.len() => Token::Anchor(Anchor::LineLast),
            b'$' => {
                // BRE: `$` anchors only before `\|` or `\)`.
                match self.peek_at(at + 1, false).0 {
                    Token::Alt | Token::CloseGroup => Token::Anchor(Anchor::LineLast),
                    _ => Token::Char {
                        byte: c,
                        escaped: false,
                    },
                }
            }
            _ => Token::Char {
                byte: c,
                escaped: false,
            },
        };
        (token, 1)
    }

    /// glibc's `fetch_token`: consumes the next token into `self.token`.
    fn fetch(&mut self, caret_here: bool) {
        let (token, len) = self.peek_at(self.pos, caret_here);
        self.token = token;
        self.pos += len;
    }

    /// `parse_reg_exp`: branches separated by `|`.
    fn parse_alternation(&mut self, nest: usize) -> Result<Node, Error> {
        let first = self.parse_branch(nest)?;
        if self.token != Token::Alt {
            return Ok(first);
        }
        let mut branches = vec![first];
        while self.token == Token::Alt {
            self.fetch(true);
            branches.push(if self.ends_branch(nest) {
                Node::Empty
            } else {
                self.parse_branch(nest)?
            });
        }
        Ok(Node::Alt(branches))
    }

    fn ends_branch(&self, nest: usize) -> bool {
        matches!(self.token, Token::Alt | Token::End)
            || (nest > 0 && self.token == Token::CloseGroup)
    }

    /// `parse_branch`: a concatenation of expressions.
    fn parse_branch(&mut self, nest: usize) -> Result<Node, Error> {
        let mut items = vec![self.parse_expression(nest)?];
        while !self.ends_branch(nest) {
            items.push(self.parse_expression(nest)?);
        }
        Ok(if items.len() == 1 {
            items.pop().unwrap_or(Node::Empty)
        } else {
            Node::Concat(items)
        })
    }

    /// `parse_expression`: one atom and its repetitions.
    fn parse_expression(&mut self, nest: usize) -> Result<Node, Error> {
        let ere = self.syntax.extended;
        let mut node = match self.token {
            Token::Char { byte, escaped } => {
                let set = self.char_set(byte, escaped);
                self.fetch(false);
                Node::Set(set)
            }
            Token::Period => {
                let newline = self.syntax.newline;
                self.fetch(false);
                // RE_DOT_NEWLINE unless REG_NEWLINE; NUL never occurs.
                Node::Set(ByteSet::from_fn(|b| !(newline && b == b'\n')))
            }
            Token::OpenBracket => {
                let set = self.parse_bracket()?;
                self.fetch(false);
                Node::Set(set)
            }
            Token::OpenGroup => self.parse_group(nest)?,
            Token::BackReference(n) => {
                if self.completed & (1 << (n - 1)) == 0 {
                    return Err(PosixError::BackReference.into());
                }
                return Err(Error::Unsupported(format!(
                    "back-references (\\{n}) are not supported"
                )));
            }
            Token::Anchor(anchor) => {
                // glibc returns here: an anchor takes no repetition, so a
                // following `*` is parsed as an expression of its own (and
                // a BRE `^` after it is a literal).
                self.fetch(false);
                return Ok(Node::Assert { anchor, context: 0 });
            }
            Token::Shorthand(class) => {
                self.fetch(false);
                Node::Set(shorthand(class))
            }
            Token::OpenBrace if !ere => return Err(PosixError::Repetition.into()),
            Token::Star | Token::Plus | Token::Question | Token::OpenBrace => {
                if ere {
                    return Err(PosixError::Repetition.into());
                }
                // BRE: a `*` with nothing before it is a literal.
                let byte = match self.token {
                    Token::Plus => b'+',
                    Token::Question => b'?',
                    _ => b'*',
                };
                self.fetch(false);
                Node::Set(ByteSet::one(byte))
            }
            Token::CloseGroup => {
                if !ere {
                    // What glibc reports for a BRE `\)` without `\(`.
                    return Err(PosixError::Paren.into());
                }
                // RE_UNMATCHED_RIGHT_PAREN_ORD.
                self.fetch(false);
                Node::Set(ByteSet::one(b')'))
            }
            Token::CloseBrace => {
                self.fetch(false);
                Node::Set(ByteSet::one(b'}'))
            }
            Token::Alt | Token::End => return Ok(Node::Empty),
            Token::TrailingBackslash => return Err(PosixError::TrailingBackslash.into()),
        };
        while matches!(
            self.token,
            Token::Star | Token::Plus | Token::Question | Token::OpenBrace
        ) {
            let repeat = self.parse_repeat()?;
            node = Node::Repeat(Box::new(node), repeat);
            // BRE (RE_CONTEXT_INVALID_DUP): no `*` or `\{` after a repetition.
            if !ere && matches!(self.token, Token::Star | Token::OpenBrace) {
                return Err(PosixError::Repetition.into());
            }
        }
        Ok(node)
    }

    /// The bytes a character token matches, with glibc's `REG_ICASE`
    /// handling.
    fn char_set(&self, byte: u8, escaped: bool) -> ByteSet {
        if !self.syntax.icase || !byte.is_ascii_alphabetic() {
            return ByteSet::one(byte);
        }
        if escaped && byte.is_ascii_lowercase() {
            // glibc compares the untranslated escaped byte with upper-cased
            // input: it never matches.
            return ByteSet::default();
        }
        let mut set = ByteSet::one(byte.to_ascii_uppercase());
        set.insert(byte.to_ascii_lowercase());
        set
    }

    /// `parse_sub_exp`: `( ... )`, with the opening token current.
    fn parse_group(&mut self, nest: usize) -> Result<Node, Error> {
        self.groups += 1;
        let index = self.groups;
        self.fetch(true);
        let inner = if self.token == Token::CloseGroup {
            Node::Empty
        } else {
            let inner = self.parse_alternation(nest + 1)?;
            if self.token != Token::CloseGroup {
                return Err(PosixError::Paren.into());
            }
            inner
        };
        if index <= 9 {
            self.completed |= 1 << (index - 1);
        }
        self.fetch(false);
        Ok(Node::Group(
            u32::try_from(index).unwrap_or(u32::MAX),
            Box::new(inner),
        ))
    }

    /// `parse_dup_op`: the current token is `*`, `+`, `?` or `{`; leaves
    /// the token after the repetition current.
    fn parse_repeat(&mut self) -> Result<Repeat, Error> {
        let repeat = match self.token {
            Token::Star => Repeat { min: 0, max: None },
            Token::Plus => Repeat { min: 1, max: None },
            Token::Question => Repeat {
                min: 0,
                max: Some(1),
            },
            _ => return self.parse_interval(),
        };
        self.fetch(false);
        Ok(repeat)
    }

    /// `{m,n}`, with glibc's `fetch_number` reading and its error choice.
    fn parse_interval(&mut self) -> Result<Repeat, Error> {
        /// `fetch_number`: `None` for no digits, `Some(None)` for garbage
        /// or the end of the pattern (`-2`), else the (capped) number.
        fn fetch_number(p: &mut Parser<'_>) -> Option<Option<u32>> {
            let mut num: Option<Option<u32>> = None;
            loop {
                p.fetch(false);
                match p.token {
                    Token::End => return Some(None),
                    Token::CloseBrace | Token::Char { byte: b',', .. } => return num,
                    Token::Char { byte, .. } if byte.is_ascii_digit() && num != Some(None) => {
                        let digit = u32::from(byte - b'0');
                        num = Some(Some(match num {
                            Some(Some(n)) => (n * 10 + digit).min(RE_DUP_MAX + 1),
                            _ => digit,
                        }));
                    }
                    _ => num = Some(None),
                }
            }
        }
        let start = match fetch_number(self) {
            // `{,n}` is `{0,n}`; `{}` is invalid.
            None if matches!(self.token, Token::Char { byte: b',', .. }) => Some(0),
            None => return Err(PosixError::BraceContent.into()),
            Some(n) => n,
        };
        let end = match start {
            None => None,
            Some(start) if self.token == Token::CloseBrace => Some(Some(start)),
            Some(_) => match fetch_number(self) {
                None => Some(None),
                Some(None) => None,
                Some(Some(n)) => Some(Some(n)),
            },
        };
        let (Some(start), Some(end)) = (start, end) else {
            return Err(if self.token == Token::End {
                PosixError::Brace
            } else {
                PosixError::BraceContent
            }
            .into());
        };
        if end.is_some_and(|end| start > end) || self.token != Token::CloseBrace {
            return Err(PosixError::BraceContent.into());
        }
        if end.unwrap_or(start) > RE_DUP_MAX {
            return Err(PosixError::TooBig.into());
        }
        self.fetch(false);
        Ok(Repeat {
            min: start,
            max: end,
        })
    }

    /// `parse_bracket_exp`: `[...]`, with `[` consumed; leaves `pos` after
    /// the closing `]`. Returns the byte set as a `regex` class.
    fn parse_bracket(&mut self) -> Result<ByteSet, Error> {
        let icase = self.syntax.icase;
        let mut set = ByteSet::default();
        let mut non_match = false;
        // glibc: `[` or `[^` at the end of the pattern is REG_BADPAT.
        if self.byte_at(self.pos).is_none() {
            return Err(PosixError::BadPattern.into());
        }
        if self.byte_at(self.pos) == Some(b'^') {
            non_match = true;
            self.pos += 1;
            if self.byte_at(self.pos).is_none() {
                return Err(PosixError::BadPattern.into());
            }
        }
        let mut first = true;
        loop {
            let Some(start) = self.bracket_element(first)? else {
                return Err(PosixError::Bracket.into());
            };
            first = false;
            let mut range_end = None;
            if !matches!(start, Element::Class(_) | Element::Equiv(_)) {
                match self.byte_at(self.pos) {
                    None => return Err(PosixError::Bracket.into()),
                    Some(b'-') => match self.byte_at(self.pos + 1) {
                        None => return Err(PosixError::Bracket.into()),
                        // A `-` before the closing `]` is a literal.
                        Some(b']') => {}
                        Some(_) => {
                            self.pos += 1;
                            range_end =
                                Some(self.bracket_element(true)?.ok_or(PosixError::Bracket)?);
                        }
                    },
                    Some(_) => {}
                }
            }
            match (start, range_end) {
                (start, Some(end)) => {
                    let is_class = |e: &Element| matches!(e, Element::Class(_) | Element::Equiv(_));
                    if is_class(&start) || is_class(&end) {
                        return Err(PosixError::Range.into());
                    }
                    let (Some(from), Some(to)) = (start.byte(), end.byte()) else {
                        // A multi-character collating element.
                        return Err(PosixError::Collate.into());
                    };
                    if from > to {
                        return Err(PosixError::Range.into());
                    }
                    set.insert_range(from, to);
                }
                (Element::Byte(b), None) => set.insert(b),
                (Element::Equiv(name), None) | (Element::Collating(name), None) => {
                    set.insert(single_byte(&name)?);
                }
                (Element::Class(name), None) => {
                    let class = posix_class(&name, icase).ok_or(PosixError::CharClass)?;
                    for b in 0..=255u8 {
                        if class.contains(b) {
                            set.insert(b);
                        }
                    }
                }
            }
            match self.byte_at(self.pos) {
                None => return Err(PosixError::Bracket.into()),
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                Some(_) => {}
            }
        }
        let newline = self.syntax.newline;
        // glibc upper-cases the input under REG_ICASE and the bracket's
        // characters were upper-cased while parsing (classes hold both cases).
        let fold = |b: u8| if icase { b.to_ascii_uppercase() } else { b };
        Ok(ByteSet::from_fn(|b| {
            let member = set.contains(fold(b));
            if non_match {
                // RE_HAT_LISTS_NOT_NEWLINE under REG_NEWLINE.
                !(member || (newline && b == b'\n'))
            } else {
                member
            }
        }))
    }

    /// `parse_bracket_element` at `pos`; `None` at the end of the pattern.
    /// `accept_hyphen` is glibc's: a `-` is an element only first in the
    /// list, as a range end, or before the closing `]`.
    fn bracket_element(&mut self, accept_hyphen: bool) -> Result<Option<Element>, Error> {
        let Some(c) = self.byte_at(self.pos) else {
            return Ok(None);
        };
        if c == b'[' {
            let kind = self.byte_at(self.pos + 1);
            if let Some(delim @ (b'.' | b'=' | b':')) = kind {
                self.pos += 2;
                return self.bracket_symbol(delim).map(Some);
            }
        }
        if c == b'-' && !accept_hyphen && self.byte_at(self.pos + 1) != Some(b']') {
            return Err(PosixError::Range.into());
        }
        self.pos += 1;
        let byte = if self.syntax.icase {
            c.to_ascii_uppercase()
        } else {
            c
        };
        Ok(Some(Element::Byte(byte)))
    }

    /// `parse_bracket_symbol`: the name in `[.x.]`, `[=x=]`, `[:x:]`.
    fn bracket_symbol(&mut self, delim: u8) -> Result<Element, Error> {
        let mut name = Vec::new();
        loop {
            if name.len() >= BRACKET_NAME_MAX_BYTES {
                return Err(PosixError::Bracket.into());
            }
            let ch = self.byte_at(self.pos).ok_or(PosixError::Bracket)?;
            self.pos += 1;
            if self.pos >= self.pattern.len() {
                return Err(PosixError::Bracket.into());
            }
            if ch == delim && self.byte_at(self.pos) == Some(b']') {
                break;
            }
            // Class names keep their case; collating elements are
            // translated like other bracket characters.
            let ch = if delim != b':' && self.syntax.icase {
                ch.to_ascii_uppercase()
            } else {
                ch
            };
            name.push(ch);
        }
        self.pos += 1;
        Ok(match delim {
            b'.' => Element::Collating(name),
            b'=' => Element::Equiv(name),
            _ => Element::Class(name),
        })
    }
}

/// One element of a bracket expression.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Element {
    Byte(u8),
    Collating(Vec<u8>),
    Equiv(Vec<u8>),
    Class(Vec<u8>),
}

impl Element {
    /// The byte a range end stands for; classes cannot end a range.
    fn byte(&self) -> Option<u8> {
        match self {
            Element::Byte(b) => Some(*b),
            Element::Collating(name) if name.len() == 1 => Some(name[0]),
            _ => None,
        }
    }
}

/// The C locale knows only one-character collating elements.
fn single_byte(name: &[u8]) -> Result<u8, Error> {
    match name {
        [b] => Ok(*b),
        _ => Err(PosixError::Collate.into()),
    }
}

fn shorthand(class: Shorthand) -> ByteSet {
    match class {
        Shorthand::Word => ByteSet::from_fn(|b| b.is_ascii_alphanumeric() || b == b'_'),
        Shorthand::NotWord => ByteSet::from_fn(|b| !(b.is_ascii_alphanumeric() || b == b'_')),
        Shorthand::Space => ByteSet::from_fn(is_c_space),
        Shorthand::NotSpace => ByteSet::from_fn(|b| !is_c_space(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ERE_ICASE: Syntax = Syntax {
        extended: true,
        icase: true,
        newline: false,
    };
    const ERE: Syntax = Syntax {
        extended: true,
        icase: false,
        newline: false,
    };
    const ERE_NEWLINE: Syntax = Syntax {
        extended: true,
        icase: false,
        newline: true,
    };
    const BRE: Syntax = Syntax {
        extended: false,
        icase: false,
        newline: false,
    };

    /// Every case was run through glibc (`postmap -q` on Debian 12):
    /// pattern, flags, subject, expected match (`None`: no match) as the
    /// whole match and group 1.
    #[test]
    fn matches_like_glibc() {
        type Case = (
            &'static str,
            Syntax,
            &'static str,
            Option<(&'static str, Option<&'static str>)>,
        );
        let cases: &[Case] = &[
            // Escaped ordinary characters, and the REG_ICASE quirk.
            (r"\d", ERE_ICASE, "d", None),
            (r"\d", ERE_ICASE, "5", None),
            (r"\d", ERE, "d", Some(("d", None))),
            (r"\Q", ERE_ICASE, "q", Some(("q", None))),
            (r"\n", ERE, "n", Some(("n", None))),
            (r"\%", ERE_ICASE, "%", Some(("%", None))),
            (r"\0", ERE_ICASE, "0", Some(("0", None))),
            (r"[\d]", ERE_ICASE, "d", Some(("d", None))),
            (r"[\.]", ERE_ICASE, "\\", Some(("\\", None))),
            // Case folding.
            ("[d]", ERE_ICASE, "D", Some(("D", None))),
            ("[a-c]", ERE_ICASE, "B", Some(("B", None))),
            ("[A-z]", ERE_ICASE, "_", None),
            ("[A-z]", ERE, "_", Some(("_", None))),
            ("[_-a]", ERE, "_", Some(("_", None))),
            ("[^A-Z]", ERE_ICASE, "a", None),
            ("[[:upper:]]", ERE_ICASE, "a", Some(("a", None))),
            ("[[:upper:]]", ERE, "a", None),
            ("subject", ERE_ICASE, "SUBJECT: x", Some(("SUBJECT", None))),
            // GNU operators.
            (r"\<foo\>", ERE, "a foo b", Some(("foo", None))),
            (r"\<foo\>", ERE, "afoo", None),
            (r"\`foo", ERE, "foo", Some(("foo", None))),
            (r"foo\'", ERE, "foo", Some(("foo", None))),
            (r"\w\W\s\S", ERE, "a- x", Some(("a- x", None))),
            (r"\bfoo\B", ERE, "foox", Some(("foo", None))),
            // Repetition.
            ("a**", ERE, "a", Some(("a", None))),
            ("(a+?)", ERE, "aaa", Some(("aaa", Some("aaa")))),
            ("^a{,3}$", ERE, "aa", Some(("aa", None))),
            ("a{1,2}{3}", ERE, "aaa", Some(("aaa", None))),
            ("a*{2}", ERE, "a", Some(("a", None))),
            ("a{0}b", ERE, "b", Some(("b", None))),
            // Groups and alternation.
            ("()", ERE, "x", Some(("", Some("")))),
            ("a|", ERE, "x", Some(("", None))),
            ("|a", ERE, "x", Some(("", None))),
            ("(|a)", ERE, "x", Some(("", Some("")))),
            ("a)", ERE, "a)", Some(("a)", None))),
            (r"\(a\)", ERE, "(a)", Some(("(a)", None))),
            (r"a\|b", ERE, "a|b", Some(("a|b", None))),
            (r"a\|b", ERE, "a", None),
            // Anchors and newlines.
            ("x^", ERE, "x", None),
            ("$x", ERE, "x", None),
            ("(^a)", ERE, "a", Some(("a", Some("a")))),
            ("b(^a)", ERE, "ba", None),
            ("^b", ERE, "a\nb", None),
            ("^b", ERE_NEWLINE, "a\nb", Some(("b", None))),
            ("a$", ERE_NEWLINE, "a\nb", Some(("a", None))),
            ("a$", ERE, "a\nb", None),
            (".", ERE, "\n", Some(("\n", None))),
            (".", ERE_NEWLINE, "\n", None),
            ("[^a]", ERE, "\n", Some(("\n", None))),
            ("[^a]", ERE_NEWLINE, "\n", None),
            (r"\W", ERE_NEWLINE, "\n", Some(("\n", None))),
            // Without REG_NEWLINE glibc still lets `^`/`$` match at a
            // newline that the same match consumes.
            (r"$$\W", ERE, "a\nb", Some(("\n", None))),
            (r"a$.", ERE, "a\nb", Some(("a\n", None))),
            (r"a$.", ERE_NEWLINE, "a\nb", None),
            (r"a$\W", ERE, "a\nb", Some(("a\n", None))),
            (r"\W^b", ERE, "x\nb", Some(("\nb", None))),
            (r"\W^", ERE, "x\nb", Some(("\n", None))),
            (r"$\n", ERE, "a\nb", None),
            (r"\'\W", ERE, "a\nb", None),
            (r"$$x", ERE, "ab", None),
            // Brackets.
            ("[]a]", ERE, "]", Some(("]", None))),
            ("[^]a]", ERE, "]", None),
            ("[a-]", ERE, "-", Some(("-", None))),
            ("[--/]", ERE, ".", Some((".", None))),
            ("[%--]", ERE, "+", Some(("+", None))),
            ("[[.a.]]", ERE, "a", Some(("a", None))),
            ("[[=a=]]", ERE, "a", Some(("a", None))),
            ("[[.-.]-z]", ERE, "a", Some(("a", None))),
            ("[a-[.z.]]", ERE, "m", Some(("m", None))),
            ("[[.].]]", ERE, "]", Some(("]", None))),
            ("[[:alpha:][:digit:]]", ERE, "5", Some(("5", None))),
            ("[[a]", ERE, "a", Some(("a", None))),
            // C locale: bytes.
            ("^..$", ERE, "é", Some(("é", None))),
            ("^.$", ERE, "é", None),
            ("^[[:alpha:]]+$", ERE, "é", None),
            ("^[^a]$", ERE, "\u{80}", None),
            // BRE.
            (r"a\+", BRE, "aa", Some(("aa", None))),
            (r"a\|b", BRE, "b", Some(("b", None))),
            ("*a", BRE, "*a", Some(("*a", None))),
            ("^*", BRE, "*", Some(("*", None))),
            (r"a\{2\}", BRE, "aa", Some(("aa", None))),
            ("a{2}", BRE, "a{2}", Some(("a{2}", None))),
            ("(a)", BRE, "(a)", Some(("(a)", None))),
            ("a$b", BRE, "a$b", Some(("a$b", None))),
            (r"\(^a\)", BRE, "a", Some(("a", Some("a")))),
            (r"a\(^b\)", BRE, "ab", None),
            (r"x$\|y", BRE, "x$", None),
            (r"\(*a\)", BRE, "*a", Some(("*a", Some("*a")))),
            // After an anchor a BRE `^` is a literal.
            (r"\B^\{,2\}", BRE, "ab", Some(("", None))),
            (r"\B^", BRE, "^", Some(("^", None))),
        ];
        for (pattern, syntax, subject, want) in cases {
            let pikevm = compile(pattern.as_bytes(), *syntax)
                .and_then(|c| c.matcher())
                .unwrap_or_else(|e| panic!("{pattern}: {e}"));
            let mut caps = pikevm.create_captures();
            pikevm.captures(&mut pikevm.create_cache(), subject, &mut caps);
            let got = caps.is_match().then(|| {
                let text = |i| {
                    caps.get_group(i).map(|span| {
                        String::from_utf8_lossy(&subject.as_bytes()[span.range()]).into_owned()
                    })
                };
                (text(0).unwrap_or_default(), text(1))
            });
            let want = want.map(|(all, g1)| (all.to_owned(), g1.map(str::to_owned)));
            assert_eq!(got, want, "{pattern:?} ({syntax:?}) on {subject:?}");
        }
    }

    #[test]
    fn refuses_like_glibc() {
        let cases: &[(&str, Syntax, PosixError)] = &[
            ("a{", ERE, PosixError::Brace),
            ("a{1", ERE, PosixError::Brace),
            ("a{1,", ERE, PosixError::Brace),
            ("{1}a", ERE, PosixError::Repetition),
            ("*a", ERE, PosixError::Repetition),
            ("^*", ERE, PosixError::Repetition),
            ("$*", ERE, PosixError::Repetition),
            ("(*a)", ERE, PosixError::Repetition),
            ("(+a)", ERE, PosixError::Repetition),
            ("a|*b", ERE, PosixError::Repetition),
            ("{", ERE, PosixError::Repetition),
            ("(a", ERE, PosixError::Paren),
            ("[a", ERE, PosixError::Bracket),
            ("[]", ERE, PosixError::Bracket),
            ("[^]", ERE, PosixError::Bracket),
            ("[[:]", ERE, PosixError::Bracket),
            ("[[:alpha:]", ERE, PosixError::Bracket),
            ("[z-a]", ERE, PosixError::Range),
            ("[a-c-e]", ERE, PosixError::Range),
            // Under REG_ICASE range ends are upper-cased first: `a` is `A`.
            ("[]-a]", ERE_ICASE, PosixError::Range),
            ("[_-a]", ERE_ICASE, PosixError::Range),
            ("[[=a=]-z]", ERE, PosixError::Range),
            ("[[:alpha:]-z]", ERE, PosixError::Range),
            ("[a-[:alpha:]]", ERE, PosixError::Range),
            ("[[:word:]]", ERE, PosixError::CharClass),
            ("[[:ALPHA:]]", ERE, PosixError::CharClass),
            ("[[.space.]]", ERE, PosixError::Collate),
            ("a{2,1}", ERE, PosixError::BraceContent),
            ("a{x}", ERE, PosixError::BraceContent),
            ("a{1,2,3}", ERE, PosixError::BraceContent),
            ("a{}", ERE, PosixError::BraceContent),
            ("a{32768}", ERE, PosixError::TooBig),
            (r"\1", ERE, PosixError::BackReference),
            ("a**", BRE, PosixError::Repetition),
            (r"a*\{2\}", BRE, PosixError::Repetition),
            (r"\{", BRE, PosixError::Repetition),
            (r"a\{", BRE, PosixError::Brace),
            (r"\(a", BRE, PosixError::Paren),
            (r"a\)", BRE, PosixError::Paren),
            ("a\\", ERE, PosixError::TrailingBackslash),
            ("a[", ERE, PosixError::BadPattern),
            ("[^", ERE, PosixError::BadPattern),
        ];
        for (pattern, syntax, want) in cases {
            assert_eq!(
                compile(pattern.as_bytes(), *syntax).map(|c| c.groups).err(),
                Some(Error::Posix(*want)),
                "{pattern:?}"
            );
        }
    }

    #[test]
    fn anchors_that_may_or_may_not_end_the_match_are_flagged() {
        for (pattern, syntax, approximate) in [
            ("^Subject:.*$", ERE, false),
            ("^a$\\W", ERE, false),
            ("(^|,)x", ERE, false),
            ("x(,|$)", ERE, false),
            ("\\s*^b", ERE, true),
            ("a$\\W?", ERE, true),
            ("(a$)*b", ERE, true),
            ("a$b?", ERE, true),
            ("\\s*^b", ERE_NEWLINE, false),
            ("(a\\>){2}", ERE_NEWLINE, true),
            ("(\\<a)+", ERE_NEWLINE, true),
            ("(\\<a)?", ERE_NEWLINE, false),
        ] {
            let t = translate(pattern.as_bytes(), syntax).unwrap();
            assert_eq!(t.approximate.is_some(), approximate, "{pattern}: {}", t.hir);
        }
    }

    #[test]
    fn back_references_are_refused_with_a_reason() {
        let err = compile(br"(a)\1", ERE).unwrap_err();
        assert_eq!(
            err,
            Error::Unsupported("back-references (\\1) are not supported".into())
        );
    }

    #[test]
    fn counts_groups_like_re_nsub() {
        for (pattern, groups) in [
            ("a", 0),
            ("(a)(b(c))", 3),
            ("()", 1),
            ("(a){0}", 1),
            (r"\(a\)", 0),
        ] {
            assert_eq!(
                compile(pattern.as_bytes(), ERE).unwrap().groups,
                groups,
                "{pattern}"
            );
        }
        assert_eq!(compile(br"\(a\)", BRE).unwrap().groups, 1);
    }

    #[test]
    fn stops_at_nul_like_a_c_string() {
        let pikevm = compile(b"ab\0cd", ERE).unwrap().matcher().unwrap();
        assert!(pikevm.is_match(&mut pikevm.create_cache(), b"xab"));
    }
}
