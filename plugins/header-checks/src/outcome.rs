//! From the rules that fired to postern's answer: a verdict, edits and log
//! lines.
//!
//! In: a [`Report`], the hook's context (client, envelope) and the message's
//! headers. Out: a [`Decision`]: the [`Outcome`] and the lines to log,
//! worded like cleanup(8)'s (`reject: header Subject: x from [192.0.2.7];
//! from=<a@example.org> to=<b@example.org> proto=ESMTP helo=<mx>: 5.7.1 no`).
//!
//! The mapping, as close to Postfix as the WIT allows:
//!
//! | action | postern |
//! |---|---|
//! | `REJECT [text]` | `reject 550 5.7.1 text` (`message content rejected` by default); a 4.x.x code in the text makes it `defer 451` |
//! | `DISCARD` | `discard` |
//! | `HOLD` | `hold` with the text (or the matched line), unless rejected or discarded |
//! | `PASS` | `accept`: the rest of the data-stage chain is skipped, as Postfix skips Milters |
//! | `REDIRECT addr` | every envelope recipient removed, `addr` added (BCCs included, as Postfix redirects them too) |
//! | `BCC addr` | `add-recipient addr` |
//! | `PREPEND h` | `prepend-header h`: at the top of the header section, where Postfix puts it right before the matched header |
//! | `REPLACE h` | `replace-header h` if `h` has the matched header's name (the WIT replaces the *first* header of that name), else `remove-header` of the matched name and `add-header h` |
//! | `IGNORE`, `STRIP` | `remove-header` of the matched name: the WIT removes *every* header of that name, Postfix only the matched one (a warning says so when there are several) |
//! | `WARN`, `INFO` | a log line |
//! | `FILTER` | a log line: content filters are not available yet |
//! | `DUNNO`, `OK` | nothing |
//!
//! Edits reach only the message's own header section: `PREPEND`, `REPLACE`,
//! `IGNORE` and `STRIP` on a MIME part's header, an attached message's
//! header or a body line cannot be done through the WIT and are logged as
//! such. A message nested deeper than `mime_nesting_limit` is rejected
//! (`550 5.6.0 MIME nesting exceeds safety limit`) when a header table is
//! set, as cleanup does.
//!
//! Must not: call host capabilities (the caller writes the log lines).

use postern_plugin_sdk::log::Level;
use postern_plugin_sdk::{Context as HookContext, Header, Outcome, Verdict};

use crate::action::{Action, Context};
use crate::engine::{Checks, Hit, Place, Report};
use crate::mime::is_header;

/// The answer to the host and what to log.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The verdict and edits.
    pub outcome: Outcome,
    /// Lines for the server's log, in order.
    pub logs: Vec<(Level, String)>,
}

/// Postfix logs at most this much of the matched line (`%.200s`).
const LOGGED_LINE_BYTES: usize = 200;

/// Decides what postern does with the rules that fired.
pub fn decide(
    report: &Report,
    checks: &Checks,
    call: &HookContext,
    headers: &[Header],
) -> Decision {
    let mut d = Decider {
        call,
        headers,
        refusal: None,
        discard: false,
        hold: None,
        pass: false,
        redirect: None,
        bcc: Vec::new(),
        outcome: Outcome::cont(),
        logs: Vec::new(),
    };
    for hit in &report.hits {
        d.apply(hit);
    }
    if report.nesting_exceeded && checks.has_header_tables() && d.refusal.is_none() {
        let text = "MIME nesting exceeds safety limit";
        d.logs.push((
            Level::Info,
            format!("reject: mime-error {text}{}", d.origin()),
        ));
        d.refusal = Some(Verdict::reject(550, "5.6.0", text));
    }
    d.finish()
}

struct Decider<'a> {
    /// The hook's context: the client and envelope are fetched only when a
    /// log line or a redirect needs them.
    call: &'a HookContext<'a>,
    headers: &'a [Header],
    refusal: Option<Verdict>,
    discard: bool,
    hold: Option<String>,
    pass: bool,
    redirect: Option<String>,
    bcc: Vec<String>,
    /// Collects the header edits.
    outcome: Outcome,
    logs: Vec<(Level, String)>,
}

impl Decider<'_> {
    /// ` from [ip]; from=<s> to=<r> proto=ESMTP helo=<h>`, as cleanup logs.
    fn origin(&self) -> String {
        let (client, envelope) = (self.call.client(), self.call.envelope());
        let mut s = format!(" from [{}];", client.ip);
        s.push_str(&format!(" from=<{}>", envelope.sender));
        if let Some(rcpt) = envelope.recipients.first() {
            s.push_str(&format!(" to=<{rcpt}>"));
        }
        s.push_str(if client.esmtp {
            " proto=ESMTP"
        } else {
            " proto=SMTP"
        });
        if let Some(helo) = &client.helo {
            s.push_str(&format!(" helo=<{helo}>"));
        }
        s
    }

    fn log(&mut self, level: Level, hit: &Hit, text: &str) {
        let context = match hit.place {
            Place::Body => Context::Body,
            Place::PrimaryHeader | Place::PartHeader => Context::Header,
        };
        let shown = &hit.line[..hit.line.len().min(LOGGED_LINE_BYTES)];
        let mut line = format!(
            "{}: {} {}{}",
            hit.action.log_name(),
            context.name(),
            String::from_utf8_lossy(shown),
            self.origin()
        );
        if !text.is_empty() {
            line.push_str(": ");
            line.push_str(text);
        }
        self.logs.push((level, line));
    }

    /// Logs why an edit Postfix would make cannot be made.
    fn cannot_edit(&mut self, hit: &Hit) {
        let what = match hit.place {
            Place::Body => "a body line",
            _ => "a header of a MIME part or attached message",
        };
        let line = format!(
            "{}: {} cannot {} {what}: postern edits only the message's own headers; ignored",
            hit.table.name(),
            hit.action.log_name().to_ascii_uppercase(),
            match hit.action {
                Action::Prepend(_) => "insert before",
                Action::Replace(_) => "replace",
                _ => "remove",
            }
        );
        self.logs.push((Level::Warn, line));
    }

    /// Warns when removing a header by name removes more than Postfix would.
    fn note_every_header_removed(&mut self, hit: &Hit, name: &str) {
        let count = self
            .headers
            .iter()
            .filter(|h| h.name.eq_ignore_ascii_case(name))
            .count();
        if count > 1 {
            self.logs.push((
                Level::Warn,
                format!(
                    "{}: {}: removes all {count} {name} headers (postern removes headers by name; Postfix only the matched one)",
                    hit.table.name(),
                    hit.action.log_name().to_ascii_uppercase()
                ),
            ));
        }
    }

    fn apply(&mut self, hit: &Hit) {
        match &hit.action {
            Action::Reject {
                code,
                dsn,
                text,
                warning,
            } => {
                if let Some(warning) = warning {
                    self.logs.push((Level::Warn, warning.clone()));
                }
                self.log(Level::Info, hit, &format!("{dsn} {text}"));
                if self.refusal.is_none() {
                    self.refusal = Some(if *code == 451 {
                        Verdict::defer(451, dsn.as_str(), text.as_str())
                    } else {
                        Verdict::reject(550, dsn.as_str(), text.as_str())
                    });
                }
            }
            Action::Warn(text) => self.log(Level::Warn, hit, text),
            Action::Info(text) => self.log(Level::Info, hit, text),
            Action::Filter(text) => {
                let text =
                    format!("{text} (content filters are not available in postern yet; ignored)");
                self.log(Level::Warn, hit, &text);
            }
            Action::Pass(text) => {
                self.log(Level::Info, hit, text);
                self.pass = true;
            }
            Action::Discard(text) => {
                self.log(Level::Info, hit, text);
                self.discard = true;
            }
            Action::Hold(text) => {
                if self.hold.is_none() && !self.discard {
                    self.log(Level::Info, hit, text);
                    let reason = if text.is_empty() {
                        let shown = &hit.line[..hit.line.len().min(LOGGED_LINE_BYTES)];
                        format!("{}: {}", hit.table.name(), String::from_utf8_lossy(shown))
                    } else {
                        text.clone()
                    };
                    self.hold = Some(reason);
                }
            }
            Action::Redirect(address) => {
                self.log(Level::Info, hit, address);
                self.redirect = Some(address.clone());
            }
            Action::Bcc(address) => {
                self.log(Level::Info, hit, address);
                self.bcc.push(address.clone());
            }
            Action::Prepend(text) => {
                let Some((name, value)) =
                    split_header(text).filter(|_| hit.place == Place::PrimaryHeader)
                else {
                    return self.cannot_edit(hit);
                };
                self.log(Level::Info, hit, text);
                self.edit(|o| o.prepend_header(name, value));
            }
            Action::Replace(text) => {
                let (Some((name, value)), Some((old, _))) =
                    (split_header(text), split_header_bytes(&hit.line))
                else {
                    return self.cannot_edit(hit);
                };
                if hit.place != Place::PrimaryHeader {
                    return self.cannot_edit(hit);
                }
                self.log(Level::Info, hit, text);
                if name.eq_ignore_ascii_case(&old) {
                    self.edit(|o| o.replace_header(name, value));
                } else {
                    self.note_every_header_removed(hit, &old);
                    self.edit(|o| o.remove_header(old).add_header(name, value));
                }
            }
            Action::Strip(_) | Action::Ignore => {
                let Some((old, _)) =
                    split_header_bytes(&hit.line).filter(|_| hit.place == Place::PrimaryHeader)
                else {
                    return self.cannot_edit(hit);
                };
                if let Action::Strip(text) = &hit.action {
                    self.log(Level::Info, hit, text);
                }
                self.note_every_header_removed(hit, &old);
                self.edit(|o| o.remove_header(old));
            }
            Action::Dunno => {}
            Action::Invalid(warning) => self.logs.push((Level::Warn, warning.clone())),
        }
    }

    fn edit(&mut self, f: impl FnOnce(Outcome) -> Outcome) {
        self.outcome = f(std::mem::take(&mut self.outcome));
    }

    fn finish(self) -> Decision {
        let mut outcome = self.outcome;
        if let Some(address) = &self.redirect {
            for rcpt in &self.call.envelope().recipients {
                outcome = outcome.remove_recipient(rcpt.as_str());
            }
            outcome = outcome.add_recipient(address.as_str());
        } else {
            for address in &self.bcc {
                outcome = outcome.add_recipient(address.as_str());
            }
        }
        outcome.verdict = if let Some(refusal) = self.refusal {
            refusal
        } else if self.discard {
            Verdict::Discard
        } else if let Some(reason) = self.hold {
            Verdict::hold(reason)
        } else if self.pass {
            Verdict::Accept
        } else {
            Verdict::Continue
        };
        Decision {
            outcome,
            logs: self.logs,
        }
    }
}

/// `Name: value` into name and value (leading white space dropped).
fn split_header(text: &str) -> Option<(String, String)> {
    split_header_bytes(text.as_bytes())
}

fn split_header_bytes(text: &[u8]) -> Option<(String, String)> {
    let name_len = is_header(text);
    if name_len == 0 {
        return None;
    }
    let colon = text.iter().position(|&b| b == b':')?;
    let value = text[colon + 1..].trim_ascii_start();
    Some((
        String::from_utf8_lossy(&text[..name_len]).into_owned(),
        String::from_utf8_lossy(value).into_owned(),
    ))
}

#[cfg(test)]
mod tests {
    use postern_plugin_sdk::{Client, Edit, mock};

    use super::*;
    use crate::engine::TableClass;

    fn hit(place: Place, line: &str, action: Action) -> Hit {
        let table = match place {
            Place::Body => TableClass::Body,
            _ => TableClass::Header,
        };
        Hit {
            table,
            place,
            line: line.as_bytes().to_vec(),
            action,
        }
    }

    fn decide_hits(hits: Vec<Hit>) -> Decision {
        let headers = vec![
            Header {
                name: "Subject".into(),
                value: "hi".into(),
            },
            Header {
                name: "Received".into(),
                value: "a".into(),
            },
            Header {
                name: "Received".into(),
                value: "b".into(),
            },
        ];
        let report = Report {
            hits,
            nesting_exceeded: false,
        };
        let client = Client {
            helo: Some("mx.example.net".into()),
            ..mock::client("192.0.2.7")
        };
        let envelope = mock::envelope("s@example.org", &["r1@example.org", "r2@example.org"]);
        decide(
            &report,
            &Checks::default(),
            &mock::context(&client, Some(&envelope), &[]),
            &headers,
        )
    }

    #[test]
    fn reject_wins_and_is_logged_like_cleanup() {
        let d = decide_hits(vec![
            hit(
                Place::PrimaryHeader,
                "Subject: hi",
                Action::Hold("look".into()),
            ),
            hit(
                Place::PrimaryHeader,
                "Subject: hi",
                Action::Reject {
                    code: 550,
                    dsn: "5.7.1".into(),
                    text: "no".into(),
                    warning: None,
                },
            ),
        ]);
        assert_eq!(d.outcome.verdict, Verdict::reject(550, "5.7.1", "no"));
        assert_eq!(
            d.logs[1],
            (
                Level::Info,
                "reject: header Subject: hi from [192.0.2.7]; from=<s@example.org> to=<r1@example.org> proto=ESMTP helo=<mx.example.net>: 5.7.1 no".to_owned()
            )
        );
        let d = decide_hits(vec![hit(
            Place::Body,
            "x",
            Action::Reject {
                code: 451,
                dsn: "4.7.1".into(),
                text: "later".into(),
                warning: Some("bad DSN action in 2.0.0 later -- need 4.x.x or 5.x.x".into()),
            },
        )]);
        assert_eq!(d.outcome.verdict, Verdict::defer(451, "4.7.1", "later"));
        assert_eq!(
            d.logs[0],
            (
                Level::Warn,
                "bad DSN action in 2.0.0 later -- need 4.x.x or 5.x.x".to_owned()
            )
        );
    }

    #[test]
    fn verdict_precedence() {
        let hold = |t: &str| hit(Place::PrimaryHeader, "Subject: hi", Action::Hold(t.into()));
        let discard = hit(
            Place::PrimaryHeader,
            "Subject: hi",
            Action::Discard(String::new()),
        );
        let pass = hit(
            Place::PrimaryHeader,
            "Subject: hi",
            Action::Pass(String::new()),
        );
        assert_eq!(
            decide_hits(vec![hold("a"), hold("b")]).outcome.verdict,
            Verdict::hold("a")
        );
        assert_eq!(
            decide_hits(vec![hold("")]).outcome.verdict,
            Verdict::hold("header_checks: Subject: hi")
        );
        assert_eq!(
            decide_hits(vec![hold("a"), discard.clone()])
                .outcome
                .verdict,
            Verdict::Discard
        );
        assert_eq!(
            decide_hits(vec![hold("a"), pass.clone()]).outcome.verdict,
            Verdict::hold("a")
        );
        assert_eq!(decide_hits(vec![pass]).outcome.verdict, Verdict::Accept);
        assert_eq!(decide_hits(vec![]).outcome, Outcome::cont());
    }

    #[test]
    fn header_edits_reach_only_the_primary_section() {
        let d = decide_hits(vec![
            hit(
                Place::PrimaryHeader,
                "Subject: hi",
                Action::Prepend("X-Seen:  yes".into()),
            ),
            hit(
                Place::PrimaryHeader,
                "Subject: hi",
                Action::Replace("Subject: [tag] hi".into()),
            ),
            hit(
                Place::PrimaryHeader,
                "Subject: hi",
                Action::Replace("X-Old-Subject: hi".into()),
            ),
            hit(Place::PrimaryHeader, "Received: a", Action::Ignore),
            hit(
                Place::PrimaryHeader,
                "Received: b",
                Action::Strip("gone".into()),
            ),
            hit(Place::PartHeader, "Content-Type: x", Action::Ignore),
            hit(Place::Body, "line", Action::Replace("other".into())),
        ]);
        let h = |n: &str, v: &str| Header {
            name: n.into(),
            value: v.into(),
        };
        assert_eq!(
            d.outcome.edits,
            [
                Edit::PrependHeader(h("X-Seen", "yes")),
                Edit::ReplaceHeader(h("Subject", "[tag] hi")),
                Edit::RemoveHeader("Subject".into()),
                Edit::AddHeader(h("X-Old-Subject", "hi")),
                Edit::RemoveHeader("Received".into()),
                Edit::RemoveHeader("Received".into()),
            ]
        );
        let warnings: Vec<_> = d
            .logs
            .iter()
            .filter(|(l, _)| *l == Level::Warn)
            .map(|(_, m)| m.as_str())
            .collect();
        assert_eq!(
            warnings,
            [
                "header_checks: IGNORE: removes all 2 Received headers (postern removes headers by name; Postfix only the matched one)",
                "header_checks: STRIP: removes all 2 Received headers (postern removes headers by name; Postfix only the matched one)",
                "header_checks: IGNORE cannot remove a header of a MIME part or attached message: postern edits only the message's own headers; ignored",
                "body_checks: REPLACE cannot replace a body line: postern edits only the message's own headers; ignored",
            ]
        );
    }

    #[test]
    fn redirect_replaces_every_recipient_and_bcc_adds() {
        let d = decide_hits(vec![hit(
            Place::PrimaryHeader,
            "Subject: hi",
            Action::Bcc("b@example.org".into()),
        )]);
        assert_eq!(
            d.outcome.edits,
            [Edit::AddRecipient("b@example.org".into())]
        );
        let d = decide_hits(vec![
            hit(
                Place::PrimaryHeader,
                "Subject: hi",
                Action::Bcc("b@example.org".into()),
            ),
            hit(
                Place::PrimaryHeader,
                "Subject: hi",
                Action::Redirect("x@example.org".into()),
            ),
        ]);
        assert_eq!(
            d.outcome.edits,
            [
                Edit::RemoveRecipient("r1@example.org".into()),
                Edit::RemoveRecipient("r2@example.org".into()),
                Edit::AddRecipient("x@example.org".into()),
            ]
        );
        assert!(d.outcome.is_continue());
    }

    #[test]
    fn filter_and_invalid_actions_are_logged() {
        let d = decide_hits(vec![
            hit(
                Place::PrimaryHeader,
                "Subject: hi",
                Action::Filter("smtp:[127.0.0.1]:10025".into()),
            ),
            hit(
                Place::PrimaryHeader,
                "Subject: hi",
                Action::Invalid("unknown command in header_checks map: FOO".into()),
            ),
        ]);
        assert!(d.outcome.is_continue());
        assert_eq!(d.logs.len(), 2);
        assert!(
            d.logs[0]
                .1
                .starts_with("filter: header Subject: hi from [192.0.2.7];")
        );
        assert!(d.logs[0].1.ends_with(
            ": smtp:[127.0.0.1]:10025 (content filters are not available in postern yet; ignored)"
        ));
        assert_eq!(
            d.logs[1],
            (
                Level::Warn,
                "unknown command in header_checks map: FOO".to_owned()
            )
        );
    }
}
