//! Starts the real `postern` binary on a free loopback port with a temporary
//! data directory, and offers the clients the tests speak with: raw sockets,
//! `swaks` and Python's `smtplib` (tests/e2e/clients/send.py).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_postern");

/// A running postern.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    pub dir: PathBuf,
    pub config: PathBuf,
    log: PathBuf,
}

/// A temporary directory for one test, removed on success.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("postern-e2e-")
        .tempdir()
        .expect("tempdir")
}

/// The base configuration every test extends.
pub fn base_config(dir: &Path, extra: &str) -> String {
    format!(
        "listen = [\"127.0.0.1:0\"]\nmyhostname = \"mx.test\"\nmydestination = [\"localhost\", \"mx.test\"]\n\
         recipient_delimiter = \"+\"\ndata_directory = \"{}\"\n{extra}",
        dir.join("data").display()
    )
}

impl Server {
    /// Writes `config` to `dir/postern.toml` and starts postern with it.
    pub fn start(dir: &Path, config: &str) -> Server {
        let path = dir.join("postern.toml");
        std::fs::write(&path, config).expect("write config");
        let arg = path.to_str().expect("utf-8 path").to_owned();
        Self::start_with(dir, &["run", "--config", &arg], dir, path)
    }

    /// Starts `postern ARGS` in `cwd`, logging to `dir/postern-N.log`.
    pub fn start_with(dir: &Path, args: &[&str], cwd: &Path, config: PathBuf) -> Server {
        let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
        let log = dir.join(format!("postern-{n}.log"));
        let mut child = Command::new(BIN)
            .args(args)
            .current_dir(cwd)
            .env("POSTERN_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("start postern");
        // Compiling a large (Python, JavaScript) component on a loaded machine takes a while.
        let addr = wait_for(Duration::from_secs(180), || {
            // A server that exited will not start: stop waiting at once.
            if let Ok(Some(_)) = child.try_wait() {
                return Some(None);
            }
            let text = std::fs::read_to_string(&log).ok()?;
            text.lines()
                .find_map(|l| l.split("listening on ").nth(1))
                .and_then(|a| a.trim().parse().ok())
                .map(Some)
        })
        .flatten()
        .unwrap_or_else(|| {
            // No Server exists yet to do it on drop: never leave a stray server behind.
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "postern did not start: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            )
        });
        Server {
            child,
            addr,
            dir: dir.to_owned(),
            config,
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What `postern queue list` prints for this server's queue.
    pub fn queue_list(&self) -> String {
        let out = Command::new(BIN)
            .args(["queue", "list", "--config"])
            .arg(&self.config)
            .output()
            .expect("queue list");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn server_arg(&self) -> String {
        self.addr.to_string()
    }

    /// The Maildir `new/` files of `user` under the default mail home.
    pub fn maildir(&self, user: &str) -> Vec<PathBuf> {
        maildir_files(&self.dir.join("data/mail").join(user).join("Maildir"))
    }

    /// Waits until `user` has `n` messages (or the time is up); returns them.
    pub fn wait_for_mail(&self, user: &str, n: usize) -> Vec<PathBuf> {
        wait_for(Duration::from_secs(20), || {
            let files = self.maildir(user);
            (files.len() >= n).then_some(files)
        })
        .unwrap_or_else(|| self.maildir(user))
    }

    /// SIGTERM, then waits for the exit; returns whether it exited cleanly.
    pub fn stop(mut self) -> bool {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(40);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        false
    }

    /// SIGKILL: a crash.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Opens a raw SMTP connection and reads the greeting.
    pub fn connect(&self) -> Smtp {
        Smtp::connect(self.addr)
    }

    /// `swaks --server <addr> ARGS`.
    pub fn swaks(&self, args: &[&str]) -> Output {
        Command::new("swaks")
            .arg("--server")
            .arg(self.server_arg())
            .args(["--timeout", "20"])
            .args(args)
            .output()
            .expect("swaks must be installed (apt-get install swaks)")
    }

    /// tests/e2e/clients/send.py --server <addr> ARGS; its stdout lines.
    pub fn smtplib(&self, args: &[&str]) -> Vec<String> {
        let out = Command::new("python3")
            .arg(client_script())
            .arg("--server")
            .arg(self.server_arg())
            .args(args)
            .output()
            .expect("python3 must be installed");
        assert!(
            out.status.success(),
            "send.py failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `postern check --config PATH`.
pub fn postern_check(path: &Path) -> Output {
    Command::new(BIN)
        .args(["check", "--config"])
        .arg(path)
        .output()
        .expect("run postern check")
}

/// `postern check --config path`, which must pass (its stderr otherwise).
pub fn postern_check_ok(path: &Path) {
    let out = postern_check(path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

pub fn client_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/e2e/clients/send.py")
}

/// Files in `maildir/new`, sorted.
pub fn maildir_files(maildir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(maildir.join("new"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    files
}

/// Polls `f` every 20 ms until it gives a value or `limit` passes.
pub fn wait_for<T>(limit: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A raw SMTP connection: write bytes, read whole replies.
pub struct Smtp {
    reader: BufReader<TcpStream>,
    pub greeting: String,
}

impl Smtp {
    pub fn connect(addr: SocketAddr) -> Smtp {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .expect("timeout");
        let mut s = Smtp {
            reader: BufReader::new(stream),
            greeting: String::new(),
        };
        s.greeting = s.reply();
        s
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).expect("write");
    }

    /// One whole reply, or "" at end of stream.
    pub fn reply(&mut self) -> String {
        let mut text = String::new();
        loop {
            let mut line = String::new();
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return text,
                Ok(_) => {}
            }
            text.push_str(&line);
            if line.as_bytes().get(3) != Some(&b'-') {
                return text;
            }
        }
    }

    /// Sends a command line and asserts the reply starts with `prefix`.
    pub fn cmd(&mut self, line: &str, prefix: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        let r = self.reply();
        assert!(
            r.starts_with(prefix),
            "{line:?}: expected {prefix:?}, got {r:?}"
        );
        r
    }

    /// Whether the server has closed the connection.
    pub fn closed(&mut self) -> bool {
        let mut buf = [0u8; 1];
        matches!(self.reader.read(&mut buf), Ok(0))
    }
}
