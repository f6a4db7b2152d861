//! Test fixture: a postern plugin that misbehaves on demand, so the host's
//! tests can check that a plugin cannot hurt the server.
//!
//! Its table in `postern.toml` chooses what it does:
//!
//! - `mode` (required):
//!   - `"ok"`: continues, like a well-behaved plugin;
//!   - `"loop"`: spins forever (the host's CPU deadline must stop it);
//!   - `"alloc"`: allocates 1 MiB chunks without end, writing to every byte
//!     so the memory is really committed (the memory limit must stop it; the
//!     failed allocation aborts, which traps);
//!   - `"trap"`: panics, which traps;
//!   - `"bad-verdict"`: rejects with reply code 250, which the host must
//!     refuse as a plugin error (at `configure`: returns an error);
//!   - `"dns"`: looks up `name` with `dns::lookup_a`, and rejects with
//!     `554 5.7.1 hostile: NAME has A ADDRS` when there is an answer, else
//!     continues. Calling the import is what makes this component import
//!     the `dns` capability (in every mode: one component has all modes), so
//!     loading it without granting `dns` must fail;
//!   - `"config-error"`: `configure` fails with "hostile: config-error mode";
//!   - `"reject"`: rejects with `554 5.7.1 hostile: rejected` (a
//!     well-formed verdict);
//!   - `"disconnect"`: answers `421 4.7.0 hostile: go away` and ends the
//!     session (a well-formed verdict).
//! - `hooks`: where the mode acts, among `"configure"`, `"connect"`,
//!   `"helo"`, `"mail"`, `"rcpt"`, `"data"`, `"deliver"`. Default: every hook
//!   but `"configure"`. With `"configure"` the mode acts when `configure` runs:
//!   while the host loads the plugin set.
//! - `name`: the name the `"dns"` mode looks up (default `"example.com"`).
//! - `say`: printed to stdout by `configure` when not empty (the host keeps
//!   the stream, so the plugin cannot be frozen after `configure`).
//!
//! It imports no capability but `dns`: no `log`, so that an ungranted-import
//! error can only be about `dns`.

use std::hint::black_box;

use postern_plugin_sdk::{
    Config, Context, Delivery, Filter, Message, Outcome, Reply, Verdict, dns, register,
};

/// How much `"alloc"` mode allocates at a time.
const ALLOC_CHUNK_BYTES: usize = 1 << 20;

/// What the plugin does where it acts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Ok,
    Loop,
    Alloc,
    Trap,
    BadVerdict,
    Dns,
    ConfigError,
    Reject,
    Disconnect,
}

impl Mode {
    fn parse(mode: &str) -> Result<Mode, String> {
        Ok(match mode {
            "ok" => Mode::Ok,
            "loop" => Mode::Loop,
            "alloc" => Mode::Alloc,
            "trap" => Mode::Trap,
            "bad-verdict" => Mode::BadVerdict,
            "dns" => Mode::Dns,
            "config-error" => Mode::ConfigError,
            "reject" => Mode::Reject,
            "disconnect" => Mode::Disconnect,
            other => return Err(format!("setting `mode`: unknown mode {other:?}")),
        })
    }
}

/// Where the plugin can act.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hook {
    Configure,
    Connect,
    Helo,
    Mail,
    Rcpt,
    Data,
    Deliver,
}

impl Hook {
    const ALL: [(&str, Hook); 7] = [
        ("configure", Hook::Configure),
        ("connect", Hook::Connect),
        ("helo", Hook::Helo),
        ("mail", Hook::Mail),
        ("rcpt", Hook::Rcpt),
        ("data", Hook::Data),
        ("deliver", Hook::Deliver),
    ];

    fn parse(name: &str) -> Result<Hook, String> {
        Hook::ALL
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, hook)| *hook)
            .ok_or_else(|| format!("setting `hooks`: unknown hook {name:?}"))
    }
}

/// The configured misbehaviour.
#[derive(Debug)]
pub struct Hostile {
    mode: Mode,
    hooks: Vec<Hook>,
    name: String,
}

impl Filter for Hostile {
    fn configure(config: Config) -> Result<Self, String> {
        let mode = Mode::parse(config.str("mode")?)?;
        let hooks = config
            .strings_or(
                "hooks",
                &["connect", "helo", "mail", "rcpt", "data", "deliver"],
            )?
            .iter()
            .map(|name| Hook::parse(name))
            .collect::<Result<Vec<_>, _>>()?;
        let hostile = Hostile {
            mode,
            hooks,
            name: config.str_or("name", "example.com")?.to_owned(),
        };
        let say = config.str_or("say", "")?;
        if !say.is_empty() {
            println!("{say}");
        }
        match hostile.mode {
            Mode::ConfigError => Err("hostile: config-error mode".to_owned()),
            Mode::BadVerdict if hostile.acts_in(Hook::Configure) => {
                Err("hostile: bad-verdict mode at configure".to_owned())
            }
            _ => {
                if hostile.acts_in(Hook::Configure) {
                    hostile.act();
                }
                Ok(hostile)
            }
        }
    }

    fn on_connect(&mut self, _cx: &Context) -> Outcome {
        self.act_in(Hook::Connect)
    }

    fn on_helo(&mut self, _cx: &Context, _helo: &str) -> Outcome {
        self.act_in(Hook::Helo)
    }

    fn on_mail(&mut self, _cx: &Context, _sender: &str) -> Outcome {
        self.act_in(Hook::Mail)
    }

    fn on_rcpt(&mut self, _cx: &Context, _rcpt: &str) -> Outcome {
        self.act_in(Hook::Rcpt)
    }

    fn on_data(&mut self, _cx: &Context, _msg: &Message<'_>) -> Outcome {
        self.act_in(Hook::Data)
    }

    fn on_deliver(&mut self, _cx: &Context, _dlv: &Delivery, _msg: &Message<'_>) -> Outcome {
        self.act_in(Hook::Deliver)
    }
}

register!(Hostile);

impl Hostile {
    fn acts_in(&self, hook: Hook) -> bool {
        self.hooks.contains(&hook)
    }

    fn act_in(&self, hook: Hook) -> Outcome {
        if !self.acts_in(hook) {
            return Outcome::cont();
        }
        self.act()
    }

    /// Does what the mode says; `loop`, `alloc` and `trap` never return.
    fn act(&self) -> Outcome {
        match self.mode {
            Mode::Ok | Mode::ConfigError => Outcome::cont(),
            Mode::Loop => spin(),
            Mode::Alloc => hoard(),
            Mode::Trap => trap(),
            Mode::BadVerdict => bad_verdict(),
            Mode::Reject => Outcome::reject(554, "5.7.1", "hostile: rejected"),
            Mode::Disconnect => Outcome::disconnect(421, "4.7.0", "hostile: go away"),
            Mode::Dns => match dns::lookup_a(&self.name) {
                Ok(addrs) if !addrs.is_empty() => {
                    let text = format!("hostile: {} has A {}", self.name, addrs.join(","));
                    Outcome::reject(554, "5.7.1", text)
                }
                _ => Outcome::cont(),
            },
        }
    }
}

/// Spins forever. `black_box` makes every turn observable, so the optimizer
/// can neither delete the loop nor prove it does nothing.
fn spin() -> ! {
    let mut turns: u64 = 0;
    loop {
        turns = black_box(turns.wrapping_add(1));
    }
}

/// Allocates and fills memory until the allocator gives up (then Rust aborts,
/// which traps). The fill makes every page dirty, and `black_box` keeps the
/// chunks alive so the allocations cannot be elided.
fn hoard() -> ! {
    let mut hoard: Vec<Vec<u8>> = Vec::new();
    loop {
        let chunk = vec![0xa5u8; ALLOC_CHUNK_BYTES];
        hoard.push(black_box(chunk));
        black_box(&mut hoard);
    }
}

/// Traps by panicking.
// reason: panicking is this mode's whole purpose.
#[allow(clippy::panic)]
fn trap() -> ! {
    panic!("hostile plugin: trap mode");
}

/// A reject with a success code: built by hand, since the SDK's constructors
/// refuse it.
fn bad_verdict() -> Outcome {
    Verdict::Reject(Reply {
        code: 250,
        enhanced: "2.0.0".to_owned(),
        text: "hostile: reject with a 2xx code".to_owned(),
    })
    .into()
}

#[cfg(test)]
mod tests {
    //! Only the modes that return can run natively.

    use postern_plugin_sdk::mock;

    use super::*;

    #[test]
    fn configuration() {
        let h: Hostile = mock::configure(r#"{"mode": "ok"}"#).unwrap();
        assert_eq!(h.hooks.len(), 6);
        assert!(!h.acts_in(Hook::Configure));
        let h: Hostile = mock::configure(r#"{"mode": "loop", "hooks": ["rcpt"]}"#).unwrap();
        assert_eq!(
            (h.mode, h.hooks.as_slice()),
            (Mode::Loop, &[Hook::Rcpt][..])
        );
        for (json, err) in [
            ("{}", "missing setting `mode`"),
            (
                r#"{"mode": "nice"}"#,
                "setting `mode`: unknown mode \"nice\"",
            ),
            (
                r#"{"mode": "ok", "hooks": ["connect", "quit"]}"#,
                "setting `hooks`: unknown hook \"quit\"",
            ),
            (r#"{"mode": "config-error"}"#, "hostile: config-error mode"),
            (
                r#"{"mode": "bad-verdict", "hooks": ["configure"]}"#,
                "hostile: bad-verdict mode at configure",
            ),
        ] {
            assert_eq!(mock::configure::<Hostile>(json).unwrap_err(), err, "{json}");
        }
        assert!(mock::configure::<Hostile>(r#"{"mode": "ok", "hooks": ["configure"]}"#).is_ok());
    }

    #[test]
    fn bad_verdict_rejects_with_250_where_configured() {
        let mut h: Hostile =
            mock::configure(r#"{"mode": "bad-verdict", "hooks": ["rcpt"]}"#).unwrap();
        let client = mock::client("192.0.2.7");
        assert!(
            h.on_connect(&mock::context(&client, None, &[]))
                .is_continue()
        );
        let out = h.on_rcpt(
            &mock::context(&client, Some(&mock::envelope("", &[])), &[]),
            "a@example.org",
        );
        assert!(matches!(
            out.verdict,
            Verdict::Reject(Reply { code: 250, .. })
        ));
    }

    #[test]
    fn dns_mode_looks_up_the_name() {
        let client = mock::client("192.0.2.7");
        let mut h: Hostile = mock::configure(r#"{"mode": "dns", "name": "probe.test"}"#).unwrap();
        assert!(
            h.on_connect(&mock::context(&client, None, &[]))
                .is_continue()
        );
        mock::dns_answer("probe.test", Ok(vec!["192.0.2.1"]));
        assert_eq!(
            h.on_connect(&mock::context(&client, None, &[])),
            Outcome::reject(554, "5.7.1", "hostile: probe.test has A 192.0.2.1")
        );
        assert_eq!(mock::dns_queries(), ["A probe.test", "A probe.test"]);
    }

    #[test]
    fn ok_mode_continues_everywhere() {
        let mut h: Hostile = mock::configure(r#"{"mode": "ok"}"#).unwrap();
        let client = mock::client("192.0.2.7");
        let env = mock::envelope("", &[]);
        let msg = Message::from_bytes("\r\n");
        assert!(
            h.on_helo(&mock::context(&client, None, &[]), "x")
                .is_continue()
        );
        assert!(
            h.on_mail(&mock::context(&client, None, &[]), "")
                .is_continue()
        );
        assert!(
            h.on_data(&mock::context(&client, Some(&env), &[]), &msg)
                .is_continue()
        );
        assert!(
            h.on_deliver(
                &mock::deliver_context(&env, &[]),
                &mock::delivery("a@x.test"),
                &msg
            )
            .is_continue()
        );
    }
}
