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

use std::sync::Arc;

use arc_swap::ArcSwap;

use crate::config::{Chains, OnError, Stage};
use crate::plugin::types::{Edit, HookInput, Verdict};
use crate::plugin::{Instances, PluginError, PluginRuntime, PluginSet};
use crate::smtp::proto::Reply;

/// Chains and the plugins they use, as loaded from one configuration.
#[derive(Debug)]
pub struct PolicySet {
    /// The steps of each stage.
    pub chains: Chains,
    /// The loaded plugins.
    pub plugins: Arc<PluginSet>,
}

/// The current policy, swapped whole on reload.
pub struct Policy {
    current: ArcSwap<PolicySet>,
    runtime: Arc<PluginRuntime>,
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
    /// Each step that ran.
    pub trace: Vec<StepTrace>,
}

impl Default for Decision {
    fn default() -> Self {
        Decision {
            verdict: Verdict::Continue,
            edits: Vec::new(),
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
    }

    /// Whether `stage` has a chain now (checked without taking a reference
    /// count): without one, callers build no transaction and no inputs.
    pub fn has_chain(&self, stage: Stage) -> bool {
        !self.current.load().chains.get(stage).is_empty()
    }

    /// A transaction over the current policy.
    pub fn transaction(&self) -> PolicyTxn {
        PolicyTxn::new(self.snapshot())
    }
}

/// The policy side of one SMTP transaction (or one delivery): a snapshot and
/// the plugin instances created for it.
#[derive(Debug)]
pub struct PolicyTxn {
    set: Arc<PolicySet>,
    instances: Instances,
}

impl PolicyTxn {
    /// A transaction over `set`.
    pub fn new(set: Arc<PolicySet>) -> Self {
        let instances = Instances::new(set.plugins.clone());
        PolicyTxn { set, instances }
    }

    /// Whether `stage` has any step.
    pub fn has_chain(&self, stage: Stage) -> bool {
        !self.set.chains.get(stage).is_empty()
    }

    /// Runs the chain of `input`'s stage.
    pub async fn run(&mut self, input: &HookInput<'_>) -> Decision {
        let stage = input.stage();
        let mut decision = Decision::default();
        let set = self.set.clone();
        for step in set.chains.get(stage) {
            let result = self.instances.call(&step.plugin, input, &step.args).await;
            decision.trace.push(StepTrace {
                plugin: step.plugin.clone(),
                args: step.args.clone(),
                result: result.clone(),
            });
            match result {
                Ok(outcome) => {
                    decision.edits.extend(outcome.edits);
                    if outcome.verdict != Verdict::Continue {
                        decision.verdict = outcome.verdict;
                        return decision;
                    }
                }
                Err(e) => {
                    tracing::warn!(plugin = %step.plugin, stage = stage.name(), "plugin failure: {e}");
                    if set.plugins.on_error(&step.plugin) == OnError::Tempfail {
                        decision.verdict = Verdict::Defer(Reply::plugin_failure());
                        decision.edits.clear();
                        return decision;
                    }
                }
            }
        }
        decision
    }
}
