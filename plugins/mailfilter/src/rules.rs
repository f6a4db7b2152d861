//! Parsing an rc file: text in, [`Rules`] and problems out.
//!
//! In: the text of one procmailrc. Out: its assignments and recipes as
//! [`Item`]s, with every problem as a [`Problem`] naming the line. A recipe
//! with a problem (a bad regex, a missing action, an unclosed quote) is
//! left out; the rest of the file still counts, as procmail skips what it
//! cannot read and goes on.
//!
//! Nothing is expanded here: variables get their values when the rules run.
//! Must not: run anything, or panic on any text; files come from users.

use crate::pattern::Pattern;
use crate::shell::{self, WordsError};

/// The longest rc file read, in bytes (the host's `home` capability reads
/// at most 256 KiB; site files are the operator's).
pub const MAX_RULES_BYTES: usize = 1 << 20;

/// A parsed rc file.
#[derive(Debug, Default)]
pub struct Rules {
    /// The statements, in order.
    pub items: Vec<Item>,
    /// What could not be read.
    pub problems: Vec<Problem>,
    /// The lines whose recipes need a program (never match).
    pub programs: Vec<usize>,
}

/// Something wrong in a file, on a line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// 1-based.
    pub line: usize,
    /// What is wrong, and what was done about it.
    pub text: String,
}

/// A statement.
#[derive(Debug)]
pub enum Item {
    /// `NAME=value` (value as written, expanded when run).
    Assign {
        name: String,
        value: String,
        line: usize,
    },
    /// `:0 flags` with its conditions and action.
    Recipe(Recipe),
}

/// A recipe.
#[derive(Debug)]
pub struct Recipe {
    /// Where its `:0` line is.
    pub line: usize,
    pub flags: Flags,
    pub conditions: Vec<Condition>,
    pub action: Action,
}

/// The flags that change what postern does (the others are accepted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    /// `H`: egrep the header.
    pub header: bool,
    /// `B`: egrep the body.
    pub body: bool,
    /// `D`: distinguish case.
    pub case_sensitive: bool,
    /// `A` or `a`: only if the preceding recipe matched.
    pub also: bool,
    /// `E`: only if the preceding recipe did not match.
    pub otherwise: bool,
    /// `e`: only if the preceding recipe's action failed (never, here).
    pub on_error: bool,
    /// `c`: a carbon copy; processing goes on.
    pub copy: bool,
}

impl Flags {
    /// The part a plain regex condition is matched against.
    pub fn subject(self) -> Subject {
        match (self.header, self.body) {
            (_, false) => Subject::Header,
            (false, true) => Subject::Body,
            (true, true) => Subject::Both,
        }
    }
}

/// What a regex condition is matched against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    Header,
    Body,
    Both,
    /// `NAME ?? regex`: a variable's value.
    Var(String),
}

/// A `*` line.
#[derive(Debug)]
pub enum Condition {
    /// `regex`, `!regex`, `B ?? regex`, `NAME ?? regex`.
    Regex {
        pattern: Box<Pattern>,
        subject: Subject,
        negate: bool,
    },
    /// `< N` (`less`) or `> N`: the message size in bytes.
    Size {
        less: bool,
        bytes: u64,
        negate: bool,
    },
    /// `$ ...`: expanded when run, then read as a condition.
    Expand { text: String, negate: bool },
    /// `? program`: never matches (no programs in the sandbox).
    Program,
}

/// What a matching recipe does.
#[derive(Debug)]
pub enum Action {
    /// `{ ... }`.
    Block(Vec<Item>),
    /// A file or directory, as written: a Maildir folder, the inbox, or
    /// `/dev/null`.
    Deliver(String),
    /// `! address...`: the words as written.
    Forward(String),
    /// `| formail ...` with header options only: header edits.
    Formail(Vec<FormailEdit>),
    /// Any other program: never matches.
    Program,
}

/// One formail header option.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormailEdit {
    /// The option letter: `A`, `a`, `I` or `i`.
    pub option: char,
    /// `Name: value`, as written (expanded when run).
    pub field: String,
}

/// How deeply `{ }` blocks may nest (each level is a recursion, and a
/// plugin's stack is small).
pub const MAX_BLOCK_DEPTH: usize = 32;

/// procmail's flags that change nothing here: `h b f w W i r` (what is
/// passed to a program, waiting, raw mode).
const IGNORED_FLAGS: &str = "hbfwWir";

/// formail options without an argument that change nothing here.
const FORMAIL_QUIET_OPTIONS: &str = "fbczYq";

/// Parses an rc file.
pub fn parse(text: &str) -> Rules {
    let mut parser = Parser {
        lines: text.lines().collect(),
        next: 0,
        pending: None,
        depth: 0,
        rules: Rules::default(),
    };
    if text.len() > MAX_RULES_BYTES {
        parser.problem(1, format!("larger than {MAX_RULES_BYTES} bytes; not read"));
        return parser.rules;
    }
    let (items, _) = parser.items(false);
    parser.rules.items = items;
    parser.rules
}

struct Parser<'t> {
    lines: Vec<&'t str>,
    /// The next physical line (0-based).
    next: usize,
    /// A rest of a line to read before the next one (after `{`).
    pending: Option<(usize, String)>,
    /// How many blocks are open.
    depth: usize,
    rules: Rules,
}

impl Parser<'_> {
    fn problem(&mut self, line: usize, text: impl Into<String>) {
        self.rules.problems.push(Problem {
            line,
            text: text.into(),
        });
    }

    /// The next logical line (with `\` continuations joined) and its number.
    fn line(&mut self) -> Option<(usize, String)> {
        if let Some(pending) = self.pending.take() {
            return Some(pending);
        }
        let first = *self.lines.get(self.next)?;
        self.next += 1;
        let number = self.next;
        let mut line = first.to_owned();
        if line.trim_start().starts_with('#') {
            return Some((number, line));
        }
        while line.ends_with('\\') {
            line.pop();
            let Some(more) = self.lines.get(self.next) else {
                break;
            };
            self.next += 1;
            line.push_str(more.trim_start());
        }
        Some((number, line))
    }

    /// The next line that is neither blank nor a comment.
    fn significant_line(&mut self) -> Option<(usize, String)> {
        loop {
            let (number, line) = self.line()?;
            let t = line.trim();
            if !t.is_empty() && !t.starts_with('#') {
                return Some((number, t.to_owned()));
            }
        }
    }

    /// Statements up to the end, or up to a `}` when `in_block`; whether
    /// the block was closed.
    fn items(&mut self, in_block: bool) -> (Vec<Item>, bool) {
        let mut items = Vec::new();
        while let Some((number, line)) = self.significant_line() {
            if let Some(rest) = line.strip_prefix('}') {
                if in_block {
                    let rest = rest.trim();
                    if !rest.is_empty() {
                        self.pending = Some((number, rest.to_owned()));
                    }
                    return (items, true);
                }
                self.problem(number, "`}` without `{`; ignored");
                continue;
            }
            if let Some(rest) = line.strip_prefix(":0") {
                if let Some(recipe) = self.recipe(number, rest) {
                    items.push(Item::Recipe(recipe));
                }
                continue;
            }
            if line.starts_with(':') {
                self.problem(
                    number,
                    "only `:0` recipes are understood (not the old `:N` form); line ignored",
                );
                continue;
            }
            match line.split_once('=') {
                Some((name, value)) if shell::is_name(name) => {
                    if value.contains('`') {
                        self.rules.programs.push(number);
                    }
                    items.push(Item::Assign {
                        name: name.to_owned(),
                        value: value.to_owned(),
                        line: number,
                    });
                }
                _ => self.problem(number, format!("not understood: {line:?}; ignored")),
            }
        }
        (items, false)
    }

    /// A recipe after its `:0`; `None` (with a problem) if it is unusable.
    fn recipe(&mut self, line: usize, rest: &str) -> Option<Recipe> {
        let mut broken = false;
        let flags = self.flags(line, rest);
        let mut conditions = Vec::new();
        let action_line = loop {
            let Some((number, text)) = self.significant_line() else {
                self.problem(line, "recipe without an action; skipped");
                return None;
            };
            let Some(condition) = text.strip_prefix('*') else {
                break (number, text);
            };
            match parse_condition(condition, flags) {
                Ok(Condition::Program) => {
                    self.rules.programs.push(number);
                    conditions.push(Condition::Program);
                }
                Ok(c) => conditions.push(c),
                Err(why) => {
                    self.problem(
                        number,
                        format!("condition {condition:?}: {why}; recipe skipped"),
                    );
                    broken = true;
                }
            }
        };
        let action = self.action(action_line.0, &action_line.1, &mut broken);
        (!broken).then_some(Recipe {
            line,
            flags,
            conditions,
            action,
        })
    }

    fn flags(&mut self, line: usize, rest: &str) -> Flags {
        // `:0 flags :lockfile`; no locking here, so the lock file is ignored.
        let spec = rest.split(':').next().unwrap_or_default();
        let spec = spec.split('#').next().unwrap_or_default();
        let mut flags = Flags::default();
        for c in spec.chars().filter(|c| !c.is_whitespace()) {
            match c {
                'H' => flags.header = true,
                'B' => flags.body = true,
                'D' => flags.case_sensitive = true,
                'A' | 'a' => flags.also = true,
                'E' => flags.otherwise = true,
                'e' => flags.on_error = true,
                'c' => flags.copy = true,
                c if IGNORED_FLAGS.contains(c) => {}
                c => self.problem(line, format!("unknown flag `{c}`; ignored")),
            }
        }
        flags
    }

    fn action(&mut self, line: usize, text: &str, broken: &mut bool) -> Action {
        if let Some(rest) = text.strip_prefix('{') {
            let rest = rest.trim();
            if !rest.is_empty() {
                self.pending = Some((line, rest.to_owned()));
            }
            if self.depth >= MAX_BLOCK_DEPTH {
                self.skip_block();
                self.problem(
                    line,
                    format!("blocks nested deeper than {MAX_BLOCK_DEPTH}; recipe skipped"),
                );
                *broken = true;
                return Action::Program;
            }
            self.depth += 1;
            let (items, closed) = self.items(true);
            self.depth -= 1;
            if !closed {
                self.problem(
                    line,
                    "`{` without `}`; the block ends at the end of the file",
                );
            }
            return Action::Block(items);
        }
        if text.starts_with('}') {
            self.pending = Some((line, text.to_owned()));
            self.problem(line, "recipe without an action; skipped");
            *broken = true;
            return Action::Program;
        }
        if let Some(rest) = text.strip_prefix('!') {
            return match shell::words(rest, None) {
                Ok(words) if words.iter().any(|w| !w.starts_with('-')) => {
                    Action::Forward(rest.to_owned())
                }
                Ok(_) => {
                    self.problem(line, "`!` without an address; recipe skipped");
                    *broken = true;
                    Action::Program
                }
                Err(e) => {
                    self.word_problem(line, e, broken);
                    Action::Program
                }
            };
        }
        let program = text.strip_prefix('|').or_else(|| {
            text.split_once("=|")
                .filter(|(n, _)| shell::is_name(n))
                .map(|_| "")
        });
        if let Some(command) = program {
            let action = match shell::words(command, None) {
                Ok(words) => formail(&words).map_or(Action::Program, Action::Formail),
                Err(WordsError::Command) => Action::Program,
                Err(e) => {
                    self.word_problem(line, e, broken);
                    Action::Program
                }
            };
            if matches!(action, Action::Program) {
                self.rules.programs.push(line);
            }
            return action;
        }
        match shell::words(text, None) {
            Ok(words) => {
                if words.len() > 1 {
                    self.problem(
                        line,
                        format!("only the first of {} folders is used", words.len()),
                    );
                }
                // Kept as written: quotes and `$` matter when it runs.
                Action::Deliver(text.to_owned())
            }
            Err(e) => {
                self.word_problem(line, e, broken);
                Action::Program
            }
        }
    }

    /// Skips to the `}` that closes a block whose `{` was just read.
    fn skip_block(&mut self) {
        let mut open = 1usize;
        while let Some((_, line)) = self.significant_line() {
            if line.starts_with('{') {
                open += 1;
            } else if line.starts_with('}') {
                open -= 1;
                if open == 0 {
                    return;
                }
            }
        }
    }

    fn word_problem(&mut self, line: usize, e: WordsError, broken: &mut bool) {
        match e {
            WordsError::Unclosed(q) => self.problem(line, format!("unclosed {q}; recipe skipped")),
            WordsError::Command => self.problem(
                line,
                "backquotes would run a program (not in the sandbox); recipe skipped",
            ),
        }
        *broken = true;
    }
}

/// A condition after its `*`.
pub fn parse_condition(text: &str, flags: Flags) -> Result<Condition, String> {
    let mut text = text.trim();
    let mut negate = false;
    loop {
        if let Some(rest) = text.strip_prefix('!') {
            negate = !negate;
            text = rest.trim_start();
        } else if let Some(rest) = text.strip_prefix('$') {
            return Ok(Condition::Expand {
                text: rest.trim_start().to_owned(),
                negate,
            });
        } else {
            break;
        }
    }
    if text.starts_with('?') {
        return Ok(Condition::Program);
    }
    for (op, less) in [('<', true), ('>', false)] {
        if let Some(rest) = text.strip_prefix(op) {
            let bytes = rest
                .trim()
                .parse::<u64>()
                .map_err(|_| format!("`{op}` needs a size in bytes, not {:?}", rest.trim()))?;
            return Ok(Condition::Size {
                less,
                bytes,
                negate,
            });
        }
    }
    // procmail's weighted scoring: `* 100^1 regex`.
    if text
        .split_once('^')
        .is_some_and(|(w, _)| !w.is_empty() && w.trim().parse::<f64>().is_ok())
    {
        return Err("weighted conditions (scoring) are not supported".into());
    }
    let (subject, regex) = match text.split_once("??") {
        Some((name, regex)) if is_subject(name.trim()) => {
            let name = name.trim();
            let subject = match name {
                "H" => Subject::Header,
                "B" => Subject::Body,
                "HB" | "BH" => Subject::Both,
                var => Subject::Var(var.to_owned()),
            };
            (subject, regex.trim())
        }
        _ => (flags.subject(), text),
    };
    let pattern = Box::new(Pattern::compile(regex, flags.case_sensitive)?);
    Ok(Condition::Regex {
        pattern,
        subject,
        negate,
    })
}

/// Whether the text before `??` names what to match: a variable, `$1`...
fn is_subject(name: &str) -> bool {
    shell::is_name(name) || (name.len() == 1 && name.chars().all(|c| c.is_ascii_digit()))
}

/// The header edits of a formail command, or `None` if it is not formail or
/// asks for more than header edits.
fn formail(words: &[String]) -> Option<Vec<FormailEdit>> {
    let (program, args) = words.split_first()?;
    if program.rsplit('/').next() != Some("formail") {
        return None;
    }
    let mut edits = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let letters = arg.strip_prefix('-')?;
        let mut chars = letters.chars();
        while let Some(c) = chars.next() {
            if FORMAIL_QUIET_OPTIONS.contains(c) {
                continue;
            }
            if !matches!(c, 'A' | 'a' | 'I' | 'i') {
                return None;
            }
            let attached: String = chars.by_ref().collect();
            let field = if attached.is_empty() {
                args.next()?.clone()
            } else {
                attached
            };
            edits.push(FormailEdit { option: c, field });
        }
    }
    (!edits.is_empty()).then_some(edits)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recipes(items: &[Item]) -> Vec<&Recipe> {
        items
            .iter()
            .filter_map(|i| match i {
                Item::Recipe(r) => Some(r),
                Item::Assign { .. } => None,
            })
            .collect()
    }

    #[test]
    fn flags_conditions_and_actions() {
        let rules = parse(
            "# comment\n\
             MAILDIR=$HOME/Maildir/\n\
             \n\
             :0 BDc: lockfile\n\
             * ! ^Subject: x\n\
             * < 1000\n\
             *  > 10\n\
             * EXTENSION ?? ^lists$\n\
             * 1 ?? tag\n\
             * B ?? body\n\
             .Spam/\n\
             :0fhw\n\
             | formail -A \"X-A: 1\" -fI'X-B: 2'\n\
             :0\n\
             ! -oi jo@example.org\n\
             :0 E\n\
             {\n\
               :0\n\
               /dev/null\n\
             }\n",
        );
        assert!(rules.problems.is_empty(), "{:?}", rules.problems);
        assert!(rules.programs.is_empty());
        let r = recipes(&rules.items);
        assert_eq!(r.len(), 4);
        assert!(r[0].flags.body && r[0].flags.case_sensitive && r[0].flags.copy);
        assert!(!r[0].flags.header);
        assert_eq!(r[0].flags.subject(), Subject::Body);
        let kinds: Vec<String> = r[0]
            .conditions
            .iter()
            .map(|c| match c {
                Condition::Regex {
                    subject, negate, ..
                } => format!("regex {subject:?} {negate}"),
                Condition::Size { less, bytes, .. } => format!("size {less} {bytes}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "regex Body true",
                "size true 1000",
                "size false 10",
                "regex Var(\"EXTENSION\") false",
                "regex Var(\"1\") false",
                "regex Body false",
            ]
        );
        assert!(matches!(&r[0].action, Action::Deliver(t) if t == ".Spam/"));
        match &r[1].action {
            Action::Formail(edits) => assert_eq!(
                edits,
                &[
                    FormailEdit {
                        option: 'A',
                        field: "X-A: 1".into()
                    },
                    FormailEdit {
                        option: 'I',
                        field: "X-B: 2".into()
                    }
                ]
            ),
            other => panic!("{other:?}"),
        }
        assert!(matches!(&r[2].action, Action::Forward(_)));
        assert!(r[3].flags.otherwise);
        assert!(matches!(&r[3].action, Action::Block(items) if items.len() == 1));
    }

    #[test]
    fn continuation_lines() {
        let rules = parse(":0\n* ^Subject: a\\\n   b\n.Fol\\\nder/\n");
        let r = recipes(&rules.items);
        assert!(matches!(&r[0].action, Action::Deliver(t) if t == ".Folder/"));
    }

    #[test]
    fn problems_name_their_line_and_skip_the_recipe() {
        let rules = parse(
            ":0\n\
             * ^Subject: (unclosed\n\
             .Bad/\n\
             :0 Z\n\
             * ^Subject: ok\n\
             .Good/\n\
             nonsense here\n\
             :0\n\
             * > lots\n\
             .Bad/\n\
             }\n\
             :0\n",
        );
        let problems: Vec<(usize, &str)> = rules
            .problems
            .iter()
            .map(|p| (p.line, p.text.as_str()))
            .collect();
        assert_eq!(problems.len(), 6, "{problems:?}");
        assert_eq!(problems[0].0, 2);
        assert!(problems[0].1.contains("unmatched `(`"));
        assert_eq!(problems[1], (4, "unknown flag `Z`; ignored"));
        assert_eq!(problems[2].0, 7);
        assert_eq!(problems[3].0, 9);
        assert_eq!(problems[4], (11, "`}` without `{`; ignored"));
        assert_eq!(problems[5], (12, "recipe without an action; skipped"));
        let r = recipes(&rules.items);
        assert_eq!(r.len(), 1);
        assert!(matches!(&r[0].action, Action::Deliver(t) if t == ".Good/"));
    }

    #[test]
    fn programs_are_noted() {
        let rules = parse(
            ":0fw\n| /usr/bin/spamc -f\n:0\n* ? test -f x\n.X/\n:0 Wh: msgid.lock\n| formail -D 8192 msgid.cache\nX=`date`\n",
        );
        assert_eq!(rules.programs, [2, 4, 7, 8]);
        assert!(rules.problems.is_empty(), "{:?}", rules.problems);
    }

    #[test]
    fn scoring_is_refused() {
        let e = parse_condition(" 100^1 ^Subject: x", Flags::default()).unwrap_err();
        assert!(e.contains("scoring"));
        // A regex that merely contains `^` is not a score.
        assert!(parse_condition(" ^Subject: 1^2", Flags::default()).is_ok());
    }
}
