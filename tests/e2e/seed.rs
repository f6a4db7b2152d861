//! The seed setup end to end: the Postfix main.cf of the how-to postern is
//! built from, imported with `postern import-postfix`, run with the default
//! plugin bundle built into the binary. The RBL zones it names and the sender
//! domains are served by rbldnsd on loopback; clients bind to 127.0.0.2 and
//! 127.0.0.3, outside `mynetworks = 127.0.0.1/32`, as the mail of strangers.
//! Every check runs twice: before and after a hot reload of the plugins.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::dns::Rbldnsd;
use crate::harness::{BIN, Server, maildir_files, postern_check_ok, tempdir, wait_for};

/// The listed client, and one that no list knows.
const LISTED: &str = "127.0.0.2";
const CLEAN: &str = "127.0.0.3";

const SPAMCOP_TXT: &str = "Blocked - see https://www.spamcop.net/bl.shtml?127.0.0.2";

fn seed_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/seed")
}

/// A message with a file attachment named `filename`.
fn with_attachment(filename: &str) -> String {
    format!(
        "From: <alice@known.example.test>\r\nTo: <user@deimos.fr>\r\nSubject: report\r\n\
         MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n\
         --b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
         --b1\r\nContent-Type: application/octet-stream; name=\"{filename}\"\r\n\
         Content-Disposition: attachment; filename=\"{filename}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--b1--\r\n"
    )
}

/// Writes a message for `swaks --data @FILE` (a large one does not fit in
/// an argument).
fn message_file(data: &Path, name: &str, text: &str) -> String {
    let path = data.join(format!("../{name}.eml"));
    std::fs::write(&path, text).expect("message file");
    format!("@{}", path.to_str().expect("path"))
}

/// The sender every accepted test message comes from (its domain has an A
/// record in the served zone).
const ALICE: &str = "alice@known.example.test";

/// swaks from `source`, MAIL FROM `from`, RCPT TO `to`, with `extra`
/// arguments; asserts that the server said `reply` (at any step) and
/// returns the transcript.
fn expect(
    server: &Server,
    source: &str,
    from: &str,
    to: &str,
    extra: &[&str],
    reply: &str,
) -> String {
    let args = [
        &["--local-interface", source, "--helo", "client.example.test"][..],
        &["--from", from, "--to", to],
        extra,
    ]
    .concat();
    let out = server.swaks(&args);
    let transcript = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let said = transcript.lines().any(|l| {
        l.strip_prefix("<**")
            .or_else(|| l.strip_prefix("<-"))
            .is_some_and(|r| r.trim_start().starts_with(reply))
    });
    assert!(said, "expected {reply:?}:\n{transcript}\n{}", server.log());
    transcript
}

const QUEUED: &str = "250 2.0.0 Ok: queued";

fn checks(server: &Server, data: &Path, round: &str) {
    // VRFY refused, HELO required.
    let mut s = server.connect();
    assert!(
        s.greeting
            .starts_with("220 fire.deimos.fr - Microsoft Exchange (5.5)"),
        "{}",
        s.greeting
    );
    s.cmd("VRFY root", "502 5.5.1");
    s.cmd(
        "MAIL FROM:<a@known.example.test>",
        "503 5.5.1 Error: send HELO/EHLO first",
    );
    s.cmd("QUIT", "221");

    let rcpt_only = ["--quit-after", "RCPT"];
    // Relay denied for a stranger (not in mynetworks, not listed).
    expect(
        server,
        CLEAN,
        ALICE,
        "someone@example.com",
        &rcpt_only,
        "554 5.7.1 <someone@example.com>: Relay access denied",
    );
    // A DNS-listed client, with the list's TXT record.
    expect(
        server,
        LISTED,
        ALICE,
        "user@deimos.fr",
        &rcpt_only,
        &format!(
            "554 5.7.1 Service unavailable; Client host [{LISTED}] blocked using bl.spamcop.net; {SPAMCOP_TXT}"
        ),
    );
    // An unknown sender domain (NXDOMAIN in the served zone).
    expect(
        server,
        CLEAN,
        "bob@nowhere.example.test",
        "user@deimos.fr",
        &rcpt_only,
        "450 4.1.8 <bob@nowhere.example.test>: Sender address rejected: Domain not found",
    );
    // An .exe attachment, with the seed table's text.
    let exe = message_file(data, "exe", &with_attachment("virus.exe"));
    expect(
        server,
        CLEAN,
        ALICE,
        "user@deimos.fr",
        &["--data", &exe],
        "550 5.7.1 Attachment type not allowed. File \"virus.exe\" has the unacceptable extension \"exe\"",
    );

    // user+tag@ is delivered to user; a mailfilter rule files spam into a
    // folder, for messages under 256000 bytes only.
    let md = data.join("mail/user/Maildir");
    let inbox = maildir_files(&md).len();
    let spam = maildir_files(&md.join(".Spam")).len();
    let subject = |s: &str| format!("Subject: {s} {round}");
    expect(
        server,
        CLEAN,
        ALICE,
        "user+tag@deimos.fr",
        &["--header", &subject("plain")],
        QUEUED,
    );
    expect(
        server,
        CLEAN,
        ALICE,
        "user@deimos.fr",
        &["--header", &subject("[SPAM] small")],
        QUEUED,
    );
    let line = "x".repeat(76) + "\r\n";
    let big = format!(
        "From: <{ALICE}>\r\nTo: <user@deimos.fr>\r\n{}\r\n\r\n{}",
        subject("[SPAM] big"),
        line.repeat(260_000 / line.len())
    );
    let big = message_file(data, "big", &big);
    expect(
        server,
        CLEAN,
        ALICE,
        "user@deimos.fr",
        &["--data", &big],
        QUEUED,
    );
    let filed = wait_for(Duration::from_secs(20), || {
        let (i, s) = (
            maildir_files(&md).len(),
            maildir_files(&md.join(".Spam")).len(),
        );
        (i >= inbox + 2 && s > spam).then_some((i, s))
    });
    assert_eq!(
        filed,
        Some((inbox + 2, spam + 1)),
        "{round}: inbox gets the plain and the big message, .Spam the small spam\n{}",
        server.log()
    );
    let spam_files = maildir_files(&md.join(".Spam"));
    let newest = std::fs::read_to_string(spam_files.last().expect("spam")).expect("read");
    assert!(
        newest.contains(&format!("[SPAM] small {round}")),
        "{newest}"
    );
    assert!(newest.contains("Delivered-To: user@deimos.fr"), "{newest}");
}

#[test]
fn the_seed_postfix_setup_runs_on_postern_and_survives_a_hot_reload() {
    let dir = tempdir();
    let etc = dir.path().join("etc");
    let data = dir.path().join("data");
    let out = Command::new(BIN)
        .arg("import-postfix")
        .arg(seed_dir().join("main.cf"))
        .arg("-o")
        .arg(&etc)
        .output()
        .expect("import");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let nothing = "127.0.0.200\n";
    let dns = Rbldnsd::start_typed(&[
        (
            "bl.spamcop.net",
            "ip4set",
            &format!(":127.0.0.2:{SPAMCOP_TXT}\n{LISTED}\n"),
        ),
        ("blackhole.securitysage.com", "dnset", "listed.test\n"),
        ("relays.ordb.org", "ip4set", nothing),
        ("opm.blitzed.org", "ip4set", nothing),
        ("list.dsbl.org", "ip4set", nothing),
        ("cbl.abuseat.org", "ip4set", nothing),
        ("dul.dnsbl.sorbs.net", "ip4set", nothing),
        (
            "example.test",
            "generic",
            "known A 192.0.2.1\nknown MX 10 known.example.test\n",
        ),
    ]);

    // The test's own network: strangers are 127.0.0.2 and .3; DNS is rbldnsd.
    let config = etc.join("postern.toml");
    let imported = std::fs::read_to_string(&config).expect("imported");
    let mut text = format!("dns_nameservers = [\"127.0.0.1:{}\"]\n", dns.port);
    for line in imported.lines() {
        if line.starts_with("mynetworks = ") {
            text.push_str("mynetworks = [\"127.0.0.1/32\"]\n");
        } else {
            text.push_str(line);
            text.push('\n');
        }
    }
    std::fs::write(&config, text).expect("write config");
    postern_check_ok(&config);

    // The user's procmail rules, in the mail home.
    let home = data.join("mail/user");
    std::fs::create_dir_all(&home).expect("mkdir");
    std::fs::write(
        home.join(".procmailrc"),
        "MAILDIR=$HOME/Maildir/\nDEFAULT=$MAILDIR\n\n:0\n* < 256000\n* ^Subject:.*\\[SPAM\\]\n.Spam/\n",
    )
    .expect("procmailrc");

    let server = Server::start_with(
        dir.path(),
        &[
            "run",
            "--config",
            config.to_str().expect("path"),
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().expect("path"),
        ],
        dir.path(),
        config.clone(),
    );
    checks(&server, &data, "before");

    // Hot reload: the imported copy of the MIME table gains a rule.
    let reloads = server.log().matches("reloaded:").count();
    let table = etc.join("mime_header_checks.regexp");
    let mut rules = std::fs::read_to_string(&table).expect("table");
    rules.push_str("/name=\"[^\"]*\\.pdf\"/ REJECT No PDFs today\n");
    std::fs::write(&table, rules).expect("table");
    let reloaded = wait_for(Duration::from_secs(30), || {
        (server.log().matches("reloaded:").count() > reloads).then_some(())
    });
    assert!(reloaded.is_some(), "no reload:\n{}", server.log());
    let pdf = message_file(&data, "pdf", &with_attachment("report.pdf"));
    expect(
        &server,
        CLEAN,
        ALICE,
        "user@deimos.fr",
        &["--data", &pdf],
        "550 5.7.1 No PDFs today",
    );
    checks(&server, &data, "after");
    assert!(server.stop());
}
