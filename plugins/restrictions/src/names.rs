//! Names and the DNS: Postfix's hostname and address syntax checks, the
//! transaction's DNS cache, and the client's name (PTR, then the forward
//! lookup that confirms it, as smtpd's `smtpd_peer` does).
//!
//! In: names and addresses from the client; DNS answers through the `dns`
//! capability. Out: yes/no answers and lookup results; the DNS is asked at
//! most once per name and type in a transaction.
//!
//! Must not: query the DNS for a name that is not a host name.

use std::collections::HashMap;
use std::net::IpAddr;

use postern_plugin_sdk::dns::{self, DnsError};
use postern_plugin_sdk::log;

/// Postfix's `valid_hostname`: ASCII letters, digits, `-` and `_` in
/// dot-separated labels of at most 63 bytes, no label starting or ending in
/// `-`, at most 255 bytes, and not all-numeric.
pub fn valid_hostname(name: &str) -> bool {
    if name.is_empty() || name.len() > 255 {
        return false;
    }
    let mut non_numeric = false;
    for label in name.split('.') {
        if label.is_empty()
            || label.len() > 63
            || label.starts_with('-')
            || label.ends_with('-')
            || !label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return false;
        }
        non_numeric |= label.bytes().any(|b| !b.is_ascii_digit());
    }
    non_numeric
}

/// Postfix's `valid_hostaddr`: an IPv4 or IPv6 address (no brackets).
pub fn valid_hostaddr(text: &str) -> bool {
    text.parse::<IpAddr>().is_ok()
}

/// Postfix's `valid_mailhost_addr`: the inside of an address literal, an
/// IPv4 address or `IPv6:` and an IPv6 address (RFC 5321 §4.1.3).
pub fn valid_mailhost_addr(text: &str) -> bool {
    match text.get(..5) {
        Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => {
            text[5..].parse::<std::net::Ipv6Addr>().is_ok()
        }
        _ => text.parse::<std::net::Ipv4Addr>().is_ok(),
    }
}

/// Postfix's `dup_if_truncate`: one trailing dot goes, unless it is `..`.
pub fn truncate_dot(name: &str) -> &str {
    if name.len() > 1 && name.ends_with('.') && !name.ends_with("..") {
        &name[..name.len() - 1]
    } else {
        name
    }
}

/// The client address as Postfix prints it: IPv4-mapped IPv6 as IPv4, IPv6
/// compressed (RFC 5952), anything else as given.
pub fn canonical_ip(ip: &str) -> String {
    ip.trim()
        .parse::<IpAddr>()
        .map_or_else(|_| ip.trim().to_owned(), |ip| ip.to_canonical().to_string())
}

/// What a DNS lookup of a name for mail found (`dns_lookup_l` with several
/// types, stopping at the first answer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    /// A record of one of the types.
    Yes,
    /// The name has a null MX (RFC 7505): it accepts no mail.
    NullMx,
    /// No record of any type.
    No,
    /// No answer, and a lookup failed for now.
    Retry,
}

/// Record types asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Rr {
    A,
    Aaaa,
    Mx,
    Ptr,
}

/// How the client's name was found (smtpd's `SMTPD_PEER_CODE_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PeerStatus {
    Ok,
    /// A lookup failed for now.
    Temp,
    /// No PTR record, or not a valid host name.
    Perm,
    /// The name does not resolve back to the address.
    Forged,
}

/// The client's names: the verified name (`unknown` unless the PTR name
/// resolves back to the address) and the reverse name (the PTR name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub name: String,
    pub name_status: PeerStatus,
    pub reverse_name: String,
    pub reverse_status: PeerStatus,
}

/// The transaction's DNS answers.
#[derive(Debug, Default)]
pub struct DnsCache {
    records: HashMap<(Rr, String), Result<Vec<String>, DnsError>>,
}

impl DnsCache {
    /// The answer to a lookup of `name` (cached); MX answers are
    /// `"pref exchange"`.
    pub fn lookup(&mut self, rr: Rr, name: &str) -> Result<Vec<String>, DnsError> {
        let key = (rr, name.to_ascii_lowercase());
        if let Some(answer) = self.records.get(&key) {
            return answer.clone();
        }
        let answer = match rr {
            Rr::A => dns::lookup_a(name),
            Rr::Aaaa => dns::lookup_aaaa(name),
            Rr::Ptr => dns::lookup_ptr(name),
            Rr::Mx => dns::lookup_mx(name).map(|mx| {
                mx.into_iter()
                    .map(|(pref, exchange)| format!("{pref} {exchange}"))
                    .collect()
            }),
        };
        self.records.insert(key, answer.clone());
        answer
    }

    /// Looks `name` up as each of `types` in turn, stopping at the first
    /// that has records: Postfix's `dns_lookup_l` with `STOP_OK`.
    pub fn find(&mut self, name: &str, types: &[Rr]) -> Found {
        let mut retry = false;
        for &rr in types {
            match self.lookup(rr, name) {
                Ok(records) if rr == Rr::Mx && is_null_mx(&records) => return Found::NullMx,
                Ok(records) if !records.is_empty() => return Found::Yes,
                Ok(_) | Err(DnsError::NotFound) => {}
                Err(DnsError::Temporary(why)) => {
                    log::warn(format!("{name}: {rr:?} lookup failed: {why}"));
                    retry = true;
                }
            }
        }
        if retry { Found::Retry } else { Found::No }
    }

    /// The client's names, as smtpd finds them at connect: the first PTR
    /// name, which counts as the client's name only if it is a valid host
    /// name that resolves back to `ip`.
    pub fn peer(&mut self, ip: &str) -> Peer {
        let unknown = |status| Peer {
            name: "unknown".to_owned(),
            name_status: status,
            reverse_name: "unknown".to_owned(),
            reverse_status: status,
        };
        let Ok(addr) = ip.parse::<IpAddr>() else {
            return unknown(PeerStatus::Perm);
        };
        let reverse = match self.lookup(Rr::Ptr, ip) {
            Ok(names) => names
                .into_iter()
                .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
                .find(|n| !n.is_empty()),
            Err(DnsError::NotFound) => None,
            Err(DnsError::Temporary(why)) => {
                log::warn(format!("{ip}: PTR lookup failed: {why}"));
                return unknown(PeerStatus::Temp);
            }
        };
        let Some(reverse) = reverse.filter(|n| valid_hostname(n)) else {
            return unknown(PeerStatus::Perm);
        };
        let rr = if addr.is_ipv4() { Rr::A } else { Rr::Aaaa };
        let name_status = match self.lookup(rr, &reverse) {
            Ok(addrs) if addrs.iter().any(|a| a.trim().parse::<IpAddr>() == Ok(addr)) => {
                PeerStatus::Ok
            }
            Ok(_) | Err(DnsError::NotFound) => {
                log::warn(format!(
                    "hostname {reverse} does not resolve to address {ip}"
                ));
                PeerStatus::Forged
            }
            Err(DnsError::Temporary(why)) => {
                log::warn(format!(
                    "hostname {reverse} does not resolve to address {ip}: {why}"
                ));
                PeerStatus::Temp
            }
        };
        Peer {
            name: if name_status == PeerStatus::Ok {
                reverse.clone()
            } else {
                "unknown".to_owned()
            },
            name_status,
            reverse_name: reverse,
            reverse_status: PeerStatus::Ok,
        }
    }
}

/// RFC 7505: a single MX record whose exchange is the root (`.`).
fn is_null_mx(records: &[String]) -> bool {
    match records {
        [only] => {
            let exchange = only.split_once(' ').map_or(only.as_str(), |(_, e)| e);
            matches!(exchange.trim(), "" | ".")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostnames_as_postfix_checks_them() {
        for (name, ok) in [
            ("mail.example.org", true),
            ("localhost", true),
            ("a_b.example", true),
            ("xn--bcher-kva.example", true),
            ("", false),
            ("a..b", false),
            (".a", false),
            ("a.", false),
            ("-a.example", false),
            ("a-.example", false),
            ("a b", false),
            ("1.2.3.4", false),
            ("123", false),
            ("1.2.3.example", true),
            ("[1.2.3.4]", false),
        ] {
            assert_eq!(valid_hostname(name), ok, "{name:?}");
        }
        assert!(!valid_hostname(&format!("{}.example", "a".repeat(64))));
        assert!(valid_hostaddr("192.0.2.1") && valid_hostaddr("2001:db8::1"));
        assert!(!valid_hostaddr("[192.0.2.1]") && !valid_hostaddr("example"));
        assert!(valid_mailhost_addr("192.0.2.1"));
        assert!(valid_mailhost_addr("IPv6:2001:db8::1"));
        assert!(valid_mailhost_addr("ipv6:2001:db8::1"));
        assert!(!valid_mailhost_addr("2001:db8::1"));
        assert!(!valid_mailhost_addr("192.0.2"));
        assert_eq!(truncate_dot("a.example."), "a.example");
        assert_eq!(truncate_dot("a.."), "a..");
        assert_eq!(truncate_dot("."), ".");
        assert_eq!(canonical_ip("::ffff:192.0.2.7"), "192.0.2.7");
        assert_eq!(canonical_ip("2001:DB8:0::1"), "2001:db8::1");
        assert_eq!(canonical_ip("junk"), "junk");
    }

    #[test]
    fn null_mx() {
        assert!(is_null_mx(&["0 .".to_owned()]));
        assert!(is_null_mx(&["0 ".to_owned()]));
        assert!(!is_null_mx(&["10 mx.example".to_owned()]));
        assert!(!is_null_mx(&["0 .".to_owned(), "10 mx.example".to_owned()]));
        assert!(!is_null_mx(&[]));
    }
}
