//! Address helpers: IP addresses as DNSBLs want them, mail addresses split.
//!
//! In: strings from the host (client IPs, envelope addresses). Out: borrowed
//! parts or new strings; never a panic, whatever the input.

use core::net::IpAddr;

use crate::prelude::*;

/// The labels of a reverse DNS name for `ip`, as DNSBLs and PTR lookups use
/// them: `"192.0.2.7"` gives `"7.2.0.192"`; an IPv6 address gives its 32
/// nibbles, lowest first (RFC 3596 §2.5). An IPv4-mapped IPv6 address
/// (`::ffff:192.0.2.7`, what a dual-stack listener reports) counts as IPv4.
/// `None` if `ip` is not an IP address.
pub fn reverse_ip(ip: &str) -> Option<String> {
    let ip: IpAddr = ip.trim().parse().ok()?;
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            let [a, b, c, d] = v4.octets();
            Some(format!("{d}.{c}.{b}.{a}"))
        }
        IpAddr::V6(v6) => {
            let nibbles: Vec<String> = v6
                .octets()
                .iter()
                .rev()
                .flat_map(|byte| [byte & 0x0f, byte >> 4])
                .map(|nibble| format!("{nibble:x}"))
                .collect();
            Some(nibbles.join("."))
        }
    }
}

/// The name to look up for `ip` in the DNS blocklist `zone`:
/// `dnsbl_query("192.0.2.7", "zen.test")` is `"7.2.0.192.zen.test"`.
/// `None` if `ip` is not an IP address or `zone` is empty.
pub fn dnsbl_query(ip: &str, zone: &str) -> Option<String> {
    let zone = zone.trim().trim_matches('.');
    if zone.is_empty() {
        return None;
    }
    reverse_ip(ip).map(|reversed| format!("{reversed}.{zone}"))
}

/// Whether `name` can be looked up as a DNS name: letters, digits, `-` and
/// `_` in dot-separated labels of 1 to 63 bytes, at most 253 bytes in all
/// (for a DNSBL zone, or a domain to look up under one).
pub fn is_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// Splits a mail address at its last `@` into local part and domain:
/// `("user+tag", "example.org")`. Without an `@` (`postmaster`, or the null
/// sender `""`) the domain is empty. Angle brackets are not expected: the host
/// passes bare addresses.
pub fn split_address(address: &str) -> (&str, &str) {
    // The last `@`: a quoted local part may contain one (RFC 5321 §4.1.2).
    address.rsplit_once('@').unwrap_or((address, ""))
}

/// The domain of a mail address, lower case, without a trailing dot; empty if
/// there is none (see [`split_address`]).
pub fn domain_of(address: &str) -> String {
    split_address(address)
        .1
        .trim_end_matches('.')
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverses_ipv4_and_ipv6() {
        for (ip, want) in [
            ("192.0.2.7", Some("7.2.0.192")),
            (" 127.0.0.2 ", Some("2.0.0.127")),
            ("::ffff:192.0.2.7", Some("7.2.0.192")),
            (
                "2001:db8::1",
                Some("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2"),
            ),
            (
                "2001:DB8:1234:5678:9abc:def0:1:ff",
                Some("f.f.0.0.1.0.0.0.0.f.e.d.c.b.a.9.8.7.6.5.4.3.2.1.8.b.d.0.1.0.0.2"),
            ),
            ("", None),
            ("192.0.2", None),
            ("192.0.2.256", None),
            ("[192.0.2.7]", None),
            ("example.org", None),
        ] {
            assert_eq!(reverse_ip(ip).as_deref(), want, "{ip:?}");
        }
    }

    #[test]
    fn builds_dnsbl_queries() {
        assert_eq!(
            dnsbl_query("192.0.2.7", "zen.test").as_deref(),
            Some("7.2.0.192.zen.test")
        );
        assert_eq!(
            dnsbl_query("192.0.2.7", "zen.test.").as_deref(),
            Some("7.2.0.192.zen.test")
        );
        assert_eq!(dnsbl_query("192.0.2.7", ""), None);
        assert_eq!(dnsbl_query("nonsense", "zen.test"), None);
        let v6 = dnsbl_query("2001:db8::2", "v6.test").unwrap();
        assert!(
            v6.starts_with("2.0.0.0.") && v6.ends_with(".8.b.d.0.1.0.0.2.v6.test"),
            "{v6}"
        );
    }

    #[test]
    fn splits_addresses() {
        for (addr, local, domain) in [
            ("user@example.org", "user", "example.org"),
            ("user+tag@Example.ORG", "user+tag", "Example.ORG"),
            ("\"a@b\"@example.org", "\"a@b\"", "example.org"),
            ("postmaster", "postmaster", ""),
            ("", "", ""),
            ("@example.org", "", "example.org"),
            ("user@", "user", ""),
        ] {
            assert_eq!(split_address(addr), (local, domain), "{addr:?}");
        }
        assert_eq!(domain_of("User@Example.ORG."), "example.org");
        assert_eq!(domain_of("postmaster"), "");
    }

    #[test]
    fn dns_names() {
        for ok in ["zen.spamhaus.org", "a", "_dmarc.example.org", "x-y.test"] {
            assert!(is_dns_name(ok), "{ok}");
        }
        let long_label = "a".repeat(64);
        let long_name = ["a"; 127].join(".") + ".ab";
        for bad in [
            "",
            "a..b",
            ".a",
            "a b",
            "bad!.test",
            &long_label,
            &long_name,
        ] {
            assert!(!is_dns_name(bad), "{bad}");
        }
    }
}
