//! The queue file: one message, its envelope and its per-recipient outcomes.
//!
//! ```text
//! POSTERN-QUEUE 1
//! I <queue id>
//! T <arrival, unix seconds>
//! S <sender>                         (empty for the null sender)
//! P <MAIL FROM parameters>           SIZE= BODY= SMTPUTF8 RET= ENVID=
//! C <client ip or -> <helo or ->
//! R <notify or -> <orcpt or -> <address>      one per recipient, in order
//! L <content length>
//!                                    (empty line)
//! <content: CR LF line ends, no dot-stuffing>
//! D <rcpt index>                     delivered            } records appended
//! F <rcpt index> <reason>            failed for good      } after delivery
//! W <rcpt index> <reason>            deferred, last cause } attempts, each
//! N <next attempt, unix s> <count>   retry schedule       } batch fsynced
//! ```
//!
//! Records are only appended, each ending in LF; a torn last record (a crash
//! mid-write) has no LF and is ignored, which at worst repeats a delivery
//! attempt — and delivery checks the Maildir first when recovering. Anything
//! else that does not parse makes the whole file corrupt; the caller moves it
//! to `corrupt/`.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use crate::smtp::proto::{DsnNotify, DsnRet, MailParams};

use super::QueueId;

const MAGIC: &str = "POSTERN-QUEUE 1";

/// The envelope of a queued message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The reverse path; empty for `<>`.
    pub sender: String,
    /// `MAIL FROM` parameters.
    pub params: MailParams,
    /// The SMTP client's address.
    pub client_ip: Option<IpAddr>,
    /// What the client said in HELO/EHLO.
    pub helo: String,
    /// Arrival time, unix seconds.
    pub arrival: u64,
    /// The recipients, in the order they were accepted.
    pub recipients: Vec<EnvelopeRcpt>,
}

/// One envelope recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeRcpt {
    /// The address as given in RCPT TO.
    pub address: String,
    /// DSN `NOTIFY=`.
    pub notify: Option<DsnNotify>,
    /// DSN `ORCPT=`.
    pub orcpt: Option<String>,
}

/// Where one recipient stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RcptState {
    /// Not delivered yet; the last temporary failure, if any.
    Pending(Option<String>),
    /// Delivered; never attempted again.
    Delivered,
    /// Failed for good.
    Failed(String),
}

/// A queue file as read back.
#[derive(Debug, Clone)]
pub struct QueueFile {
    /// The message's id.
    pub id: QueueId,
    /// Its envelope.
    pub envelope: Envelope,
    /// The message content (headers and body, CR LF line ends), shared with
    /// the deliver stage's plugins rather than copied for each recipient.
    pub content: Arc<Vec<u8>>,
    /// One state per envelope recipient.
    pub rcpts: Vec<RcptState>,
    /// When the next attempt is due (unix seconds), once deferred.
    pub next_attempt: Option<u64>,
    /// Delivery attempts so far.
    pub attempts: u32,
}

/// Why a queue file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The file system failed (the file may be fine).
    #[error("read error: {0}")]
    Io(#[from] io::Error),
    /// The file is damaged; it belongs in `corrupt/`.
    #[error("corrupt queue file: {0}")]
    Corrupt(&'static str),
}

/// Writes a new queue file at `path` and fsyncs it. `prefix` (the `Received:`
/// header) and `body` together are the content.
pub fn write_new(
    path: &Path,
    id: &QueueId,
    env: &Envelope,
    prefix: &[u8],
    body: &[u8],
) -> io::Result<()> {
    let mut head = String::with_capacity(256);
    head.push_str(MAGIC);
    head.push('\n');
    head.push_str(&format!("I {id}\nT {}\nS {}\n", env.arrival, env.sender));
    head.push_str(&format!("P {}\n", params_text(&env.params)));
    let ip = env
        .client_ip
        .map_or_else(|| "-".to_owned(), |ip| ip.to_string());
    let helo = if env.helo.is_empty() { "-" } else { &env.helo };
    head.push_str(&format!("C {ip} {helo}\n"));
    for r in &env.recipients {
        let notify = r.notify.map_or_else(|| "-".to_owned(), |n| n.keywords());
        let orcpt = r.orcpt.as_deref().unwrap_or("-");
        head.push_str(&format!("R {notify} {orcpt} {}\n", r.address));
    }
    head.push_str(&format!("L {}\n\n", prefix.len() + body.len()));

    let mut f = OpenOptions::new().write(true).create_new(true).open(path)?;
    f.write_all(head.as_bytes())?;
    f.write_all(prefix)?;
    f.write_all(body)?;
    f.sync_data()?;
    Ok(())
}

/// Appends outcome records (each ending in LF) and fsyncs them.
pub fn append_records(path: &Path, records: &str) -> io::Result<()> {
    let mut f = OpenOptions::new().append(true).open(path)?;
    f.write_all(records.as_bytes())?;
    f.sync_data()
}

fn params_text(p: &MailParams) -> String {
    let mut words = Vec::new();
    if let Some(s) = p.size {
        words.push(format!("SIZE={s}"));
    }
    if let Some(b) = p.body_8bit {
        words.push(if b { "BODY=8BITMIME" } else { "BODY=7BIT" }.to_owned());
    }
    if p.smtputf8 {
        words.push("SMTPUTF8".to_owned());
    }
    if let Some(r) = p.ret {
        words.push(
            if r == DsnRet::Full {
                "RET=FULL"
            } else {
                "RET=HDRS"
            }
            .to_owned(),
        );
    }
    if let Some(e) = &p.envid {
        words.push(format!("ENVID={e}"));
    }
    words.join(" ")
}

fn parse_params(s: &str) -> Option<MailParams> {
    let mut p = MailParams::default();
    for w in s.split_whitespace() {
        match w.split_once('=') {
            Some(("SIZE", v)) => p.size = Some(v.parse().ok()?),
            Some(("BODY", v)) => p.body_8bit = Some(v == "8BITMIME"),
            Some(("RET", v)) => {
                p.ret = Some(if v == "FULL" {
                    DsnRet::Full
                } else {
                    DsnRet::Hdrs
                })
            }
            Some(("ENVID", v)) => p.envid = Some(v.to_owned()),
            None if w == "SMTPUTF8" => p.smtputf8 = true,
            _ => return None,
        }
    }
    Some(p)
}

impl QueueFile {
    /// Reads and parses a queue file.
    pub fn read(path: &Path) -> Result<QueueFile, ReadError> {
        let mut bytes = Vec::new();
        File::open(path)?.read_to_end(&mut bytes)?;
        Self::parse(&bytes)
    }

    /// Parses the bytes of a queue file.
    pub fn parse(bytes: &[u8]) -> Result<QueueFile, ReadError> {
        use ReadError::Corrupt;
        let mut pos = 0;
        let next_line = |pos: &mut usize| -> Result<&str, ReadError> {
            let rest = &bytes[*pos..];
            let end = rest
                .iter()
                .position(|&b| b == b'\n')
                .ok_or(Corrupt("truncated header"))?;
            *pos += end + 1;
            std::str::from_utf8(&rest[..end]).map_err(|_| Corrupt("header is not UTF-8"))
        };
        if next_line(&mut pos)? != MAGIC {
            return Err(Corrupt("not a postern queue file"));
        }
        let field = |line: &str, tag: char| -> Result<String, ReadError> {
            line.strip_prefix(tag)
                .and_then(|l| l.strip_prefix(' '))
                .map(str::to_owned)
                .ok_or(Corrupt("unexpected header line"))
        };
        let id =
            QueueId::parse(&field(next_line(&mut pos)?, 'I')?).ok_or(Corrupt("bad queue id"))?;
        let arrival = field(next_line(&mut pos)?, 'T')?
            .parse()
            .map_err(|_| Corrupt("bad arrival time"))?;
        let sender = field(next_line(&mut pos)?, 'S')?;
        let params =
            parse_params(&field(next_line(&mut pos)?, 'P')?).ok_or(Corrupt("bad parameters"))?;
        let client = field(next_line(&mut pos)?, 'C')?;
        let (ip, helo) = client.split_once(' ').ok_or(Corrupt("bad client line"))?;
        let client_ip = if ip == "-" {
            None
        } else {
            Some(ip.parse().map_err(|_| Corrupt("bad client address"))?)
        };
        let helo = if helo == "-" {
            String::new()
        } else {
            helo.to_owned()
        };
        let mut recipients = Vec::new();
        let len: usize = loop {
            let line = next_line(&mut pos)?;
            if let Some(len) = line.strip_prefix("L ") {
                break len.parse().map_err(|_| Corrupt("bad content length"))?;
            }
            let r = field(line, 'R')?;
            let mut parts = r.splitn(3, ' ');
            let (Some(notify), Some(orcpt), Some(address)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(Corrupt("bad recipient line"));
            };
            recipients.push(EnvelopeRcpt {
                address: address.to_owned(),
                notify: if notify == "-" {
                    None
                } else {
                    Some(DsnNotify::parse(notify).ok_or(Corrupt("bad NOTIFY"))?)
                },
                orcpt: (orcpt != "-").then(|| orcpt.to_owned()),
            });
        };
        if !next_line(&mut pos)?.is_empty() || recipients.is_empty() {
            return Err(Corrupt("bad header end"));
        }
        let content = bytes
            .get(pos..pos + len)
            .ok_or(Corrupt("content truncated"))?
            .to_vec()
            .into();
        pos += len;

        let mut rcpts = vec![RcptState::Pending(None); recipients.len()];
        let mut next_attempt = None;
        let mut attempts = 0;
        let mut trailer = &bytes[pos..];
        // Only complete records count: a torn last record (no LF) is ignored.
        while let Some(end) = trailer.iter().position(|&b| b == b'\n') {
            let line =
                std::str::from_utf8(&trailer[..end]).map_err(|_| Corrupt("record is not UTF-8"))?;
            trailer = &trailer[end + 1..];
            let mut parts = line.splitn(3, ' ');
            let tag = parts.next().unwrap_or("");
            let a = parts.next().ok_or(Corrupt("bad record"))?;
            let b = parts.next();
            if tag == "N" {
                next_attempt = Some(a.parse().map_err(|_| Corrupt("bad schedule record"))?);
                attempts = b
                    .and_then(|b| b.parse().ok())
                    .ok_or(Corrupt("bad schedule record"))?;
                continue;
            }
            let idx: usize = a.parse().map_err(|_| Corrupt("bad record index"))?;
            let slot = rcpts
                .get_mut(idx)
                .ok_or(Corrupt("record index out of range"))?;
            let reason = b.unwrap_or("").to_owned();
            match (tag, &slot) {
                // A final state is final: nothing later overrides it.
                (_, RcptState::Delivered | RcptState::Failed(_)) => {}
                ("D", _) => *slot = RcptState::Delivered,
                ("F", _) => *slot = RcptState::Failed(reason),
                ("W", _) => *slot = RcptState::Pending(Some(reason)),
                _ => return Err(Corrupt("unknown record")),
            }
        }
        Ok(QueueFile {
            id,
            envelope: Envelope {
                sender,
                params,
                client_ip,
                helo,
                arrival,
                recipients,
            },
            content,
            rcpts,
            next_attempt,
            attempts,
        })
    }

    /// Whether every recipient is delivered or failed.
    pub fn is_finished(&self) -> bool {
        self.rcpts
            .iter()
            .all(|r| !matches!(r, RcptState::Pending(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope() -> Envelope {
        Envelope {
            sender: "s@example.org".into(),
            params: MailParams {
                size: Some(12),
                body_8bit: Some(true),
                smtputf8: false,
                ret: Some(DsnRet::Hdrs),
                envid: Some("X+2B".into()),
            },
            client_ip: Some("127.0.0.1".parse().expect("ip")),
            helo: "client.example".into(),
            arrival: 1_700_000_000,
            recipients: vec![
                EnvelopeRcpt {
                    address: "a@localhost".into(),
                    notify: None,
                    orcpt: None,
                },
                EnvelopeRcpt {
                    address: "\"b c\"@localhost".into(),
                    notify: DsnNotify::parse("FAILURE"),
                    orcpt: Some("rfc822;b@x".into()),
                },
            ],
        }
    }

    #[test]
    fn round_trip_with_records() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("q");
        let id = QueueId::generate();
        write_new(
            &path,
            &id,
            &envelope(),
            b"Received: x\r\n",
            b"Subject: t\r\n\r\nhi\r\n",
        )
        .expect("write");
        let q = QueueFile::read(&path).expect("read");
        assert_eq!(q.id, id);
        assert_eq!(q.envelope, envelope());
        assert_eq!(*q.content, b"Received: x\r\nSubject: t\r\n\r\nhi\r\n");
        assert_eq!(q.rcpts, vec![RcptState::Pending(None); 2]);

        append_records(&path, "D 0\nW 1 4.2.0 mailbox busy\nN 1700000300 1\n").expect("append");
        let q = QueueFile::read(&path).expect("read");
        assert_eq!(q.rcpts[0], RcptState::Delivered);
        assert_eq!(
            q.rcpts[1],
            RcptState::Pending(Some("4.2.0 mailbox busy".into()))
        );
        assert_eq!((q.next_attempt, q.attempts), (Some(1_700_000_300), 1));
        assert!(!q.is_finished());

        // A torn record is ignored; a delivered recipient stays delivered.
        append_records(&path, "W 0 late\nF 1 5.1.1 gone\nD 1").expect("append");
        let q = QueueFile::read(&path).expect("read");
        assert_eq!(q.rcpts[0], RcptState::Delivered);
        assert_eq!(q.rcpts[1], RcptState::Failed("5.1.1 gone".into()));
        assert!(q.is_finished());
    }

    #[test]
    fn damage_is_reported_as_corrupt() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("q");
        write_new(&path, &QueueId::generate(), &envelope(), b"", b"body\r\n").expect("write");
        let good = std::fs::read(&path).expect("read");
        for cut in [5, 20, good.len() - 3] {
            assert!(
                matches!(QueueFile::parse(&good[..cut]), Err(ReadError::Corrupt(_))),
                "cut {cut}"
            );
        }
        let mut bad = good.clone();
        bad.extend_from_slice(b"D 7\n");
        assert!(matches!(QueueFile::parse(&bad), Err(ReadError::Corrupt(_))));
        assert!(matches!(
            QueueFile::parse(b"garbage\n"),
            Err(ReadError::Corrupt(_))
        ));
    }
}
