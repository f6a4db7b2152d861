//! The default plugin bundle through the real server, beyond the seed setup:
//! the embedded configuration with a user's procmail rules (folders by
//! extension, formail headers, redirect, discard), and the restrictions
//! plugin's access tables, HELO checks and `reject_unauth_pipelining`.

use std::path::Path;
use std::time::Duration;

use crate::harness::*;

/// The plugin tables of the bundle, as a configuration names them.
const BUNDLE: &str = r#"
[plugins.restrictions]
path = "builtin:restrictions"
capabilities = ["dns", "log"]
config = { mydestination = "$mydestination", relay_domains = "$relay_domains" }
files = { access = "access", helo = "helo.regexp" }

[plugins.mailfilter]
path = "builtin:mailfilter"
capabilities = ["home", "log"]
"#;

fn transcript(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn files_in(dir: &Path) -> Vec<String> {
    maildir_files(dir)
        .iter()
        .map(|f| std::fs::read_to_string(f).expect("read"))
        .collect()
}

#[test]
fn embedded_default_runs_each_users_procmail_rules() {
    let dir = tempdir();
    // The embedded default keeps mail homes in ./postern-data/mail/USER.
    let home = dir.path().join("postern-data/mail/ann");
    std::fs::create_dir_all(&home).expect("mkdir");
    std::fs::write(
        home.join(".procmailrc"),
        "# ann's rules\n\
         MAILDIR=$HOME/Maildir/\n\
         :0fhw\n\
         | formail -A \"X-Filtered: yes\"\n\
         :0\n\
         * EXTENSION ?? ^lists$\n\
         .Lists/\n\
         :0\n\
         * ^Subject:.*forward me\n\
         ! bob@localhost\n\
         :0 B\n\
         * unsubscribe now\n\
         /dev/null\n",
    )
    .expect("rules");
    let server = Server::start_with(
        dir.path(),
        &["run", "--listen", "127.0.0.1:0"],
        dir.path(),
        dir.path().join("none"),
    );
    let send = |to: &str, subject: &str, body: &str| {
        let out = server.swaks(&[
            "--from",
            "carol@example.org",
            "--to",
            to,
            "--header",
            &format!("Subject: {subject}"),
            "--body",
            body,
        ]);
        let t = transcript(&out);
        assert!(t.contains("250 2.0.0 Ok: queued"), "{t}");
    };
    send("ann+lists@localhost", "weekly digest", "news");
    send("ann@localhost", "please forward me", "fwd");
    send("ann@localhost", "offer", "click here to unsubscribe now");
    send("ann@localhost", "hello", "plain");

    let md = dir.path().join("postern-data/mail/ann/Maildir");
    let bob = dir.path().join("postern-data/mail/bob/Maildir");
    let done = wait_for(Duration::from_secs(20), || {
        (maildir_files(&md.join(".Lists")).len() == 1
            && maildir_files(&bob).len() == 1
            && maildir_files(&md).len() == 1)
            .then_some(())
    });
    assert!(done.is_some(), "{}", server.log());
    let lists = files_in(&md.join(".Lists"));
    assert!(
        lists[0].contains("weekly digest") && lists[0].contains("X-Filtered: yes"),
        "{}",
        lists[0]
    );
    let inbox = files_in(&md);
    assert!(
        inbox[0].contains("Subject: hello") && inbox[0].contains("X-Filtered: yes"),
        "{}",
        inbox[0]
    );
    let redirected = files_in(&bob);
    assert!(
        redirected[0].contains("please forward me")
            && redirected[0].contains("Delivered-To: ann@localhost"),
        "{}",
        redirected[0]
    );
    // The discarded message is nowhere, and the log says why.
    std::thread::sleep(Duration::from_millis(300));
    let all: Vec<String> = [files_in(&md), files_in(&md.join(".Lists")), files_in(&bob)].concat();
    assert!(!all.iter().any(|m| m.contains("unsubscribe now")));
    assert!(
        server.log().contains("discarded by mailfilter"),
        "{}",
        server.log()
    );
    assert!(server.stop());
}

#[test]
fn access_tables_helo_checks_and_pipelining_through_the_server() {
    let dir = tempdir();
    std::fs::write(
        dir.path().join("access"),
        "# sender access\n\
         spammer@bad.test REJECT Go away\n\
         bad.test 550 5.7.0 Your domain is not welcome\n\
         hold.test HOLD looked odd\n\
         drop.test DISCARD\n",
    )
    .expect("access");
    std::fs::write(
        dir.path().join("helo.regexp"),
        "/^localhost$/ REJECT You are not localhost\n",
    )
    .expect("helo table");
    let config = base_config(
        dir.path(),
        &format!(
            "{BUNDLE}\n[chains]\n\
             helo = [\"restrictions smtpd_helo_restrictions reject_invalid_helo_hostname check_helo_access regexp:helo\"]\n\
             mail = [\"restrictions smtpd_sender_restrictions reject_non_fqdn_sender check_sender_access hash:access\"]\n\
             data = [\"restrictions smtpd_data_restrictions reject_unauth_pipelining\"]\n"
        ),
    );
    let server = Server::start(dir.path(), &format!("smtpd_delay_reject = false\n{config}"));

    let mut s = server.connect();
    s.cmd(
        "EHLO localhost",
        "554 5.7.1 <localhost>: Helo command rejected: You are not localhost",
    );
    s.cmd(
        "EHLO bad_name!",
        "501 5.5.2 <bad_name!>: Helo command rejected: Invalid name",
    );
    s.cmd("EHLO client.example.org", "250");
    s.cmd(
        "MAIL FROM:<spammer@bad.test>",
        "554 5.7.1 <spammer@bad.test>: Sender address rejected: Go away",
    );
    s.cmd(
        "MAIL FROM:<other@bad.test>",
        "550 5.7.0 <other@bad.test>: Sender address rejected: Your domain is not welcome",
    );
    s.cmd(
        "MAIL FROM:<joe>",
        "504 5.5.2 <joe>: Sender address rejected: need fully-qualified address",
    );
    // DISCARD and HOLD accept the message, then drop it or keep it on hold.
    for (from, token) in [("x@drop.test", "dropped"), ("x@hold.test", "held")] {
        s.cmd(&format!("MAIL FROM:<{from}>"), "250");
        s.cmd("RCPT TO:<joe@localhost>", "250");
        s.cmd("DATA", "354");
        s.send(format!("Subject: {token}\r\n\r\n{token}\r\n.\r\n").as_bytes());
        let r = s.reply();
        assert!(r.starts_with("250 2.0.0 Ok: queued"), "{from}: {r}");
    }
    s.cmd("MAIL FROM:<friend@good.test>", "250");
    s.cmd("RCPT TO:<joe@localhost>", "250");
    s.cmd("DATA", "354");
    s.send(b"Subject: welcome\r\n\r\nhi\r\n.\r\n");
    assert!(s.reply().starts_with("250 2.0.0 Ok: queued"));
    s.cmd("QUIT", "221");
    let joe = server.wait_for_mail("joe", 1);
    assert_eq!(joe.len(), 1, "{}", server.log());
    assert!(
        std::fs::read_to_string(&joe[0])
            .expect("read")
            .contains("Subject: welcome")
    );
    let held = wait_for(Duration::from_secs(10), || {
        std::fs::read_dir(dir.path().join("data/queue/hold"))
            .ok()
            .and_then(|d| (d.count() == 1).then_some(()))
    });
    assert!(held.is_some(), "one message on hold\n{}", server.log());

    // A client that sends ahead without PIPELINING (after HELO, not EHLO).
    let mut p = server.connect();
    p.send(
        b"HELO client.example.org\r\nMAIL FROM:<friend@good.test>\r\nRCPT TO:<joe@localhost>\r\nDATA\r\n",
    );
    for want in ["250", "250", "250", "354"] {
        let r = p.reply();
        assert!(r.starts_with(want), "{want}: {r}");
    }
    p.send(b"Subject: rushed\r\n\r\nhi\r\n.\r\n");
    let r = p.reply();
    assert!(
        r.starts_with("503 5.5.0 <END-OF-MESSAGE>: End-of-data rejected: Improper use of SMTP command pipelining")
            || r.starts_with("503 5.5.0 <DATA>: Data command rejected: Improper use of SMTP command pipelining"),
        "{r}"
    );
    p.cmd("QUIT", "221");
    assert!(server.stop());
}

#[test]
fn filter_test_shows_the_bundle_steps_and_a_users_procmail_rules() {
    let dir = tempdir();
    let home = dir.path().join("postern-data/mail/ann");
    std::fs::create_dir_all(&home).expect("mkdir");
    std::fs::write(
        home.join(".procmailrc"),
        ":0\n* ^Subject: digest\n.Lists/\n",
    )
    .expect("rules");
    let eml = dir.path().join("m.eml");
    std::fs::write(&eml, "From: <carol@example.org>\nSubject: digest\n\nnews\n").expect("eml");
    // The embedded default, from the directory whose ./postern-data it uses.
    let out = std::process::Command::new(BIN)
        .current_dir(dir.path())
        .args([
            "filter-test",
            "--from",
            "carol@example.org",
            "--to",
            "ann@localhost",
            "--to",
            "x@remote.example",
        ])
        .arg(&eml)
        .output()
        .expect("filter-test");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("deliver <ann@localhost>: mailfilter: continue [set-folder Lists]"),
        "{text}"
    );
    // 127.0.0.1 is in mynetworks: the relay list passes it on to the next step.
    assert!(
        text.contains(
            "rcpt <ann@localhost>: restrictions smtpd_relay_restrictions permit_mynetworks \
             permit_sasl_authenticated defer_unauth_destination: continue"
        ),
        "{text}"
    );
}
