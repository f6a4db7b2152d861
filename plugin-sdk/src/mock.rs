//! The mock host: what the capabilities talk to on native targets, so that a
//! plugin's logic is unit-tested with plain `cargo test`, without Wasm.
//!
//! In: canned DNS answers, the clock, and test values ([`client`],
//! [`envelope`], [`delivery`], and the hook [`context`]s made of them).
//! Out: what the plugin did: [`dns_queries`], [`logs`], and the key-value
//! store as [`crate::kv`] sees it.
//!
//! The state is per thread, and the test harness runs every test on its own
//! thread, so tests do not see each other's answers; [`reset`] starts over
//! within a test. A name without a canned answer does not exist
//! ([`DnsError::NotFound`]), as an unlisted address does in a DNSBL.
//!
//! ```
//! use postern_plugin_sdk::{clock, dns, kv, log, mock};
//! use postern_plugin_sdk::dns::DnsError;
//!
//! mock::dns_answer("2.0.0.127.zen.test", Ok(vec!["127.0.0.2"]));
//! mock::dns_answer_txt("2.0.0.127.zen.test", Ok(vec!["listed; see https://zen.test/"]));
//! mock::dns_answer("broken.test", Err(DnsError::Temporary("SERVFAIL".into())));
//! assert_eq!(dns::lookup_a("2.0.0.127.ZEN.test."), Ok(vec!["127.0.0.2".to_owned()]));
//! assert_eq!(dns::lookup_a("3.0.0.127.zen.test"), Err(DnsError::NotFound));
//!
//! kv::set("greylist", b"seen", Some(60));
//! mock::advance_ms(61_000);
//! assert_eq!(kv::get("greylist"), None);
//!
//! log::warn("hello");
//! assert_eq!(mock::logs(), [(log::Level::Warn, "hello".to_owned())]);
//! assert_eq!(clock::now_ms(), mock::START_MS + 61_000);
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::IpAddr;

use crate::dns::DnsError;
use crate::log::Level;
use crate::{Client, Config, Context, Delivery, Envelope, Filter};

/// Where the mock clock starts: 2026-01-01T00:00:00Z, in milliseconds.
pub const START_MS: u64 = 1_767_225_600_000;

/// DNS record types the mock answers for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Rr {
    A,
    Aaaa,
    Txt,
    Ptr,
}

impl Rr {
    fn name(self) -> &'static str {
        match self {
            Rr::A => "A",
            Rr::Aaaa => "AAAA",
            Rr::Txt => "TXT",
            Rr::Ptr => "PTR",
        }
    }
}

/// A stored value and when it expires (mock-clock milliseconds).
struct Stored {
    value: Vec<u8>,
    expires_ms: Option<u64>,
}

struct MockHost {
    answers: HashMap<(Rr, String), Result<Vec<String>, DnsError>>,
    mx: HashMap<String, Result<Vec<(u16, String)>, DnsError>>,
    queries: Vec<String>,
    logs: Vec<(Level, String)>,
    kv: HashMap<String, Stored>,
    home: HashMap<String, String>,
    now_ms: u64,
}

impl MockHost {
    fn new() -> MockHost {
        MockHost {
            answers: HashMap::new(),
            mx: HashMap::new(),
            queries: Vec::new(),
            logs: Vec::new(),
            kv: HashMap::new(),
            home: HashMap::new(),
            now_ms: START_MS,
        }
    }
}

std::thread_local! {
    static HOST: RefCell<MockHost> = RefCell::new(MockHost::new());
}

fn with_host<R>(f: impl FnOnce(&mut MockHost) -> R) -> R {
    HOST.with_borrow_mut(f)
}

/// DNS names compare case-insensitively, with or without the root dot.
fn dns_key(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

/// IP addresses compare by value (`2001:DB8::1` is `2001:db8::1`).
fn ip_key(ip: &str) -> String {
    ip.trim()
        .parse::<IpAddr>()
        .map_or_else(|_| ip.trim().to_owned(), |ip| ip.to_string())
}

fn owned(answer: Result<Vec<&str>, DnsError>) -> Result<Vec<String>, DnsError> {
    answer.map(|records| records.into_iter().map(str::to_owned).collect())
}

/// Forgets every answer, query, log line and stored value, and sets the
/// clock back to [`START_MS`].
pub fn reset() {
    with_host(|host| *host = MockHost::new());
}

/// Sets the answer to A lookups of `name`:
/// `mock::dns_answer("7.2.0.192.zen.test", Ok(vec!["127.0.0.2"]))`.
pub fn dns_answer(name: &str, answer: Result<Vec<&str>, DnsError>) {
    with_host(|host| host.answers.insert((Rr::A, dns_key(name)), owned(answer)));
}

/// Sets the answer to AAAA lookups of `name`.
pub fn dns_answer_aaaa(name: &str, answer: Result<Vec<&str>, DnsError>) {
    with_host(|host| {
        host.answers
            .insert((Rr::Aaaa, dns_key(name)), owned(answer))
    });
}

/// Sets the answer to TXT lookups of `name` (each record's strings joined).
pub fn dns_answer_txt(name: &str, answer: Result<Vec<&str>, DnsError>) {
    with_host(|host| host.answers.insert((Rr::Txt, dns_key(name)), owned(answer)));
}

/// Sets the answer to MX lookups of `name`: preference and exchange.
pub fn dns_answer_mx(name: &str, answer: Result<Vec<(u16, &str)>, DnsError>) {
    let answer = answer.map(|mx| mx.into_iter().map(|(p, e)| (p, e.to_owned())).collect());
    with_host(|host| host.mx.insert(dns_key(name), answer));
}

/// Sets the answer to PTR lookups of the IP address `ip`.
pub fn dns_answer_ptr(ip: &str, answer: Result<Vec<&str>, DnsError>) {
    with_host(|host| host.answers.insert((Rr::Ptr, ip_key(ip)), owned(answer)));
}

/// The lookups made so far, in order, as `"A 7.2.0.192.zen.test"`,
/// `"TXT ..."`, `"MX ..."`, `"PTR 192.0.2.7"` (names as the plugin asked).
pub fn dns_queries() -> Vec<String> {
    with_host(|host| host.queries.clone())
}

/// The log lines written so far, in order.
pub fn logs() -> Vec<(Level, String)> {
    with_host(|host| host.logs.clone())
}

/// Sets the mock clock.
pub fn set_now_ms(now_ms: u64) {
    with_host(|host| host.now_ms = now_ms);
}

/// Moves the mock clock forward.
pub fn advance_ms(ms: u64) {
    with_host(|host| host.now_ms = host.now_ms.saturating_add(ms));
}

/// Puts the file `name` in the current recipient's mail home, as
/// [`crate::home::read_file`] finds it; `None` removes it.
pub fn home_file(name: &str, content: Option<&str>) {
    with_host(|host| match content {
        Some(text) => host.home.insert(name.to_owned(), text.to_owned()),
        None => host.home.remove(name),
    });
}

/// Builds a filter from its configuration as JSON, as the host does:
/// `let rbl: Rbl = mock::configure(r#"{"zones": ["zen.test"]}"#)?;`.
pub fn configure<F: Filter>(json: &str) -> Result<F, String> {
    Config::from_json(json).and_then(F::configure)
}

/// A client connected from `ip`: port 49152, EHLO not yet given, no TLS, no
/// AUTH, not in `mynetworks`. Change fields with struct update syntax:
/// `Client { tls: true, ..mock::client("192.0.2.7") }`. A hook gets it in a
/// [`Context`]: `Context::new(mock::client("192.0.2.7"))`.
pub fn client(ip: &str) -> Client {
    Client {
        ip: ip.to_owned(),
        port: 49152,
        helo: None,
        esmtp: true,
        tls: false,
        auth_user: None,
        in_mynetworks: false,
        improper_pipelining: false,
    }
}

/// An envelope from `sender` (`""` for `<>`) with `recipients` accepted.
pub fn envelope(sender: &str, recipients: &[&str]) -> Envelope {
    Envelope {
        sender: sender.to_owned(),
        recipients: recipients.iter().map(|r| (*r).to_owned()).collect(),
    }
}

/// The context of a hook call from `client`, with `envelope` (none: empty,
/// as before MAIL FROM) and the chain step's `args`:
/// `rbl.on_rcpt(&mock::context(&client, Some(&envelope), &[]), "b@example.org")`.
pub fn context(client: &Client, envelope: Option<&Envelope>, args: &[String]) -> Context<'static> {
    let cx = Context::new(client.clone()).with_args(args);
    match envelope {
        Some(envelope) => cx.with_envelope(envelope.clone()),
        None => cx,
    }
}

/// The context of a deliver-stage call: the envelope as queued and the
/// chain step's `args`; the client as a queue file records it (the address
/// 192.0.2.7, no HELO name).
pub fn deliver_context(envelope: &Envelope, args: &[String]) -> Context<'static> {
    let queued = Client {
        esmtp: false,
        port: 0,
        ..client("192.0.2.7")
    };
    context(&queued, Some(envelope), args)
}

/// A local delivery to `recipient`: the user is the local part up to the
/// first `+` (the extension is the rest), the size 0.
pub fn delivery(recipient: &str) -> Delivery {
    let (local, _) = crate::split_address(recipient);
    let (user, extension) = match local.split_once('+') {
        Some((user, ext)) => (user, Some(ext.to_owned())),
        None => (local, None),
    };
    Delivery {
        recipient: recipient.to_owned(),
        user: user.to_owned(),
        extension,
        size: 0,
    }
}

/// The native side of [`crate::dns`].
pub(crate) mod dns_host {
    use super::*;

    fn lookup(rr: Rr, name: &str, key: String) -> Result<Vec<String>, DnsError> {
        with_host(|host| {
            host.queries.push(format!("{} {name}", rr.name()));
            host.answers
                .get(&(rr, key))
                .cloned()
                .unwrap_or(Err(DnsError::NotFound))
        })
    }

    pub(crate) fn lookup_a(name: &str) -> Result<Vec<String>, DnsError> {
        lookup(Rr::A, name, dns_key(name))
    }

    pub(crate) fn lookup_aaaa(name: &str) -> Result<Vec<String>, DnsError> {
        lookup(Rr::Aaaa, name, dns_key(name))
    }

    pub(crate) fn lookup_txt(name: &str) -> Result<Vec<String>, DnsError> {
        lookup(Rr::Txt, name, dns_key(name))
    }

    pub(crate) fn lookup_ptr(ip: &str) -> Result<Vec<String>, DnsError> {
        lookup(Rr::Ptr, ip, ip_key(ip))
    }

    pub(crate) fn lookup_mx(name: &str) -> Result<Vec<(u16, String)>, DnsError> {
        with_host(|host| {
            host.queries.push(format!("MX {name}"));
            host.mx
                .get(&dns_key(name))
                .cloned()
                .unwrap_or(Err(DnsError::NotFound))
        })
    }
}

/// The native side of [`crate::log`].
pub(crate) mod log_host {
    use super::*;

    pub(crate) fn write(level: Level, message: &str) {
        let name = match level {
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warning",
            Level::Error => "error",
        };
        // Shown by the test harness when a test fails.
        eprintln!("plugin {name}: {message}");
        with_host(|host| host.logs.push((level, message.to_owned())));
    }
}

/// The native side of [`crate::kv`].
pub(crate) mod kv_host {
    use super::*;

    pub(crate) fn get(key: &str) -> Option<Vec<u8>> {
        with_host(|host| {
            let now = host.now_ms;
            if host.kv.get(key)?.expires_ms.is_some_and(|at| now >= at) {
                host.kv.remove(key);
                return None;
            }
            host.kv.get(key).map(|stored| stored.value.clone())
        })
    }

    pub(crate) fn set(key: &str, value: &[u8], ttl_secs: Option<u64>) {
        with_host(|host| {
            let expires_ms =
                ttl_secs.map(|secs| host.now_ms.saturating_add(secs.saturating_mul(1000)));
            host.kv.insert(
                key.to_owned(),
                Stored {
                    value: value.to_vec(),
                    expires_ms,
                },
            );
        });
    }

    pub(crate) fn delete(key: &str) {
        with_host(|host| host.kv.remove(key));
    }
}

/// The native side of [`crate::clock`].
pub(crate) mod clock_host {
    use super::*;

    pub(crate) fn now_ms() -> u64 {
        with_host(|host| host.now_ms)
    }
}

/// The native side of [`crate::home`].
pub(crate) mod home_host {
    use super::*;

    pub(crate) fn read_file(name: &str) -> Option<String> {
        with_host(|host| host.home.get(name).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{clock, dns, kv, log};

    #[test]
    fn dns_answers_by_type_and_normalised_name() {
        dns_answer("x.test", Ok(vec!["192.0.2.1", "192.0.2.2"]));
        dns_answer_aaaa("x.test", Ok(vec!["2001:db8::1"]));
        dns_answer_txt("X.Test.", Ok(vec!["v=spf1 -all"]));
        dns_answer_mx("x.test", Ok(vec![(10, "mx1.x.test"), (20, "mx2.x.test")]));
        dns_answer_ptr("2001:DB8::1", Ok(vec!["host.x.test"]));
        dns_answer("down.test", Err(DnsError::Temporary("timeout".into())));

        assert_eq!(dns::lookup_a("x.test").unwrap(), ["192.0.2.1", "192.0.2.2"]);
        assert_eq!(dns::lookup_aaaa("x.test").unwrap(), ["2001:db8::1"]);
        assert_eq!(dns::lookup_txt("x.test").unwrap(), ["v=spf1 -all"]);
        assert_eq!(
            dns::lookup_mx("x.test").unwrap(),
            [(10, "mx1.x.test".to_owned()), (20, "mx2.x.test".to_owned())]
        );
        assert_eq!(dns::lookup_ptr("2001:db8:0::1").unwrap(), ["host.x.test"]);
        assert_eq!(
            dns::lookup_a("down.test"),
            Err(DnsError::Temporary("timeout".into()))
        );
        assert_eq!(dns::lookup_txt("y.test"), Err(DnsError::NotFound));
        assert_eq!(dns::lookup_mx("y.test"), Err(DnsError::NotFound));
        assert_eq!(dns::lookup_ptr("192.0.2.9"), Err(DnsError::NotFound));
        assert_eq!(
            dns_queries(),
            [
                "A x.test",
                "AAAA x.test",
                "TXT x.test",
                "MX x.test",
                "PTR 2001:db8:0::1",
                "A down.test",
                "TXT y.test",
                "MX y.test",
                "PTR 192.0.2.9"
            ]
        );
    }

    #[test]
    fn kv_honours_ttls_against_the_mock_clock() {
        kv::set("forever", "1", None);
        kv::set("minute", b"2", Some(60));
        kv::set("now", [3u8], Some(0));
        assert_eq!(kv::get("now"), None);
        advance_ms(59_999);
        assert_eq!(kv::get("minute").as_deref(), Some(&b"2"[..]));
        advance_ms(1);
        assert_eq!(kv::get("minute"), None);
        kv::set("minute", b"again", Some(60));
        assert_eq!(kv::get("minute").as_deref(), Some(&b"again"[..]));
        assert_eq!(kv::get("forever").as_deref(), Some(&b"1"[..]));
        kv::delete("forever");
        assert_eq!(kv::get("forever"), None);
        assert_eq!(kv::get("never"), None);
    }

    #[test]
    fn clock_logs_and_reset() {
        assert_eq!(clock::now_ms(), START_MS);
        set_now_ms(5);
        advance_ms(10);
        assert_eq!(clock::now_ms(), 15);
        log::debug("d");
        log::info(String::from("i"));
        log::warn("w");
        log::error(format!("e{}", 1));
        assert_eq!(
            logs(),
            [
                (Level::Debug, "d".to_owned()),
                (Level::Info, "i".to_owned()),
                (Level::Warn, "w".to_owned()),
                (Level::Error, "e1".to_owned())
            ]
        );
        dns_answer("x.test", Ok(vec!["192.0.2.1"]));
        kv::set("k", "v", None);
        let _ = dns::lookup_a("x.test");
        reset();
        assert_eq!(clock::now_ms(), START_MS);
        assert!(logs().is_empty() && dns_queries().is_empty());
        assert_eq!(kv::get("k"), None);
        assert_eq!(dns::lookup_a("x.test"), Err(DnsError::NotFound));
    }

    #[test]
    fn test_values() {
        let c = Client {
            tls: true,
            ..client("192.0.2.7")
        };
        assert_eq!((c.ip.as_str(), c.tls, c.helo), ("192.0.2.7", true, None));
        let e = envelope("", &["a@x.test", "b@x.test"]);
        assert_eq!((e.sender.as_str(), e.recipients.len()), ("", 2));
        let d = delivery("jo+lists@x.test");
        assert_eq!(
            (d.user.as_str(), d.extension.as_deref()),
            ("jo", Some("lists"))
        );
        assert_eq!(delivery("jo@x.test").extension, None);
    }
}
