//! The command line: `postern check` and errors that name file, line and key.

use std::process::Command;

use crate::harness::*;

#[test]
fn check_names_file_line_and_key_of_every_error() {
    let dir = tempdir();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "myhostname = \"mx.test\"\nmessage_size_limit = \"huge\"\nsmtpd_helo_requird = true\nmynetworks = [\"10.0.0.0/33\"]\n",
    )
    .expect("write");
    let out = postern_check(&path);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let p = path.display();
    assert!(
        err.contains(&format!("{p}:2: message_size_limit: ")),
        "{err}"
    );
    assert!(
        err.contains(&format!("{p}:3: smtpd_helo_requird: unknown key")),
        "{err}"
    );
    assert!(err.contains(&format!("{p}:4: mynetworks: ")), "{err}");

    // `run` refuses the same file, and says why.
    let out = Command::new(BIN)
        .args(["run", "--config"])
        .arg(&path)
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("smtpd_helo_requird"));
}

#[test]
fn check_accepts_the_embedded_default_and_a_good_file() {
    let out = Command::new(BIN).arg("check").output().expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempdir();
    let path = dir.path().join("good.toml");
    std::fs::write(&path, base_config(dir.path(), "smtpd_timeout = \"5m\"\n")).expect("write");
    postern_check_ok(&path);
}

#[test]
fn empty_queue_and_missing_alias_file() {
    let dir = tempdir();
    let out = Command::new(BIN)
        .args(["queue", "list", "--data-dir"])
        .arg(dir.path())
        .output()
        .expect("run");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Mail queue is empty\n"
    );
    let path = dir.path().join("c.toml");
    std::fs::write(&path, "alias_maps = [\"/nonexistent/aliases\"]\n").expect("write");
    let out = postern_check(&path);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/aliases"));
}

#[test]
fn seed_main_cf_imports_and_checks() {
    let dir = tempdir();
    let seed =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/seed/main.cf");
    let out = Command::new(BIN)
        .arg("import-postfix")
        .arg(&seed)
        .arg("-o")
        .arg(dir.path())
        .output()
        .expect("import");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    for reported in [
        "content_filter",
        "mailbox_command",
        "reject_unknown_recipient_domain",
    ] {
        assert!(
            err.contains(&format!("not carried over: {reported} = ")),
            "{reported}:\n{err}"
        );
    }
    let config = dir.path().join("postern.toml");
    postern_check_ok(&config);

    // Running it is tests/e2e/seed.rs's business.
    assert!(
        dir.path().join("mime_header_checks.regexp").is_file(),
        "the MIME header table is copied next to postern.toml"
    );
}
