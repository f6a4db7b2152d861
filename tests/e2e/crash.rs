//! Durability: kill -9 at any moment loses no acknowledged message and
//! delivers no recipient twice; damaged queue files are set aside.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::harness::*;

/// Token → number of Maildir files carrying it (Subject line).
fn delivered_tokens(server: &Server, user: &str) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for f in server.maildir(user) {
        let text = std::fs::read_to_string(&f).unwrap_or_default();
        if let Some(token) = text.lines().find_map(|l| l.strip_prefix("Subject: ")) {
            *seen.entry(token.to_owned()).or_insert(0) += 1;
        }
    }
    seen
}

fn queue_is_empty(dir: &std::path::Path) -> bool {
    ["incoming", "active", "deferred"].iter().all(|q| {
        std::fs::read_dir(dir.join("data/queue").join(q)).map_or(true, |mut d| d.next().is_none())
    })
}

#[test]
fn kill_dash_nine_mid_load_loses_nothing_and_duplicates_nothing() {
    let dir = tempdir();
    let config = base_config(dir.path(), "default_destination_concurrency_limit = 4\n");
    let server = Server::start(dir.path(), &config);
    let clients: Vec<_> = (0..4)
        .map(|k| {
            Command::new("python3")
                .arg(client_script())
                .args([
                    "--server",
                    &server.server_arg(),
                    "--to",
                    "crash@localhost",
                    "--count",
                    "60",
                ])
                .args(["--token", &format!("c{k}"), "--size", "2000"])
                .stdout(Stdio::piped())
                .spawn()
                .expect("python3")
        })
        .collect();
    // Let some mail be accepted and delivered, then crash mid-stream.
    wait_for(Duration::from_secs(30), || {
        (server.maildir("crash").len() >= 25).then_some(())
    });
    server.kill9();
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    for mut c in clients {
        let out = c.stdout.take().expect("stdout");
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            match line.split(' ').collect::<Vec<_>>().as_slice() {
                ["OK", token, _id] => acknowledged.push((*token).to_owned()),
                _ => refused += 1,
            }
        }
        let _ = c.wait();
    }
    assert!(
        acknowledged.len() >= 25,
        "too few messages before the crash: {}",
        acknowledged.len()
    );
    assert!(refused > 0, "the crash came too late to test anything");

    // Restart on the same data directory: recovery delivers what was in flight.
    let path = dir.path().join("postern.toml");
    let server = Server::start_with(
        dir.path(),
        &["run", "--config", path.to_str().expect("path")],
        dir.path(),
        path.clone(),
    );
    wait_for(Duration::from_secs(30), || {
        queue_is_empty(dir.path()).then_some(())
    });
    assert!(
        queue_is_empty(dir.path()),
        "queue not drained: {}",
        server.log()
    );
    let seen = delivered_tokens(&server, "crash");
    for token in &acknowledged {
        assert_eq!(
            seen.get(token),
            Some(&1),
            "acknowledged {token} delivered {:?} times",
            seen.get(token)
        );
    }
    for (token, n) in &seen {
        assert_eq!(*n, 1, "{token} delivered {n} times");
    }
    assert!(server.stop());
}

#[test]
fn recovery_does_not_redeliver_what_reached_the_maildir() {
    let dir = tempdir();
    // First run: delivery fails (mail home blocked), so the message stays queued.
    let homes = dir.path().join("homes");
    std::fs::write(&homes, "blocker").expect("write");
    let config = base_config(
        dir.path(),
        &format!(
            "mail_home = \"{}/$user\"\nminimal_backoff_time = \"1h\"\nmaximal_backoff_time = \"1h\"\n",
            homes.display()
        ),
    );
    let server = Server::start(dir.path(), &config);
    let lines = server.smtplib(&[
        "--to",
        "once@localhost",
        "--to",
        "twice@localhost",
        "--token",
        "rec",
    ]);
    let id = lines[0].rsplit(' ').next().expect("id").to_owned();
    let queue = dir.path().join("data/queue");
    wait_for(Duration::from_secs(20), || {
        queue.join("deferred").join(&id).exists().then_some(())
    });
    assert!(server.stop());

    // Simulate a crash after recipient 0 reached its Maildir but before the queue
    // recorded it: the file is back in active/ and the Maildir has the delivery.
    std::fs::remove_file(&homes).expect("rm");
    std::fs::rename(
        queue.join("deferred").join(&id),
        queue.join("active").join(&id),
    )
    .expect("mv");
    let md = homes.join("once/Maildir");
    for sub in ["tmp", "new", "cur"] {
        std::fs::create_dir_all(md.join(sub)).expect("mkdir");
    }
    std::fs::write(
        md.join("cur").join(format!("1.M1P1N0Q{id}R0.mx.test:2,S")),
        "Subject: rec-0\n\n",
    )
    .expect("write");

    let path = dir.path().join("postern.toml");
    let server = Server::start_with(
        dir.path(),
        &["run", "--config", path.to_str().expect("path")],
        dir.path(),
        path.clone(),
    );
    let twice = homes.join("twice/Maildir");
    let got = wait_for(Duration::from_secs(20), || {
        (!maildir_files(&twice).is_empty()).then_some(())
    });
    assert!(got.is_some(), "{}", server.log());
    wait_for(Duration::from_secs(20), || {
        queue_is_empty(dir.path()).then_some(())
    });
    assert!(
        maildir_files(&md).is_empty(),
        "recipient 0 was delivered again"
    );
    assert!(
        server.log().contains("found after restart"),
        "{}",
        server.log()
    );
    assert!(server.stop());
}

#[test]
fn damaged_queue_files_go_to_corrupt() {
    let dir = tempdir();
    let queue = dir.path().join("data/queue");
    for q in ["incoming", "active", "deferred", "hold", "corrupt"] {
        std::fs::create_dir_all(queue.join(q)).expect("mkdir");
    }
    std::fs::write(
        queue.join("active/0000000000000001"),
        "POSTERN-QUEUE 1\nI 00",
    )
    .expect("write");
    std::fs::write(queue.join("deferred/0000000000000002"), "garbage\n").expect("write");
    std::fs::write(queue.join("incoming/0000000000000003"), "half-written").expect("write");
    let server = Server::start(dir.path(), &base_config(dir.path(), ""));
    wait_for(Duration::from_secs(20), || {
        (queue.join("corrupt/0000000000000001").exists()
            && queue.join("corrupt/0000000000000002").exists())
        .then_some(())
    });
    assert!(
        queue.join("corrupt/0000000000000001").exists(),
        "{}",
        server.log()
    );
    assert!(
        queue.join("corrupt/0000000000000002").exists(),
        "{}",
        server.log()
    );
    assert!(!queue.join("incoming/0000000000000003").exists());
    assert!(server.log().contains("moved to the corrupt queue"));
    // Still serving.
    server.connect().cmd("NOOP", "250");
    assert!(server.stop());
}
