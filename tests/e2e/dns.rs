//! A real DNS server for tests: rbldnsd (Debian's package) on a free loopback
//! port, serving DNSBL zones the test writes.

use std::net::UdpSocket;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::harness::wait_for;

pub struct Rbldnsd {
    child: Child,
    pub port: u16,
    _work: tempfile::TempDir,
}

impl Rbldnsd {
    /// Serves `zones`: (zone name, ip4set file contents), e.g.
    /// `("zen.test", ":127.0.0.2:Listed, see https://zen.test/$\n127.0.0.1\n")`.
    pub fn start(zones: &[(&str, &str)]) -> Rbldnsd {
        let typed: Vec<_> = zones.iter().map(|(z, d)| (*z, "ip4set", *d)).collect();
        Self::start_typed(&typed)
    }

    /// Serves `zones`: (zone name, rbldnsd dataset type, data), e.g.
    /// `("example.test", "generic", "known A 192.0.2.1\n")`.
    pub fn start_typed(zones: &[(&str, &str, &str)]) -> Rbldnsd {
        // rbldnsd refuses to run as root and reads its zones as `nobody`:
        // the directory must be readable by that user.
        let tmp = tempfile::Builder::new()
            .prefix("postern-rbldnsd-")
            .tempdir()
            .expect("tempdir");
        let work = tmp.path().to_owned();
        std::fs::set_permissions(&work, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .expect("chmod");
        let mut specs = Vec::new();
        for (zone, kind, data) in zones {
            let file = format!("{zone}.{kind}");
            std::fs::write(work.join(&file), data).expect("zone file");
            specs.push(format!("{zone}:{kind}:{file}"));
        }
        let port = UdpSocket::bind("127.0.0.1:0")
            .and_then(|s| s.local_addr())
            .expect("free port")
            .port();
        let child = Command::new("rbldnsd")
            .args(["-n", "-u", "nobody", "-b"])
            .arg(format!("127.0.0.1/{port}"))
            .arg("-w")
            .arg(&work)
            .args(&specs)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("rbldnsd must be installed (apt-get install rbldnsd)");
        let server = Rbldnsd {
            child,
            port,
            _work: tmp,
        };
        let probe = zones
            .first()
            .map(|(z, _, _)| format!("2.0.0.127.{z}"))
            .unwrap_or_default();
        let up = wait_for(Duration::from_secs(10), || {
            answers(port, &probe).then_some(())
        });
        assert!(up.is_some(), "rbldnsd did not answer on port {port}");
        server
    }
}

impl Drop for Rbldnsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Whether a DNS server on `port` answers an A query for `name`.
fn answers(port: u16, name: &str) -> bool {
    let Ok(sock) = UdpSocket::bind("127.0.0.1:0") else {
        return false;
    };
    let _ = sock.set_read_timeout(Some(Duration::from_millis(200)));
    let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
    for label in name.split('.') {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    if sock.send_to(&q, ("127.0.0.1", port)).is_err() {
        return false;
    }
    let mut buf = [0u8; 512];
    matches!(sock.recv(&mut buf), Ok(n) if n >= 12 && buf[0] == 0x12 && buf[1] == 0x34)
}
