//! `postern.toml`: the one configuration file, keyed by Postfix's main.cf names.
//!
//! In: TOML text (a file, or the embedded default). Out: a validated [`Config`],
//! or every error found, each naming the file, the line and the key, the way
//! `postfix check` points at main.cf. Unknown keys are errors, not warnings: a
//! typo in a restriction must never silently open a relay.
//!
//! Values are accepted in TOML's own types and in main.cf's spelling where they
//! differ (`"yes"`/`"no"`, `"300s"`/`"5m"`, `"a, b c"` lists), so a main.cf
//! translates line for line. `$myhostname`, `$mydomain`, `$myorigin`,
//! `$data_directory` and `$mail_name` expand in the values that name them.
//!
//! This module reads files; it never touches the network or the spool.

mod value;

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use value::{
    BareNewline, Capability, Chains, Cidr, MailHome, OnError, PluginConfig, RecipientMap, Stage,
    Step,
};

/// The configuration used when `postern run` gets no `--config`.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.toml");

/// What the name `mail_name` expands to (Postfix's `$mail_name`).
pub const MAIL_NAME: &str = "postern";

/// One problem in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file (or `<embedded default>`).
    pub file: String,
    /// 1-based line; 0 when the problem has no single line (a missing file).
    pub line: usize,
    /// The key concerned; empty for syntax errors.
    pub key: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.key.is_empty()) {
            (0, _) => write!(f, "{}: {}", self.file, self.message),
            (line, true) => write!(f, "{}:{}: {}", self.file, line, self.message),
            (line, false) => write!(f, "{}:{}: {}: {}", self.file, line, self.key, self.message),
        }
    }
}

/// Every error found in one configuration file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigError>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// The validated configuration. Field names are the configuration keys.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where this configuration came from, for messages.
    pub source: String,
    /// Addresses the SMTP server listens on.
    pub listen: Vec<SocketAddr>,
    /// Spool, mail homes and control socket live below this directory.
    pub data_directory: PathBuf,
    /// This host's fully-qualified name (greeting, `Received:`, Maildir names).
    pub myhostname: String,
    /// The domain part of `myhostname` unless set.
    pub mydomain: String,
    /// The domain appended to addresses without one.
    pub myorigin: String,
    /// Domains delivered locally (lower case).
    pub mydestination: Vec<String>,
    /// Domains this server relays to (besides `mydestination`), for
    /// `reject_unauth_destination`; empty by default as in Postfix ≥ 3.0.
    pub relay_domains: Vec<String>,
    /// Trusted client networks.
    pub mynetworks: Vec<Cidr>,
    /// Text after `220 ` in the greeting.
    pub smtpd_banner: String,
    /// Require HELO/EHLO before MAIL.
    pub smtpd_helo_required: bool,
    /// Refuse VRFY.
    pub disable_vrfy_command: bool,
    /// Largest message accepted, in bytes (0 = no limit).
    pub message_size_limit: u64,
    /// Most recipients per message.
    pub smtpd_recipient_limit: usize,
    /// Characters that separate a user name from its extension (`user+ext`).
    pub recipient_delimiter: String,
    /// aliases(5) files.
    pub alias_maps: Vec<PathBuf>,
    /// Tables that list the local users; empty means any user is accepted.
    pub local_recipient_maps: Vec<RecipientMap>,
    /// Maildir below each mail home (must end in `/`).
    pub home_mailbox: String,
    /// Where a local user's mail home is.
    pub mail_home: MailHome,
    /// How long the server waits for a client.
    pub smtpd_timeout: Duration,
    /// Errors after which the server says 421 and hangs up.
    pub smtpd_hard_error_limit: u32,
    /// What to do with a line that ends in a bare LF.
    pub smtpd_forbid_bare_newline: BareNewline,
    /// Most SMTP sessions served at once; further clients wait in the backlog.
    pub default_process_limit: usize,
    /// Most local deliveries in progress at once.
    pub default_destination_concurrency_limit: usize,
    /// First retry delay for a deferred message.
    pub minimal_backoff_time: Duration,
    /// Largest retry delay for a deferred message.
    pub maximal_backoff_time: Duration,
    /// How often the deferred queue is scanned for messages added behind our back.
    pub queue_run_delay: Duration,
    /// How long a message may stay in the queue before it is returned.
    pub maximal_queue_lifetime: Duration,
    /// Postfix's `smtpd_delay_reject`: run the connect, helo and mail chains at
    /// the first RCPT, so a refusal is reported there (and the client is known).
    pub smtpd_delay_reject: bool,
    /// Where plugin components are (watched for hot reload).
    pub plugin_directory: PathBuf,
    /// Where compiled plugins are cached (by content hash and engine).
    pub plugin_cache_directory: PathBuf,
    /// Name servers for the `dns` capability (`ip:port`); empty = /etc/resolv.conf.
    pub dns_nameservers: Vec<SocketAddr>,
    /// The plugins, by name (`[plugins.NAME]` tables).
    pub plugins: std::collections::BTreeMap<String, PluginConfig>,
    /// The chain of plugin steps run at each stage (`[chains]`).
    pub chains: Chains,
}

impl Config {
    /// The embedded default, with the machine's host name.
    pub fn embedded() -> Result<Self, ConfigErrors> {
        Self::parse(EMBEDDED_DEFAULT, "<embedded default>")
    }

    /// Reads `path`, or the embedded default when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigErrors> {
        Self::load_with(path, None)
    }

    /// Like [`Config::load`], with `data_directory` overridden (`--data-dir`)
    /// before the values derived from it (`mail_home`, `plugin_directory`...)
    /// are expanded.
    pub fn load_with(
        path: Option<&Path>,
        data_directory: Option<&Path>,
    ) -> Result<Self, ConfigErrors> {
        let Some(path) = path else {
            return value::parse(EMBEDDED_DEFAULT, "<embedded default>", data_directory);
        };
        let name = path.display().to_string();
        match std::fs::read_to_string(path) {
            Ok(text) => value::parse(&text, &name, data_directory),
            Err(e) => Err(ConfigErrors(vec![ConfigError {
                file: name,
                line: 0,
                key: String::new(),
                message: format!("cannot read: {e}"),
            }])),
        }
    }

    /// Parses configuration text; `source` names it in error messages.
    pub fn parse(text: &str, source: &str) -> Result<Self, ConfigErrors> {
        value::parse(text, source, None)
    }

    /// Whether `domain` is one of `mydestination` (case-insensitive).
    pub fn is_local_domain(&self, domain: &str) -> bool {
        let domain = domain.trim_end_matches('.');
        self.mydestination
            .iter()
            .any(|d| d.eq_ignore_ascii_case(domain))
    }

    /// Whether `ip` is inside `mynetworks`.
    pub fn in_mynetworks(&self, ip: std::net::IpAddr) -> bool {
        self.mynetworks.iter().any(|n| n.contains(ip))
    }

    /// A plugin's settings (`config` JSON) with main parameters expanded in
    /// its strings: a string that is exactly `$mydestination`,
    /// `$relay_domains` or `$mynetworks` becomes that list; `$myhostname`,
    /// `$mydomain`, `$myorigin`, `$recipient_delimiter`, `$mail_name` and
    /// `$data_directory` expand anywhere in a string. So a plugin's table can
    /// say `relay_domains = "$relay_domains"`, as main.cf would.
    pub fn expand_plugin_config(&self, json: &str) -> Result<String, String> {
        let mut value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| format!("config: {e}"))?;
        self.expand_json(&mut value);
        Ok(value.to_string())
    }

    fn expand_json(&self, value: &mut serde_json::Value) {
        use serde_json::Value;
        match value {
            Value::String(s) => {
                let name = s
                    .strip_prefix("${")
                    .and_then(|n| n.strip_suffix('}'))
                    .or_else(|| s.strip_prefix('$'));
                let list = match name {
                    Some("mydestination") => Some(self.mydestination.clone()),
                    Some("relay_domains") => Some(self.relay_domains.clone()),
                    Some("mynetworks") => {
                        Some(self.mynetworks.iter().map(ToString::to_string).collect())
                    }
                    _ => None,
                };
                *value = match list {
                    Some(items) => Value::Array(items.into_iter().map(Value::String).collect()),
                    None if s.contains('$') => {
                        let delim = self.recipient_delimiter.clone();
                        let s = s
                            .replace("${recipient_delimiter}", &delim)
                            .replace("$recipient_delimiter", &delim);
                        Value::String(self.expand(&s))
                    }
                    None => return,
                };
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.expand_json(v)),
            Value::Object(map) => map.values_mut().for_each(|v| self.expand_json(v)),
            _ => {}
        }
    }

    /// The spool directory.
    pub fn queue_directory(&self) -> PathBuf {
        self.data_directory.join("queue")
    }

    /// The directory relative paths in the file are relative to (the file's
    /// own directory; the working directory for the embedded default).
    pub fn base_directory(&self) -> PathBuf {
        let p = Path::new(&self.source);
        match p.parent() {
            Some(d) if p.exists() && !d.as_os_str().is_empty() => d.to_owned(),
            _ => PathBuf::from("."),
        }
    }

    /// The control socket (`postern reload`, `postern plugin list`).
    pub fn control_socket(&self) -> PathBuf {
        self.data_directory.join("postern.sock")
    }
}

/// The machine's host name, or `localhost` when it cannot be read.
pub fn system_hostname() -> String {
    ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .map(|s| s.trim().to_ascii_lowercase())
        .find(|s| !s.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

#[cfg(test)]
mod tests;
