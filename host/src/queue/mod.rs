//! The queue: messages on disk between acceptance and delivery.
//!
//! # Layout on disk
//!
//! ```text
//! <data_directory>/queue/
//!   incoming/   being written by an SMTP session; never acknowledged; removed at startup
//!   active/     acknowledged (250 sent only after the rename here is fsynced);
//!               owned by the queue manager
//!   deferred/   waiting for a retry after a temporary failure
//!   hold/       kept until an operator releases it
//!   corrupt/    files that could not be read, set aside with a log line
//! ```
//!
//! A message is one file named by its [`QueueId`]; a state change is a rename.
//! Per-recipient outcomes are appended to the file as records ([`file`]), so a
//! recipient once recorded as delivered is never delivered again, even after a
//! crash. A message found in `active/` at startup was interrupted mid-delivery:
//! the queue manager re-checks each pending recipient's Maildir for the
//! delivery's unique name before delivering again (see [`crate::delivery`]).
//!
//! In: envelopes and content from sessions ([`Spool::enqueue`]). Out: messages
//! handed to [`crate::delivery`] by the [`manager`].

pub mod file;
mod id;
pub mod list;
pub mod manager;
mod spool;

pub use file::{Envelope, EnvelopeRcpt, QueueFile, RcptState};
pub use id::QueueId;
pub use spool::{Spool, SpoolError};

use std::path::{Path, PathBuf};

/// The queue's directories.
#[derive(Debug, Clone)]
pub struct QueueDirs {
    root: PathBuf,
}

/// A queue directory, named as on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueName {
    /// `incoming/`.
    Incoming,
    /// `active/`.
    Active,
    /// `deferred/`.
    Deferred,
    /// `hold/`.
    Hold,
    /// `corrupt/`.
    Corrupt,
}

impl QueueName {
    /// Every queue, in the order `mailq` lists them.
    pub const ALL: [QueueName; 5] = [
        QueueName::Incoming,
        QueueName::Active,
        QueueName::Deferred,
        QueueName::Hold,
        QueueName::Corrupt,
    ];

    /// The directory name.
    pub fn dir(self) -> &'static str {
        match self {
            QueueName::Incoming => "incoming",
            QueueName::Active => "active",
            QueueName::Deferred => "deferred",
            QueueName::Hold => "hold",
            QueueName::Corrupt => "corrupt",
        }
    }
}

impl QueueDirs {
    /// The queue below `root` (not created).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        QueueDirs { root: root.into() }
    }

    /// Creates every queue directory.
    pub fn create(&self) -> std::io::Result<()> {
        for q in QueueName::ALL {
            std::fs::create_dir_all(self.dir(q))?;
        }
        Ok(())
    }

    /// The directory of one queue.
    pub fn dir(&self, q: QueueName) -> PathBuf {
        self.root.join(q.dir())
    }

    /// The path of message `id` in queue `q`.
    pub fn path(&self, q: QueueName, id: &QueueId) -> PathBuf {
        self.root.join(q.dir()).join(id.as_str())
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Moves message `id` from one queue to another.
    pub fn rename(&self, id: &QueueId, from: QueueName, to: QueueName) -> std::io::Result<()> {
        std::fs::rename(self.path(from, id), self.path(to, id))
    }

    /// The ids in queue `q` (files whose names are valid queue ids).
    pub fn list(&self, q: QueueName) -> std::io::Result<Vec<QueueId>> {
        let mut ids = Vec::new();
        for entry in std::fs::read_dir(self.dir(q))? {
            let entry = entry?;
            if let Some(id) = entry.file_name().to_str().and_then(QueueId::parse) {
                ids.push(id);
            }
        }
        ids.sort();
        Ok(ids)
    }
}

/// fsyncs a directory, making renames and creations in it durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
