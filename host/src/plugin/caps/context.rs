//! `postern:mta/context`: what a hook is told about its call, read on demand.
//!
//! A hook receives one borrowed handle instead of the client and envelope
//! records and the step's arguments: lowering those into every plugin at
//! every stage (a guest allocation per string, a spill through guest memory
//! when the parameters exceed the canonical ABI's sixteen flat values) was
//! most of what a call cost, and most hooks read little or none of it.

use std::sync::Arc;

use wasmtime::component::Resource;

use super::super::bindings::postern::mta::context::{Host, HostContext};
use super::super::bindings::postern::mta::types::{Client, Envelope};
use super::super::convert;
use super::super::state::HostState;
use super::super::types::{ClientInfo, EnvelopeInfo};

/// One hook call's context: the stage's facts (shared by every step of its
/// chain) and the step's arguments.
#[derive(Debug)]
pub struct CallContext {
    about: Arc<About>,
    args: Vec<String>,
}

/// What a stage's chain is told: copied once per stage, converted to the
/// interface's types only when a hook asks.
#[derive(Debug)]
pub struct About {
    client: ClientInfo,
    envelope: EnvelopeInfo,
}

impl About {
    /// The facts of one stage (no envelope: an empty one, before MAIL).
    pub fn new(client: &ClientInfo, envelope: Option<&EnvelopeInfo>) -> Arc<Self> {
        Arc::new(About {
            client: client.clone(),
            envelope: envelope.cloned().unwrap_or_default(),
        })
    }

    /// The context of one step of the chain.
    pub fn step(self: &Arc<Self>, args: &[String]) -> CallContext {
        CallContext {
            about: self.clone(),
            args: args.to_vec(),
        }
    }
}

impl Host for HostState {}

impl HostContext for HostState {
    fn args(&mut self, this: Resource<CallContext>) -> wasmtime::Result<Vec<String>> {
        Ok(self.table.get(&this)?.args.clone())
    }

    fn client(&mut self, this: Resource<CallContext>) -> wasmtime::Result<Client> {
        Ok(convert::client(&self.table.get(&this)?.about.client))
    }

    fn envelope(&mut self, this: Resource<CallContext>) -> wasmtime::Result<Envelope> {
        Ok(convert::envelope(&self.table.get(&this)?.about.envelope))
    }

    fn drop(&mut self, this: Resource<CallContext>) -> wasmtime::Result<()> {
        self.table.delete(this)?;
        Ok(())
    }
}
