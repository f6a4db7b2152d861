//! The restriction words and access-table actions: smtpd_check.c's
//! `generic_checks` and `check_table_result`, and the checks they call.
//!
//! In: one list's words and what the hook knows ([`Eval`]). Out: a
//! [`Status`] (no decision, permit, or a refusal with its reply), the edits
//! and marks (hold, discard) gathered on the way, or an [`Abort`] for a
//! configuration error, which ends the evaluation as Postfix's
//! `reject_server_error` does.
//!
//! Must not: look anything up in the DNS that the word does not need.

use postern_plugin_sdk::{Edit, log};

use crate::names::{Found, PeerStatus, Rr};
use crate::reply::{Reply, dsn_fix, dsn_split};
use crate::{
    CLIENT, DATA, EOD, HELO, Hook, List, RECIPIENT, Restrictions, SENDER, Stage, names,
    prepend_edit,
};

/// How deep restriction lists in table values may nest (smtpd_check.c).
const MAX_RECURSION: usize = 100;

/// A restriction's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// No decision: the next word.
    Dunno,
    /// Permit: the list ends.
    Permit,
    /// Reject or defer with this reply.
    Refuse(Reply),
}

/// A configuration error: the evaluation stops with this reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Abort(pub Reply);

type Checked = Result<Status, Abort>;

/// Which access map: the `check_*_access` words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acl {
    Client,
    Helo,
    Sender,
    Recipient,
}

/// The subject of a reply text: `<name>: Class rejected: ...`.
#[derive(Clone, Debug)]
struct Who {
    /// `None`: the client's `name[addr]`, looked up when first needed.
    name: Option<String>,
    class: &'static str,
}

/// One evaluation: what the hook knows and smtpd's per-check state.
pub struct Eval<'a> {
    pub stage: &'a Stage<'a>,
    list: List,
    recursion: usize,
    /// The recursion level `warn_if_reject` was given at (0: off).
    warn_if_reject: usize,
    pub defer_if_permit: Option<Reply>,
    pub defer_if_reject: Option<Reply>,
    pub edits: Vec<Edit>,
    pub hold: Option<String>,
    pub discard: bool,
}

impl<'a> Eval<'a> {
    pub fn new(stage: &'a Stage<'a>, list: List) -> Eval<'a> {
        Eval {
            stage,
            list,
            recursion: 0,
            warn_if_reject: 0,
            defer_if_permit: None,
            defer_if_reject: None,
            edits: Vec::new(),
            hold: None,
            discard: false,
        }
    }

    /// The command being checked, as smtpd logs it.
    pub fn where_(&self) -> &'static str {
        match (self.list, self.stage.hook) {
            (List::Data, _) => "DATA",
            (List::EndOfData, _) => "END-OF-MESSAGE",
            (_, Hook::Connect) => "CONNECT",
            (_, Hook::Helo) if self.stage.client.esmtp => "EHLO",
            (_, Hook::Helo) => "HELO",
            (_, Hook::Mail) => "MAIL",
            (_, Hook::Rcpt) => "RCPT",
            (_, Hook::Data) => "DATA",
        }
    }

    /// The subject of the list's own replies.
    fn list_who(&self) -> Who {
        let fixed = |name: &str, class| Who {
            name: Some(name.to_owned()),
            class,
        };
        match self.list {
            List::Client => Who {
                name: None,
                class: CLIENT,
            },
            List::Helo => fixed(self.stage.helo.unwrap_or_default(), HELO),
            List::Sender => fixed(self.stage.sender.unwrap_or_default(), SENDER),
            List::Relay | List::Recipient => {
                fixed(self.stage.recipient.unwrap_or_default(), RECIPIENT)
            }
            List::Data => fixed("DATA", DATA),
            List::EndOfData => fixed("END-OF-MESSAGE", EOD),
        }
    }
}

impl Restrictions {
    /// Evaluates a list's words (the top level).
    pub(crate) fn evaluate(&mut self, ev: &mut Eval<'_>, words: &[String]) -> Checked {
        let who = ev.list_who();
        self.generic_checks(ev, words, &who, ev.list.default_acl())
    }

    /// smtpd_check.c's `generic_checks`: the words in order until one
    /// decides.
    fn generic_checks(
        &mut self,
        ev: &mut Eval<'_>,
        words: &[String],
        who: &Who,
        def_acl: Option<Acl>,
    ) -> Checked {
        let saved_recursion = ev.recursion;
        ev.recursion += 1;
        let mut status = Status::Dunno;
        let mut rest = words.iter().peekable();
        while let Some(word) = rest.next() {
            if ev.discard {
                break;
            }
            let name = word.to_ascii_lowercase();
            if name == "warn_if_reject" {
                if ev.warn_if_reject == 0 {
                    ev.warn_if_reject = ev.recursion;
                }
                continue;
            }
            // A bare `type:name` is the list's own access map.
            let (name, table) = if word.contains(':') {
                let Some(acl) = def_acl else {
                    return Err(config_error(
                        ev,
                        format!(
                            "specify one of (check_client_access, check_helo_access, \
                         check_sender_access, check_recipient_access) before {} restriction \
                         \"{word}\"",
                            who.class
                        ),
                    ));
                };
                (acl_word(acl).to_owned(), Some(word.as_str()))
            } else {
                (name, None)
            };
            status = match name.as_str() {
                "check_client_access"
                | "check_helo_access"
                | "check_sender_access"
                | "check_recipient_access" => {
                    let table = match table {
                        Some(table) => table,
                        None => match rest.next() {
                            Some(arg) if arg.contains(':') => arg.as_str(),
                            arg => {
                                return Err(config_error(
                                    ev,
                                    format!(
                                        "restriction {name}: bad argument \"{}\": need \
                                     maptype:mapname",
                                        arg.map_or("", |a| a.as_str())
                                    ),
                                ));
                            }
                        },
                    };
                    let acl = match name.as_str() {
                        "check_client_access" => Acl::Client,
                        "check_helo_access" => Acl::Helo,
                        "check_sender_access" => Acl::Sender,
                        _ => Acl::Recipient,
                    };
                    self.check_acl(ev, acl, table, def_acl)?
                }
                _ => {
                    let follows = rest.peek().map(|w| w.as_str());
                    self.word(ev, &name, word, follows, who)?
                }
            };
            if ev.warn_if_reject >= ev.recursion {
                ev.warn_if_reject = 0;
            }
            if status != Status::Dunno {
                break;
            }
            if ev.defer_if_permit.is_some() && ev.defer_if_reject.is_some() {
                break;
            }
        }
        ev.recursion = saved_recursion;
        if ev.warn_if_reject >= ev.recursion {
            ev.warn_if_reject = 0;
        }
        Ok(status)
    }

    /// One restriction word other than the access maps.
    fn word(
        &mut self,
        ev: &mut Eval<'_>,
        name: &str,
        word: &str,
        follows: Option<&str>,
        who: &Who,
    ) -> Checked {
        let stage = ev.stage;
        let codes = self.site.codes;
        let ignored_after = |this: &str| {
            if let Some(next) = follows {
                log::warn(format!("restriction `{next}' after `{this}' is ignored"));
            }
        };
        let status = match name {
            "permit" => {
                ignored_after("permit");
                Status::Permit
            }
            "reject" => {
                if ev.warn_if_reject == 0 {
                    ignored_after("reject");
                }
                let text = self.rejected(ev, who, "Access denied");
                self.check_reject(ev, codes.reject, "5.7.1", text)
            }
            "defer" => {
                if ev.warn_if_reject == 0 {
                    ignored_after("defer");
                }
                let text = self.rejected(ev, who, "Try again later");
                self.check_reject(ev, codes.defer, "4.3.2", text)
            }
            "defer_if_permit" => {
                let text = self.rejected(ev, who, "defer_if_permit requested");
                self.defer_if_permit(ev, 450, "4.7.0", text)
            }
            "defer_if_reject" => {
                let text = self.rejected(ev, who, "defer_if_reject requested");
                defer_if(&mut ev.defer_if_reject, 450, "4.7.0", text);
                Status::Dunno
            }
            "reject_unauth_pipelining" if stage.client.improper_pipelining => {
                let text = self.rejected(ev, who, "Improper use of SMTP command pipelining");
                self.check_reject(ev, 503, "5.5.0", text)
            }
            "reject_plaintext_session" if !stage.client.tls => self.check_reject(
                ev,
                codes.plaintext,
                "4.7.1",
                "Session encryption is required".to_owned(),
            ),
            "permit_mynetworks" if stage.client.in_mynetworks => Status::Permit,
            "permit_sasl_authenticated" if stage.client.auth_user.is_some() => Status::Permit,
            "reject_unknown_client_hostname" | "reject_unknown_client" => {
                let peer = self.peer(&stage.client.ip);
                if peer.name_status == PeerStatus::Ok {
                    Status::Dunno
                } else {
                    let code = if peer.name_status >= PeerStatus::Perm {
                        codes.unknown_client
                    } else {
                        450
                    };
                    let text = format!(
                        "Client host rejected: cannot find your hostname, [{}]",
                        names::canonical_ip(&stage.client.ip)
                    );
                    self.check_reject(ev, code, "4.7.25", text)
                }
            }
            "reject_unknown_reverse_client_hostname" => {
                let peer = self.peer(&stage.client.ip);
                if peer.reverse_status == PeerStatus::Ok {
                    Status::Dunno
                } else {
                    let code = if peer.reverse_status == PeerStatus::Perm {
                        codes.unknown_client
                    } else {
                        450
                    };
                    let text = format!(
                        "Client host rejected: cannot find your reverse hostname, [{}]",
                        names::canonical_ip(&stage.client.ip)
                    );
                    self.check_reject(ev, code, "4.7.1", text)
                }
            }
            "reject_invalid_helo_hostname" | "reject_invalid_hostname" => match stage.helo {
                Some(helo) if helo.starts_with('[') => self.invalid_hostaddr(ev, helo),
                Some(helo) => {
                    let name = names::truncate_dot(helo);
                    if names::valid_hostname(name) || names::valid_hostaddr(name) {
                        Status::Dunno
                    } else {
                        let text = format!("<{helo}>: {HELO} rejected: Invalid name");
                        self.check_reject(ev, codes.invalid_hostname, "5.5.2", text)
                    }
                }
                None => Status::Dunno,
            },
            "reject_non_fqdn_helo_hostname" | "reject_non_fqdn_hostname" => match stage.helo {
                Some(helo) if helo.starts_with('[') => self.invalid_hostaddr(ev, helo),
                Some(helo) => {
                    let name = names::truncate_dot(helo);
                    if names::valid_hostname(name) && name.contains('.') {
                        Status::Dunno
                    } else {
                        let text =
                            format!("<{helo}>: {HELO} rejected: need fully-qualified hostname");
                        self.check_reject(ev, codes.non_fqdn, "5.5.2", text)
                    }
                }
                None => Status::Dunno,
            },
            "reject_unknown_helo_hostname" | "reject_unknown_hostname" => match stage.helo {
                Some(helo) if helo.starts_with('[') => self.invalid_hostaddr(ev, helo),
                Some(helo) => self.unknown_hostname(ev, helo),
                None => Status::Dunno,
            },
            "reject_non_fqdn_sender" => match stage.sender {
                Some(sender) if !sender.is_empty() => self.non_fqdn_address(ev, sender, SENDER),
                _ => Status::Dunno,
            },
            "reject_unknown_sender_domain" | "reject_unknown_address" => match stage.sender {
                Some(sender) if !sender.is_empty() => self.unknown_address(ev, sender, SENDER),
                _ => Status::Dunno,
            },
            "reject_non_fqdn_recipient" => match stage.recipient {
                Some(rcpt) => self.non_fqdn_address(ev, rcpt, RECIPIENT),
                None => Status::Dunno,
            },
            "reject_unknown_recipient_domain" => match stage.recipient {
                Some(rcpt) => self.unknown_address(ev, rcpt, RECIPIENT),
                None => Status::Dunno,
            },
            "permit_auth_destination" => match stage.recipient {
                Some(rcpt) if self.auth_destination(rcpt) => Status::Permit,
                _ => Status::Dunno,
            },
            "reject_unauth_destination" | "defer_unauth_destination" => match stage.recipient {
                Some(rcpt) if !self.auth_destination(rcpt) => {
                    let (code, dsn) = if name == "reject_unauth_destination" {
                        (codes.relay, "5.7.1")
                    } else {
                        (codes.relay.saturating_sub(100), "4.7.1")
                    };
                    let text = format!("<{rcpt}>: Relay access denied");
                    self.check_reject(ev, code, dsn, text)
                }
                _ => Status::Dunno,
            },
            "reject_multi_recipient_bounce" => {
                let limit = if stage.hook == Hook::Data { 1 } else { 0 };
                if stage.sender == Some("") && stage.rcpt_count > limit {
                    let text = self.rejected(ev, who, "Multi-recipient bounce");
                    self.check_reject(ev, codes.multi_recipient_bounce, "5.5.3", text)
                } else {
                    Status::Dunno
                }
            }
            // The words above without their condition.
            "reject_unauth_pipelining"
            | "reject_plaintext_session"
            | "permit_mynetworks"
            | "permit_sasl_authenticated" => Status::Dunno,
            "reject_rbl_client"
            | "reject_rbl"
            | "reject_rhsbl_client"
            | "reject_rhsbl_reverse_client"
            | "reject_rhsbl_sender"
            | "reject_rhsbl_helo"
            | "permit_dnswl_client"
            | "permit_rhswl_client" => {
                return Err(config_error(
                    ev,
                    format!(
                        "restriction \"{word}\" is handled by the rbl plugin: put it in an `rbl` \
                     step of the chain"
                    ),
                ));
            }
            _ if crate::List::from_marker(name).is_some() => {
                return Err(config_error(
                    ev,
                    format!(
                        "\"{word}\" names a restriction list; it can only be the step's first word"
                    ),
                ));
            }
            _ if UNSUPPORTED.contains(&name) => {
                return Err(config_error(
                    ev,
                    format!("restriction \"{word}\" is not supported by the restrictions plugin"),
                ));
            }
            _ => {
                return Err(config_error(
                    ev,
                    format!("unknown smtpd restriction: \"{word}\""),
                ));
            }
        };
        Ok(status)
    }

    /// `smtpd_check_reject`: the reply, unless `warn_if_reject` makes it a
    /// warning or `defer_if_reject` a deferral; logged either way.
    fn check_reject(&mut self, ev: &mut Eval<'_>, code: u16, dsn: &str, text: String) -> Status {
        let mut reply = Reply::new(code, dsn, text);
        if ev.warn_if_reject != 0 {
            self.whatsup(ev, "reject_warning", &reply.to_string());
            return Status::Dunno;
        }
        if reply.is_permanent()
            && let Some(deferral) = ev.defer_if_reject.take()
        {
            reply = deferral;
        }
        self.reject(ev, reply)
    }

    /// Logs and returns a refusal.
    pub(crate) fn reject(&mut self, ev: &mut Eval<'_>, reply: Reply) -> Status {
        self.whatsup(ev, "reject", &reply.to_string());
        Status::Refuse(reply)
    }

    /// `DEFER_IF_PERMIT`: remembered for the end of the recipient list, or a
    /// warning under `warn_if_reject`.
    fn defer_if_permit(&mut self, ev: &mut Eval<'_>, code: u16, dsn: &str, text: String) -> Status {
        if ev.warn_if_reject != 0 {
            return self.check_reject(ev, code, dsn, text);
        }
        defer_if(&mut ev.defer_if_permit, code, dsn, text);
        Status::Dunno
    }

    /// The reply name of `who`: the client's `name[addr]` is looked up now.
    /// `<NAME>: CLASS rejected: WHY`, the shape of smtpd_check.c's replies.
    fn rejected(&mut self, ev: &Eval<'_>, who: &Who, why: &str) -> String {
        format!("<{}>: {} rejected: {why}", self.name(ev, who), who.class)
    }

    fn name(&mut self, ev: &Eval<'_>, who: &Who) -> String {
        match &who.name {
            Some(name) => name.clone(),
            None => {
                let ip = &ev.stage.client.ip;
                let peer = self.peer(ip);
                format!("{}[{}]", peer.name, names::canonical_ip(ip))
            }
        }
    }

    /// `reject_invalid_hostaddr`: an address literal HELO.
    fn invalid_hostaddr(&mut self, ev: &mut Eval<'_>, helo: &str) -> Status {
        let inner = match helo.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(inner) if helo.len() > 2 => inner,
            _ => helo,
        };
        if names::valid_mailhost_addr(inner) {
            return Status::Dunno;
        }
        let text = format!("<{helo}>: {HELO} rejected: invalid ip address");
        self.check_reject(ev, self.site.codes.invalid_hostname, "5.5.2", text)
    }

    /// `reject_unknown_hostname`: no A, AAAA or MX (a null MX is fine).
    fn unknown_hostname(&mut self, ev: &mut Eval<'_>, helo: &str) -> Status {
        let name = names::truncate_dot(helo);
        let found = if names::valid_hostname(name) {
            self.dns.find(name, &[Rr::A, Rr::Aaaa, Rr::Mx])
        } else {
            Found::No
        };
        match found {
            Found::Yes | Found::NullMx => Status::Dunno,
            Found::No => {
                let text = format!(
                    "<{helo}>: {HELO} rejected: {}",
                    if names::valid_hostname(name) {
                        "Host not found"
                    } else {
                        "Malformed DNS server reply"
                    }
                );
                self.check_reject(ev, self.site.codes.unknown_hostname, "4.7.1", text)
            }
            Found::Retry => {
                let text = format!("<{helo}>: {HELO} rejected: Host not found");
                self.defer_if_permit(ev, 450, "4.7.1", text)
            }
        }
    }

    /// `reject_non_fqdn_address`.
    fn non_fqdn_address(&mut self, ev: &mut Eval<'_>, addr: &str, class: &'static str) -> Status {
        let domain = addr.rsplit_once('@').map_or("", |(_, d)| d);
        if domain.starts_with('[') && domain.ends_with(']') {
            return Status::Dunno;
        }
        let domain = names::truncate_dot(domain);
        if !domain.is_empty() && names::valid_hostname(domain) && domain.contains('.') {
            return Status::Dunno;
        }
        let text = format!("<{addr}>: {class} rejected: need fully-qualified address");
        self.check_reject(ev, self.site.codes.non_fqdn, "4.5.2", text)
    }

    /// `reject_unknown_address`: the domain must have an MX, A or AAAA
    /// record, unless it is ours or an address literal.
    fn unknown_address(&mut self, ev: &mut Eval<'_>, addr: &str, class: &'static str) -> Status {
        let Some((_, domain)) = addr.rsplit_once('@') else {
            return Status::Dunno;
        };
        let domain = names::truncate_dot(domain).to_ascii_lowercase();
        if domain.is_empty()
            || self.site.is_local(&domain)
            || (domain.starts_with('[') && domain.ends_with(']'))
        {
            return Status::Dunno;
        }
        let found = if names::valid_hostname(&domain) {
            self.dns.find(&domain, &[Rr::Mx, Rr::A, Rr::Aaaa])
        } else {
            Found::No
        };
        let sender = class == SENDER;
        let dsn = if sender { "4.1.8" } else { "4.1.2" };
        match found {
            Found::Yes => Status::Dunno,
            Found::NullMx => {
                let (code, dsn) = if sender {
                    (550, "4.7.27")
                } else {
                    (556, "4.1.10")
                };
                let text = format!(
                    "<{addr}>: {class} rejected: Domain {domain} does not accept mail (nullMX)"
                );
                self.check_reject(ev, code, dsn, text)
            }
            Found::No => {
                let why = if names::valid_hostname(&domain) {
                    "Domain not found"
                } else {
                    "Malformed DNS server reply"
                };
                let text = format!("<{addr}>: {class} rejected: {why}");
                self.check_reject(ev, self.site.codes.unknown_address, dsn, text)
            }
            Found::Retry => {
                let text = format!("<{addr}>: {class} rejected: Domain not found");
                self.defer_if_permit(ev, 450, dsn, text)
            }
        }
    }

    /// `permit_auth_destination`: the recipient's domain is ours or relayed
    /// (no domain: ours, by `$myorigin`).
    fn auth_destination(&self, rcpt: &str) -> bool {
        let Some((_, domain)) = rcpt.rsplit_once('@') else {
            return true;
        };
        let domain = names::truncate_dot(domain).to_ascii_lowercase();
        domain.is_empty() || self.site.is_local(&domain) || self.site.is_relay(&domain)
    }

    /// A `check_*_access` word.
    fn check_acl(
        &mut self,
        ev: &mut Eval<'_>,
        acl: Acl,
        spec: &str,
        def_acl: Option<Acl>,
    ) -> Checked {
        let stage = ev.stage;
        let mut search = Search {
            spec,
            def_acl,
            who: Who {
                name: None,
                class: CLIENT,
            },
        };
        match acl {
            Acl::Client => {
                let ip = names::canonical_ip(&stage.client.ip);
                let peer = self.peer(&ip);
                search.who.name = Some(format!("{}[{ip}]", peer.name));
                if let Some(status) = self.domain_access(ev, &search, &peer.name, false)? {
                    return Ok(status);
                }
                Ok(self.addr_access(ev, &search, &ip)?.unwrap_or(Status::Dunno))
            }
            Acl::Helo => {
                let Some(helo) = stage.helo else {
                    return Ok(Status::Dunno);
                };
                search.who = Who {
                    name: Some(helo.to_owned()),
                    class: HELO,
                };
                Ok(self
                    .domain_access(ev, &search, helo, false)?
                    .unwrap_or(Status::Dunno))
            }
            Acl::Sender => {
                let Some(sender) = stage.sender else {
                    return Ok(Status::Dunno);
                };
                search.who = Who {
                    name: Some(sender.to_owned()),
                    class: SENDER,
                };
                if sender.is_empty() {
                    let key = self.site.null_key.clone();
                    return Ok(self
                        .access(ev, &search, &key, false)?
                        .unwrap_or(Status::Dunno));
                }
                self.mail_access(ev, &search, sender)
            }
            Acl::Recipient => {
                let Some(rcpt) = stage.recipient else {
                    return Ok(Status::Dunno);
                };
                search.who = Who {
                    name: Some(rcpt.to_owned()),
                    class: RECIPIENT,
                };
                self.mail_access(ev, &search, rcpt)
            }
        }
    }

    /// `check_access`: one key; `None` when the table has no entry (a
    /// partial key is not asked of a regexp table).
    fn access(
        &mut self,
        ev: &mut Eval<'_>,
        search: &Search<'_>,
        key: &str,
        partial: bool,
    ) -> Result<Option<Status>, Abort> {
        let table = self.table(search.spec)?;
        if partial && !table.is_fixed() {
            return Ok(None);
        }
        match table.get(key) {
            Some(value) => self.table_result(ev, search, &value, key).map(Some),
            None => Ok(None),
        }
    }

    /// `check_domain_access`: the name, then its parent domains (plain
    /// keys: `parent_domain_matches_subdomains` includes smtpd_access_maps).
    fn domain_access(
        &mut self,
        ev: &mut Eval<'_>,
        search: &Search<'_>,
        domain: &str,
        mut partial: bool,
    ) -> Result<Option<Status>, Abort> {
        let numeric = names::valid_hostaddr(domain);
        let mut name = domain;
        while !name.is_empty() {
            if let Some(status) = self.access(ev, search, name, partial)? {
                return Ok(Some(status));
            }
            // No subdomain magic for numerical host names.
            if numeric {
                break;
            }
            let Some(dot) = name.get(1..).and_then(|n| n.find('.')) else {
                break;
            };
            name = &name[dot + 2..];
            partial = true;
        }
        Ok(None)
    }

    /// `check_addr_access`: the address, then its networks
    /// (`split_at_right` on `.`, or `:` for IPv6).
    fn addr_access(
        &mut self,
        ev: &mut Eval<'_>,
        search: &Search<'_>,
        addr: &str,
    ) -> Result<Option<Status>, Abort> {
        let delim = if addr.contains(':') { ':' } else { '.' };
        let mut key = addr;
        let mut partial = false;
        loop {
            if let Some(status) = self.access(ev, search, key, partial)? {
                return Ok(Some(status));
            }
            partial = true;
            match key.rfind(delim) {
                Some(at) => key = &key[..at],
                None => return Ok(None),
            }
        }
    }

    /// `check_mail_access`: `user+ext@domain`, `user@domain`, the domain and
    /// its parents, `user+ext@`, `user@`.
    fn mail_access(&mut self, ev: &mut Eval<'_>, search: &Search<'_>, addr: &str) -> Checked {
        // trivial-rewrite qualifies a domainless address with $myorigin.
        let qualified = match addr.rsplit_once('@') {
            Some((local, domain)) => format!("{local}@{}", names::truncate_dot(domain)),
            None if self.site.myorigin.is_empty() => addr.to_owned(),
            None => format!("{addr}@{}", self.site.myorigin),
        };
        let (local, domain) = qualified
            .rsplit_once('@')
            .map_or((qualified.as_str(), ""), |(l, d)| (l, d));
        let bare_local = strip_extension(local, &self.site.recipient_delimiter);
        let mut keys: Vec<(String, bool)> = vec![(qualified.clone(), false)];
        if let Some(bare) = bare_local {
            keys.push((format!("{bare}@{domain}"), true));
        }
        for (key, partial) in keys {
            if let Some(status) = self.access(ev, search, &key, partial)? {
                return Ok(status);
            }
        }
        if !domain.is_empty()
            && let Some(status) = self.domain_access(ev, search, domain, true)?
        {
            return Ok(status);
        }
        let mut keys = vec![format!("{local}@")];
        if let Some(bare) = bare_local {
            keys.push(format!("{bare}@"));
        }
        for key in keys {
            if let Some(status) = self.access(ev, search, &key, true)? {
                return Ok(status);
            }
        }
        Ok(Status::Dunno)
    }

    /// `check_table_result`: what a table's value means.
    fn table_result(
        &mut self,
        ev: &mut Eval<'_>,
        search: &Search<'_>,
        value: &str,
        key: &str,
    ) -> Checked {
        let who = &search.who;
        let spec = search.spec;
        let (command, text) = match value.split_once([' ', '\t']) {
            Some((command, text)) => (command, text.trim_start()),
            None => (value, ""),
        };
        let command_upper = command.to_ascii_uppercase();
        let reply_name = self.name(ev, who);
        let class = who.class;
        let codes = self.site.codes;
        let status = match command_upper.as_str() {
            "DUNNO" => Status::Dunno,
            "REJECT" | "DEFER" => {
                let (code, default) = if command_upper == "REJECT" {
                    (codes.map_reject, "5.7.1")
                } else {
                    (codes.map_defer, "4.7.1")
                };
                let (dsn, text) = dsn_split(default, text);
                let text = if text.is_empty() {
                    "Access denied"
                } else {
                    text
                };
                let text = format!("<{reply_name}>: {class} rejected: {text}");
                self.check_reject(ev, code, &dsn_fix(&dsn, class), text)
            }
            "INFO" | "WARN" => {
                self.whatsup(ev, &command_upper.to_ascii_lowercase(), text);
                Status::Dunno
            }
            "FILTER" | "REDIRECT" | "BCC" => {
                log::warn(format!(
                    "access table {spec} entry \"{key}\": action {command_upper} is not \
                     supported here; ignored"
                ));
                Status::Dunno
            }
            "HOLD" => {
                if ev.hold.is_none() {
                    let reason = if text.is_empty() {
                        "triggers HOLD action"
                    } else {
                        text
                    };
                    let reason = format!("<{reply_name}>: {class} {reason}");
                    self.whatsup(ev, "hold", &reason);
                    ev.hold = Some(reason);
                }
                Status::Dunno
            }
            "DISCARD" => {
                let reason = if text.is_empty() {
                    "triggers DISCARD action"
                } else {
                    text
                };
                self.whatsup(ev, "discard", &format!("<{reply_name}>: {class} {reason}"));
                ev.discard = true;
                Status::Permit
            }
            "DEFER_IF_PERMIT" | "DEFER_IF_REJECT" => {
                let (dsn, text) = dsn_split("4.7.1", text);
                let text = if text.is_empty() {
                    "Service unavailable"
                } else {
                    text
                };
                let text = format!("<{reply_name}>: {class} rejected: {text}");
                let dsn = dsn_fix(&dsn, class);
                if command_upper == "DEFER_IF_PERMIT" {
                    self.defer_if_permit(ev, codes.map_defer, &dsn, text)
                } else {
                    defer_if(&mut ev.defer_if_reject, codes.map_defer, &dsn, text);
                    Status::Dunno
                }
            }
            "PREPEND" => {
                match prepend_edit(text) {
                    Some(edit) => ev.edits.push(edit),
                    None => log::warn(format!(
                        "access table {spec} entry \"{key}\" requires header: text"
                    )),
                }
                Status::Dunno
            }
            _ if value.bytes().all(|b| b.is_ascii_digit()) => Status::Permit,
            _ if command.len() == 3
                && !text.is_empty()
                && command.starts_with(['4', '5'])
                && command.bytes().all(|b| b.is_ascii_digit()) =>
            {
                let code: u16 = command.parse().unwrap_or(450);
                let default = format!("{}.7.1", &command[..1]);
                let (dsn, text) = dsn_split(&default, text);
                let text = if text.is_empty() {
                    "Access denied"
                } else {
                    text
                };
                let text = format!("<{reply_name}>: {class} rejected: {text}");
                self.check_reject(ev, code, &dsn_fix(&dsn, class), text)
            }
            "OK" | "RELAY" => Status::Permit,
            _ if value.contains(':') => {
                return Err(config_error(
                    ev,
                    format!(
                        "access table {spec} has entry with lookup table: {value}; define the \
                     restrictions in the value instead"
                    ),
                ));
            }
            _ if ev.recursion > MAX_RECURSION => {
                return Err(config_error(
                    ev,
                    format!("access table {spec} entry {value} causes unreasonable recursion"),
                ));
            }
            _ => {
                let words: Vec<String> = value
                    .split([' ', '\t', ','])
                    .filter(|w| !w.is_empty())
                    .map(str::to_owned)
                    .collect();
                if words.is_empty() {
                    log::warn(format!("access table {spec} entry {key} has empty value"));
                    Status::Permit
                } else {
                    return self.generic_checks(ev, &words, who, search.def_acl);
                }
            }
        };
        Ok(status)
    }
}

/// Where a `check_*_access` word looks, and whose reply texts it gives.
struct Search<'s> {
    spec: &'s str,
    /// The list's default map, for restriction lists in the table's values.
    def_acl: Option<Acl>,
    who: Who,
}

/// The word for an access map.
fn acl_word(acl: Acl) -> &'static str {
    match acl {
        Acl::Client => "check_client_access",
        Acl::Helo => "check_helo_access",
        Acl::Sender => "check_sender_access",
        Acl::Recipient => "check_recipient_access",
    }
}

/// Logs a configuration error found in `ev`'s list; Postfix's
/// `reject_server_error`.
fn config_error(ev: &Eval<'_>, message: String) -> Abort {
    log::error(format!("{}: {message}", ev.list.name()));
    Abort(Reply::server_error())
}

/// `defer_if`: keeps the first reason.
fn defer_if(slot: &mut Option<Reply>, code: u16, dsn: &str, text: String) {
    if slot.is_none() {
        *slot = Some(Reply::new(code, dsn, text));
    }
}

/// The local part without its address extension (`user+ext` → `user`),
/// or `None` if it has none. As Postfix's `split_addr`, the special
/// addresses postmaster and MAILER-DAEMON never have one, nor does a local
/// part that starts with the delimiter.
fn strip_extension<'l>(local: &'l str, delimiters: &str) -> Option<&'l str> {
    if delimiters.is_empty()
        || local.eq_ignore_ascii_case("postmaster")
        || local.eq_ignore_ascii_case("mailer-daemon")
    {
        return None;
    }
    let at = local
        .char_indices()
        .skip(1)
        .find(|(_, c)| delimiters.contains(*c))?
        .0;
    Some(&local[..at])
}

/// Known Postfix restrictions this plugin does not implement.
const UNSUPPORTED: [&str; 27] = [
    "check_policy_service",
    "check_ccert_access",
    "check_sasl_access",
    "check_reverse_client_access",
    "check_client_mx_access",
    "check_client_ns_access",
    "check_client_a_access",
    "check_helo_mx_access",
    "check_helo_ns_access",
    "check_helo_a_access",
    "check_sender_mx_access",
    "check_sender_ns_access",
    "check_sender_a_access",
    "check_recipient_mx_access",
    "check_recipient_ns_access",
    "check_recipient_a_access",
    "check_relay_domains",
    "permit_inet_interfaces",
    "permit_mx_backup",
    "permit_tls_clientcerts",
    "permit_tls_all_clientcerts",
    "reject_rhsbl_recipient",
    "reject_unlisted_sender",
    "reject_unlisted_recipient",
    "reject_unverified_sender",
    "reject_unverified_recipient",
    "reject_sender_login_mismatch",
];

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn extensions() {
        assert_eq!(strip_extension("user+ext", "+"), Some("user"));
        assert_eq!(strip_extension("user-a+b", "+-"), Some("user"));
        assert_eq!(strip_extension("user", "+"), None);
        assert_eq!(strip_extension("+user", "+"), None);
        assert_eq!(strip_extension("MAILER-DAEMON", "-"), None);
        assert_eq!(strip_extension("postmaster+x", "+"), Some("postmaster"));
        assert_eq!(strip_extension("user+ext", ""), None);
    }
}
