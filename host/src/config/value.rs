//! Key-by-key reading of `postern.toml`, so that one pass reports every error.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use toml::{Spanned, Value};

use super::{Config, ConfigError, ConfigErrors, MAIL_NAME, system_hostname};

/// A network in `mynetworks`: `127.0.0.0/8`, `[::1]/128`, `10.8.0.0` (one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    /// Whether `ip` is inside this network. IPv4-mapped IPv6 addresses match IPv4 networks.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.addr {
            IpAddr::V4(a) => write!(f, "{a}/{}", self.prefix),
            IpAddr::V6(a) => write!(f, "[{a}]/{}", self.prefix),
        }
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{s}` is not an address or network"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{s}` has a bad prefix length"))?,
        };
        Ok(Cidr { addr, prefix })
    }
}

/// `smtpd_forbid_bare_newline`: how a line ending in LF without CR is treated.
/// There is deliberately no "no": accepting `<LF>.<LF>` as end of data is the
/// SMTP smuggling hole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BareNewline {
    /// Postfix ≥ 3.9's default: a bare LF ends a line as CRLF would, but only
    /// `<CR><LF>.<CR><LF>` ends DATA.
    Normalize,
    /// Reply 521 and hang up on the first bare LF.
    Reject,
}

/// Where a local user's mail home is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MailHome {
    /// A path with `$user` in it, e.g. `/var/mail/$user`.
    Template(String),
    /// The user's home directory from /etc/passwd (Postfix local(8)'s way).
    Passwd,
}

/// One entry of `local_recipient_maps`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecipientMap {
    /// A table file: the first word of each line is a user name.
    File(PathBuf),
    /// The users of /etc/passwd (`unix:passwd.byname`).
    Passwd,
    /// The names defined in `alias_maps` (`$alias_maps`).
    AliasMaps,
}

/// A host capability a plugin may be granted (the WIT interfaces it imports).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Capability {
    /// `postern:mta/dns`.
    Dns,
    /// `postern:mta/log`.
    Log,
    /// `postern:mta/kv`.
    Kv,
    /// `postern:mta/clock`.
    Clock,
    /// `postern:mta/home`: read files in the recipient's mail home.
    Home,
}

impl Capability {
    /// Every capability.
    pub const ALL: [Capability; 5] = [
        Capability::Dns,
        Capability::Log,
        Capability::Kv,
        Capability::Clock,
        Capability::Home,
    ];

    /// The name used in the configuration and in the WIT interface.
    pub fn name(self) -> &'static str {
        match self {
            Capability::Dns => "dns",
            Capability::Log => "log",
            Capability::Kv => "kv",
            Capability::Clock => "clock",
            Capability::Home => "home",
        }
    }
}

/// What a plugin failure (trap, deadline, memory cap, bad verdict) does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    /// Answer `451 4.3.0` (the default): mail waits rather than slips through.
    Tempfail,
    /// Act as if the plugin had said `continue`.
    Continue,
}

/// A `[plugins.NAME]` table.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginConfig {
    /// The component file (relative paths are below `plugin_directory`).
    pub path: PathBuf,
    /// Capabilities granted (deny by default).
    pub capabilities: Vec<Capability>,
    /// CPU deadline for one hook call.
    pub timeout: Duration,
    /// Linear memory cap for one instance, in bytes.
    pub memory_limit: u64,
    /// Failure policy.
    pub on_error: OnError,
    /// The plugin's own settings (the `config` table), as JSON for `configure`.
    pub config_json: String,
    /// Files whose contents the host passes to `configure` under `files`
    /// (plugins have no file system): name → path, relative to the
    /// configuration file's directory.
    pub files: BTreeMap<String, PathBuf>,
    /// Where the table starts, for messages.
    pub line: usize,
}

/// An SMTP or delivery stage a chain runs at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    /// A client connected.
    Connect,
    /// HELO/EHLO.
    Helo,
    /// MAIL FROM.
    Mail,
    /// RCPT TO.
    Rcpt,
    /// End of DATA.
    Data,
    /// Local delivery, per recipient.
    Deliver,
}

impl Stage {
    /// Every stage, in order.
    pub const ALL: [Stage; 6] = [
        Stage::Connect,
        Stage::Helo,
        Stage::Mail,
        Stage::Rcpt,
        Stage::Data,
        Stage::Deliver,
    ];

    /// The name used in `[chains]`.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Connect => "connect",
            Stage::Helo => "helo",
            Stage::Mail => "mail",
            Stage::Rcpt => "rcpt",
            Stage::Data => "data",
            Stage::Deliver => "deliver",
        }
    }
}

/// One step of a chain: a plugin and the arguments passed with each call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The plugin's name (a `[plugins.NAME]` table).
    pub plugin: String,
    /// Words after the name.
    pub args: Vec<String>,
}

/// The chains, one per stage. Empty chains cost nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Chains {
    steps: [Vec<Step>; 6],
}

impl Chains {
    /// The steps of one stage.
    pub fn get(&self, stage: Stage) -> &[Step] {
        &self.steps[stage as usize]
    }

    /// Sets the steps of one stage.
    pub fn set(&mut self, stage: Stage, steps: Vec<Step>) {
        self.steps[stage as usize] = steps;
    }

    /// Every step of every stage.
    pub fn all(&self) -> impl Iterator<Item = (Stage, &Step)> {
        Stage::ALL
            .into_iter()
            .flat_map(move |st| self.get(st).iter().map(move |s| (st, s)))
    }
}

/// The nested tables, read with spans so errors point at the right line.
#[derive(serde::Deserialize)]
struct Nested {
    #[serde(default)]
    plugins: BTreeMap<String, Spanned<BTreeMap<String, Spanned<Value>>>>,
    #[serde(default)]
    chains: BTreeMap<String, Spanned<Value>>,
}

/// Reads one document. Errors are collected, not returned at the first.
pub(super) fn parse(
    text: &str,
    source: &str,
    data_directory: Option<&std::path::Path>,
) -> Result<Config, ConfigErrors> {
    let lines = LineIndex::new(text);
    let err = |span: std::ops::Range<usize>, key: &str, message: String| ConfigError {
        file: source.to_owned(),
        line: lines.line_of(span.start),
        key: key.to_owned(),
        message,
    };
    let table: BTreeMap<String, Spanned<Value>> = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let message = e
                .message()
                .lines()
                .next()
                .unwrap_or("syntax error")
                .to_owned();
            return Err(ConfigErrors(vec![err(span, "", message)]));
        }
    };

    let mut cfg = Config::defaults(source);
    let mut errors = Vec::new();
    let mut raw = Raw::default();
    for (key, value) in &table {
        if key == "plugins" || key == "chains" {
            continue;
        }
        let span = value.span();
        if let Err(message) = cfg.set(key, value.get_ref(), &mut raw) {
            errors.push(err(span, key, message));
        }
    }
    if let Some(d) = data_directory {
        raw.data_directory = Some(d.display().to_string());
    }
    cfg.finish(raw);
    if table.contains_key("plugins") || table.contains_key("chains") {
        match toml::from_str::<Nested>(text) {
            Ok(nested) => {
                for (name, plugin) in &nested.plugins {
                    let line = lines.line_of(plugin.span().start);
                    match plugin_config(plugin.get_ref(), line) {
                        Ok(p) => {
                            cfg.plugins.insert(name.clone(), p);
                        }
                        Err((span, key, message)) => {
                            let span = span.unwrap_or_else(|| plugin.span());
                            errors.push(err(span, &format!("plugins.{name}.{key}"), message));
                        }
                    }
                }
                for (stage, steps) in &nested.chains {
                    if let Err(message) = cfg.set_chain(stage, steps.get_ref(), &nested.plugins) {
                        errors.push(err(steps.span(), &format!("chains.{stage}"), message));
                    }
                }
            }
            Err(e) => {
                let span = e.span().unwrap_or(0..0);
                let key = if table.contains_key("plugins") {
                    "plugins"
                } else {
                    "chains"
                };
                errors.push(err(
                    span,
                    key,
                    e.message().lines().next().unwrap_or("bad table").to_owned(),
                ));
            }
        }
    }
    if let Err((key, message)) = cfg.check() {
        let span = table.get(key).map_or(0..0, Spanned::span);
        errors.push(err(span, key, message));
    }
    if errors.is_empty() {
        Ok(cfg)
    } else {
        errors.sort_by_key(|e| e.line);
        Err(ConfigErrors(errors))
    }
}

/// Values that expand `$name` references: kept raw until every key is read.
#[derive(Default)]
struct Raw {
    myhostname: Option<String>,
    mydomain: Option<String>,
    plugin_directory: Option<String>,
    plugin_cache_directory: Option<String>,
    myorigin: Option<String>,
    mydestination: Option<Vec<String>>,
    relay_domains: Option<Vec<String>>,
    smtpd_banner: Option<String>,
    mail_home: Option<String>,
    data_directory: Option<String>,
}

impl Config {
    fn defaults(source: &str) -> Config {
        Config {
            source: source.to_owned(),
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 2525))],
            data_directory: PathBuf::from("./postern-data"),
            myhostname: String::new(),
            mydomain: String::new(),
            myorigin: String::new(),
            mydestination: Vec::new(),
            relay_domains: Vec::new(),
            mynetworks: vec![
                Cidr {
                    addr: IpAddr::from([127, 0, 0, 0]),
                    prefix: 8,
                },
                Cidr {
                    addr: IpAddr::from([0u16, 0, 0, 0, 0, 0, 0, 1]),
                    prefix: 128,
                },
            ],
            smtpd_banner: String::new(),
            smtpd_helo_required: false,
            disable_vrfy_command: false,
            message_size_limit: 10_240_000,
            smtpd_recipient_limit: 1000,
            recipient_delimiter: String::new(),
            alias_maps: Vec::new(),
            local_recipient_maps: Vec::new(),
            home_mailbox: "Maildir/".to_owned(),
            mail_home: MailHome::Template(String::new()),
            smtpd_timeout: Duration::from_secs(300),
            smtpd_hard_error_limit: 20,
            smtpd_forbid_bare_newline: BareNewline::Normalize,
            default_process_limit: 100,
            default_destination_concurrency_limit: 20,
            minimal_backoff_time: Duration::from_secs(300),
            maximal_backoff_time: Duration::from_secs(4000),
            queue_run_delay: Duration::from_secs(300),
            maximal_queue_lifetime: Duration::from_secs(5 * 86400),
            smtpd_delay_reject: true,
            plugin_directory: PathBuf::new(),
            plugin_cache_directory: PathBuf::new(),
            dns_nameservers: Vec::new(),
            plugins: BTreeMap::new(),
            chains: Chains::default(),
        }
    }

    fn set_chain(
        &mut self,
        stage: &str,
        v: &Value,
        declared: &BTreeMap<String, impl Sized>,
    ) -> Result<(), String> {
        let stage = Stage::ALL
            .into_iter()
            .find(|s| s.name() == stage)
            .ok_or_else(|| {
                format!(
                    "unknown stage (use one of {})",
                    Stage::ALL.map(Stage::name).join(", ")
                )
            })?;
        let Value::Array(items) = v else {
            return Err("expected a list of steps such as [\"rbl zen.example\"]".into());
        };
        let mut steps = Vec::new();
        for item in items {
            let text = string(item)?;
            let mut words = text.split_whitespace().map(str::to_owned);
            let plugin = words.next().ok_or("an empty step")?;
            if !declared.contains_key(&plugin) {
                return Err(format!(
                    "step `{text}` names plugin `{plugin}`, which has no [plugins.{plugin}] table"
                ));
            }
            steps.push(Step {
                plugin,
                args: words.collect(),
            });
        }
        self.chains.set(stage, steps);
        Ok(())
    }

    /// Applies one key. The error text is about the value; the caller adds where.
    fn set(&mut self, key: &str, v: &Value, raw: &mut Raw) -> Result<(), String> {
        match key {
            "listen" => {
                self.listen = list(v)?
                    .iter()
                    .map(|s| {
                        s.parse::<SocketAddr>()
                            .map_err(|_| format!("`{s}` is not an address:port"))
                    })
                    .collect::<Result<_, _>>()?;
                if self.listen.is_empty() {
                    return Err("needs at least one address".into());
                }
            }
            "data_directory" => raw.data_directory = Some(string(v)?),
            "myhostname" => raw.myhostname = Some(hostname(&string(v)?)?),
            "mydomain" => raw.mydomain = Some(hostname(&string(v)?)?),
            "myorigin" => raw.myorigin = Some(string(v)?),
            "mydestination" => raw.mydestination = Some(list(v)?),
            "relay_domains" => raw.relay_domains = Some(list(v)?),
            "mynetworks" => {
                self.mynetworks = list(v)?
                    .iter()
                    .map(|s| s.parse())
                    .collect::<Result<_, _>>()?;
            }
            "smtpd_banner" => raw.smtpd_banner = Some(string(v)?),
            "smtpd_helo_required" => self.smtpd_helo_required = boolean(v)?,
            "disable_vrfy_command" => self.disable_vrfy_command = boolean(v)?,
            "message_size_limit" => self.message_size_limit = number(v)?,
            "smtpd_recipient_limit" => self.smtpd_recipient_limit = positive(v)?,
            "recipient_delimiter" => self.recipient_delimiter = string(v)?,
            "alias_maps" => {
                self.alias_maps = list(v)?.iter().map(|s| table_path(s)).collect();
            }
            "local_recipient_maps" => {
                self.local_recipient_maps = list(v)?
                    .iter()
                    .map(|s| match s.as_str() {
                        "$alias_maps" | "${alias_maps}" => RecipientMap::AliasMaps,
                        "unix:passwd.byname" | "proxy:unix:passwd.byname" => RecipientMap::Passwd,
                        other => RecipientMap::File(table_path(other)),
                    })
                    .collect();
            }
            "home_mailbox" => {
                let s = string(v)?;
                if !s.ends_with('/') || s.starts_with('/') || s.contains("..") {
                    return Err(format!(
                        "`{s}` is not a Maildir below the mail home (it must be relative and end in `/`; mbox is not supported)"
                    ));
                }
                self.home_mailbox = s;
            }
            "mail_home" => raw.mail_home = Some(string(v)?),
            "smtpd_timeout" => self.smtpd_timeout = duration(v)?,
            "smtpd_hard_error_limit" => self.smtpd_hard_error_limit = positive(v)?,
            "smtpd_forbid_bare_newline" => {
                self.smtpd_forbid_bare_newline = match string(v)?.as_str() {
                    "normalize" | "yes" => BareNewline::Normalize,
                    "reject" => BareNewline::Reject,
                    other => {
                        return Err(format!(
                            "`{other}` is not one of normalize, reject (\"no\" is not offered: it allows SMTP smuggling)"
                        ));
                    }
                }
            }
            "default_process_limit" => self.default_process_limit = positive(v)?,
            "default_destination_concurrency_limit" => {
                self.default_destination_concurrency_limit = positive(v)?;
            }
            "minimal_backoff_time" => self.minimal_backoff_time = duration(v)?,
            "maximal_backoff_time" => self.maximal_backoff_time = duration(v)?,
            "queue_run_delay" => self.queue_run_delay = duration(v)?,
            "maximal_queue_lifetime" => self.maximal_queue_lifetime = duration(v)?,
            "smtpd_delay_reject" => self.smtpd_delay_reject = boolean(v)?,
            "plugin_directory" => raw.plugin_directory = Some(string(v)?),
            "plugin_cache_directory" => raw.plugin_cache_directory = Some(string(v)?),
            "dns_nameservers" => {
                self.dns_nameservers = list(v)?
                    .iter()
                    .map(|s| {
                        s.parse::<SocketAddr>()
                            .or_else(|_| s.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 53)))
                            .map_err(|_| format!("`{s}` is not an address or address:port"))
                    })
                    .collect::<Result<_, _>>()?;
            }
            _ => return Err("unknown key".into()),
        }
        Ok(())
    }

    /// Resolves the values that name other values, in Postfix's order.
    fn finish(&mut self, raw: Raw) {
        if let Some(d) = raw.data_directory {
            self.data_directory = PathBuf::from(d);
        }
        self.myhostname = raw.myhostname.unwrap_or_else(system_hostname);
        self.mydomain = raw.mydomain.unwrap_or_else(|| {
            self.myhostname
                .split_once('.')
                .map_or_else(|| "localdomain".to_owned(), |(_, d)| d.to_owned())
        });
        let myorigin = raw.myorigin.unwrap_or_else(|| "$myhostname".into());
        self.myorigin = self.expand(&myorigin);
        let dest = raw.mydestination.unwrap_or_else(|| {
            vec![
                "$myhostname".into(),
                "localhost.$mydomain".into(),
                "localhost".into(),
            ]
        });
        self.mydestination = dest
            .iter()
            .map(|d| self.expand(d).to_ascii_lowercase())
            .collect();
        // Postfix ≥ 3.0 (compatibility_level 2): empty unless set.
        let mut relay = Vec::new();
        for d in raw.relay_domains.unwrap_or_default() {
            if d == "$mydestination" || d == "${mydestination}" {
                relay.extend(self.mydestination.iter().cloned());
            } else {
                relay.push(self.expand(&d).to_ascii_lowercase());
            }
        }
        self.relay_domains = relay;
        let banner = raw
            .smtpd_banner
            .unwrap_or_else(|| "$myhostname ESMTP $mail_name".into());
        self.smtpd_banner = self.expand(&banner);
        let plugin_dir = raw
            .plugin_directory
            .unwrap_or_else(|| "$data_directory/plugins".into());
        self.plugin_directory = PathBuf::from(self.expand(&plugin_dir));
        let cache_dir = raw
            .plugin_cache_directory
            .unwrap_or_else(|| "$data_directory/plugin-cache".into());
        self.plugin_cache_directory = PathBuf::from(self.expand(&cache_dir));
        let home = raw
            .mail_home
            .unwrap_or_else(|| "$data_directory/mail/$user".into());
        self.mail_home = if home == "passwd" {
            MailHome::Passwd
        } else {
            MailHome::Template(self.expand(&home))
        };
    }

    /// Cross-key checks, after expansion.
    fn check(&self) -> Result<(), (&'static str, String)> {
        if let MailHome::Template(t) = &self.mail_home
            && !t.contains("$user")
        {
            return Err(("mail_home", "must contain `$user` (or be `passwd`)".into()));
        }
        if self.minimal_backoff_time > self.maximal_backoff_time {
            return Err((
                "minimal_backoff_time",
                "is larger than maximal_backoff_time".into(),
            ));
        }
        Ok(())
    }

    /// Expands `$name` and `${name}` for the parameters that may be named.
    pub(super) fn expand(&self, s: &str) -> String {
        let data_dir = self.data_directory.display().to_string();
        let lookup = |name: &str| -> Option<&str> {
            match name {
                "myhostname" => Some(&self.myhostname),
                "mydomain" => Some(&self.mydomain),
                "myorigin" => Some(&self.myorigin),
                "mail_name" => Some(MAIL_NAME),
                "data_directory" => Some(&data_dir),
                _ => None,
            }
        };
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(pos) = rest.find('$') {
            out.push_str(&rest[..pos]);
            let after = &rest[pos + 1..];
            let (name, len) = if let Some(inner) = after.strip_prefix('{') {
                match inner.find('}') {
                    Some(end) => (&inner[..end], end + 2),
                    None => ("", 0),
                }
            } else {
                let end = after
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(after.len());
                (&after[..end], end)
            };
            match lookup(name) {
                Some(v) if len > 0 => {
                    out.push_str(v);
                    rest = &after[len..];
                }
                _ => {
                    out.push('$');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }
}

fn string(v: &Value) -> Result<String, String> {
    match v {
        Value::String(s) => Ok(s.trim().to_owned()),
        other => Err(format!("expected a string, found {}", other.type_str())),
    }
}

/// A TOML array of strings, or main.cf's "a, b c" in one string.
fn list(v: &Value) -> Result<Vec<String>, String> {
    match v {
        Value::Array(items) => items.iter().map(string).collect(),
        Value::String(s) => Ok(s
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()),
        other => Err(format!(
            "expected a list of strings, found {}",
            other.type_str()
        )),
    }
}

fn boolean(v: &Value) -> Result<bool, String> {
    match v {
        Value::Boolean(b) => Ok(*b),
        Value::String(s) => match s.trim().to_ascii_lowercase().as_str() {
            "yes" | "true" => Ok(true),
            "no" | "false" => Ok(false),
            _ => Err(format!("`{s}` is not yes or no")),
        },
        other => Err(format!("expected yes or no, found {}", other.type_str())),
    }
}

fn number<T: TryFrom<i64>>(v: &Value) -> Result<T, String> {
    let n = match v {
        Value::Integer(n) => *n,
        Value::String(s) => s
            .trim()
            .parse::<i64>()
            .map_err(|_| format!("`{s}` is not a number"))?,
        other => return Err(format!("expected a number, found {}", other.type_str())),
    };
    T::try_from(n).map_err(|_| format!("{n} is out of range"))
}

fn positive<T: TryFrom<i64> + Default + PartialEq>(v: &Value) -> Result<T, String> {
    let n: T = number(v)?;
    if n == T::default() {
        return Err("must be greater than zero".into());
    }
    Ok(n)
}

/// Postfix time values: `300`, `300s`, `5m`, `1h`, `2d`, `1w`.
fn duration(v: &Value) -> Result<Duration, String> {
    let text = match v {
        Value::Integer(n) => n.to_string(),
        Value::String(s) => s.trim().to_owned(),
        other => {
            return Err(format!(
                "expected a time such as \"300s\", found {}",
                other.type_str()
            ));
        }
    };
    let (digits, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a time such as \"300s\" or \"5m\""))?;
    if unit == "ms" {
        return Ok(Duration::from_millis(n));
    }
    let scale = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86400,
        "w" => 7 * 86400,
        _ => {
            return Err(format!(
                "`{text}` has an unknown time unit (use s, m, h, d or w)"
            ));
        }
    };
    Ok(Duration::from_secs(n.saturating_mul(scale)))
}

fn hostname(s: &str) -> Result<String, String> {
    let ok = !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if ok {
        Ok(s.to_ascii_lowercase())
    } else {
        Err(format!("`{s}` is not a host name"))
    }
}

/// `hash:/etc/aliases` names the source file `/etc/aliases`: postern reads text
/// tables. `pcre:` is not stripped: no plugin reads PCRE tables yet, and
/// reading one as a POSIX table would decide differently.
fn table_path(s: &str) -> PathBuf {
    let path = [
        "hash:",
        "btree:",
        "texthash:",
        "lmdb:",
        "cdb:",
        "regexp:",
        "pcre:",
    ]
    .iter()
    .find_map(|p| s.strip_prefix(p))
    .unwrap_or(s);
    PathBuf::from(path)
}

/// Byte offset → 1-based line number.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        LineIndex { starts }
    }

    fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|&s| s <= offset)
    }
}

/// Reads one `[plugins.NAME]` table; an error carries the key and its span.
fn plugin_config(
    t: &BTreeMap<String, Spanned<Value>>,
    line: usize,
) -> Result<PluginConfig, (Option<std::ops::Range<usize>>, String, String)> {
    let mut p = PluginConfig {
        path: PathBuf::new(),
        capabilities: Vec::new(),
        timeout: Duration::from_millis(100),
        memory_limit: 64 << 20,
        on_error: OnError::Tempfail,
        config_json: "{}".to_owned(),
        files: BTreeMap::new(),
        line,
    };
    let mut has_path = false;
    for (key, value) in t {
        if key == "config"
            && let Value::Table(c) = value.get_ref()
            && c.contains_key("files")
        {
            return Err((
                Some(value.span()),
                key.clone(),
                "`files` is set by the host from the plugin's own `files` table".into(),
            ));
        }
        let fail = |m: String| (Some(value.span()), key.clone(), m);
        let v = value.get_ref();
        match key.as_str() {
            "path" => {
                p.path = PathBuf::from(string(v).map_err(fail)?);
                has_path = true;
            }
            "capabilities" => {
                p.capabilities = list(v)
                    .map_err(fail)?
                    .iter()
                    .map(|c| {
                        Capability::ALL
                            .into_iter()
                            .find(|k| k.name() == c)
                            .ok_or_else(|| {
                                format!("unknown capability `{c}` (use dns, log, kv, clock, home)")
                            })
                    })
                    .collect::<Result<_, _>>()
                    .map_err(fail)?;
            }
            "timeout" => {
                p.timeout = duration(v).map_err(fail)?;
                if p.timeout.is_zero() {
                    return Err(fail("must be greater than zero".into()));
                }
            }
            "memory_limit" => p.memory_limit = bytes(v).map_err(fail)?,
            "on_error" => {
                p.on_error = match string(v).map_err(fail)?.as_str() {
                    "tempfail" => OnError::Tempfail,
                    "continue" => OnError::Continue,
                    other => return Err(fail(format!("`{other}` is not tempfail or continue"))),
                }
            }
            "files" => {
                let Value::Table(t) = v else {
                    return Err(fail("expected a table of name = \"path\"".into()));
                };
                for (name, path) in t {
                    let path = string(path).map_err(|m| fail(format!("{name}: {m}")))?;
                    p.files.insert(name.clone(), table_path(&path));
                }
            }
            "config" => {
                if !matches!(v, Value::Table(_)) {
                    return Err(fail("expected a table".into()));
                }
                p.config_json = serde_json::to_string(v).map_err(|e| fail(e.to_string()))?;
            }
            _ => return Err(fail("unknown key".into())),
        }
    }
    if !has_path {
        return Err((
            None,
            "path".into(),
            "missing (the plugin's .wasm file)".into(),
        ));
    }
    Ok(p)
}

/// Sizes: `67108864`, `"64M"`, `"64MiB"`, `"512k"`.
fn bytes(v: &Value) -> Result<u64, String> {
    let text = match v {
        Value::Integer(n) => return u64::try_from(*n).map_err(|_| format!("{n} is out of range")),
        Value::String(s) => s.trim().to_owned(),
        other => {
            return Err(format!(
                "expected a size such as \"64M\", found {}",
                other.type_str()
            ));
        }
    };
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a size such as \"64M\""))?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("`{text}` has an unknown unit (use k, M or G)")),
    };
    n.checked_mul(scale)
        .ok_or_else(|| format!("`{text}` is too large"))
}
