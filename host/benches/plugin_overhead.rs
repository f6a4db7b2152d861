//! Per-hook overhead of plugins in Rust, Python and JavaScript, through the
//! host's real plugin runtime (the same code path SMTP sessions use).
//!
//! `cargo bench -p postern --bench plugin_overhead` builds the components
//! (Rust with cargo, Python and JavaScript with their examples' build scripts)
//! and prints medians over many iterations of:
//!
//! - a fresh instance (what every SMTP transaction pays) + one trivial hook
//!   call; Rust instances start configured (frozen at load), Python and
//!   JavaScript ones run `configure` first;
//! - one hook call on a live instance;
//! - a hook that makes a `dns` host call (rust-rbl against rbldnsd on
//!   loopback when it is installed; answers come from the resolver's cache
//!   after the first, so this is the guest → host → guest round trip);
//! - the data stage with a 50 KiB body (marshalling the message resource; the
//!   JavaScript filter also reads the body through `read-body`).
//!
//! Figures on a shared 2-core machine vary by ±50%; compare ratios within one run.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use postern::config::Config;
use postern::plugin::types::{ClientInfo, DeliveryInfo, EnvelopeInfo, HookInput};
use postern::plugin::{Instances, PluginRuntime, PluginSet, Prepared};
use postern::policy::{Policy, PolicySet};

/// The server's allocator.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The end-to-end tests' builder: Rust plugins with cargo, the Python and
/// JavaScript examples with their scripts, once.
#[path = "../../tests/e2e/components.rs"]
mod components;

fn build_components(out: &Path) -> Vec<&'static str> {
    std::fs::create_dir_all(out).expect("out dir");
    for (name, file) in [
        ("postern_test_noop", "postern_test_noop.wasm"),
        ("postern_test_noop_std", "postern_test_noop_std.wasm"),
        ("postern_example_rbl", "postern_example_rbl.wasm"),
        ("python-greylist", "python-greylist.wasm"),
        ("js-subject-tag", "js-subject-tag.wasm"),
    ] {
        components::install(name, out, file);
    }
    vec!["rust", "python", "js"]
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn us(d: Duration) -> String {
    format!("{:>10.1} µs", d.as_secs_f64() * 1e6)
}

/// Runs `f` `n` times after `warm` warm-up runs; the median.
async fn measure<F, Fut>(n: usize, warm: usize, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    for _ in 0..warm {
        f().await;
    }
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        f().await;
        times.push(t.elapsed());
    }
    median(times)
}

fn start_rbldnsd(dir: &Path) -> Option<(std::process::Child, u16)> {
    let work = dir.join("rbldnsd");
    std::fs::create_dir_all(&work).ok()?;
    std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).ok()?;
    std::fs::set_permissions(&work, std::os::unix::fs::PermissionsExt::from_mode(0o755)).ok()?;
    std::fs::write(work.join("zen.ip4set"), ":127.0.0.2:listed\n127.0.0.99\n").ok()?;
    let port = std::net::UdpSocket::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let child = Command::new("rbldnsd")
        .args([
            "-n",
            "-u",
            "nobody",
            "-b",
            &format!("127.0.0.1/{port}"),
            "-w",
        ])
        .arg(&work)
        .arg("zen.test:ip4set:zen.ip4set")
        .stderr(std::process::Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_millis(300));
    Some((child, port))
}

/// `POSTERN_BENCH_CHAIN=N`: N messages through a chain of four no-op Rust
/// plugins at every stage, as the server runs them (one policy transaction
/// for connect..data that the delivery continues in); prints the cost per
/// message. `POSTERN_BENCH_CHAIN_STD=1`: the no-op that links std instead.
fn chain_loop(n: usize, dir: &Path) {
    let plugins = dir.join("plugins");
    let noop = if env_number("POSTERN_BENCH_CHAIN_STD").is_some() {
        "postern_test_noop_std"
    } else {
        "postern_test_noop"
    };
    components::install(noop, &plugins, "postern_test_noop.wasm");
    let mut config = format!(
        "data_directory = \"{}\"\nplugin_directory = \"{}\"\n",
        dir.join("data").display(),
        plugins.display()
    );
    for i in 1..=4 {
        config += &format!("[plugins.noop{i}]\npath = \"postern_test_noop.wasm\"\n");
    }
    config += "[chains]\n";
    for stage in ["connect", "helo", "mail", "rcpt", "data", "deliver"] {
        config += &format!("{stage} = [\"noop1\", \"noop2\", \"noop3\", \"noop4\"]\n");
    }
    let cfg = Config::parse(&config, "bench").expect("config");
    let rt = tokio_runtime(env_number("POSTERN_BENCH_WORKERS").unwrap_or(2));
    rt.block_on(async {
        let (runtime, set) = load(&cfg).await;
        let policy = Policy::new(
            runtime,
            PolicySet {
                chains: cfg.chains.clone(),
                plugins: set,
            },
        );
        let policy = Arc::new(policy);
        // POSTERN_BENCH_CHAIN_CALLS=1: instead, what one call costs at each
        // stage on live instances (the stages differ by their parameters).
        if env_number("POSTERN_BENCH_CHAIN_CALLS").is_some() {
            for (stage, name) in STAGES.iter().enumerate() {
                messages(policy.clone(), 1000, Only(stage)).await;
                let (t, c) = (Instant::now(), cpu_time());
                messages(policy.clone(), n, Only(stage)).await;
                let calls = (n * 4) as u32;
                let (wall, cpu) = (t.elapsed() / calls, (cpu_time() - c) / calls);
                println!(
                    "{name:>8} call on a live instance: {:.2} µs wall, {:.2} µs CPU",
                    wall.as_secs_f64() * 1e6,
                    cpu.as_secs_f64() * 1e6
                );
            }
            return;
        }
        // POSTERN_BENCH_CHAIN_LANES=K: K messages in flight at once, their
        // stages interleaved (as concurrent sessions are in the server).
        let lanes = env_number("POSTERN_BENCH_CHAIN_LANES").unwrap_or(1).max(1);
        let run = |count: usize| {
            let tasks: Vec<_> = (0..lanes)
                .map(|_| {
                    let mode = if lanes > 1 { Interleaved } else { Whole };
                    tokio::spawn(messages(policy.clone(), count / lanes, mode))
                })
                .collect();
            async move {
                for t in tasks {
                    t.await.expect("lane");
                }
            }
        };
        run(100 * lanes).await;
        let (t, c) = (Instant::now(), cpu_time());
        run(n).await;
        let n = n / lanes * lanes;
        let (wall, cpu) = (t.elapsed() / n as u32, (cpu_time() - c) / n as u32);
        println!(
            "{n} messages ({lanes} at a time) through 4 no-op plugins x 6 stages: {:.1} µs wall, {:.1} µs CPU per message",
            wall.as_secs_f64() * 1e6,
            cpu.as_secs_f64() * 1e6
        );
    });
}

/// The stages, in the order a message meets them.
const STAGES: [&str; 6] = ["connect", "helo", "mail", "rcpt", "data", "deliver"];

/// How [`messages`] runs the chains.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    /// Every stage of each message, one message after the other.
    Whole,
    /// The same, yielding between stages so that other lanes run.
    Interleaved,
    /// Only the chain of stage `n` (an index into [`STAGES`]), once per
    /// message, all in one transaction.
    Only(usize),
}
use Mode::*;

/// `count` messages through `policy`'s chains, run as `mode` says.
async fn messages(policy: Arc<Policy>, count: usize, mode: Mode) {
    let (client, envelope) = (client(), envelope());
    let mut message = b"Received: from client.example (client.example [192.0.2.7])\r\n\tby bench.test (postern) with ESMTP id 6612EB3781F5B12A\r\n\tfor <b@example.org>; Thu, 26 Nov 2026 14:24:27 +0000\r\nFrom: <a@example.org>\r\nTo: <b@example.org>\r\nDate: Thu, 26 Nov 2026 14:24:27 +0000\r\nMessage-Id: <20261126142427.1@client.example>\r\n\r\n".to_vec();
    message.resize(message.len() + 4096, b'x');
    let message = Arc::new(message);
    let delivery = DeliveryInfo {
        recipient: "b@example.org".into(),
        user: "b".into(),
        extension: None,
        size: 4096,
        home: None,
    };
    let smtp = [
        HookInput::Connect { client: &client },
        HookInput::Helo {
            client: &client,
            helo: "client.example",
        },
        HookInput::Mail {
            client: &client,
            sender: "a@example.org",
        },
        HookInput::Rcpt {
            client: &client,
            envelope: &envelope,
            rcpt: "b@example.org",
        },
        HookInput::Data {
            client: &client,
            envelope: &envelope,
            message: message.clone(),
        },
    ];
    let deliver = HookInput::Deliver {
        client: &client,
        delivery: &delivery,
        envelope: &envelope,
        message,
    };
    if let Only(stage) = mode {
        let input = smtp.get(stage).unwrap_or(&deliver);
        let mut txn = policy.transaction();
        for _ in 0..count {
            txn.run(input).await;
        }
        return;
    }
    for _ in 0..count {
        let mut txn = policy.transaction();
        for input in &smtp {
            txn.run(input).await;
            if mode == Interleaved {
                tokio::task::yield_now().await;
            }
        }
        // A single-recipient message: its delivery continues in the
        // transaction's instances, as the server hands them over.
        txn.run(&deliver).await;
    }
}

/// The benchmarks' client.
fn client() -> ClientInfo {
    ClientInfo {
        ip: Some("192.0.2.7".parse().expect("ip")),
        port: 40000,
        helo: Some("client.example".into()),
        esmtp: true,
        tls: false,
        auth_user: None,
        in_mynetworks: false,
        improper_pipelining: false,
    }
}

/// The benchmarks' envelope: one sender, one recipient.
fn envelope() -> EnvelopeInfo {
    EnvelopeInfo {
        sender: "a@example.org".into(),
        recipients: vec!["b@example.org".into()],
    }
}

/// A multi-threaded tokio runtime with `workers` worker threads.
fn tokio_runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The plugin runtime for `cfg` and its loaded plugin set.
async fn load(cfg: &Config) -> (Arc<PluginRuntime>, Arc<PluginSet>) {
    let runtime = PluginRuntime::new(
        &cfg.data_directory,
        &cfg.plugin_cache_directory,
        &cfg.dns_nameservers,
    )
    .expect("plugin runtime");
    let set = Arc::new(runtime.load(cfg, None).await.expect("load"));
    (runtime, set)
}

/// A number from the environment variable `name`.
fn env_number(name: &str) -> Option<usize> {
    std::env::var(name).ok().and_then(|n| n.parse().ok())
}

/// This process's CPU time (user + system).
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or_default();
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 (utime, stime, in 1/100 s) are the 12th and 13th after the name.
    let field = |i: usize| f.get(i).and_then(|x| x.parse::<u64>().ok()).unwrap_or(0);
    Duration::from_micros((field(11) + field(12)) * 10_000)
}

fn main() {
    let dir = std::env::temp_dir().join(format!("postern-bench-{}", std::process::id()));
    if let Some(n) = env_number("POSTERN_BENCH_CHAIN") {
        chain_loop(n, &dir);
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let plugins = dir.join("plugins");
    let langs = build_components(&plugins);
    let dns = start_rbldnsd(&dir);
    let dns_line = dns.as_ref().map_or(String::new(), |(_, port)| {
        format!("dns_nameservers = [\"127.0.0.1:{port}\"]\n")
    });
    let config = format!(
        r#"data_directory = "{data}"
plugin_directory = "{plugins}"
{dns_line}
[plugins.rust]
path = "postern_test_noop.wasm"
[plugins.rust-std]
path = "postern_test_noop_std.wasm"
[plugins.rbl]
path = "postern_example_rbl.wasm"
capabilities = ["dns", "log"]
config = {{ zones = ["zen.test"] }}
{python}
{js}
"#,
        data = dir.join("data").display(),
        plugins = plugins.display(),
        python = if langs.contains(&"python") {
            "[plugins.python]\npath = \"python-greylist.wasm\"\ncapabilities = [\"kv\", \"clock\", \"log\"]\n"
        } else {
            ""
        },
        js = if langs.contains(&"js") {
            "[plugins.js]\npath = \"js-subject-tag.wasm\"\nconfig = { tag = \"[T]\", words = [\"needle-not-present\"] }\n"
        } else {
            ""
        },
    );
    let cfg = Config::parse(&config, "bench").expect("config");
    let rt = tokio_runtime(2);
    rt.block_on(async {
        let t = Instant::now();
        let (_runtime, set) = load(&cfg).await;
        println!(
            "loaded {} plugins (compiling what was not cached) in {:.2?}",
            set.list().len(),
            t.elapsed()
        );

        let (client, envelope) = (client(), envelope());
        let mut body =
            b"From: a@example.org\r\nTo: b@example.org\r\nSubject: benchmark\r\n\r\n".to_vec();
        while body.len() < 50 * 1024 {
            body.extend_from_slice(
                b"All work and no play makes Jack a dull boy, all work and no play.\r\n",
            );
        }
        let message = Arc::new(body);
        let tagged = Arc::new(b"Subject: [T] already tagged\r\n\r\nx\r\n".to_vec());
        let connect = HookInput::Connect { client: &client };
        let data = HookInput::Data {
            client: &client,
            envelope: &envelope,
            message: message.clone(),
        };
        let data_tagged = HookInput::Data {
            client: &client,
            envelope: &envelope,
            message: tagged,
        };

        // POSTERN_BENCH_FRESH_LOOP=N: only N fresh Rust instances, for a profiler.
        if let Some(n) = env_number("POSTERN_BENCH_FRESH_LOOP") {
            let t = Instant::now();
            for _ in 0..n {
                let mut inst = Instances::new(set.clone());
                inst.call("rust", &Prepared::new(&connect), &[])
                    .await
                    .expect("call");
            }
            println!(
                "{n} fresh Rust instances: {:.2?} each",
                t.elapsed() / n as u32
            );
            return;
        }
        println!("\n{:<44} {:>13}", "median per operation", "");
        let mut rows: Vec<(String, Duration)> = Vec::new();
        let cases: Vec<(&str, &str, usize, &HookInput<'_>)> = vec![
            ("rust", "Rust (no_std)", 2000, &connect),
            ("rust-std", "Rust (std)", 2000, &connect),
            ("python", "Python", 200, &connect),
            ("js", "JavaScript", 200, &data_tagged),
        ];
        for (name, label, n, input) in cases {
            if !set.list().iter().any(|p| p.name == name) {
                continue;
            }
            let fresh = measure(n, 20, || {
                let set = set.clone();
                async move {
                    let mut inst = Instances::new(set);
                    inst.call(name, &Prepared::new(input), &[])
                        .await
                        .expect("call");
                }
            })
            .await;
            rows.push((format!("{label}: fresh instance + trivial call"), fresh));
            let mut inst = Instances::new(set.clone());
            let mut live = Vec::new();
            for _ in 0..20 {
                inst.call(name, &Prepared::new(input), &[])
                    .await
                    .expect("call");
            }
            for _ in 0..n {
                let t = Instant::now();
                inst.call(name, &Prepared::new(input), &[])
                    .await
                    .expect("call");
                live.push(t.elapsed());
            }
            rows.push((
                format!("{label}: trivial call, live instance"),
                median(live),
            ));
        }
        if dns.is_some() {
            let mut inst = Instances::new(set.clone());
            let mut times = Vec::new();
            for i in 0..1020 {
                let t = Instant::now();
                inst.call("rbl", &Prepared::new(&connect), &[])
                    .await
                    .expect("call");
                if i >= 20 {
                    times.push(t.elapsed());
                }
            }
            rows.push((
                "Rust: call making a dns host call (rbl)".into(),
                median(times),
            ));
        }
        for (name, label, n) in [("rust", "Rust", 2000), ("js", "JavaScript", 200)] {
            if !set.list().iter().any(|p| p.name == name) {
                continue;
            }
            let mut inst = Instances::new(set.clone());
            for _ in 0..20 {
                inst.call(name, &Prepared::new(&data), &[])
                    .await
                    .expect("call");
            }
            let mut times = Vec::new();
            for _ in 0..n {
                let t = Instant::now();
                inst.call(name, &Prepared::new(&data), &[])
                    .await
                    .expect("call");
                times.push(t.elapsed());
            }
            let what = if name == "js" {
                "reads the body, searches it"
            } else {
                "body not read"
            };
            rows.push((
                format!("{label}: data stage, 50 KiB body ({what})"),
                median(times),
            ));
        }
        for (label, d) in rows {
            println!("{label:<62} {}", us(d));
        }
    });
    if let Some((mut child, _)) = dns {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
}
