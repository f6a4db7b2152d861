//! The default bundle's DNSBL plugin, with Postfix's semantics.
//!
//! It needs the `dns` and `log` capabilities. There are two modes.
//!
//! # Restriction words (the chain step's arguments)
//!
//! The step `rbl reject_rbl_client zen.test=127.0.0.[2..11] reject_rhsbl_sender dbl.test`
//! evaluates Postfix restrictions, in order; the first listing decides (a
//! reject, or for the allow lists an accept, which skips the rest of the
//! stage's chain as Postfix's OK ends the list):
//!
//! | word                          | looked up under the zone                 | on a listing                                        |
//! |-------------------------------|------------------------------------------|-----------------------------------------------------|
//! | `reject_rbl_client`           | the client IP, reversed (IPv6 nibbles)   | reject: `Client host [IP] blocked using ZONE`       |
//! | `reject_rhsbl_client`         | the client's verified host name          | reject: `Client host [NAME] blocked using ZONE`     |
//! | `reject_rhsbl_reverse_client` | the client's reverse (PTR) name          | reject: `Client host [NAME] blocked using ZONE`     |
//! | `reject_rhsbl_sender`         | the envelope sender's domain             | reject: `Sender address [DOMAIN] blocked using ZONE`|
//! | `reject_rhsbl_helo`           | the HELO/EHLO name                       | reject: `Helo command [HELO] blocked using ZONE`    |
//! | `permit_dnswl_client`         | the client IP, reversed                  | accept (an allow list such as list.dnswl.org)       |
//! | `permit_rhswl_client`         | the client's verified host name          | accept                                              |
//!
//! Each word takes one site, `zone` or `zone=filter`. The reply is Postfix's
//! default (`maps_rbl_reject_code` 554, `rbl_reply_maps` text):
//! `554 5.7.1 Service unavailable; <text>; <TXT record>`, the `; <TXT record>`
//! part only when the listed name has a non-empty TXT record.
//!
//! Every hook (`on_connect`, `on_helo`, `on_mail`, `on_rcpt`) evaluates the
//! words whose data it has: a word without its data is skipped, as Postfix
//! skips it (no HELO yet at connect, no sender before MAIL, the null sender
//! `<>`, a HELO that is an address literal or not a domain name).
//!
//! The client's names: the host does not pass them, so the plugin looks up
//! the PTR records of the client IP when a word needs one. The *reverse*
//! name is the first PTR name; the *verified* name is a PTR name whose A (or
//! AAAA) records include the client's address, as Postfix's client name. No
//! such name means "unknown", which is not checked. An accept from an allow
//! list cannot open a relay: postern refuses recipients outside its domains
//! after the chain, whatever it said (Postfix likewise ignores
//! `permit_dnswl_client` where it would override `reject_unauth_destination`).
//!
//! An argument error (unknown word, missing or malformed site) is the
//! operator's mistake found at run time: it is logged and answered with
//! Postfix's `451 4.3.5 Server configuration error`.
//!
//! # Weighted scoring (no arguments, postscreen style)
//!
//! With no arguments the plugin scores the client IP as
//! `postscreen_dnsbl_sites` and `postscreen_dnsbl_threshold` do, from its
//! table in `postern.toml`:
//!
//! ```toml
//! sites = ["zen.test*3", "bl.test=127.0.0.2*2", "allow.test*-5"]
//! threshold = 3   # default 1
//! ```
//!
//! A site is `zone[=filter][*weight]` (weight 1 by default; negative weights
//! make allow lists). The weights of the sites listing the client are summed;
//! at or over the threshold the reply is
//! `554 5.7.1 Service unavailable; client [IP] blocked using ZONE`, ZONE being
//! the first site (in configuration order) with a positive weight that lists
//! the client. Without arguments and without `sites` the plugin continues.
//!
//! # Reply filters
//!
//! `zone=127.0.0.2`, `zone=127.0.0.[2..11]`, `zone=127.0.0.[2;4;6]`,
//! `zone=127.0.[0..255].[1..5]`: an answer counts if each octet matches (a
//! number, or a `;`-separated list of numbers and `a..b` ranges in brackets).
//! Without a filter any answer in 127.0.0.0/8 counts.
//!
//! # Answers that never count
//!
//! Answers in 127.255.255.0/24 are DNSBL error codes (Spamhaus: query through
//! a public resolver, over the query limit): never a listing, whatever the
//! filter, and logged. A failed lookup (timeout, SERVFAIL) fails open: the
//! site does not list, and a warning is logged. NXDOMAIN is "not listed".
//!
//! A-record answers are cached for the instance, that is the SMTP
//! transaction, so `on_rcpt` for many recipients asks the DNS once.
//!
//! Security: the TXT record is the DNSBL operator's text and goes into the
//! reply; the SDK keeps it to one line of legal length.
//!
//! The component does not link std (`no_std_runtime!`): it imports only
//! postern's interfaces, which makes the instance each SMTP transaction
//! creates cheaper. It must be built apart from std plugins (see the SDK).

#![cfg_attr(target_arch = "wasm32", no_std)]

extern crate alloc;

use alloc::collections::BTreeMap;
use core::net::Ipv4Addr;

use postern_plugin_sdk::dns::{self, DnsError};
use postern_plugin_sdk::prelude::*;
use postern_plugin_sdk::{
    Client, Config, Context, Filter, Outcome, dnsbl_query, domain_of, is_dns_name, log,
    no_std_runtime,
};

/// The filter: the weighted sites, and the transaction's DNS answers.
#[derive(Debug)]
pub struct Rbl {
    sites: Vec<Site>,
    threshold: i64,
    /// A answers by query name: the IPv4 answers, error codes left out; an
    /// empty list for NXDOMAIN or a failed lookup.
    answers: BTreeMap<String, Vec<Ipv4Addr>>,
    /// The client's PTR names, once looked up (empty: unknown).
    ptr_names: Option<Vec<String>>,
    /// The client's forward-confirmed name, once looked up.
    verified_name: Option<Option<String>>,
}

/// A DNSBL site: `zone[=filter][*weight]`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Site {
    zone: String,
    filter: Option<ReplyFilter>,
    weight: i64,
}

/// A reply filter: the allowed values of each octet, as inclusive ranges.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ReplyFilter([Vec<(u8, u8)>; 4]);

/// A Postfix restriction word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Word {
    RblClient,
    RhsblClient,
    RhsblReverseClient,
    RhsblSender,
    RhsblHelo,
    DnswlClient,
    RhswlClient,
}

/// What a hook knows about the session.
struct Stage<'a> {
    client: &'a Client,
    helo: Option<&'a str>,
    sender: Option<&'a str>,
}

impl Filter for Rbl {
    fn configure(config: Config) -> Result<Self, String> {
        if let Some(key) = config
            .table()
            .keys()
            .find(|k| !matches!(k.as_str(), "sites" | "threshold"))
        {
            return Err(format!("unknown setting `{key}`"));
        }
        let sites = config
            .strings_or("sites", &[])?
            .iter()
            .map(|s| parse_site(s, true).map_err(|e| format!("setting `sites`: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let threshold = match config.get("threshold") {
            None => 1,
            Some(v) => v.as_i64().ok_or("setting `threshold` must be an integer")?,
        };
        Ok(Rbl {
            sites,
            threshold,
            answers: BTreeMap::new(),
            ptr_names: None,
            verified_name: None,
        })
    }

    fn on_connect(&mut self, cx: &Context) -> Outcome {
        self.evaluate_in(cx, None, None)
    }

    fn on_helo(&mut self, cx: &Context, helo: &str) -> Outcome {
        self.evaluate_in(cx, Some(helo), None)
    }

    fn on_mail(&mut self, cx: &Context, sender: &str) -> Outcome {
        self.evaluate_in(cx, cx.client().helo.as_deref(), Some(sender))
    }

    fn on_rcpt(&mut self, cx: &Context, _rcpt: &str) -> Outcome {
        let sender = cx.envelope().sender.as_str();
        self.evaluate_in(cx, cx.client().helo.as_deref(), Some(sender))
    }
}

postern_plugin_sdk::register!(Rbl);
// Without std: a fresh instance for every SMTP transaction costs less.
no_std_runtime!();

impl Rbl {
    /// Runs the step's words (`cx.args()`) for the client of `cx`, with the
    /// HELO name and sender this stage knows.
    fn evaluate_in(&mut self, cx: &Context, helo: Option<&str>, sender: Option<&str>) -> Outcome {
        let stage = Stage {
            client: cx.client(),
            helo,
            sender,
        };
        self.evaluate(&stage, cx.args())
    }

    fn evaluate(&mut self, stage: &Stage<'_>, args: &[String]) -> Outcome {
        if args.is_empty() {
            return self.score(&stage.client.ip);
        }
        let steps = match parse_args(args) {
            Ok(steps) => steps,
            Err(e) => {
                log::error(format!("bad arguments {args:?}: {e}"));
                return Outcome::defer(451, "4.3.5", "Server configuration error");
            }
        };
        for (word, site) in &steps {
            if let Some(out) = self.check(*word, site, stage) {
                return out;
            }
        }
        Outcome::cont()
    }

    /// One restriction: a reject if `site` lists the word's subject (an
    /// accept for the allow-list words).
    fn check(&mut self, word: Word, site: &Site, stage: &Stage<'_>) -> Option<Outcome> {
        let ip = stage.client.ip.as_str();
        let (class, what, query) = match word {
            Word::RblClient | Word::DnswlClient => {
                ("Client host", ip.to_owned(), dnsbl_query(ip, &site.zone)?)
            }
            Word::RhsblClient | Word::RhswlClient => {
                let name = self.verified_name(ip)?;
                let query = rhs_query(&name, &site.zone)?;
                ("Client host", name, query)
            }
            Word::RhsblReverseClient => {
                let name = self.client_name(ip)?;
                let query = rhs_query(&name, &site.zone)?;
                ("Client host", name, query)
            }
            Word::RhsblSender => {
                let domain = domain_of(stage.sender?);
                let query = rhs_query(&domain, &site.zone)?;
                ("Sender address", domain, query)
            }
            Word::RhsblHelo => {
                let helo = stage
                    .helo?
                    .trim()
                    .trim_end_matches('.')
                    .to_ascii_lowercase();
                let query = rhs_query(&helo, &site.zone)?;
                ("Helo command", helo, query)
            }
        };
        if !site.lists(self.lookup(&query, &site.zone)) {
            return None;
        }
        if matches!(word, Word::DnswlClient | Word::RhswlClient) {
            // Postfix's OK: the rest of the stage's chain is skipped. (It
            // cannot open a relay: postern refuses recipients outside its
            // domains after the chain, whatever it said.)
            log::info(format!("{class} [{what}] allow-listed by {}", site.zone));
            return Some(Outcome::accept());
        }
        let mut text = format!(
            "Service unavailable; {class} [{what}] blocked using {}",
            site.zone
        );
        // Postfix appends the TXT record, if any, as `; $rbl_reason`.
        if let Some(reason) = dns::lookup_txt(&query).ok().and_then(first_text) {
            text.push_str("; ");
            text.push_str(&reason);
        }
        Some(Outcome::reject(554, "5.7.1", text))
    }

    /// postscreen-style weighted scoring of the client IP.
    fn score(&mut self, ip: &str) -> Outcome {
        let sites = core::mem::take(&mut self.sites);
        let mut score = 0i64;
        let mut first: Option<&str> = None;
        for site in &sites {
            let Some(query) = dnsbl_query(ip, &site.zone) else {
                break;
            };
            if site.lists(self.lookup(&query, &site.zone)) {
                score = score.saturating_add(site.weight);
                if site.weight > 0 && first.is_none() {
                    first = Some(&site.zone);
                }
            }
        }
        let out = match first {
            Some(zone) if score >= self.threshold => Outcome::reject(
                554,
                "5.7.1",
                format!("Service unavailable; client [{ip}] blocked using {zone}"),
            ),
            _ => Outcome::cont(),
        };
        self.sites = sites;
        out
    }

    /// The A answers for `query` (cached), error codes and failures logged
    /// and left out.
    fn lookup(&mut self, query: &str, zone: &str) -> &[Ipv4Addr] {
        let key = query.to_ascii_lowercase();
        self.answers.entry(key).or_insert_with(|| {
            let answers = match dns::lookup_a(query) {
                Ok(answers) => answers,
                Err(DnsError::NotFound) => return Vec::new(),
                Err(DnsError::Temporary(why)) => {
                    log::warn(format!(
                        "{zone}: lookup of {query} failed ({why}); not checked (fail open)"
                    ));
                    return Vec::new();
                }
            };
            let mut kept = Vec::new();
            for answer in answers {
                match answer.trim().parse::<Ipv4Addr>() {
                    Ok(ip) if is_error_code(ip) => log::warn(format!(
                        "{zone}: answer {ip} to {query} is a DNSBL error code (public resolver \
                         or query limit?), not a listing"
                    )),
                    Ok(ip) => kept.push(ip),
                    Err(_) => {}
                }
            }
            kept
        })
    }

    /// The client's verified name, as Postfix's `reject_rhsbl_client` uses
    /// it: a PTR name whose A or AAAA records include the client's address;
    /// looked up once.
    fn verified_name(&mut self, ip: &str) -> Option<String> {
        if self.verified_name.is_none() {
            let verified = self.client_names(ip).iter().find(|name| {
                let forward = if ip.contains(':') {
                    dns::lookup_aaaa(name)
                } else {
                    dns::lookup_a(name)
                };
                forward.is_ok_and(|addrs| addrs.iter().any(|a| same_ip(a, ip)))
            });
            self.verified_name = Some(verified.cloned());
        }
        self.verified_name.clone().flatten()
    }

    /// The client's PTR names (empty when unknown or the lookup failed),
    /// looked up once.
    fn client_names(&mut self, ip: &str) -> &[String] {
        self.ptr_names
            .get_or_insert_with(|| match dns::lookup_ptr(ip) {
                Ok(names) => names
                    .into_iter()
                    .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
                    .filter(|n| !n.is_empty())
                    .collect(),
                Err(DnsError::NotFound) => Vec::new(),
                Err(DnsError::Temporary(why)) => {
                    log::warn(format!(
                        "PTR lookup of {ip} failed ({why}); the client's name is not checked \
                     (fail open)"
                    ));
                    Vec::new()
                }
            })
    }

    /// The client's reverse name: the first PTR name.
    fn client_name(&mut self, ip: &str) -> Option<String> {
        self.client_names(ip).first().cloned()
    }
}

impl Site {
    /// Whether the answers list the name: one matches the filter, or without
    /// one, is in 127.0.0.0/8. Error codes are already left out.
    fn lists(&self, answers: &[Ipv4Addr]) -> bool {
        answers.iter().any(|ip| match &self.filter {
            Some(filter) => filter.matches(*ip),
            None => ip.octets()[0] == 127,
        })
    }
}

impl ReplyFilter {
    fn matches(&self, ip: Ipv4Addr) -> bool {
        self.0
            .iter()
            .zip(ip.octets())
            .all(|(ranges, octet)| ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&octet)))
    }
}

/// 127.255.255.0/24: a DNSBL's refusal to answer, never a listing.
fn is_error_code(ip: Ipv4Addr) -> bool {
    matches!(ip.octets(), [127, 255, 255, _])
}

/// The name to look up for a domain under an RHSBL zone; `None` when the
/// subject is not a domain name (empty, an address literal, an IP address)
/// or the name would be too long.
fn rhs_query(domain: &str, zone: &str) -> Option<String> {
    let domain = domain.trim().trim_end_matches('.');
    if !is_dns_name(domain) || domain.parse::<core::net::IpAddr>().is_ok() {
        return None;
    }
    let query = format!("{domain}.{zone}");
    (query.len() <= 253).then_some(query)
}

/// Whether two textual IP addresses are the same address.
fn same_ip(a: &str, b: &str) -> bool {
    match (
        a.trim().parse::<core::net::IpAddr>(),
        b.trim().parse::<core::net::IpAddr>(),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// The first non-empty TXT record.
fn first_text(records: Vec<String>) -> Option<String> {
    records
        .into_iter()
        .map(|r| r.trim().to_owned())
        .find(|r| !r.is_empty())
}

/// Parses the step's arguments: restriction words, each with its site.
fn parse_args(args: &[String]) -> Result<Vec<(Word, Site)>, String> {
    let mut steps = Vec::new();
    let mut args = args.iter();
    while let Some(word) = args.next() {
        let kind = match word.to_ascii_lowercase().as_str() {
            "reject_rbl_client" => Word::RblClient,
            "reject_rhsbl_client" => Word::RhsblClient,
            "reject_rhsbl_reverse_client" => Word::RhsblReverseClient,
            "permit_dnswl_client" => Word::DnswlClient,
            "permit_rhswl_client" => Word::RhswlClient,
            "reject_rhsbl_sender" => Word::RhsblSender,
            "reject_rhsbl_helo" => Word::RhsblHelo,
            _ => return Err(format!("unknown restriction {word:?}")),
        };
        let site = args
            .next()
            .ok_or_else(|| format!("{word} needs a DNSBL site"))?;
        steps.push((kind, parse_site(site, false)?));
    }
    Ok(steps)
}

/// Parses `zone[=filter]`, and `[*weight]` when `weighted`.
fn parse_site(text: &str, weighted: bool) -> Result<Site, String> {
    let trimmed = text.trim();
    let (rest, weight) = match trimmed.rsplit_once('*') {
        Some((rest, w)) if weighted => {
            let weight = w
                .trim()
                .parse::<i64>()
                .map_err(|_| format!("{text:?}: weight {w:?} is not an integer"))?;
            (rest, weight)
        }
        Some(_) => return Err(format!("{text:?}: a weight is only for `sites`")),
        None => (trimmed, 1),
    };
    let (zone, filter) = match rest.split_once('=') {
        Some((zone, filter)) => (zone, Some(parse_filter(filter.trim())?)),
        None => (rest, None),
    };
    let zone = zone.trim().trim_end_matches('.').to_ascii_lowercase();
    if !is_dns_name(&zone) {
        return Err(format!("{text:?}: {zone:?} is not a DNS zone"));
    }
    Ok(Site {
        zone,
        filter,
        weight,
    })
}

/// Parses a reply filter: four octet patterns, each a number or a bracketed
/// `;`-separated list of numbers and `a..b` ranges.
fn parse_filter(text: &str) -> Result<ReplyFilter, String> {
    let bad = |why: &str| format!("reply filter {text:?}: {why}");
    let mut octets = Vec::with_capacity(4);
    let mut rest = text;
    loop {
        if octets.len() == 4 {
            return Err(bad("more than four octets"));
        }
        let after = if let Some(inner) = rest.strip_prefix('[') {
            let (set, after) = inner.split_once(']').ok_or_else(|| bad("unclosed `[`"))?;
            let mut ranges = Vec::new();
            for item in set.split(';') {
                let item = item.trim();
                let range = match item.split_once("..") {
                    Some((lo, hi)) => (octet(lo), octet(hi)),
                    None => (octet(item), octet(item)),
                };
                match range {
                    (Some(lo), Some(hi)) if lo <= hi => ranges.push((lo, hi)),
                    _ => return Err(bad(&format!("bad octet pattern {item:?}"))),
                }
            }
            octets.push(ranges);
            after
        } else {
            let (number, after) = rest.split_at(rest.find('.').unwrap_or(rest.len()));
            let n = octet(number).ok_or_else(|| bad(&format!("bad octet {number:?}")))?;
            octets.push(vec![(n, n)]);
            after
        };
        if after.is_empty() {
            break;
        }
        rest = after
            .strip_prefix('.')
            .ok_or_else(|| bad("octets must be separated by `.`"))?;
    }
    let octets: [Vec<(u8, u8)>; 4] = octets.try_into().map_err(|_| bad("needs four octets"))?;
    Ok(ReplyFilter(octets))
}

/// A decimal number from 0 to 255.
fn octet(text: &str) -> Option<u8> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests;
