use postern_plugin_sdk::log::Level;
use postern_plugin_sdk::serde_json::json;
use postern_plugin_sdk::{mock, reverse_ip};

use super::*;

const IP: &str = "192.0.2.7";
const Q: &str = "7.2.0.192.zen.test";

fn new_rbl() -> Rbl {
    mock::configure("{}").unwrap()
}

fn weighted(sites: &[&str], threshold: Option<i64>) -> Rbl {
    let mut table = json!({ "sites": sites });
    if let Some(t) = threshold {
        table["threshold"] = json!(t);
    }
    mock::configure(&table.to_string()).unwrap()
}

fn args(words: &str) -> Vec<String> {
    words.split_whitespace().map(str::to_owned).collect()
}

fn connect(rbl: &mut Rbl, ip: &str, words: &str) -> Outcome {
    rbl.on_connect(&mock::context(&mock::client(ip), None, &args(words)))
}

fn rcpt(rbl: &mut Rbl, client: &Client, sender: &str, words: &str) -> Outcome {
    let env = mock::envelope(sender, &[]);
    rbl.on_rcpt(
        &mock::context(client, Some(&env), &args(words)),
        "rcpt@example.org",
    )
}

fn reject(text: &str) -> Outcome {
    Outcome::reject(554, "5.7.1", text)
}

fn client_reject(zone: &str) -> Outcome {
    reject(&format!(
        "Service unavailable; Client host [{IP}] blocked using {zone}"
    ))
}

fn warnings() -> Vec<String> {
    mock::logs()
        .into_iter()
        .filter(|(level, _)| *level == Level::Warn)
        .map(|(_, line)| line)
        .collect()
}

#[test]
fn rbl_client_listed_with_txt_reason() {
    mock::dns_answer(Q, Ok(vec!["127.0.0.2"]));
    mock::dns_answer_txt(Q, Ok(vec!["https://zen.test/query/ip/192.0.2.7"]));
    let out = connect(&mut new_rbl(), IP, "reject_rbl_client zen.test");
    assert_eq!(
        out,
        reject(
            "Service unavailable; Client host [192.0.2.7] blocked using zen.test; \
             https://zen.test/query/ip/192.0.2.7"
        )
    );
    assert_eq!(mock::dns_queries(), [format!("A {Q}"), format!("TXT {Q}")]);
}

#[test]
fn without_txt_the_reply_has_no_reason() {
    mock::dns_answer(Q, Ok(vec!["127.0.0.2"]));
    mock::dns_answer_txt(Q, Ok(vec!["  "]));
    let out = connect(&mut new_rbl(), IP, "reject_rbl_client zen.test");
    assert_eq!(out, client_reject("zen.test"));
    // A failing TXT lookup only loses the reason.
    mock::dns_answer_txt(Q, Err(DnsError::Temporary("timeout".into())));
    let out = connect(&mut new_rbl(), IP, "reject_rbl_client zen.test");
    assert_eq!(out, client_reject("zen.test"));
}

#[test]
fn unlisted_client_continues_quietly() {
    assert!(connect(&mut new_rbl(), IP, "reject_rbl_client zen.test").is_continue());
    assert_eq!(mock::dns_queries(), [format!("A {Q}")]);
    assert!(mock::logs().is_empty());
}

/// Whether `filter` makes an answer `answer` a listing.
fn listed_with(filter: &str, answer: &str) -> bool {
    mock::reset();
    mock::dns_answer(Q, Ok(vec![answer]));
    let words = format!("reject_rbl_client zen.test{filter}");
    !connect(&mut new_rbl(), IP, &words).is_continue()
}

#[test]
fn reply_filters() {
    for (filter, answer, want) in [
        ("=127.0.0.2", "127.0.0.2", true),
        ("=127.0.0.2", "127.0.0.3", false),
        ("=127.0.0.[2..11]", "127.0.0.2", true),
        ("=127.0.0.[2..11]", "127.0.0.11", true),
        ("=127.0.0.[2..11]", "127.0.0.1", false),
        ("=127.0.0.[2..11]", "127.0.0.12", false),
        ("=127.0.0.[2;4;6]", "127.0.0.4", true),
        ("=127.0.0.[2;4;6]", "127.0.0.6", true),
        ("=127.0.0.[2;4;6]", "127.0.0.5", false),
        ("=127.0.0.[2;4..5]", "127.0.0.5", true),
        ("=127.0.[0..255].[1..5]", "127.0.200.5", true),
        ("=127.0.[0..255].[1..5]", "127.0.200.6", false),
        ("=127.0.[0..255].[1..5]", "127.1.0.1", false),
        // Without a filter: anything in 127.0.0.0/8.
        ("", "127.0.0.2", true),
        ("", "127.1.2.3", true),
        ("", "10.0.0.2", false),
        ("", "not-an-ip", false),
        // A filter may accept answers outside 127/8.
        ("=10.0.0.2", "10.0.0.2", true),
    ] {
        assert_eq!(listed_with(filter, answer), want, "{filter} with {answer}");
    }
}

#[test]
fn several_answers_count_if_one_matches() {
    mock::dns_answer(Q, Ok(vec!["127.0.0.1", "127.0.0.4"]));
    let out = connect(
        &mut new_rbl(),
        IP,
        "reject_rbl_client zen.test=127.0.0.[2;4]",
    );
    assert_eq!(out, client_reject("zen.test"));
}

#[test]
fn error_codes_never_count_and_are_logged() {
    for filter in [
        "",
        "=127.255.255.[0..255]",
        "=127.[0..255].[0..255].[0..255]",
    ] {
        mock::reset();
        mock::dns_answer(Q, Ok(vec!["127.255.255.254"]));
        let words = format!("reject_rbl_client zen.test{filter}");
        assert!(
            connect(&mut new_rbl(), IP, &words).is_continue(),
            "{filter}"
        );
        let warnings = warnings();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].starts_with("zen.test: answer 127.255.255.254 to 7.2.0.192.zen.test"),
            "{warnings:?}"
        );
    }
    // A real listing next to an error code still counts.
    mock::reset();
    mock::dns_answer(Q, Ok(vec!["127.255.255.252", "127.0.0.10"]));
    let out = connect(&mut new_rbl(), IP, "reject_rbl_client zen.test");
    assert_eq!(out, client_reject("zen.test"));
}

#[test]
fn dns_failures_fail_open_with_a_log_line() {
    mock::dns_answer(
        "7.2.0.192.down.test",
        Err(DnsError::Temporary("SERVFAIL".into())),
    );
    mock::dns_answer("7.2.0.192.up.test", Ok(vec!["127.0.0.2"]));
    let mut rbl = new_rbl();
    let out = connect(&mut rbl, IP, "reject_rbl_client down.test");
    assert!(out.is_continue());
    assert_eq!(
        warnings(),
        ["down.test: lookup of 7.2.0.192.down.test failed (SERVFAIL); not checked (fail open)"]
    );
    // The chain goes on to the next word.
    let out = connect(
        &mut rbl,
        IP,
        "reject_rbl_client down.test reject_rbl_client up.test",
    );
    assert_eq!(out, client_reject("up.test"));
}

#[test]
fn ipv6_clients_are_looked_up_by_nibbles() {
    let name = "1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.zen.test";
    mock::dns_answer(name, Ok(vec!["127.0.0.3"]));
    let out = connect(&mut new_rbl(), "2001:db8::1", "reject_rbl_client zen.test");
    assert_eq!(
        out,
        reject("Service unavailable; Client host [2001:db8::1] blocked using zen.test")
    );
    assert_eq!(mock::dns_queries()[0], format!("A {name}"));
    // An IPv4-mapped address is looked up as IPv4.
    mock::reset();
    mock::dns_answer(Q, Ok(vec!["127.0.0.2"]));
    let out = connect(
        &mut new_rbl(),
        "::ffff:192.0.2.7",
        "reject_rbl_client zen.test",
    );
    assert!(!out.is_continue());
}

#[test]
fn rhsbl_sender_uses_the_sender_domain() {
    mock::dns_answer("spam.example.dbl.test", Ok(vec!["127.0.1.2"]));
    mock::dns_answer_txt("spam.example.dbl.test", Ok(vec!["see dbl"]));
    let want = reject(
        "Service unavailable; Sender address [spam.example] blocked using dbl.test; see dbl",
    );
    let client = mock::client(IP);
    let mut rbl = new_rbl();
    let words = args("reject_rhsbl_sender dbl.test");
    assert_eq!(
        rbl.on_mail(&mock::context(&client, None, &words), "u@Spam.Example."),
        want
    );
    assert_eq!(
        rcpt(
            &mut rbl,
            &client,
            "u@spam.example",
            "reject_rhsbl_sender dbl.test"
        ),
        want
    );
    // The null sender and a domainless sender are not checked, nor is the
    // sender before MAIL.
    mock::reset();
    assert!(
        rbl.on_mail(&mock::context(&client, None, &words), "")
            .is_continue()
    );
    assert!(
        rbl.on_mail(&mock::context(&client, None, &words), "postmaster")
            .is_continue()
    );
    assert!(
        rbl.on_connect(&mock::context(&client, None, &words))
            .is_continue()
    );
    assert!(
        rbl.on_helo(&mock::context(&client, None, &words), "spam.example")
            .is_continue()
    );
    assert!(mock::dns_queries().is_empty());
}

#[test]
fn rhsbl_helo_uses_the_helo_name() {
    mock::dns_answer("bad.example.dbl.test", Ok(vec!["127.0.1.2"]));
    let want = reject("Service unavailable; Helo command [bad.example] blocked using dbl.test");
    let words = args("reject_rhsbl_helo dbl.test");
    let mut rbl = new_rbl();
    let client = mock::client(IP);
    assert_eq!(
        rbl.on_helo(&mock::context(&client, None, &words), "Bad.Example"),
        want
    );
    let helod = Client {
        helo: Some("bad.example".into()),
        ..mock::client(IP)
    };
    assert_eq!(
        rbl.on_mail(&mock::context(&helod, None, &words), "u@x.test"),
        want
    );
    assert_eq!(
        rcpt(&mut rbl, &helod, "", "reject_rhsbl_helo dbl.test"),
        want
    );
    // No HELO yet, address literals and bare IPs are not checked.
    mock::reset();
    assert!(
        rbl.on_connect(&mock::context(&client, None, &words))
            .is_continue()
    );
    assert!(
        rbl.on_mail(&mock::context(&client, None, &words), "u@x.test")
            .is_continue()
    );
    for helo in ["[192.0.2.7]", "192.0.2.7", "", "two words"] {
        assert!(
            rbl.on_helo(&mock::context(&client, None, &words), helo)
                .is_continue(),
            "{helo}"
        );
    }
    assert!(mock::dns_queries().is_empty());
}

#[test]
fn rhsbl_reverse_client_uses_the_first_ptr_name_and_rhsbl_client_the_verified_one() {
    mock::dns_answer_ptr(IP, Ok(vec!["Mail.Bad.Example.", "other.example"]));
    mock::dns_answer("mail.bad.example.dbl.test", Ok(vec!["127.0.1.2"]));
    mock::dns_answer("other.example.dbl.test", Ok(vec!["127.0.1.2"]));
    // Only other.example resolves back to the client.
    mock::dns_answer("other.example", Ok(vec![IP]));
    let mut rbl = new_rbl();
    let out = connect(&mut rbl, IP, "reject_rhsbl_client dbl.test");
    assert_eq!(
        out,
        reject("Service unavailable; Client host [other.example] blocked using dbl.test")
    );
    let mut rbl = new_rbl();
    let out = connect(&mut rbl, IP, "reject_rhsbl_reverse_client dbl.test");
    assert_eq!(
        out,
        reject("Service unavailable; Client host [mail.bad.example] blocked using dbl.test")
    );
    // The name is looked up once per transaction.
    mock::reset();
    mock::dns_answer_ptr(IP, Ok(vec!["mail.bad.example"]));
    mock::dns_answer("mail.bad.example.dbl.test", Ok(vec!["127.0.1.2"]));
    let mut rbl = new_rbl();
    for _ in 0..2 {
        let out = connect(&mut rbl, IP, "reject_rhsbl_reverse_client dbl.test");
        assert!(!out.is_continue());
    }
    let ptrs = mock::dns_queries()
        .iter()
        .filter(|q| q.starts_with("PTR "))
        .count();
    assert_eq!(ptrs, 1);
    // Both names come from the same PTR lookup.
    mock::reset();
    mock::dns_answer_ptr(IP, Ok(vec!["mail.bad.example"]));
    let mut rbl = new_rbl();
    let words = "reject_rhsbl_reverse_client dbl.test reject_rhsbl_client dbl.test";
    assert!(connect(&mut rbl, IP, words).is_continue());
    let ptrs = mock::dns_queries()
        .iter()
        .filter(|q| q.starts_with("PTR "))
        .count();
    assert_eq!(ptrs, 1);
    // Without a name that resolves back, reject_rhsbl_client checks nothing.
    assert!(connect(&mut new_rbl(), IP, "reject_rhsbl_client dbl.test").is_continue());
}

#[test]
fn allow_lists_accept_and_end_the_step() {
    mock::dns_answer(
        &format!("{}.wl.test", reverse_ip(IP).expect("ip")),
        Ok(vec!["127.0.10.0"]),
    );
    mock::dns_answer(
        &format!("{}.zen.test", reverse_ip(IP).expect("ip")),
        Ok(vec!["127.0.0.2"]),
    );
    let mut rbl = new_rbl();
    assert_eq!(
        connect(
            &mut rbl,
            IP,
            "permit_dnswl_client wl.test=127.0.[0..255].[0..255] reject_rbl_client zen.test"
        ),
        Outcome::accept()
    );
    // Not on the allow list (the filter excludes the answer): the block list decides.
    let mut rbl = new_rbl();
    assert_eq!(
        connect(
            &mut rbl,
            IP,
            "permit_dnswl_client wl.test=127.0.10.1 reject_rbl_client zen.test"
        ),
        client_reject("zen.test")
    );
    // By verified name.
    mock::dns_answer_ptr(IP, Ok(vec!["mx.good.example"]));
    mock::dns_answer("mx.good.example", Ok(vec![IP]));
    mock::dns_answer("mx.good.example.rhswl.test", Ok(vec!["127.0.0.2"]));
    assert_eq!(
        connect(
            &mut new_rbl(),
            IP,
            "permit_rhswl_client rhswl.test reject_rbl_client zen.test"
        ),
        Outcome::accept()
    );
}

#[test]
fn rhsbl_client_without_a_name_is_not_checked() {
    assert!(connect(&mut new_rbl(), IP, "reject_rhsbl_client dbl.test").is_continue());
    assert_eq!(mock::dns_queries(), [format!("PTR {IP}")]);
    assert!(mock::logs().is_empty());

    mock::reset();
    mock::dns_answer_ptr(IP, Err(DnsError::Temporary("timeout".into())));
    assert!(connect(&mut new_rbl(), IP, "reject_rhsbl_client dbl.test").is_continue());
    assert_eq!(mock::dns_queries(), [format!("PTR {IP}")]);
    assert_eq!(
        warnings(),
        [format!(
            "PTR lookup of {IP} failed (timeout); the client's name is not checked (fail open)"
        )]
    );
}

#[test]
fn words_are_evaluated_in_order_and_the_first_listing_wins() {
    let words = "reject_rbl_client zen.test=127.0.0.[2..11] reject_rhsbl_sender dbl.test";
    mock::dns_answer("spam.example.dbl.test", Ok(vec!["127.0.1.2"]));
    let client = mock::client(IP);
    let mut rbl = new_rbl();
    assert_eq!(
        rcpt(&mut rbl, &client, "u@spam.example", words),
        reject("Service unavailable; Sender address [spam.example] blocked using dbl.test")
    );
    assert_eq!(
        mock::dns_queries(),
        [
            format!("A {Q}"),
            "A spam.example.dbl.test".to_owned(),
            "TXT spam.example.dbl.test".to_owned()
        ]
    );
    // Both listed: the client word comes first.
    mock::reset();
    mock::dns_answer("spam.example.dbl.test", Ok(vec!["127.0.1.2"]));
    mock::dns_answer(Q, Ok(vec!["127.0.0.4"]));
    assert_eq!(
        rcpt(&mut new_rbl(), &client, "u@spam.example", words),
        client_reject("zen.test")
    );
    // At connect only the client word has its data.
    mock::reset();
    assert!(connect(&mut new_rbl(), IP, words).is_continue());
    assert_eq!(mock::dns_queries(), [format!("A {Q}")]);
}

#[test]
fn answers_are_cached_for_the_transaction() {
    let client = mock::client(IP);
    let mut rbl = new_rbl();
    for _ in 0..3 {
        assert!(rcpt(&mut rbl, &client, "", "reject_rbl_client zen.test").is_continue());
    }
    assert_eq!(mock::dns_queries(), [format!("A {Q}")]);
}

#[test]
fn bad_arguments_are_a_configuration_error() {
    for (words, why) in [
        ("reject_rbl_client", "reject_rbl_client needs a DNSBL site"),
        (
            "permit_mynetworks",
            "unknown restriction \"permit_mynetworks\"",
        ),
        (
            "reject_rbl_client two..dots",
            "\"two..dots\" is not a DNS zone",
        ),
        (
            "reject_rbl_client zen.test*3",
            "a weight is only for `sites`",
        ),
        ("reject_rbl_client zen.test=127.0.0", "needs four octets"),
        ("reject_rbl_client zen.test=127.0.0.[2..", "unclosed `[`"),
        (
            "reject_rbl_client zen.test=127.0.0.[5..2]",
            "bad octet pattern \"5..2\"",
        ),
        (
            "reject_rbl_client zen.test=127.0.0.256",
            "bad octet \"256\"",
        ),
        (
            "reject_rbl_client zen.test=127.0.0.1.1",
            "more than four octets",
        ),
    ] {
        mock::reset();
        let out = connect(&mut new_rbl(), IP, words);
        assert_eq!(
            out,
            Outcome::defer(451, "4.3.5", "Server configuration error"),
            "{words}"
        );
        let logs = mock::logs();
        assert_eq!(logs.len(), 1, "{words}");
        assert_eq!(logs[0].0, Level::Error);
        assert!(logs[0].1.contains(why), "{words}: {:?}", logs[0].1);
        assert!(mock::dns_queries().is_empty(), "{words}");
    }
}

#[test]
fn filters_parse() {
    let f = parse_filter("127.0.[0..255].[1;3..5]").unwrap();
    assert_eq!(
        f,
        ReplyFilter([
            vec![(127, 127)],
            vec![(0, 0)],
            vec![(0, 255)],
            vec![(1, 1), (3, 5)]
        ])
    );
    let site = parse_site(" Zen.Test.=127.0.0.2*-5 ", true).unwrap();
    assert_eq!((site.zone.as_str(), site.weight), ("zen.test", -5));
    assert!(site.filter.is_some());
    assert_eq!(parse_site("zen.test", true).unwrap().weight, 1);
}

#[test]
fn weighted_scoring() {
    let sites = ["zen.test*3", "bl.test=127.0.0.2*2", "allow.test*-5"];
    let bl = "7.2.0.192.bl.test";
    let allow = "7.2.0.192.allow.test";
    let score = |answers: &[(&str, &str)]| {
        mock::reset();
        for (name, a) in answers {
            mock::dns_answer(name, Ok(vec![*a]));
        }
        connect(&mut weighted(&sites, Some(3)), IP, "")
    };
    let blocked = |zone: &str| {
        reject(&format!(
            "Service unavailable; client [{IP}] blocked using {zone}"
        ))
    };
    // 3 >= 3.
    assert_eq!(score(&[(Q, "127.0.0.2")]), blocked("zen.test"));
    assert_eq!(
        mock::dns_queries(),
        [format!("A {Q}"), format!("A {bl}"), format!("A {allow}")]
    );
    // 2 < 3.
    assert!(score(&[(bl, "127.0.0.2")]).is_continue());
    // The filter: 127.0.0.3 is not a listing on bl.test.
    assert!(score(&[(bl, "127.0.0.3")]).is_continue());
    // 5, named after the first listing site.
    assert_eq!(
        score(&[(bl, "127.0.0.2"), (Q, "127.0.0.4")]),
        blocked("zen.test")
    );
    // 3 + 2 - 5 = 0: the allow list wins.
    assert!(score(&[(bl, "127.0.0.2"), (Q, "127.0.0.4"), (allow, "127.0.0.2")]).is_continue());
    // Error codes count for nothing.
    assert!(score(&[(Q, "127.255.255.254")]).is_continue());
    assert_eq!(warnings().len(), 1);
}

#[test]
fn weighted_scoring_names_the_first_positive_site_and_fails_open() {
    mock::dns_answer("7.2.0.192.a.test", Ok(vec!["127.0.0.2"]));
    mock::dns_answer("7.2.0.192.b.test", Ok(vec!["127.0.0.2"]));
    mock::dns_answer(
        "7.2.0.192.c.test",
        Err(DnsError::Temporary("SERVFAIL".into())),
    );
    // Default threshold 1; a.test is an allow list (-1), b.test lists (+2).
    let mut rbl = weighted(&["a.test*-1", "c.test*5", "b.test*2"], None);
    assert_eq!(
        connect(&mut rbl, IP, ""),
        reject("Service unavailable; client [192.0.2.7] blocked using b.test")
    );
    assert_eq!(
        warnings(),
        ["c.test: lookup of 7.2.0.192.c.test failed (SERVFAIL); not checked (fail open)"]
    );
    // All hooks score; the answers are cached.
    let client = mock::client(IP);
    assert!(
        !rbl.on_helo(&mock::context(&client, None, &[]), "h.test")
            .is_continue()
    );
    assert!(
        !rbl.on_mail(&mock::context(&client, None, &[]), "")
            .is_continue()
    );
    assert!(!rcpt(&mut rbl, &client, "", "").is_continue());
    assert_eq!(mock::dns_queries().len(), 3);
}

#[test]
fn without_args_or_sites_the_plugin_continues() {
    assert!(connect(&mut new_rbl(), IP, "").is_continue());
    assert!(mock::dns_queries().is_empty());
}

#[test]
fn configuration_errors_name_the_setting() {
    for (json, err) in [
        (r#"{"zones": ["x"]}"#, "unknown setting `zones`"),
        (
            r#"{"sites": 3}"#,
            "setting `sites` must be a list of strings",
        ),
        (
            r#"{"sites": ["zen.test*x"]}"#,
            "setting `sites`: \"zen.test*x\": weight \"x\" is not an integer",
        ),
        (
            r#"{"sites": ["zen.test=127.0.0"]}"#,
            "setting `sites`: reply filter \"127.0.0\": needs four octets",
        ),
        (
            r#"{"threshold": "3"}"#,
            "setting `threshold` must be an integer",
        ),
    ] {
        assert_eq!(mock::configure::<Rbl>(json).unwrap_err(), err, "{json}");
    }
    let rbl = weighted(&["zen.test"], None);
    assert_eq!(rbl.threshold, 1);
}
