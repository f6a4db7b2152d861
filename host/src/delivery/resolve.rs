//! Address resolution for local mail: which domains are ours, which users
//! exist, what aliases(5) expand to, and how `user+ext` splits.
//!
//! Used twice: by the SMTP session at RCPT time (to refuse unknown users with
//! 550 5.1.1, as Postfix's `local_recipient_maps` does) and by local delivery
//! (to find the mailboxes). Tables are read once, at startup.

use std::collections::{HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};

use crate::config::{Config, RecipientMap};

/// Where an envelope recipient goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    /// A user of a local domain.
    Local {
        /// Lower-cased local part without the extension.
        user: String,
        /// The part after `recipient_delimiter`, if any.
        extension: Option<String>,
        /// The recipient's domain.
        domain: String,
    },
    /// Another domain (relaying comes with the outbound SMTP client).
    Remote(String),
}

/// One final delivery target after alias expansion.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Target {
    /// A local user's Maildir.
    Mailbox {
        /// User name (safe as a path component).
        user: String,
        /// Address extension, kept for filters.
        extension: Option<String>,
        /// The address that led here (for `Delivered-To:`).
        address: String,
    },
    /// A non-local address from an alias.
    Forward(String),
    /// An alias target postern does not deliver to (`|command`, `/file`, `:include:`).
    Unsupported(String),
}

/// A parsed aliases(5) table: name → right-hand side entries.
#[derive(Debug, Clone, Default)]
pub struct Aliases {
    map: HashMap<String, Vec<String>>,
}

impl Aliases {
    /// Reads aliases(5) files: `name: value, value`, `#` comments, and
    /// continuation lines that start with white space.
    pub fn load(paths: &[PathBuf]) -> io::Result<Aliases> {
        let mut aliases = Aliases::default();
        for path in paths {
            let text = std::fs::read_to_string(path)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
            aliases.parse_into(&text, path)?;
        }
        Ok(aliases)
    }

    fn parse_into(&mut self, text: &str, path: &Path) -> io::Result<()> {
        let mut logical: Vec<(usize, String)> = Vec::new();
        for (n, line) in text.lines().enumerate() {
            if line.trim_start().starts_with('#') || line.trim().is_empty() {
                continue;
            }
            match logical.last_mut() {
                Some((_, cur)) if line.starts_with([' ', '\t']) => {
                    cur.push(' ');
                    cur.push_str(line.trim());
                }
                _ => logical.push((n + 1, line.trim().to_owned())),
            }
        }
        for (line_no, entry) in logical {
            let Some((name, rhs)) = entry.split_once(':') else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}:{line_no}: missing colon in alias entry", path.display()),
                ));
            };
            let name = name.trim().trim_matches('"').to_ascii_lowercase();
            let values = split_rhs(rhs);
            self.map.entry(name).or_default().extend(values);
        }
        Ok(())
    }

    /// The right-hand side for `name` (lower-cased).
    pub fn get(&self, name: &str) -> Option<&[String]> {
        self.map.get(name).map(Vec::as_slice)
    }

    /// Whether `name` is defined.
    pub fn contains(&self, name: &str) -> bool {
        self.map.contains_key(name)
    }
}

/// Splits `a, "b c", d` on commas outside quotes.
fn split_rhs(rhs: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    for c in rhs.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out.into_iter()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The most alias levels followed (Postfix stops at 100; loops are also caught).
const MAX_ALIAS_DEPTH: usize = 20;

/// Resolves addresses against the configuration's local domains and tables.
#[derive(Debug, Clone)]
pub struct Resolver {
    domains: Vec<String>,
    myorigin: String,
    delimiter: String,
    aliases: Aliases,
    /// `None`: any (well-formed) user is accepted.
    known_users: Option<HashSet<String>>,
}

impl Resolver {
    /// Reads `alias_maps` and `local_recipient_maps`.
    pub fn load(cfg: &Config) -> io::Result<Resolver> {
        let aliases = Aliases::load(&cfg.alias_maps)?;
        let known_users = if cfg.local_recipient_maps.is_empty() {
            None
        } else {
            let mut users = HashSet::new();
            for map in &cfg.local_recipient_maps {
                match map {
                    RecipientMap::AliasMaps => users.extend(aliases.map.keys().cloned()),
                    RecipientMap::Passwd => users.extend(read_keys(Path::new("/etc/passwd"), ':')?),
                    RecipientMap::File(p) => users.extend(read_keys(p, ' ')?),
                }
            }
            Some(users)
        };
        Ok(Resolver {
            domains: cfg.mydestination.clone(),
            myorigin: cfg.myorigin.clone(),
            delimiter: cfg.recipient_delimiter.clone(),
            aliases,
            known_users,
        })
    }

    /// Classifies an envelope address. A bare name (`postmaster`) is local to
    /// `myorigin`, as Postfix's `append_at_myorigin` makes it.
    pub fn classify(&self, address: &str) -> Destination {
        let (local, domain) = match address.rfind('@') {
            Some(at) => (&address[..at], address[at + 1..].to_ascii_lowercase()),
            None => (address, self.myorigin.to_ascii_lowercase()),
        };
        let domain = domain.trim_end_matches('.').to_owned();
        if !self.domains.contains(&domain) {
            return Destination::Remote(domain);
        }
        let local = local.trim_matches('"').to_ascii_lowercase();
        let (user, extension) = self.split_extension(&local);
        Destination::Local {
            user,
            extension,
            domain,
        }
    }

    /// Splits `user+ext` at the first delimiter character (Postfix allows several).
    fn split_extension(&self, local: &str) -> (String, Option<String>) {
        if self.delimiter.is_empty() || self.aliases.contains(local) {
            return (local.to_owned(), None);
        }
        match local.find(|c| self.delimiter.contains(c)) {
            Some(i) if i > 0 => (local[..i].to_owned(), Some(local[i + 1..].to_owned())),
            _ => (local.to_owned(), None),
        }
    }

    /// Whether a local user may receive mail: `local_recipient_maps` (when set)
    /// or the aliases must know it, and the name must be safe as a directory.
    pub fn accepts_local(&self, user: &str) -> bool {
        if self.aliases.contains(user) {
            return true;
        }
        safe_user(user) && self.known_users.as_ref().is_none_or(|k| k.contains(user))
    }

    /// Expands a local user through the aliases into final targets
    /// (deduplicated, in order).
    pub fn expand(&self, user: &str, extension: Option<&str>, domain: &str) -> Vec<Target> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        self.expand_into(user, extension, domain, 0, &mut seen, &mut out);
        let mut unique = HashSet::new();
        out.retain(|t| unique.insert(t.clone()));
        out
    }

    fn expand_into(
        &self,
        user: &str,
        extension: Option<&str>,
        domain: &str,
        depth: usize,
        seen: &mut HashSet<String>,
        out: &mut Vec<Target>,
    ) {
        let address = match extension {
            Some(ext) => format!(
                "{user}{}{ext}@{domain}",
                self.delimiter.chars().next().unwrap_or('+')
            ),
            None => format!("{user}@{domain}"),
        };
        let mailbox = || Target::Mailbox {
            user: user.to_owned(),
            extension: extension.map(str::to_owned),
            address: address.clone(),
        };
        // An alias that names itself (`root: root, admin`) delivers to the
        // mailbox, as in Postfix; so does a loop or a too-deep chain.
        let Some(values) = self
            .aliases
            .get(user)
            .filter(|_| depth < MAX_ALIAS_DEPTH && seen.insert(user.to_owned()))
        else {
            out.push(mailbox());
            return;
        };
        for value in values {
            let v = value.trim_matches('"');
            if v.starts_with('|') || v.starts_with('/') || v.starts_with(":include:") {
                out.push(Target::Unsupported(v.to_owned()));
                continue;
            }
            match self.classify(v) {
                Destination::Remote(_) => out.push(Target::Forward(v.to_owned())),
                Destination::Local {
                    user: u,
                    extension: e,
                    domain: d,
                } if u == user => {
                    let _ = (e, d);
                    out.push(mailbox());
                }
                Destination::Local {
                    user: u,
                    extension: e,
                    domain: d,
                } => {
                    self.expand_into(&u, e.as_deref(), &d, depth + 1, seen, out);
                }
            }
        }
    }
}

/// A user name that is safe as one path component of a mail home.
pub fn safe_user(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 64
        && !user.starts_with('.')
        && user.bytes().all(|b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
        })
}

/// The first field of every non-comment line of a table file.
fn read_keys(path: &Path, sep: char) -> io::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split([sep, ' ', '\t']).next())
        .map(str::to_ascii_lowercase)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolver(aliases: &str, extra: &str) -> Resolver {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("aliases");
        std::fs::write(&path, aliases).expect("write");
        let cfg = Config::parse(
            &format!(
                "myhostname = \"mx.example\"\nmydestination = [\"localhost\", \"mx.example\"]\nrecipient_delimiter = \"+\"\nalias_maps = [\"{}\"]\n{extra}",
                path.display()
            ),
            "t",
        )
        .expect("config");
        Resolver::load(&cfg).expect("load")
    }

    fn mailbox(user: &str, address: &str) -> Target {
        Target::Mailbox {
            user: user.into(),
            extension: None,
            address: address.into(),
        }
    }

    #[test]
    fn classify_domains_and_extensions() {
        let r = resolver("", "");
        assert_eq!(
            r.classify("Joe+Lists@LOCALHOST"),
            Destination::Local {
                user: "joe".into(),
                extension: Some("lists".into()),
                domain: "localhost".into()
            }
        );
        assert_eq!(
            r.classify("x@example.com"),
            Destination::Remote("example.com".into())
        );
        assert_eq!(
            r.classify("postmaster"),
            Destination::Local {
                user: "postmaster".into(),
                extension: None,
                domain: "mx.example".into()
            }
        );
    }

    #[test]
    fn aliases_expand_with_continuations_and_loops() {
        let r = resolver(
            "# comment\npostmaster: root\nroot: root, admin\nadmin: alice,\n  bob@localhost, \"|/bin/cat\"\nloop1: loop2\nloop2: loop1\nout: someone@example.com\n",
            "",
        );
        assert_eq!(
            r.expand("postmaster", None, "localhost"),
            vec![
                // Bare names take myorigin's domain, as Postfix's append_at_myorigin.
                mailbox("root", "root@mx.example"),
                mailbox("alice", "alice@mx.example"),
                mailbox("bob", "bob@localhost"),
                Target::Unsupported("|/bin/cat".into()),
            ]
        );
        assert_eq!(
            r.expand("loop1", None, "localhost"),
            vec![mailbox("loop1", "loop1@mx.example")]
        );
        assert_eq!(
            r.expand("out", None, "localhost"),
            vec![Target::Forward("someone@example.com".into())]
        );
        assert_eq!(
            r.expand("nobody", None, "localhost"),
            vec![mailbox("nobody", "nobody@localhost")]
        );
    }

    #[test]
    fn local_recipient_maps_restrict_users() {
        let open = resolver("admin: alice\n", "");
        assert!(open.accepts_local("anyone"));
        assert!(!open.accepts_local("../etc"));
        assert!(!open.accepts_local(".hidden"));
        let dir = tempfile::tempdir().expect("tempdir");
        let users = dir.path().join("users");
        std::fs::write(&users, "alice x\n# c\nbob\n").expect("write");
        let closed = resolver(
            "admin: alice\n",
            &format!(
                "local_recipient_maps = [\"{}\", \"$alias_maps\"]\n",
                users.display()
            ),
        );
        assert!(closed.accepts_local("alice"));
        assert!(closed.accepts_local("bob"));
        assert!(closed.accepts_local("admin"));
        assert!(!closed.accepts_local("carol"));
    }
}
