//! `postern import-postfix`: a Postfix main.cf translated into postern.toml.
//!
//! In: a main.cf (Postfix's syntax: `name = value`, `#` comments, lines that
//! start with white space continue the previous one). Out: the text of a
//! postern.toml, and one note per parameter that was not carried over, with
//! the reason — the operator reads those before switching.
//!
//! Parameters postern has under the same name are copied (with Postfix's
//! value syntax, which postern.toml accepts); tables they name are checked for
//! existence. The restriction lists become chains of the default bundle's
//! `restrictions` and `rbl` plugins (one step per run of words of the same
//! plugin, in the list's order, so the first decisive word still wins), and
//! the header/body check tables become the `header-checks` plugin's `files`,
//! copied next to the new postern.toml. Anything whose behaviour postern does
//! not have yet is reported, never silently dropped. This module only reads
//! files; the caller writes the output and copies the tables.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The result of an import.
#[derive(Debug, Clone, Default)]
pub struct Imported {
    /// postern.toml text.
    pub toml: String,
    /// `parameter: why` for each parameter not carried over.
    pub notes: Vec<String>,
    /// Tables to copy next to the new postern.toml: (source, file name).
    pub copies: Vec<(PathBuf, String)>,
}

/// A main.cf parameter with the line it starts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// 1-based line.
    pub line: usize,
    /// Name.
    pub name: String,
    /// Value, continuation lines joined with a space.
    pub value: String,
}

/// Parses main.cf text into parameters (later definitions win, as in Postfix).
pub fn parse_main_cf(text: &str) -> (Vec<Param>, Vec<String>) {
    let mut params: Vec<Param> = Vec::new();
    let mut warnings = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        if line.trim_start().starts_with('#') || line.trim().is_empty() {
            continue;
        }
        if line.starts_with([' ', '\t']) {
            match params.last_mut() {
                Some(p) => {
                    p.value.push(' ');
                    p.value.push_str(line.trim());
                }
                None => warnings.push(format!(
                    "line {}: continuation line without a parameter",
                    i + 1
                )),
            }
            continue;
        }
        match line.split_once('=') {
            Some((name, value)) => {
                let name = name.trim().to_owned();
                params.retain(|p| p.name != name);
                params.push(Param {
                    line: i + 1,
                    name,
                    value: value.trim().to_owned(),
                });
            }
            None => warnings.push(format!("line {}: not a `name = value` line", i + 1)),
        }
    }
    (params, warnings)
}

/// Splits a Postfix list value (commas and/or white space).
fn words(value: &str) -> Vec<String> {
    value
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

fn quote(s: &str) -> String {
    toml::Value::String(s.to_owned()).to_string()
}

fn list(items: &[String]) -> String {
    let q: Vec<String> = items.iter().map(|i| quote(i)).collect();
    format!("[{}]", q.join(", "))
}

/// Where a file named in main.cf is: the path itself, or (for a copied
/// configuration) a file of the same name next to main.cf.
fn locate(path: &str, main_cf_dir: &Path) -> Option<PathBuf> {
    let p = PathBuf::from(path);
    if p.exists() {
        return Some(p);
    }
    let beside = main_cf_dir.join(p.file_name()?);
    beside.exists().then_some(beside)
}

/// Why a known Postfix parameter is not carried over (None: it is, or it is
/// harmless to drop and said so elsewhere).
fn not_yet(name: &str) -> Option<&'static str> {
    Some(match name {
        "content_filter" => "after-queue content filters (amavis) are not implemented yet",
        "masquerade_domains" => "address masquerading is not implemented yet",
        "relayhost" => "outbound SMTP is not implemented yet",
        "mailbox_size_limit" => "postern has no mailbox quota",
        "virtual_alias_maps" | "virtual_alias_domains" => {
            "virtual alias maps are not implemented yet"
        }
        "receive_override_options" => {
            "only meaningful with a content filter, which is not implemented yet"
        }
        "delay_warning_time" => "delay warnings come with bounces, not implemented yet",
        "smtpd_tls_cert_file"
        | "smtpd_tls_key_file"
        | "smtpd_use_tls"
        | "smtpd_tls_security_level" => "TLS is not implemented yet",
        "smtpd_sasl_auth_enable" | "smtpd_sasl_type" | "smtpd_sasl_path" => {
            "SMTP AUTH is not implemented yet"
        }
        _ => return None,
    })
}

/// The restriction lists and the stage whose chain runs each.
const LISTS: &[(&str, &str)] = &[
    ("smtpd_client_restrictions", "connect"),
    ("smtpd_helo_restrictions", "helo"),
    ("smtpd_sender_restrictions", "mail"),
    ("smtpd_relay_restrictions", "rcpt"),
    ("smtpd_recipient_restrictions", "rcpt"),
    ("smtpd_data_restrictions", "data"),
];

/// Postfix's default `smtpd_relay_restrictions` at `compatibility_level` ≥ 1;
/// below (a main.cf that does not set the level) the list is empty and
/// `smtpd_recipient_restrictions` alone guards relaying.
const RELAY_DEFAULT: &str =
    "permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination";

/// Words the `restrictions` plugin evaluates (`check_*_access` take a table).
const RESTRICTION_WORDS: &[&str] = &[
    "permit",
    "reject",
    "defer",
    "warn_if_reject",
    "permit_mynetworks",
    "permit_sasl_authenticated",
    "permit_auth_destination",
    "reject_unauth_destination",
    "defer_unauth_destination",
    "reject_invalid_helo_hostname",
    "reject_invalid_hostname",
    "reject_non_fqdn_helo_hostname",
    "reject_non_fqdn_hostname",
    "reject_unknown_helo_hostname",
    "reject_unknown_hostname",
    "reject_non_fqdn_sender",
    "reject_non_fqdn_recipient",
    "reject_unknown_sender_domain",
    "reject_unknown_recipient_domain",
    "reject_unknown_client_hostname",
    "reject_unknown_client",
    "reject_unknown_reverse_client_hostname",
    "reject_unauth_pipelining",
];

/// Access-table words of the `restrictions` plugin.
const TABLE_WORDS: &[&str] = &[
    "check_client_access",
    "check_helo_access",
    "check_sender_access",
    "check_recipient_access",
];

/// Words of the `rbl` plugin; each takes a zone.
const RBL_WORDS: &[&str] = &[
    "reject_rbl_client",
    "reject_rhsbl_client",
    "reject_rhsbl_reverse_client",
    "reject_rhsbl_sender",
    "reject_rhsbl_helo",
    "permit_dnswl_client",
    "permit_rhswl_client",
];

/// The content-inspection tables, read by the `header-checks` plugin.
const CHECK_TABLES: &[&str] = &[
    "header_checks",
    "mime_header_checks",
    "nested_header_checks",
    "body_checks",
];

/// Whether an unsupported Postfix restriction takes an argument (so the
/// argument is skipped with it).
fn takes_argument(word: &str) -> bool {
    word.starts_with("check_")
        || word.contains("rbl_")
        || word.contains("rhsbl")
        || word.contains("dnswl")
        || word.contains("rhswl")
}

/// What the translation collects besides the top-level lines.
#[derive(Default)]
struct Bundle {
    /// (stage, step) in order.
    steps: Vec<(&'static str, String)>,
    /// `[plugins.restrictions.files]` and `[plugins.header-checks.files]`:
    /// name → file name next to postern.toml.
    restriction_files: Vec<(String, String)>,
    check_files: Vec<(String, String)>,
    /// `postscreen_dnsbl_sites`, `postscreen_dnsbl_threshold`, and whether
    /// `postscreen_dnsbl_action` enforces them.
    dnsbl_sites: Vec<String>,
    dnsbl_threshold: Option<i64>,
    dnsbl_enforce: bool,
}

/// A table named in main.cf (`type:/path`), located and queued for copying
/// under a file name unique in the output directory.
fn copy_table(
    table: &str,
    dir: &Path,
    copies: &mut Vec<(PathBuf, String)>,
) -> Result<(String, String), String> {
    let (kind, file) = table
        .split_once(':')
        .ok_or_else(|| format!("`{table}` has no table type"))?;
    let found = locate(file, dir).ok_or_else(|| format!("{file} does not exist here"))?;
    if let Some((_, name)) = copies.iter().find(|(src, _)| *src == found) {
        return Ok((kind.to_owned(), name.clone()));
    }
    let base = found
        .file_name()
        .map_or_else(|| "table".to_owned(), |n| n.to_string_lossy().into_owned());
    let mut name = base.clone();
    let mut n = 1;
    while name == "postern.toml" || copies.iter().any(|(_, taken)| *taken == name) {
        n += 1;
        name = format!("{base}.{n}");
    }
    copies.push((found, name.clone()));
    Ok((kind.to_owned(), name))
}

/// One restriction list as chain steps: runs of `restrictions` words and of
/// `rbl` words, in order. Words postern does not have are left out, each
/// with a note (the list is then more permissive than in Postfix).
fn translate_list(
    p: &Param,
    value: &str,
    dir: &Path,
    bundle: &mut Bundle,
    copies: &mut Vec<(PathBuf, String)>,
    notes: &mut Vec<String>,
) -> Vec<String> {
    let mut note = |why: String| {
        notes.push(format!("{} (line {}): {why}", p.name, p.line));
    };
    let mut steps: Vec<(&str, Vec<String>)> = Vec::new();
    let mut push = |plugin: &'static str, words: Vec<String>| match steps.last_mut() {
        Some((last, run)) if *last == plugin => run.extend(words),
        _ => steps.push((plugin, words)),
    };
    let words = words(value);
    let mut i = 0;
    while let Some(word) = words.get(i) {
        let lower = word.to_ascii_lowercase();
        let arg = words.get(i + 1);
        i += 1;
        if RESTRICTION_WORDS.contains(&lower.as_str()) {
            if lower == "warn_if_reject" && arg.is_some_and(|a| RBL_WORDS.contains(&a.as_str())) {
                note(format!(
                    "`warn_if_reject {}` left out: the rbl plugin has no warn-only mode",
                    arg.map_or("", |a| a.as_str())
                ));
                i += 2;
                continue;
            }
            push("restrictions", vec![lower]);
        } else if TABLE_WORDS.contains(&lower.as_str()) {
            i += 1;
            let Some(table) = arg else {
                note(format!("`{word}` without a table left out"));
                continue;
            };
            match copy_table(table, dir, copies) {
                Ok((kind, name)) => {
                    if !bundle.restriction_files.iter().any(|(n, _)| *n == name) {
                        bundle.restriction_files.push((name.clone(), name.clone()));
                    }
                    push("restrictions", vec![lower, format!("{kind}:{name}")]);
                }
                Err(why) => note(format!("`{word} {table}` left out: {why}")),
            }
        } else if RBL_WORDS.contains(&lower.as_str()) {
            i += 1;
            match arg {
                Some(zone) => push("rbl", vec![lower, zone.clone()]),
                None => note(format!("`{word}` without a zone left out")),
            }
        } else {
            let skipped = if takes_argument(&lower) {
                i += 1;
                format!("{word} {}", arg.map_or("", |a| a.as_str()))
            } else {
                word.clone()
            };
            note(format!(
                "`{}` is not supported by postern; left out, so the list is more permissive than in Postfix",
                skipped.trim()
            ));
        }
    }
    steps
        .into_iter()
        .map(|(plugin, words)| match plugin {
            "restrictions" => format!("restrictions {} {}", p.name, words.join(" ")),
            _ => format!("{plugin} {}", words.join(" ")),
        })
        .collect()
}

/// The default bundle's plugins and the chains, as postern.toml text.
fn bundle_toml(bundle: &Bundle) -> String {
    let mut t = String::from(
        "\n# The default plugin bundle (built into postern).\n\
         [plugins.restrictions]\n\
         path = \"builtin:restrictions\"\n\
         capabilities = [\"dns\", \"log\"]\n\
         config = { mydestination = \"$mydestination\", relay_domains = \"$relay_domains\", recipient_delimiter = \"$recipient_delimiter\" }\n",
    );
    let files = |t: &mut String, plugin: &str, files: &[(String, String)]| {
        if files.is_empty() {
            return;
        }
        let _ = writeln!(t, "\n[plugins.{plugin}.files]");
        for (name, file) in files {
            let _ = writeln!(t, "{} = {}", quote(name), quote(file));
        }
    };
    files(&mut t, "restrictions", &bundle.restriction_files);
    t.push_str("\n[plugins.rbl]\npath = \"builtin:rbl\"\ncapabilities = [\"dns\", \"log\"]\n");
    if !bundle.dnsbl_sites.is_empty() {
        let threshold = bundle.dnsbl_threshold.unwrap_or(1);
        let _ = writeln!(
            t,
            "config = {{ sites = {}, threshold = {threshold} }}",
            list(&bundle.dnsbl_sites)
        );
    }
    t.push_str(
        "\n[plugins.header-checks]\npath = \"builtin:header-checks\"\ncapabilities = [\"log\"]\n",
    );
    files(&mut t, "header-checks", &bundle.check_files);
    t.push_str("\n[plugins.mailfilter]\npath = \"builtin:mailfilter\"\ncapabilities = [\"home\", \"log\"]\n");
    t.push_str("\n[chains]\n");
    for stage in ["connect", "helo", "mail", "rcpt", "data", "deliver"] {
        let mut steps: Vec<String> = Vec::new();
        if stage == "connect" && bundle.dnsbl_enforce && !bundle.dnsbl_sites.is_empty() {
            // postscreen runs before smtpd: its score comes first.
            steps.push("rbl".into());
        }
        steps.extend(
            bundle
                .steps
                .iter()
                .filter(|(s, _)| *s == stage)
                .map(|(_, step)| step.clone()),
        );
        if stage == "data" && !bundle.check_files.is_empty() {
            steps.push("header-checks".into());
        }
        if stage == "deliver" {
            steps.push("mailfilter".into());
        }
        if steps.is_empty() {
            continue;
        }
        let _ = writeln!(t, "{stage} = [");
        for s in steps {
            let _ = writeln!(t, "    {},", quote(&s));
        }
        t.push_str("]\n");
    }
    t
}

/// Translates `main.cf` (read from `path`).
pub fn import(path: &Path) -> Result<Imported, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let (params, warnings) = parse_main_cf(&text);
    let mut out = Imported::default();
    for w in warnings {
        out.notes.push(format!("{}: {w}", path.display()));
    }
    let mut toml = String::new();
    let _ = writeln!(
        toml,
        "# Imported from {} by `postern import-postfix`.",
        path.display()
    );
    let _ = writeln!(toml, "# Check it with `postern check --config FILE`.\n");
    let mut bundle = Bundle::default();
    let mut copies = Vec::new();
    let mut list_notes = Vec::new();
    let compatible = params
        .iter()
        .find(|p| p.name == "compatibility_level")
        .and_then(|p| p.value.split('.').next()?.trim().parse::<u32>().ok())
        .is_some_and(|level| level >= 1);
    // The lists in Postfix's evaluation order, relay before recipient.
    for (list, stage) in LISTS {
        let value = match params.iter().find(|p| p.name == *list) {
            Some(p) => Some((p.clone(), p.value.clone())),
            None if *list == "smtpd_relay_restrictions" && compatible => Some((
                Param {
                    line: 0,
                    name: (*list).to_owned(),
                    value: RELAY_DEFAULT.to_owned(),
                },
                RELAY_DEFAULT.to_owned(),
            )),
            None => None,
        };
        if let Some((p, value)) = value {
            for step in translate_list(&p, &value, dir, &mut bundle, &mut copies, &mut list_notes) {
                bundle.steps.push((stage, step));
            }
        }
    }
    out.notes.extend(list_notes);
    let mut note = |p: &Param, why: &str| {
        out.notes
            .push(format!("{} = {} (line {}): {why}", p.name, p.value, p.line))
    };
    for p in &params {
        let v = p.value.as_str();
        let line = match p.name.as_str() {
            name if LISTS.iter().any(|(l, _)| *l == name) => continue,
            "compatibility_level" => {
                note(
                    p,
                    "postern has Postfix 3.x defaults; the level only decides the default smtpd_relay_restrictions here",
                );
                continue;
            }
            name if CHECK_TABLES.contains(&name) => {
                let tables = words(v);
                let Some(first) = tables.first() else {
                    continue;
                };
                if tables.len() > 1 {
                    note(p, "only the first table is used; merge the others into it");
                }
                match copy_table(first, dir, &mut copies) {
                    Ok((kind, file)) if kind == "regexp" || kind == "pcre" => {
                        if kind == "pcre" {
                            note(
                                p,
                                "a pcre table is read with regexp table syntax; check patterns that use PCRE-only features",
                            );
                        }
                        bundle.check_files.push((name.to_owned(), file));
                    }
                    Ok((kind, _)) => note(
                        p,
                        &format!(
                            "`{kind}` tables are not supported for content checks (use regexp)"
                        ),
                    ),
                    Err(why) => note(p, &format!("left out: {why}")),
                }
                continue;
            }
            "mailbox_command" if v.contains("procmail") => {
                note(
                    p,
                    "postern delivers to Maildir itself; each user's ~/.procmailrc runs in the mailfilter plugin (a procmail subset; programs such as spamc cannot run in its sandbox)",
                );
                continue;
            }
            "mailbox_command" => {
                note(
                    p,
                    "postern delivers to Maildir itself and runs no delivery command; rules go into the mailfilter plugin (procmail syntax)",
                );
                continue;
            }
            "relay_domains" => format!("relay_domains = {}", list(&words(v))),
            "postscreen_dnsbl_sites" => {
                bundle.dnsbl_sites = words(v);
                note(
                    p,
                    "the sites are scored by the rbl plugin at the connect stage when postscreen_dnsbl_action is enforce or drop (postscreen's other tests are not implemented)",
                );
                continue;
            }
            "postscreen_dnsbl_threshold" => {
                match v.parse() {
                    Ok(n) => bundle.dnsbl_threshold = Some(n),
                    Err(_) => note(
                        p,
                        "not a number; the rbl plugin's default threshold (1) applies",
                    ),
                }
                continue;
            }
            "postscreen_dnsbl_action" => {
                bundle.dnsbl_enforce = matches!(v, "enforce" | "drop");
                if !bundle.dnsbl_enforce {
                    note(
                        p,
                        "the DNSBL score only rejects with enforce or drop; the sites are configured but not in a chain",
                    );
                }
                continue;
            }
            "myhostname" | "mydomain" | "smtpd_banner" | "recipient_delimiter" | "home_mailbox" => {
                format!("{} = {}", p.name, quote(v))
            }
            "myorigin" if v.starts_with('/') => {
                match locate(v, dir).and_then(|f| std::fs::read_to_string(f).ok()) {
                    // Debian's convention: myorigin names a file holding the domain.
                    Some(domain) if !domain.trim().is_empty() => {
                        format!("myorigin = {}", quote(domain.trim()))
                    }
                    _ => {
                        note(
                            p,
                            "the file it names cannot be read; myorigin defaults to $myhostname",
                        );
                        continue;
                    }
                }
            }
            "myorigin" => format!("myorigin = {}", quote(v)),
            "mydestination" | "mynetworks" => format!("{} = {}", p.name, list(&words(v))),
            "smtpd_helo_required" | "disable_vrfy_command" | "smtpd_delay_reject" => {
                format!("{} = {}", p.name, quote(v))
            }
            "message_size_limit"
            | "smtpd_recipient_limit"
            | "smtpd_hard_error_limit"
            | "default_process_limit"
            | "default_destination_concurrency_limit" => format!("{} = {v}", p.name),
            "smtpd_timeout"
            | "minimal_backoff_time"
            | "maximal_backoff_time"
            | "queue_run_delay"
            | "maximal_queue_lifetime"
            | "smtpd_forbid_bare_newline" => format!("{} = {}", p.name, quote(v)),
            "alias_maps" => {
                let mut found = Vec::new();
                for table in words(v) {
                    let file = table.split_once(':').map_or(table.as_str(), |(_, f)| f);
                    match locate(file, dir) {
                        Some(f) => found.push(f.display().to_string()),
                        None => note(
                            p,
                            &format!(
                                "{file} does not exist here; left out (copy it and add it to alias_maps)"
                            ),
                        ),
                    }
                }
                format!("alias_maps = {}", list(&found))
            }
            "inet_interfaces" => {
                let addrs: Vec<String> = words(v)
                    .iter()
                    .map(|a| match a.as_str() {
                        "all" => "0.0.0.0:25".to_owned(),
                        "loopback-only" | "localhost" => "127.0.0.1:25".to_owned(),
                        ip if ip.contains(':') => format!("[{ip}]:25"),
                        ip => format!("{ip}:25"),
                    })
                    .collect();
                format!("listen = {}", list(&addrs))
            }
            "alias_database" => {
                note(
                    p,
                    "not needed: postern reads the alias source files directly",
                );
                continue;
            }
            "biff" | "append_dot_mydomain" if v == "no" => {
                note(p, "postern already behaves this way");
                continue;
            }
            "reject_unknown_recipient_domain" => {
                note(
                    p,
                    "not a Postfix parameter (Postfix reports it as unused); as a restriction it belongs in smtpd_recipient_restrictions",
                );
                continue;
            }
            name => {
                note(p, not_yet(name).unwrap_or("not supported by postern"));
                continue;
            }
        };
        toml.push_str(&line);
        toml.push('\n');
    }
    toml.push_str(&bundle_toml(&bundle));
    out.toml = toml;
    out.copies = copies;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Stage};

    /// Imports `main_cf` (written into `dir`); the result and the
    /// configuration it parses to.
    fn import_text(dir: &Path, main_cf: &str) -> (Imported, Config) {
        std::fs::write(dir.join("main.cf"), main_cf).expect("write");
        let imported = import(&dir.join("main.cf")).expect("import");
        let cfg = Config::parse(&imported.toml, "imported").expect("valid postern.toml");
        (imported, cfg)
    }

    /// A stage's steps as their arguments joined.
    fn step_args(cfg: &Config, stage: Stage) -> Vec<String> {
        cfg.chains
            .get(stage)
            .iter()
            .map(|s| s.args.join(" "))
            .collect()
    }

    #[test]
    fn continuation_lines_and_overrides() {
        let (p, w) = parse_main_cf("# c\na = 1\nlist = x,\n   y\n  z\na = 2\n junk\nnoequals\n");
        assert_eq!(
            p[0],
            Param {
                line: 3,
                name: "list".into(),
                value: "x, y z".into()
            }
        );
        assert_eq!(
            p[1],
            Param {
                line: 6,
                name: "a".into(),
                value: "2 junk".into()
            }
        );
        assert_eq!(w, ["line 8: not a `name = value` line"]);
    }

    #[test]
    fn the_seed_imports_and_parses() {
        let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/seed/main.cf");
        let imported = import(&seed).expect("import");
        let cfg = Config::parse(&imported.toml, "imported").expect("valid postern.toml");
        assert_eq!(cfg.myhostname, "fire.deimos.fr");
        assert_eq!(
            cfg.myorigin, "deimos.fr",
            "read from the mailname file next to main.cf"
        );
        assert_eq!(cfg.mydestination, ["deimos.fr", "fire", "localhost"]);
        assert!(cfg.smtpd_helo_required && cfg.disable_vrfy_command);
        assert_eq!(cfg.recipient_delimiter, "+");
        assert!(cfg.in_mynetworks("10.8.0.0".parse().expect("ip")));
        let steps = |stage| {
            cfg.chains
                .get(stage)
                .iter()
                .map(|s| format!("{} {}", s.plugin, s.args.join(" ")))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            steps(Stage::Connect),
            ["rbl reject_rbl_client bl.spamcop.net"]
        );
        assert_eq!(
            steps(Stage::Rcpt),
            [
                "restrictions smtpd_recipient_restrictions permit_sasl_authenticated permit_mynetworks reject_unauth_destination reject_invalid_hostname reject_non_fqdn_sender reject_unknown_sender_domain reject_non_fqdn_recipient reject_unknown_recipient_domain",
                "rbl reject_rhsbl_client blackhole.securitysage.com reject_rhsbl_sender blackhole.securitysage.com reject_rbl_client relays.ordb.org reject_rbl_client opm.blitzed.org reject_rbl_client list.dsbl.org reject_rbl_client cbl.abuseat.org reject_rbl_client dul.dnsbl.sorbs.net",
                "restrictions smtpd_recipient_restrictions permit",
            ]
        );
        assert_eq!(
            steps(Stage::Data),
            [
                "restrictions smtpd_data_restrictions reject_unauth_pipelining",
                "header-checks "
            ]
        );
        assert_eq!(steps(Stage::Deliver), ["mailfilter "]);
        let checks = &cfg.plugins["header-checks"];
        assert_eq!(
            checks.files["mime_header_checks"],
            PathBuf::from("mime_header_checks.regexp")
        );
        assert_eq!(
            imported.copies,
            [(
                seed.with_file_name("mime_header_checks.regexp"),
                "mime_header_checks.regexp".to_owned()
            )]
        );
        let notes = imported.notes.join("\n");
        for p in [
            "content_filter",
            "mailbox_command",
            "masquerade_domains",
            "reject_unknown_recipient_domain",
        ] {
            assert!(
                notes.contains(&format!("{p} = ")),
                "{p} not reported:\n{notes}"
            );
        }
        for p in ["smtpd_recipient_restrictions", "mime_header_checks"] {
            assert!(
                !notes.contains(&format!("{p} = ")),
                "{p} reported:\n{notes}"
            );
        }
    }

    #[test]
    fn unsupported_words_are_left_out_with_a_note_and_tables_are_copied() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("access"), "spam.test REJECT\n").expect("write");
        let (imported, cfg) = import_text(
            dir.path(),
            &format!(
                "smtpd_sender_restrictions = check_sender_access hash:{}/access,\n  \
                 check_policy_service inet:127.0.0.1:10023, reject_unlisted_sender,\n  \
                 warn_if_reject reject_rbl_client x.test, check_helo_access hash:/nonexistent\n\
                 smtpd_relay_restrictions = permit_mynetworks reject_unauth_destination\n\
                 compatibility_level = 3.6\n",
                dir.path().display()
            ),
        );
        assert_eq!(
            step_args(&cfg, Stage::Mail),
            ["smtpd_sender_restrictions check_sender_access hash:access"]
        );
        assert_eq!(
            cfg.plugins["restrictions"].files["access"],
            PathBuf::from("access")
        );
        assert_eq!(imported.copies.len(), 1);
        let notes = imported.notes.join("\n");
        for left in [
            "`check_policy_service inet:127.0.0.1:10023` is not supported",
            "`reject_unlisted_sender` is not supported",
            "`warn_if_reject reject_rbl_client` left out",
            "`check_helo_access hash:/nonexistent` left out",
        ] {
            assert!(notes.contains(left), "{left}:\n{notes}");
        }
        let rcpt = cfg.chains.get(Stage::Rcpt);
        assert_eq!(
            rcpt[0].args,
            [
                "smtpd_relay_restrictions",
                "permit_mynetworks",
                "reject_unauth_destination"
            ]
        );
    }

    #[test]
    fn the_relay_list_defaults_as_in_postfix() {
        let dir = tempfile::tempdir().expect("tempdir");
        let rcpt = |main_cf: &str| step_args(&import_text(dir.path(), main_cf).1, Stage::Rcpt);
        assert!(rcpt("myhostname = a.test\n").is_empty());
        assert_eq!(
            rcpt("compatibility_level = 2\n"),
            [
                "smtpd_relay_restrictions permit_mynetworks permit_sasl_authenticated defer_unauth_destination"
            ]
        );
    }

    #[test]
    fn postscreen_dnsbl_sites_become_rbl_scores() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (_, cfg) = import_text(
            dir.path(),
            "postscreen_dnsbl_sites = zen.test*3, allow.test=127.0.0.[2..255]*-2\n\
             postscreen_dnsbl_threshold = 3\npostscreen_dnsbl_action = enforce\n",
        );
        let connect = cfg.chains.get(Stage::Connect);
        assert_eq!(connect[0].plugin, "rbl");
        assert!(connect[0].args.is_empty());
        let json: serde_json::Value =
            serde_json::from_str(&cfg.plugins["rbl"].config_json).expect("json");
        assert_eq!(
            json,
            serde_json::json!({"sites": ["zen.test*3", "allow.test=127.0.0.[2..255]*-2"], "threshold": 3})
        );
    }
}
