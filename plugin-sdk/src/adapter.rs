//! The glue between a [`Filter`] and the WIT exports.
//!
//! In: the host's calls (`configure` with JSON, then hooks with owned WIT
//! values). Out: the filter's [`Outcome`]s. The filter built by `configure`
//! is kept in the slot `register!` declares in the plugin's crate (a
//! `thread_local`: one instance is one thread, and statics cannot be generic).
//!
//! Must not: call any capability import, since every import reached from here
//! would be imported by every plugin, granted or not.

use std::cell::RefCell;
use std::thread::LocalKey;

use crate::bindings::exports::postern::mta::{
    delivery_filter, lifecycle, message_filter, session_filter,
};
use crate::bindings::postern::mta::context::Context as HostContext;
use crate::bindings::postern::mta::message::Message as HostMessage;
use crate::{Config, Context, Delivery, Filter, Message, Outcome};

/// A registered plugin: the filter type and where its instance lives.
///
/// Implemented by `register!`; the WIT `Guest` traits are implemented for
/// every `Plugin` below.
pub trait Plugin: 'static {
    /// The plugin's filter.
    type Filter: Filter;

    /// The instance-global slot holding the configured filter.
    fn instance() -> &'static LocalKey<RefCell<Option<Self::Filter>>>;
}

/// Runs `hook` on the configured filter; continues if there is none yet.
fn with_filter<P: Plugin>(hook: impl FnOnce(&mut P::Filter) -> Outcome) -> Outcome {
    P::instance().with_borrow_mut(|slot| match slot {
        Some(filter) => hook(filter),
        None => Outcome::cont(),
    })
}

impl<P: Plugin> lifecycle::Guest for P {
    fn configure(config: String) -> Result<(), String> {
        // A failed configure leaves no filter behind: hooks then continue.
        P::instance().set(None);
        let filter = Config::from_json(&config).and_then(P::Filter::configure)?;
        P::instance().set(Some(filter));
        Ok(())
    }
}

impl<P: Plugin> session_filter::Guest for P {
    fn on_connect(context: &HostContext) -> Outcome {
        let cx = Context::from_host(context);
        with_filter::<P>(|f| f.on_connect(&cx))
    }

    fn on_helo(context: &HostContext, helo: String) -> Outcome {
        let cx = Context::from_host(context);
        with_filter::<P>(|f| f.on_helo(&cx, &helo))
    }

    fn on_mail(context: &HostContext, sender: String) -> Outcome {
        let cx = Context::from_host(context);
        with_filter::<P>(|f| f.on_mail(&cx, &sender))
    }

    fn on_rcpt(context: &HostContext, recipient: String) -> Outcome {
        let cx = Context::from_host(context);
        with_filter::<P>(|f| f.on_rcpt(&cx, &recipient))
    }
}

impl<P: Plugin> message_filter::Guest for P {
    fn on_data(context: &HostContext, message: &HostMessage) -> Outcome {
        let cx = Context::from_host(context);
        let message = Message::from_host(message);
        with_filter::<P>(|f| f.on_data(&cx, &message))
    }
}

impl<P: Plugin> delivery_filter::Guest for P {
    fn on_deliver(context: &HostContext, delivery: Delivery, message: &HostMessage) -> Outcome {
        let cx = Context::from_host(context);
        let message = Message::from_host(message);
        with_filter::<P>(|f| f.on_deliver(&cx, &delivery, &message))
    }
}

#[cfg(test)]
mod tests {
    //! The adapter driven as the host drives it, against the mock host (the
    //! hooks' entry points take host handles, so the tests enter one layer
    //! below them, where those handles have become a [`Context`]).

    use super::*;
    use crate::{Verdict, dns, mock};

    /// Remembers the sender across hooks and rejects listed recipients.
    struct Probe {
        blocked: Vec<String>,
        sender: Option<String>,
    }

    impl Filter for Probe {
        fn configure(config: Config) -> Result<Self, String> {
            Ok(Probe {
                blocked: config.strings("blocked")?,
                sender: None,
            })
        }

        fn on_mail(&mut self, _cx: &Context, sender: &str) -> Outcome {
            self.sender = Some(sender.to_owned());
            Outcome::cont()
        }

        fn on_rcpt(&mut self, cx: &Context, rcpt: &str) -> Outcome {
            if self.blocked.iter().any(|b| b == rcpt) {
                let from = self.sender.as_deref().unwrap_or("?");
                return Verdict::reject(550, "5.7.1", format!("{rcpt} refuses mail from {from}"))
                    .into();
            }
            if cx.args().first().is_some_and(|a| a == "lookup") {
                let listed = dns::lookup_a(rcpt).is_ok();
                return Outcome::cont().add_header("X-Listed", if listed { "yes" } else { "no" });
            }
            Outcome::cont()
        }
    }

    struct ProbePlugin;
    std::thread_local! {
        static PROBE: RefCell<Option<Probe>> = const { RefCell::new(None) };
    }
    impl Plugin for ProbePlugin {
        type Filter = Probe;
        fn instance() -> &'static LocalKey<RefCell<Option<Probe>>> {
            &PROBE
        }
    }

    fn configure(json: &str) -> Result<(), String> {
        <ProbePlugin as lifecycle::Guest>::configure(json.to_owned())
    }

    fn cx(args: &[&str]) -> Context<'static> {
        Context::new(mock::client("192.0.2.7"))
            .with_envelope(mock::envelope("a@example.org", &[]))
            .with_args(args.iter().copied())
    }

    fn rcpt(to: &str, args: &[&str]) -> Outcome {
        with_filter::<ProbePlugin>(|f| f.on_rcpt(&cx(args), to))
    }

    #[test]
    fn hooks_before_configure_continue() {
        assert_eq!(rcpt("x@example.org", &[]), Outcome::cont());
    }

    #[test]
    fn state_lives_from_hook_to_hook() {
        configure(r#"{"blocked": ["x@example.org"]}"#).unwrap();
        with_filter::<ProbePlugin>(|f| f.on_mail(&cx(&[]), "a@example.org"));
        let out = rcpt("x@example.org", &[]);
        assert_eq!(
            out.verdict,
            Verdict::reject(
                550,
                "5.7.1",
                "x@example.org refuses mail from a@example.org"
            )
        );
        assert!(rcpt("y@example.org", &[]).is_continue());
    }

    #[test]
    fn a_failed_configure_drops_the_previous_filter() {
        configure(r#"{"blocked": ["x@example.org"]}"#).unwrap();
        let err = configure(r#"{"blocked": 7}"#).unwrap_err();
        assert_eq!(err, "setting `blocked` must be a list of strings");
        assert!(
            configure("not json")
                .unwrap_err()
                .starts_with("configuration is not JSON")
        );
        assert!(rcpt("x@example.org", &[]).is_continue());
    }

    #[test]
    fn args_and_capabilities_reach_the_filter() {
        configure(r#"{"blocked": []}"#).unwrap();
        mock::dns_answer("listed.example", Ok(vec!["127.0.0.2"]));
        let out = rcpt("listed.example", &["lookup"]);
        assert_eq!(out, Outcome::cont().add_header("X-Listed", "yes"));
        assert_eq!(mock::dns_queries(), ["A listed.example"]);
    }
}
