//! The glue between a [`Filter`] and the WIT exports.
//!
//! In: the host's calls (`configure` with JSON, then hooks with owned WIT
//! values). Out: the filter's [`Outcome`]s. The filter built by `configure`
//! is kept in the [`FilterSlot`] `register!` declares in the plugin's crate
//! (statics cannot be generic).
//!
//! Must not: call any capability import, since every import reached from here
//! would be imported by every plugin, granted or not.

use core::cell::RefCell;

use crate::bindings::exports::postern::mta::{
    delivery_filter, lifecycle, message_filter, session_filter,
};
use crate::bindings::postern::mta::context::Context as HostContext;
use crate::bindings::postern::mta::message::Message as HostMessage;
use crate::prelude::*;
use crate::{Config, Context, Delivery, Filter, Message, Outcome};

/// A registered plugin: the filter type and where its instance lives.
///
/// Implemented by `register!`; the WIT `Guest` traits are implemented for
/// every `Plugin` below.
pub trait Plugin: 'static {
    /// The plugin's filter.
    type Filter: Filter;

    /// Runs `f` on the instance-global slot holding the configured filter.
    fn with_slot<R>(f: impl FnOnce(&mut Option<Self::Filter>) -> R) -> R;
}

/// Where `register!` keeps the configured filter: one per component
/// instance, in a `static` on wasm32 (an instance runs one thread) and in a
/// `thread_local` natively (tests run on many threads).
pub struct FilterSlot<F>(RefCell<Option<F>>);

// SAFETY: only wasm32 components share a slot through a `static`, and a
// component instance without the threads proposal has exactly one thread.
#[cfg(all(target_arch = "wasm32", not(target_feature = "atomics")))]
#[allow(unsafe_code)]
unsafe impl<F> Sync for FilterSlot<F> {}

impl<F> FilterSlot<F> {
    /// An empty slot.
    #[must_use]
    pub const fn new() -> Self {
        FilterSlot(RefCell::new(None))
    }

    /// Runs `f` on the slot. A hook cannot re-enter another hook, so the
    /// slot is never borrowed twice.
    pub fn with<R>(&self, f: impl FnOnce(&mut Option<F>) -> R) -> R {
        f(&mut self.0.borrow_mut())
    }
}

impl<F> Default for FilterSlot<F> {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs `hook` on the configured filter; continues if there is none yet.
fn with_filter<P: Plugin>(hook: impl FnOnce(&mut P::Filter) -> Outcome) -> Outcome {
    P::with_slot(|slot| match slot {
        Some(filter) => hook(filter),
        None => Outcome::cont(),
    })
}

impl<P: Plugin> lifecycle::Guest for P {
    fn configure(config: String) -> Result<(), String> {
        // A failed configure leaves no filter behind: hooks then continue.
        P::with_slot(|slot| *slot = None);
        let filter = Config::from_json(&config).and_then(P::Filter::configure)?;
        P::with_slot(|slot| *slot = Some(filter));
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
        static PROBE: FilterSlot<Probe> = const { FilterSlot::new() };
    }
    impl Plugin for ProbePlugin {
        type Filter = Probe;
        fn with_slot<R>(f: impl FnOnce(&mut Option<Probe>) -> R) -> R {
            PROBE.with(|slot| slot.with(f))
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
