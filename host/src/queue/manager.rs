//! The queue manager: one actor that owns `active/` and `deferred/` and hands
//! messages to delivery with bounded concurrency (Postfix's qmgr).
//!
//! In: queue ids from the spool (new arrivals), the deferred queue's schedule,
//! and at startup whatever a previous run left behind. Out: delivery attempts
//! on blocking threads, and the files' next state — removed when every
//! recipient is final, otherwise moved to `deferred/` with its retry time.
//!
//! Retries back off like Postfix: `minimal_backoff_time`, doubling per attempt,
//! capped at `maximal_backoff_time`; a message older than
//! `maximal_queue_lifetime` fails its remaining recipients.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use crate::config::Config;
use crate::delivery::{DeliveryOutcome, LocalDelivery};

use super::file::{self, QueueFile, RcptState, ReadError};
use super::{QueueDirs, QueueId, QueueName};

/// Scheduling settings, from the configuration.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Most deliveries at once.
    pub concurrency: usize,
    /// First retry delay.
    pub minimal_backoff: Duration,
    /// Largest retry delay.
    pub maximal_backoff: Duration,
    /// How often `deferred/` is rescanned for files that appeared behind our back.
    pub queue_run_delay: Duration,
    /// How long a message may stay queued.
    pub maximal_lifetime: Duration,
}

impl Schedule {
    /// The schedule a configuration asks for.
    pub fn from_config(cfg: &Config) -> Self {
        Schedule {
            concurrency: cfg.default_destination_concurrency_limit,
            minimal_backoff: cfg.minimal_backoff_time,
            maximal_backoff: cfg.maximal_backoff_time,
            queue_run_delay: cfg.queue_run_delay,
            maximal_lifetime: cfg.maximal_queue_lifetime,
        }
    }

    /// The delay before attempt `attempts + 1`.
    fn backoff(&self, attempts: u32) -> Duration {
        let factor = 1u32
            .checked_shl(attempts.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.minimal_backoff
            .saturating_mul(factor)
            .min(self.maximal_backoff)
    }
}

/// What became of a message after one pass.
#[derive(Debug)]
enum Disposition {
    /// Every recipient is final; the file is gone.
    Done,
    /// Some recipients remain; the file is in `deferred/` until `due`.
    Deferred { due: u64 },
    /// The file was damaged and moved to `corrupt/`.
    Corrupt,
    /// The file could not be handled now (I/O error); try again later.
    Retry,
}

/// The queue manager actor.
pub struct QueueManager {
    dirs: QueueDirs,
    agent: Arc<LocalDelivery>,
    schedule: Schedule,
    arrivals: mpsc::UnboundedReceiver<QueueId>,
    ready: VecDeque<(QueueId, bool)>,
    deferred: BinaryHeap<Reverse<(u64, QueueId)>>,
    /// Ids the manager has in hand (ready, in flight or scheduled).
    known: HashSet<QueueId>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl QueueManager {
    /// A manager over `dirs`, fed by the spool through `arrivals`.
    pub fn new(
        dirs: QueueDirs,
        agent: LocalDelivery,
        schedule: Schedule,
        arrivals: mpsc::UnboundedReceiver<QueueId>,
    ) -> Self {
        QueueManager {
            dirs,
            agent: Arc::new(agent),
            schedule,
            arrivals,
            ready: VecDeque::new(),
            deferred: BinaryHeap::new(),
            known: HashSet::new(),
        }
    }

    /// Startup recovery: drops unacknowledged files in `incoming/`, queues
    /// everything in `active/` for a checked redelivery, and schedules
    /// `deferred/`. Call before any session can enqueue.
    pub fn recover(&mut self) -> std::io::Result<()> {
        for id in self.dirs.list(QueueName::Incoming)? {
            tracing::info!(queue_id = %id, "removing unfinished incoming file (never acknowledged)");
            std::fs::remove_file(self.dirs.path(QueueName::Incoming, &id))?;
        }
        for id in self.dirs.list(QueueName::Active)? {
            tracing::info!(queue_id = %id, "recovering message interrupted in the active queue");
            self.known.insert(id.clone());
            self.ready.push_back((id, true));
        }
        self.scan_deferred();
        Ok(())
    }

    /// Schedules files in `deferred/` that the manager does not know yet.
    fn scan_deferred(&mut self) {
        let ids = match self.dirs.list(QueueName::Deferred) {
            Ok(ids) => ids,
            Err(e) => {
                tracing::warn!("cannot list the deferred queue: {e}");
                return;
            }
        };
        for id in ids {
            if self.known.contains(&id) {
                continue;
            }
            let path = self.dirs.path(QueueName::Deferred, &id);
            match QueueFile::read(&path) {
                Ok(q) => {
                    self.known.insert(id.clone());
                    self.deferred
                        .push(Reverse((q.next_attempt.unwrap_or(0), id)));
                }
                Err(ReadError::Corrupt(why)) => {
                    quarantine(&self.dirs, &id, QueueName::Deferred, why)
                }
                Err(e) => tracing::warn!(queue_id = %id, "cannot read deferred message: {e}"),
            }
        }
    }

    /// Runs until `shutdown` turns true, then waits for deliveries in flight.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut in_flight: JoinSet<(QueueId, Disposition)> = JoinSet::new();
        let mut rescan = tokio::time::interval(self.schedule.queue_run_delay);
        rescan.tick().await;
        loop {
            while in_flight.len() < self.schedule.concurrency {
                let Some((id, recovering)) = self.ready.pop_front() else {
                    break;
                };
                let dirs = self.dirs.clone();
                let agent = self.agent.clone();
                let schedule = self.schedule.clone();
                in_flight.spawn_blocking(move || {
                    let d = process(&dirs, &agent, &schedule, &id, recovering);
                    (id, d)
                });
            }
            let next_due = self.deferred.peek().map(|Reverse((due, _))| *due);
            let sleep = next_due.map_or(Duration::from_secs(3600), |due| {
                Duration::from_secs(due.saturating_sub(now_secs()))
            });
            tokio::select! {
                _ = shutdown.changed() => break,
                Some(id) = self.arrivals.recv() => {
                    self.admit(id);
                    while let Ok(id) = self.arrivals.try_recv() {
                        self.admit(id);
                    }
                }
                Some(joined) = in_flight.join_next(), if !in_flight.is_empty() => {
                    self.finished(joined);
                }
                _ = tokio::time::sleep(sleep), if next_due.is_some() => self.release_due(),
                _ = rescan.tick() => self.scan_deferred(),
            }
        }
        tracing::info!(in_flight = in_flight.len(), "queue manager stopping");
        while let Some(joined) = in_flight.join_next().await {
            self.finished(joined);
        }
    }

    fn admit(&mut self, id: QueueId) {
        if self.known.insert(id.clone()) {
            self.ready.push_back((id, false));
        }
    }

    fn finished(&mut self, joined: Result<(QueueId, Disposition), tokio::task::JoinError>) {
        let Ok((id, disposition)) = joined else {
            tracing::error!("a delivery task failed: {joined:?}");
            return;
        };
        match disposition {
            Disposition::Done | Disposition::Corrupt => {
                self.known.remove(&id);
            }
            Disposition::Deferred { due } => self.deferred.push(Reverse((due, id))),
            Disposition::Retry => {
                let due = now_secs() + self.schedule.minimal_backoff.as_secs().max(1);
                // Still in active/: move it aside so a restart does not treat it as interrupted.
                match self
                    .dirs
                    .rename(&id, QueueName::Active, QueueName::Deferred)
                {
                    Ok(()) => self.deferred.push(Reverse((due, id))),
                    Err(e) => {
                        tracing::warn!(queue_id = %id, "cannot defer: {e}");
                        self.known.remove(&id);
                    }
                }
            }
        }
    }

    /// Moves every due message from `deferred/` back to `active/`.
    fn release_due(&mut self) {
        let now = now_secs();
        while let Some(Reverse((due, _))) = self.deferred.peek() {
            if *due > now {
                break;
            }
            let Some(Reverse((_, id))) = self.deferred.pop() else {
                break;
            };
            match self
                .dirs
                .rename(&id, QueueName::Deferred, QueueName::Active)
            {
                Ok(()) => self.ready.push_back((id, false)),
                Err(e) => {
                    // Removed or held by an operator meanwhile.
                    tracing::debug!(queue_id = %id, "deferred message gone: {e}");
                    self.known.remove(&id);
                }
            }
        }
    }
}

/// Moves a damaged file to `corrupt/`, with a log line.
fn quarantine(dirs: &QueueDirs, id: &QueueId, from: QueueName, why: &str) {
    tracing::error!(queue_id = %id, "{why}; moved to the corrupt queue");
    if let Err(e) = dirs.rename(id, from, QueueName::Corrupt) {
        tracing::error!(queue_id = %id, "cannot move to the corrupt queue: {e}");
    }
}

/// One delivery pass over one message in `active/` (on a blocking thread).
fn process(
    dirs: &QueueDirs,
    agent: &LocalDelivery,
    schedule: &Schedule,
    id: &QueueId,
    recovering: bool,
) -> Disposition {
    // Taken first, so that it never outlives this attempt.
    let mut handed = agent.handed_over(id.as_str());
    let path = dirs.path(QueueName::Active, id);
    let mut msg = match QueueFile::read(&path) {
        Ok(m) => m,
        Err(ReadError::Corrupt(why)) => {
            quarantine(dirs, id, QueueName::Active, why);
            return Disposition::Corrupt;
        }
        Err(e) => {
            tracing::warn!(queue_id = %id, "{e}");
            return Disposition::Retry;
        }
    };
    let now = now_secs();
    let expired = now.saturating_sub(msg.envelope.arrival) > schedule.maximal_lifetime.as_secs();
    let delay = now.saturating_sub(msg.envelope.arrival);
    let mut records = String::new();
    for idx in 0..msg.rcpts.len() {
        if !matches!(msg.rcpts[idx], RcptState::Pending(_)) {
            continue;
        }
        let rcpt = &msg.envelope.recipients[idx].address;
        let outcome = if expired {
            let last = match &msg.rcpts[idx] {
                RcptState::Pending(Some(why)) => why.clone(),
                _ => String::new(),
            };
            DeliveryOutcome::PermFail(format!("4.4.7 message expired in queue ({last})"))
        } else {
            agent.deliver(&msg, idx, recovering, &mut handed)
        };
        let (status, dsn_text) = match &outcome {
            DeliveryOutcome::Delivered(where_) => {
                records.push_str(&format!("D {idx}\n"));
                msg.rcpts[idx] = RcptState::Delivered;
                ("sent", format!("2.0.0 {where_}"))
            }
            DeliveryOutcome::TempFail(why) => {
                records.push_str(&format!("W {idx} {}\n", one_line(why)));
                msg.rcpts[idx] = RcptState::Pending(Some(why.clone()));
                ("deferred", why.clone())
            }
            DeliveryOutcome::PermFail(why) => {
                records.push_str(&format!("F {idx} {}\n", one_line(why)));
                msg.rcpts[idx] = RcptState::Failed(why.clone());
                ("bounced", why.clone())
            }
        };
        tracing::info!(
            "{id}: to=<{rcpt}>, relay=local, delay={delay}, status={status} ({dsn_text})"
        );
    }

    if msg.is_finished() {
        // Nothing more to remember: the records need not be written. Should the
        // unlink be lost in a crash, recovery finds the deliveries in the Maildirs.
        return match std::fs::remove_file(&path) {
            Ok(()) => {
                tracing::info!("{id}: removed");
                Disposition::Done
            }
            Err(e) => {
                tracing::warn!(queue_id = %id, "cannot remove finished message: {e}");
                // Keep the outcomes, so that the retry delivers nobody twice.
                let _ = file::append_records(&path, &records);
                Disposition::Retry
            }
        };
    }
    let attempts = msg.attempts + 1;
    let due = now + schedule.backoff(attempts).as_secs();
    records.push_str(&format!("N {due} {attempts}\n"));
    // Outcomes are durable before the move, so a delivered recipient is never retried.
    if let Err(e) = file::append_records(&path, &records) {
        tracing::warn!(queue_id = %id, "cannot record delivery status: {e}");
        return Disposition::Retry;
    }
    match dirs.rename(id, QueueName::Active, QueueName::Deferred) {
        Ok(()) => Disposition::Deferred { due },
        Err(e) => {
            tracing::warn!(queue_id = %id, "cannot move to deferred: {e}");
            Disposition::Retry
        }
    }
}

/// Reasons are stored one per record line.
fn one_line(s: &str) -> String {
    s.replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        let s = Schedule {
            concurrency: 1,
            minimal_backoff: Duration::from_secs(300),
            maximal_backoff: Duration::from_secs(4000),
            queue_run_delay: Duration::from_secs(300),
            maximal_lifetime: Duration::from_secs(86400),
        };
        let delays: Vec<u64> = (1..=6).map(|n| s.backoff(n).as_secs()).collect();
        assert_eq!(delays, [300, 600, 1200, 2400, 4000, 4000]);
    }
}
