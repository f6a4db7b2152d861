//! The data of a transaction's store: per plugin instance, WASI (granting
//! nothing), the memory limiter, the epoch budget and handles to the
//! capabilities the plugin was granted; shared, the resource table.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

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

/// One plugin instance's part of a transaction's store: who it is, what it
/// was granted, its caps and its output.
pub struct Guest {
    /// The plugin's name (log tag, kv namespace).
    pub plugin: Arc<str>,
    granted: Grants,
    /// The kv store, when granted.
    pub kv: Option<KvStore>,
    /// The resolver, when granted.
    pub dns: Option<Dns>,
    /// Built on the guest's first WASI call: most hook calls make none, and
    /// a WASI context costs about as much as the rest of a store.
    wasi: Option<Wasi>,
    /// Memory and table caps.
    pub limiter: Limiter,
    /// Epoch ticks allowed per call.
    pub max_ticks: u32,
    /// Set on its first call of a capability whose answers change (clock,
    /// kv, dns, home).
    asked: AtomicBool,
}

impl Guest {
    /// An instance of `plugin` with the given grants; `kv` and `dns` are
    /// kept only when granted.
    pub fn new(
        plugin: Arc<str>,
        granted: Grants,
        kv: Option<&KvStore>,
        dns: Option<&Dns>,
        memory_bytes: usize,
        max_ticks: u32,
    ) -> Self {
        Guest {
            plugin,
            granted,
            kv: kv.filter(|_| granted.contains(Capability::Kv)).cloned(),
            dns: dns.filter(|_| granted.contains(Capability::Dns)).cloned(),
            wasi: None,
            limiter: Limiter {
                memory_bytes,
                hit: false,
            },
            max_ticks,
            asked: AtomicBool::new(false),
        }
    }

    /// Whether it has read from the host something that changes: a
    /// capability (clock, kv, dns, home) or WASI (clocks, random). What
    /// `configure` read then is not a function of the component and its
    /// settings alone.
    pub fn read_host(&self) -> bool {
        self.asked.load(Ordering::Relaxed) || self.wasi.is_some()
    }
}

/// Which guest a store slot belongs to: an index into its [`HostState`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestId(usize);

/// Store data for the instances of one transaction. Every instance has its
/// own [`Guest`]; the one being run is "current", and the capabilities act
/// for it (plugins never call each other, so one runs at a time).
pub struct HostState {
    /// Never empty; `current` is always an index into it.
    guests: Vec<Guest>,
    current: usize,
    /// Resources handed to the guests (the message).
    pub table: ResourceTable,
    /// Epoch ticks used by the current call.
    pub ticks: u32,
    /// The recipient's mail home during a deliver-stage call (`home`).
    pub home: Option<super::types::HomeDir>,
    /// Whether the current call (or instantiation) runs without a fiber, so
    /// that the epoch callback cannot yield.
    pub fiberless: bool,
    /// Set when a call without a fiber ran for a whole epoch tick.
    pub went_long: bool,
    /// Whether an instance in the store needs a fiber (then every call does).
    pub fiber_required: bool,
}

impl HostState {
    /// State whose first (and current) guest is `first`.
    pub fn new(first: Guest) -> Self {
        HostState {
            guests: vec![first],
            current: 0,
            table: ResourceTable::new(),
            ticks: 0,
            home: None,
            fiberless: false,
            went_long: false,
            fiber_required: false,
        }
    }

    /// The first guest's id.
    pub fn first() -> GuestId {
        GuestId(0)
    }

    /// Adds a guest.
    pub fn add(&mut self, guest: Guest) -> GuestId {
        self.guests.push(guest);
        GuestId(self.guests.len() - 1)
    }

    /// How many guests the store has had.
    pub fn guests(&self) -> usize {
        self.guests.len()
    }

    /// Makes `id` current, with a fresh CPU budget.
    pub fn enter(&mut self, id: GuestId) {
        if id.0 < self.guests.len() {
            self.current = id.0;
        }
        self.ticks = 0;
    }

    /// The guest being run.
    pub fn guest(&self) -> &Guest {
        &self.guests[self.current]
    }

    /// The same, mutable.
    pub fn guest_mut(&mut self) -> &mut Guest {
        &mut self.guests[self.current]
    }

    /// Fails (a trap) unless `cap` was granted to the current guest. Loading
    /// already refuses components that import what they were not granted;
    /// this is the second lock on the same door.
    pub fn require(&self, cap: Capability) -> wasmtime::Result<()> {
        let guest = self.guest();
        if guest.granted.contains(cap) {
            if cap != Capability::Log {
                guest.asked.store(true, Ordering::Relaxed);
            }
            Ok(())
        } else {
            wasmtime::bail!(
                "capability `{}` not granted to plugin `{}`",
                cap.name(),
                guest.plugin
            )
        }
    }

    /// What the current guest printed since the last call, for the log.
    pub fn take_output(&mut self) -> Option<String> {
        let wasi = self.guest_mut().wasi.as_mut()?;
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
        let wasi = self.guests[self.current].wasi.get_or_insert_with(Wasi::new);
        WasiCtxView {
            ctx: &mut wasi.ctx,
            table: &mut self.table,
        }
    }
}

impl super::bindings::postern::mta::types::Host for HostState {}
