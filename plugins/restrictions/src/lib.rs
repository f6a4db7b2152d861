//! The default bundle's SMTP access policy: Postfix's
//! `smtpd_*_restrictions` and access(5) tables, with Postfix's semantics,
//! reply codes and texts (from Postfix 3.x `smtpd_check.c`).
//!
//! It needs the `dns` and `log` capabilities.
//!
//! # The chain step
//!
//! `"restrictions permit_mynetworks reject_unauth_destination"`: the words
//! are one Postfix restriction list, evaluated in order at the hook the
//! chain calls; the first decisive word wins:
//!
//! - a reject or defer answers with Postfix's reply;
//! - a permit (`permit`, `permit_mynetworks`, `permit_sasl_authenticated`,
//!   `permit_auth_destination`, an access-table `OK`) accepts, which ends the
//!   stage's chain as Postfix's OK ends the list;
//! - the end of the words continues with the next step.
//!
//! The first word may name the list: `smtpd_client_restrictions`,
//! `smtpd_helo_restrictions`, `smtpd_sender_restrictions`,
//! `smtpd_recipient_restrictions`, `smtpd_relay_restrictions`,
//! `smtpd_data_restrictions` or `smtpd_end_of_data_restrictions`. The name
//! chooses the reply texts' subject (without it: the hook's) and goes into
//! log lines. `smtpd_relay_restrictions` also changes what a permit does:
//! the relay list has passed, and the step continues, so that the recipient
//! list in the next step still runs, as in Postfix:
//!
//! ```toml
//! [chains]
//! rcpt = [
//!   "restrictions smtpd_relay_restrictions permit_mynetworks permit_sasl_authenticated defer_unauth_destination",
//!   "restrictions smtpd_recipient_restrictions check_recipient_access hash:/etc/postfix/access",
//! ]
//! ```
//!
//! # Vocabulary
//!
//! | word | does | reply |
//! |------|------|-------|
//! | `permit` / `reject` / `defer` | always | `554 5.7.1 <X>: C rejected: Access denied` / `450 4.3.2 <X>: C rejected: Try again later` |
//! | `warn_if_reject` | the next word's reject is logged as `reject_warning: ...` instead | |
//! | `defer_if_permit` / `defer_if_reject` | a later permit / reject becomes a deferral | `450 4.7.0 <X>: C rejected: defer_if_permit requested` |
//! | `permit_mynetworks` | the client is in `mynetworks` | |
//! | `permit_sasl_authenticated` | the client authenticated | |
//! | `reject_unauth_pipelining` | the client talked out of turn | `503 5.5.0 <X>: C rejected: Improper use of SMTP command pipelining` |
//! | `reject_plaintext_session` | no TLS | `450 4.7.1 Session encryption is required` |
//! | `reject_unknown_client_hostname` (`reject_unknown_client`) | no PTR name that resolves back to the address | `450 4.7.25 Client host rejected: cannot find your hostname, [IP]` |
//! | `reject_unknown_reverse_client_hostname` | no PTR name | `450 4.7.1 Client host rejected: cannot find your reverse hostname, [IP]` |
//! | `reject_invalid_helo_hostname` (`reject_invalid_hostname`) | bad HELO syntax | `501 5.5.2 <H>: Helo command rejected: Invalid name` (`invalid ip address` for a bad literal) |
//! | `reject_non_fqdn_helo_hostname` (`reject_non_fqdn_hostname`) | HELO not a dotted host name | `504 5.5.2 <H>: Helo command rejected: need fully-qualified hostname` |
//! | `reject_unknown_helo_hostname` (`reject_unknown_hostname`) | HELO has no A, AAAA or MX | `450 4.7.1 <H>: Helo command rejected: Host not found` |
//! | `reject_non_fqdn_sender` / `_recipient` | the domain is not a dotted host name | `504 5.5.2 <A>: Sender address rejected: need fully-qualified address` |
//! | `reject_unknown_sender_domain` / `_recipient_domain` | the domain has no MX, A or AAAA | `450 4.1.8 <A>: Sender address rejected: Domain not found` (`4.1.2`, `Recipient`); null MX: `550 5.7.27` / `556 5.1.10 <A>: ... rejected: Domain D does not accept mail (nullMX)` |
//! | `reject_unauth_destination` / `defer_unauth_destination` | the recipient domain is neither in `mydestination` nor in `relay_domains` | `554 5.7.1 <R>: Relay access denied` / `450 4.7.1` |
//! | `permit_auth_destination` | the recipient domain is ours or relayed | |
//! | `reject_multi_recipient_bounce` | the null sender with more than one recipient | `550 5.5.3 <X>: C rejected: Multi-recipient bounce` |
//! | `check_client_access`, `check_helo_access`, `check_sender_access`, `check_recipient_access` `TYPE:NAME` | an access(5) table | see below |
//!
//! `<X>: C` is the subject of the list being evaluated: `<name[ip]>: Client
//! host`, `<helo>: Helo command`, `<sender>: Sender address`,
//! `<recipient>: Recipient address`, `<DATA>: Data command`,
//! `<END-OF-MESSAGE>: End-of-data`. A bare `TYPE:NAME` word is the list's
//! own `check_*_access` (not in the data lists), as in Postfix.
//!
//! A word whose data the hook does not have is skipped, as Postfix skips
//! it: no HELO yet, no MAIL yet (`on_connect`, `on_helo`), the null sender
//! for `reject_non_fqdn_sender` and `reject_unknown_sender_domain`, no
//! recipient outside `on_rcpt` (at `on_data`: the recipient if there is
//! exactly one). At `on_rcpt` the sender is the envelope's. `RCPT
//! TO:<postmaster>` skips the lists (RFC 5321 §4.5.1).
//!
//! A DNS failure in `reject_unknown_*` (except the client ones, which defer
//! at once) does not defer at once: as Postfix's `defer_if_permit` it turns
//! the final permit of the recipient (or data) lists into a deferral with
//! that reply, and a reject still rejects.
//!
//! An unknown word, a missing or unreadable table, or a table naming
//! another table is a configuration error: it is logged and answered with
//! Postfix's `451 4.3.5 Server configuration error`. DNSBL words belong in
//! an `rbl` step; here they are configuration errors too.
//!
//! # access(5) tables
//!
//! `check_*_access TYPE:NAME` looks up `files[NAME]`, then `files["TYPE:NAME"]`
//! (the host reads the files named in the plugin's `files` table). Types:
//! `hash`, `btree`, `lmdb`, `cdb`, `dbm`, `sdbm`, `texthash` (the postmap
//! source text) and `regexp`, `pcre` ([`access`]). Lookup order, as
//! access(5): a client is looked up by name, parent domains, address, then
//! networks (`1.2.3.4`, `1.2.3`, `1.2`, `1`; IPv6 `2001:db8::1`,
//! `2001:db8:`, `2001:db8`, `2001`); a HELO name and parent domains; an
//! address as `user+ext@domain`, `user@domain`, `domain`, parent domains,
//! `user+ext@`, `user@` (a domainless address gets `@$myorigin`; the null
//! sender is `<>`). Parent domains are plain keys (`example.com` also
//! matches `a.example.com`: `parent_domain_matches_subdomains` includes
//! `smtpd_access_maps` by default). A regexp table only sees the first,
//! whole key.
//!
//! | value | effect |
//! |-------|--------|
//! | `OK`, `RELAY`, all digits | permit |
//! | `REJECT [text]` | `554 5.7.1 <X>: C rejected: text` (`Access denied`); an optional DSN starts the text |
//! | `DEFER [text]` | the same with `450 4.7.1` |
//! | `4NN text`, `5NN text` | `NNN N.7.1 <X>: C rejected: text` (optional DSN) |
//! | `DEFER_IF_PERMIT`, `DEFER_IF_REJECT [text]` | as the words, `450 4.7.1 <X>: C rejected: text` (`Service unavailable`) |
//! | `DUNNO` | stop this table; next word |
//! | `DISCARD [text]` | discard verdict (ends the list) |
//! | `HOLD [text]` | hold verdict at the end of the list (see below) |
//! | `PREPEND Name: value` | prepend a header; next word |
//! | `WARN text`, `INFO text` | logged; next word |
//! | `FILTER`, `REDIRECT`, `BCC` | not supported here: logged; next word |
//! | restriction words | evaluated in place (at most 100 deep) |
//!
//! `X` and `C` are the subject of the table (`check_helo_access`: the HELO),
//! not of the list. Address DSNs (`X.1.Y`) are adjusted to what is rejected
//! (`smtpd_dsn_fix`).
//!
//! # Configuration
//!
//! The plugin's table names the server's parameters it needs; postern.toml
//! expands `$mydestination` and `$relay_domains` in a plugin's settings into
//! the server's lists, so the usual table is:
//!
//! ```toml
//! [plugins.restrictions]
//! path = "builtin:restrictions"
//! capabilities = ["dns", "log"]
//! config = { mydestination = "$mydestination", relay_domains = "$relay_domains", recipient_delimiter = "$recipient_delimiter" }
//! files = { access = "/etc/postfix/access" }   # for `check_*_access hash:access`
//! ```
//!
//! Without `mydestination` the plugin refuses to load (every recipient would
//! look like a relay attempt). The same keys may also come inside a `main`
//! table, which the plugin's own keys override:
//!
//! - `mydestination`, `relay_domains` (lists of domains; `relay_domains`
//!   entries also match subdomains, `.domain` matches subdomains only),
//!   `myorigin` (else `myhostname`), `recipient_delimiter` (`+`);
//! - the reply codes, with Postfix's defaults: `reject_code` (554),
//!   `defer_code` (450), `relay_domains_reject_code` (554),
//!   `access_map_reject_code` (554), `access_map_defer_code` (450),
//!   `unknown_address_reject_code` (450), `unknown_hostname_reject_code`
//!   (450), `unknown_client_reject_code` (450),
//!   `invalid_hostname_reject_code` (501), `non_fqdn_reject_code` (504),
//!   `multi_recipient_bounce_reject_code` (550), `plaintext_reject_code`
//!   (450); and `smtpd_null_access_lookup_key` (`<>`).
//!
//! # Differences from Postfix
//!
//! - The data stage runs at the end of DATA (the host has no hook at the
//!   DATA command), so `smtpd_data_restrictions` decide after the message
//!   has been received, like `smtpd_end_of_data_restrictions`.
//! - `HOLD` is not decisive in Postfix; here the hold verdict comes when the
//!   list ends without a reject, and, being a verdict, it ends the stage's
//!   chain. In a relay list the hold waits for the recipient list that
//!   follows in the same RCPT.
//! - Actions before MAIL (HOLD, DISCARD, PREPEND in client and HELO lists)
//!   apply to the session's transactions (Postfix skips them when
//!   `smtpd_delay_reject = no`).
//! - `mydestination` and `relay_domains` are lists of domains (no tables);
//!   `virtual_*_domains` and address literals of the server's own addresses
//!   are not known, so such recipients count as remote.
//! - `pcre` tables are read with the regexp(5) (POSIX) dialect.
//! - The client's name is looked up only when a word or a reply needs it
//!   (`check_client_access`, `reject_unknown_client_hostname`, a client
//!   reply text); log lines show `[ip]` until then.
//! - Postfix words not listed above (`check_policy_service`,
//!   `reject_unlisted_*`, `reject_unverified_*`, `permit_mx_backup`,
//!   `check_*_{mx,ns,a}_access`, restriction classes...) are configuration
//!   errors.
//!
//! # Layout
//!
//! - [`access`]: access tables: text to table, lookups.
//! - [`names`]: host name syntax, the DNS cache, the client's names.
//! - [`reply`]: replies and DSN fix-ups.
//! - `checks`: the restriction words and table actions.
//! - The plugin (here): configuration, hooks, outcomes.

pub mod access;
mod checks;
pub mod names;
pub mod reply;

use std::collections::HashMap;
use std::rc::Rc;

use postern_plugin_sdk::serde_json::{Map, Value};
use postern_plugin_sdk::{Client, Config, Context, Edit, Filter, Message, Outcome, log};

use crate::access::Access;
use crate::names::{DnsCache, Peer};
use crate::reply::Reply;

/// Reply classes, as smtpd_check.c names them.
pub const CLIENT: &str = "Client host";
pub const HELO: &str = "Helo command";
pub const SENDER: &str = "Sender address";
pub const RECIPIENT: &str = "Recipient address";
pub const DATA: &str = "Data command";
pub const EOD: &str = "End-of-data";

/// The plugin: site facts, tables, and the transaction's lookups and
/// carried state.
#[derive(Debug)]
pub struct Restrictions {
    site: Site,
    files: Map<String, Value>,
    /// Parsed tables by `TYPE:NAME`.
    tables: HashMap<String, Rc<Access>>,
    dns: DnsCache,
    /// The client's names, once looked up.
    peer: Option<Peer>,
    /// Deferrals raised (`defer_if_permit`) by the client, HELO and sender
    /// lists, for the recipient lists (smtpd's `defer_if_permit_*`).
    deferred: [Option<Reply>; 3],
    /// What a relay list leaves to the recipient list of the same RCPT.
    carry: Option<Carry>,
}

/// Server parameters.
#[derive(Clone, Debug)]
struct Site {
    mydestination: Vec<String>,
    relay_domains: Vec<String>,
    myorigin: String,
    recipient_delimiter: String,
    null_key: String,
    codes: Codes,
}

/// The `*_code` parameters.
#[derive(Clone, Copy, Debug)]
struct Codes {
    reject: u16,
    defer: u16,
    relay: u16,
    map_reject: u16,
    map_defer: u16,
    unknown_address: u16,
    unknown_hostname: u16,
    unknown_client: u16,
    invalid_hostname: u16,
    non_fqdn: u16,
    multi_recipient_bounce: u16,
    plaintext: u16,
}

/// Code parameters: (name, Postfix default, setter).
type CodeSetter = fn(&mut Codes, u16);
const CODE_PARAMS: [(&str, u16, CodeSetter); 12] = [
    ("reject_code", 554, |c, v| c.reject = v),
    ("defer_code", 450, |c, v| c.defer = v),
    ("relay_domains_reject_code", 554, |c, v| c.relay = v),
    ("access_map_reject_code", 554, |c, v| c.map_reject = v),
    ("access_map_defer_code", 450, |c, v| c.map_defer = v),
    ("unknown_address_reject_code", 450, |c, v| {
        c.unknown_address = v
    }),
    ("unknown_hostname_reject_code", 450, |c, v| {
        c.unknown_hostname = v
    }),
    ("unknown_client_reject_code", 450, |c, v| {
        c.unknown_client = v
    }),
    ("invalid_hostname_reject_code", 501, |c, v| {
        c.invalid_hostname = v
    }),
    ("non_fqdn_reject_code", 504, |c, v| c.non_fqdn = v),
    ("multi_recipient_bounce_reject_code", 550, |c, v| {
        c.multi_recipient_bounce = v
    }),
    ("plaintext_reject_code", 450, |c, v| c.plaintext = v),
];

/// Site parameters besides the codes.
const SITE_PARAMS: [&str; 8] = [
    "myhostname",
    "mydomain",
    "myorigin",
    "mydestination",
    "relay_domains",
    "recipient_delimiter",
    "smtpd_null_access_lookup_key",
    "parent_domain_matches_subdomains",
];

/// Which restriction list the words are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum List {
    Client,
    Helo,
    Sender,
    Relay,
    Recipient,
    Data,
    EndOfData,
}

impl List {
    fn from_marker(word: &str) -> Option<List> {
        Some(match word.to_ascii_lowercase().as_str() {
            "smtpd_client_restrictions" => List::Client,
            "smtpd_helo_restrictions" => List::Helo,
            "smtpd_sender_restrictions" => List::Sender,
            "smtpd_relay_restrictions" => List::Relay,
            "smtpd_recipient_restrictions" => List::Recipient,
            "smtpd_data_restrictions" => List::Data,
            "smtpd_end_of_data_restrictions" => List::EndOfData,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            List::Client => "smtpd_client_restrictions",
            List::Helo => "smtpd_helo_restrictions",
            List::Sender => "smtpd_sender_restrictions",
            List::Relay => "smtpd_relay_restrictions",
            List::Recipient => "smtpd_recipient_restrictions",
            List::Data => "smtpd_data_restrictions",
            List::EndOfData => "smtpd_end_of_data_restrictions",
        }
    }

    /// The access map a bare `TYPE:NAME` word means in this list.
    fn default_acl(self) -> Option<checks::Acl> {
        match self {
            List::Client => Some(checks::Acl::Client),
            List::Helo => Some(checks::Acl::Helo),
            List::Sender => Some(checks::Acl::Sender),
            List::Relay | List::Recipient => Some(checks::Acl::Recipient),
            List::Data | List::EndOfData => None,
        }
    }
}

/// The hook being answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hook {
    Connect,
    Helo,
    Mail,
    Rcpt,
    Data,
}

/// A relay list's leftovers for the recipient list of the same RCPT.
#[derive(Clone, Debug)]
struct Carry {
    /// The RCPT: its address and how many recipients were accepted before.
    rcpt: (String, usize),
    defer_if_permit: Option<Reply>,
    defer_if_reject: Option<Reply>,
    hold: Option<String>,
}

/// What the hook knows.
struct Stage<'a> {
    hook: Hook,
    client: &'a Client,
    helo: Option<&'a str>,
    sender: Option<&'a str>,
    recipient: Option<&'a str>,
    /// Recipients accepted so far.
    rcpt_count: usize,
}

impl Filter for Restrictions {
    fn configure(config: Config) -> Result<Self, String> {
        for key in config.table().keys() {
            let known = matches!(key.as_str(), "files" | "main")
                || SITE_PARAMS.contains(&key.as_str())
                || CODE_PARAMS.iter().any(|(name, _, _)| name == key);
            if !known {
                return Err(format!("unknown setting `{key}`"));
            }
        }
        let files = match config.get("files") {
            None => Map::new(),
            Some(Value::Object(files)) => files.clone(),
            Some(_) => return Err("setting `files` must be a table".to_owned()),
        };
        if let Some((name, _)) = files.iter().find(|(_, v)| !v.is_string()) {
            return Err(format!("files.{name} must be the table's text"));
        }
        let main = match config.get("main") {
            None => Map::new(),
            Some(Value::Object(main)) => main.clone(),
            Some(_) => return Err("setting `main` must be a table".to_owned()),
        };
        let site = Site::from_config(&config, &main)?;
        // Without its domains the plugin would take every recipient for a
        // relay attempt: refuse to load instead.
        if !config.has("mydestination") && !main.contains_key("mydestination") {
            return Err(
                "setting `mydestination` is missing: add `mydestination = \"$mydestination\"` \
                 and `relay_domains = \"$relay_domains\"` to the plugin's config"
                    .to_owned(),
            );
        }
        Ok(Restrictions {
            site,
            files,
            tables: HashMap::new(),
            dns: DnsCache::default(),
            peer: None,
            deferred: Default::default(),
            carry: None,
        })
    }

    fn on_connect(&mut self, cx: &Context) -> Outcome {
        let client = cx.client();
        let stage = Stage {
            hook: Hook::Connect,
            client,
            helo: client.helo.as_deref(),
            sender: None,
            recipient: None,
            rcpt_count: 0,
        };
        self.run(&stage, cx.args())
    }

    fn on_helo(&mut self, cx: &Context, helo: &str) -> Outcome {
        let stage = Stage {
            hook: Hook::Helo,
            client: cx.client(),
            helo: Some(helo),
            sender: None,
            recipient: None,
            rcpt_count: 0,
        };
        self.run(&stage, cx.args())
    }

    fn on_mail(&mut self, cx: &Context, sender: &str) -> Outcome {
        let client = cx.client();
        let stage = Stage {
            hook: Hook::Mail,
            client,
            helo: client.helo.as_deref(),
            sender: Some(sender),
            recipient: None,
            rcpt_count: 0,
        };
        self.run(&stage, cx.args())
    }

    fn on_rcpt(&mut self, cx: &Context, rcpt: &str) -> Outcome {
        let (client, envelope) = (cx.client(), cx.envelope());
        let stage = Stage {
            hook: Hook::Rcpt,
            client,
            helo: client.helo.as_deref(),
            sender: Some(&envelope.sender),
            recipient: Some(rcpt),
            rcpt_count: envelope.recipients.len(),
        };
        self.run(&stage, cx.args())
    }

    fn on_data(&mut self, cx: &Context, _message: &Message<'_>) -> Outcome {
        let (client, envelope) = (cx.client(), cx.envelope());
        // smtpd_check_data: no recipient when there are several.
        let recipient = match envelope.recipients.as_slice() {
            [only] => Some(only.as_str()),
            _ => None,
        };
        let stage = Stage {
            hook: Hook::Data,
            client,
            helo: client.helo.as_deref(),
            sender: Some(&envelope.sender),
            recipient,
            rcpt_count: envelope.recipients.len(),
        };
        self.run(&stage, cx.args())
    }
}

postern_plugin_sdk::register!(Restrictions);

impl Site {
    fn from_config(config: &Config, main: &Map<String, Value>) -> Result<Site, String> {
        let param = |key: &str| config.get(key).or_else(|| main.get(key));
        let text = |key: &str| -> Result<Option<String>, String> {
            match param(key) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.trim().to_owned())),
                Some(_) => Err(format!("setting `{key}` must be a string")),
            }
        };
        let list = |key: &str| -> Result<Vec<String>, String> {
            let items: Vec<String> = match param(key) {
                None => Vec::new(),
                Some(Value::String(s)) => vec![s.clone()],
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|v| {
                        v.as_str()
                            .map(str::to_owned)
                            .ok_or_else(|| format!("setting `{key}` must be a list of strings"))
                    })
                    .collect::<Result<_, _>>()?,
                Some(_) => return Err(format!("setting `{key}` must be a list of strings")),
            };
            // Postfix lists: commas and white space separate.
            Ok(items
                .iter()
                .flat_map(|s| s.split([',', ' ', '\t', '\n']))
                .filter(|s| !s.is_empty())
                .map(|s| s.trim_end_matches('.').to_ascii_lowercase())
                .collect())
        };
        let mut codes = Codes {
            reject: 0,
            defer: 0,
            relay: 0,
            map_reject: 0,
            map_defer: 0,
            unknown_address: 0,
            unknown_hostname: 0,
            unknown_client: 0,
            invalid_hostname: 0,
            non_fqdn: 0,
            multi_recipient_bounce: 0,
            plaintext: 0,
        };
        for (name, default, set) in CODE_PARAMS {
            let code = match param(name) {
                None => default,
                Some(v) => v
                    .as_u64()
                    .and_then(|n| u16::try_from(n).ok())
                    .filter(|n| (400..=599).contains(n))
                    .ok_or_else(|| format!("setting `{name}` must be a 4xx or 5xx reply code"))?,
            };
            set(&mut codes, code);
        }
        let myorigin = match text("myorigin")? {
            Some(origin) => origin,
            None => text("myhostname")?.unwrap_or_default(),
        };
        Ok(Site {
            mydestination: list("mydestination")?,
            relay_domains: list("relay_domains")?,
            myorigin: myorigin.trim_end_matches('.').to_ascii_lowercase(),
            recipient_delimiter: text("recipient_delimiter")?.unwrap_or_else(|| "+".to_owned()),
            null_key: text("smtpd_null_access_lookup_key")?.unwrap_or_else(|| "<>".to_owned()),
            codes,
        })
    }

    /// Whether `domain` (lower case) is a final destination here.
    fn is_local(&self, domain: &str) -> bool {
        self.mydestination
            .iter()
            .any(|entry| domain_matches(entry, domain, false))
    }

    /// Whether `domain` (lower case) is relayed to.
    fn is_relay(&self, domain: &str) -> bool {
        self.relay_domains
            .iter()
            .any(|entry| domain_matches(entry, domain, true))
    }
}

/// A domain list entry against a domain: `.example.com` matches subdomains;
/// `example.com` matches itself, and its subdomains with the parent style.
fn domain_matches(entry: &str, domain: &str, parent_style: bool) -> bool {
    if let Some(parent) = entry.strip_prefix('.') {
        return domain
            .strip_suffix(parent)
            .is_some_and(|rest| rest.ends_with('.') && rest.len() > 1);
    }
    domain == entry
        || (parent_style
            && domain
                .strip_suffix(entry)
                .is_some_and(|rest| rest.len() > 1 && rest.ends_with('.')))
}

impl Restrictions {
    /// Evaluates the step's words at a hook.
    fn run(&mut self, stage: &Stage<'_>, args: &[String]) -> Outcome {
        let (list, words) = match args.split_first() {
            Some((first, rest)) => match List::from_marker(first) {
                Some(list) => (list, rest),
                None => (default_list(stage.hook), args),
            },
            None => (default_list(stage.hook), args),
        };
        let recipient_stage = matches!(list, List::Relay | List::Recipient);
        // RFC 5321 §4.5.1: smtpd_check_rcpt accepts postmaster before any
        // restriction.
        if recipient_stage
            && stage
                .recipient
                .is_some_and(|r| r.eq_ignore_ascii_case("postmaster"))
        {
            return Outcome::cont();
        }
        let mut ev = checks::Eval::new(stage, list);
        // Deferrals carried from earlier stages, as smtpd_check_* restore them.
        let rcpt_key = (
            stage.recipient.unwrap_or_default().to_owned(),
            stage.rcpt_count,
        );
        let [client, helo, sender] = &self.deferred;
        ev.defer_if_permit = match list {
            List::Client | List::Data | List::EndOfData => None,
            List::Helo => client.clone(),
            List::Sender => helo.clone().or_else(|| client.clone()),
            List::Relay | List::Recipient => sender
                .clone()
                .or_else(|| helo.clone())
                .or_else(|| client.clone()),
        };
        if list == List::Recipient
            && let Some(carry) = self.carry.take().filter(|c| c.rcpt == rcpt_key)
        {
            ev.defer_if_permit = carry.defer_if_permit;
            ev.defer_if_reject = carry.defer_if_reject;
            ev.hold = carry.hold;
        }
        if list == List::Relay {
            self.carry = None;
        }

        let status = match self.evaluate(&mut ev, words) {
            Ok(status) => status,
            Err(checks::Abort(reply)) => {
                self.whatsup(&ev, "reject", &reply.to_string());
                return reply.outcome();
            }
        };
        let status = match list {
            List::Client | List::Helo | List::Sender => {
                let slot = match list {
                    List::Client => 0,
                    List::Helo => 1,
                    _ => 2,
                };
                if let Some(d) = self.deferred.get_mut(slot) {
                    *d = ev.defer_if_permit.clone();
                }
                status
            }
            List::Relay => {
                if !matches!(status, checks::Status::Refuse(_)) {
                    if ev.hold.is_some() {
                        log::info(
                            "smtpd_relay_restrictions: HOLD takes effect when the recipient \
                             list of this RCPT ends",
                        );
                    }
                    self.carry = Some(Carry {
                        rcpt: rcpt_key,
                        defer_if_permit: ev.defer_if_permit.take(),
                        defer_if_reject: ev.defer_if_reject.take(),
                        hold: ev.hold.take(),
                    });
                }
                status
            }
            List::Recipient | List::Data | List::EndOfData => {
                match (status, ev.defer_if_permit.take()) {
                    // Force permission into deferral (smtpd_check_rcpt).
                    (status @ checks::Status::Refuse(_), _) | (status, None) => status,
                    (_, Some(deferral)) => self.reject(&mut ev, deferral),
                }
            }
        };
        self.outcome(status, ev, list == List::Relay)
    }

    /// The hook's answer for the list's result.
    fn outcome(&self, status: checks::Status, ev: checks::Eval<'_>, relay: bool) -> Outcome {
        let mut out = match status {
            checks::Status::Refuse(reply) => return reply.outcome(),
            _ if ev.discard => Outcome::discard(),
            _ if ev.hold.is_some() && !relay => Outcome::hold(ev.hold.unwrap_or_default()),
            checks::Status::Permit if !relay => Outcome::accept(),
            checks::Status::Permit | checks::Status::Dunno => Outcome::cont(),
        };
        for edit in ev.edits {
            out = out.edit(edit);
        }
        out
    }

    /// The parsed table `spec` (`TYPE:NAME`), from `files[NAME]` or
    /// `files["TYPE:NAME"]`.
    fn table(&mut self, spec: &str) -> Result<Rc<Access>, checks::Abort> {
        if let Some(table) = self.tables.get(spec) {
            return Ok(table.clone());
        }
        let (kind, name) = spec.split_once(':').unwrap_or(("", spec));
        let Some(text) = self
            .files
            .get(name)
            .or_else(|| self.files.get(spec))
            .and_then(Value::as_str)
        else {
            log::error(format!(
                "table {spec}: not in this plugin's files (add `{name} = \"/path\"` to its \
                 files table)"
            ));
            return Err(checks::Abort(Reply::server_error()));
        };
        let (table, warnings) = Access::parse(kind, text).map_err(|why| {
            log::error(format!("table {spec}: {why}"));
            checks::Abort(Reply::server_error())
        })?;
        for warning in warnings {
            log::warn(format!("table {spec}, {warning}"));
        }
        let table = Rc::new(table);
        self.tables.insert(spec.to_owned(), table.clone());
        Ok(table)
    }

    /// The client's names, looked up once.
    fn peer(&mut self, ip: &str) -> Peer {
        if let Some(peer) = &self.peer {
            return peer.clone();
        }
        let peer = self.dns.peer(&names::canonical_ip(ip));
        self.peer = Some(peer.clone());
        peer
    }

    /// Logs an event as smtpd's `log_whatsup`: `reject: RCPT from
    /// name[ip]: 554 ...; from=<s> to=<r> proto=ESMTP helo=<h>`.
    fn whatsup(&self, ev: &checks::Eval<'_>, what: &str, text: &str) {
        let stage = ev.stage;
        let ip = names::canonical_ip(&stage.client.ip);
        let client = match &self.peer {
            Some(peer) => format!("{}[{ip}]", peer.name),
            None => format!("[{ip}]"),
        };
        let mut line = format!("{what}: {} from {client}: {text};", ev.where_());
        if let Some(sender) = stage.sender {
            line.push_str(&format!(" from=<{sender}>"));
        }
        if let Some(rcpt) = stage.recipient {
            line.push_str(&format!(" to=<{rcpt}>"));
        }
        line.push_str(if stage.client.esmtp {
            " proto=ESMTP"
        } else {
            " proto=SMTP"
        });
        if let Some(helo) = stage.helo {
            line.push_str(&format!(" helo=<{helo}>"));
        }
        log::info(line);
    }
}

/// The list a hook evaluates without a marker.
fn default_list(hook: Hook) -> List {
    match hook {
        Hook::Connect => List::Client,
        Hook::Helo => List::Helo,
        Hook::Mail => List::Sender,
        Hook::Rcpt => List::Recipient,
        Hook::Data => List::Data,
    }
}

/// A PREPEND action's header, `Name: value`.
fn prepend_edit(text: &str) -> Option<Edit> {
    let (name, value) = text.split_once(':')?;
    let name = name.trim_end();
    let valid = !name.is_empty() && name.bytes().all(|b| b.is_ascii_graphic() && b != b':');
    valid.then(|| {
        Edit::PrependHeader(postern_plugin_sdk::Header {
            name: name.to_owned(),
            value: value.trim_start().to_owned(),
        })
    })
}

#[cfg(test)]
mod tests;
