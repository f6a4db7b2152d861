//! Postfix's replies, checked through real clients against the real server.

use crate::harness::*;

fn swaks_transcript(server: &Server, args: &[&str]) -> String {
    let out = server.swaks(args);
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn swaks_sees_relay_unknown_user_and_size_refusals() {
    let dir = tempdir();
    let users = dir.path().join("users");
    std::fs::write(&users, "alice\n").expect("users");
    let server = Server::start(
        dir.path(),
        &base_config(
            dir.path(),
            &format!(
                "message_size_limit = 2000\nlocal_recipient_maps = [\"{}\"]\n",
                users.display()
            ),
        ),
    );
    let t = swaks_transcript(&server, &["--to", "someone@example.com"]);
    assert!(
        t.contains("<** 554 5.7.1 <someone@example.com>: Relay access denied"),
        "{t}"
    );
    let t = swaks_transcript(&server, &["--to", "mallory@localhost"]);
    assert!(
        t.contains("<** 550 5.1.1 <mallory@localhost>: Recipient address rejected: User unknown in local recipient table"),
        "{t}"
    );
    let big = "y".repeat(5000);
    let t = swaks_transcript(&server, &["--to", "alice@localhost", "--body", &big]);
    assert!(
        t.contains("<** 552 5.3.4 Message size exceeds fixed limit"),
        "{t}"
    );
    let t = swaks_transcript(&server, &["--to", "alice@localhost", "--pipeline"]);
    assert!(t.contains("<-  250 2.0.0 Ok: queued as"), "{t}");
    assert_eq!(server.wait_for_mail("alice", 1).len(), 1);
}

#[test]
fn helo_required_vrfy_disabled_and_error_limit() {
    let dir = tempdir();
    let server = Server::start(
        dir.path(),
        &base_config(
            dir.path(),
            "smtpd_helo_required = \"yes\"\ndisable_vrfy_command = \"yes\"\nsmtpd_hard_error_limit = 4\nsmtpd_banner = \"$myhostname ESMTP ready\"\n",
        ),
    );
    let mut s = server.connect();
    assert_eq!(s.greeting, "220 mx.test ESMTP ready\r\n");
    s.cmd(
        "MAIL FROM:<a@example.org>",
        "503 5.5.1 Error: send HELO/EHLO first",
    );
    s.cmd("VRFY root", "502 5.5.1 VRFY command is disabled");
    let ehlo = s.cmd("EHLO c.test", "250-mx.test");
    assert!(!ehlo.contains("VRFY"), "{ehlo}");
    s.cmd("XYZZY", "502 5.5.2");
    s.cmd("XYZZY", "502 5.5.2");
    assert_eq!(s.reply(), "421 4.7.0 mx.test Error: too many errors\r\n");
    assert!(s.closed());
}

#[test]
fn idle_client_times_out_with_421() {
    let dir = tempdir();
    let server = Server::start(
        dir.path(),
        &base_config(dir.path(), "smtpd_timeout = \"1s\"\n"),
    );
    let mut s = server.connect();
    s.cmd("HELO c.test", "250 mx.test");
    let r = s.reply();
    assert_eq!(r, "421 4.4.2 mx.test Error: timeout exceeded\r\n");
    assert!(s.closed());
}

#[test]
fn sigterm_says_421_to_idle_sessions_and_exits_cleanly() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &base_config(dir.path(), ""));
    let mut idle = server.connect();
    idle.cmd("EHLO c.test", "250");
    let mut busy = server.connect();
    busy.cmd("EHLO c.test", "250");
    busy.cmd("MAIL FROM:<a@example.org>", "250");
    busy.cmd("RCPT TO:<late@localhost>", "250");
    busy.cmd("DATA", "354");
    busy.send(b"Subject: in flight\r\n\r\n");
    let pid = server.child.id();
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status();
    assert!(
        idle.reply()
            .starts_with("421 4.3.2 mx.test Service shutting down")
    );
    // A message in the middle of DATA may still finish.
    busy.send(b"finished after SIGTERM\r\n.\r\n");
    assert!(busy.reply().starts_with("250 2.0.0 Ok: queued"));
    assert!(server.stop(), "exit status must be 0");
}
