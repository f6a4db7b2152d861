//! Policy: the chain of plugin steps run at each stage, and what its verdict
//! means.
//!
//! A chain is an ordered list of steps (plugin + arguments) from `[chains]`.
//! The first verdict other than `continue` wins; `accept` ends that stage's
//! chain (Postfix's OK). A plugin failure applies the plugin's `on_error`:
//! `tempfail` answers `451 4.3.0`, `continue` skips the step. Edits from the
//! steps that ran are collected for the caller to apply.
//!
//! The chains and the plugin set are swapped together on reload through an
//! `ArcSwap`: a reader takes one `Arc` snapshot ([`Policy::transaction`]) and
//! keeps it for the whole transaction, so it never sees half of an old
//! configuration and half of a new one, and a reload never waits for readers.

pub mod headers;
pub mod reload;
mod spare;

pub use spare::SMTP_STAGES;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::config::{Chains, OnError, Stage};
use crate::plugin::types::{Edit, HookInput, Verdict};
use crate::plugin::{Instances, PluginError, PluginRuntime, PluginSet, Prepared};
use crate::smtp::proto::Reply;

/// Chains and the plugins they use, as loaded from one configuration.
#[derive(Debug)]
pub struct PolicySet {
    /// The steps of each stage.
    pub chains: Chains,
    /// The loaded plugins.
    pub plugins: Arc<PluginSet>,
}

/// Most transactions waiting for their message's delivery at once (each
/// holds its plugin instances, which come from a pool).
const MAX_HANDED_OVER: usize = 64;

/// The current policy, swapped whole on reload.
pub struct Policy {
    current: ArcSwap<PolicySet>,
    runtime: Arc<PluginRuntime>,
    /// Transactions whose message was just queued, by queue id, for its
    /// delivery to continue in ([`Policy::hand_over`]).
    handed: Mutex<HashMap<String, PolicyTxn>>,
    /// Transactions made ahead, and the housekeeper that makes them and
    /// drops finished ones ([`Policy::start_housekeeper`]).
    spares: spare::Spares,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy").finish_non_exhaustive()
    }
}

/// One step's result, for the log and `postern filter-test`.
#[derive(Debug, Clone)]
pub struct StepTrace {
    /// The plugin.
    pub plugin: String,
    /// The step's arguments.
    pub args: Vec<String>,
    /// What it answered.
    pub result: Result<crate::plugin::Outcome, PluginError>,
}

/// The result of a stage's chain.
#[derive(Debug, Clone)]
pub struct Decision {
    /// The winning verdict (`Continue` when no step had an opinion).
    pub verdict: Verdict,
    /// Edits from the steps that ran.
    pub edits: Vec<Edit>,
    /// The plugin of the last step that ran (the one that decided, when
    /// the verdict is not `Continue`).
    pub by: Option<String>,
    /// Each step that ran, when the transaction traces ([`PolicyTxn::traced`]).
    pub trace: Vec<StepTrace>,
}

impl Default for Decision {
    fn default() -> Self {
        Decision {
            verdict: Verdict::Continue,
            edits: Vec::new(),
            by: None,
            trace: Vec::new(),
        }
    }
}

impl Policy {
    /// A policy serving `set`.
    pub fn new(runtime: Arc<PluginRuntime>, set: PolicySet) -> Self {
        Policy {
            current: ArcSwap::from_pointee(set),
            runtime,
            handed: Mutex::new(HashMap::new()),
            spares: spare::Spares::default(),
        }
    }

    /// A policy with no plugins and no chains.
    pub fn empty(runtime: Arc<PluginRuntime>) -> Self {
        let plugins = Arc::new(runtime.empty_set());
        Policy::new(
            runtime,
            PolicySet {
                chains: Chains::default(),
                plugins,
            },
        )
    }

    /// The runtime (for reloads).
    pub fn runtime(&self) -> &Arc<PluginRuntime> {
        &self.runtime
    }

    /// The policy in force now.
    pub fn snapshot(&self) -> Arc<PolicySet> {
        self.current.load_full()
    }

    /// Replaces the policy; transactions in flight keep the one they started with.
    pub fn replace(&self, set: PolicySet) {
        self.current.store(Arc::new(set));
        // The spares are of the old policy: the housekeeper replaces them.
        self.ask_refill();
    }

    /// Whether `stage` has a chain now (checked without taking a reference
    /// count): without one, callers build no transaction and no inputs.
    pub fn has_chain(&self, stage: Stage) -> bool {
        self.has_any_chain(&[stage])
    }

    /// Whether any of `stages` has a chain now (one look at the policy).
    pub fn has_any_chain(&self, stages: &[Stage]) -> bool {
        let current = self.current.load();
        stages.iter().any(|s| !current.chains.get(*s).is_empty())
    }

    /// A transaction over the current policy, whose instances the
    /// housekeeper drops when it ends (if there is one).
    pub fn transaction(&self) -> PolicyTxn {
        let mut txn = PolicyTxn::new(self.snapshot());
        txn.retire_to = self.retire_to();
        txn
    }

    /// Keeps the transaction that accepted message `queue_id` for the
    /// message's deliver stage: the deliver stage is a stage of the same
    /// transaction, so when the delivery follows at once it continues in the
    /// same instances instead of instantiating every plugin again. Only for
    /// a message with a single recipient (no instance ever sees two users'
    /// deliveries), at most [`MAX_HANDED_OVER`] at once; otherwise the
    /// transaction ends here and the delivery starts fresh instances, as a
    /// retry or a delivery after a restart always does.
    pub fn hand_over(&self, queue_id: &str, txn: PolicyTxn) {
        if !txn.has_chain(Stage::Deliver) {
            return;
        }
        let refused = match self.handed.lock() {
            Ok(mut handed) if handed.len() < MAX_HANDED_OVER => {
                handed.insert(queue_id.to_owned(), txn);
                None
            }
            _ => Some(txn),
        };
        // Ended outside the lock.
        drop(refused);
    }

    /// The transaction handed over for `queue_id`, if any (it is removed).
    pub fn take_over(&self, queue_id: &str) -> Option<PolicyTxn> {
        self.handed.lock().ok()?.remove(queue_id)
    }
}

/// The policy side of one SMTP transaction (or one delivery): a snapshot and
/// the plugin instances created for it. When it ends (is dropped, wherever
/// that is), its instances go to the housekeeper, which resets them off the
/// sessions' and deliveries' paths; without one they are dropped there.
#[derive(Debug)]
pub struct PolicyTxn {
    set: Arc<PolicySet>,
    instances: Instances,
    traced: bool,
    /// The housekeeper's queue ([`Policy::start_housekeeper`]).
    retire_to: Option<spare::RetireTo>,
}

impl Drop for PolicyTxn {
    fn drop(&mut self) {
        if let Some(to) = &self.retire_to
            && !self.instances.is_empty()
        {
            to.retire(self.instances.take());
        }
    }
}

impl PolicyTxn {
    /// A transaction over `set`, whose instances are dropped where it ends.
    pub fn new(set: Arc<PolicySet>) -> Self {
        let instances = Instances::new(set.plugins.clone());
        PolicyTxn {
            set,
            instances,
            traced: false,
            retire_to: None,
        }
    }

    /// The same, recording every step in [`Decision::trace`] (`postern filter-test`).
    pub fn traced(set: Arc<PolicySet>) -> Self {
        let mut txn = PolicyTxn::new(set);
        txn.traced = true;
        txn
    }

    /// Whether `stage` has any step.
    pub fn has_chain(&self, stage: Stage) -> bool {
        !self.set.chains.get(stage).is_empty()
    }

    /// Whether this transaction runs the policy in force now (not one
    /// replaced by a reload since it was created).
    pub fn is_current(&self, policy: &Policy) -> bool {
        Arc::ptr_eq(&self.set, &*policy.current.load())
    }

    /// Creates the instances of every plugin in `stages`' chains ahead of
    /// their first calls.
    pub async fn warm(&mut self, stages: &[Stage]) {
        for stage in stages {
            for step in self.set.chains.get(*stage) {
                self.instances.warm(&step.plugin).await;
            }
        }
    }

    /// Runs the chain of `input`'s stage.
    pub async fn run(&mut self, input: &HookInput<'_>) -> Decision {
        let stage = input.stage();
        let mut decision = Decision::default();
        let PolicyTxn {
            set,
            instances,
            traced,
            ..
        } = self;
        let steps = set.chains.get(stage);
        if steps.is_empty() {
            return decision;
        }
        let input = Prepared::new(input);
        let mut ran = None;
        for step in steps {
            ran = Some(step);
            let result = instances.call(&step.plugin, &input, &step.args).await;
            if *traced {
                decision.trace.push(StepTrace {
                    plugin: step.plugin.clone(),
                    args: step.args.clone(),
                    result: result.clone(),
                });
            }
            match result {
                Ok(outcome) => {
                    decision.edits.extend(outcome.edits);
                    if outcome.verdict != Verdict::Continue {
                        decision.verdict = outcome.verdict;
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(plugin = %step.plugin, stage = stage.name(), "plugin failure: {e}");
                    if set.plugins.on_error(&step.plugin) == OnError::Tempfail {
                        decision.verdict = Verdict::Defer(Reply::plugin_failure());
                        decision.edits.clear();
                        break;
                    }
                }
            }
        }
        decision.by = ran.map(|step| step.plugin.clone());
        decision
    }
}
