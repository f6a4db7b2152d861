//! The plugin runtime: WebAssembly components behind the WIT in `wit/`.
//!
//! This is the only module that names wasmtime types. Outside it, plugins are
//! [`PluginSet`]s (what is loaded), [`Instances`] (the live instances of one
//! SMTP transaction or one delivery) and the plain types of [`types`].
//!
//! - One async `Engine` per process (pooling allocator, epoch interruption)
//!   with its epoch ticker thread; a [`PluginRuntime`] adds a linker with WASI p2 granting
//!   nothing and the postern capabilities, the compiled-artifact cache, and the
//!   stores behind the capabilities (kv, DNS).
//! - Loading ([`PluginRuntime::load`]) compiles (or fetches from the cache) each
//!   configured component off the async workers, refuses one that imports a
//!   capability it was not granted or lacks a stage its chains need, and runs
//!   `configure` once; any failure keeps the previous set.
//! - Calls: an instance per plugin per transaction, created on first use from
//!   the pre-instantiated component, all of a transaction's instances in one
//!   store; `configure` runs at its start. Each call has a CPU deadline
//!   (epochs), a wall-clock backstop and a memory cap, per plugin. A trap, an
//!   overrun or a bad verdict is a [`PluginError`]; the instance is thrown
//!   away (a trapped instance cannot be entered again), the failure is
//!   counted, and the caller applies the plugin's `on_error`.

mod bindings;
pub mod bundle;
pub mod caps;
mod convert;
pub mod engine;
mod exports;
mod snapshot;
mod state;
pub mod types;

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::Poll;
use std::time::Duration;

use wasmtime::component::{Component, Instance, InstancePre, Linker, Resource};
use wasmtime::{Engine, Store, Trap, UpdateDeadline};

use bindings::postern::mta::types as wit;
use caps::context::{About, CallContext};
use caps::dns::Dns;
use caps::kv::KvStore;
use caps::message::MessageBody;
use exports::{Export, Exports, Signature};
use state::{Grants, Guest, GuestId, HostState};
pub use types::{HookInput, Outcome, PluginError};

use crate::config::{Capability, Config, OnError, PluginConfig, Stage};

/// Largest component file accepted.
pub const MAX_COMPONENT_BYTES: u64 = 128 << 20;

/// Time a call may spend waiting on host calls (DNS) beyond its CPU deadline.
const WALL_CLOCK_SLACK: Duration = Duration::from_secs(10);

/// Instances of failed calls a transaction may create beyond one per plugin.
const MAX_FAILED_INSTANCES: usize = 8;

/// The engine and everything shared by all plugin sets.
pub struct PluginRuntime {
    engine: Engine,
    linker: Linker<HostState>,
    cache_dir: PathBuf,
    kv: Option<KvStore>,
    dns: Option<Dns>,
}

impl std::fmt::Debug for PluginRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginRuntime")
            .field("cache_dir", &self.cache_dir)
            .finish()
    }
}

/// A plugin that could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("plugin `{plugin}`: {message}")]
pub struct LoadError {
    /// The plugin's name.
    pub plugin: String,
    /// Why.
    pub message: String,
}

/// Counters kept across reloads (by plugin name).
#[derive(Debug, Default)]
pub struct PluginStats {
    /// Hook calls.
    pub calls: AtomicU64,
    /// Calls that failed (trap, deadline, memory, bad verdict, configure).
    pub failures: AtomicU64,
}

/// One loaded plugin.
pub struct LoadedPlugin {
    name: Arc<str>,
    spec: PluginConfig,
    grants: Grants,
    /// What `configure` receives: the `config` table plus `files` contents.
    config_json: String,
    path: PathBuf,
    hash: String,
    pre: InstancePre<HostState>,
    exports: Exports,
    /// Whether instances start configured (frozen after `configure` at load).
    configured: bool,
    /// Whether the component imports only host functions that never wait,
    /// so that its instances can be created and called without a fiber.
    fiberless: bool,
    /// Set when a call without a fiber ran past an epoch tick: its calls
    /// run on fibers from then on (a reload keeps it for the same component).
    slow: AtomicBool,
    stats: Arc<PluginStats>,
}

impl LoadedPlugin {
    /// The stages the component exports.
    pub fn stages(&self) -> Vec<Stage> {
        Stage::ALL
            .into_iter()
            .filter(|s| self.implements(*s))
            .collect()
    }

    /// The same plugin running `component` (whose instances start
    /// configured when `configured`).
    fn with_component(
        &self,
        rt: &PluginRuntime,
        component: &Component,
        configured: bool,
    ) -> Result<LoadedPlugin, String> {
        let (pre, exports) = rt.link(component)?;
        Ok(LoadedPlugin {
            name: self.name.clone(),
            spec: self.spec.clone(),
            grants: self.grants,
            config_json: self.config_json.clone(),
            path: self.path.clone(),
            hash: self.hash.clone(),
            pre,
            exports,
            configured,
            fiberless: imports_never_wait(&rt.engine, component),
            slow: AtomicBool::new(self.slow.load(Ordering::Relaxed)),
            stats: self.stats.clone(),
        })
    }

    fn implements(&self, stage: Stage) -> bool {
        match stage {
            Stage::Connect | Stage::Helo | Stage::Mail | Stage::Rcpt => {
                self.exports.session.is_some()
            }
            Stage::Data => self.exports.data.is_some(),
            Stage::Deliver => self.exports.deliver.is_some(),
        }
    }
}

/// What `postern plugin list` shows of one plugin.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    /// Name.
    pub name: String,
    /// Version: the component's sha256 (short) until packages carry one.
    pub version: String,
    /// Component file.
    pub path: PathBuf,
    /// Exported stages.
    pub stages: Vec<Stage>,
    /// Granted capabilities.
    pub capabilities: Vec<Capability>,
    /// Calls so far.
    pub calls: u64,
    /// Failures so far.
    pub failures: u64,
    /// Whether `configure` ran once at load (instances start configured)
    /// rather than at the start of every instance.
    pub configured_at_load: bool,
}

/// The plugins loaded from one configuration. Immutable; a reload builds a
/// new one and swaps it in whole.
pub struct PluginSet {
    engine: Engine,
    kv: Option<KvStore>,
    dns: Option<Dns>,
    plugins: BTreeMap<String, Arc<LoadedPlugin>>,
}

impl std::fmt::Debug for PluginSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSet")
            .field("plugins", &self.plugins.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl PluginSet {
    /// Descriptions of the loaded plugins, by name.
    pub fn list(&self) -> Vec<PluginInfo> {
        self.plugins
            .values()
            .map(|p| PluginInfo {
                name: p.name.to_string(),
                version: format!("sha256:{}", &p.hash[..12]),
                path: p.path.clone(),
                stages: p.stages(),
                capabilities: p.spec.capabilities.clone(),
                calls: p.stats.calls.load(Ordering::Relaxed),
                failures: p.stats.failures.load(Ordering::Relaxed),
                configured_at_load: p.configured,
            })
            .collect()
    }

    /// Whether no plugin is loaded.
    pub fn is_empty(&self) -> bool {
        self.plugins.is_empty()
    }

    /// A plugin's failure policy (tempfail when unknown).
    pub fn on_error(&self, plugin: &str) -> OnError {
        self.plugins
            .get(plugin)
            .map_or(OnError::Tempfail, |p| p.spec.on_error)
    }
}

impl PluginRuntime {
    /// The runtime for a configuration: the shared engine, the compiled-plugin
    /// cache, the kv store in the data directory, the resolver.
    pub fn new(
        data_directory: &Path,
        cache_directory: &Path,
        dns_servers: &[SocketAddr],
    ) -> Result<Arc<PluginRuntime>, String> {
        let mut rt = Self::without_state(cache_directory)?;
        std::fs::create_dir_all(data_directory)
            .map_err(|e| format!("{}: {e}", data_directory.display()))?;
        let kv =
            KvStore::open(&data_directory.join("plugin-kv.redb")).map_err(|e| e.to_string())?;
        // A resolver that cannot be built (no resolv.conf) only disables `dns`.
        let dns = match Dns::new(dns_servers) {
            Ok(d) => Some(d),
            Err(e) => {
                tracing::warn!("the dns capability is unavailable: {e}");
                None
            }
        };
        rt.kv = Some(kv);
        rt.dns = dns;
        Ok(Arc::new(rt))
    }

    /// A runtime that can load and check plugins but offers no kv store and
    /// no resolver (`postern check`, which must not lock a running server's
    /// kv store). Compiled artifacts go to `cache_dir`.
    pub fn without_state(cache_dir: &Path) -> Result<PluginRuntime, String> {
        let engine = engine::shared()?.clone();
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).map_err(|e| format!("{e:#}"))?;
        bindings::Plugin::add_to_linker::<HostState, wasmtime::component::HasSelf<HostState>>(
            &mut linker,
            |s| s,
        )
        .map_err(|e| format!("{e:#}"))?;
        Ok(PluginRuntime {
            engine,
            linker,
            cache_dir: cache_dir.to_owned(),
            kv: None,
            dns: None,
        })
    }

    /// A set with no plugins.
    pub fn empty_set(&self) -> PluginSet {
        PluginSet {
            engine: self.engine.clone(),
            kv: self.kv.clone(),
            dns: self.dns.clone(),
            plugins: BTreeMap::new(),
        }
    }

    /// Loads every plugin of `cfg`. Counters carry over from `previous` by
    /// name. All or nothing: any error leaves the caller with its old set.
    pub async fn load(
        self: &Arc<Self>,
        cfg: &Config,
        previous: Option<&PluginSet>,
    ) -> Result<PluginSet, Vec<LoadError>> {
        let mut set = self.empty_set();
        let mut errors = Vec::new();
        let mut wasms = HashMap::new();
        for (name, spec) in &cfg.plugins {
            let before = previous.and_then(|p| p.plugins.get(name));
            let stats = before.map_or_else(Default::default, |p| p.stats.clone());
            let rt = self.clone();
            let mut spec2 = spec.clone();
            match cfg.expand_plugin_config(&spec.config_json) {
                Ok(json) => spec2.config_json = json,
                Err(message) => {
                    errors.push(LoadError {
                        plugin: name.clone(),
                        message,
                    });
                    continue;
                }
            }
            let (name2, dir) = (name.clone(), cfg.plugin_directory.clone());
            let base = cfg.base_directory();
            let compiled =
                tokio::task::spawn_blocking(move || rt.prepare(&name2, &spec2, &dir, &base, stats))
                    .await
                    .unwrap_or_else(|e| Err(e.to_string()));
            let plugin = match compiled {
                Ok((p, wasm)) => {
                    wasms.insert(name.clone(), wasm);
                    // A demotion to fibers is about the component's code:
                    // it holds until the component changes.
                    if let Some(before) = before.filter(|b| b.hash == p.hash) {
                        p.slow
                            .store(before.slow.load(Ordering::Relaxed), Ordering::Relaxed);
                    }
                    p
                }
                Err(message) => {
                    errors.push(LoadError {
                        plugin: name.clone(),
                        message,
                    });
                    continue;
                }
            };
            for (stage, step) in cfg.chains.all() {
                if step.plugin == *name && !plugin.implements(stage) {
                    errors.push(LoadError {
                        plugin: name.clone(),
                        message: format!(
                            "is in the {} chain but does not export that stage (it exports: {})",
                            stage.name(),
                            stage_names(&plugin.stages())
                        ),
                    });
                }
            }
            set.plugins.insert(name.clone(), Arc::new(plugin));
        }
        // `configure` once per load (on the instance that is then frozen,
        // when it can be), and every export's type checked: a plugin that
        // refuses its settings or was built against another interface keeps
        // the old set serving.
        let mut frozen = Vec::new();
        for (name, plugin) in &set.plugins {
            let wasm = wasms.remove(name).unwrap_or_else(|| Arc::from([]));
            match snapshot::configure(self, &set, plugin, wasm).await {
                Ok(Some(p)) => frozen.push((name.clone(), p)),
                Ok(None) => {}
                Err(message) => errors.push(LoadError {
                    plugin: name.clone(),
                    message,
                }),
            }
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        for (name, p) in frozen {
            set.plugins.insert(name, Arc::new(p));
        }
        // Every artifact this set uses was just marked; what no load used
        // for a day goes (replaced plugins, settings edited since).
        let cache_dir = self.cache_dir.clone();
        let pruned = tokio::task::spawn_blocking(move || {
            engine::prune(&cache_dir, engine::CACHE_UNUSED_FOR)
        })
        .await
        .unwrap_or_default();
        if pruned > 0 {
            tracing::info!("removed {pruned} compiled plugins unused for a day from the cache");
        }
        Ok(set)
    }

    /// `component` linked against the host, and its exports.
    fn link(&self, component: &Component) -> Result<(InstancePre<HostState>, Exports), String> {
        let pre = self
            .linker
            .instantiate_pre(component)
            .map_err(|e| format!("cannot link: {e:#}"))?;
        let exports = Exports::find(component)
            .ok_or_else(|| "does not export postern:mta/lifecycle (configure)".to_owned())?;
        Ok((pre, exports))
    }

    /// Compiles and checks one plugin (blocking).
    fn prepare(
        &self,
        name: &str,
        spec: &PluginConfig,
        dir: &Path,
        base: &Path,
        stats: Arc<PluginStats>,
    ) -> Result<(LoadedPlugin, Arc<[u8]>), String> {
        let config_json = config_with_files(spec, base)?;
        let (path, wasm) = match bundle::lookup(&spec.path) {
            Some(builtin) => (spec.path.clone(), builtin?.to_vec()),
            None => {
                let path = if spec.path.is_absolute() {
                    spec.path.clone()
                } else {
                    dir.join(&spec.path)
                };
                (path.clone(), read_component(&path)?)
            }
        };
        let hash = engine::content_hash(&wasm);
        let (component, compiled) = engine::load_component(&self.engine, &self.cache_dir, &wasm)
            .map_err(|e| format!("{}: not a usable component: {e}", path.display()))?;
        if compiled {
            tracing::info!(
                plugin = name,
                "compiled {} ({} bytes)",
                path.display(),
                wasm.len()
            );
        }
        check_imports(&self.engine, &component, spec)?;
        let (pre, exports) = self.link(&component)?;
        let plugin = LoadedPlugin {
            name: Arc::from(name),
            spec: spec.clone(),
            grants: Grants::of(&spec.capabilities),
            config_json,
            path,
            hash,
            exports,
            pre,
            configured: false,
            fiberless: imports_never_wait(&self.engine, &component),
            slow: AtomicBool::new(false),
            stats,
        };
        Ok((plugin, wasm.into()))
    }
}

/// Reads a component file, refusing one larger than [`MAX_COMPONENT_BYTES`].
fn read_component(path: &Path) -> Result<Vec<u8>, String> {
    let size = std::fs::metadata(path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    if size > MAX_COMPONENT_BYTES {
        return Err(format!(
            "{}: {size} bytes is larger than {MAX_COMPONENT_BYTES}",
            path.display()
        ));
    }
    std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Largest file a plugin may be handed through `files`.
pub const MAX_PLUGIN_FILE_BYTES: u64 = 4 << 20;

/// The JSON `configure` receives: the `config` table, plus under `files` the
/// contents of the plugin's `files` (read now, so a reload rereads them).
fn config_with_files(spec: &PluginConfig, base: &Path) -> Result<String, String> {
    if spec.files.is_empty() {
        return Ok(spec.config_json.clone());
    }
    let mut config: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&spec.config_json).map_err(|e| format!("config: {e}"))?;
    let mut files = serde_json::Map::new();
    for (key, path) in &spec.files {
        let path = if path.is_absolute() {
            path.clone()
        } else {
            base.join(path)
        };
        let size = std::fs::metadata(&path)
            .map_err(|e| format!("files.{key}: {}: {e}", path.display()))?
            .len();
        if size > MAX_PLUGIN_FILE_BYTES {
            return Err(format!(
                "files.{key}: {} is larger than {MAX_PLUGIN_FILE_BYTES} bytes",
                path.display()
            ));
        }
        let bytes =
            std::fs::read(&path).map_err(|e| format!("files.{key}: {}: {e}", path.display()))?;
        files.insert(
            key.clone(),
            serde_json::Value::String(String::from_utf8_lossy(&bytes).into_owned()),
        );
    }
    config.insert("files".into(), serde_json::Value::Object(files));
    Ok(serde_json::Value::Object(config).to_string())
}

fn stage_names(stages: &[Stage]) -> String {
    if stages.is_empty() {
        return "none".into();
    }
    stages
        .iter()
        .map(|s| s.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Refuses a component that imports a capability it was not granted, or an
/// interface the host does not offer.
fn check_imports(
    engine: &Engine,
    component: &Component,
    spec: &PluginConfig,
) -> Result<(), String> {
    for (name, _) in component.component_type().imports(engine) {
        if name.starts_with("wasi:") {
            continue;
        }
        let Some(iface) = postern_interface(name) else {
            return Err(format!("imports `{name}`, which postern does not provide"));
        };
        match Capability::ALL.into_iter().find(|c| c.name() == iface) {
            Some(cap) if !spec.capabilities.contains(&cap) => {
                return Err(format!(
                    "imports the `{iface}` capability, which is not granted (add \"{iface}\" to its capabilities)"
                ));
            }
            Some(_) => {}
            None if matches!(iface, "types" | "context" | "message") => {}
            None => return Err(format!("imports `{name}`, which postern does not provide")),
        }
    }
    Ok(())
}

/// Whether `component` imports only host functions that return at once
/// (`context`, `message`, `log`, `clock`): no WASI and none of `dns`, `kv`
/// and `home`, which may wait. Such a component's instances are created and
/// called without a fiber (see [`call`]).
fn imports_never_wait(engine: &Engine, component: &Component) -> bool {
    component.component_type().imports(engine).all(|(name, _)| {
        matches!(
            postern_interface(name),
            Some("types" | "context" | "message" | "log" | "clock")
        )
    })
}

/// The interface an import names in postern's package, without its version
/// (`"postern:mta/dns@0.1.0"` gives `"dns"`); `None` for any other package.
fn postern_interface(import: &str) -> Option<&str> {
    let rest = import.strip_prefix("postern:mta/")?;
    rest.split('@').next()
}

/// A plugin's instance in its transaction's store.
#[derive(Clone, Copy)]
struct Slot {
    instance: Instance,
    guest: GuestId,
}

/// A first instance of `p` (its `configure` run), with every export's type
/// checked on it: what a load requires of each plugin.
async fn first_instance(
    set: &PluginSet,
    p: &LoadedPlugin,
) -> Result<(Store<HostState>, Instance), String> {
    let mut store = None;
    let slot = instantiate(set, &mut store, p)
        .await
        .map_err(|e| e.to_string())?;
    let mut store = store.ok_or_else(|| PluginError::NotLoaded.to_string())?;
    p.exports
        .check(&mut store, &slot.instance)
        .map_err(|e| format!("exports the wrong type: {e:#}"))?;
    Ok((store, slot.instance))
}

/// Calls `export` of `p`'s `instance` with `params`: without a fiber when
/// [`can_skip_fiber`] allows it, else on one (async, yielding to the runtime
/// at every epoch tick).
async fn call<S: Signature>(
    store: &mut Store<HostState>,
    p: &LoadedPlugin,
    instance: &Instance,
    export: &Export<S>,
    params: S::Params<'_>,
) -> wasmtime::Result<S::Results> {
    let func = export.typed(store, instance)?;
    if can_skip_fiber(store, p) {
        run_fiberless(store, p, |store| func.call(store, params))
    } else {
        func.call_async(store, params).await
    }
}

/// Whether `p` can run in `store` without a fiber. A call on a fiber costs a
/// stack switch each way, about a microsecond of every call, and most calls
/// take less than that. Without a fiber a call cannot yield: a plugin that
/// runs past an epoch tick holds its worker thread until it returns or hits
/// its deadline, once; from then on its calls run on fibers. Only components
/// whose imports never wait qualify, and only while no instance in the store
/// needs a fiber (wasmtime then requires async calls for the whole store).
fn can_skip_fiber(store: &Store<HostState>, p: &LoadedPlugin) -> bool {
    p.fiberless && !store.data().fiber_required && !p.slow.load(Ordering::Relaxed)
}

/// Runs `run` (a synchronous call or instantiation of `p`) without a fiber;
/// demotes `p` to fibers if it ran past an epoch tick.
fn run_fiberless<R>(
    store: &mut Store<HostState>,
    p: &LoadedPlugin,
    run: impl FnOnce(&mut Store<HostState>) -> R,
) -> R {
    store.data_mut().fiberless = true;
    let result = run(store);
    let s = store.data_mut();
    s.fiberless = false;
    if std::mem::take(&mut s.went_long) && !p.slow.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            plugin = &*p.name,
            "a call ran for more than {} ms without yielding; this plugin's calls now run on fibers",
            engine::EPOCH_TICK.as_millis()
        );
    }
    result
}

fn max_ticks(timeout: Duration) -> u32 {
    let ticks = timeout.as_millis().div_ceil(engine::EPOCH_TICK.as_millis());
    u32::try_from(ticks).unwrap_or(u32::MAX).max(1)
}

/// A store whose first guest is `first`.
fn new_store(engine: &Engine, first: Guest) -> Store<HostState> {
    let mut store = Store::new(engine, HostState::new(first));
    store.limiter(|s| &mut s.guest_mut().limiter);
    store.epoch_deadline_callback(|mut ctx| {
        let s = ctx.data_mut();
        s.ticks += 1;
        if s.ticks >= s.guest().max_ticks {
            Err(Trap::Interrupt.into())
        } else if s.fiberless {
            // No fiber to yield from. The first tick may come just after
            // the call began; the second means it ran for a whole tick.
            s.went_long |= s.ticks >= 2;
            Ok(UpdateDeadline::Continue(1))
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
    store.set_epoch_deadline(1);
    store
}

/// Makes `id` the store's current guest with a fresh CPU budget.
fn enter(store: &mut Store<HostState>, id: GuestId) {
    store.data_mut().enter(id);
    store.set_epoch_deadline(1);
}

/// Creates an instance of `p` in `store` (the store too, if there is none
/// yet) and runs `configure` on it.
async fn instantiate(
    set: &PluginSet,
    store: &mut Option<Store<HostState>>,
    p: &LoadedPlugin,
) -> Result<Slot, PluginError> {
    let memory = usize::try_from(p.spec.memory_limit).unwrap_or(usize::MAX);
    let guest = Guest::new(
        p.name.clone(),
        p.grants,
        set.kv.as_ref(),
        set.dns.as_ref(),
        memory,
        max_ticks(p.spec.timeout),
    );
    let (store, id) = match store {
        Some(store) => {
            // Bounds what the instances of failed calls (kept until the
            // transaction ends) hold of the shared pool.
            if store.data().guests() >= set.plugins.len() + MAX_FAILED_INSTANCES {
                return Err(PluginError::Instantiate(
                    "too many failed instances in this transaction".into(),
                ));
            }
            let id = store.data_mut().add(guest);
            (store, id)
        }
        None => (
            store.insert(new_store(&set.engine, guest)),
            HostState::first(),
        ),
    };
    enter(store, id);
    let wall = p.spec.timeout + WALL_CLOCK_SLACK;
    let created = if can_skip_fiber(store, p) {
        Ok(run_fiberless(store, p, |store| p.pre.instantiate(store)))
    } else {
        // Mirrors wasmtime: once an instance needs a fiber, the whole store does.
        store.data_mut().fiber_required |= !p.fiberless;
        backstop(wall, p.pre.instantiate_async(&mut *store)).await
    };
    let instance = match created {
        Ok(Ok(i)) => i,
        Ok(Err(e)) => return Err(classify(&e, store, p, PluginError::Instantiate)),
        Err(Elapsed) => return Err(PluginError::Deadline(wall.as_millis() as u64)),
    };
    if p.configured {
        return Ok(Slot {
            instance,
            guest: id,
        });
    }
    enter(store, id);
    let configured = backstop(
        wall,
        call(
            store,
            p,
            &instance,
            &p.exports.configure,
            (p.config_json.as_str(),),
        ),
    )
    .await;
    log_output(store);
    match configured {
        Ok(Ok((Ok(()),))) => Ok(Slot {
            instance,
            guest: id,
        }),
        Ok(Ok((Err(why),))) => Err(PluginError::Configure(why)),
        Ok(Err(e)) => Err(classify(&e, store, p, PluginError::Trap)),
        Err(Elapsed) => Err(PluginError::Deadline(wall.as_millis() as u64)),
    }
}

/// The wall-clock limit passed.
struct Elapsed;

/// Runs `fut` under a wall-clock limit that is armed only if `fut` has to
/// wait. CPU time is bounded by epochs; the wall clock matters only while a
/// guest waits on the host (a DNS answer), and most calls never do, so most
/// calls register no timer at all.
async fn backstop<F: Future>(wall: Duration, fut: F) -> Result<F::Output, Elapsed> {
    let mut fut = std::pin::pin!(fut);
    match crate::poll::once(fut.as_mut()).await {
        Poll::Ready(out) => Ok(out),
        Poll::Pending => tokio::time::timeout(wall, fut).await.map_err(|_| Elapsed),
    }
}

fn log_output(store: &mut Store<HostState>) {
    if let Some(out) = store.data_mut().take_output() {
        let plugin = store.data().guest().plugin.clone();
        for line in out.lines().filter(|l| !l.trim().is_empty()).take(50) {
            tracing::warn!(
                plugin = &*plugin,
                "guest output: {}",
                caps::log::sanitize(line)
            );
        }
    }
}

/// Names the cause of a failed call.
fn classify(
    e: &wasmtime::Error,
    store: &Store<HostState>,
    p: &LoadedPlugin,
    other: fn(String) -> PluginError,
) -> PluginError {
    if store.data().guest().limiter.hit {
        PluginError::Memory(p.spec.memory_limit)
    } else if matches!(e.downcast_ref::<Trap>(), Some(Trap::Interrupt)) {
        PluginError::Deadline(p.spec.timeout.as_millis() as u64)
    } else {
        let text = format!("{e:#}");
        other(text.chars().take(500).collect())
    }
}

/// A stage's input, prepared once for all the steps of its chain: the
/// context every step's call lends to its plugin, and the stage's subject.
pub struct Prepared<'a> {
    stage: Stage,
    about: Arc<About>,
    subject: Subject<'a>,
}

/// What a stage's hook is about, besides its context.
enum Subject<'a> {
    Connect,
    Helo(&'a str),
    Mail(&'a str),
    Rcpt(&'a str),
    Data(MessageBody),
    Deliver(wit::Delivery, MessageBody, Option<&'a types::HomeDir>),
}

impl<'a> Prepared<'a> {
    /// Prepares `input`.
    pub fn new(input: &'a HookInput<'a>) -> Self {
        let (about, subject) = match input {
            HookInput::Connect { client } => (About::new(client, None), Subject::Connect),
            HookInput::Helo { client, helo } => (About::new(client, None), Subject::Helo(helo)),
            HookInput::Mail { client, sender } => (About::new(client, None), Subject::Mail(sender)),
            HookInput::Rcpt {
                client,
                envelope,
                rcpt,
            } => (About::new(client, Some(envelope)), Subject::Rcpt(rcpt)),
            HookInput::Data {
                client,
                envelope,
                message,
            } => (
                About::new(client, Some(envelope)),
                Subject::Data(MessageBody::new(message.clone())),
            ),
            HookInput::Deliver {
                client,
                delivery,
                envelope,
                message,
            } => (
                About::new(client, Some(envelope)),
                Subject::Deliver(
                    convert::delivery(delivery),
                    MessageBody::new(message.clone()),
                    delivery.home.as_ref(),
                ),
            ),
        };
        Prepared {
            stage: input.stage(),
            about,
            subject,
        }
    }
}

/// The instances of one SMTP transaction (or one delivery), created on first
/// use, all in one store: one store, one fiber stack and one registration of
/// the compiled code per transaction instead of one per plugin. Each instance
/// keeps its own memory, tables, grants, limits and output (its [`Guest`]).
/// Holds its plugin set, so a reload mid-transaction does not change it.
pub struct Instances {
    set: Arc<PluginSet>,
    store: Option<Store<HostState>>,
    live: HashMap<Arc<str>, Slot>,
}

impl std::fmt::Debug for Instances {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instances")
            .field("live", &self.live.len())
            .finish()
    }
}

impl Instances {
    /// No instances yet, over `set`.
    pub fn new(set: Arc<PluginSet>) -> Self {
        Instances {
            set,
            store: None,
            live: HashMap::new(),
        }
    }

    /// The set these instances come from.
    pub fn set(&self) -> &Arc<PluginSet> {
        &self.set
    }

    /// Whether no instance was made (there is nothing to drop).
    pub fn is_empty(&self) -> bool {
        self.store.is_none()
    }

    /// Moves the instances out, leaving none.
    pub fn take(&mut self) -> Instances {
        Instances {
            set: self.set.clone(),
            store: self.store.take(),
            live: std::mem::take(&mut self.live),
        }
    }

    /// Creates `plugin`'s instance ahead of its first call. A failure is not
    /// reported here: the first call tries again and reports it.
    pub async fn warm(&mut self, plugin: &str) {
        let Instances { set, store, live } = self;
        if let Some(p) = set.plugins.get(plugin) {
            let _ = live_instance(set, store, live, p).await;
        }
    }

    /// Calls `plugin`'s hook for `input` with the step's `args`.
    pub async fn call(
        &mut self,
        plugin: &str,
        input: &Prepared<'_>,
        args: &[String],
    ) -> Result<Outcome, PluginError> {
        let Instances { set, store, live } = self;
        let Some(p) = set.plugins.get(plugin) else {
            return Err(PluginError::NotLoaded);
        };
        p.stats.calls.fetch_add(1, Ordering::Relaxed);
        let result = call_loaded(set, store, live, p, input, args).await;
        if result.is_err() {
            p.stats.failures.fetch_add(1, Ordering::Relaxed);
            // A trapped instance cannot be entered again; the next call
            // starts afresh (the dead one stays in the store until the end).
            live.remove(&p.name);
        }
        result
    }
}

async fn call_loaded(
    set: &PluginSet,
    store: &mut Option<Store<HostState>>,
    live: &mut HashMap<Arc<str>, Slot>,
    p: &LoadedPlugin,
    input: &Prepared<'_>,
    args: &[String],
) -> Result<Outcome, PluginError> {
    if !p.implements(input.stage) {
        return Err(PluginError::NoStage(input.stage.name()));
    }
    let slot = live_instance(set, store, live, p).await?;
    let store = store.as_mut().ok_or(PluginError::NotLoaded)?;
    enter(store, slot.guest);
    let wall = p.spec.timeout + WALL_CLOCK_SLACK;
    let called = backstop(wall, dispatch(p, store, &slot.instance, input, args)).await;
    log_output(store);
    match called {
        Ok(Ok(o)) => convert::outcome(o),
        Ok(Err(e)) => Err(classify(&e, store, p, PluginError::Trap)),
        Err(Elapsed) => Err(PluginError::Deadline(wall.as_millis() as u64)),
    }
}

/// `p`'s live instance, created (and configured) if there is none yet.
async fn live_instance(
    set: &PluginSet,
    store: &mut Option<Store<HostState>>,
    live: &mut HashMap<Arc<str>, Slot>,
    p: &LoadedPlugin,
) -> Result<Slot, PluginError> {
    if let Some(slot) = live.get(&p.name) {
        return Ok(*slot);
    }
    let slot = instantiate(set, store, p).await?;
    live.insert(p.name.clone(), slot);
    Ok(slot)
}

/// Puts `value` in the store's table for one call: the owned handle (to
/// delete afterwards) and the borrow the guest receives.
fn lend<T: Send + 'static>(
    store: &mut Store<HostState>,
    value: T,
) -> wasmtime::Result<(Resource<T>, Resource<T>)> {
    let own = store.data_mut().table.push(value)?;
    let borrow = Resource::<T>::new_borrow(own.rep());
    Ok((own, borrow))
}

/// Calls the stage's export, lending the step's context for the call.
async fn dispatch(
    p: &LoadedPlugin,
    store: &mut Store<HostState>,
    instance: &Instance,
    input: &Prepared<'_>,
    args: &[String],
) -> wasmtime::Result<wit::Outcome> {
    let (cx_own, cx) = lend(store, input.about.step(args))?;
    let called = dispatch_with(p, store, instance, &input.subject, cx).await;
    store.data_mut().table.delete(cx_own)?;
    Ok(called?.0)
}

/// Calls the export that answers `subject`, with the context handle `cx`.
async fn dispatch_with(
    p: &LoadedPlugin,
    store: &mut Store<HostState>,
    instance: &Instance,
    subject: &Subject<'_>,
    cx: Resource<CallContext>,
) -> wasmtime::Result<(wit::Outcome,)> {
    let no_stage = || wasmtime::format_err!("stage not exported");
    let session = || p.exports.session.as_ref().ok_or_else(no_stage);
    match subject {
        Subject::Connect => call(store, p, instance, &session()?.connect, (cx,)).await,
        Subject::Helo(helo) => call(store, p, instance, &session()?.helo, (cx, *helo)).await,
        Subject::Mail(sender) => call(store, p, instance, &session()?.mail, (cx, *sender)).await,
        Subject::Rcpt(rcpt) => call(store, p, instance, &session()?.rcpt, (cx, *rcpt)).await,
        Subject::Data(message) => {
            let export = p.exports.data.as_ref().ok_or_else(no_stage)?;
            let (own, borrow) = lend(store, message.clone())?;
            let r = call(store, p, instance, export, (cx, borrow)).await;
            store.data_mut().table.delete(own)?;
            r
        }
        Subject::Deliver(delivery, message, home) => {
            let export = p.exports.deliver.as_ref().ok_or_else(no_stage)?;
            store.data_mut().home = home.cloned();
            let (own, borrow) = lend(store, message.clone())?;
            let r = call(store, p, instance, export, (cx, delivery, borrow)).await;
            store.data_mut().home = None;
            store.data_mut().table.delete(own)?;
            r
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_passed_to_configure_by_content() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("t.regexp"), "/x/ REJECT no\n").expect("write");
        let spec = PluginConfig {
            path: "p.wasm".into(),
            capabilities: vec![],
            timeout: Duration::from_millis(100),
            memory_limit: 1 << 20,
            on_error: OnError::Tempfail,
            config_json: r#"{"a":1}"#.into(),
            files: [("header_checks".to_owned(), PathBuf::from("t.regexp"))].into(),
            line: 1,
        };
        let json: serde_json::Value =
            serde_json::from_str(&config_with_files(&spec, dir.path()).expect("read"))
                .expect("json");
        assert_eq!(json["a"], 1);
        assert_eq!(json["files"]["header_checks"], "/x/ REJECT no\n");
        let mut missing = spec.clone();
        missing.files.insert("body_checks".into(), "nope".into());
        let err = config_with_files(&missing, dir.path()).expect_err("missing file");
        assert!(err.starts_with("files.body_checks: "), "{err}");
    }
}
