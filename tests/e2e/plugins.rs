//! The plugin runtime through the real binary: plugins in Rust, Python and
//! JavaScript over SMTP, hostile plugins, capabilities, hot reload and the
//! plugin commands.

use std::process::Command;
use std::time::Duration;

use crate::components::install;
use crate::dns::Rbldnsd;
use crate::harness::*;

/// A configuration with `plugins` (TOML tables and chains appended).
/// Compiled plugins are shared between tests (the cache is keyed by content
/// hash, written atomically): each large component is compiled once per run.
fn config_with(dir: &std::path::Path, extra: &str, plugins: &str) -> String {
    let cache =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-plugin-cache");
    format!(
        "{}plugin_directory = \"{}\"\nplugin_cache_directory = \"{}\"\n{plugins}",
        base_config(dir, extra),
        dir.join("plugins").display(),
        cache.display()
    )
}

fn subject_of(path: &std::path::Path) -> String {
    let text = std::fs::read_to_string(path).expect("read");
    text.lines()
        .find_map(|l| l.strip_prefix("Subject: "))
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn javascript_plugin_tags_the_subject() {
    let dir = tempdir();
    let server = serve_plugin(
        dir.path(),
        "js-subject-tag",
        "tag.wasm",
        "[plugins.tag]\npath = \"tag.wasm\"\nconfig = { tag = \"[EXT]\" }\n[chains]\ndata = [\"tag\"]\n",
    );
    let lines = server.smtplib(&["--to", "joe@localhost", "--subject", "hello there"]);
    assert!(lines[0].starts_with("OK "), "{lines:?}\n{}", server.log());
    let files = server.wait_for_mail("joe", 1);
    assert_eq!(subject_of(&files[0]), "[EXT] hello there");
    assert!(server.stop());
}

#[test]
fn python_greylisting_defers_then_passes_and_remembers_across_restarts() {
    let dir = tempdir();
    install(
        "python-greylist",
        &dir.path().join("plugins"),
        "greylist.wasm",
    );
    let config = config_with(
        dir.path(),
        "",
        "[plugins.greylist]\npath = \"greylist.wasm\"\ncapabilities = [\"kv\", \"clock\", \"log\"]\ntimeout = \"2s\"\nconfig = { delay_secs = 1 }\n[chains]\nrcpt = [\"greylist\"]\n",
    );
    let server = Server::start(dir.path(), &config);
    let first = server.smtplib(&["--to", "Amy@localhost", "--token", "g1"]);
    assert!(
        first[0].contains("450")
            && first[0]
                .contains("Greylisted, see https://postgrey.schweikert.ch/help/localhost.html"),
        "{first:?}\n{}",
        server.log()
    );
    let early = server.smtplib(&["--to", "amy@localhost", "--token", "g2"]);
    assert!(early[0].contains("450"), "{early:?}");
    std::thread::sleep(Duration::from_millis(1300));
    let later = server.smtplib(&["--to", "amy@localhost", "--token", "g3"]);
    assert!(later[0].starts_with("OK "), "{later:?}\n{}", server.log());
    assert_eq!(server.wait_for_mail("amy", 1).len(), 1);
    assert!(server.log().contains("action=greylist"), "{}", server.log());
    // A Python component is too large to freeze after `configure` at load
    // (two more compilations): its instances are configured one by one.
    let list = plugin_list(&server);
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("greylist ") && l.ends_with(" per-instance")),
        "{text}"
    );
    assert!(server.stop());

    // The triplet survives a restart (kv is on disk); a new one is greylisted.
    let path = dir.path().join("postern.toml");
    let server = Server::start_with(
        dir.path(),
        &["run", "--config", path.to_str().expect("path")],
        dir.path(),
        path.clone(),
    );
    assert!(
        !server.log().contains("compiled"),
        "a restart must not recompile: {}",
        server.log()
    );
    let again = server.smtplib(&["--to", "amy@localhost", "--token", "g4"]);
    assert!(again[0].starts_with("OK "), "{again:?}\n{}", server.log());
    let other = server.smtplib(&["--to", "bob@localhost", "--token", "g5"]);
    assert!(other[0].contains("450"), "{other:?}");
    assert!(server.stop());
}

#[test]
fn rust_rbl_plugin_queries_a_real_dns_server() {
    let dir = tempdir();
    let dns = Rbldnsd::start(&[(
        "zen.test",
        ":127.0.0.2:Listed in zen.test, see https://zen.test/$\n127.0.0.1\n",
    )]);
    install(
        "postern_example_rbl",
        &dir.path().join("plugins"),
        "rbl.wasm",
    );
    let server = Server::start(
        dir.path(),
        &config_with(
            dir.path(),
            &format!("dns_nameservers = [\"127.0.0.1:{}\"]\n", dns.port),
            "[plugins.rbl]\npath = \"rbl.wasm\"\ncapabilities = [\"dns\", \"log\"]\nconfig = { zones = [\"zen.test\"] }\n[chains]\nconnect = [\"rbl\"]\n",
        ),
    );
    // 127.0.0.1 is listed: refused at RCPT (smtpd_delay_reject), with the TXT text.
    let listed = server.smtplib(&["--to", "joe@localhost", "--source", "127.0.0.1"]);
    assert!(
        listed[0].contains("554")
            && listed[0].contains("Listed in zen.test, see https://zen.test/127.0.0.1"),
        "{listed:?}\n{}",
        server.log()
    );
    // 127.0.0.2 is not.
    let clean = server.smtplib(&["--to", "joe@localhost", "--source", "127.0.0.2"]);
    assert!(clean[0].starts_with("OK "), "{clean:?}\n{}", server.log());
    assert!(server.stop());
}

#[test]
fn data_and_deliver_stages_edit_file_hold_discard_and_redirect() {
    let dir = tempdir();
    let server = serve_plugin(
        dir.path(),
        "postern_test_filing",
        "filing.wasm",
        "[plugins.filing]\npath = \"filing.wasm\"\ncapabilities = [\"clock\"]\n[chains]\ndata = [\"filing\"]\ndeliver = [\"filing\"]\n",
    );
    // Two recipients: each delivery in a fresh instance of its own.
    let two = server.smtplib(&[
        "--to",
        "cid@localhost",
        "--to",
        "dan@localhost",
        "--subject",
        "two",
    ]);
    assert!(two[0].starts_with("OK "), "{two:?}");
    for (subject, rcpt) in [
        ("plain", "ann@localhost"),
        ("[SPAM] offer", "ann@localhost"),
        ("list post", "ann+lists@localhost"),
        ("[DROP] gone", "ann@localhost"),
        ("[FWD bob@localhost] for bob", "ann@localhost"),
        ("[HOLD] wait", "ann@localhost"),
    ] {
        let lines = server.smtplib(&["--to", rcpt, "--subject", subject]);
        assert!(lines[0].starts_with("OK "), "{subject}: {lines:?}");
    }
    let md = dir.path().join("data/mail/ann/Maildir");
    let inbox = server.wait_for_mail("ann", 1);
    let spam = wait_for(Duration::from_secs(20), || {
        let f = maildir_files(&md.join(".Spam"));
        (!f.is_empty()).then_some(f)
    })
    .unwrap_or_default();
    let lists = wait_for(Duration::from_secs(20), || {
        let f = maildir_files(&md.join(".Lists"));
        (!f.is_empty()).then_some(f)
    })
    .unwrap_or_default();
    let bob = server.wait_for_mail("bob", 1);
    assert_eq!(
        (inbox.len(), spam.len(), lists.len(), bob.len()),
        (1, 1, 1, 1),
        "{}",
        server.log()
    );
    assert!(md.join(".Spam/maildirfolder").exists());
    let plain = std::fs::read_to_string(&inbox[0]).expect("read");
    assert!(
        plain.contains("X-Filing: seen\n") && plain.contains("X-Filed-For: ann\n"),
        "{plain}"
    );
    // A single-recipient message delivered at once: the deliver stage went
    // on in the instance of the transaction that accepted it.
    assert!(
        plain.contains("X-Filing-Instance: after-data 1\n"),
        "{plain}"
    );
    // The deliver stage's context: the client as the queue file recorded it
    // and the whole envelope.
    let context = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("X-Filing-Context: "))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    assert!(
        context(&plain).starts_with("from [127.0.0.1] helo=<")
            && context(&plain).ends_with("> recipients=1"),
        "{plain}"
    );
    let configured = |text: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix("X-Filing-Configured: "))
            .map(str::to_owned)
    };
    let at_load = configured(&plain);
    assert!(at_load.is_some(), "{plain}");
    for user in ["cid", "dan"] {
        let copy = server.wait_for_mail(user, 1);
        let text = std::fs::read_to_string(&copy[0]).expect("read");
        assert!(
            text.contains("X-Filing-Instance: fresh 1\n"),
            "{user}: {text}"
        );
        // Fresh instances of other transactions, all from the state that
        // `configure` left once, at load.
        assert_eq!(configured(&text), at_load, "{user}: {text}");
        assert!(context(&text).ends_with("> recipients=2"), "{user}: {text}");
    }
    assert_eq!(subject_of(&bob[0]), "[FWD bob@localhost] for bob");
    assert!(
        std::fs::read_to_string(&bob[0])
            .expect("read")
            .contains("Delivered-To: ann@localhost")
    );
    // The held message waits in hold/ and is listed with `!`.
    let held = std::fs::read_dir(dir.path().join("data/queue/hold"))
        .expect("hold")
        .count();
    assert_eq!(held, 1);
    let listing = server.queue_list();
    assert!(listing.contains("!"), "{listing}");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        maildir_files(&md).len(),
        1,
        "the [DROP] message must not be delivered"
    );
    assert!(server.stop());
}

/// Installs the component `name` as `file` and starts a server with
/// `plugins` (the plugins' and chains' part of the configuration).
fn serve_plugin(dir: &std::path::Path, name: &str, file: &str, plugins: &str) -> Server {
    install(name, &dir.join("plugins"), file);
    Server::start(dir, &config_with(dir, "", plugins))
}

/// Starts a server whose rcpt chain is one hostile plugin in `mode`.
fn hostile(dir: &std::path::Path, mode: &str, on_error: &str, timeout: &str) -> Server {
    serve_plugin(
        dir,
        "postern_test_hostile",
        "hostile.wasm",
        &format!(
            "[plugins.h]\npath = \"hostile.wasm\"\ncapabilities = [\"dns\"]\ntimeout = \"{timeout}\"\nmemory_limit = \"32M\"\non_error = \"{on_error}\"\nconfig = {{ mode = \"{mode}\" }}\n[chains]\nrcpt = [\"h\"]\n"
        ),
    )
}

/// `postern reload` on `server`, whose configuration has one plugin.
fn reload_one_plugin(server: &Server) {
    let reload = Command::new(BIN)
        .args(["reload", "--config"])
        .arg(&server.config)
        .output()
        .expect("reload");
    assert!(
        String::from_utf8_lossy(&reload.stdout).contains("reloaded: 1 plugin(s)"),
        "{reload:?}"
    );
}

/// Starts a transaction on `victim` whose RCPT runs a failing plugin; while
/// the plugin runs, another client is served; the RCPT then gets the plugin
/// failure reply (451). `what` names the case in failure messages.
fn rcpt_fails_while_another_is_served(server: &Server, victim: &mut Smtp, what: &str) {
    victim.cmd("MAIL FROM:<a@example.org>", "250");
    victim.send(b"RCPT TO:<joe@localhost>\r\n");
    let mut other = server.connect();
    other.cmd("EHLO other.test", "250");
    other.cmd("NOOP", "250");
    other.cmd("QUIT", "221");
    let r = victim.reply();
    assert!(
        r.starts_with("451 4.3.0 Error: policy plugin failure"),
        "{what}: {r:?}\n{}",
        server.log()
    );
}

#[test]
fn hostile_plugins_get_their_defined_outcome_and_the_server_keeps_serving() {
    for (mode, cause) in [
        ("loop", "deadline"),
        ("alloc", "memory limit"),
        ("trap", "trapped"),
        ("bad-verdict", "bad verdict"),
    ] {
        let dir = tempdir();
        let server = hostile(
            dir.path(),
            mode,
            "tempfail",
            if mode == "loop" { "1500ms" } else { "500ms" },
        );
        let mut victim = server.connect();
        victim.cmd("EHLO c.test", "250");
        rcpt_fails_while_another_is_served(&server, &mut victim, mode);
        assert!(
            server.log().contains(cause),
            "{mode}: no `{cause}` in log:\n{}",
            server.log()
        );
        // The session goes on, and a new transaction gets a fresh instance.
        victim.cmd("RSET", "250");
        victim.cmd("QUIT", "221");
        assert!(server.stop(), "{mode}");
    }
    // on_error = continue: the failure is logged and mail flows.
    let dir = tempdir();
    let server = hostile(dir.path(), "trap", "continue", "500ms");
    let lines = server.smtplib(&["--to", "joe@localhost"]);
    assert!(lines[0].starts_with("OK "), "{lines:?}");
    assert_eq!(server.wait_for_mail("joe", 1).len(), 1);
    // A transaction whose plugin fails at every recipient: each failure gets
    // a fresh instance until the transaction's bound on failed instances,
    // then fails at once; every recipient still passes.
    let mut args = Vec::new();
    for _ in 0..15 {
        args.extend(["--to", "joe@localhost"]);
    }
    let lines = server.smtplib(&args);
    assert!(lines[0].starts_with("OK "), "{lines:?}");
    let log = server.log();
    assert!(
        log.contains("too many failed instances in this transaction"),
        "{log}"
    );
    assert!(server.stop());
}

/// Starts a server whose `stage` chain is one hostile plugin `h` in `mode`
/// (acting at every hook); `extra` goes into the main configuration.
fn hostile_at(dir: &std::path::Path, stage: &str, mode: &str, extra: &str) -> Server {
    install("postern_test_hostile", &dir.join("plugins"), "hostile.wasm");
    let plugins = format!(
        "[plugins.h]\npath = \"hostile.wasm\"\ncapabilities = [\"dns\"]\nconfig = {{ mode = \"{mode}\" }}\n[chains]\n{stage} = [\"h\"]\n"
    );
    Server::start(dir, &config_with(dir, extra, &plugins))
}

/// Asserts that the next reply is exactly `expected` (one reply, once) and
/// that the server then closes the connection.
fn answered_once_then_closed(c: &mut Smtp, expected: &str, what: &str) {
    assert_eq!(c.reply(), expected, "{what}");
    assert!(c.closed(), "{what}: more after the last reply");
}

#[test]
fn disconnect_and_reject_verdicts_answer_once_at_their_command() {
    let go_away = "421 4.7.0 hostile: go away\r\n";
    let no_delay = "smtpd_delay_reject = false\n";
    let (ehlo, mail, rcpt) = (
        "EHLO c.test",
        "MAIL FROM:<a@example.org>",
        "RCPT TO:<joe@localhost>",
    );
    // A client that waits for each reply: the verdict answers the last
    // command. Without smtpd_delay_reject, the helo and mail chains answer
    // their own commands; with it (the default), the connect chain answers
    // the first RCPT, run while the client composes it.
    for (stage, extra, lines, what) in [
        ("rcpt", "", &[ehlo, mail, rcpt][..], "rcpt"),
        ("helo", no_delay, &[ehlo][..], "helo"),
        ("mail", no_delay, &[ehlo, mail][..], "mail"),
        (
            "connect",
            "",
            &[ehlo, mail, rcpt][..],
            "connect, one command at a time",
        ),
    ] {
        let dir = tempdir();
        let server = hostile_at(dir.path(), stage, "disconnect", extra);
        let mut c = server.connect();
        let (last, before) = lines.split_last().expect("a command");
        for line in before {
            c.cmd(line, "250");
        }
        c.send(format!("{last}\r\n").as_bytes());
        answered_once_then_closed(&mut c, go_away, what);
        assert!(server.stop());
    }

    // The same answer at the RCPT of a pipelining client, and each chain
    // runs once per transaction.
    let dir = tempdir();
    let server = hostile_at(dir.path(), "connect", "disconnect", "");
    let mut pipelines = server.connect();
    pipelines.cmd(ehlo, "250");
    pipelines.send(format!("{mail}\r\n{rcpt}\r\n").as_bytes());
    assert!(pipelines.reply().starts_with("250"), "MAIL");
    answered_once_then_closed(&mut pipelines, go_away, "connect, pipelined");
    assert!(server.stop());

    let dir = tempdir();
    let server = hostile_at(dir.path(), "mail", "reject", "");
    let rejected = "554 5.7.1 hostile: rejected\r\n";
    let mut c = server.connect();
    c.cmd(ehlo, "250");
    c.cmd(mail, "250");
    assert_eq!(c.cmd(rcpt, "554"), rejected);
    assert_eq!(c.cmd("RCPT TO:<root@localhost>", "554"), rejected);
    c.cmd("RSET", "250");
    c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<joe@localhost>\r\nRCPT TO:<root@localhost>\r\n");
    assert!(c.reply().starts_with("250"), "MAIL");
    assert_eq!(c.reply(), rejected);
    assert_eq!(c.reply(), rejected);
    c.cmd("QUIT", "221");
    let list = plugin_list(&server);
    let text = String::from_utf8_lossy(&list.stdout);
    let (row, cols) = plugin_row(&text, "h");
    assert_eq!(cols[4], "2", "one mail-stage call per transaction: {row}");
    assert!(server.stop());
}

#[test]
fn a_plugin_called_without_a_fiber_that_spins_is_stopped_then_runs_on_fibers() {
    // It imports nothing that can wait, so its instances are created and
    // called without a fiber: its first spin cannot yield and holds a worker
    // until the deadline. Then its calls run on fibers and yield.
    assert!(
        imports_of("postern_test_spin")
            .iter()
            .all(|i| i.starts_with("postern:mta/")),
    );
    let dir = tempdir();
    let server = serve_plugin(
        dir.path(),
        "postern_test_spin",
        "spin.wasm",
        "[plugins.spin]\npath = \"spin.wasm\"\ntimeout = \"300ms\"\n[chains]\nrcpt = [\"spin\"]\n",
    );
    let demoted =
        "a call ran for more than 10 ms without yielding; this plugin's calls now run on fibers";
    let mut victim = server.connect();
    victim.cmd("EHLO c.test", "250");
    for round in 0..2 {
        rcpt_fails_while_another_is_served(&server, &mut victim, &format!("round {round}"));
        victim.cmd("RSET", "250");
        let log = server.log();
        assert!(log.contains("deadline"), "round {round}: {log}");
        assert_eq!(log.matches(demoted).count(), 1, "round {round}: {log}");
    }
    // A reload of the same component keeps it on fibers.
    reload_one_plugin(&server);
    rcpt_fails_while_another_is_served(&server, &mut victim, "after the reload");
    let log = server.log();
    assert_eq!(log.matches(demoted).count(), 1, "after the reload: {log}");
    victim.cmd("QUIT", "221");
    let list = plugin_list(&server);
    let text = String::from_utf8_lossy(&list.stdout);
    let (row, cols) = plugin_row(&text, "spin");
    assert_eq!(cols[4], "3", "{row}");
    assert_eq!(cols[5], "3", "{row}");
    assert!(server.stop());
}

#[test]
fn a_plugin_that_keeps_a_host_stream_after_configure_is_configured_per_instance() {
    let dir = tempdir();
    let server = serve_plugin(
        dir.path(),
        "postern_test_hostile",
        "hostile.wasm",
        "[plugins.h]\npath = \"hostile.wasm\"\ncapabilities = [\"dns\"]\nconfig = { mode = \"ok\", say = \"hello from configure\" }\n[chains]\nrcpt = [\"h\"]\n",
    );
    // Its stdout stream would dangle in a frozen copy: it is not frozen,
    // every instance runs `configure` (and prints again).
    let text = list_after_two_messages(&server);
    assert!(
        text.lines()
            .any(|l| l.starts_with("h ") && l.ends_with(" per-instance")),
        "{text}\n{}",
        server.log()
    );
    let log = server.log();
    assert!(
        log.contains("holds host resources after configure"),
        "{log}"
    );
    assert!(
        log.matches("guest output: hello from configure").count() >= 3,
        "{log}"
    );
    assert!(server.stop());
}

/// Installs the component `name` as `file`, writes a configuration with
/// `plugins`, and runs `postern check` on it: the configuration, its path and
/// what the check printed.
fn check_plugin(
    dir: &std::path::Path,
    name: &str,
    file: &str,
    plugins: &str,
) -> (String, std::path::PathBuf, std::process::Output) {
    install(name, &dir.join("plugins"), file);
    let config = config_with(dir, "", plugins);
    let path = dir.join("postern.toml");
    std::fs::write(&path, &config).expect("write");
    let out = postern_check(&path);
    (config, path, out)
}

#[test]
fn a_plugin_built_against_another_interface_is_refused_when_it_loads() {
    let dir = tempdir();
    let (_, _, out) = check_plugin(
        dir.path(),
        "postern_test_mistyped",
        "mistyped.wasm",
        "[plugins.m]\npath = \"mistyped.wasm\"\n[chains]\nconnect = [\"m\"]\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    // The plugin and the export whose type is wrong, before any call.
    assert!(
        err.contains("plugins.m: ")
            && err.contains("exports the wrong type")
            && err.contains("postern:mta/session-filter@0.1.0#on-connect"),
        "{err}"
    );
}

#[test]
fn a_capability_that_is_not_granted_stops_the_load() {
    let dir = tempdir();
    let (config, path, out) = check_plugin(
        dir.path(),
        "postern_test_hostile",
        "hostile.wasm",
        "[plugins.h]\npath = \"hostile.wasm\"\nconfig = { mode = \"ok\" }\n",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    // The file, the line of the plugin's table, the plugin and the capability.
    let line = config
        .lines()
        .position(|l| l == "[plugins.h]")
        .expect("table")
        + 1;
    assert!(
        err.contains(&format!("postern.toml:{line}: plugins.h: "))
            && err.contains("`dns` capability, which is not granted"),
        "{err}"
    );
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("`dns` capability"));
}

#[test]
fn hot_reload_under_load_loses_nothing_and_keeps_the_old_set_on_failure() {
    let dir = tempdir();
    let plugins = dir.path().join("plugins");
    install("postern_test_noop", &plugins, "gate.wasm");
    let server = Server::start(
        dir.path(),
        &config_with(
            dir.path(),
            "",
            "[plugins.gate]\npath = \"gate.wasm\"\nconfig = { tag = \"[NEW]\" }\n[chains]\ndata = [\"gate\"]\n",
        ),
    );
    // A steady stream of messages from another thread while plugins change.
    let addr = server.server_arg();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sender = std::thread::spawn({
        let stop = stop.clone();
        move || {
            let mut lines = Vec::new();
            // Bounded: at most 200 rounds of 5 messages.
            for round in 0..200 {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let out = Command::new("python3")
                    .arg(client_script())
                    .args([
                        "--server",
                        &addr,
                        "--to",
                        "flow@localhost",
                        "--count",
                        "5",
                        "--reuse",
                    ])
                    .args(["--token", &format!("flow{round}")])
                    .output()
                    .expect("python3");
                lines.extend(
                    String::from_utf8_lossy(&out.stdout)
                        .lines()
                        .map(str::to_owned),
                );
            }
            lines
        }
    });
    wait_for(Duration::from_secs(30), || {
        (server.maildir("flow").len() >= 10).then_some(())
    });
    install("js-subject-tag", &plugins, "gate.wasm");
    let tagged = wait_for(Duration::from_secs(90), || {
        server
            .maildir("flow")
            .iter()
            .any(|f| subject_of(f).starts_with("[NEW] "))
            .then_some(())
    });
    assert!(
        tagged.is_some(),
        "the new plugin never took over:\n{}",
        server.log()
    );
    // A broken replacement: the reload is refused and the JS plugin keeps serving.
    std::fs::write(plugins.join(".gate.tmp"), b"not a component").expect("write");
    std::fs::rename(plugins.join(".gate.tmp"), plugins.join("gate.wasm")).expect("rename");
    let refused = wait_for(Duration::from_secs(30), || {
        server.log().contains("reload refused").then_some(())
    });
    assert!(refused.is_some(), "{}", server.log());
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let results = sender.join().expect("sender");
    let sent = results.len();
    assert!(sent >= 20, "too few messages in the stream: {results:?}");
    assert!(
        results.iter().all(|l| l.starts_with("OK ")),
        "every message accepted: {results:?}\n{}",
        server.log()
    );
    let files = wait_for(Duration::from_secs(30), || {
        let f = server.maildir("flow");
        (f.len() >= sent).then_some(f)
    })
    .unwrap_or_default();
    assert_eq!(files.len(), sent, "no message lost, none doubled");
    let after = server.smtplib(&["--to", "flow@localhost", "--subject", "after broken"]);
    assert!(after[0].starts_with("OK "), "{after:?}");
    let last = wait_for(Duration::from_secs(20), || {
        server
            .maildir("flow")
            .into_iter()
            .find(|f| subject_of(f).contains("after broken"))
    });
    assert_eq!(
        last.map(|f| subject_of(&f)).as_deref(),
        Some("[NEW] after broken"),
        "{}",
        server.log()
    );
    assert!(server.log().contains("reload refused"), "{}", server.log());
    assert!(server.stop());
}

/// Spare transactions are instantiated before any client comes, and a reload
/// makes them stale: the first session after it runs the new plugins.
#[test]
fn spare_instances_are_made_ahead_and_never_outlive_a_reload() {
    let dir = tempdir();
    let plugins = dir.path().join("plugins");
    install("postern_test_hostile", &plugins, "hostile.wasm");
    install("postern_test_noop", &plugins, "gate.wasm");
    let server = Server::start(
        dir.path(),
        &config_with(
            dir.path(),
            "",
            "[plugins.h]\npath = \"hostile.wasm\"\ncapabilities = [\"dns\"]\nconfig = { mode = \"ok\", say = \"instance made\" }\n\
             [plugins.gate]\npath = \"gate.wasm\"\nconfig = { tag = \"[NEW]\" }\n\
             [chains]\nrcpt = [\"h\"]\ndata = [\"gate\"]\n",
        ),
    );
    // `h` runs `configure` in every instance (it is not frozen) and says so:
    // one instance checked the load, the others are spares, made with no
    // client connected.
    let made = |server: &Server| server.log().matches("guest output: instance made").count();
    let ahead = wait_for(Duration::from_secs(60), || {
        (made(&server) >= 3).then_some(())
    });
    assert!(ahead.is_some(), "no spare made ahead:\n{}", server.log());
    // The spares hold the no-op `gate`; the reload replaces it with a plugin
    // that tags the subject, and the very next message must be tagged.
    install("js-subject-tag", &plugins, "gate.wasm");
    let reloaded = wait_for(Duration::from_secs(90), || {
        server.log().contains("reloaded:").then_some(())
    });
    assert!(reloaded.is_some(), "{}", server.log());
    let sent = server.smtplib(&["--to", "flow@localhost", "--subject", "first after reload"]);
    assert!(sent[0].starts_with("OK "), "{sent:?}\n{}", server.log());
    let files = server.wait_for_mail("flow", 1);
    assert_eq!(
        files.first().map(|f| subject_of(f)).as_deref(),
        Some("[NEW] first after reload"),
        "{}",
        server.log()
    );
    assert!(server.stop());
}

/// What `postern plugin list` says about `server`.
fn plugin_list(server: &Server) -> std::process::Output {
    Command::new(BIN)
        .args(["plugin", "list", "--config"])
        .arg(&server.config)
        .output()
        .expect("postern plugin list")
}

/// Sends two messages to joe (both must be accepted), then what `postern
/// plugin list` prints.
fn list_after_two_messages(server: &Server) -> String {
    let lines = server.smtplib(&["--to", "joe@localhost", "--count", "2"]);
    assert!(lines.iter().all(|l| l.starts_with("OK ")), "{lines:?}");
    let list = plugin_list(server);
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    String::from_utf8_lossy(&list.stdout).into_owned()
}

/// The names of the interfaces `component` imports.
fn imports_of(component: &str) -> Vec<String> {
    let engine = wasmtime::Engine::default();
    let path = crate::components::component(component);
    let c = wasmtime::component::Component::from_file(&engine, &path).expect("component");
    c.component_type()
        .imports(&engine)
        .map(|(name, _)| name.to_owned())
        .collect()
}

#[test]
fn a_plugin_without_std_imports_no_wasi_and_runs_every_stage() {
    let lean = imports_of("postern_test_noop");
    assert!(
        !lean.is_empty() && lean.iter().all(|i| i.starts_with("postern:mta/")),
        "{lean:?}"
    );
    let std = imports_of("postern_test_noop_std");
    assert!(std.iter().any(|i| i.starts_with("wasi:cli/")), "{std:?}");

    // Every stage, with arguments, strings passed in through the plugin's
    // own `cabi_realloc`, and instances starting from the frozen state.
    let dir = tempdir();
    let every = r#"["lean", "lean x y"]"#;
    let server = serve_plugin(
        dir.path(),
        "postern_test_noop",
        "lean.wasm",
        &format!(
            "[plugins.lean]\npath = \"lean.wasm\"\n[chains]\n{}",
            ["connect", "helo", "mail", "rcpt", "data", "deliver"]
                .map(|s| format!("{s} = {every}\n"))
                .concat()
        ),
    );
    let text = list_after_two_messages(&server);
    let (row, cols) = plugin_row(&text, "lean");
    assert_eq!(cols[4], "24", "2 messages x 6 stages x 2 steps: {row}");
    assert_eq!(cols[5], "0", "{row}");
    assert_eq!(cols[6], "at-load", "{row}");
    assert_eq!(server.wait_for_mail("joe", 2).len(), 2);
    // Its calls ran without fibers, and none was long enough to change that.
    assert!(
        !server.log().contains("now run on fibers"),
        "{}",
        server.log()
    );
}

/// `plugin`'s row of a `postern plugin list` output, and its columns.
fn plugin_row<'t>(text: &'t str, plugin: &str) -> (&'t str, Vec<&'t str>) {
    let row = text
        .lines()
        .find(|l| l.split_whitespace().next() == Some(plugin))
        .unwrap_or_else(|| panic!("no {plugin} in {text}"));
    (row, row.split_whitespace().collect())
}

#[test]
fn plugin_list_reload_and_sighup() {
    let dir = tempdir();
    let server = serve_plugin(
        dir.path(),
        "postern_test_noop",
        "noop.wasm",
        "[plugins.noop]\npath = \"noop.wasm\"\ncapabilities = [\"log\"]\n[chains]\nrcpt = [\"noop\"]\ndata = [\"noop\"]\n",
    );
    let text = list_after_two_messages(&server);
    let (row, cols) = plugin_row(&text, "noop");
    assert!(cols[1].starts_with("sha256:"), "{row}");
    assert_eq!(cols[2], "connect,helo,mail,rcpt,data,deliver", "{row}");
    assert_eq!(cols[3], "log", "{row}");
    assert_eq!(cols[4], "4", "two rcpt and two data calls: {row}");
    assert_eq!(cols[5], "0", "{row}");
    // `configure` ran once, at load: instances start configured.
    assert_eq!(cols[6], "at-load", "{row}");
    reload_one_plugin(&server);
    let _ = Command::new("kill")
        .arg("-HUP")
        .arg(server.child.id().to_string())
        .status();
    let hup = wait_for(Duration::from_secs(10), || {
        server.log().contains("SIGHUP: reloading").then_some(())
    });
    assert!(hup.is_some(), "{}", server.log());
    // Counters survive the reloads.
    let list = plugin_list(&server);
    assert!(
        String::from_utf8_lossy(&list.stdout)
            .lines()
            .any(|l| l.starts_with("noop ") && l.split_whitespace().nth(4) == Some("4"))
    );
    // Editing the configuration file is a reload too.
    let text = std::fs::read_to_string(&server.config)
        .expect("read")
        .replace(
            "[chains]",
            "[plugins.second]\npath = \"noop.wasm\"\n[chains]",
        );
    std::fs::write(dir.path().join("new.toml"), text).expect("write");
    std::fs::rename(dir.path().join("new.toml"), &server.config).expect("rename");
    let second = wait_for(Duration::from_secs(30), || {
        let list = plugin_list(&server);
        String::from_utf8_lossy(&list.stdout)
            .lines()
            .any(|l| l.starts_with("second "))
            .then_some(())
    });
    assert!(second.is_some(), "{}", server.log());
    assert!(server.stop());
}

/// A multipart message with one attachment named `name`.
fn with_attachment(name: &str) -> Vec<u8> {
    format!(
        "From: <a@example.org>\r\nTo: <joe@localhost>\r\nSubject: file {name}\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n\
         --b1\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\r\nTVqQAAMAAAAEAAAA\r\n--b1--\r\n.\r\n"
    )
    .into_bytes()
}

fn send_raw(server: &Server, message: &[u8]) -> String {
    let mut s = server.connect();
    s.cmd("EHLO c.test", "250");
    s.cmd("MAIL FROM:<a@example.org>", "250");
    s.cmd("RCPT TO:<joe@localhost>", "250");
    s.cmd("DATA", "354");
    s.send(message);
    let r = s.reply();
    s.cmd("QUIT", "221");
    r
}

#[test]
fn seed_mime_header_checks_reject_executables_and_reload_with_the_table() {
    let dir = tempdir();
    install(
        "postern_header_checks",
        &dir.path().join("plugins"),
        "header-checks.wasm",
    );
    let table = dir.path().join("mime_header_checks.regexp");
    let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/seed/mime_header_checks.regexp");
    std::fs::copy(&seed, &table).expect("copy table");
    let server = Server::start(
        dir.path(),
        &config_with(
            dir.path(),
            "",
            &format!(
                "[plugins.hc]\npath = \"header-checks.wasm\"\ncapabilities = [\"log\"]\nfiles = {{ mime_header_checks = \"{}\" }}\n[chains]\ndata = [\"hc\"]\n",
                table.display()
            ),
        ),
    );
    let r = send_raw(&server, &with_attachment("virus.exe"));
    assert_eq!(
        r,
        "550 5.7.1 Attachment type not allowed. File \"virus.exe\" has the unacceptable extension \"exe\"\r\n",
        "{}",
        server.log()
    );
    let r = send_raw(&server, &with_attachment("report.pdf"));
    assert!(
        r.starts_with("250 2.0.0 Ok: queued"),
        "{r}\n{}",
        server.log()
    );
    assert_eq!(server.wait_for_mail("joe", 1).len(), 1);

    // Editing the table is a reload: PDFs are refused from now on.
    let mut text = std::fs::read_to_string(&table).expect("read");
    text.push_str("/^Content-Disposition:.*filename=\"?.*\\.pdf\"?/ REJECT no PDFs here\n");
    std::fs::write(dir.path().join("table.tmp"), text).expect("write");
    std::fs::rename(dir.path().join("table.tmp"), &table).expect("rename");
    let refused = wait_for(Duration::from_secs(60), || {
        let r = send_raw(&server, &with_attachment("again.pdf"));
        r.starts_with("550").then_some(r)
    });
    assert_eq!(
        refused.as_deref(),
        Some("550 5.7.1 no PDFs here\r\n"),
        "{}",
        server.log()
    );
    assert!(server.stop());
}

#[test]
fn filter_test_prints_every_step_without_sending_mail() {
    let dir = tempdir();
    let plugins = dir.path().join("plugins");
    install("postern_header_checks", &plugins, "header-checks.wasm");
    install("postern_test_filing", &plugins, "filing.wasm");
    let seed = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/seed/mime_header_checks.regexp");
    let config = dir.path().join("postern.toml");
    std::fs::write(
        &config,
        config_with(
            dir.path(),
            "",
            &format!(
                "[plugins.hc]\npath = \"header-checks.wasm\"\ncapabilities = [\"log\"]\nfiles = {{ mime_header_checks = \"{}\" }}\n\
                 [plugins.filing]\npath = \"filing.wasm\"\ncapabilities = [\"clock\"]\n[chains]\ndata = [\"filing\", \"hc\"]\ndeliver = [\"filing\"]\n",
                seed.display()
            ),
        ),
    )
    .expect("config");
    let eml = dir.path().join("virus.eml");
    let mut message = with_attachment("virus.exe");
    message.truncate(message.len() - 3); // no SMTP end-of-data marker in a file
    std::fs::write(&eml, &message).expect("eml");
    let out = Command::new(BIN)
        .args(["filter-test", "--config"])
        .arg(&config)
        .args([
            "--from",
            "a@example.org",
            "--to",
            "joe@localhost",
            "--to",
            "ann+lists@localhost",
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
        text.contains("data: filing: continue [add-header X-Filing: seen]"),
        "{text}"
    );
    assert!(
        text.contains("data: hc: reject 550 5.7.1 Attachment type not allowed. File \"virus.exe\" has the unacceptable extension \"exe\""),
        "{text}"
    );
    assert!(
        text.contains("deliver <ann+lists@localhost>: filing: continue [add-header X-Filed-For: ann] [add-header X-Filing-Instance: fresh 1] [add-header X-Filing-Configured: ")
            && text.contains("] [set-folder Lists]"),
        "{text}"
    );
    // Nothing was sent or queued.
    assert!(
        !dir.path().join("data/queue").exists()
            || std::fs::read_dir(dir.path().join("data/queue/active"))
                .map_or(true, |mut d| d.next().is_none())
    );
}

#[test]
fn rbl_plugin_follows_postfix_reply_filters_and_error_codes() {
    let dir = tempdir();
    // 127.0.0.1: listed (127.0.0.2 with a TXT); 127.0.0.3: a Spamhaus-style
    // error answer, never a listing; 127.0.0.4: listed as 127.0.0.20, outside the filter.
    let dns = Rbldnsd::start(&[(
        "zen.test",
        ":127.0.0.2:Listed, see https://zen.test/$\n127.0.0.1\n127.0.0.3 :127.255.255.254:error\n127.0.0.4 :127.0.0.20:other list\n",
    )]);
    install("postern_rbl", &dir.path().join("plugins"), "rbl.wasm");
    let server = Server::start(
        dir.path(),
        &config_with(
            dir.path(),
            &format!("dns_nameservers = [\"127.0.0.1:{}\"]\n", dns.port),
            "[plugins.rbl]\npath = \"rbl.wasm\"\ncapabilities = [\"dns\", \"log\"]\n[chains]\nrcpt = [\"rbl reject_rbl_client zen.test=127.0.0.[2..11]\"]\n",
        ),
    );
    let listed = server.smtplib(&["--to", "joe@localhost", "--source", "127.0.0.1"]);
    assert!(
        listed[0].contains("554")
            && listed[0].contains("Service unavailable; Client host [127.0.0.1] blocked using zen.test; Listed, see https://zen.test/127.0.0.1"),
        "{listed:?}\n{}",
        server.log()
    );
    for source in ["127.0.0.2", "127.0.0.3", "127.0.0.4"] {
        let ok = server.smtplib(&["--to", "joe@localhost", "--source", source]);
        assert!(
            ok[0].starts_with("OK "),
            "{source}: {ok:?}\n{}",
            server.log()
        );
    }
    assert!(server.stop());
}

#[test]
fn a_missing_stage_or_a_failing_configure_stops_the_load() {
    let dir = tempdir();
    let plugins = dir.path().join("plugins");
    install("postern_test_hostile", &plugins, "hostile.wasm");
    install("js-subject-tag", &plugins, "tag.wasm");
    let check = |plugins_toml: &str| {
        let path = dir.path().join("postern.toml");
        std::fs::write(&path, config_with(dir.path(), "", plugins_toml)).expect("write");
        let out = postern_check(&path);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    // The JavaScript plugin exports only the data stage.
    let err = check("[plugins.tag]\npath = \"tag.wasm\"\n[chains]\nrcpt = [\"tag\"]\n");
    assert!(
        err.contains(
            "plugins.tag: is in the rcpt chain but does not export that stage (it exports: data)"
        ),
        "{err}"
    );
    // configure refuses its settings.
    let err = check(
        "[plugins.h]\npath = \"hostile.wasm\"\ncapabilities = [\"dns\"]\nconfig = { mode = \"config-error\" }\n",
    );
    assert!(err.contains("plugins.h: configure failed"), "{err}");
}

#[test]
fn a_load_removes_compiled_plugins_unused_for_a_day() {
    let dir = tempdir();
    let cache = dir.path().join("cache");
    std::fs::create_dir_all(&cache).expect("cache");
    let stale = cache.join("0123abcd-0000000000000000.cwasm");
    std::fs::write(&stale, b"from a plugin replaced long ago").expect("write");
    let two_days_ago = std::time::SystemTime::now() - Duration::from_secs(2 * 24 * 3600);
    std::fs::File::options()
        .write(true)
        .open(&stale)
        .and_then(|f| f.set_modified(two_days_ago))
        .expect("age the artifact");
    install(
        "postern_test_noop",
        &dir.path().join("plugins"),
        "noop.wasm",
    );
    let config = format!(
        "{}plugin_directory = \"{}\"\nplugin_cache_directory = \"{}\"\n[plugins.noop]\npath = \"noop.wasm\"\n[chains]\nconnect = [\"noop\"]\n",
        base_config(dir.path(), ""),
        dir.path().join("plugins").display(),
        cache.display()
    );
    let path = dir.path().join("postern.toml");
    std::fs::write(&path, config).expect("write");
    postern_check_ok(&path);
    assert!(!stale.exists(), "the unused artifact is still there");
    let kept = std::fs::read_dir(&cache)
        .expect("cache")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".cwasm"))
        .count();
    assert!(kept >= 1, "the noop plugin's artifacts are gone");
}
