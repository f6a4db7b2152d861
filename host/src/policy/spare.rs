//! Plugin instances made ahead and reset behind, while a CPU would idle.
//!
//! A transaction's plugin instances are created before its first chain runs
//! and reset (their memory restored to the image) when it ends: together
//! about as much CPU as the chain's calls. No client needs to wait for
//! either. A housekeeper thread in Linux's idle scheduling class
//! (`SCHED_IDLE`: it runs only when a CPU has nothing else to run) keeps a
//! few transactions with the SMTP chains' plugins instantiated, ready for
//! the next sessions ([`Policy::spare`]), and drops the instances of
//! finished transactions (a [`PolicyTxn`] of the policy hands them over when
//! it is dropped, wherever that is).
//!
//! Under full load it gets next to no CPU: the spares run out and its queue
//! fills, and sessions create and drop their instances themselves, as they
//! do without it. Spares of a policy that a reload replaced are never used.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use crate::config::Stage;
use crate::plugin::Instances;

use super::{Policy, PolicyTxn};

/// The stages of an SMTP transaction, whose plugins a spare has instantiated.
pub const SMTP_STAGES: [Stage; 5] = [
    Stage::Connect,
    Stage::Helo,
    Stage::Mail,
    Stage::Rcpt,
    Stage::Data,
];

/// Transactions kept ready.
const SPARES: usize = 4;

/// Finished transactions waiting to be dropped, at most; beyond, the caller
/// drops its own.
const RETIRING: usize = 64;

/// Work for the housekeeper.
enum Chore {
    Retire(Instances),
    Refill,
}

/// Where a transaction's instances go when it ends: the housekeeper's queue.
#[derive(Clone)]
pub(super) struct RetireTo(SyncSender<Chore>);

impl std::fmt::Debug for RetireTo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RetireTo")
    }
}

impl RetireTo {
    /// Hands `instances` to the housekeeper; when its queue is full (or it
    /// is gone), they are dropped here.
    pub(super) fn retire(&self, instances: Instances) {
        let _ = self.0.try_send(Chore::Retire(instances));
    }
}

/// The spares and the housekeeper's queue (none until it starts).
#[derive(Default)]
pub(super) struct Spares {
    ready: Mutex<Vec<PolicyTxn>>,
    chores: OnceLock<SyncSender<Chore>>,
    refill_asked: AtomicBool,
}

impl Policy {
    /// Starts the housekeeper thread; `runtime` drives the plugins' async
    /// instantiation. Without it (tests, tools), sessions create and drop
    /// their own instances.
    pub fn start_housekeeper(
        self: &Arc<Self>,
        runtime: tokio::runtime::Handle,
    ) -> std::io::Result<()> {
        let (tx, rx) = std::sync::mpsc::sync_channel(RETIRING);
        if self.spares.chores.set(tx).is_err() {
            return Ok(());
        }
        let policy = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("plugin-housekeeper".into())
            .spawn(move || housekeep(&policy, &rx, &runtime))?;
        self.ask_refill();
        Ok(())
    }

    /// A transaction of the current policy whose SMTP plugins are already
    /// instantiated, if one is ready.
    pub fn spare(&self) -> Option<PolicyTxn> {
        self.spares.chores.get()?;
        // Never waits: the housekeeper may hold the lock, and wait for a CPU.
        let taken = self.spares.ready.try_lock().ok()?.pop();
        self.ask_refill();
        // A stale spare ends here: its instances go back to the housekeeper.
        taken.filter(|txn| txn.is_current(self))
    }

    /// The housekeeper's queue, for a new transaction (none until it starts).
    pub(super) fn retire_to(&self) -> Option<RetireTo> {
        self.spares.chores.get().cloned().map(RetireTo)
    }

    pub(super) fn ask_refill(&self) {
        if let Some(chores) = self.spares.chores.get()
            && !self.spares.refill_asked.swap(true, Ordering::AcqRel)
            && chores.try_send(Chore::Refill).is_err()
        {
            self.spares.refill_asked.store(false, Ordering::Release);
        }
    }

    /// Makes spares until there are [`SPARES`] of the current policy, and
    /// drops those of a replaced one.
    fn refill(&self, runtime: &tokio::runtime::Handle) {
        self.spares.refill_asked.store(false, Ordering::Release);
        let wanted = self.has_any_chain(&SMTP_STAGES);
        loop {
            let (stale, enough) = {
                let mut ready = lock(&self.spares.ready);
                let (current, stale): (Vec<_>, Vec<_>) = std::mem::take(&mut *ready)
                    .into_iter()
                    .partition(|t| wanted && t.is_current(self));
                *ready = current;
                (stale, !wanted || ready.len() >= SPARES)
            };
            drop(stale);
            if enough {
                return;
            }
            let mut txn = self.transaction();
            runtime.block_on(txn.warm(&SMTP_STAGES));
            lock(&self.spares.ready).push(txn);
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The housekeeper's loop: until the policy or its queue is gone.
fn housekeep(policy: &Weak<Policy>, chores: &Receiver<Chore>, runtime: &tokio::runtime::Handle) {
    run_only_when_idle();
    while let Ok(chore) = chores.recv() {
        match chore {
            Chore::Retire(instances) => drop(instances),
            Chore::Refill => match policy.upgrade() {
                Some(policy) => policy.refill(runtime),
                None => return,
            },
        }
    }
}

/// Puts the calling thread in the idle scheduling class. Best effort: where
/// it is refused, the thread keeps its priority and only saves latency.
fn run_only_when_idle() {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `sched_setscheduler` only reads `param`, a valid
        // `sched_param` that outlives the call; pid 0 is the calling thread.
        #[allow(unsafe_code)]
        let set = unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) };
        if set != 0 {
            tracing::debug!(
                "plugin housekeeper: SCHED_IDLE refused: {}",
                std::io::Error::last_os_error()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    /// This process's housekeeper threads (Linux truncates names to 15 bytes).
    fn housekeepers() -> usize {
        let tasks = std::fs::read_dir("/proc/self/task").expect("/proc/self/task");
        tasks
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.trim_end() == "plugin-housekee")
            .count()
    }

    /// A transaction of a policy with a housekeeper hands its instances to
    /// the housekeeper's queue when it is dropped; one without, and one
    /// that made no instance, hand over nothing.
    #[test]
    fn a_transaction_hands_its_instances_over_when_it_ends() {
        let dir = tempfile::tempdir().expect("tempdir");
        let text = format!(
            "data_directory = \"{}\"\n[plugins.hc]\npath = \"builtin:header-checks\"\ncapabilities = [\"log\"]\n[chains]\ndata = [\"hc\"]\n",
            dir.path().display()
        );
        let cfg = crate::config::Config::parse(&text, "test.toml").expect("config");
        let runtime = crate::plugin::PluginRuntime::new(dir.path(), &dir.path().join("cache"), &[])
            .expect("plugin runtime");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let plugins = rt.block_on(runtime.load(&cfg, None)).expect("load");
        let policy = Policy::new(
            runtime,
            super::super::PolicySet {
                chains: cfg.chains.clone(),
                plugins: Arc::new(plugins),
            },
        );
        let warm = |txn: &mut PolicyTxn| {
            rt.block_on(txn.warm(&[Stage::Data]));
            assert!(!txn.instances.is_empty());
        };
        // No housekeeper yet: dropped where it ends.
        let mut alone = policy.transaction();
        warm(&mut alone);
        assert!(alone.retire_to.is_none());
        drop(alone);

        // A queue of the test's own stands in for the housekeeper's thread.
        let (tx, rx) = std::sync::mpsc::sync_channel(4);
        assert!(policy.spares.chores.set(tx).is_ok());
        let mut txn = policy.transaction();
        warm(&mut txn);
        drop(txn);
        match rx.try_recv() {
            Ok(Chore::Retire(instances)) => assert!(!instances.is_empty()),
            _ => panic!("the instances were not handed over"),
        }
        drop(policy.transaction());
        assert!(
            rx.try_recv().is_err(),
            "an empty transaction was handed over"
        );
    }

    /// Finished transactions handed to the housekeeper do not keep their
    /// policy alive, and the housekeeper ends with it.
    #[test]
    fn the_housekeeper_drops_what_it_is_given_and_ends_with_its_policy() {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = crate::plugin::PluginRuntime::new(dir.path(), &dir.path().join("cache"), &[])
            .expect("plugin runtime");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let policy = Arc::new(Policy::empty(runtime));
        policy
            .start_housekeeper(rt.handle().clone())
            .expect("housekeeper");
        // The thread names itself once it runs.
        let deadline = Instant::now() + Duration::from_secs(10);
        while housekeepers() == 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(housekeepers(), 1);
        let chores = policy.spares.chores.get().expect("the queue").clone();
        for _ in 0..(2 * RETIRING) {
            let _ = chores.try_send(Chore::Retire(Instances::new(
                policy.snapshot().plugins.clone(),
            )));
        }
        drop(chores);
        // Transactions hand their instances over when they end.
        assert!(policy.transaction().retire_to.is_some());
        // No chain: nothing to keep spares of.
        assert!(policy.spare().is_none());

        let weak = Arc::downgrade(&policy);
        drop(policy);
        let deadline = Instant::now() + Duration::from_secs(10);
        while (weak.strong_count() > 0 || housekeepers() > 0) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(weak.strong_count(), 0, "something keeps the policy");
        assert_eq!(housekeepers(), 0, "the housekeeper outlives its policy");
    }
}
