use super::*;

#[test]
fn embedded_default_is_valid() {
    let cfg = Config::embedded().expect("embedded default parses");
    assert_eq!(cfg.listen, vec!["127.0.0.1:2525".parse().expect("addr")]);
    assert!(cfg.is_local_domain("localhost"));
    assert!(cfg.is_local_domain(&cfg.myhostname.to_uppercase()));
    assert!(cfg.in_mynetworks("127.1.2.3".parse().expect("ip")));
    assert!(cfg.in_mynetworks("::1".parse().expect("ip")));
    assert!(!cfg.in_mynetworks("192.168.1.1".parse().expect("ip")));
    assert_eq!(
        cfg.mail_home,
        MailHome::Template("./postern-data/mail/$user".into())
    );
}

#[test]
fn postfix_spellings_are_accepted() {
    let cfg = Config::parse(
        r#"
myhostname = "fire.deimos.fr"
mydestination = "deimos.fr, fire, localhost"
mynetworks = "127.0.0.0/8, 192.168.0.0/24, 10.8.0.0"
smtpd_helo_required = "yes"
disable_vrfy_command = true
smtpd_timeout = "5m"
smtpd_banner = "$myhostname - Microsoft Exchange (5.5)"
alias_maps = ["hash:/etc/aliases"]
"#,
        "t.toml",
    )
    .expect("parses");
    assert_eq!(cfg.mydestination, ["deimos.fr", "fire", "localhost"]);
    assert_eq!(cfg.mydomain, "deimos.fr");
    assert_eq!(cfg.myorigin, "fire.deimos.fr");
    assert!(cfg.in_mynetworks("10.8.0.0".parse().expect("ip")));
    assert!(!cfg.in_mynetworks("10.8.0.1".parse().expect("ip")));
    assert!(cfg.in_mynetworks("::ffff:192.168.0.7".parse().expect("ip")));
    assert!(cfg.smtpd_helo_required && cfg.disable_vrfy_command);
    assert_eq!(cfg.smtpd_timeout, Duration::from_secs(300));
    assert_eq!(
        cfg.smtpd_banner,
        "fire.deimos.fr - Microsoft Exchange (5.5)"
    );
    assert_eq!(cfg.alias_maps, [PathBuf::from("/etc/aliases")]);
}

#[test]
fn every_error_names_file_line_and_key() {
    let text = "myhostname = \"ok.example\"\nbogus_key = 1\nsmtpd_timeout = \"5 parsecs\"\nmynetworks = [\"300.1.1.1/8\"]\n";
    let errs = Config::parse(text, "bad.toml").expect_err("must fail");
    let shown: Vec<String> = errs.0.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 3, "{shown:?}");
    assert!(
        shown[0].starts_with("bad.toml:2: bogus_key: unknown key"),
        "{shown:?}"
    );
    assert!(
        shown[1].starts_with("bad.toml:3: smtpd_timeout: "),
        "{shown:?}"
    );
    assert!(
        shown[2].starts_with("bad.toml:4: mynetworks: "),
        "{shown:?}"
    );
}

#[test]
fn syntax_errors_name_the_line() {
    let errs = Config::parse("a = 1\nb = = 2\n", "syn.toml").expect_err("must fail");
    assert_eq!(errs.0[0].line, 2, "{errs}");
}

#[test]
fn durations_follow_postfix_units() {
    for (text, secs) in [
        ("\"300s\"", 300),
        ("\"5m\"", 300),
        ("\"1h\"", 3600),
        ("\"2d\"", 172_800),
        ("42", 42),
    ] {
        let cfg = Config::parse(&format!("smtpd_timeout = {text}\n"), "t").expect("parses");
        assert_eq!(cfg.smtpd_timeout, Duration::from_secs(secs), "{text}");
    }
}

#[test]
fn cross_key_checks() {
    let errs = Config::parse("mail_home = \"/var/mail\"\n", "t").expect_err("must fail");
    assert_eq!(errs.0[0].key, "mail_home");
    assert_eq!(errs.0[0].line, 1);
    let errs = Config::parse("home_mailbox = \"Mailbox\"\n", "t").expect_err("must fail");
    assert_eq!(errs.0[0].key, "home_mailbox");
}

#[test]
fn plugins_and_chains() {
    let cfg = Config::parse(
        r#"
data_directory = "/tmp/pd"

[plugins.rbl]
path = "rbl.wasm"
capabilities = ["dns", "log"]
timeout = "250ms"
memory_limit = "32M"
on_error = "continue"
config = { zones = ["zen.test"], weight = 2 }

[plugins.tag]
path = "/opt/tag.wasm"
files = { header_checks = "regexp:/etc/postfix/header_checks", body_checks = "body.regexp" }

[chains]
connect = ["rbl zen.test bl.test"]
data = ["tag", "rbl"]
"#,
        "p.toml",
    )
    .expect("parses");
    assert_eq!(cfg.plugin_directory, PathBuf::from("/tmp/pd/plugins"));
    let rbl = &cfg.plugins["rbl"];
    assert_eq!(rbl.capabilities, [Capability::Dns, Capability::Log]);
    assert_eq!(rbl.timeout, Duration::from_millis(250));
    assert_eq!(rbl.memory_limit, 32 << 20);
    assert_eq!(rbl.on_error, OnError::Continue);
    assert_eq!(rbl.config_json, r#"{"weight":2,"zones":["zen.test"]}"#);
    assert_eq!(rbl.line, 4);
    assert_eq!(cfg.plugins["tag"].on_error, OnError::Tempfail);
    assert_eq!(
        cfg.plugins["tag"].files["header_checks"],
        PathBuf::from("/etc/postfix/header_checks")
    );
    assert_eq!(
        cfg.plugins["tag"].files["body_checks"],
        PathBuf::from("body.regexp")
    );
    assert_eq!(
        cfg.chains.get(Stage::Connect),
        [Step {
            plugin: "rbl".into(),
            args: vec!["zen.test".into(), "bl.test".into()]
        }]
    );
    assert_eq!(cfg.chains.get(Stage::Data).len(), 2);
    assert!(cfg.chains.get(Stage::Rcpt).is_empty());
}

#[test]
fn plugin_errors_point_into_the_table() {
    let text = "[plugins.a]\npath = \"a.wasm\"\ncapabilities = [\"net\"]\n\n[plugins.b]\ntimeout = \"1s\"\n\n[chains]\nrcpt = [\"a\", \"missing x\"]\nbogus = [\"a\"]\n";
    let errs = Config::parse(text, "p.toml").expect_err("must fail");
    let shown: Vec<String> = errs.0.iter().map(ToString::to_string).collect();
    assert!(
        shown
            .iter()
            .any(|e| e.starts_with("p.toml:3: plugins.a.capabilities: unknown capability `net`")),
        "{shown:?}"
    );
    assert!(
        shown
            .iter()
            .any(|e| e.starts_with("p.toml:5: plugins.b.path: missing")),
        "{shown:?}"
    );
    assert!(
        shown.iter().any(
            |e| e.starts_with("p.toml:9: chains.rcpt: step `missing x` names plugin `missing`")
        ),
        "{shown:?}"
    );
    assert!(
        shown
            .iter()
            .any(|e| e.starts_with("p.toml:10: chains.bogus: unknown stage")),
        "{shown:?}"
    );
}

#[test]
fn data_directory_override_reaches_derived_values() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("p.toml");
    std::fs::write(&path, "myhostname = \"mx.test\"\n").expect("write");
    let cfg = Config::load_with(Some(&path), Some(Path::new("/srv/pd"))).expect("load");
    assert_eq!(cfg.data_directory, PathBuf::from("/srv/pd"));
    assert_eq!(
        cfg.mail_home,
        MailHome::Template("/srv/pd/mail/$user".into())
    );
    assert_eq!(cfg.plugin_directory, PathBuf::from("/srv/pd/plugins"));
    assert_eq!(
        cfg.plugin_cache_directory,
        PathBuf::from("/srv/pd/plugin-cache")
    );
}

#[test]
fn plugin_settings_may_name_main_parameters() {
    let cfg = Config::parse(
        r#"
myhostname = "mx.example.test"
mydestination = "example.test, localhost"
relay_domains = "$mydestination, relay.test"
mynetworks = "127.0.0.0/8"
recipient_delimiter = "+"
"#,
        "t.toml",
    )
    .expect("parses");
    assert_eq!(
        cfg.relay_domains,
        ["example.test", "localhost", "relay.test"]
    );
    let json = cfg
        .expand_plugin_config(
            r#"{"mydestination": "$mydestination", "relay_domains": "${relay_domains}",
                "nets": "$mynetworks", "helo": "$myhostname ok", "d": "$recipient_delimiter",
                "n": 3, "files": {"x": "$nope"}}"#,
        )
        .expect("expands");
    let v: serde_json::Value = serde_json::from_str(&json).expect("json");
    assert_eq!(
        v["mydestination"],
        serde_json::json!(["example.test", "localhost"])
    );
    assert_eq!(v["relay_domains"][2], "relay.test");
    assert_eq!(v["nets"], serde_json::json!(["127.0.0.0/8"]));
    assert_eq!(v["helo"], "mx.example.test ok");
    assert_eq!(v["d"], "+");
    assert_eq!(v["n"], 3);
    assert_eq!(v["files"]["x"], "$nope", "unknown names stay as they are");
    assert!(
        Config::embedded()
            .expect("default")
            .relay_domains
            .is_empty()
    );
}
