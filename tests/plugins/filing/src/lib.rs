//! Test fixture: exercises the data and deliver stages.
//!
//! - data: adds `X-Filing: seen` (a header edit applied before queueing);
//!   a Subject containing `[HOLD]` holds the message.
//! - deliver, by Subject: `[SPAM]` files into the `Spam` folder, `[DROP]`
//!   discards, `[FWD user@domain]` redirects there, `[REJECT]` fails the
//!   recipient; an address extension `+lists` files into `Lists`. Every
//!   delivered copy gets `X-Filed-For: <user>` and `X-Filing-Instance`:
//!   whether this instance ran the message's data stage (`after-data`) or
//!   is fresh (`fresh`), and how many deliveries it has made; and
//!   `X-Filing-Configured`: when `configure` ran (capability `clock`), the
//!   same in every copy when it ran once, at load; and `X-Filing-Context`:
//!   what the deliver stage's context says of the client and the envelope.

use postern_plugin_sdk::{Config, Context, Delivery, Filter, Message, Outcome, clock, register};

/// No settings; remembers what this instance has seen.
#[derive(Debug, Default)]
pub struct Filing {
    data_seen: bool,
    deliveries: u32,
    /// When `configure` ran, in ms since the epoch.
    configured_at: u64,
}

impl Filter for Filing {
    fn configure(_config: Config) -> Result<Self, String> {
        Ok(Filing {
            configured_at: clock::now_ms(),
            ..Filing::default()
        })
    }

    fn on_data(&mut self, _cx: &Context, message: &Message) -> Outcome {
        let subject = message.header("Subject").unwrap_or_default();
        if subject.contains("[HOLD]") {
            return Outcome::hold("subject asks for it");
        }
        self.data_seen = true;
        Outcome::cont().add_header("X-Filing", "seen")
    }

    fn on_deliver(&mut self, cx: &Context, delivery: &Delivery, message: &Message) -> Outcome {
        let subject = message.header("Subject").unwrap_or_default().to_owned();
        if subject.contains("[DROP]") {
            return Outcome::discard();
        }
        if subject.contains("[REJECT]") {
            return Outcome::reject(550, "5.7.1", "refused by filing rules");
        }
        if let Some(rest) = subject.split("[FWD ").nth(1)
            && let Some(to) = rest.split(']').next()
            && !to.starts_with(&format!("{}@", delivery.user))
        {
            return Outcome::cont().redirect(to);
        }
        self.deliveries += 1;
        let instance = format!(
            "{} {}",
            if self.data_seen {
                "after-data"
            } else {
                "fresh"
            },
            self.deliveries
        );
        let out = Outcome::cont()
            .add_header("X-Filed-For", delivery.user.clone())
            .add_header("X-Filing-Instance", instance)
            .add_header("X-Filing-Configured", self.configured_at.to_string())
            .add_header("X-Filing-Context", describe(cx));
        if subject.contains("[SPAM]") {
            return out.set_folder("Spam");
        }
        if delivery.extension.as_deref() == Some("lists") {
            return out.set_folder("Lists");
        }
        out
    }
}

register!(Filing);

/// `from [ip] helo=<name> sender=<address> recipients=N`.
fn describe(cx: &Context) -> String {
    let (client, envelope) = (cx.client(), cx.envelope());
    format!(
        "from [{}] helo=<{}> sender=<{}> recipients={}",
        client.ip,
        client.helo.as_deref().unwrap_or_default(),
        envelope.sender,
        envelope.recipients.len()
    )
}

#[cfg(test)]
mod tests {
    use postern_plugin_sdk::{Edit, mock};

    use super::*;

    #[test]
    fn files_by_subject_and_extension() {
        let mut f: Filing = mock::configure("{}").unwrap();
        let env = mock::envelope("a@example.org", &["u@localhost"]);
        let spam = Message::from_bytes("Subject: [SPAM] buy\r\n\r\nx\r\n");
        let o = f.on_deliver(
            &mock::deliver_context(&env, &[]),
            &mock::delivery("u@localhost"),
            &spam,
        );
        assert!(o.edits.contains(&Edit::SetFolder("Spam".into())), "{o:?}");
        let drop = Message::from_bytes("Subject: [DROP]\r\n\r\nx\r\n");
        assert!(
            !f.on_deliver(
                &mock::deliver_context(&env, &[]),
                &mock::delivery("u@localhost"),
                &drop
            )
            .is_continue()
        );
    }
}
