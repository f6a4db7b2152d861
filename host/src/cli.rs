//! The `postern` command line: `run`, `check` and `queue list`.
//!
//! This is the edge of the program: errors become messages on stderr and an
//! exit code here, and nowhere else.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use tokio::sync::{mpsc, watch};

use crate::config::Config;
use crate::control::Control;
use crate::delivery::{LocalDelivery, Resolver};
use crate::plugin::PluginRuntime;
use crate::policy::{Policy, PolicySet};
use crate::queue::manager::{QueueManager, Schedule};
use crate::queue::{QueueDirs, Spool, list};
use crate::smtp::session::SessionContext;

/// postern — a mail transfer agent whose policy runs as WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "postern", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Run the mail server in the foreground (logs to stderr).
    Run {
        /// Configuration file (default: the embedded configuration).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (overrides `data_directory`).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Address to listen on (overrides `listen`; may be repeated).
        #[arg(long)]
        listen: Vec<SocketAddr>,
    },
    /// Check the configuration, like `postfix check`.
    Check {
        /// Configuration file (default: the embedded configuration).
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Inspect the queue.
    Queue {
        #[command(subcommand)]
        command: QueueCmd,
    },
    /// Reload plugins and chains in the running server (like SIGHUP).
    Reload {
        /// Configuration file (for `data_directory`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (overrides the configuration).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Stop the running server (like SIGTERM).
    Stop {
        /// Configuration file (for `data_directory`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (overrides the configuration).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Translate a Postfix main.cf into postern.toml, saying what was not carried over.
    ImportPostfix {
        /// The main.cf to read.
        main_cf: PathBuf,
        /// Where to write postern.toml (default: the current directory).
        #[arg(short = 'o', long = "output", default_value = ".")]
        output: PathBuf,
    },
    /// Run every stage's chain on a message without sending mail, and print
    /// each step's verdict and edits.
    FilterTest {
        /// Configuration file (default: the embedded configuration).
        #[arg(long)]
        config: Option<PathBuf>,
        /// The envelope sender.
        #[arg(long, default_value = "sender@example.org")]
        from: String,
        /// An envelope recipient (may be repeated).
        #[arg(long = "to", default_value = "postmaster@localhost")]
        to: Vec<String>,
        /// The client's address.
        #[arg(long, default_value = "127.0.0.1")]
        client: std::net::IpAddr,
        /// The HELO name.
        #[arg(long, default_value = "client.example.org")]
        helo: String,
        /// The message (RFC 5322, LF or CR LF line ends).
        message: PathBuf,
    },
    /// Plugins.
    Plugin {
        #[command(subcommand)]
        command: PluginCmd,
    },
}

#[derive(Debug, Subcommand)]
enum PluginCmd {
    /// List the plugins loaded in the running server.
    List {
        /// Configuration file (for `data_directory`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (overrides the configuration).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
enum QueueCmd {
    /// List queued messages, like `mailq`.
    List {
        /// Configuration file (for `data_directory`).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Data directory (overrides the configuration).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

/// Parses the command line and runs it.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Run {
            config,
            data_dir,
            listen,
        } => run(config.as_deref(), data_dir, listen),
        Cmd::Check { config } => check(config.as_deref()),
        Cmd::Queue {
            command: QueueCmd::List { config, data_dir },
        } => queue_list(config.as_deref(), data_dir),
        Cmd::Reload { config, data_dir } => control_request(config.as_deref(), data_dir, "reload"),
        Cmd::Stop { config, data_dir } => control_request(config.as_deref(), data_dir, "stop"),
        Cmd::Plugin {
            command: PluginCmd::List { config, data_dir },
        } => control_request(config.as_deref(), data_dir, "plugins"),
        Cmd::ImportPostfix { main_cf, output } => import_postfix(&main_cf, &output),
        Cmd::FilterTest {
            config,
            from,
            to,
            client,
            helo,
            message,
        } => filter_test(
            config.as_deref(),
            &message,
            crate::filter_test::Pretend {
                from,
                to,
                client,
                helo,
            },
        ),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("postern: fatal: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load(config: Option<&Path>, data_dir: Option<PathBuf>) -> anyhow::Result<Config> {
    Config::load_with(config, data_dir.as_deref()).map_err(|e| anyhow::anyhow!("{e}"))
}

fn check(config: Option<&Path>) -> anyhow::Result<ExitCode> {
    match Config::load(config) {
        Err(errors) => {
            for e in &errors.0 {
                eprintln!("postern: error: {e}");
            }
            Ok(ExitCode::FAILURE)
        }
        Ok(cfg) => {
            if let Err(e) = Resolver::load(&cfg) {
                eprintln!("postern: error: {}: {e}", cfg.source);
                return Ok(ExitCode::FAILURE);
            }
            let errors = check_plugins(&cfg)?;
            for e in &errors {
                eprintln!("postern: error: {e}");
            }
            if !errors.is_empty() {
                return Ok(ExitCode::FAILURE);
            }
            println!(
                "postern: {}: configuration OK ({} plugin(s))",
                cfg.source,
                cfg.plugins.len()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Loads every plugin as `run` would (compile, imports, stages, `configure`).
fn check_plugins(cfg: &Config) -> anyhow::Result<Vec<String>> {
    if cfg.plugins.is_empty() {
        return Ok(Vec::new());
    }
    // The server's cache when there is one (artifacts are written atomically),
    // else a scratch directory.
    let shared = cfg.plugin_cache_directory.clone();
    let scratch = std::env::temp_dir().join(format!("postern-check-{}", std::process::id()));
    let cache = if shared.is_dir() {
        shared
    } else {
        scratch.clone()
    };
    let runtime = Arc::new(PluginRuntime::without_state(&cache).map_err(|e| anyhow::anyhow!(e))?);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let result = rt.block_on(runtime.load(cfg, None));
    let _ = std::fs::remove_dir_all(&scratch);
    Ok(match result {
        Ok(_) => Vec::new(),
        Err(errors) => errors.iter().map(|e| located(cfg, e)).collect(),
    })
}

/// A plugin load error where `postern check` points: the file, the line of
/// the plugin's table, the table.
fn located(cfg: &Config, e: &crate::plugin::LoadError) -> String {
    let line = cfg.plugins.get(&e.plugin).map_or(0, |p| p.line);
    format!("{}:{line}: plugins.{}: {}", cfg.source, e.plugin, e.message)
}

fn queue_list(config: Option<&Path>, data_dir: Option<PathBuf>) -> anyhow::Result<ExitCode> {
    let cfg = load(config, data_dir)?;
    let dirs = QueueDirs::new(cfg.queue_directory());
    let mut out = std::io::stdout().lock();
    list::mailq(&dirs, &mut out).context("cannot read the queue")?;
    Ok(ExitCode::SUCCESS)
}

fn control_request(
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    request: &str,
) -> anyhow::Result<ExitCode> {
    let cfg = load(config, data_dir)?;
    let (ok, lines) = crate::control::request(&cfg.control_socket(), request)?;
    for l in &lines {
        if ok {
            println!("{l}");
        } else {
            eprintln!("postern: {l}");
        }
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn filter_test(
    config: Option<&Path>,
    message: &Path,
    pretend: crate::filter_test::Pretend,
) -> anyhow::Result<ExitCode> {
    let cfg = load(config, None)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let report = rt
        .block_on(crate::filter_test::run(&cfg, message, &pretend))
        .map_err(|e| anyhow::anyhow!(e))?;
    print!("{report}");
    Ok(ExitCode::SUCCESS)
}

fn import_postfix(main_cf: &Path, output: &Path) -> anyhow::Result<ExitCode> {
    let imported = crate::import::import(main_cf).map_err(|e| anyhow::anyhow!(e))?;
    std::fs::create_dir_all(output)
        .with_context(|| format!("cannot create {}", output.display()))?;
    let path = output.join("postern.toml");
    std::fs::write(&path, &imported.toml)
        .with_context(|| format!("cannot write {}", path.display()))?;
    for (from, name) in &imported.copies {
        let to = output.join(name);
        std::fs::copy(from, &to)
            .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
        println!(
            "postern import-postfix: copied {} to {}",
            from.display(),
            to.display()
        );
    }
    for n in &imported.notes {
        eprintln!("postern import-postfix: not carried over: {n}");
    }
    println!(
        "postern import-postfix: wrote {} ({} parameter(s) not carried over)",
        path.display(),
        imported.notes.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("POSTERN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

fn run(
    config: Option<&Path>,
    data_dir: Option<PathBuf>,
    listen: Vec<SocketAddr>,
) -> anyhow::Result<ExitCode> {
    init_logging();
    let mut cfg = load(config, data_dir)?;
    if !listen.is_empty() {
        cfg.listen = listen;
    }
    std::fs::create_dir_all(&cfg.data_directory)
        .with_context(|| format!("cannot create {}", cfg.data_directory.display()))?;
    let lock = lock_data_directory(&cfg.data_directory)?;
    let resolver =
        Resolver::load(&cfg).with_context(|| format!("{}: cannot read a table", cfg.source))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("postern")
        .build()
        .context("cannot start the runtime")?;
    runtime.block_on(serve(cfg, config.map(Path::to_path_buf), resolver))?;
    drop(lock);
    Ok(ExitCode::SUCCESS)
}

/// One server per data directory: a second would share the queue.
fn lock_data_directory(dir: &Path) -> anyhow::Result<std::fs::File> {
    let path = dir.join("postern.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    file.try_lock()
        .map_err(|_| anyhow::anyhow!("{} is in use by another postern", dir.display()))?;
    Ok(file)
}

async fn serve(
    cfg: Config,
    config_path: Option<PathBuf>,
    resolver: Resolver,
) -> anyhow::Result<()> {
    let cfg = Arc::new(cfg);
    let resolver = Arc::new(resolver);
    let listeners = crate::listener::bind(&cfg.listen).await?;

    // Plugins first: a plugin that cannot load stops the start, naming it.
    let runtime = PluginRuntime::new(
        &cfg.data_directory,
        &cfg.plugin_cache_directory,
        &cfg.dns_nameservers,
    )
    .map_err(|e| anyhow::anyhow!(e))?;
    std::fs::create_dir_all(&cfg.plugin_directory)
        .with_context(|| format!("cannot create {}", cfg.plugin_directory.display()))?;
    let plugins = runtime.load(&cfg, None).await.map_err(|errors| {
        let text: Vec<String> = errors.iter().map(|e| located(&cfg, e)).collect();
        anyhow::anyhow!("{}", text.join("\n"))
    })?;
    let policy = Arc::new(Policy::new(
        runtime,
        PolicySet {
            chains: cfg.chains.clone(),
            plugins: Arc::new(plugins),
        },
    ));
    if let Err(e) = policy.start_housekeeper(tokio::runtime::Handle::current()) {
        tracing::warn!("cannot start the plugin housekeeper (instances are made on demand): {e}");
    }

    let dirs = QueueDirs::new(cfg.queue_directory());
    let (arrivals_tx, arrivals_rx) = mpsc::unbounded_channel();
    let spool = Arc::new(Spool::open(dirs.clone(), arrivals_tx).context("cannot open the queue")?);
    let agent = LocalDelivery::new(&cfg, (*resolver).clone(), policy.clone(), spool.clone());
    let mut manager = QueueManager::new(dirs, agent, Schedule::from_config(&cfg), arrivals_rx);
    manager.recover().context("queue recovery failed")?;

    let (stop_tx, stop_rx) = watch::channel(false);
    let qmgr = tokio::spawn(manager.run(stop_rx.clone()));
    for l in &listeners {
        if let Ok(addr) = l.local_addr() {
            tracing::info!("listening on {addr}");
        }
    }
    tracing::info!(
        "postern {} started: myhostname={}, data_directory={}, plugins={}",
        env!("CARGO_PKG_VERSION"),
        cfg.myhostname,
        cfg.data_directory.display(),
        policy.snapshot().plugins.list().len()
    );
    let control = Arc::new(Control {
        policy: policy.clone(),
        config: config_path.clone(),
        stop: stop_tx.clone(),
    });
    let socket = cfg.control_socket();
    let control_task = tokio::spawn({
        let (control, stop) = (control.clone(), stop_rx.clone());
        async move {
            if let Err(e) = crate::control::serve(&socket, control, stop).await {
                tracing::error!("control socket {}: {e}", socket.display());
            }
        }
    });
    let plugin_files: Vec<PathBuf> = cfg
        .plugins
        .values()
        .flat_map(|p| p.files.values())
        .map(|f| {
            if f.is_absolute() {
                f.clone()
            } else {
                cfg.base_directory().join(f)
            }
        })
        .collect();
    let _watcher = crate::policy::reload::watch(
        &cfg.plugin_directory,
        config_path.as_deref(),
        &plugin_files,
        control.clone(),
    )
    .map_err(|e| tracing::warn!("hot reload by file watching is off: {e}"))
    .ok();
    let ctx = SessionContext {
        config: cfg.clone(),
        resolver,
        spool,
        policy,
    };
    let server = tokio::spawn(crate::listener::serve(listeners, ctx, stop_rx.clone()));
    wait_for_signal(&control, stop_rx).await?;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    let _ = server.await;
    let _ = qmgr.await;
    let _ = control_task.await;
    tracing::info!("stopped");
    Ok(())
}

/// Returns on SIGTERM, SIGINT or `postern stop`; reloads on SIGHUP.
async fn wait_for_signal(control: &Control, mut stop: watch::Receiver<bool>) -> anyhow::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    let mut hup = signal(SignalKind::hangup()).context("cannot handle SIGHUP")?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok(()),
            _ = int.recv() => return Ok(()),
            _ = stop.changed() => return Ok(()),
            _ = hup.recv() => {
                tracing::info!("SIGHUP: reloading plugins");
                let _ = control.reload().await;
            }
        }
    }
}
