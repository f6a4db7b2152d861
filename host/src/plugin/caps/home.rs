//! `postern:mta/home`: a file in the current recipient's mail home, read
//! only, during a deliver-stage call (a user's own rules, as procmail reads
//! `~/.procmailrc`).
//!
//! The user controls their home, so the file is opened the way Postfix's
//! local(8) treats `.forward`: a plain name directly in the home, never
//! through a symbolic link (`O_NOFOLLOW`), never a FIFO or device (opened
//! non-blocking, then it must be a regular file), owned by the user when
//! postern delivers as root, and at most [`MAX_HOME_FILE_BYTES`].

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};

use super::super::bindings::postern::mta::home::Host;
use super::super::state::HostState;
use super::super::types::HomeDir;
use crate::config::Capability;

/// The largest file a plugin may read from a mail home.
pub const MAX_HOME_FILE_BYTES: u64 = 256 * 1024;

/// Reads `name` from `home` under the rules above; `None` for anything else.
pub fn read_home_file(home: &HomeDir, name: &str) -> Option<String> {
    let plain = !name.is_empty()
        && name.len() <= 255
        && name != "."
        && name != ".."
        && !name.contains(['/', '\0']);
    if !plain {
        return None;
    }
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(home.path.join(name))
        .ok()?;
    let meta = file.metadata().ok()?;
    if !meta.is_file() || meta.len() > MAX_HOME_FILE_BYTES {
        return None;
    }
    if home.owner.is_some_and(|uid| meta.uid() != uid) {
        return None;
    }
    let mut bytes = Vec::new();
    (&mut file)
        .take(MAX_HOME_FILE_BYTES)
        .read_to_end(&mut bytes)
        .ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

impl Host for HostState {
    async fn read_file(&mut self, name: String) -> wasmtime::Result<Option<String>> {
        self.require(Capability::Home)?;
        let Some(home) = &self.home else {
            return Ok(None);
        };
        let text = read_home_file(home, &name);
        if text.is_none() {
            tracing::debug!(plugin = %self.guest().plugin, file = %name, home = %home.path.display(), "home file not read");
        }
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home(dir: &std::path::Path, owner: Option<u32>) -> HomeDir {
        HomeDir {
            path: dir.to_owned(),
            owner,
        }
    }

    #[test]
    fn reads_plain_files_and_nothing_else() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(".procmailrc"), ":0\n.Spam/\n").expect("write");
        std::fs::write(dir.path().join("secret"), "s").expect("write");
        std::os::unix::fs::symlink(dir.path().join("secret"), dir.path().join(".link"))
            .expect("symlink");
        std::fs::create_dir(dir.path().join(".dir")).expect("mkdir");
        let h = home(dir.path(), None);
        assert_eq!(
            read_home_file(&h, ".procmailrc").as_deref(),
            Some(":0\n.Spam/\n")
        );
        assert_eq!(
            read_home_file(&h, ".link"),
            None,
            "symlinks are not followed"
        );
        assert_eq!(read_home_file(&h, ".dir"), None);
        assert_eq!(read_home_file(&h, "../secret"), None);
        assert_eq!(read_home_file(&h, ".."), None);
        assert_eq!(read_home_file(&h, ""), None);
        assert_eq!(read_home_file(&h, "missing"), None);
        let big = vec![b'x'; MAX_HOME_FILE_BYTES as usize + 1];
        std::fs::write(dir.path().join("big"), big).expect("write");
        assert_eq!(read_home_file(&h, "big"), None);
    }

    #[test]
    fn a_file_of_another_owner_is_not_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("rules"), "x").expect("write");
        let mine = std::fs::metadata(dir.path()).expect("stat").uid();
        assert!(read_home_file(&home(dir.path(), Some(mine)), "rules").is_some());
        assert_eq!(
            read_home_file(&home(dir.path(), Some(mine.wrapping_add(1))), "rules"),
            None
        );
    }
}
