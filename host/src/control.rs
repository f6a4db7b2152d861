//! The control socket: how `postern reload`, `postern plugin list` and
//! `postern stop` talk to the running server.
//!
//! A Unix socket in the data directory (mode 0600: only the owner may use
//! it). One request line per connection (`reload`, `plugins`, `stop`); the
//! answer is text lines, the last one `ok` or `error: ...`. Requests are capped
//! at one short line and a few seconds.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::watch;

use crate::policy::Policy;

/// Longest request line.
const MAX_REQUEST_BYTES: u64 = 256;

/// What the control socket acts on.
#[derive(Debug)]
pub struct Control {
    /// The policy to reload or list.
    pub policy: Arc<Policy>,
    /// The configuration file to reload from (`None`: the embedded default).
    pub config: Option<PathBuf>,
    /// Asks the server to stop.
    pub stop: watch::Sender<bool>,
}

impl Control {
    /// Reloads plugins and chains; the answer lines.
    pub async fn reload(&self) -> (bool, Vec<String>) {
        match crate::policy::reload::reload(&self.policy, self.config.as_deref()).await {
            Ok(line) => (true, vec![line]),
            Err(reasons) => (false, reasons),
        }
    }

    fn plugins(&self) -> Vec<String> {
        let set = self.policy.snapshot();
        let mut lines = vec![format!(
            "{:<20} {:<20} {:<34} {:<20} {:>8} {:>8}  {}",
            "NAME", "VERSION", "STAGES", "CAPABILITIES", "CALLS", "FAILURES", "CONFIGURED"
        )];
        for p in set.plugins.list() {
            let stages: Vec<&str> = p.stages.iter().map(|s| s.name()).collect();
            let caps: Vec<&str> = p.capabilities.iter().map(|c| c.name()).collect();
            lines.push(format!(
                "{:<20} {:<20} {:<34} {:<20} {:>8} {:>8}  {}",
                p.name,
                p.version,
                if stages.is_empty() {
                    "-".into()
                } else {
                    stages.join(",")
                },
                if caps.is_empty() {
                    "-".into()
                } else {
                    caps.join(",")
                },
                p.calls,
                p.failures,
                if p.configured_at_load {
                    "at-load"
                } else {
                    "per-instance"
                }
            ));
        }
        lines
    }

    async fn handle(&self, request: &str) -> (bool, Vec<String>) {
        match request.trim() {
            "reload" => self.reload().await,
            "plugins" => (true, self.plugins()),
            "stop" => {
                let _ = self.stop.send(true);
                (true, vec!["stopping".into()])
            }
            other => (false, vec![format!("unknown request `{other}`")]),
        }
    }
}

/// Listens on `path` until `shutdown`.
pub async fn serve(
    path: &Path,
    control: Arc<Control>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
    loop {
        let stream = tokio::select! {
            s = listener.accept() => s,
            _ = shutdown.changed() => break,
        };
        let Ok((stream, _)) = stream else { continue };
        let control = control.clone();
        tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(120), answer(stream, &control)).await;
        });
    }
    let _ = std::fs::remove_file(path);
    Ok(())
}

async fn answer(stream: UnixStream, control: &Control) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    let mut reader = BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST_BYTES));
    tokio::time::timeout(Duration::from_secs(5), reader.read_line(&mut line))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "request timeout"))??;
    let (ok, lines) = control.handle(&line).await;
    let mut out = String::new();
    for l in lines {
        out.push_str(&l);
        out.push('\n');
    }
    out.push_str(if ok { "ok\n" } else { "error\n" });
    write.write_all(out.as_bytes()).await?;
    write.shutdown().await
}

/// Client side: sends `request` to the server's socket, returns its answer
/// lines and whether it ended in `ok`.
pub fn request(path: &Path, request: &str) -> std::io::Result<(bool, Vec<String>)> {
    use std::io::{BufRead, Write};
    let mut stream = std::os::unix::net::UnixStream::connect(path).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!(
                "cannot reach the server at {} ({e}); is it running?",
                path.display()
            ),
        )
    })?;
    stream.set_read_timeout(Some(Duration::from_secs(300)))?;
    stream.write_all(format!("{request}\n").as_bytes())?;
    let mut lines: Vec<String> = std::io::BufReader::new(stream)
        .lines()
        .collect::<Result<_, _>>()?;
    let ok = lines.last().is_some_and(|l| l == "ok");
    lines.pop();
    Ok((ok, lines))
}
