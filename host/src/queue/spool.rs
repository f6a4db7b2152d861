//! Enqueueing: the only door from an SMTP session into the queue.
//!
//! A message is written to `incoming/`, fsynced, renamed into `active/`, and
//! `active/` is fsynced; only then does [`Spool::enqueue`] return and the
//! session say 250. Directory fsyncs are shared: one committer thread syncs
//! `active/` once for every rename that happened before it started, so fifty
//! concurrent sessions pay for a handful of directory syncs, not fifty.

use std::io;
use std::sync::mpsc as std_mpsc;

use tokio::sync::{mpsc, oneshot};

use super::file::{self, Envelope};
use super::{QueueDirs, QueueId, QueueName, sync_dir};

/// Why a message could not be queued. The session answers 451 4.3.0.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// Writing or syncing the queue file failed.
    #[error("queue file write error: {0}")]
    Io(#[from] io::Error),
    /// The committer thread is gone (the server is stopping).
    #[error("queue is shutting down")]
    Closed,
}

type SyncWaiter = oneshot::Sender<Result<(), String>>;

/// The spool's writing side.
#[derive(Debug)]
pub struct Spool {
    dirs: QueueDirs,
    commit: std_mpsc::Sender<SyncWaiter>,
    arrivals: mpsc::UnboundedSender<QueueId>,
}

impl Spool {
    /// Opens the spool; every queued id is announced on `arrivals` (the queue manager).
    pub fn open(dirs: QueueDirs, arrivals: mpsc::UnboundedSender<QueueId>) -> io::Result<Spool> {
        dirs.create()?;
        let (commit, rx) = std_mpsc::channel::<SyncWaiter>();
        let active = dirs.dir(QueueName::Active);
        std::thread::Builder::new()
            .name("spool-commit".into())
            .spawn(move || {
                // Each round syncs once for every waiter queued before it began.
                while let Ok(first) = rx.recv() {
                    let mut waiters = vec![first];
                    waiters.extend(rx.try_iter());
                    let result = sync_dir(&active).map_err(|e| e.to_string());
                    for w in waiters {
                        let _ = w.send(result.clone());
                    }
                }
            })?;
        Ok(Spool {
            dirs,
            commit,
            arrivals,
        })
    }

    /// The queue directories.
    pub fn dirs(&self) -> &QueueDirs {
        &self.dirs
    }

    /// Makes the message durable in `active/` (or `hold/` when `hold`) and
    /// hands it to the queue manager. `prefix` is prepended to `body` (the
    /// `Received:` header).
    pub async fn enqueue(
        &self,
        id: QueueId,
        envelope: Envelope,
        prefix: Vec<u8>,
        body: Vec<u8>,
        hold: bool,
    ) -> Result<QueueId, SpoolError> {
        let dirs = self.dirs.clone();
        let id2 = id.clone();
        let target = if hold {
            QueueName::Hold
        } else {
            QueueName::Active
        };
        let written = tokio::task::spawn_blocking(move || -> io::Result<()> {
            let incoming = dirs.path(QueueName::Incoming, &id2);
            let result = file::write_new(&incoming, &id2, &envelope, &prefix, &body)
                .and_then(|()| dirs.rename(&id2, QueueName::Incoming, target));
            if result.is_err() {
                let _ = std::fs::remove_file(&incoming);
            }
            result
        })
        .await
        .map_err(|e| io::Error::other(e.to_string()))?;
        written?;

        if hold {
            sync_dir(&self.dirs.dir(QueueName::Hold))?;
            return Ok(id);
        }
        let (tx, rx) = oneshot::channel();
        self.commit.send(tx).map_err(|_| SpoolError::Closed)?;
        rx.await
            .map_err(|_| SpoolError::Closed)?
            .map_err(|e| SpoolError::Io(io::Error::other(e)))?;
        // The manager may be gone during shutdown; the file is safe in active/
        // and is picked up at the next start.
        let _ = self.arrivals.send(id.clone());
        Ok(id)
    }
}
