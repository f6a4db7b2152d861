//! Maildir writing (the Maildir spec: unique name in `tmp/`, fsync, rename into
//! `new/`), plus the look-up that makes recovered deliveries exactly-once.
//!
//! Files are written with LF line ends, as Maildir readers expect; the queue
//! keeps CR LF. `new/` is fsynced after the rename so that a delivery is
//! durable before the queue forgets the recipient.

use std::fs::{self, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

/// Who owns what delivery creates: a user's uid and gid, when postern runs as
/// root and delivers into system users' homes (`mail_home = passwd`).
pub type Owner = Option<(u32, u32)>;

/// Creates `dir/{tmp,new,cur}` when missing, syncing each new directory's parent.
pub fn ensure(dir: &Path, owner: Owner) -> io::Result<()> {
    if dir.join("new").is_dir() && dir.join("tmp").is_dir() && dir.join("cur").is_dir() {
        return Ok(());
    }
    create_dir_durable(dir, owner)?;
    for sub in ["tmp", "new", "cur"] {
        create_dir_durable(&dir.join(sub), owner)?;
    }
    // Maildir++: a folder is marked as one.
    if dir
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
    {
        let marker = dir.join("maildirfolder");
        if !marker.exists() {
            fs::write(&marker, b"")?;
            chown(&marker, owner)?;
        }
    }
    Ok(())
}

fn create_dir_durable(dir: &Path, owner: Owner) -> io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent() {
        create_dir_durable(parent, owner)?;
    }
    match fs::create_dir(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
        Err(e) => return Err(e),
    }
    chown(dir, owner)?;
    if let Some(parent) = dir.parent() {
        crate::queue::sync_dir(parent)?;
    }
    Ok(())
}

fn chown(path: &Path, owner: Owner) -> io::Result<()> {
    match owner {
        Some((uid, gid)) => std::os::unix::fs::chown(path, Some(uid), Some(gid)),
        None => Ok(()),
    }
}

/// The part of a Maildir file name that identifies one delivery of one
/// recipient of one queued message.
pub fn delivery_key(queue_id: &str, rcpt_index: usize) -> String {
    format!("Q{queue_id}R{rcpt_index}")
}

/// Whether a file carrying `key` is already in `new/` or `cur/` of the
/// Maildir or of one of its Maildir++ folders (`.Name/`).
pub fn already_delivered(dir: &Path, key: &str) -> io::Result<bool> {
    let mut maildirs = vec![dir.to_owned()];
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().starts_with('.') && e.path().is_dir() {
                maildirs.push(e.path());
            }
        }
    }
    for md in maildirs {
        if in_maildir(&md, key)? {
            return Ok(true);
        }
    }
    Ok(false)
}

fn in_maildir(dir: &Path, key: &str) -> io::Result<bool> {
    let needle = format!("{key}.");
    for sub in ["new", "cur"] {
        let entries = match fs::read_dir(dir.join(sub)) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in entries {
            if entry?.file_name().to_string_lossy().contains(&needle) {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// Delivers one message: `prefix` (already LF-terminated header lines) then
/// `content` (CR LF line ends, converted to LF). Returns the final path.
pub fn deliver(
    dir: &Path,
    key: &str,
    hostname: &str,
    owner: Owner,
    prefix: &[u8],
    content: &[u8],
) -> io::Result<PathBuf> {
    ensure(dir, owner)?;
    let name = unique_name(key, hostname);
    let tmp = dir.join("tmp").join(&name);
    let result = (|| {
        let file = OpenOptions::new().write(true).create_new(true).open(&tmp)?;
        let mut w = BufWriter::with_capacity(64 * 1024, file);
        w.write_all(prefix)?;
        write_lf(&mut w, content)?;
        let file = w.into_inner().map_err(|e| e.into_error())?;
        chown(&tmp, owner)?;
        file.sync_all()?;
        let new = dir.join("new").join(&name);
        fs::rename(&tmp, &new)?;
        crate::queue::sync_dir(&dir.join("new"))?;
        Ok(new)
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// `time.MusecPpidQidRn_Vseq.host`: unique per the Maildir spec, and carrying
/// the delivery key.
fn unique_name(key: &str, hostname: &str) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    // The spec: '/' and ':' in the host name are written as octal escapes.
    let host = hostname.replace('/', "\\057").replace(':', "\\072");
    format!(
        "{}.M{}P{}N{seq}{key}.{host}",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id()
    )
}

/// Writes `content` with every CR LF turned into LF (bare CRs stay).
fn write_lf(w: &mut impl Write, content: &[u8]) -> io::Result<()> {
    let mut start = 0;
    let mut i = 0;
    while i + 1 < content.len() {
        if content[i] == b'\r' && content[i + 1] == b'\n' {
            w.write_all(&content[start..i])?;
            start = i + 1;
            i += 2;
        } else {
            i += 1;
        }
    }
    w.write_all(&content[start..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivers_into_new_with_lf_and_finds_it_again() {
        let dir = tempfile::tempdir().expect("tempdir");
        let md = dir.path().join("u/Maildir");
        let key = delivery_key("0123456789ABCDEF", 2);
        assert!(!already_delivered(&md, &key).expect("scan"));
        let path = deliver(
            &md,
            &key,
            "mx.example",
            None,
            b"Return-Path: <a@b>\n",
            b"Subject: x\r\n\r\nbody\rx\r\n",
        )
        .expect("deliver");
        assert_eq!(path.parent(), Some(md.join("new").as_path()));
        assert_eq!(
            fs::read(&path).expect("read"),
            b"Return-Path: <a@b>\nSubject: x\n\nbody\rx\n"
        );
        assert!(fs::read_dir(md.join("tmp")).expect("tmp").next().is_none());
        assert!(already_delivered(&md, &key).expect("scan"));
        assert!(!already_delivered(&md, &delivery_key("0123456789ABCDEF", 1)).expect("scan"));
        assert!(!already_delivered(&md, &delivery_key("0123456789ABCDEF", 22)).expect("scan"));
        // A reader moving it to cur/ with flags does not hide it.
        let cur = md.join("cur").join(format!(
            "{}:2,S",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("")
        ));
        fs::rename(&path, cur).expect("move");
        assert!(already_delivered(&md, &key).expect("scan"));
    }

    #[test]
    fn files_belong_to_the_user_when_running_as_root() {
        use std::os::unix::fs::MetadataExt;
        if fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(1) != 0 {
            return; // chown needs root; CI runs as root.
        }
        let dir = tempfile::tempdir().expect("tempdir");
        let md = dir.path().join("home/Maildir");
        let path = deliver(&md, "Q1R0", "h", Some((65534, 65534)), b"", b"x\r\n").expect("deliver");
        for p in [
            path.as_path(),
            md.as_path(),
            &md.join("new"),
            &md.join("cur"),
            &md.join("tmp"),
        ] {
            let m = fs::metadata(p).expect("stat");
            assert_eq!((m.uid(), m.gid()), (65534, 65534), "{}", p.display());
        }
    }
}
