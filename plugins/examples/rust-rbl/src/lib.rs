//! An example postern plugin: reject clients listed in DNS blocklists, as
//! Postfix's `reject_rbl_client` does.
//!
//! Settings (the plugin's table in `postern.toml`; it needs the `dns` and
//! `log` capabilities):
//!
//! ```toml
//! zones = ["zen.spamhaus.org", "bl.spamcop.net"]
//! ```
//!
//! At connect, the client's address is looked up under each zone in turn
//! (`7.2.0.192.zen.spamhaus.org` for 192.0.2.7; IPv6 by nibbles). The first
//! zone that lists it rejects the session with Postfix's reply:
//!
//! ```text
//! 554 5.7.1 Service unavailable; Client host [192.0.2.7] blocked using zen.spamhaus.org; <TXT record>
//! ```
//!
//! Answers in 127.255.255.0/24 never count: DNSBLs use them to refuse a query
//! (Spamhaus: from a public resolver, or too many), not to list an address;
//! they are logged. A failed lookup does not block either (fail open, like
//! Postfix) and is logged. Clients are checked whatever their origin: put the
//! plugin after whatever permits `mynetworks` in the chain.
//!
//! Security: the TXT record is the DNSBL operator's text and goes into the
//! reply; the SDK keeps it to one line of legal length.

use std::net::Ipv4Addr;

use postern_plugin_sdk::dns::{self, DnsError};
use postern_plugin_sdk::{
    Config, Context, Filter, Outcome, dnsbl_query, is_dns_name, log, register,
};

/// The filter: the DNSBL zones, in the order they are asked.
#[derive(Debug)]
pub struct Rbl {
    zones: Vec<String>,
}

impl Filter for Rbl {
    fn configure(config: Config) -> Result<Self, String> {
        let mut zones = Vec::new();
        for zone in config.strings("zones")? {
            let zone = zone.trim().trim_end_matches('.').to_ascii_lowercase();
            if !is_dns_name(&zone) {
                return Err(format!("setting `zones`: {zone:?} is not a DNS zone"));
            }
            zones.push(zone);
        }
        if zones.is_empty() {
            return Err("setting `zones` lists no DNSBL zone".to_owned());
        }
        Ok(Rbl { zones })
    }

    fn on_connect(&mut self, cx: &Context) -> Outcome {
        let ip = &cx.client().ip;
        self.zones
            .iter()
            .find_map(|zone| check(ip, zone))
            .unwrap_or_else(Outcome::cont)
    }
}

register!(Rbl);

/// Looks `ip` up in `zone`: a reject if it is listed there.
fn check(ip: &str, zone: &str) -> Option<Outcome> {
    // Not an IP address (the host always gives one): nothing to look up.
    let query = dnsbl_query(ip, zone)?;
    let answers = match dns::lookup_a(&query) {
        Ok(answers) => answers,
        Err(DnsError::NotFound) => return None,
        Err(DnsError::Temporary(why)) => {
            log::warn(format!(
                "{zone}: lookup of {query} failed ({why}); client [{ip}] not checked"
            ));
            return None;
        }
    };
    if let Some(refusal) = answers.iter().find(|a| is_refusal(a)) {
        log::warn(format!(
            "{zone}: answer {refusal} to {query} means the DNSBL refused the query \
             (public resolver or query limit?); client [{ip}] not checked"
        ));
    }
    if !answers.iter().any(|a| is_listing(a)) {
        return None;
    }
    let mut text = format!("Service unavailable; Client host [{ip}] blocked using {zone}");
    // Postfix appends the TXT record, if any, as `; reason` ($rbl_reason).
    if let Some(reason) = dns::lookup_txt(&query).ok().and_then(first_text) {
        text.push_str("; ");
        text.push_str(&reason);
    }
    Some(Outcome::reject(554, "5.7.1", text))
}

/// The first non-empty TXT record.
fn first_text(records: Vec<String>) -> Option<String> {
    records
        .into_iter()
        .map(|r| r.trim().to_owned())
        .find(|r| !r.is_empty())
}

/// Whether an A answer lists the address: an IPv4 address outside
/// 127.255.255.0/24.
fn is_listing(answer: &str) -> bool {
    answer
        .parse::<Ipv4Addr>()
        .is_ok_and(|ip| !is_refusal_ip(ip))
}

/// Whether an A answer is a DNSBL's refusal to answer (127.255.255.0/24).
fn is_refusal(answer: &str) -> bool {
    answer.parse::<Ipv4Addr>().is_ok_and(is_refusal_ip)
}

fn is_refusal_ip(ip: Ipv4Addr) -> bool {
    matches!(ip.octets(), [127, 255, 255, _])
}

#[cfg(test)]
mod tests {
    use postern_plugin_sdk::log::Level;
    use postern_plugin_sdk::{Verdict, mock};

    use super::*;

    fn rbl(zones: &[&str]) -> Rbl {
        let json = postern_plugin_sdk::serde_json::json!({ "zones": zones });
        mock::configure(&json.to_string()).unwrap()
    }

    fn connect(rbl: &mut Rbl, ip: &str) -> Outcome {
        rbl.on_connect(&mock::context(&mock::client(ip), None, &[]))
    }

    fn reject(text: &str) -> Outcome {
        Outcome::reject(554, "5.7.1", text)
    }

    #[test]
    fn a_listed_client_is_rejected_with_the_txt_reason() {
        mock::dns_answer("7.2.0.192.zen.test", Ok(vec!["127.0.0.2", "127.0.0.4"]));
        mock::dns_answer_txt(
            "7.2.0.192.zen.test",
            Ok(vec!["https://zen.test/query/ip/192.0.2.7"]),
        );
        let out = connect(&mut rbl(&["zen.test"]), "192.0.2.7");
        assert_eq!(
            out,
            reject(
                "Service unavailable; Client host [192.0.2.7] blocked using zen.test; \
                 https://zen.test/query/ip/192.0.2.7"
            )
        );
        assert_eq!(
            mock::dns_queries(),
            ["A 7.2.0.192.zen.test", "TXT 7.2.0.192.zen.test"]
        );
    }

    #[test]
    fn without_a_txt_record_the_reply_has_no_reason() {
        mock::dns_answer("7.2.0.192.zen.test", Ok(vec!["127.0.0.2"]));
        mock::dns_answer_txt("7.2.0.192.zen.test", Ok(vec!["", "  "]));
        let out = connect(&mut rbl(&["zen.test"]), "192.0.2.7");
        assert_eq!(
            out,
            reject("Service unavailable; Client host [192.0.2.7] blocked using zen.test")
        );
    }

    #[test]
    fn zones_are_asked_in_order_until_one_lists() {
        mock::dns_answer("7.2.0.192.two.test", Ok(vec!["127.0.0.3"]));
        let mut rbl = rbl(&["one.test", "TWO.test.", "three.test"]);
        let out = connect(&mut rbl, "192.0.2.7");
        assert_eq!(
            out,
            reject("Service unavailable; Client host [192.0.2.7] blocked using two.test")
        );
        assert_eq!(
            mock::dns_queries(),
            [
                "A 7.2.0.192.one.test",
                "A 7.2.0.192.two.test",
                "TXT 7.2.0.192.two.test"
            ]
        );
    }

    #[test]
    fn an_unlisted_client_continues() {
        let out = connect(&mut rbl(&["one.test", "two.test"]), "192.0.2.8");
        assert!(out.is_continue());
        assert_eq!(
            mock::dns_queries(),
            ["A 8.2.0.192.one.test", "A 8.2.0.192.two.test"]
        );
        assert!(mock::logs().is_empty());
    }

    #[test]
    fn ipv6_clients_are_looked_up_by_nibbles() {
        let name = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.v6.test";
        mock::dns_answer(name, Ok(vec!["127.0.0.2"]));
        let out = connect(&mut rbl(&["v6.test"]), "2001:db8::1");
        assert_eq!(
            out,
            reject("Service unavailable; Client host [2001:db8::1] blocked using v6.test")
        );
    }

    #[test]
    fn refusal_answers_never_count_and_are_logged() {
        mock::dns_answer("7.2.0.192.zen.test", Ok(vec!["127.255.255.254"]));
        assert!(connect(&mut rbl(&["zen.test"]), "192.0.2.7").is_continue());
        let logs = mock::logs();
        assert_eq!(logs.len(), 1);
        assert_eq!(logs[0].0, Level::Warn);
        assert!(
            logs[0]
                .1
                .starts_with("zen.test: answer 127.255.255.254 to 7.2.0.192.zen.test")
        );

        // A real listing next to a refusal still counts.
        mock::dns_answer(
            "7.2.0.192.zen.test",
            Ok(vec!["127.255.255.252", "127.0.0.10"]),
        );
        assert!(!connect(&mut rbl(&["zen.test"]), "192.0.2.7").is_continue());
    }

    #[test]
    fn dns_failures_fail_open_with_a_log_line() {
        mock::dns_answer(
            "7.2.0.192.down.test",
            Err(DnsError::Temporary("SERVFAIL".into())),
        );
        mock::dns_answer("7.2.0.192.up.test", Ok(vec!["127.0.0.2"]));
        let mut rbl = rbl(&["down.test", "up.test"]);
        let out = connect(&mut rbl, "192.0.2.7");
        assert_eq!(
            out,
            reject("Service unavailable; Client host [192.0.2.7] blocked using up.test")
        );
        assert_eq!(
            mock::logs(),
            [(
                Level::Warn,
                "down.test: lookup of 7.2.0.192.down.test failed (SERVFAIL); client [192.0.2.7] \
                 not checked"
                    .to_owned()
            )]
        );
        // A failing TXT lookup only loses the reason.
        mock::reset();
        mock::dns_answer("7.2.0.192.up.test", Ok(vec!["127.0.0.2"]));
        mock::dns_answer_txt(
            "7.2.0.192.up.test",
            Err(DnsError::Temporary("timeout".into())),
        );
        assert_eq!(
            connect(&mut rbl, "192.0.2.7").verdict,
            Verdict::reject(
                554,
                "5.7.1",
                "Service unavailable; Client host [192.0.2.7] blocked using up.test"
            )
        );
    }

    #[test]
    fn a_client_without_an_ip_address_is_not_looked_up() {
        assert!(connect(&mut rbl(&["zen.test"]), "unknown").is_continue());
        assert!(mock::dns_queries().is_empty());
    }

    #[test]
    fn configuration_errors_name_the_setting() {
        for (json, err) in [
            ("{}", "missing setting `zones`"),
            (r#"{"zones": []}"#, "setting `zones` lists no DNSBL zone"),
            (
                r#"{"zones": 3}"#,
                "setting `zones` must be a list of strings",
            ),
            (
                r#"{"zones": ["ok.test", "two words"]}"#,
                "setting `zones`: \"two words\" is not a DNS zone",
            ),
            (
                r#"{"zones": ["a..test"]}"#,
                "setting `zones`: \"a..test\" is not a DNS zone",
            ),
        ] {
            assert_eq!(mock::configure::<Rbl>(json).unwrap_err(), err, "{json}");
        }
        // A single zone may be given as a string.
        let rbl: Rbl = mock::configure(r#"{"zones": "Zen.Test."}"#).unwrap();
        assert_eq!(rbl.zones, ["zen.test"]);
    }
}
