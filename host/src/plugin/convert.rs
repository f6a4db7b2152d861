//! Host types ⇄ generated WIT types, and the checks on what plugins return.

use super::bindings::postern::mta::types as wit;
use super::types::{
    ClientInfo, DeliveryInfo, Edit, EnvelopeInfo, HeaderEdit, Outcome, PluginError, Verdict,
};
use crate::smtp::proto::{Enhanced, Reply};

pub fn client(c: &ClientInfo) -> wit::Client {
    wit::Client {
        ip: c.ip.map(|ip| ip.to_string()).unwrap_or_default(),
        port: c.port,
        helo: c.helo.clone(),
        esmtp: c.esmtp,
        tls: c.tls,
        auth_user: c.auth_user.clone(),
        in_mynetworks: c.in_mynetworks,
        improper_pipelining: c.improper_pipelining,
    }
}

pub fn envelope(e: &EnvelopeInfo) -> wit::Envelope {
    wit::Envelope {
        sender: e.sender.clone(),
        recipients: e.recipients.clone(),
    }
}

pub fn delivery(d: &DeliveryInfo) -> wit::Delivery {
    wit::Delivery {
        recipient: d.recipient.clone(),
        user: d.user.clone(),
        extension: d.extension.clone(),
        size: d.size,
    }
}

/// Checks a reply's class and turns it into a [`Reply`]. The enhanced code's
/// class follows the reply code's (as Postfix adjusts access-table replies).
fn reply(r: wit::Reply, classes: &[u16], what: &str) -> Result<Reply, PluginError> {
    let class = r.code / 100;
    if !(200..600).contains(&r.code) || !classes.contains(&class) {
        return Err(PluginError::BadVerdict(format!(
            "{what} with reply code {}",
            r.code
        )));
    }
    let enhanced = if r.enhanced.is_empty() {
        None
    } else {
        let mut parts = r.enhanced.split('.').map(str::parse::<u16>);
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(Ok(_)), Some(Ok(s)), Some(Ok(d)), None) if s < 1000 && d < 1000 => {
                Some(Enhanced(u8::try_from(class).unwrap_or(5), s, d))
            }
            _ => {
                return Err(PluginError::BadVerdict(format!(
                    "{what} with enhanced code \"{}\"",
                    r.enhanced
                )));
            }
        }
    };
    // One line only: a plugin's text never becomes extra reply lines.
    let text: String = r
        .text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(500)
        .collect();
    Ok(Reply {
        code: r.code,
        enhanced,
        text: text.into(),
    })
}

pub fn outcome(o: wit::Outcome) -> Result<Outcome, PluginError> {
    let verdict = match o.verdict {
        wit::Verdict::Continue => Verdict::Continue,
        wit::Verdict::Accept => Verdict::Accept,
        wit::Verdict::Reject(r) => Verdict::Reject(reply(r, &[5], "reject")?),
        wit::Verdict::Defer(r) => Verdict::Defer(reply(r, &[4], "defer")?),
        wit::Verdict::Discard => Verdict::Discard,
        wit::Verdict::Hold(why) => {
            Verdict::Hold(why.chars().filter(|c| !c.is_control()).take(200).collect())
        }
        wit::Verdict::Disconnect(r) => Verdict::Disconnect(reply(r, &[4, 5], "disconnect")?),
    };
    let edits = o
        .edits
        .into_iter()
        .map(|e| match e {
            wit::Edit::AddHeader(h) => Edit::Header(HeaderEdit::Add(h.name, h.value)),
            wit::Edit::PrependHeader(h) => Edit::Header(HeaderEdit::Prepend(h.name, h.value)),
            wit::Edit::ReplaceHeader(h) => Edit::Header(HeaderEdit::Replace(h.name, h.value)),
            wit::Edit::RemoveHeader(n) => Edit::Header(HeaderEdit::Remove(n)),
            wit::Edit::ChangeSender(s) => Edit::ChangeSender(s),
            wit::Edit::AddRecipient(r) => Edit::AddRecipient(r),
            wit::Edit::RemoveRecipient(r) => Edit::RemoveRecipient(r),
            wit::Edit::SetFolder(f) => Edit::SetFolder(f),
            wit::Edit::Redirect(a) => Edit::Redirect(a),
        })
        .collect();
    Ok(Outcome { verdict, edits })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(code: u16, enhanced: &str) -> wit::Reply {
        wit::Reply {
            code,
            enhanced: enhanced.into(),
            text: "no\r\n250 smuggled".into(),
        }
    }

    #[test]
    fn a_client_without_an_address_reads_as_empty() {
        let queued = ClientInfo {
            helo: Some("mx.example.org".into()),
            ..ClientInfo::default()
        };
        let c = client(&queued);
        assert_eq!(
            (c.ip.as_str(), c.helo.as_deref()),
            ("", Some("mx.example.org"))
        );
        let smtp = ClientInfo {
            ip: Some("2001:db8::7".parse().expect("ip")),
            ..queued
        };
        assert_eq!(client(&smtp).ip, "2001:db8::7");
    }

    #[test]
    fn classes_are_checked() {
        let ok = outcome(wit::Outcome {
            verdict: wit::Verdict::Reject(r(554, "4.7.1")),
            edits: vec![],
        })
        .expect("valid");
        let Verdict::Reject(reply) = ok.verdict else {
            unreachable!()
        };
        assert_eq!(
            reply.enhanced,
            Some(Enhanced(5, 7, 1)),
            "class follows the code"
        );
        assert_eq!(reply.text, "no  250 smuggled");
        for bad in [
            wit::Verdict::Reject(r(250, "2.0.0")),
            wit::Verdict::Reject(r(451, "")),
            wit::Verdict::Defer(r(554, "")),
            wit::Verdict::Disconnect(r(221, "")),
            wit::Verdict::Reject(r(554, "5.7")),
            wit::Verdict::Reject(r(999, "")),
        ] {
            assert!(
                outcome(wit::Outcome {
                    verdict: bad.clone(),
                    edits: vec![]
                })
                .is_err(),
                "{bad:?}"
            );
        }
    }
}
