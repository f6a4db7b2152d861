use postern_plugin_sdk::dns::DnsError;
use postern_plugin_sdk::log::Level;
use postern_plugin_sdk::serde_json::{Value, json};
use postern_plugin_sdk::{Envelope, Verdict, mock};

use super::*;

const IP: &str = "192.0.2.7";
const NAME: &str = "mx.client.test";

/// A plugin for a site whose domain is example.org, relaying for relay.test,
/// with `files` as given.
fn plugin_with(files: Value) -> Restrictions {
    let config = json!({
        "main": {
            "myhostname": "mail.example.org",
            "mydomain": "example.org",
            "myorigin": "example.org",
            "mydestination": ["example.org", "localhost"],
            "relay_domains": ["relay.test", ".sub.test"],
            "recipient_delimiter": "+",
        },
        "files": files,
    });
    mock::configure(&config.to_string()).unwrap()
}

fn plugin() -> Restrictions {
    plugin_with(json!({}))
}

/// A plugin with one table, `hash:access` (or `regexp:access`...).
fn with_table(text: &str) -> Restrictions {
    plugin_with(json!({ "access": text }))
}

fn args(words: &str) -> Vec<String> {
    words.split_whitespace().map(str::to_owned).collect()
}

fn client() -> Client {
    Client {
        helo: Some("mail.sender.test".to_owned()),
        ..mock::client(IP)
    }
}

fn connect(p: &mut Restrictions, words: &str) -> Outcome {
    p.on_connect(&mock::context(&mock::client(IP), None, &args(words)))
}

fn helo(p: &mut Restrictions, helo: &str, words: &str) -> Outcome {
    p.on_helo(&mock::context(&mock::client(IP), None, &args(words)), helo)
}

fn mail(p: &mut Restrictions, sender: &str, words: &str) -> Outcome {
    p.on_mail(&mock::context(&client(), None, &args(words)), sender)
}

fn rcpt(p: &mut Restrictions, sender: &str, rcpt: &str, words: &str) -> Outcome {
    rcpt_from(p, &client(), sender, rcpt, words)
}

fn rcpt_from(p: &mut Restrictions, c: &Client, sender: &str, to: &str, words: &str) -> Outcome {
    p.on_rcpt(
        &mock::context(c, Some(&mock::envelope(sender, &[])), &args(words)),
        to,
    )
}

fn reject(code: u16, dsn: &str, text: &str) -> Outcome {
    Outcome::reject(code, dsn, text)
}

fn defer(code: u16, dsn: &str, text: &str) -> Outcome {
    Outcome::defer(code, dsn, text)
}

fn config_error() -> Outcome {
    defer(451, "4.3.5", "Server configuration error")
}

fn lines(level: Level) -> Vec<String> {
    mock::logs()
        .into_iter()
        .filter(|(l, _)| *l == level)
        .map(|(_, line)| line)
        .collect()
}

/// The client has a forward-confirmed name.
fn named_client() {
    mock::dns_answer_ptr(IP, Ok(vec!["MX.client.test."]));
    mock::dns_answer(NAME, Ok(vec![IP]));
}

// ---- generic words, replies and list semantics ----

#[test]
fn reject_and_defer_name_the_lists_subject() {
    named_client();
    let cases = [
        (
            connect(&mut plugin(), "reject"),
            reject(
                554,
                "5.7.1",
                "<mx.client.test[192.0.2.7]>: Client host rejected: Access denied",
            ),
        ),
        (
            helo(&mut plugin(), "bad.helo", "reject"),
            reject(
                554,
                "5.7.1",
                "<bad.helo>: Helo command rejected: Access denied",
            ),
        ),
        (
            mail(&mut plugin(), "s@x.test", "reject"),
            reject(
                554,
                "5.7.1",
                "<s@x.test>: Sender address rejected: Access denied",
            ),
        ),
        (
            mail(&mut plugin(), "", "reject"),
            reject(554, "5.7.1", "<>: Sender address rejected: Access denied"),
        ),
        (
            rcpt(&mut plugin(), "s@x.test", "r@y.test", "reject"),
            reject(
                554,
                "5.7.1",
                "<r@y.test>: Recipient address rejected: Access denied",
            ),
        ),
        (
            rcpt(&mut plugin(), "s@x.test", "r@y.test", "defer"),
            defer(
                450,
                "4.3.2",
                "<r@y.test>: Recipient address rejected: Try again later",
            ),
        ),
        (
            rcpt(
                &mut plugin(),
                "s@x.test",
                "r@y.test",
                "smtpd_sender_restrictions reject",
            ),
            reject(
                554,
                "5.7.1",
                "<s@x.test>: Sender address rejected: Access denied",
            ),
        ),
        (
            rcpt(
                &mut plugin(),
                "s@x.test",
                "r@y.test",
                "smtpd_data_restrictions reject",
            ),
            reject(554, "5.7.1", "<DATA>: Data command rejected: Access denied"),
        ),
        (
            rcpt(
                &mut plugin(),
                "s@x.test",
                "r@y.test",
                "smtpd_end_of_data_restrictions defer",
            ),
            defer(
                450,
                "4.3.2",
                "<END-OF-MESSAGE>: End-of-data rejected: Try again later",
            ),
        ),
    ];
    for (i, (got, want)) in cases.into_iter().enumerate() {
        assert_eq!(got, want, "case {i}");
    }
}

#[test]
fn the_client_name_is_unknown_without_a_confirmed_ptr() {
    let out = connect(&mut plugin(), "reject");
    assert_eq!(
        out,
        reject(
            554,
            "5.7.1",
            "<unknown[192.0.2.7]>: Client host rejected: Access denied"
        )
    );
    // A PTR name that does not resolve back is not the client's name.
    mock::reset();
    mock::dns_answer_ptr(IP, Ok(vec![NAME]));
    mock::dns_answer(NAME, Ok(vec!["192.0.2.99"]));
    let out = connect(&mut plugin(), "reject");
    assert_eq!(
        out,
        reject(
            554,
            "5.7.1",
            "<unknown[192.0.2.7]>: Client host rejected: Access denied"
        )
    );
    assert!(
        lines(Level::Warn)
            .contains(&"hostname mx.client.test does not resolve to address 192.0.2.7".into())
    );
}

#[test]
fn permits_accept_the_stage_and_the_end_continues() {
    let mut p = plugin();
    assert_eq!(connect(&mut p, "permit reject"), Outcome::accept());
    assert!(lines(Level::Warn).contains(&"restriction `reject' after `permit' is ignored".into()));
    assert!(connect(&mut p, "").is_continue());
    assert!(connect(&mut p, "permit_mynetworks permit_sasl_authenticated").is_continue());
    let trusted = Client {
        in_mynetworks: true,
        ..client()
    };
    let authed = Client {
        auth_user: Some("jo".into()),
        ..client()
    };
    for c in [&trusted, &authed] {
        let out = rcpt_from(
            &mut p,
            c,
            "s@x.test",
            "r@remote.test",
            "permit_mynetworks permit_sasl_authenticated reject_unauth_destination",
        );
        assert_eq!(out, Outcome::accept());
    }
    // Words are case-insensitive, as in Postfix.
    assert_eq!(connect(&mut p, "PERMIT"), Outcome::accept());
    // No DNS was needed for any of this.
    assert!(mock::dns_queries().is_empty(), "{:?}", mock::dns_queries());
}

#[test]
fn a_relay_list_that_permits_lets_the_recipient_list_run() {
    let mut p = plugin();
    let trusted = Client {
        in_mynetworks: true,
        ..client()
    };
    let relay = "smtpd_relay_restrictions permit_mynetworks reject_unauth_destination";
    let out = rcpt_from(&mut p, &trusted, "s@x.test", "r@remote.test", relay);
    assert!(out.is_continue(), "{out:?}");
    let out = rcpt_from(
        &mut p,
        &trusted,
        "s@x.test",
        "r@remote.test",
        "smtpd_recipient_restrictions reject",
    );
    assert_eq!(
        out,
        reject(
            554,
            "5.7.1",
            "<r@remote.test>: Recipient address rejected: Access denied"
        )
    );
    // The relay list's own reject is final.
    let out = rcpt(&mut p, "s@x.test", "r@remote.test", relay);
    assert_eq!(
        out,
        reject(554, "5.7.1", "<r@remote.test>: Relay access denied")
    );
    // `permit` itself continues too.
    assert!(rcpt(&mut p, "", "r@x.test", "smtpd_relay_restrictions permit").is_continue());
}

#[test]
fn relay_access() {
    let mut p = plugin();
    for (to, ours) in [
        ("r@example.org", true),
        ("R@EXAMPLE.ORG.", true),
        ("r@localhost", true),
        ("r@relay.test", true),
        ("r@deep.relay.test", true),
        ("r@a.sub.test", true),
        ("r@sub.test", false),
        ("r@notrelay.test", false),
        ("r@mail.example.org", false),
        ("r@[192.0.2.1]", false),
        ("user", true),
        ("user@", true),
    ] {
        let out = rcpt(&mut p, "s@x.test", to, "reject_unauth_destination");
        let want = if ours {
            Outcome::cont()
        } else {
            reject(554, "5.7.1", &format!("<{to}>: Relay access denied"))
        };
        assert_eq!(out, want, "{to}");
        let out = rcpt(&mut p, "s@x.test", to, "defer_unauth_destination");
        assert_eq!(
            out.is_continue(),
            ours,
            "{to}: defer_unauth_destination {out:?}"
        );
        if !ours {
            assert_eq!(
                out,
                defer(454, "4.7.1", &format!("<{to}>: Relay access denied"))
            );
        }
        let out = rcpt(&mut p, "s@x.test", to, "permit_auth_destination");
        assert_eq!(
            out == Outcome::accept(),
            ours,
            "{to}: permit_auth_destination"
        );
    }
    // Only at RCPT: elsewhere there is no recipient.
    assert!(mail(&mut p, "s@x.test", "reject_unauth_destination").is_continue());
}

#[test]
fn site_parameters_override_main() {
    let config = json!({
        "main": {"mydestination": ["example.org"], "relay_domains": "a.test, b.test"},
        "mydestination": "other.test",
        "relay_domains_reject_code": 550,
    });
    let mut p: Restrictions = mock::configure(&config.to_string()).unwrap();
    let words = "reject_unauth_destination";
    assert!(rcpt(&mut p, "", "r@other.test", words).is_continue());
    assert!(rcpt(&mut p, "", "r@b.test", words).is_continue());
    assert_eq!(
        rcpt(&mut p, "", "r@example.org", words),
        reject(550, "5.7.1", "<r@example.org>: Relay access denied")
    );
    // Without its domains the plugin refuses to load.
    let bare = mock::configure::<Restrictions>("{}")
        .map(|_| ())
        .unwrap_err();
    assert!(
        bare.starts_with("setting `mydestination` is missing"),
        "{bare}"
    );
}

#[test]
fn configuration_errors() {
    for (json, want) in [
        (r#"{"zones": 1}"#, "unknown setting `zones`"),
        (r#"{"files": 1}"#, "setting `files` must be a table"),
        (r#"{"files": {"a": 1}}"#, "files.a must be the table's text"),
        (r#"{"main": []}"#, "setting `main` must be a table"),
        (
            r#"{"reject_code": 250}"#,
            "setting `reject_code` must be a 4xx or 5xx reply code",
        ),
        (
            r#"{"mydestination": 1}"#,
            "setting `mydestination` must be a list of strings",
        ),
        (r#"{"myorigin": []}"#, "setting `myorigin` must be a string"),
    ] {
        let err = mock::configure::<Restrictions>(json).unwrap_err();
        assert_eq!(err, want, "{json}");
    }
}

#[test]
fn postmaster_skips_the_recipient_lists() {
    let mut p = plugin();
    assert!(rcpt(&mut p, "s@x.test", "Postmaster", "reject").is_continue());
    assert!(!rcpt(&mut p, "s@x.test", "postmaster@remote.test", "reject").is_continue());
}

#[test]
fn unknown_words_are_configuration_errors() {
    for (words, log) in [
        (
            "permit_nobody",
            "smtpd_client_restrictions: unknown smtpd restriction: \"permit_nobody\"",
        ),
        (
            "reject_rbl_client zen.test",
            "smtpd_client_restrictions: restriction \"reject_rbl_client\" is handled by the rbl \
             plugin: put it in an `rbl` step of the chain",
        ),
        (
            "check_policy_service inet:127.0.0.1:10023",
            "smtpd_client_restrictions: restriction \"check_policy_service\" is not supported by \
             the restrictions plugin",
        ),
        (
            "permit_mynetworks smtpd_helo_restrictions",
            "smtpd_client_restrictions: \"smtpd_helo_restrictions\" names a restriction list; it \
             can only be the step's first word",
        ),
        (
            "check_client_access",
            "smtpd_client_restrictions: restriction check_client_access: bad argument \"\": need \
             maptype:mapname",
        ),
        (
            "check_client_access access",
            "smtpd_client_restrictions: restriction check_client_access: bad argument \"access\": \
             need maptype:mapname",
        ),
    ] {
        mock::reset();
        assert_eq!(connect(&mut plugin(), words), config_error(), "{words}");
        assert_eq!(lines(Level::Error), [log], "{words}");
        // The configuration error is also logged as smtpd's reject.
        assert!(
            lines(Level::Info).iter().any(|l| l
                == "reject: CONNECT from [192.0.2.7]: 451 4.3.5 Server configuration error; \
                    proto=ESMTP"),
            "{:?}",
            mock::logs()
        );
    }
    // A word after a decision is not reached, as in Postfix.
    assert_eq!(connect(&mut plugin(), "permit nonsense"), Outcome::accept());
}

#[test]
fn warn_if_reject_logs_the_next_reject_only() {
    let mut p = plugin();
    let out = rcpt(
        &mut p,
        "s@x.test",
        "r@remote.test",
        "warn_if_reject reject_unauth_destination",
    );
    assert!(out.is_continue());
    assert_eq!(
        lines(Level::Info),
        [
            "reject_warning: RCPT from [192.0.2.7]: 554 5.7.1 <r@remote.test>: Relay access denied; \
          from=<s@x.test> to=<r@remote.test> proto=ESMTP helo=<mail.sender.test>"
        ]
    );
    let out = rcpt(
        &mut p,
        "s@x.test",
        "r@remote.test",
        "warn_if_reject reject_unauth_destination reject",
    );
    assert_eq!(
        out,
        reject(
            554,
            "5.7.1",
            "<r@remote.test>: Recipient address rejected: Access denied"
        )
    );
    // Configuration errors are never mere warnings.
    assert_eq!(
        rcpt(&mut p, "", "r@x.test", "warn_if_reject nonsense"),
        config_error()
    );
}

#[test]
fn reject_unauth_pipelining_and_plaintext() {
    let rude = Client {
        improper_pipelining: true,
        ..mock::client("192.0.2.7")
    };
    let mut p = plugin();
    assert!(connect(&mut p, "reject_unauth_pipelining").is_continue());
    assert_eq!(
        p.on_connect(&mock::context(
            &rude,
            None,
            &args("reject_unauth_pipelining")
        )),
        reject(
            503,
            "5.5.0",
            "<unknown[192.0.2.7]>: Client host rejected: Improper use of SMTP command pipelining"
        )
    );
    assert_eq!(
        rcpt_from(
            &mut p,
            &rude,
            "s@x.test",
            "r@y.test",
            "reject_unauth_pipelining"
        ),
        reject(
            503,
            "5.5.0",
            "<r@y.test>: Recipient address rejected: Improper use of SMTP command pipelining"
        )
    );
    assert_eq!(
        connect(&mut p, "reject_plaintext_session"),
        defer(450, "4.7.1", "Session encryption is required")
    );
    let tls = Client {
        tls: true,
        ..client()
    };
    assert!(
        p.on_connect(&mock::context(
            &tls,
            None,
            &args("reject_plaintext_session")
        ))
        .is_continue()
    );
}

#[test]
fn multi_recipient_bounce() {
    let mut p = plugin();
    let words = args("reject_multi_recipient_bounce");
    let bounce_to = |n: usize| mock::envelope("", &["a@example.org", "b@example.org"][..n]);
    assert!(
        p.on_rcpt(
            &mock::context(&client(), Some(&bounce_to(0)), &words),
            "a@example.org"
        )
        .is_continue()
    );
    assert_eq!(
        p.on_rcpt(
            &mock::context(&client(), Some(&bounce_to(1)), &words),
            "b@example.org"
        ),
        reject(
            550,
            "5.5.3",
            "<b@example.org>: Recipient address rejected: Multi-recipient bounce"
        )
    );
    let env = mock::envelope("s@x.test", &["a@example.org", "b@example.org"]);
    assert!(
        p.on_rcpt(
            &mock::context(&client(), Some(&env), &words),
            "c@example.org"
        )
        .is_continue()
    );
}

// ---- HELO, sender and recipient syntax and DNS ----

#[test]
fn helo_syntax() {
    let invalid = |h: &str| {
        reject(
            501,
            "5.5.2",
            &format!("<{h}>: Helo command rejected: Invalid name"),
        )
    };
    let literal = |h: &str| {
        reject(
            501,
            "5.5.2",
            &format!("<{h}>: Helo command rejected: invalid ip address"),
        )
    };
    let non_fqdn = |h: &str| {
        reject(
            504,
            "5.5.2",
            &format!("<{h}>: Helo command rejected: need fully-qualified hostname"),
        )
    };
    let ok = Outcome::cont();
    for (h, invalid_want, non_fqdn_want) in [
        ("mail.example.net", ok.clone(), ok.clone()),
        ("mail.example.net.", ok.clone(), ok.clone()),
        ("localhost", ok.clone(), non_fqdn("localhost")),
        ("192.0.2.1", ok.clone(), non_fqdn("192.0.2.1")),
        ("bad_but.ok", ok.clone(), ok.clone()),
        ("bad..name", invalid("bad..name"), non_fqdn("bad..name")),
        ("-x.example", invalid("-x.example"), non_fqdn("-x.example")),
        (
            "spa ce.example",
            invalid("spa ce.example"),
            non_fqdn("spa ce.example"),
        ),
        ("[192.0.2.1]", ok.clone(), ok.clone()),
        ("[IPv6:2001:db8::1]", ok.clone(), ok.clone()),
        (
            "[2001:db8::1]",
            literal("[2001:db8::1]"),
            literal("[2001:db8::1]"),
        ),
        ("[192.0.2]", literal("[192.0.2]"), literal("[192.0.2]")),
    ] {
        for (word, want) in [
            ("reject_invalid_helo_hostname", &invalid_want),
            ("reject_invalid_hostname", &invalid_want),
            ("reject_non_fqdn_helo_hostname", &non_fqdn_want),
            ("reject_non_fqdn_hostname", &non_fqdn_want),
        ] {
            assert_eq!(&helo(&mut plugin(), h, word), want, "{word} {h}");
        }
    }
    // No HELO yet: skipped.
    assert!(
        connect(
            &mut plugin(),
            "reject_invalid_helo_hostname reject_non_fqdn_helo_hostname"
        )
        .is_continue()
    );
    // Later stages see the client's HELO.
    assert_eq!(
        rcpt(
            &mut plugin(),
            "s@x.test",
            "r@example.org",
            "reject_non_fqdn_helo_hostname"
        ),
        Outcome::cont()
    );
}

#[test]
fn unknown_helo_hostname() {
    mock::dns_answer("a.test", Ok(vec!["192.0.2.1"]));
    mock::dns_answer_aaaa("aaaa.test", Ok(vec!["2001:db8::1"]));
    mock::dns_answer_mx("mx.test", Ok(vec![(10, "mx.other.test")]));
    mock::dns_answer_mx("nullmx.test", Ok(vec![(0, ".")]));
    mock::dns_answer("down.test", Err(DnsError::Temporary("SERVFAIL".into())));
    let words = "reject_unknown_helo_hostname";
    for h in [
        "a.test",
        "aaaa.test",
        "mx.test",
        "nullmx.test",
        "[192.0.2.1]",
        "a.test.",
    ] {
        assert!(helo(&mut plugin(), h, words).is_continue(), "{h}");
    }
    assert_eq!(
        helo(&mut plugin(), "nx.test", words),
        defer(
            450,
            "4.7.1",
            "<nx.test>: Helo command rejected: Host not found"
        )
    );
    assert_eq!(
        helo(&mut plugin(), "bad..name", "reject_unknown_hostname"),
        defer(
            450,
            "4.7.1",
            "<bad..name>: Helo command rejected: Malformed DNS server reply"
        )
    );
    assert_eq!(
        helo(&mut plugin(), "[1.2.3]", words),
        reject(
            501,
            "5.5.2",
            "<[1.2.3]>: Helo command rejected: invalid ip address"
        )
    );
    // A DNS failure defers only if the recipient list would permit.
    let mut p = plugin();
    assert!(helo(&mut p, "down.test", words).is_continue());
    assert_eq!(
        rcpt(&mut p, "s@x.test", "r@example.org", "permit"),
        defer(
            450,
            "4.7.1",
            "<down.test>: Helo command rejected: Host not found"
        )
    );
    assert_eq!(
        rcpt(&mut p, "s@x.test", "r@example.org", "reject"),
        reject(
            554,
            "5.7.1",
            "<r@example.org>: Recipient address rejected: Access denied"
        )
    );
}

#[test]
fn non_fqdn_addresses() {
    let mut p = plugin();
    let words = "reject_non_fqdn_sender reject_non_fqdn_recipient";
    for (addr, ok) in [
        ("u@example.net", true),
        ("u@example.net.", true),
        ("u@[192.0.2.1]", true),
        ("u@localhost", false),
        ("u", false),
        ("u@", false),
        ("u@bad..net", false),
    ] {
        let out = mail(&mut p, addr, words);
        let want = if ok {
            Outcome::cont()
        } else {
            reject(
                504,
                "5.5.2",
                &format!("<{addr}>: Sender address rejected: need fully-qualified address"),
            )
        };
        assert_eq!(out, want, "sender {addr}");
        let out = rcpt(&mut p, "s@x.test", addr, words);
        let want = if ok {
            Outcome::cont()
        } else {
            reject(
                504,
                "5.5.2",
                &format!("<{addr}>: Recipient address rejected: need fully-qualified address"),
            )
        };
        assert_eq!(out, want, "recipient {addr}");
    }
    // The null sender is never checked.
    assert!(mail(&mut p, "", "reject_non_fqdn_sender").is_continue());
    // No MAIL yet: skipped.
    assert!(connect(&mut p, "reject_non_fqdn_sender").is_continue());
}

#[test]
fn unknown_address_domains() {
    mock::dns_answer_mx("mx.test", Ok(vec![(10, "mx1.mx.test")]));
    mock::dns_answer("a.test", Ok(vec!["192.0.2.1"]));
    mock::dns_answer_aaaa("aaaa.test", Ok(vec!["2001:db8::1"]));
    mock::dns_answer_mx("null.test", Ok(vec![(0, ".")]));
    let words = "reject_unknown_sender_domain";
    let mut p = plugin();
    for sender in [
        "s@mx.test",
        "s@a.test",
        "s@AAAA.test.",
        "",
        "s",
        "s@example.org",
        "s@[192.0.2.9]",
    ] {
        assert!(mail(&mut p, sender, words).is_continue(), "{sender}");
    }
    assert_eq!(
        mail(&mut p, "s@nowhere.test", words),
        defer(
            450,
            "4.1.8",
            "<s@nowhere.test>: Sender address rejected: Domain not found"
        )
    );
    assert_eq!(
        mail(&mut p, "s@null.test", words),
        reject(
            550,
            "5.7.27",
            "<s@null.test>: Sender address rejected: Domain null.test does not accept mail (nullMX)"
        )
    );
    assert_eq!(
        mail(&mut p, "s@bad..test", words),
        defer(
            450,
            "4.1.8",
            "<s@bad..test>: Sender address rejected: Malformed DNS server reply"
        )
    );
    let words = "reject_unknown_recipient_domain";
    assert_eq!(
        rcpt(&mut p, "s@x.test", "r@nowhere.test", words),
        defer(
            450,
            "4.1.2",
            "<r@nowhere.test>: Recipient address rejected: Domain not found"
        )
    );
    assert_eq!(
        rcpt(&mut p, "s@x.test", "r@null.test", words),
        reject(
            556,
            "5.1.10",
            "<r@null.test>: Recipient address rejected: Domain null.test does not accept mail \
             (nullMX)"
        )
    );
    assert!(rcpt(&mut p, "s@x.test", "r@example.org", words).is_continue());
    // Relay domains are checked in the DNS like any other.
    assert!(!rcpt(&mut p, "s@x.test", "r@relay.test", words).is_continue());
    // The MX lookup comes first, and answers are cached for the transaction.
    mock::reset();
    mock::dns_answer("a.test", Ok(vec!["192.0.2.1"]));
    let mut p = plugin();
    assert!(mail(&mut p, "s@a.test", "reject_unknown_sender_domain").is_continue());
    assert!(
        rcpt(
            &mut p,
            "s@a.test",
            "r@a.test",
            "reject_unknown_sender_domain"
        )
        .is_continue()
    );
    assert_eq!(mock::dns_queries(), ["MX a.test", "A a.test"]);
}

#[test]
fn a_dns_failure_defers_if_the_recipient_lists_permit() {
    mock::dns_answer_mx("down.test", Err(DnsError::Temporary("timeout".into())));
    let mut p = plugin();
    let deferral = defer(
        450,
        "4.1.8",
        "<s@down.test>: Sender address rejected: Domain not found",
    );
    assert!(mail(&mut p, "s@down.test", "reject_unknown_sender_domain").is_continue());
    // End of the recipient list, and a permit, defer; the relay list alone
    // does not.
    assert_eq!(rcpt(&mut p, "s@down.test", "r@example.org", ""), deferral);
    assert!(
        rcpt(
            &mut p,
            "s@down.test",
            "r@example.org",
            "smtpd_relay_restrictions permit"
        )
        .is_continue()
    );
    assert_eq!(
        rcpt(
            &mut p,
            "s@down.test",
            "r@example.org",
            "smtpd_recipient_restrictions permit"
        ),
        deferral
    );
    // A reject still rejects.
    assert_eq!(
        rcpt(
            &mut p,
            "s@down.test",
            "r@remote.test",
            "reject_unauth_destination"
        ),
        reject(554, "5.7.1", "<r@remote.test>: Relay access denied")
    );
    // In one list at RCPT too; under warn_if_reject it is a warning.
    let mut p = plugin();
    assert_eq!(
        rcpt(
            &mut p,
            "s@down.test",
            "r@example.org",
            "reject_unknown_sender_domain permit"
        ),
        deferral
    );
    let out = rcpt(
        &mut p,
        "s@down.test",
        "r@example.org",
        "warn_if_reject reject_unknown_sender_domain permit",
    );
    assert_eq!(out, Outcome::accept());
    assert!(lines(Level::Info).iter().any(|l| l.starts_with(
        "reject_warning: RCPT from [192.0.2.7]: 450 4.1.8 <s@down.test>: Sender address rejected: \
         Domain not found;"
    )));
}

#[test]
fn defer_if_permit_and_defer_if_reject_words() {
    let mut p = plugin();
    assert_eq!(
        rcpt(
            &mut p,
            "s@x.test",
            "r@example.org",
            "defer_if_permit permit"
        ),
        defer(
            450,
            "4.7.0",
            "<r@example.org>: Recipient address rejected: defer_if_permit requested"
        )
    );
    assert_eq!(
        rcpt(
            &mut p,
            "s@x.test",
            "r@example.org",
            "defer_if_reject reject"
        ),
        defer(
            450,
            "4.7.0",
            "<r@example.org>: Recipient address rejected: defer_if_reject requested"
        )
    );
    // defer_if_reject leaves permits and deferrals alone.
    assert_eq!(
        rcpt(
            &mut p,
            "s@x.test",
            "r@example.org",
            "defer_if_reject permit"
        ),
        Outcome::accept()
    );
    // Raised at MAIL, applied at RCPT.
    assert!(mail(&mut p, "s@x.test", "defer_if_permit").is_continue());
    assert_eq!(
        rcpt(&mut p, "s@x.test", "r@example.org", "permit"),
        defer(
            450,
            "4.7.0",
            "<s@x.test>: Sender address rejected: defer_if_permit requested"
        )
    );
    // The data lists start afresh.
    let env = mock::envelope("s@x.test", &["r@example.org"]);
    let out = p.on_rcpt(
        &mock::context(
            &client(),
            Some(&env),
            &args("smtpd_data_restrictions permit"),
        ),
        "q@example.org",
    );
    assert_eq!(out, Outcome::accept());
}

// ---- the client's names ----

#[test]
fn unknown_client_hostnames() {
    let mut p = plugin();
    let hostname = "reject_unknown_client_hostname";
    let reverse = "reject_unknown_reverse_client_hostname";
    let no_name = defer(
        450,
        "4.7.25",
        "Client host rejected: cannot find your hostname, [192.0.2.7]",
    );
    let no_reverse = defer(
        450,
        "4.7.1",
        "Client host rejected: cannot find your reverse hostname, [192.0.2.7]",
    );
    assert_eq!(connect(&mut p, hostname), no_name);
    assert_eq!(connect(&mut p, "reject_unknown_client"), no_name);
    assert_eq!(connect(&mut p, reverse), no_reverse);
    // Looked up once per transaction.
    assert_eq!(mock::dns_queries(), ["PTR 192.0.2.7"]);

    mock::reset();
    named_client();
    let mut p = plugin();
    assert!(connect(&mut p, &format!("{hostname} {reverse}")).is_continue());
    assert_eq!(mock::dns_queries(), ["PTR 192.0.2.7", "A mx.client.test"]);

    // Forged: the reverse name exists, the name does not resolve back.
    mock::reset();
    mock::dns_answer_ptr(IP, Ok(vec![NAME]));
    let mut p = plugin();
    assert_eq!(connect(&mut p, hostname), no_name);
    assert!(connect(&mut p, reverse).is_continue());

    // Temporary failures defer with 450 whatever unknown_client_reject_code says.
    mock::reset();
    mock::dns_answer_ptr(IP, Err(DnsError::Temporary("timeout".into())));
    let config = json!({"mydestination": [], "unknown_client_reject_code": 550});
    let mut p: Restrictions = mock::configure(&config.to_string()).unwrap();
    assert_eq!(connect(&mut p, hostname), no_name);
    assert_eq!(connect(&mut p, reverse), no_reverse);
    mock::reset();
    let mut p: Restrictions = mock::configure(&config.to_string()).unwrap();
    assert_eq!(
        connect(&mut p, hostname),
        reject(
            550,
            "5.7.25",
            "Client host rejected: cannot find your hostname, [192.0.2.7]"
        )
    );

    // IPv6 clients are confirmed by AAAA.
    mock::reset();
    mock::dns_answer_ptr("2001:db8::7", Ok(vec!["v6.client.test"]));
    mock::dns_answer_aaaa("v6.client.test", Ok(vec!["2001:DB8:0::7"]));
    let mut p = plugin();
    let v6 = mock::client("2001:db8::7");
    assert!(
        p.on_connect(&mock::context(&v6, None, &args(hostname)))
            .is_continue()
    );
}

// ---- access tables ----

#[test]
fn table_actions() {
    let table = "\
ok.test OK
relay.test RELAY
digits.test 1234567
code-only.test 550
reject.test REJECT
rejecttext.test REJECT Go away
rejectdsn.test REJECT 5.7.0 Policy says no
rejectaddr.test REJECT 5.1.1 No such user
defer.test DEFER
defertext.test DEFER 4.3.0 Come back later
5nn.test 550 Not here
4nn.test 421 4.7.0 Busy
5nn-dsn.test 553 5.1.7 Bad syntax
dunno.test DUNNO
lower.test reject lower case works
";
    let mut p = with_table(table);
    let words = "check_sender_access hash:access permit_auth_destination";
    for (domain, want) in [
        ("ok.test", Outcome::accept()),
        ("relay.test", Outcome::accept()),
        ("digits.test", Outcome::accept()),
        ("code-only.test", Outcome::accept()),
        (
            "reject.test",
            reject(
                554,
                "5.7.1",
                "<s@reject.test>: Sender address rejected: Access denied",
            ),
        ),
        (
            "rejecttext.test",
            reject(
                554,
                "5.7.1",
                "<s@rejecttext.test>: Sender address rejected: Go away",
            ),
        ),
        (
            "rejectdsn.test",
            reject(
                554,
                "5.7.0",
                "<s@rejectdsn.test>: Sender address rejected: Policy says no",
            ),
        ),
        (
            "rejectaddr.test",
            reject(
                554,
                "5.1.0",
                "<s@rejectaddr.test>: Sender address rejected: No such user",
            ),
        ),
        (
            "defer.test",
            defer(
                450,
                "4.7.1",
                "<s@defer.test>: Sender address rejected: Access denied",
            ),
        ),
        (
            "defertext.test",
            defer(
                450,
                "4.3.0",
                "<s@defertext.test>: Sender address rejected: Come back later",
            ),
        ),
        (
            "5nn.test",
            reject(
                550,
                "5.7.1",
                "<s@5nn.test>: Sender address rejected: Not here",
            ),
        ),
        (
            "4nn.test",
            defer(421, "4.7.0", "<s@4nn.test>: Sender address rejected: Busy"),
        ),
        (
            "5nn-dsn.test",
            reject(
                553,
                "5.1.7",
                "<s@5nn-dsn.test>: Sender address rejected: Bad syntax",
            ),
        ),
        (
            "lower.test",
            reject(
                554,
                "5.7.1",
                "<s@lower.test>: Sender address rejected: lower case works",
            ),
        ),
        // DUNNO stops the table; the next word decides.
        ("dunno.test", Outcome::cont()),
        ("other.test", Outcome::cont()),
    ] {
        let sender = format!("s@{domain}");
        assert_eq!(mail(&mut p, &sender, words), want, "{domain}");
    }
}

#[test]
fn recipient_address_dsns_are_fixed_for_recipients() {
    let mut p = with_table("x.test REJECT 5.1.8 Bad sender domain\n");
    assert_eq!(
        rcpt(
            &mut p,
            "s@x.test",
            "r@x.test",
            "check_recipient_access hash:access"
        ),
        reject(
            554,
            "5.1.2",
            "<r@x.test>: Recipient address rejected: Bad sender domain"
        )
    );
    let mut p = with_table("192.0.2.7 REJECT 5.1.1 Nope\n");
    assert_eq!(
        connect(&mut p, "check_client_access hash:access"),
        reject(
            554,
            "5.0.0",
            "<unknown[192.0.2.7]>: Client host rejected: Nope"
        )
    );
}

#[test]
fn non_decisive_actions() {
    let table = "\
hold.test HOLD Look at this
holdbare.test HOLD
discard.test DISCARD
prepend.test PREPEND X-Sender-Class: suspicious
badprepend.test PREPEND no header here
warn.test WARN looks odd
info.test INFO noted
filter.test FILTER smtp:[127.0.0.1]:10025
redirect.test REDIRECT abuse@example.org
bcc.test BCC archive@example.org
";
    let words = "check_sender_access hash:access";
    let mut p = with_table(table);
    assert_eq!(
        mail(&mut p, "s@hold.test", words),
        Outcome::hold("<s@hold.test>: Sender address Look at this")
    );
    assert_eq!(
        mail(&mut p, "s@holdbare.test", words),
        Outcome::hold("<s@holdbare.test>: Sender address triggers HOLD action")
    );
    // A later reject still wins over HOLD.
    assert!(matches!(
        mail(&mut p, "s@hold.test", &format!("{words} reject")).verdict,
        Verdict::Reject(_)
    ));
    // DISCARD decides and ends the list.
    assert_eq!(
        mail(&mut p, "s@discard.test", &format!("{words} reject")),
        Outcome::discard()
    );
    assert_eq!(
        mail(&mut p, "s@prepend.test", words),
        Outcome::cont().prepend_header("X-Sender-Class", "suspicious")
    );
    assert_eq!(
        mail(&mut p, "s@prepend.test", &format!("{words} permit")),
        Outcome::accept().prepend_header("X-Sender-Class", "suspicious")
    );
    mock::reset();
    for domain in [
        "badprepend.test",
        "warn.test",
        "info.test",
        "filter.test",
        "redirect.test",
        "bcc.test",
    ] {
        let out = mail(&mut p, &format!("s@{domain}"), words);
        assert_eq!(out, Outcome::cont(), "{domain}");
    }
    assert_eq!(
        lines(Level::Warn),
        [
            "access table hash:access entry \"badprepend.test\" requires header: text",
            "access table hash:access entry \"filter.test\": action FILTER is not supported \
             here; ignored",
            "access table hash:access entry \"redirect.test\": action REDIRECT is not supported \
             here; ignored",
            "access table hash:access entry \"bcc.test\": action BCC is not supported here; \
             ignored",
        ]
    );
    let info = lines(Level::Info);
    assert!(
        info.contains(
            &"warn: MAIL from [192.0.2.7]: looks odd; from=<s@warn.test> proto=ESMTP \
          helo=<mail.sender.test>"
                .to_owned()
        )
    );
    assert!(
        info.iter()
            .any(|l| l.starts_with("info: MAIL from [192.0.2.7]: noted;"))
    );
}

#[test]
fn a_hold_in_the_relay_list_waits_for_the_recipient_list() {
    let mut p = with_table("r@example.org HOLD check\n");
    let relay = "smtpd_relay_restrictions check_recipient_access hash:access permit";
    assert!(rcpt(&mut p, "s@x.test", "r@example.org", relay).is_continue());
    assert_eq!(
        rcpt(
            &mut p,
            "s@x.test",
            "r@example.org",
            "smtpd_recipient_restrictions permit"
        ),
        Outcome::hold("<r@example.org>: Recipient address check")
    );
    // Another RCPT does not inherit it.
    assert!(rcpt(&mut p, "s@x.test", "r@example.org", relay).is_continue());
    assert_eq!(
        rcpt(
            &mut p,
            "s@x.test",
            "other@example.org",
            "smtpd_recipient_restrictions permit"
        ),
        Outcome::accept()
    );
}

#[test]
fn restriction_lists_as_table_values() {
    let table = "\
list.test permit_mynetworks, reject
nested.test check_helo_access hash:helos
helo.test reject_non_fqdn_helo_hostname reject
loop.test check_sender_access hash:access
maps.test hash:other
";
    let helos = "mail.sender.test reject\n";
    let mut p = plugin_with(json!({ "access": table, "helos": helos }));
    let words = "check_sender_access hash:access";
    assert_eq!(
        mail(&mut p, "s@list.test", words),
        reject(
            554,
            "5.7.1",
            "<s@list.test>: Sender address rejected: Access denied"
        )
    );
    let trusted = Client {
        in_mynetworks: true,
        ..client()
    };
    assert_eq!(
        p.on_mail(&mock::context(&trusted, None, &args(words)), "s@list.test"),
        Outcome::accept()
    );
    // The words of a value keep the table's subject.
    let localhost = Client {
        helo: Some("localhost".into()),
        ..client()
    };
    assert_eq!(
        p.on_mail(
            &mock::context(&localhost, None, &args(words)),
            "s@helo.test"
        ),
        reject(
            504,
            "5.5.2",
            "<localhost>: Helo command rejected: need fully-qualified hostname"
        )
    );
    assert_eq!(
        mail(&mut p, "s@helo.test", words),
        reject(
            554,
            "5.7.1",
            "<s@helo.test>: Sender address rejected: Access denied"
        )
    );
    // A value may not name another table (Postfix: use a restriction class).
    mock::reset();
    assert_eq!(mail(&mut p, "s@nested.test", words), config_error());
    mock::reset();
    assert_eq!(mail(&mut p, "s@loop.test", words), config_error());
    assert_eq!(
        lines(Level::Error),
        [
            "smtpd_sender_restrictions: access table hash:access has entry with lookup table: \
             check_sender_access hash:access; define the restrictions in the value instead"
        ]
    );
    mock::reset();
    assert_eq!(mail(&mut p, "s@maps.test", words), config_error());
    assert_eq!(lines(Level::Error).len(), 1, "{:?}", mock::logs());
}

#[test]
fn client_lookup_order() {
    named_client();
    let keys = [
        "mx.client.test",
        "client.test",
        "test",
        "192.0.2.7",
        "192.0.2",
        "192.0",
        "192",
    ];
    // Each key alone in the table is found, and a key earlier in the order
    // wins over any later one.
    for (i, key) in keys.iter().enumerate() {
        let mut table = format!("{key} REJECT found {key}\n");
        for later in &keys[i + 1..] {
            table.push_str(&format!("{later} OK\n"));
        }
        mock::reset();
        named_client();
        let out = connect(&mut with_table(&table), "check_client_access hash:access");
        assert_eq!(
            out,
            reject(
                554,
                "5.7.1",
                &format!("<mx.client.test[192.0.2.7]>: Client host rejected: found {key}")
            ),
            "{key}"
        );
    }
    // DUNNO for the name stops the table before the address.
    mock::reset();
    named_client();
    let mut p = with_table("client.test DUNNO\n192.0.2.7 REJECT\n");
    assert!(connect(&mut p, "check_client_access hash:access").is_continue());
    // Without a name, `unknown` is looked up, then the address.
    mock::reset();
    let mut p = with_table("unknown REJECT nameless\n");
    assert_eq!(
        connect(&mut p, "check_client_access hash:access"),
        reject(
            554,
            "5.7.1",
            "<unknown[192.0.2.7]>: Client host rejected: nameless"
        )
    );
}

#[test]
fn ipv6_client_networks() {
    for key in ["2001:db8::7", "2001:db8:", "2001:db8", "2001"] {
        mock::reset();
        let mut p = with_table(&format!("{key} REJECT net {key}\n"));
        let out = p.on_connect(&mock::context(
            &mock::client("2001:DB8:0:0::7"),
            None,
            &args("check_client_access hash:access"),
        ));
        assert_eq!(
            out,
            reject(
                554,
                "5.7.1",
                &format!("<unknown[2001:db8::7]>: Client host rejected: net {key}")
            ),
            "{key}"
        );
    }
    mock::reset();
    let mut p = with_table("2001:db REJECT\n");
    let out = p.on_connect(&mock::context(
        &mock::client("2001:db8::7"),
        None,
        &args("check_client_access hash:access"),
    ));
    assert!(out.is_continue());
}

#[test]
fn address_lookup_order() {
    let keys = [
        "user+ext@mail.example.net",
        "user@mail.example.net",
        "mail.example.net",
        "example.net",
        "net",
        "user+ext@",
        "user@",
    ];
    for list in ["sender", "recipient"] {
        for (i, key) in keys.iter().enumerate() {
            let mut table = format!("{key} REJECT found {key}\n");
            for later in &keys[i + 1..] {
                table.push_str(&format!("{later} OK\n"));
            }
            let mut p = with_table(&table);
            let addr = "User+ext@Mail.Example.NET";
            let words = format!("check_{list}_access hash:access");
            let (out, class) = if list == "sender" {
                (mail(&mut p, addr, &words), SENDER)
            } else {
                (rcpt(&mut p, "s@x.test", addr, &words), RECIPIENT)
            };
            assert_eq!(
                out,
                reject(
                    554,
                    "5.7.1",
                    &format!("<{addr}>: {class} rejected: found {key}")
                ),
                "{list} {key}"
            );
        }
    }
    // A domainless address is looked up with @$myorigin.
    let mut p = with_table("example.org REJECT local\n");
    assert!(!mail(&mut p, "user", "check_sender_access hash:access").is_continue());
    // The null sender is `<>`, and only that.
    let mut p = with_table("<> REJECT no bounces\n");
    assert_eq!(
        mail(&mut p, "", "check_sender_access hash:access"),
        reject(554, "5.7.1", "<>: Sender address rejected: no bounces")
    );
    let config = json!({"mydestination": [], "smtpd_null_access_lookup_key": "MAILER-DAEMON", "files": {"access": "mailer-daemon REJECT\n"}});
    let mut p: Restrictions = mock::configure(&config.to_string()).unwrap();
    assert!(!mail(&mut p, "", "check_sender_access hash:access").is_continue());
    // Another delimiter, or none.
    let config = json!({"mydestination": [], "recipient_delimiter": "-", "files": {"access": "user@x.test REJECT\n"}});
    let mut p: Restrictions = mock::configure(&config.to_string()).unwrap();
    assert!(
        !mail(
            &mut p,
            "user-list@x.test",
            "check_sender_access hash:access"
        )
        .is_continue()
    );
    assert!(
        mail(
            &mut p,
            "user+list@x.test",
            "check_sender_access hash:access"
        )
        .is_continue()
    );
}

#[test]
fn helo_lookup_order_and_regexp_tables() {
    let mut p = with_table("example.net REJECT parent\n");
    assert_eq!(
        helo(&mut p, "mail.example.net", "check_helo_access hash:access"),
        reject(
            554,
            "5.7.1",
            "<mail.example.net>: Helo command rejected: parent"
        )
    );
    // No parent magic for an address.
    let mut p = with_table("0.2.7 REJECT\n");
    assert!(helo(&mut p, "192.0.2.7", "check_helo_access hash:access").is_continue());
    // A regexp table sees the whole string, once.
    let table = "/^mail\\.example\\.net$/ REJECT exact\n/^example\\.net$/ REJECT parent\n";
    let mut p = plugin_with(json!({ "helo.re": table }));
    assert_eq!(
        helo(
            &mut p,
            "MAIL.example.net",
            "check_helo_access regexp:helo.re"
        ),
        reject(
            554,
            "5.7.1",
            "<MAIL.example.net>: Helo command rejected: exact"
        )
    );
    assert!(helo(&mut p, "x.example.net", "check_helo_access regexp:helo.re").is_continue());
    let mut p =
        plugin_with(json!({ "senders": "/^user@/ REJECT no user@\n/@example\\.net$/ OK\n" }));
    assert!(!mail(&mut p, "user@x.test", "check_sender_access pcre:senders").is_continue());
    // `user@` is a partial key: never asked of a regexp table.
    assert!(mail(&mut p, "other@x.test", "check_sender_access pcre:senders").is_continue());
    assert_eq!(
        mail(&mut p, "a@example.net", "check_sender_access pcre:senders"),
        Outcome::accept()
    );
}

#[test]
fn tables_by_name_or_full_spec_and_bare_specs() {
    // files["TYPE:NAME"] when files["NAME"] is not there.
    let mut p = plugin_with(json!({ "hash:/etc/postfix/access": "x.test REJECT\n" }));
    assert!(
        !mail(
            &mut p,
            "s@x.test",
            "check_sender_access hash:/etc/postfix/access"
        )
        .is_continue()
    );
    // A bare TYPE:NAME is the list's own map.
    let mut p = with_table("s@x.test REJECT\nmail.sender.test REJECT helo\n");
    assert!(!mail(&mut p, "s@x.test", "hash:access").is_continue());
    assert_eq!(
        helo(&mut p, "mail.sender.test", "hash:access"),
        reject(
            554,
            "5.7.1",
            "<mail.sender.test>: Helo command rejected: helo"
        )
    );
    mock::reset();
    let out = rcpt(
        &mut p,
        "s@x.test",
        "r@x.test",
        "smtpd_data_restrictions hash:access",
    );
    assert_eq!(out, config_error());
    assert_eq!(
        lines(Level::Error),
        [
            "smtpd_data_restrictions: specify one of (check_client_access, check_helo_access, \
          check_sender_access, check_recipient_access) before Data command restriction \
          \"hash:access\""
        ]
    );
}

#[test]
fn missing_and_unusable_tables() {
    let mut p = plugin();
    assert_eq!(
        mail(&mut p, "s@x.test", "check_sender_access hash:nope"),
        config_error()
    );
    assert_eq!(
        lines(Level::Error),
        ["table hash:nope: not in this plugin's files (add `nope = \"/path\"` to its files table)"]
    );
    mock::reset();
    let mut p = with_table("x OK\n");
    assert_eq!(
        mail(&mut p, "s@x.test", "check_sender_access ldap:access"),
        config_error()
    );
    assert_eq!(
        lines(Level::Error),
        [
            "table ldap:access: table type \"ldap\" is not supported here (use hash, texthash, \
          regexp or pcre)"
        ]
    );
    // Table warnings are logged when the table is first used.
    mock::reset();
    let mut p = with_table("lonely\nx.test REJECT\n");
    assert!(!mail(&mut p, "s@x.test", "check_sender_access hash:access").is_continue());
    assert!(!mail(&mut p, "s@x.test", "check_sender_access hash:access").is_continue());
    assert_eq!(
        lines(Level::Warn),
        ["table hash:access, line 1: expected format: key whitespace value"]
    );
}

#[test]
fn defer_if_actions_in_tables() {
    let table = "\
maybe.test DEFER_IF_PERMIT
soft.test DEFER_IF_REJECT 4.7.2 Not sure
";
    let mut p = with_table(table);
    let words = "check_sender_access hash:access";
    assert_eq!(
        rcpt(
            &mut p,
            "s@maybe.test",
            "r@example.org",
            &format!("{words} permit")
        ),
        defer(
            450,
            "4.7.1",
            "<s@maybe.test>: Sender address rejected: Service unavailable"
        )
    );
    assert_eq!(
        rcpt(
            &mut p,
            "s@soft.test",
            "r@example.org",
            &format!("{words} reject")
        ),
        defer(
            450,
            "4.7.2",
            "<s@soft.test>: Sender address rejected: Not sure"
        )
    );
    assert_eq!(
        rcpt(
            &mut p,
            "s@soft.test",
            "r@example.org",
            &format!("{words} permit")
        ),
        Outcome::accept()
    );
}

#[test]
fn data_stage() {
    let mut p = with_table("r@example.org REJECT one recipient\n");
    let c = client();
    let data = |p: &mut Restrictions, env: &Envelope| {
        // What on_data evaluates (a Message cannot be built natively).
        let stage = Stage {
            hook: Hook::Data,
            client: &c,
            helo: c.helo.as_deref(),
            sender: Some(&env.sender),
            recipient: match env.recipients.as_slice() {
                [only] => Some(only.as_str()),
                _ => None,
            },
            rcpt_count: env.recipients.len(),
        };
        p.run(&stage, &args("check_recipient_access hash:access"))
    };
    let one = mock::envelope("s@x.test", &["r@example.org"]);
    assert_eq!(
        data(&mut p, &one),
        reject(
            554,
            "5.7.1",
            "<r@example.org>: Recipient address rejected: one recipient"
        )
    );
    let two = mock::envelope("s@x.test", &["r@example.org", "q@example.org"]);
    assert!(data(&mut p, &two).is_continue());
    assert_eq!(
        p.run(
            &Stage {
                hook: Hook::Data,
                client: &c,
                helo: None,
                sender: Some(""),
                recipient: None,
                rcpt_count: 2,
            },
            &args("reject_multi_recipient_bounce reject"),
        ),
        reject(
            550,
            "5.5.3",
            "<DATA>: Data command rejected: Multi-recipient bounce"
        )
    );
}
