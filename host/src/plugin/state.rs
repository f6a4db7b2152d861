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

/// The capabilities granted to a plugin, as a set (copied into every store).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Grants(u8);

impl Grants {
    /// The set of `caps`.
    pub fn of(caps: &[Capability]) -> Self {
        Grants(caps.iter().fold(0, |bits, c| bits | Self::bit(*c)))
    }

    /// Whether `cap` is in the set.
    pub fn contains(self, cap: Capability) -> bool {
        self.0 & Self::bit(cap) != 0
    }

    fn bit(cap: Capability) -> u8 {
        1 << (cap as u8)
    }
}

/// WASI for one instance: no preopens, no environment, no arguments, no
/// network (the default socket address check refuses every address);
/// stdout and stderr go to a capped in-memory pipe that the host logs.
struct Wasi {
    ctx: WasiCtx,
    output: MemoryOutputPipe,
    logged: usize,
}

impl Wasi {
    fn new() -> Self {
        let output = MemoryOutputPipe::new(GUEST_OUTPUT_BYTES);
        let ctx = WasiCtxBuilder::new()
            .stdout(output.clone())
            .stderr(output.clone())
            .build();
        Wasi {
            ctx,
            output,
            logged: 0,
        }
    }
}

/// Store data for one instance.
pub struct HostState {
    /// The plugin's name (log tag, kv namespace).
    pub plugin: Arc<str>,
    granted: Grants,
    /// The kv store, when granted.
    pub kv: Option<KvStore>,
    /// The resolver, when granted.
    pub dns: Option<Dns>,
    /// Resources handed to the guest (the message).
    pub table: ResourceTable,
    /// Built on the guest's first WASI call: most hook calls make none, and
    /// a WASI context costs about as much as the rest of a store.
    wasi: Option<Wasi>,
    /// Memory and table caps.
    pub limiter: Limiter,
    /// Epoch ticks used by the current call.
    pub ticks: u32,
    /// Ticks allowed per call.
    pub max_ticks: u32,
    /// The recipient's mail home during a deliver-stage call (`home`).
    pub home: Option<super::types::HomeDir>,
}

impl HostState {
    /// State for an instance of `plugin` with the given grants; `kv` and
    /// `dns` are kept only when granted.
    pub fn new(
        plugin: Arc<str>,
        granted: Grants,
        kv: Option<&KvStore>,
        dns: Option<&Dns>,
        memory_bytes: usize,
        max_ticks: u32,
    ) -> Self {
        HostState {
            plugin,
            granted,
            kv: kv.filter(|_| granted.contains(Capability::Kv)).cloned(),
            dns: dns.filter(|_| granted.contains(Capability::Dns)).cloned(),
            table: ResourceTable::new(),
            wasi: None,
            limiter: Limiter {
                memory_bytes,
                hit: false,
            },
            ticks: 0,
            max_ticks,
            home: None,
        }
    }

    /// Fails (a trap) unless `cap` was granted. Loading already refuses
    /// components that import what they were not granted; this is the
    /// second lock on the same door.
    pub fn require(&self, cap: Capability) -> wasmtime::Result<()> {
        if self.granted.contains(cap) {
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
        let wasi = self.wasi.as_mut()?;
        let all = wasi.output.contents();
        if all.len() <= wasi.logged {
            return None;
        }
        let new = String::from_utf8_lossy(&all[wasi.logged..]).into_owned();
        wasi.logged = all.len();
        Some(new)
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let wasi = self.wasi.get_or_insert_with(Wasi::new);
        WasiCtxView {
            ctx: &mut wasi.ctx,
            table: &mut self.table,
        }
    }
}

impl super::bindings::postern::mta::types::Host for HostState {}
