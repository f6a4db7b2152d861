//! Mail accepted with real clients ends up, once, in the right Maildir.

use crate::harness::*;

#[test]
fn swaks_message_is_delivered_with_trace_headers() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &base_config(dir.path(), ""));
    let out = server.swaks(&[
        "--from",
        "sender@example.org",
        "--to",
        "joe+lists@localhost",
        "--header",
        "Subject: swaks e2e",
        "--body",
        "hello from swaks",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "swaks failed: {text}");
    let id = text
        .lines()
        .find_map(|l| l.split("Ok: queued as ").nth(1))
        .expect("queued reply")
        .trim()
        .to_owned();
    let files = server.wait_for_mail("joe", 1);
    assert_eq!(files.len(), 1, "{}", server.log());
    let mail = std::fs::read_to_string(&files[0]).expect("read");
    assert!(
        mail.starts_with(
            "Return-Path: <sender@example.org>\nDelivered-To: joe+lists@localhost\nReceived: from "
        ),
        "{mail}"
    );
    assert!(
        mail.contains(&format!(
            "by mx.test (postern) with ESMTP id {id}\n\tfor <joe+lists@localhost>;"
        )),
        "{mail}"
    );
    assert!(
        mail.contains("Subject: swaks e2e\n") && mail.contains("hello from swaks"),
        "{mail}"
    );
    assert!(!mail.contains('\r'), "Maildir files have LF line ends");
    // The queue is empty once delivered (the unlink follows the Maildir rename).
    let empty = wait_for(std::time::Duration::from_secs(10), || {
        std::fs::read_dir(dir.path().join("data/queue/active"))
            .expect("active")
            .next()
            .is_none()
            .then_some(())
    });
    assert!(empty.is_some(), "{}", server.log());
    assert!(server.stop(), "clean exit on SIGTERM");
}

#[test]
fn smtplib_messages_aliases_and_multiple_recipients() {
    let dir = tempdir();
    let aliases = dir.path().join("aliases");
    std::fs::write(
        &aliases,
        "# aliases(5)\npostmaster: root\nteam: alice,\n  bob@mx.test, carol\n",
    )
    .expect("aliases");
    let server = Server::start(
        dir.path(),
        &base_config(
            dir.path(),
            &format!("alias_maps = [\"hash:{}\"]\n", aliases.display()),
        ),
    );
    let lines = server.smtplib(&[
        "--to",
        "team@localhost",
        "--to",
        "dave@localhost",
        "--count",
        "3",
        "--reuse",
    ]);
    assert_eq!(
        lines.iter().filter(|l| l.starts_with("OK ")).count(),
        3,
        "{lines:?}"
    );
    for user in ["alice", "bob", "carol", "dave"] {
        let files = server.wait_for_mail(user, 3);
        assert_eq!(files.len(), 3, "{user}: {}", server.log());
    }
    let lines = server.smtplib(&["--to", "postmaster"]);
    assert!(lines[0].starts_with("OK "), "{lines:?}");
    assert_eq!(server.wait_for_mail("root", 1).len(), 1);
    let bob = std::fs::read_to_string(&server.maildir("bob")[0]).expect("read");
    assert!(bob.contains("Delivered-To: bob@mx.test\n"), "{bob}");
}

#[test]
fn bdat_over_a_raw_socket() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &base_config(dir.path(), ""));
    let mut s = server.connect();
    s.cmd("EHLO raw.test", "250");
    s.cmd("MAIL FROM:<a@example.org>", "250");
    s.cmd("RCPT TO:<eve@localhost>", "250");
    s.send(b"BDAT 22\r\nSubject: chunked\r\n\r\nab");
    assert!(s.reply().starts_with("250 2.0.0 Ok: 22 bytes"));
    s.send(b"BDAT 4 LAST\r\ncd\r\n");
    assert!(s.reply().starts_with("250 2.0.0 Ok: queued as"));
    s.cmd("QUIT", "221");
    let files = server.wait_for_mail("eve", 1);
    let mail = std::fs::read_to_string(&files[0]).expect("read");
    assert!(mail.ends_with("Subject: chunked\n\nabcd\n"), "{mail:?}");
}

#[test]
fn smuggling_attempts_deliver_one_message_only() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &base_config(dir.path(), ""));
    for (i, smuggle) in [&b"\n.\n"[..], b"\n.\r\n", b"\r\n.\n", b"\r.\r\n"]
        .iter()
        .enumerate()
    {
        let mut s = server.connect();
        s.cmd("EHLO raw.test", "250");
        s.cmd("MAIL FROM:<a@example.org>", "250");
        s.cmd("RCPT TO:<honest@localhost>", "250");
        s.cmd("DATA", "354");
        let mut msg = format!("Subject: smuggle {i}\r\n\r\nbefore").into_bytes();
        msg.extend_from_slice(smuggle);
        msg.extend_from_slice(b"MAIL FROM:<ceo@bank.example>\r\nRCPT TO:<victim@localhost>\r\nDATA\r\nSubject: forged\r\n\r\nforged\r\n.\r\n");
        s.send(&msg);
        assert!(s.reply().starts_with("250 2.0.0 Ok: queued"));
        s.cmd("QUIT", "221");
    }
    assert_eq!(server.wait_for_mail("honest", 4).len(), 4);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        server.maildir("victim").is_empty(),
        "a smuggled message was delivered"
    );
}

#[test]
fn embedded_default_config_serves_from_the_working_directory() {
    let dir = tempdir();
    let cwd = dir.path().join("cwd");
    std::fs::create_dir(&cwd).expect("mkdir");
    let server = Server::start_with(
        dir.path(),
        &["run", "--listen", "127.0.0.1:0"],
        &cwd,
        cwd.join("none"),
    );
    let mut s = server.connect();
    s.cmd("EHLO raw.test", "250");
    s.cmd("MAIL FROM:<a@example.org>", "250");
    s.cmd("RCPT TO:<someone+x@localhost>", "250");
    s.cmd("RCPT TO:<other@example.com>", "554 5.7.1");
    s.cmd("DATA", "354");
    s.send(b"Subject: default\r\n\r\nx\r\n.\r\n");
    assert!(s.reply().starts_with("250 2.0.0"));
    let md = cwd.join("postern-data/mail/someone/Maildir");
    let files = wait_for(std::time::Duration::from_secs(20), || {
        let f = maildir_files(&md);
        (!f.is_empty()).then_some(f)
    });
    assert!(files.is_some(), "{}", server.log());
}

#[test]
fn temporary_failure_is_deferred_listed_and_retried() {
    let dir = tempdir();
    // The mail home's parent is a file: delivery fails until it is removed.
    let blocker = dir.path().join("homes");
    std::fs::write(&blocker, "not a directory").expect("write");
    let server = Server::start(
        dir.path(),
        &base_config(
            dir.path(),
            &format!(
                "mail_home = \"{}/$user\"\nminimal_backoff_time = \"1s\"\nmaximal_backoff_time = \"2s\"\n",
                blocker.display()
            ),
        ),
    );
    let lines = server.smtplib(&["--to", "zed@localhost", "--token", "deferred"]);
    assert!(lines[0].starts_with("OK "), "{lines:?}");
    let id = lines[0].rsplit(' ').next().expect("id").to_owned();
    let listing = wait_for(std::time::Duration::from_secs(20), || {
        let text = server.queue_list();
        text.contains("cannot write").then_some(text)
    })
    .unwrap_or_else(|| panic!("no deferral shown; log: {}", server.log()));
    assert!(listing.starts_with("-Queue ID-"), "{listing}");
    assert!(
        listing.contains(&id) && listing.contains("sender@example.org"),
        "{listing}"
    );
    assert!(
        listing.contains("zed@localhost") && listing.contains("-- 1 Kbytes in 1 Request."),
        "{listing}"
    );
    // Fix the problem; the retry delivers.
    std::fs::remove_file(&blocker).expect("rm");
    let md = blocker.join("zed/Maildir");
    let files = wait_for(std::time::Duration::from_secs(20), || {
        let f = maildir_files(&md);
        (!f.is_empty()).then_some(f)
    });
    assert_eq!(files.map(|f| f.len()), Some(1), "{}", server.log());
    // The queue file goes once the delivery is recorded, just after the
    // Maildir file appears.
    let mut listing = String::new();
    let emptied = wait_for(std::time::Duration::from_secs(20), || {
        listing = server.queue_list();
        (listing == "Mail queue is empty\n").then_some(())
    });
    assert!(emptied.is_some(), "{listing}");
}
