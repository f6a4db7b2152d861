//! Constructors for [`Verdict`], [`Outcome`] and [`Reply`].
//!
//! In: reply codes and texts chosen by the plugin. Out: the WIT values the
//! host receives. The reply code's class is checked here, where the mistake is
//! made: a `reject` with a 2xx or 4xx code is a bug in the plugin, so it
//! panics (a trap, which the host logs and turns into its `on_error` policy)
//! rather than reaching a client as a wrong reply. Texts are not trusted: they
//! often carry data from DNS or from the message, so control characters
//! (CR and LF above all, RFC 5321 §4.2) become spaces and an overlong text is
//! cut (RFC 5321 §4.5.3.1.5), instead of panicking.

use core::ops::RangeInclusive;

use crate::prelude::*;
use crate::{Edit, Header, Outcome, Reply, Verdict};

/// The longest reply text kept, in bytes: a reply line is at most 512 octets
/// with its CR LF (RFC 5321 §4.5.3.1.5), and `"554 5.999.999 "` comes first.
pub const MAX_REPLY_TEXT_BYTES: usize = 512 - 2 - "554 5.999.999 ".len();

impl Reply {
    /// A reply with `code`, an RFC 3463 `enhanced` status code (`""` for none)
    /// and `text`. Control characters in `enhanced` and `text` become spaces,
    /// and `text` is cut to [`MAX_REPLY_TEXT_BYTES`].
    ///
    /// The code is not checked here: the [`Verdict`] constructors check it.
    pub fn new(code: u16, enhanced: impl Into<String>, text: impl Into<String>) -> Reply {
        let mut text = one_line(text.into());
        if text.len() > MAX_REPLY_TEXT_BYTES {
            let mut end = MAX_REPLY_TEXT_BYTES;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        Reply {
            code,
            enhanced: one_line(enhanced.into()),
            text,
        }
    }
}

/// Replaces control characters with spaces: a reply is one line.
fn one_line(mut text: String) -> String {
    if text.contains(char::is_control) {
        text = text
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
    }
    text
}

/// Builds the reply of a verdict, checking its code class.
#[track_caller]
// reason: a reply code of the wrong class is a bug in the plugin; the
// documented behaviour is a panic (a trap, which the host logs).
#[allow(clippy::panic)]
fn checked_reply(
    verdict: &str,
    classes: RangeInclusive<u16>,
    code: u16,
    enhanced: String,
    text: String,
) -> Reply {
    if !classes.contains(&code) {
        let wanted = if classes.start() / 100 == classes.end() / 100 {
            format!("{}xx", classes.start() / 100)
        } else {
            format!("{}xx or {}xx", classes.start() / 100, classes.end() / 100)
        };
        panic!("Verdict::{verdict} needs a {wanted} reply code, not {code}");
    }
    // RFC 3463 §2: class.subject.detail, and the class repeats the code's.
    if !enhanced.is_empty() && !enhanced_matches(&enhanced, code) {
        panic!(
            "Verdict::{verdict}: enhanced status code {enhanced:?} does not fit reply code {code} \
             (RFC 3463: \"{}.x.y\" with x and y of 1 to 3 digits)",
            code / 100
        );
    }
    Reply::new(code, enhanced, text)
}

/// Whether `enhanced` is `class.subject.detail` with the class of `code`.
fn enhanced_matches(enhanced: &str, code: u16) -> bool {
    let mut fields = enhanced.split('.');
    let is_number = |f: &str| (1..=3).contains(&f.len()) && f.bytes().all(|b| b.is_ascii_digit());
    let class_ok = fields.next() == Some(&(code / 100).to_string()[..]);
    let rest_ok = matches!((fields.next(), fields.next(), fields.next()),
        (Some(subject), Some(detail), None) if is_number(subject) && is_number(detail));
    class_ok && rest_ok
}

impl Verdict {
    /// Refuse permanently.
    ///
    /// # Panics
    ///
    /// Unless `code` is 5xx, or if `enhanced` is neither empty nor `5.x.y`.
    #[track_caller]
    pub fn reject(code: u16, enhanced: impl Into<String>, text: impl Into<String>) -> Verdict {
        Verdict::Reject(checked_reply(
            "reject",
            500..=599,
            code,
            enhanced.into(),
            text.into(),
        ))
    }

    /// Refuse for now; the client may retry.
    ///
    /// # Panics
    ///
    /// Unless `code` is 4xx, or if `enhanced` is neither empty nor `4.x.y`.
    #[track_caller]
    pub fn defer(code: u16, enhanced: impl Into<String>, text: impl Into<String>) -> Verdict {
        Verdict::Defer(checked_reply(
            "defer",
            400..=499,
            code,
            enhanced.into(),
            text.into(),
        ))
    }

    /// Reply, then end the SMTP session.
    ///
    /// # Panics
    ///
    /// Unless `code` is 4xx or 5xx, or if `enhanced` does not match its class.
    #[track_caller]
    pub fn disconnect(code: u16, enhanced: impl Into<String>, text: impl Into<String>) -> Verdict {
        Verdict::Disconnect(checked_reply(
            "disconnect",
            400..=599,
            code,
            enhanced.into(),
            text.into(),
        ))
    }

    /// Accept the message into the hold queue, with a reason for the operator.
    pub fn hold(reason: impl Into<String>) -> Verdict {
        Verdict::Hold(one_line(reason.into()))
    }
}

impl Outcome {
    /// No opinion: the next step of the chain runs.
    pub fn cont() -> Outcome {
        Verdict::Continue.into()
    }

    /// Accept: the rest of this stage's chain is skipped (Postfix's `OK`).
    pub fn accept() -> Outcome {
        Verdict::Accept.into()
    }

    /// Refuse permanently; see [`Verdict::reject`].
    ///
    /// # Panics
    ///
    /// As [`Verdict::reject`]: unless `code` is 5xx.
    #[track_caller]
    pub fn reject(code: u16, enhanced: impl Into<String>, text: impl Into<String>) -> Outcome {
        Verdict::reject(code, enhanced, text).into()
    }

    /// Refuse for now; see [`Verdict::defer`].
    ///
    /// # Panics
    ///
    /// As [`Verdict::defer`]: unless `code` is 4xx.
    #[track_caller]
    pub fn defer(code: u16, enhanced: impl Into<String>, text: impl Into<String>) -> Outcome {
        Verdict::defer(code, enhanced, text).into()
    }

    /// Reply, then end the session; see [`Verdict::disconnect`].
    ///
    /// # Panics
    ///
    /// As [`Verdict::disconnect`]: unless `code` is 4xx or 5xx.
    #[track_caller]
    pub fn disconnect(code: u16, enhanced: impl Into<String>, text: impl Into<String>) -> Outcome {
        Verdict::disconnect(code, enhanced, text).into()
    }

    /// Accept the message, then drop it silently (at the deliver stage: for
    /// this recipient).
    pub fn discard() -> Outcome {
        Verdict::Discard.into()
    }

    /// Accept the message into the hold queue; see [`Verdict::hold`].
    pub fn hold(reason: impl Into<String>) -> Outcome {
        Verdict::hold(reason).into()
    }

    /// Whether the verdict is "continue".
    pub fn is_continue(&self) -> bool {
        self.verdict == Verdict::Continue
    }

    /// Adds an edit, applied by the host after the stage's chain has run (and
    /// only if the message is not refused).
    pub fn edit(mut self, edit: Edit) -> Outcome {
        self.edits.push(edit);
        self
    }

    /// Appends a header at the end of the header section.
    pub fn add_header(self, name: impl Into<String>, value: impl Into<String>) -> Outcome {
        self.edit(Edit::AddHeader(header(name, value)))
    }

    /// Inserts a header at the top of the header section.
    pub fn prepend_header(self, name: impl Into<String>, value: impl Into<String>) -> Outcome {
        self.edit(Edit::PrependHeader(header(name, value)))
    }

    /// Replaces the first header of this name, or adds it if there is none.
    pub fn replace_header(self, name: impl Into<String>, value: impl Into<String>) -> Outcome {
        self.edit(Edit::ReplaceHeader(header(name, value)))
    }

    /// Removes every header of this name.
    pub fn remove_header(self, name: impl Into<String>) -> Outcome {
        self.edit(Edit::RemoveHeader(name.into()))
    }

    /// Replaces the envelope sender.
    pub fn change_sender(self, sender: impl Into<String>) -> Outcome {
        self.edit(Edit::ChangeSender(sender.into()))
    }

    /// Adds an envelope recipient.
    pub fn add_recipient(self, rcpt: impl Into<String>) -> Outcome {
        self.edit(Edit::AddRecipient(rcpt.into()))
    }

    /// Removes an envelope recipient.
    pub fn remove_recipient(self, rcpt: impl Into<String>) -> Outcome {
        self.edit(Edit::RemoveRecipient(rcpt.into()))
    }

    /// Deliver stage: files into this Maildir++ folder (e.g. `"Spam"` or
    /// `"Lists.rust"`), created as needed.
    pub fn set_folder(self, folder: impl Into<String>) -> Outcome {
        self.edit(Edit::SetFolder(folder.into()))
    }

    /// Deliver stage: delivers to this address instead (re-queued).
    pub fn redirect(self, address: impl Into<String>) -> Outcome {
        self.edit(Edit::Redirect(address.into()))
    }
}

fn header(name: impl Into<String>, value: impl Into<String>) -> Header {
    Header {
        name: name.into(),
        value: value.into(),
    }
}

impl From<Verdict> for Outcome {
    fn from(verdict: Verdict) -> Outcome {
        Outcome {
            verdict,
            edits: Vec::new(),
        }
    }
}

impl Default for Outcome {
    /// Continue, without edits.
    fn default() -> Outcome {
        Outcome::cont()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_build_the_wit_variants() {
        let reply = |code, enh: &str, text: &str| Reply {
            code,
            enhanced: enh.into(),
            text: text.into(),
        };
        let cases = [
            (
                Verdict::reject(554, "5.7.1", "no"),
                Verdict::Reject(reply(554, "5.7.1", "no")),
            ),
            (
                Verdict::reject(550, "", "no"),
                Verdict::Reject(reply(550, "", "no")),
            ),
            (
                Verdict::defer(451, "4.7.1", "later"),
                Verdict::Defer(reply(451, "4.7.1", "later")),
            ),
            (
                Verdict::disconnect(421, "4.7.0", "bye"),
                Verdict::Disconnect(reply(421, "4.7.0", "bye")),
            ),
            (
                Verdict::disconnect(521, "5.5.2", "bye"),
                Verdict::Disconnect(reply(521, "5.5.2", "bye")),
            ),
            (Verdict::hold("look"), Verdict::Hold("look".into())),
        ];
        for (built, want) in cases {
            assert_eq!(built, want);
        }
        assert_eq!(
            Outcome::reject(554, "5.7.1", "no").verdict,
            Verdict::reject(554, "5.7.1", "no")
        );
        assert_eq!(
            Outcome::defer(450, "4.2.0", "x").verdict,
            Verdict::defer(450, "4.2.0", "x")
        );
        assert_eq!(
            Outcome::disconnect(421, "", "x").verdict,
            Verdict::disconnect(421, "", "x")
        );
        assert_eq!(Outcome::cont().verdict, Verdict::Continue);
        assert_eq!(Outcome::accept().verdict, Verdict::Accept);
        assert_eq!(Outcome::discard().verdict, Verdict::Discard);
        assert_eq!(Outcome::hold("h").verdict, Verdict::Hold("h".into()));
        assert_eq!(Outcome::default(), Outcome::cont());
        assert!(Outcome::cont().is_continue() && !Outcome::accept().is_continue());
    }

    #[test]
    fn reply_texts_stay_on_one_line() {
        let v = Verdict::reject(554, "5.7.1", "listed\r\n250 OK\tsee\x00x");
        assert_eq!(
            v,
            Verdict::Reject(Reply::new(554, "5.7.1", "listed  250 OK see x"))
        );
        assert_eq!(Verdict::hold("a\nb"), Verdict::Hold("a b".into()));
    }

    #[test]
    fn reply_texts_are_cut_to_fit_a_reply_line() {
        let long = "é".repeat(400);
        let Verdict::Reject(reply) = Verdict::reject(554, "5.7.1", long) else {
            unreachable!()
        };
        assert!(
            reply.text.len() <= MAX_REPLY_TEXT_BYTES
                && reply.text.len() >= MAX_REPLY_TEXT_BYTES - 1
        );
        assert!(reply.text.chars().all(|c| c == 'é'));
        assert_eq!(
            format!("554 5.999.999 {}\r\n", "x".repeat(MAX_REPLY_TEXT_BYTES)).len(),
            512
        );
    }

    #[test]
    fn edits_accumulate_in_order() {
        let out = Outcome::accept()
            .add_header("X-A", "1")
            .prepend_header("X-B", "2")
            .replace_header("Subject", "[SPAM] hi")
            .remove_header("X-C")
            .change_sender("s@example.org")
            .add_recipient("r@example.org")
            .remove_recipient("q@example.org")
            .set_folder("Spam")
            .redirect("other@example.org");
        let h = |n: &str, v: &str| Header {
            name: n.into(),
            value: v.into(),
        };
        assert_eq!(
            out.edits,
            [
                Edit::AddHeader(h("X-A", "1")),
                Edit::PrependHeader(h("X-B", "2")),
                Edit::ReplaceHeader(h("Subject", "[SPAM] hi")),
                Edit::RemoveHeader("X-C".into()),
                Edit::ChangeSender("s@example.org".into()),
                Edit::AddRecipient("r@example.org".into()),
                Edit::RemoveRecipient("q@example.org".into()),
                Edit::SetFolder("Spam".into()),
                Edit::Redirect("other@example.org".into()),
            ]
        );
        assert_eq!(out.verdict, Verdict::Accept);
    }

    /// Runs `f` and returns its panic message.
    fn panic_message(f: impl FnOnce() -> Verdict + std::panic::UnwindSafe) -> String {
        let err = std::panic::catch_unwind(f).unwrap_err();
        err.downcast_ref::<String>().cloned().unwrap_or_default()
    }

    #[test]
    fn a_code_of_the_wrong_class_panics_with_a_clear_message() {
        type Case = (fn() -> Verdict, &'static str);
        let cases: [Case; 7] = [
            (
                || Verdict::reject(250, "", "ok"),
                "Verdict::reject needs a 5xx reply code, not 250",
            ),
            (
                || Verdict::reject(450, "", "x"),
                "Verdict::reject needs a 5xx reply code, not 450",
            ),
            (
                || Verdict::defer(554, "", "x"),
                "Verdict::defer needs a 4xx reply code, not 554",
            ),
            (
                || Verdict::disconnect(221, "", "x"),
                "Verdict::disconnect needs a 4xx or 5xx reply code, not 221",
            ),
            (
                || Verdict::reject(600, "", "x"),
                "Verdict::reject needs a 5xx reply code, not 600",
            ),
            (
                || Verdict::reject(554, "4.7.1", "x"),
                "enhanced status code \"4.7.1\" does not fit reply code 554",
            ),
            (
                || Verdict::defer(451, "4.7", "x"),
                "enhanced status code \"4.7\" does not fit reply code 451",
            ),
        ];
        for (f, want) in cases {
            let msg = panic_message(f);
            assert!(msg.contains(want), "{msg:?} should contain {want:?}");
        }
    }

    #[test]
    fn enhanced_codes_follow_rfc_3463() {
        for (enh, code, ok) in [
            ("5.7.1", 554, true),
            ("5.1.10", 550, true),
            ("4.999.999", 450, true),
            ("5.7.1", 454, false),
            ("5.7", 554, false),
            ("5.7.1.2", 554, false),
            ("5.x.1", 554, false),
            ("5..1", 554, false),
            ("5.7.1000", 554, false),
        ] {
            assert_eq!(enhanced_matches(enh, code), ok, "{enh} with {code}");
        }
    }
}
