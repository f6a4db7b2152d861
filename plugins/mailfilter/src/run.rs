//! Running parsed rules against one message for one recipient.
//!
//! In: [`Rules`], the message, the recipient's variables. Out: where the
//! message goes ([`Destination`]) and the header edits made on the way, in
//! [`Run`]'s fields. Logging names the file and line through [`Source`].
//!
//! procmail's order: statements run top to bottom; a recipe whose
//! conditions all match does its action; a delivering action ends the run
//! (unless `c`); a filter (formail) changes the headers later recipes see,
//! and processing goes on.
//!
//! Must not: read more of the body than `body_limit`, or fail: whatever a
//! file says, the run ends with a destination.

use postern_plugin_sdk::{Edit, Header, Message, log};

use crate::pattern::Pattern;
use crate::rules::{Action, Condition, FormailEdit, Item, Recipe, Rules, Subject, parse_condition};
use crate::shell::{self, Vars};

/// Where the message goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Destination {
    /// The inbox (the Maildir's `new/`).
    Inbox,
    /// A Maildir++ folder, e.g. `Lists.rust`.
    Folder(String),
    /// `/dev/null`.
    Discard,
    /// `! address`.
    Redirect(String),
}

impl Destination {
    /// For log lines.
    pub fn describe(&self) -> String {
        match self {
            Destination::Inbox => "the inbox".to_owned(),
            Destination::Folder(f) => format!("folder {f}"),
            Destination::Discard => "/dev/null".to_owned(),
            Destination::Redirect(a) => format!("<{a}>"),
        }
    }
}

/// Which file the rules came from, for log lines.
#[derive(Clone, Debug)]
pub struct Source {
    /// `files.default` or `user jo: .procmailrc`.
    pub label: String,
}

impl Source {
    pub fn warn(&self, line: usize, text: impl AsRef<str>) {
        log::warn(format!("{} line {line}: {}", self.label, text.as_ref()));
    }

    /// Logs a file's parse problems, and once its recipes that need programs.
    pub fn report(&self, rules: &Rules) {
        for p in &rules.problems {
            self.warn(p.line, &p.text);
        }
        if let Some((first, rest)) = rules.programs.split_first() {
            let more = if rest.is_empty() {
                String::new()
            } else {
                format!(" (and {} more: lines {rest:?})", rest.len())
            };
            self.warn(
                *first,
                format!(
                    "needs a program{more}; programs cannot run in the sandbox, so recipes \
                     that need one never match"
                ),
            );
        }
    }
}

/// One recipient's run: variables, the headers as filtered so far, and
/// what was decided.
pub struct Run<'m> {
    pub vars: Vars,
    message: &'m Message<'m>,
    /// The header section as later recipes see it (formail edits applied).
    headers: Vec<(String, String)>,
    /// `headers` as `Name: value` lines, built when needed.
    header_text: Option<Vec<u8>>,
    /// The first `body_limit` bytes of the body, LF line ends, when needed.
    body: Option<Vec<u8>>,
    body_limit: u32,
    /// Header edits for the host, in order.
    pub edits: Vec<Edit>,
    /// The latest `c` delivery, made only if nothing else delivers.
    pub copy: Option<Destination>,
}

impl<'m> Run<'m> {
    pub fn new(message: &'m Message<'m>, vars: Vars, body_limit: u32) -> Run<'m> {
        let headers = message
            .headers()
            .iter()
            .map(|h| (h.name.clone(), h.value.clone()))
            .collect();
        Run {
            vars,
            message,
            headers,
            header_text: None,
            body: None,
            body_limit,
            edits: Vec::new(),
            copy: None,
        }
    }

    /// Runs a file's statements: the destination if one of its recipes
    /// delivers.
    pub fn file(&mut self, rules: &Rules, source: &Source) -> Option<Destination> {
        self.items(&rules.items, source, None)
    }

    /// Runs statements; `last` is whether the preceding recipe matched
    /// (`None` before the first one of a file).
    fn items(
        &mut self,
        items: &[Item],
        source: &Source,
        mut last: Option<bool>,
    ) -> Option<Destination> {
        for item in items {
            match item {
                Item::Assign { name, value, line } => self.assign(name, value, *line, source),
                Item::Recipe(recipe) => {
                    let flags = recipe.flags;
                    // `E` and `A` chains: a skipped recipe leaves `last` as
                    // it was, so `:0 / :0E / :0E` is if / else if / else if.
                    if (flags.otherwise && last == Some(true))
                        || (flags.also && last != Some(true))
                        || flags.on_error
                    {
                        continue;
                    }
                    let matched = self.conditions(recipe, source);
                    if !matched {
                        last = Some(false);
                        continue;
                    }
                    let (done, acted) = self.act(recipe, source);
                    last = Some(acted);
                    if let Some(destination) = done {
                        return Some(destination);
                    }
                }
            }
        }
        None
    }

    fn assign(&mut self, name: &str, value: &str, line: usize, source: &Source) {
        let value = match shell::words(value, Some(&self.vars)) {
            Ok(words) => words.join(" "),
            // Already reported when the file was read.
            Err(_) => String::new(),
        };
        match name {
            "INCLUDERC" | "SWITCHRC" => {
                source.warn(line, format!("{name} is not supported; ignored"));
                return;
            }
            "HOST" => {
                // procmail stops reading the file if HOST is not this host;
                // postern has no reason to.
                return;
            }
            _ => {}
        }
        self.vars.insert(name.to_owned(), value);
    }

    fn conditions(&mut self, recipe: &Recipe, source: &Source) -> bool {
        recipe
            .conditions
            .iter()
            .all(|c| self.condition(c, recipe, source))
    }

    fn condition(&mut self, condition: &Condition, recipe: &Recipe, source: &Source) -> bool {
        match condition {
            Condition::Regex {
                pattern,
                subject,
                negate,
            } => {
                let found = self.regex(pattern, subject);
                found != *negate
            }
            Condition::Size {
                less,
                bytes,
                negate,
            } => {
                let size = self.message.size();
                let found = if *less { size < *bytes } else { size > *bytes };
                found != *negate
            }
            Condition::Expand { text, negate } => {
                let text = shell::expand(text, &self.vars);
                match parse_condition(&text, recipe.flags) {
                    Ok(Condition::Expand { .. } | Condition::Program) => false,
                    Ok(c) => self.condition(&c, recipe, source) != *negate,
                    Err(why) => {
                        source.warn(
                            recipe.line,
                            format!("condition {text:?}: {why}; does not match"),
                        );
                        false
                    }
                }
            }
            Condition::Program => false,
        }
    }

    /// Whether `pattern` matches its subject; sets `MATCH` for `\/`.
    fn regex(&mut self, pattern: &Pattern, subject: &Subject) -> bool {
        let var_text;
        let both;
        let haystack: &[u8] = match subject {
            Subject::Header => self.header_text(),
            Subject::Body => self.body(),
            Subject::Both => {
                let mut text = self.header_text().to_vec();
                text.push(b'\n');
                text.extend_from_slice(self.body());
                both = text;
                &both
            }
            Subject::Var(name) => {
                var_text = shell::get(&self.vars, name).to_owned();
                var_text.as_bytes()
            }
        };
        if !pattern.captures() {
            return pattern.is_match(haystack);
        }
        match pattern.matched_text(haystack) {
            Some(text) => {
                self.vars.insert("MATCH".to_owned(), text);
                true
            }
            None => false,
        }
    }

    fn header_text(&mut self) -> &[u8] {
        let headers = &self.headers;
        self.header_text.get_or_insert_with(|| {
            let mut text = Vec::new();
            for (name, value) in headers {
                text.extend_from_slice(name.as_bytes());
                text.extend_from_slice(b": ");
                text.extend_from_slice(value.as_bytes());
                text.push(b'\n');
            }
            text
        })
    }

    fn body(&mut self) -> &[u8] {
        let (message, limit) = (self.message, self.body_limit);
        // procmail sees LF line ends: `$` is before "\n", not "\r\n".
        self.body
            .get_or_insert_with(|| crlf_to_lf(read_body(message, limit)))
    }

    /// Does a matching recipe's action: the destination if it ends the run,
    /// and whether the action "succeeded" for `A`/`E` chains.
    fn act(&mut self, recipe: &Recipe, source: &Source) -> (Option<Destination>, bool) {
        let copy = recipe.flags.copy;
        let destination = match &recipe.action {
            Action::Block(items) => match self.items(items, source, Some(true)) {
                Some(d) => d,
                None => return (None, true),
            },
            Action::Deliver(target) => {
                let target = first_word(target, &self.vars);
                resolve(&target, &self.vars, |why| source.warn(recipe.line, why))
            }
            Action::Forward(words) => {
                let words = match shell::words(words, Some(&self.vars)) {
                    Ok(w) => w,
                    Err(_) => return (None, false),
                };
                let mut addresses = words.into_iter().filter(|w| !w.starts_with('-'));
                let Some(first) = addresses.next() else {
                    source.warn(recipe.line, "`!` without an address; does not match");
                    return (None, false);
                };
                let others: Vec<String> = addresses.collect();
                if !others.is_empty() {
                    source.warn(
                        recipe.line,
                        format!(
                            "redirects to <{first}> only; {} ignored (one redirect per \
                             recipient)",
                            others.join(", ")
                        ),
                    );
                }
                Destination::Redirect(first)
            }
            Action::Formail(edits) => {
                for edit in edits {
                    self.formail(edit, recipe.line, source);
                }
                return (None, true);
            }
            Action::Program => return (None, false),
        };
        if !copy {
            return (Some(destination), true);
        }
        match destination {
            // A copy to /dev/null is nothing.
            Destination::Discard => {}
            Destination::Redirect(to) => source.warn(
                recipe.line,
                format!(
                    "the copy to <{to}> is not sent: a recipient is delivered to one place, \
                     and the message stays in the mailbox"
                ),
            ),
            d => {
                if let Some(previous) = self.copy.replace(d) {
                    source.warn(
                        recipe.line,
                        format!(
                            "the earlier copy to {} is not made: a recipient is delivered \
                             to one place",
                            previous.describe()
                        ),
                    );
                }
            }
        }
        (None, true)
    }

    /// Applies one formail option to the headers and records the edit.
    fn formail(&mut self, edit: &FormailEdit, line: usize, source: &Source) {
        let field = shell::expand(&edit.field, &self.vars);
        let Some((name, value)) = field.split_once(':') else {
            source.warn(
                line,
                format!("formail -{}: {field:?} is not `Name: value`", edit.option),
            );
            return;
        };
        let name = name.trim();
        let value = value.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic() && b != b':') {
            source.warn(
                line,
                format!("formail -{}: bad header name {name:?}", edit.option),
            );
            return;
        }
        let present = self
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name));
        let header = || Header {
            name: name.to_owned(),
            value: value.to_owned(),
        };
        match edit.option {
            // -a: only if there is none (an empty value asks formail to
            // make one up, e.g. a Message-ID; not done here).
            'a' if present || value.is_empty() => return,
            'A' | 'a' => {
                self.headers.push((name.to_owned(), value.to_owned()));
                self.edits.push(Edit::AddHeader(header()));
            }
            // -I "Name:" removes the field.
            'I' if value.is_empty() => {
                self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
                self.edits.push(Edit::RemoveHeader(name.to_owned()));
            }
            _ => {
                match self
                    .headers
                    .iter_mut()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                {
                    Some(existing) => existing.1 = value.to_owned(),
                    None => self.headers.push((name.to_owned(), value.to_owned())),
                }
                self.edits.push(Edit::ReplaceHeader(header()));
            }
        }
        self.header_text = None;
    }
}

/// How much body is asked of the host at a time (it answers at most 1 MiB).
const BODY_CHUNK_BYTES: u32 = 64 * 1024;

/// The first `limit` bytes of the body.
fn read_body(message: &Message<'_>, limit: u32) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let have = u32::try_from(body.len()).unwrap_or(u32::MAX);
        let want = BODY_CHUNK_BYTES.min(limit.saturating_sub(have));
        if want == 0 {
            return body;
        }
        let chunk = message.read_body(u64::from(have), want);
        body.extend_from_slice(&chunk);
        // A short read is the end of the body.
        if chunk.len() < want as usize {
            return body;
        }
    }
}

/// The first word of an action line, expanded.
fn first_word(text: &str, vars: &Vars) -> String {
    shell::words(text, Some(vars))
        .ok()
        .and_then(|w| w.into_iter().next())
        .unwrap_or_default()
}

/// CR LF to LF.
fn crlf_to_lf(bytes: Vec<u8>) -> Vec<u8> {
    if !bytes.windows(2).any(|w| w == b"\r\n") {
        return bytes;
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut iter = bytes.iter().peekable();
    while let Some(&b) = iter.next() {
        if b == b'\r' && iter.peek() == Some(&&b'\n') {
            continue;
        }
        out.push(b);
    }
    out
}

/// The path's components, `.` and empty ones left out, `..` applied.
fn components(path: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts
}

/// Where a delivering action's target (expanded) puts the message.
///
/// `/dev/null` discards. Otherwise the target is a path: relative ones are
/// below `$MAILDIR`. Below `$HOME/Maildir` (or `$MAILDIR`) it names a
/// Maildir++ folder: `.Spam/` is `Spam`, `.Lists.rust/` is `Lists.rust`,
/// `Spam` (a procmail mbox file) is `Spam` too, the Maildir itself or its
/// `new`/`cur`/`tmp` is the inbox. A path outside the mail home, or a name
/// the host would not accept, is the inbox, with a warning through `warn`.
pub fn resolve(target: &str, vars: &Vars, warn: impl Fn(String)) -> Destination {
    let target = target.trim();
    if target == "/dev/null" {
        return Destination::Discard;
    }
    let home = shell::get(vars, "HOME");
    let maildir = shell::get(vars, "MAILDIR");
    let path = if target.starts_with('/') {
        target.to_owned()
    } else if let Some(rest) = target.strip_prefix("~/") {
        format!("{home}/{rest}")
    } else {
        format!("{maildir}/{target}")
    };
    let path = components(&path);
    let home = components(home);
    let maildir = components(maildir);
    let rel: &[&str] = if let Some(rel) = path.strip_prefix(home.as_slice()) {
        if let Some(below) = rel.strip_prefix(&["Maildir"][..]) {
            below
        } else if maildir.len() > home.len() && maildir.starts_with(&home) {
            path.strip_prefix(maildir.as_slice()).unwrap_or(rel)
        } else {
            rel
        }
    } else {
        warn(format!(
            "{target:?} is outside the mail home; delivering to the inbox"
        ));
        return Destination::Inbox;
    };
    let rel = match rel.split_last() {
        Some((last, rest)) if matches!(*last, "new" | "cur" | "tmp") => rest,
        _ => rel,
    };
    let name = rel
        .iter()
        .map(|c| c.trim_start_matches('.'))
        .filter(|c| !c.is_empty())
        .collect::<Vec<_>>()
        .join(".");
    if name.is_empty() || name.eq_ignore_ascii_case("INBOX") {
        return Destination::Inbox;
    }
    let usable = name.len() <= 200
        && name.split('.').all(|level| !level.is_empty())
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | ' ' | '+'));
    if !usable {
        warn(format!(
            "{target:?} is not a usable folder name; delivering to the inbox"
        ));
        return Destination::Inbox;
    }
    Destination::Folder(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(maildir: &str) -> Vars {
        [("HOME", "/home/jo"), ("MAILDIR", maildir)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    #[test]
    fn targets() {
        let folder = |f: &str| Destination::Folder(f.to_owned());
        for (maildir, target, want) in [
            ("/home/jo/Maildir/", ".Spam/", folder("Spam")),
            (
                "/home/jo/Maildir",
                "/home/jo/Maildir/.Spam/",
                folder("Spam"),
            ),
            (
                "/home/jo",
                "/home/jo/Maildir/.Lists.rust/",
                folder("Lists.rust"),
            ),
            ("/home/jo", ".Spam/", folder("Spam")),
            ("/home/jo/Maildir/", "Spam/", folder("Spam")),
            ("/home/jo/Maildir/", "spam", folder("spam")),
            ("/home/jo/Mail", "spam", folder("spam")),
            ("/home/jo/Maildir/", ".Spam/new", folder("Spam")),
            ("/home/jo/Maildir/", "new", Destination::Inbox),
            (
                "/home/jo/Maildir/",
                "/home/jo/Maildir/new",
                Destination::Inbox,
            ),
            ("/home/jo/Maildir/", "/home/jo/Maildir/", Destination::Inbox),
            ("/home/jo/Maildir/", "./", Destination::Inbox),
            ("/home/jo/Maildir/", "INBOX", Destination::Inbox),
            ("/home/jo/Maildir/", "/dev/null", Destination::Discard),
            ("/home/jo/Maildir/", "~/Maildir/.Work/", folder("Work")),
            ("/home/jo/Maildir/", ".a/.b/", folder("a.b")),
        ] {
            let got = resolve(target, &vars(maildir), |w| panic!("{target}: {w}"));
            assert_eq!(got, want, "{maildir} {target}");
        }
    }

    #[test]
    fn unusable_targets_go_to_the_inbox_with_a_warning() {
        for target in [
            "/var/mail/jo",
            "../../etc/x",
            ".Bad*Name/",
            "/home/jo/Maildir/../../x",
        ] {
            let warned = std::cell::Cell::new(false);
            let got = resolve(target, &vars("/home/jo/Maildir"), |_| warned.set(true));
            assert_eq!(got, Destination::Inbox, "{target}");
            assert!(warned.get(), "{target}");
        }
    }

    #[test]
    fn the_body_is_read_in_chunks_up_to_the_limit() {
        let body = "x".repeat(200_000);
        let m = Message::from_bytes(format!("Subject: a\n\n{body}"));
        assert_eq!(read_body(&m, 150_000).len(), 150_000);
        assert_eq!(read_body(&m, 1 << 20).len(), 200_000);
        assert_eq!(
            read_body(&m, BODY_CHUNK_BYTES).len(),
            BODY_CHUNK_BYTES as usize
        );
        assert!(read_body(&m, 0).is_empty());
    }

    #[test]
    fn crlf() {
        assert_eq!(crlf_to_lf(b"a\r\nb\rc\r\n".to_vec()), b"a\nb\rc\n");
    }
}
