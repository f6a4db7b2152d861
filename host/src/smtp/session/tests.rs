//! Session tests over an in-memory pipe: each case is a transcript of commands
//! and the reply codes expected, with a real spool in a temporary directory.

use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::sync::{mpsc, watch};

use super::*;
use crate::queue::{QueueDirs, QueueFile, QueueId, QueueName};

struct Harness {
    client: DuplexStream,
    pending: Vec<u8>,
    dirs: QueueDirs,
    arrivals: mpsc::UnboundedReceiver<QueueId>,
    _stop: watch::Sender<bool>,
    _dir: tempfile::TempDir,
}

impl Harness {
    async fn start(extra_config: &str) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let (ctx, arrivals) = context_with(dir.path(), extra_config);
        let dirs = ctx.spool.dirs().clone();
        let (client, server) = tokio::io::duplex(256 * 1024);
        let (stop, stop_rx) = watch::channel(false);
        let session = Session::new(server, ctx, "127.0.0.1:40000".parse().expect("addr"));
        tokio::spawn(session.run(stop_rx));
        let mut h = Harness {
            client,
            pending: Vec::new(),
            dirs,
            arrivals,
            _stop: stop,
            _dir: dir,
        };
        h.expect("220").await;
        h
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.client.write_all(bytes).await.expect("write");
    }

    /// Reads one whole reply (all its lines).
    async fn reply(&mut self) -> String {
        let mut text = String::new();
        loop {
            while let Some(lf) = self.pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.pending.drain(..=lf).collect();
                let line = String::from_utf8_lossy(&line).into_owned();
                text.push_str(&line);
                if line.as_bytes().get(3) != Some(&b'-') {
                    return text;
                }
            }
            let mut buf = [0u8; 4096];
            let n = tokio::time::timeout(
                std::time::Duration::from_secs(5),
                self.client.read(&mut buf),
            )
            .await
            .expect("reply in time")
            .expect("read");
            if n == 0 {
                return text;
            }
            self.pending.extend_from_slice(&buf[..n]);
        }
    }

    async fn expect(&mut self, prefix: &str) -> String {
        let r = self.reply().await;
        assert!(r.starts_with(prefix), "expected {prefix:?}, got {r:?}");
        r
    }

    /// Sends one command line and checks the reply's start.
    async fn cmd(&mut self, line: &str, prefix: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes()).await;
        self.expect(prefix).await
    }

    fn queued(&mut self) -> QueueFile {
        let id = self.arrivals.try_recv().expect("a message was queued");
        QueueFile::read(&self.dirs.path(QueueName::Active, &id)).expect("queue file")
    }
}

#[tokio::test]
async fn a_whole_transaction_is_queued_with_received() {
    let mut h = Harness::start("").await;
    let ehlo = h.cmd("EHLO client.test", "250-mx.test").await;
    for ext in [
        "PIPELINING",
        "SIZE 10240000",
        "VRFY",
        "ENHANCEDSTATUSCODES",
        "8BITMIME",
        "SMTPUTF8",
        "CHUNKING",
    ] {
        assert!(ehlo.contains(ext), "{ext} missing from {ehlo}");
    }
    h.cmd(
        "MAIL FROM:<s@example.org> BODY=8BITMIME RET=HDRS ENVID=abc",
        "250 2.1.0",
    )
    .await;
    h.cmd(
        "RCPT TO:<joe+lists@localhost> NOTIFY=FAILURE ORCPT=rfc822;joe@x",
        "250 2.1.5",
    )
    .await;
    h.cmd("DATA", "354").await;
    h.send(b"Subject: hi\r\n\r\n..dot\r\n.\r\n").await;
    let r = h.expect("250 2.0.0 Ok: queued as ").await;
    let q = h.queued();
    assert!(r.contains(q.id.as_str()));
    let content = String::from_utf8_lossy(&q.content).into_owned();
    assert!(content.starts_with("Received: from client.test (unknown [127.0.0.1])\r\n\tby mx.test (postern) with ESMTP id "), "{content}");
    assert!(
        content.contains("\r\n\tfor <joe+lists@localhost>; "),
        "{content}"
    );
    assert!(
        content.ends_with("Subject: hi\r\n\r\n.dot\r\n"),
        "{content}"
    );
    assert_eq!(q.envelope.sender, "s@example.org");
    assert_eq!(q.envelope.params.envid.as_deref(), Some("abc"));
    assert_eq!(
        q.envelope.recipients[0].orcpt.as_deref(),
        Some("rfc822;joe@x")
    );
    assert_eq!(
        q.envelope.recipients[0]
            .notify
            .map(|n| n.keywords())
            .as_deref(),
        Some("FAILURE")
    );
    h.cmd("QUIT", "221 2.0.0").await;
}

#[tokio::test]
async fn sequencing_errors_use_postfix_replies() {
    let mut h = Harness::start("smtpd_helo_required = true\ndisable_vrfy_command = true\n").await;
    h.cmd("MAIL FROM:<a@b>", "503 5.5.1 Error: send HELO/EHLO first")
        .await;
    h.cmd("VRFY root", "502 5.5.1 VRFY command is disabled")
        .await;
    h.cmd("HELO c", "250 mx.test").await;
    h.cmd(
        "RCPT TO:<a@localhost>",
        "503 5.5.1 Error: need MAIL command",
    )
    .await;
    h.cmd("DATA", "503 5.5.1 Error: need MAIL command").await;
    h.cmd("MAIL FROM:<a@b>", "250").await;
    h.cmd("MAIL FROM:<a@b>", "503 5.5.1 Error: nested MAIL command")
        .await;
    h.cmd("DATA", "503 5.5.1 Error: need RCPT command").await;
    h.cmd(
        "RCPT TO:<x@elsewhere.example>",
        "554 5.7.1 <x@elsewhere.example>: Relay access denied",
    )
    .await;
    h.cmd("FOO", "502 5.5.2 Error: command not recognized")
        .await;
    h.cmd("RSET", "250 2.0.0 Ok").await;
    h.cmd("NOOP", "250 2.0.0 Ok").await;
    h.cmd("HELP", "214").await;
}

#[tokio::test]
async fn limits_size_recipients_and_unknown_users() {
    let dir = tempfile::tempdir().expect("tempdir");
    let users = dir.path().join("users");
    std::fs::write(&users, "alice\nbob\n").expect("users");
    let mut h = Harness::start(&format!(
        "message_size_limit = 100\nsmtpd_recipient_limit = 2\nlocal_recipient_maps = [\"{}\"]\n",
        users.display()
    ))
    .await;
    h.cmd("EHLO c", "250").await;
    h.cmd(
        "MAIL FROM:<a@b> SIZE=101",
        "552 5.3.4 Message size exceeds fixed limit",
    )
    .await;
    h.cmd("MAIL FROM:<a@b> SIZE=50", "250").await;
    h.cmd(
        "RCPT TO:<carol@localhost>",
        "550 5.1.1 <carol@localhost>: Recipient address rejected: User unknown in local recipient table",
    )
    .await;
    h.cmd("RCPT TO:<alice@localhost>", "250").await;
    h.cmd("RCPT TO:<bob+x@localhost>", "250").await;
    h.cmd(
        "RCPT TO:<alice@mx.test>",
        "452 4.5.3 Error: too many recipients",
    )
    .await;
    h.cmd("DATA", "354").await;
    let mut big = vec![b'x'; 300];
    big.extend_from_slice(b"\r\n.\r\n");
    h.send(&big).await;
    h.expect("552 5.3.4").await;
    assert!(
        h.arrivals.try_recv().is_err(),
        "an oversized message must not be queued"
    );
    // The session goes on after the refusal.
    h.cmd("MAIL FROM:<a@b>", "250").await;
}

#[tokio::test]
async fn pipelined_group_gets_all_replies_and_is_not_flagged() {
    let mut h = Harness::start("").await;
    h.cmd("EHLO c", "250").await;
    h.send(b"MAIL FROM:<a@b>\r\nRCPT TO:<u1@localhost>\r\nRCPT TO:<nobody@else.example>\r\nRCPT TO:<u2@localhost>\r\nDATA\r\n")
        .await;
    h.expect("250 2.1.0").await;
    h.expect("250 2.1.5").await;
    h.expect("554 5.7.1").await;
    h.expect("250 2.1.5").await;
    h.expect("354").await;
    h.send(b"Subject: p\r\n\r\nx\r\n.\r\nQUIT\r\n").await;
    h.expect("250 2.0.0").await;
    h.expect("221").await;
    assert_eq!(h.queued().envelope.recipients.len(), 2);
}

#[tokio::test]
async fn smuggled_end_of_data_stays_inside_one_message() {
    for smuggle in [&b"\n.\n"[..], b"\n.\r\n", b"\r\n.\n", b"\r.\r\n"] {
        let mut h = Harness::start("").await;
        h.cmd("EHLO c", "250").await;
        h.cmd("MAIL FROM:<a@b>", "250").await;
        h.cmd("RCPT TO:<u@localhost>", "250").await;
        h.cmd("DATA", "354").await;
        let mut msg = b"Subject: one\r\n\r\nfirst".to_vec();
        msg.extend_from_slice(smuggle);
        msg.extend_from_slice(b"MAIL FROM:<evil@x>\r\nRCPT TO:<victim@localhost>\r\nDATA\r\nSubject: two\r\n\r\n.\r\n");
        h.send(&msg).await;
        // Exactly one reply for exactly one message.
        h.expect("250 2.0.0 Ok: queued").await;
        h.cmd("NOOP", "250 2.0.0 Ok").await;
        let q = h.queued();
        assert!(
            h.arrivals.try_recv().is_err(),
            "{smuggle:?} split the message"
        );
        assert_eq!(q.envelope.recipients.len(), 1);
        let content = String::from_utf8_lossy(&q.content).into_owned();
        assert!(
            content.contains("MAIL FROM:<evil@x>\r\n"),
            "{smuggle:?}: {content}"
        );
        assert!(
            !content.contains('\n') || !content.replace("\r\n", "").contains('\n'),
            "bare LF stored: {content:?}"
        );
    }
}

#[tokio::test]
async fn bare_newline_reject_mode_hangs_up() {
    let mut h = Harness::start("smtpd_forbid_bare_newline = \"reject\"\n").await;
    h.cmd("EHLO c", "250").await;
    h.cmd("MAIL FROM:<a@b>", "250").await;
    h.cmd("RCPT TO:<u@localhost>", "250").await;
    h.cmd("DATA", "354").await;
    h.send(b"Subject: x\n\n.\n").await;
    h.expect("521 5.5.2 mx.test Error: bare <LF> received")
        .await;
    assert!(h.arrivals.try_recv().is_err());
}

#[tokio::test]
async fn bdat_chunks_and_errors_stay_in_sync() {
    let mut h = Harness::start("message_size_limit = 60\n").await;
    h.cmd("EHLO c", "250").await;
    // A chunk without a transaction is read and refused, not parsed as commands.
    h.send(b"BDAT 12\r\nNOOP\r\nNOOP\r\n").await;
    h.expect("503 5.5.1 Error: need MAIL command").await;
    h.cmd("MAIL FROM:<a@b>", "250").await;
    h.cmd("RCPT TO:<u@localhost>", "250").await;
    h.send(b"BDAT 14\r\nSubject: c\r\n\r\n").await;
    h.expect("250 2.0.0 Ok: 14 bytes").await;
    h.cmd("DATA", "503 5.5.1").await;
    h.send(b"BDAT 5 LAST\r\nbody\n").await;
    h.expect("250 2.0.0 Ok: queued as").await;
    let q = h.queued();
    assert!(String::from_utf8_lossy(&q.content).ends_with("Subject: c\r\n\r\nbody\r\n"));
    // Oversized: the chunks are still consumed, then 552.
    h.cmd("MAIL FROM:<a@b>", "250").await;
    h.cmd("RCPT TO:<u@localhost>", "250").await;
    let mut chunk = b"BDAT 100 LAST\r\n".to_vec();
    chunk.extend_from_slice(&[b'y'; 100]);
    h.send(&chunk).await;
    h.expect("552 5.3.4").await;
    h.cmd("NOOP", "250").await;
}

#[tokio::test]
async fn long_lines_and_the_hard_error_limit() {
    let mut h = Harness::start("smtpd_hard_error_limit = 3\n").await;
    let mut long = vec![b'N'; 5000];
    long.extend_from_slice(b"\r\n");
    h.send(&long).await;
    h.expect("500 5.5.2 Error: line too long").await;
    h.cmd("NOOP", "250").await;
    h.cmd("BOGUS", "502").await;
    h.cmd("BOGUS", "502").await;
    h.expect("421 4.7.0 mx.test Error: too many errors").await;
    assert_eq!(h.reply().await, "", "the connection must be closed");
}

#[tokio::test]
async fn timeout_gets_421() {
    let mut h = Harness::start("smtpd_timeout = 1\n").await;
    h.send(b"EHLO c\r\nMAIL FROM:<a@b>\r\n").await;
    h.expect("250").await;
    h.expect("250").await;
    h.expect("421 4.4.2 mx.test Error: timeout exceeded").await;
}

#[tokio::test]
async fn talking_before_the_greeting_or_out_of_turn_is_recorded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ctx = context(dir.path());
    let (mut client, server) = tokio::io::duplex(4096);
    client.write_all(b"HELO early\r\n").await.expect("write");
    let mut session = Session::new(server, ctx.clone(), "127.0.0.1:1".parse().expect("addr"));
    let (_stop, mut stop_rx) = watch::channel(false);
    client.shutdown().await.expect("shutdown");
    let _ = session.converse(&mut stop_rx).await;
    assert!(session.improper_pipelining());

    let (mut client, server) = tokio::io::duplex(4096);
    let mut session = Session::new(server, ctx.clone(), "127.0.0.1:1".parse().expect("addr"));
    let talk = tokio::spawn(async move {
        let mut buf = [0u8; 512];
        let _ = client.read(&mut buf).await;
        // DATA ends a pipelined group: the content must wait for 354.
        client.write_all(b"EHLO c\r\n").await.expect("write");
        let _ = client.read(&mut buf).await;
        client
            .write_all(b"MAIL FROM:<a@b>\r\nRCPT TO:<u@localhost>\r\nDATA\r\nSubject: early\r\n\r\n.\r\nQUIT\r\n")
            .await
            .expect("write");
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest).await;
    });
    let _ = session.converse(&mut stop_rx).await;
    assert!(
        session.improper_pipelining(),
        "content sent before 354 must be recorded"
    );
    drop(session);
    talk.await.expect("client");

    // A well-behaved client (pipelining only what RFC 2920 allows) is not flagged.
    let (mut client, server) = tokio::io::duplex(4096);
    let mut session = Session::new(
        server,
        context(&dir.path().join("second")),
        "127.0.0.1:1".parse().expect("addr"),
    );
    let talk = tokio::spawn(async move {
        let mut buf = [0u8; 512];
        let _ = client.read(&mut buf).await;
        client.write_all(b"EHLO c\r\n").await.expect("write");
        let _ = client.read(&mut buf).await;
        client
            .write_all(b"MAIL FROM:<a@b>\r\nRCPT TO:<u@localhost>\r\nDATA\r\n")
            .await
            .expect("write");
        let _ = client.read(&mut buf).await;
        client
            .write_all(b"Subject: ok\r\n\r\n.\r\n")
            .await
            .expect("write");
        let _ = client.read(&mut buf).await;
        client.write_all(b"QUIT\r\n").await.expect("write");
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest).await;
    });
    let _ = session.converse(&mut stop_rx).await;
    assert!(!session.improper_pipelining());
    drop(session);
    talk.await.expect("client");
}

/// A context whose spool lives in `dir`, with `extra` configuration lines.
fn context_with(
    dir: &std::path::Path,
    extra: &str,
) -> (SessionContext, mpsc::UnboundedReceiver<QueueId>) {
    let text = format!(
        "myhostname = \"mx.test\"\nmydestination = [\"localhost\", \"mx.test\"]\nrecipient_delimiter = \"+\"\ndata_directory = \"{}\"\n{extra}",
        dir.display()
    );
    let cfg = Config::parse(&text, "test").expect("config");
    let resolver = Resolver::load(&cfg).expect("resolver");
    let (tx, arrivals) = mpsc::unbounded_channel();
    let spool = Spool::open(QueueDirs::new(cfg.queue_directory()), tx).expect("spool");
    let runtime =
        crate::plugin::PluginRuntime::new(dir, &dir.join("cache"), &[]).expect("plugin runtime");
    let ctx = SessionContext {
        config: Arc::new(cfg),
        resolver: Arc::new(resolver),
        spool: Arc::new(spool),
        policy: Arc::new(Policy::empty(runtime)),
    };
    (ctx, arrivals)
}

/// A context whose arrivals nobody reads.
fn context(dir: &std::path::Path) -> SessionContext {
    context_with(dir, "").0
}
