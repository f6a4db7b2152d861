//! `postern import-postfix`: a Postfix main.cf translated into postern.toml.
//!
//! In: a main.cf (Postfix's syntax: `name = value`, `#` comments, lines that
//! start with white space continue the previous one). Out: the text of a
//! postern.toml, and one note per parameter that was not carried over, with
//! the reason — the operator reads those before switching.
//!
//! Parameters postern has under the same name are copied (with Postfix's
//! value syntax, which postern.toml accepts); tables they name are checked for
//! existence. Anything whose behaviour postern does not have yet is reported,
//! never silently dropped. This module only reads files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The result of an import.
#[derive(Debug, Clone, Default)]
pub struct Imported {
    /// postern.toml text.
    pub toml: String,
    /// `parameter: why` for each parameter not carried over.
    pub notes: Vec<String>,
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
        "smtpd_client_restrictions"
        | "smtpd_helo_restrictions"
        | "smtpd_sender_restrictions"
        | "smtpd_relay_restrictions"
        | "smtpd_recipient_restrictions"
        | "smtpd_data_restrictions" => {
            "restriction lists need the restrictions and rbl plugins of the default bundle, not available yet; until then postern refuses relaying and unknown users itself"
        }
        "header_checks" | "mime_header_checks" | "nested_header_checks" | "body_checks" => {
            "use the header-checks plugin (plugins/header-checks) with this table in its `files`; it is not bundled with the binary yet"
        }
        "content_filter" => "after-queue content filters (amavis) are not implemented yet",
        "mailbox_command" => {
            "postern delivers to Maildir itself; procmail rules become mailfilter plugin rules at the deliver stage (not available yet)"
        }
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
    let mut note = |p: &Param, why: &str| {
        out.notes
            .push(format!("{} = {} (line {}): {why}", p.name, p.value, p.line))
    };
    for p in &params {
        let v = p.value.as_str();
        let line = match p.name.as_str() {
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
    out.toml = toml;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let cfg =
            crate::config::Config::parse(&imported.toml, "imported").expect("valid postern.toml");
        assert_eq!(cfg.myhostname, "fire.deimos.fr");
        assert_eq!(
            cfg.myorigin, "deimos.fr",
            "read from the mailname file next to main.cf"
        );
        assert_eq!(cfg.mydestination, ["deimos.fr", "fire", "localhost"]);
        assert!(cfg.smtpd_helo_required && cfg.disable_vrfy_command);
        assert_eq!(cfg.recipient_delimiter, "+");
        assert!(cfg.in_mynetworks("10.8.0.0".parse().expect("ip")));
        let notes = imported.notes.join("\n");
        for p in [
            "content_filter",
            "smtpd_recipient_restrictions",
            "mailbox_command",
            "masquerade_domains",
            "mime_header_checks",
            "reject_unknown_recipient_domain",
        ] {
            assert!(
                notes.contains(&format!("{p} = ")),
                "{p} not reported:\n{notes}"
            );
        }
    }
}
