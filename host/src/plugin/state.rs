//! The data of one plugin instance's store: WASI (granting nothing), the
//! resource table, the memory limiter, the epoch budget, and handles to the
//! capabilities the plugin was granted.

use std::sync::Arc;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::caps::dns::Dns;
use super::caps::kv::KvStore;
use crate::config::Capability;

/// Guest stdout and stderr kept per instance (Python tracebacks, panics).
const GUEST_OUTPUT_BYTES: usize = 64 * 1024;

/// Caps one instance's memories and tables, and remembers when it said no,
/// so a trap after a refused allocation is reported as the memory cap.
#[derive(Debug)]
pub struct Limiter {
    memory_bytes: usize,
    /// Set when a growth was refused.
    pub hit: bool,
}

impl ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let ok = desired <= self.memory_bytes;
        self.hit |= !ok;
        Ok(ok)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1 << 20)
    }
}

/// Store data for one instance.
pub struct HostState {
    /// The plugin's name (log tag, kv namespace).
    pub plugin: Arc<str>,
    granted: Vec<Capability>,
    /// The kv store, when granted.
    pub kv: Option<KvStore>,
    /// The resolver, when granted.
    pub dns: Option<Dns>,
    /// Resources handed to the guest (the message).
    pub table: ResourceTable,
    wasi: WasiCtx,
    /// Memory and table caps.
    pub limiter: Limiter,
    /// Epoch ticks used by the current call.
    pub ticks: u32,
    /// Ticks allowed per call.
    pub max_ticks: u32,
    output: MemoryOutputPipe,
    output_logged: usize,
    /// The recipient's mail home during a deliver-stage call (`home`).
    pub home: Option<super::types::HomeDir>,
}

impl HostState {
    /// State for an instance of `plugin` with the given grants.
    pub fn new(
        plugin: Arc<str>,
        granted: Vec<Capability>,
        kv: Option<KvStore>,
        dns: Option<Dns>,
        memory_bytes: usize,
        max_ticks: u32,
    ) -> Self {
        let output = MemoryOutputPipe::new(GUEST_OUTPUT_BYTES);
        // No preopens, no environment, no arguments, no network: the default
        // socket address check refuses every address.
        let wasi = WasiCtxBuilder::new()
            .stdout(output.clone())
            .stderr(output.clone())
            .build();
        let kv = kv.filter(|_| granted.contains(&Capability::Kv));
        let dns = dns.filter(|_| granted.contains(&Capability::Dns));
        HostState {
            plugin,
            granted,
            kv,
            dns,
            table: ResourceTable::new(),
            wasi,
            limiter: Limiter {
                memory_bytes,
                hit: false,
            },
            ticks: 0,
            max_ticks,
            output,
            output_logged: 0,
            home: None,
        }
    }

    /// Fails (a trap) unless `cap` was granted. Loading already refuses
    /// components that import what they were not granted; this is the
    /// second lock on the same door.
    pub fn require(&self, cap: Capability) -> wasmtime::Result<()> {
        if self.granted.contains(&cap) {
            Ok(())
        } else {
            wasmtime::bail!(
                "capability `{}` not granted to plugin `{}`",
                cap.name(),
                self.plugin
            )
        }
    }

    /// What the guest printed since the last call, for the log.
    pub fn take_output(&mut self) -> Option<String> {
        let all = self.output.contents();
        if all.len() <= self.output_logged {
            return None;
        }
        let new = String::from_utf8_lossy(&all[self.output_logged..]).into_owned();
        self.output_logged = all.len();
        Some(new)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl super::bindings::postern::mta::types::Host for HostState {}
