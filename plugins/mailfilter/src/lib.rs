//! The default bundle's delivery filter: procmail's rules, so that existing
//! `.procmailrc` files carry over.
//!
//! It runs at the deliver stage, once per local recipient after queueing,
//! as chain step `"mailfilter"`, and needs the `home` and `log`
//! capabilities. A site-wide rc file (like `/etc/procmailrc`) runs first,
//! then the recipient's own, read from their mail home; variables set by
//! the first are seen by the second, and a delivery in the first ends
//! everything, as with procmail.
//!
//! # Configuration
//!
//! ```toml
//! [plugins.mailfilter]
//! path = "postern_mailfilter.wasm"
//! capabilities = ["home", "log"]
//! # The site-wide rules (optional), handed to the plugin by the host.
//! files = { default = "/etc/postern/procmailrc" }
//!
//! [plugins.mailfilter.config]
//! # The user's rules: a file directly in the mail home ("" to read none).
//! user_rules = ".procmailrc"     # default
//! # How much of the body `B` conditions see, in bytes (at most 16 MiB).
//! body_limit = 262144            # default: 256 KiB
//!
//! [chains]
//! deliver = ["mailfilter"]
//! ```
//!
//! | setting         | meaning                                                      |
//! |-----------------|--------------------------------------------------------------|
//! | `files.default` | site-wide rules, run first (from the plugin's `files` table) |
//! | `user_rules`    | the user's rc file in their mail home; `""` disables         |
//! | `body_limit`    | body bytes read for `B` conditions (default 262144)          |
//!
//! # What is understood
//!
//! | procmail                                   | here                                                        |
//! |--------------------------------------------|-------------------------------------------------------------|
//! | `# comment`, blank lines, `\` continuation | as procmail                                                 |
//! | `NAME=value`, `$NAME`, `${NAME}`, `${N:-x}`| kept; `"..."` and `'...'` quoting as sh                      |
//! | `MAILDIR`, `DEFAULT`, `HOME`               | used to place folders (below)                               |
//! | `EXTENSION`, `$1`                          | the address extension (`jo+lists`: `lists`), as `procmail -a "$EXTENSION"` |
//! | `VERBOSE`, `SHELL`, `PATH`, `LOGFILE`, `DROPPRIVS`, `LOGABSTRACT`, ... | accepted, no effect |
//! | `:0 [flags] [:lockfile]`                   | a recipe; the lock file is ignored                           |
//! | flags `H` `B` `D`                          | header (default), body, case-sensitive (default: not)       |
//! | flag `c`                                   | carbon copy: processing goes on (see below)                 |
//! | flags `A` `a` / `E` / `e`                  | only if the preceding recipe matched / did not / failed (never) |
//! | flags `f` `h` `b` `w` `W` `i` `r`          | accepted, no effect                                          |
//! | `* regex`, `* !regex`                      | egrep-style, against `Name: value` header lines, `^`/`$` per line |
//! | `^TO_`, `^TO`, `^FROM_DAEMON`, `^FROM_MAILER`, `\/` (`MATCH`), `\<`, `\>`, `^^` | as procmail |
//! | `* < N`, `* > N`                           | message size in bytes                                       |
//! | `* B ?? re`, `* H ?? re`, `* VAR ?? re`    | match the body, the header, a variable (`* 1 ?? ^tag$`)     |
//! | `* $ ...`                                  | variables expanded, then read as a condition                |
//! | folder: `.Spam/`, `$MAILDIR/.Spam/`, `Spam/`, `$HOME/Maildir/.Lists.rust/` | Maildir++ folder `Spam`, `Lists.rust` |
//! | `$DEFAULT`, `$MAILDIR/`, `$MAILDIR/new`, `new` | the inbox                                               |
//! | `/dev/null`                                | discard                                                     |
//! | `! addr`                                   | redirect to `addr`                                          |
//! | `\| formail -A "H: v"` / `-a` / `-I` / `-i` | add / add if absent / replace (`-I "H:"` removes) a header; processing goes on |
//! | `{ ... }`                                  | nested blocks, any depth; the conditions gate the block     |
//!
//! A delivering action (folder, `/dev/null`, `!`) ends processing, as with
//! procmail; header edits from formail accumulate across recipes (later
//! conditions see them) and go to the host with the final destination. If
//! nothing delivers, the message goes to `$DEFAULT`, which is the inbox
//! unless a file sets it.
//!
//! # What differs from procmail
//!
//! - **No programs.** The plugin runs in a sandbox: `| program`, `* ? program`
//!   and backquotes cannot run. Such a recipe never matches (so
//!   `:0fw | spamc` leaves the message as it is), and one warning per file
//!   names the lines. formail with only header options is done here instead.
//! - **No mbox files, no locking.** The host delivers to Maildir only. A
//!   target below the mail home is read as a Maildir++ folder whether or
//!   not it ends in `/`: procmail's mbox file `$MAILDIR/spam` becomes folder
//!   `spam`; path levels become dots (`.a/.b/` is `a.b`). A target outside
//!   the mail home (`/var/mail/jo`), or a name the host refuses, is the
//!   inbox, with a warning. Lock files are ignored.
//! - **`$HOME`** is `/home/USER`; the rules cannot see the real mail home's
//!   path, so `$HOME` and `$MAILDIR` only serve to place folders (an
//!   absolute path written out literally must use that form).
//! - **One destination per recipient.** The host files or redirects a
//!   recipient once. A `c` recipe's folder is used only if nothing later
//!   delivers (the inbox copy procmail would also make is not); a `c`
//!   redirect (`:0c ! addr`) is not sent, and the message stays in the
//!   mailbox; both are logged. `! a b` redirects to `a` only.
//! - **Not supported** (the recipe or line is skipped, with a warning):
//!   weighted (scoring) conditions, `INCLUDERC`/`SWITCHRC`, the old `:N`
//!   recipe form. `e` recipes never run (actions here do not fail).
//!   formail `-i` replaces the field instead of renaming the old one.
//!
//! Every problem in a file is logged with the file and line (and the user
//! for a user's file) and only that recipe is skipped: a user's mistake
//! never fails a delivery. Patterns are compiled with size limits; the body
//! is read only when a condition needs it, up to `body_limit`.
//!
//! # Layout
//!
//! - `rules`: rc file text to statements and problems.
//! - `pattern`: procmail's regular expressions on the `regex` engines.
//! - `shell`: variables, `$` expansion, words and quotes.
//! - `run`: running statements against one message; where targets lead.

use postern_plugin_sdk::{Config, Context, Delivery, Filter, Message, Outcome, home, log};

mod pattern;
mod rules;
mod run;
mod shell;

use rules::Rules;
use run::{Destination, Run, Source};
use shell::Vars;

/// Default `user_rules`: procmail's file name.
pub const DEFAULT_USER_RULES: &str = ".procmailrc";

/// Default `body_limit`: 256 KiB.
pub const DEFAULT_BODY_LIMIT_BYTES: u64 = 256 * 1024;

/// The largest `body_limit` accepted: a plugin instance's memory is small.
pub const MAX_BODY_LIMIT_BYTES: u64 = 16 << 20;

/// The filter: the site rules (parsed at first use) and the settings.
#[derive(Debug)]
pub struct Mailfilter {
    /// `files.default`, as text.
    site_text: Option<String>,
    /// `site_text` parsed, once per instance.
    site: Option<Rules>,
    user_rules: String,
    body_limit: u32,
}

impl Filter for Mailfilter {
    fn configure(config: Config) -> Result<Self, String> {
        if let Some(key) = config
            .table()
            .keys()
            .find(|k| !matches!(k.as_str(), "files" | "user_rules" | "body_limit"))
        {
            return Err(format!("unknown setting `{key}`"));
        }
        let site_text = match config.get("files") {
            None => None,
            Some(files) => {
                let files = files
                    .as_object()
                    .ok_or("`files` must be a table of file contents")?;
                if let Some(key) = files.keys().find(|k| k.as_str() != "default") {
                    return Err(format!("unknown file `{key}` (only `default`)"));
                }
                match files.get("default") {
                    None => None,
                    Some(text) => Some(
                        text.as_str()
                            .ok_or("`files.default` must be text")?
                            .to_owned(),
                    ),
                }
            }
        };
        let user_rules = config.str_or("user_rules", DEFAULT_USER_RULES)?.to_owned();
        if user_rules.contains('/') {
            return Err(format!(
                "setting `user_rules`: {user_rules:?} must be a file name in the mail home, \
                 without `/`"
            ));
        }
        let body_limit = config.u64_or("body_limit", DEFAULT_BODY_LIMIT_BYTES)?;
        if body_limit > MAX_BODY_LIMIT_BYTES {
            return Err(format!(
                "setting `body_limit`: at most {MAX_BODY_LIMIT_BYTES} bytes"
            ));
        }
        Ok(Mailfilter {
            site_text,
            site: None,
            user_rules,
            body_limit: u32::try_from(body_limit).unwrap_or(u32::MAX),
        })
    }

    fn on_deliver(&mut self, _cx: &Context, delivery: &Delivery, message: &Message<'_>) -> Outcome {
        let mut run = Run::new(message, initial_vars(delivery), self.body_limit);
        let mut delivered = None;
        if let Some(text) = &self.site_text {
            let source = Source {
                label: "files.default".to_owned(),
            };
            let site = self.site.get_or_insert_with(|| {
                let rules = rules::parse(text);
                source.report(&rules);
                rules
            });
            delivered = run.file(site, &source);
        }
        if delivered.is_none()
            && !self.user_rules.is_empty()
            && let Some(text) = home::read_file(&self.user_rules)
        {
            let source = Source {
                label: format!("user {}: {}", delivery.user, self.user_rules),
            };
            let rules = rules::parse(&text);
            source.report(&rules);
            delivered = run.file(&rules, &source);
        }
        let destination = match (delivered, run.copy.take()) {
            (Some(d), Some(copy)) => {
                if copy != d {
                    log::warn(format!(
                        "user {}: the copy to {} is not made: a recipient is delivered to \
                         one place ({})",
                        delivery.user,
                        copy.describe(),
                        d.describe()
                    ));
                }
                d
            }
            (Some(d), None) => d,
            (None, Some(copy)) => copy,
            (None, None) => {
                let default = shell::get(&run.vars, "DEFAULT").to_owned();
                run::resolve(&default, &run.vars, |why| {
                    log::debug(format!("user {}: DEFAULT: {why}", delivery.user));
                })
            }
        };
        let mut outcome = match destination {
            Destination::Inbox => Outcome::cont(),
            Destination::Folder(folder) => Outcome::cont().set_folder(folder),
            Destination::Discard => Outcome::discard(),
            Destination::Redirect(to) => Outcome::cont().redirect(to),
        };
        outcome.edits.splice(0..0, run.edits);
        outcome
    }
}

postern_plugin_sdk::register!(Mailfilter);

/// The variables procmail starts with, for this recipient.
fn initial_vars(delivery: &Delivery) -> Vars {
    let home = format!("/home/{}", delivery.user);
    let inbox = format!("{home}/Maildir/");
    let extension = delivery.extension.clone().unwrap_or_default();
    [
        ("HOME", home.clone()),
        ("LOGNAME", delivery.user.clone()),
        ("USER", delivery.user.clone()),
        // procmail's default MAILDIR is $HOME.
        ("MAILDIR", home),
        ("DEFAULT", inbox.clone()),
        ("ORGMAIL", inbox),
        ("EXTENSION", extension.clone()),
        ("1", extension),
        ("SHELL", "/bin/sh".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

#[cfg(test)]
mod tests;
