use postern_plugin_sdk::log::Level;
use postern_plugin_sdk::mock;
use postern_plugin_sdk::serde_json::{Value, json};

use super::*;

/// The seed's `.procmailrc` (postfix-architecture.txt), exactly.
const SEED_PROCMAILRC: &str = "VERBOSE=ON
DROPPRIVS=YES
SHELL=/bin/sh
PATH=/usr/local/bin:/usr/bin:/bin
MAILDIR=$HOME/Maildir/
DEFAULT=$MAILDIR/new
LOGFILE=/var/log/procmail.log

:0fw
* < 256000
        | /usr/bin/spamc -f
        :0e
        {
                EXITCODE=$?
        }
";

const SPAM: &str =
    "From: a@example.org\r\nSubject: cheap\r\nX-Spam-Status: Yes, score=9.1\r\n\r\nBuy now\r\n";
const HAM: &str =
    "From: b@example.org\r\nSubject: hello\r\nX-Spam-Status: No, score=0.1\r\n\r\nHi Jo\r\n";

fn filter(config: Value) -> Mailfilter {
    mock::configure(&config.to_string()).unwrap()
}

fn deliver_with(f: &mut Mailfilter, rcpt: &str, raw: &str) -> Outcome {
    let delivery = mock::delivery(rcpt);
    let envelope = mock::envelope("sender@example.org", &[rcpt]);
    f.on_deliver(
        &mock::deliver_context(&envelope, &[]),
        &delivery,
        &Message::from_bytes(raw),
    )
}

/// Delivers `raw` to `rcpt` with `rules` as the user's `.procmailrc`.
fn user(rules: &str, rcpt: &str, raw: &str) -> Outcome {
    mock::reset();
    mock::home_file(".procmailrc", Some(rules));
    deliver_with(&mut filter(json!({})), rcpt, raw)
}

fn jo(rules: &str, raw: &str) -> Outcome {
    user(rules, "jo@example.org", raw)
}

fn folder(name: &str) -> Outcome {
    Outcome::cont().set_folder(name)
}

fn message(headers: &str, body: &str) -> String {
    format!("{headers}\r\n\r\n{body}")
}

fn warnings() -> Vec<String> {
    mock::logs()
        .into_iter()
        .filter(|(level, _)| *level == Level::Warn)
        .map(|(_, line)| line)
        .collect()
}

#[test]
fn spam_goes_to_a_folder() {
    let rules = ":0\n* ^X-Spam-Status: Yes\n.Spam/\n";
    assert_eq!(jo(rules, SPAM), folder("Spam"));
    assert_eq!(jo(rules, HAM), Outcome::cont());
    assert!(mock::logs().is_empty(), "{:?}", mock::logs());
}

#[test]
fn folder_spellings() {
    for (target, want) in [
        (".Spam/", folder("Spam")),
        ("$MAILDIR/.Spam/", folder("Spam")),
        ("$HOME/Maildir/.Lists.rust/", folder("Lists.rust")),
        ("Spam/", folder("Spam")),
        ("\"$MAILDIR/.With Space/\"", folder("With Space")),
        ("$DEFAULT", Outcome::cont()),
        ("$MAILDIR/", Outcome::cont()),
        ("$MAILDIR/new", Outcome::cont()),
        ("new", Outcome::cont()),
        ("/dev/null", Outcome::discard()),
    ] {
        let rules = format!("MAILDIR=$HOME/Maildir/\n:0\n{target}\n:0\n.NotReached/\n");
        assert_eq!(jo(&rules, HAM), want, "{target}");
        assert!(warnings().is_empty(), "{target}: {:?}", warnings());
    }
}

#[test]
fn size_conditions() {
    let rules = ":0\n* < 256000\n.Small/\n:0\n* > 1000\n.Big/\n";
    assert_eq!(jo(rules, HAM), folder("Small"));
    let big = message("Subject: big", &"x".repeat(300_000));
    assert_eq!(jo(rules, &big), folder("Big"));
    // Negated.
    assert_eq!(jo(":0\n* ! < 256000\n.Big/\n", &big), folder("Big"));
    assert_eq!(jo(":0\n* ! < 256000\n.Big/\n", HAM), Outcome::cont());
}

#[test]
fn body_conditions() {
    let raw = message("Subject: news", "Read this.\r\nTo unsubscribe, reply.\r\n");
    assert_eq!(jo(":0 B\n* unsubscribe\n.Lists/\n", &raw), folder("Lists"));
    // A `B` recipe does not search the header, an `H` one not the body.
    assert_eq!(jo(":0 B\n* ^Subject: news\n.X/\n", &raw), Outcome::cont());
    assert_eq!(jo(":0\n* unsubscribe\n.X/\n", &raw), Outcome::cont());
    assert_eq!(
        jo(":0\n* B ?? unsubscribe\n.Lists/\n", &raw),
        folder("Lists")
    );
    assert_eq!(jo(":0 HB\n* news\n.Both/\n", &raw), folder("Both"));
    assert_eq!(jo(":0 HB\n* reply\n.Both/\n", &raw), folder("Both"));
    // `$` is at the end of a line, with CR LF line ends too.
    assert_eq!(
        jo(":0 B\n* ^Read this\\.$\n.Lines/\n", &raw),
        folder("Lines")
    );
    // `H ??` searches the header whatever the flags say.
    assert_eq!(jo(":0 B\n* H ?? ^Subject: news\n.H/\n", &raw), folder("H"));
}

#[test]
fn the_body_is_read_up_to_body_limit() {
    let raw = message("Subject: x", "0123456789 SECRET\r\n");
    let rules = ":0 B\n* SECRET\n.Found/\n";
    mock::home_file(".procmailrc", Some(rules));
    let mut small = filter(json!({ "body_limit": 10 }));
    assert_eq!(
        deliver_with(&mut small, "jo@example.org", &raw),
        Outcome::cont()
    );
    assert_eq!(jo(rules, &raw), folder("Found"));
}

#[test]
fn extension_conditions() {
    let rules = ":0\n* EXTENSION ?? ^lists$\n.Lists/\n:0\n* 1 ?? ^tag$\n.Tagged/\n";
    assert_eq!(user(rules, "jo+lists@example.org", HAM), folder("Lists"));
    assert_eq!(user(rules, "jo+tag@example.org", HAM), folder("Tagged"));
    assert_eq!(user(rules, "jo+other@example.org", HAM), Outcome::cont());
    assert_eq!(user(rules, "jo@example.org", HAM), Outcome::cont());
    // The extension in a folder name.
    let by_ext = ":0\n* 1 ?? .\n$HOME/Maildir/.ext.$1/\n";
    assert_eq!(user(by_ext, "jo+rust@example.org", HAM), folder("ext.rust"));
}

#[test]
fn redirect() {
    let rules = ":0\n* ^From:.*a@example\\.org\n! jo@elsewhere.example\n";
    assert_eq!(
        jo(rules, SPAM),
        Outcome::cont().redirect("jo@elsewhere.example")
    );
    assert_eq!(jo(rules, HAM), Outcome::cont());
    // Sendmail options are skipped; only the first address is used.
    let out = jo(":0\n! -oi first@example.org second@example.org\n", HAM);
    assert_eq!(out, Outcome::cont().redirect("first@example.org"));
    let w = warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("second@example.org"), "{w:?}");
}

#[test]
fn discard() {
    let rules = ":0\n* ^Subject: cheap\n/dev/null\n";
    assert_eq!(jo(rules, SPAM), Outcome::discard());
    assert_eq!(jo(rules, HAM), Outcome::cont());
}

#[test]
fn formail_adds_headers_and_processing_goes_on() {
    let rules = "\
:0 fhw
| formail -A \"X-Filtered: by $LOGNAME\"

:0
* ^X-Filtered: by jo
.Filtered/
";
    assert_eq!(
        jo(rules, HAM),
        Outcome::cont()
            .add_header("X-Filtered", "by jo")
            .set_folder("Filtered")
    );
}

#[test]
fn formail_options() {
    let rules = "\
:0 fhw
| formail -I \"Subject: [SPAM] cheap\" -I \"X-Spam-Status:\" -a \"X-Spam-Status: gone\" \\
    -a \"Subject: not added\" -a \"X-New: added\"
:0
* ^Subject: \\[SPAM\\]
* ! ^X-Spam-Status: Yes
.Tagged/
";
    assert_eq!(
        jo(rules, SPAM),
        Outcome::cont()
            .replace_header("Subject", "[SPAM] cheap")
            .remove_header("X-Spam-Status")
            .add_header("X-Spam-Status", "gone")
            .add_header("X-New", "added")
            .set_folder("Tagged")
    );
}

#[test]
fn header_edits_come_with_discard_and_redirect_too() {
    let rules = ":0 fw\n| formail -A \"X-A: 1\"\n:0\n! jo@elsewhere.example\n";
    assert_eq!(
        jo(rules, HAM),
        Outcome::cont()
            .add_header("X-A", "1")
            .redirect("jo@elsewhere.example")
    );
    let rules = ":0 fw\n| formail -A \"X-A: 1\"\n";
    assert_eq!(jo(rules, HAM), Outcome::cont().add_header("X-A", "1"));
}

#[test]
fn a_delivery_stops_unless_c() {
    let stop = ":0\n.First/\n:0\n.Second/\n";
    assert_eq!(jo(stop, HAM), folder("First"));

    let carbon =
        ":0 c\n.Copy/\n:0\n* ^Subject: hello\n.Hello/\n:0 fw\n| formail -A \"X-Seen: yes\"\n";
    // The later delivery wins (one place per recipient), and says so.
    assert_eq!(jo(carbon, HAM), folder("Hello"));
    let w = warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(w[0].contains("copy to folder Copy is not made"), "{w:?}");
    // Nothing else delivers: the copy is the delivery, and processing went
    // on past it (the formail recipe ran).
    assert_eq!(
        jo(carbon, SPAM),
        Outcome::cont()
            .add_header("X-Seen", "yes")
            .set_folder("Copy")
    );
    // A copy redirected would take the message out of the mailbox: not sent.
    assert_eq!(jo(":0 c\n! other@example.org\n", HAM), Outcome::cont());
    assert!(warnings()[0].contains("is not sent"), "{:?}", warnings());
}

#[test]
fn site_rules_run_first() {
    let site = "MAILDIR=$HOME/Maildir/\nSITE=yes\n:0\n* ^X-Spam-Status: Yes\n.Spam/\n";
    let rules = ":0\n* SITE ?? ^yes$\n* ^Subject: cheap\n.Cheap/\n:0\n.Mine/\n";
    let mut f = filter(json!({ "files": { "default": site } }));
    mock::home_file(".procmailrc", Some(rules));
    // A site delivery ends everything: the user's file does not run.
    assert_eq!(deliver_with(&mut f, "jo@example.org", SPAM), folder("Spam"));
    // Otherwise the user's file runs next, and sees the site's variables.
    assert_eq!(deliver_with(&mut f, "jo@example.org", HAM), folder("Mine"));
    let cheap = SPAM.replace("Yes,", "No,");
    assert_eq!(
        deliver_with(&mut f, "jo@example.org", &cheap),
        folder("Cheap")
    );
    assert!(mock::logs().is_empty(), "{:?}", mock::logs());
    // Without a user file, the site's rules alone.
    mock::home_file(".procmailrc", None);
    assert_eq!(deliver_with(&mut f, "jo@example.org", HAM), Outcome::cont());
}

#[test]
fn site_default_applies_when_nothing_delivers() {
    let site = "DEFAULT=$HOME/Maildir/.Unsorted/\n";
    let mut f = filter(json!({ "files": { "default": site } }));
    assert_eq!(
        deliver_with(&mut f, "jo@example.org", HAM),
        folder("Unsorted")
    );
    mock::home_file(".procmailrc", Some(":0\n* ^Subject: hello\n$MAILDIR/\n"));
    assert_eq!(deliver_with(&mut f, "jo@example.org", HAM), Outcome::cont());
}

#[test]
fn the_seed_procmailrc_runs_with_one_warning() {
    assert_eq!(jo(SEED_PROCMAILRC, SPAM), Outcome::cont());
    assert_eq!(
        warnings(),
        [
            "user jo: .procmailrc line 11: needs a program; programs cannot run in the sandbox, \
          so recipes that need one never match"
        ]
    );
    assert_eq!(mock::logs().len(), 1, "{:?}", mock::logs());
    // The same as site rules, with a user file after it.
    mock::reset();
    mock::home_file(".procmailrc", Some(":0\n* ^X-Spam-Status: Yes\n.Spam/\n"));
    let mut f = filter(json!({ "files": { "default": SEED_PROCMAILRC } }));
    assert_eq!(deliver_with(&mut f, "jo@example.org", SPAM), folder("Spam"));
    assert_eq!(
        warnings(),
        [
            "files.default line 11: needs a program; programs cannot run in the sandbox, so \
          recipes that need one never match"
        ]
    );
}

#[test]
fn a_program_recipe_never_matches() {
    let rules = "\
:0 fw
| /usr/bin/spamc -f
:0 E
.NoProgram/
";
    assert_eq!(jo(rules, HAM), folder("NoProgram"));
    let rules = ":0\n* ? /usr/bin/test -f x\n.Never/\n:0 W\nVAR=`date`\n";
    assert_eq!(jo(rules, HAM), Outcome::cont());
    assert_eq!(warnings().len(), 2, "{:?}", warnings());
}

#[test]
fn else_and_also_flags() {
    let rules = "\
:0 fhw
* ^Subject: alpha
| formail -A \"X-Branch: alpha\"
:0 E fhw
* ^Subject: beta
| formail -A \"X-Branch: beta\"
:0 E fhw
| formail -A \"X-Branch: other\"
:0 A fhw
| formail -A \"X-Also: yes\"
:0 e
.NeverOnError/
";
    for (subject, branch) in [("alpha", "alpha"), ("beta", "beta"), ("gamma", "other")] {
        let raw = message(&format!("Subject: {subject}"), "");
        assert_eq!(
            jo(rules, &raw),
            Outcome::cont()
                .add_header("X-Branch", branch)
                .add_header("X-Also", "yes"),
            "{subject}"
        );
    }
    let rules = ":0\n* ^Subject: nomatch\n.X/\n:0 A\n.Also/\n:0 a\n.Also2/\n:0 E\n.Else/\n";
    assert_eq!(jo(rules, HAM), folder("Else"));
    // `E` first in a file: there is no preceding match.
    assert_eq!(jo(":0 E\n.First/\n", HAM), folder("First"));
}

#[test]
fn nested_blocks() {
    let rules = "\
MAILDIR=$HOME/Maildir
:0
* ^From:.*@lists\\.example\\.org
{
  :0
  * ^Subject:.*\\[rust\\]
  .Lists.rust/

  :0
  {
    :0 B
    * urgent
    .Lists.urgent/
  }

  :0
  .Lists/
}
:0
* ^Subject: hello
{ :0
  * ^From: b@
  .Hello/
}
";
    let from = "From: someone@lists.example.org";
    let rust = message(&format!("{from}\r\nSubject: [rust] 1.95"), "notes\r\n");
    let urgent = message(&format!("{from}\r\nSubject: ops"), "urgent: disk\r\n");
    let other = message(&format!("{from}\r\nSubject: misc"), "misc\r\n");
    assert_eq!(jo(rules, &rust), folder("Lists.rust"));
    assert_eq!(jo(rules, &urgent), folder("Lists.urgent"));
    assert_eq!(jo(rules, &other), folder("Lists"));
    assert_eq!(jo(rules, HAM), folder("Hello"));
    assert_eq!(jo(rules, SPAM), Outcome::cont());
    assert!(mock::logs().is_empty(), "{:?}", mock::logs());
}

#[test]
fn a_malformed_recipe_is_skipped_with_a_log_line() {
    let rules = "\
:0
* ^Subject: (hello
.Broken/
:0
* ^Subject: hello
.Hello/
";
    assert_eq!(jo(rules, HAM), folder("Hello"));
    let w = warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].starts_with("user jo: .procmailrc line 2: condition \" ^Subject: (hello\""),
        "{w:?}"
    );
    assert!(w[0].ends_with("recipe skipped"), "{w:?}");
}

#[test]
fn case_is_ignored_unless_d() {
    assert_eq!(jo(":0\n* ^SUBJECT: HELLO\n.Hello/\n", HAM), folder("Hello"));
    assert_eq!(
        jo(":0 D\n* ^SUBJECT: HELLO\n.Hello/\n", HAM),
        Outcome::cont()
    );
    assert_eq!(
        jo(":0 D\n* ^Subject: hello\n.Hello/\n", HAM),
        folder("Hello")
    );
}

#[test]
fn match_and_expanded_conditions() {
    let rules = "\
:0
* ^Subject: \\[\\/[a-z]+
$HOME/Maildir/.Lists.$MATCH/
";
    let raw = message("Subject: [rust] release", "");
    assert_eq!(jo(rules, &raw), folder("Lists.rust"));
    let rules = "WANT=hello\n:0\n* $ ^Subject: $WANT\n.Wanted/\n";
    assert_eq!(jo(rules, HAM), folder("Wanted"));
    assert_eq!(jo(rules, SPAM), Outcome::cont());
}

#[test]
fn macros_in_conditions() {
    let raw = message("To: Jo <jo@example.org>\r\nCc: rust@lists.example.org", "");
    let rules = ":0\n* ^TO_rust@lists\\.example\\.org\n.Rust/\n";
    assert_eq!(jo(rules, &raw), folder("Rust"));
    let bounce = message("From: MAILER-DAEMON@example.org\r\nSubject: failure", "");
    assert_eq!(
        jo(":0\n* ^FROM_DAEMON\n.Daemon/\n", &bounce),
        folder("Daemon")
    );
    assert_eq!(jo(":0\n* ^FROM_DAEMON\n.Daemon/\n", HAM), Outcome::cont());
}

#[test]
fn unusable_targets_are_the_inbox_with_a_warning() {
    assert_eq!(jo(":0\n/var/mail/jo\n", HAM), Outcome::cont());
    assert_eq!(jo(":0\n.Bad*Name/\n", HAM), Outcome::cont());
    assert_eq!(warnings().len(), 1);
}

#[test]
fn no_user_file_or_user_rules_off() {
    mock::home_file(".procmailrc", None);
    assert_eq!(
        deliver_with(&mut filter(json!({})), "jo@example.org", SPAM),
        Outcome::cont()
    );
    mock::home_file(".procmailrc", Some(":0\n.Spam/\n"));
    let mut off = filter(json!({ "user_rules": "" }));
    assert_eq!(
        deliver_with(&mut off, "jo@example.org", SPAM),
        Outcome::cont()
    );
    mock::home_file(".mailfilter", Some(":0\n.Other/\n"));
    let mut other = filter(json!({ "user_rules": ".mailfilter" }));
    assert_eq!(
        deliver_with(&mut other, "jo@example.org", SPAM),
        folder("Other")
    );
}

#[test]
fn unsupported_statements_are_logged_and_ignored() {
    let rules =
        "INCLUDERC=$HOME/.procmail/lists.rc\n:0\n* 100^1 ^Subject\n.Scored/\n:2\n:0\n.Ok/\n";
    assert_eq!(jo(rules, HAM), folder("Ok"));
    let w = warnings();
    assert_eq!(w.len(), 3, "{w:?}");
    assert!(
        w.iter()
            .any(|l| l.contains("line 3") && l.contains("scoring"))
    );
    assert!(w.iter().any(|l| l.contains("line 5") && l.contains(":N")));
    assert!(
        w.iter()
            .any(|l| l.contains("line 1") && l.contains("INCLUDERC"))
    );
}

#[test]
fn configuration_errors() {
    for (config, want) in [
        (json!({ "nope": 1 }), "unknown setting `nope`"),
        (
            json!({ "files": { "other": "x" } }),
            "unknown file `other` (only `default`)",
        ),
        (
            json!({ "files": { "default": 3 } }),
            "`files.default` must be text",
        ),
        (json!({ "user_rules": "../x" }), "without `/`"),
        (json!({ "body_limit": 1u64 << 30 }), "at most"),
        (json!({ "body_limit": "big" }), "body_limit"),
    ] {
        let err = mock::configure::<Mailfilter>(&config.to_string()).unwrap_err();
        assert!(err.contains(want), "{config}: {err}");
    }
    let f = filter(json!({ "body_limit": 1024, "user_rules": ".rules" }));
    assert_eq!((f.body_limit, f.user_rules.as_str()), (1024, ".rules"));
}

#[test]
fn hostile_input_never_panics() {
    let long = "(".repeat(100_000);
    let rules = [
        long.as_str(),
        ":0\n",
        ":0\n{\n",
        "}\n}\n",
        ":0\n* \\\n",
        ":0\n! \"unclosed\n",
        ":0\n* ^Subject: [a-\n.X/\n",
        ":0\n* x ?? \n.X/\n",
        ":0\n* <\n.X/\n",
        "A=${\nB=$\n:0\n${A}\n",
        "\u{feff}:0\n\u{e9}\n",
    ];
    for text in rules {
        let _ = jo(text, HAM);
    }
    let deep = format!("{}{}", ":0\n{\n".repeat(500), "}\n".repeat(500));
    assert_eq!(jo(&deep, HAM), Outcome::cont());
}
