//! The plugin through the SDK's mock host: configuration, verdicts, edits
//! and log lines.

use postern_plugin_sdk::log::Level;
use postern_plugin_sdk::serde_json::json;
use postern_plugin_sdk::{Edit, Header, Message, Outcome, Verdict, mock};

use super::*;

const SEED: &str = include_str!("../tests/data/mime_header_checks.regexp");
const SEED_AS_PRINTED: &str = include_str!("../tests/data/mime_header_checks.as-printed.regexp");

fn plugin(config: postern_plugin_sdk::serde_json::Value) -> HeaderChecks {
    mock::configure(&config.to_string()).unwrap()
}

fn run(plugin: &mut HeaderChecks, raw: &str) -> Outcome {
    let client = mock::client("192.0.2.7");
    let envelope = mock::envelope("sender@example.org", &["rcpt@example.net"]);
    plugin.on_data(
        &mock::context(&client, Some(&envelope), &[]),
        &Message::from_bytes(raw),
    )
}

/// A message with one attachment called `name`.
fn with_attachment(name: &str) -> String {
    format!(
        "From: a@example.org\r\n\
         To: b@example.net\r\n\
         Subject: the report\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/mixed; boundary=\"=_b1\"\r\n\
         \r\n\
         This is a multi-part message in MIME format.\r\n\
         --=_b1\r\n\
         Content-Type: text/plain; charset=us-ascii\r\n\
         \r\n\
         See attached.\r\n\
         --=_b1\r\n\
         Content-Type: application/octet-stream; name=\"{name}\"\r\n\
         Content-Disposition: attachment; filename=\"{name}\"\r\n\
         Content-Transfer-Encoding: base64\r\n\
         \r\n\
         TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n\
         --=_b1--\r\n"
    )
}

#[test]
fn the_seed_table_rejects_virus_exe() {
    let mut p = plugin(json!({"files": {"mime_header_checks": SEED}}));
    assert!(mock::logs().is_empty(), "{:?}", mock::logs());
    let out = run(&mut p, &with_attachment("virus.exe"));
    assert_eq!(
        out.verdict,
        Verdict::reject(
            550,
            "5.7.1",
            r#"Attachment type not allowed. File "virus.exe" has the unacceptable extension "exe""#
        )
    );
    assert_eq!(mock::logs().len(), 1);
    assert!(
        mock::logs()[0].1.starts_with(
            r#"reject: header Content-Type: application/octet-stream; name="virus.exe" from [192.0.2.7]; from=<sender@example.org> to=<rcpt@example.net> proto=ESMTP: 5.7.1 Attachment type not allowed."#
        ),
        "{:?}",
        mock::logs()
    );
    for fine in ["report.pdf", "virus.exe.txt", "notes.doc"] {
        assert!(run(&mut p, &with_attachment(fine)).is_continue(), "{fine}");
    }
    // Case-insensitive by default, as in Postfix.
    assert!(!run(&mut p, &with_attachment("VIRUS.EXE")).is_continue());
}

#[test]
fn the_seed_table_as_printed_warns_twice_and_rejects_nothing() {
    let mut p = plugin(json!({"files": {"mime_header_checks": SEED_AS_PRINTED}}));
    assert_eq!(
        mock::logs(),
        [
            (
                Level::Warn,
                r#"regexp map mime_header_checks, line 1: logical line must not start with whitespace: "   /filename=\\"?(.*)\.(bat|ch...""#
                    .to_owned()
            ),
            (
                Level::Warn,
                r#"regexp map mime_header_checks, line 4: unknown regexp option "$": skipping this rule"#
                    .to_owned()
            ),
        ]
    );
    assert!(run(&mut p, &with_attachment("virus.exe")).is_continue());
}

#[test]
fn mime_and_nested_tables_default_to_header_checks() {
    let table = "/^Content-Disposition:.*\\.exe/ REJECT exe\n/^Subject: inner/ REJECT nested\n";
    let mut p = plugin(json!({"files": {"header_checks": table}}));
    assert_eq!(
        run(&mut p, &with_attachment("a.exe")).verdict,
        Verdict::reject(550, "5.7.1", "exe")
    );
    let nested =
        "Subject: outer\r\nContent-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\nhi\r\n";
    assert_eq!(
        run(&mut p, nested).verdict,
        Verdict::reject(550, "5.7.1", "nested")
    );
    // An empty table turns a class off.
    let mut p = plugin(json!({"files": {
        "header_checks": table, "mime_header_checks": "", "nested_header_checks": ""
    }}));
    assert!(run(&mut p, &with_attachment("a.exe")).is_continue());
    assert!(run(&mut p, nested).is_continue());
}

#[test]
fn actions_become_verdicts_edits_and_log_lines() {
    let table = "/^Subject: .*viagra/ REJECT 5.7.0 Spam\n\
                 /^Subject: (.*)\\[hold\\]/ HOLD held: $1\n\
                 /^Subject: tag me/ PREPEND X-Tagged: yes\n\
                 /^X-Mailer: / IGNORE\n\
                 /^Subject: bcc/ BCC audit@example.org\n\
                 /^Subject: redirect/ REDIRECT quarantine@example.org\n\
                 /^Subject: warn/ WARN suspicious\n";
    let mut p = plugin(json!({"files": {"header_checks": table}}));
    let msg = |subject: &str| format!("Subject: {subject}\r\nX-Mailer: m\r\n\r\nbody\r\n");
    assert_eq!(
        run(&mut p, &msg("cheap VIAGRA")).verdict,
        Verdict::reject(550, "5.7.0", "Spam")
    );
    assert_eq!(
        run(&mut p, &msg("look [hold]")).verdict,
        Verdict::hold("held: look ")
    );
    let out = run(&mut p, &msg("tag me"));
    assert!(out.is_continue());
    assert_eq!(
        out.edits,
        [
            Edit::PrependHeader(Header {
                name: "X-Tagged".into(),
                value: "yes".into()
            }),
            Edit::RemoveHeader("X-Mailer".into()),
        ]
    );
    assert_eq!(
        run(&mut p, &msg("bcc")).edits,
        [
            Edit::RemoveHeader("X-Mailer".into()),
            Edit::AddRecipient("audit@example.org".into()),
        ]
    );
    let out = run(&mut p, &msg("redirect"));
    assert_eq!(
        out.edits,
        // REDIRECT ends inspection: X-Mailer is not looked at.
        [
            Edit::RemoveRecipient("rcpt@example.net".into()),
            Edit::AddRecipient("quarantine@example.org".into()),
        ]
    );
    mock::reset();
    assert!(run(&mut p, &msg("warn")).is_continue());
    assert_eq!(mock::logs()[0].0, Level::Warn);
    assert!(
        mock::logs()[0]
            .1
            .starts_with("warning: header Subject: warn from [192.0.2.7];")
    );
    assert!(mock::logs()[0].1.ends_with(": suspicious"));
}

#[test]
fn body_checks_and_their_size_limit() {
    let body = "/^<iframe src=(3D)?cid:.* height=(3D)?0 width=(3D)?0>$/ REJECT IFRAME vulnerability exploit\n";
    let raw = |pad: usize| {
        format!(
            "Subject: x\r\n\r\n{}<iframe src=cid:a height=0 width=0>\r\n",
            "padding line\r\n".repeat(pad)
        )
    };
    let mut p = plugin(json!({"files": {"body_checks": body}}));
    assert_eq!(
        run(&mut p, &raw(0)).verdict,
        Verdict::reject(550, "5.7.1", "IFRAME vulnerability exploit")
    );
    // 13 bytes per padding line (CR LF counts one): past 51200 bytes the
    // line is not checked.
    // The line is at offset 1 + 13 * pad (the blank line after the headers
    // counts one).
    assert!(run(&mut p, &raw(3939)).is_continue());
    assert!(!run(&mut p, &raw(3938)).is_continue());
    let mut p = plugin(json!({"files": {"body_checks": body}, "body_checks_size_limit": 0}));
    assert!(!run(&mut p, &raw(3939)).is_continue());
}

#[test]
fn configuration_errors_name_the_setting() {
    let err = |config: postern_plugin_sdk::serde_json::Value| {
        mock::configure::<HeaderChecks>(&config.to_string()).unwrap_err()
    };
    assert_eq!(
        err(json!({"header_checks": "x"})),
        "unknown setting `header_checks`"
    );
    assert!(
        err(json!({"files": {"header_check": ""}})).starts_with("files.header_check: not a table")
    );
    assert_eq!(
        err(json!({"files": {"body_checks": 1}})),
        "files.body_checks must be the table's text"
    );
    assert_eq!(
        err(json!({"files": "x"})),
        "setting `files` must be a table"
    );
    assert_eq!(
        err(json!({"body_checks_size_limit": -1})),
        "setting `body_checks_size_limit` must be a non-negative integer"
    );
    let p = plugin(json!({}));
    assert!(p.checks().is_empty());
    let mut p = p;
    assert!(run(&mut p, "Subject: x\r\n\r\n").is_continue());
}

#[test]
fn top_level_headers_are_matched_as_received_folded_lines_and_all() {
    // Postfix joins a folded header's lines with newlines (which `.`
    // matches without the `m` flag) and keeps the white space after the
    // colon: so does the plugin, from the raw section.
    let mut p = plugin(json!({
        "files": {"header_checks": "/^Subject: first.[[:space:]]second$/ REJECT folded as sent\n\
                                    /^X-Spacing:  two$/ REJECT two spaces kept\n"}
    }));
    assert_eq!(
        run(&mut p, "Subject: first\r\n\tsecond\r\n\r\nbody\r\n").verdict,
        Verdict::reject(550, "5.7.1", "folded as sent")
    );
    assert_eq!(
        run(&mut p, "X-Spacing:  two\r\n\r\nbody\r\n").verdict,
        Verdict::reject(550, "5.7.1", "two spaces kept")
    );
    // Unfolded, the same text does not match the folded rule.
    assert!(run(&mut p, "Subject: first second\r\n\r\nbody\r\n").is_continue());
    // A message of headers only still ends its header section.
    assert!(run(&mut p, "Subject: only\r\n").is_continue());
    assert_eq!(
        run(&mut p, "Subject: first\r\n\tsecond\r\n").verdict,
        Verdict::reject(550, "5.7.1", "folded as sent")
    );
}
