//! `configure` once per load: a plugin's instance, right after `configure`,
//! frozen into a new component whose instances start configured. That one
//! `configure` is also the load's check of the plugin's settings and exports.
//!
//! Every SMTP transaction gets a fresh instance, and each used to run
//! `configure` again: for a plugin that parses tables there (regexp tables,
//! access maps) that was most of its cost per message. At load, the component
//! is instrumented (Wizer), instantiated, configured, and its memories and
//! globals are written back into a copy as initial state. Instances of that
//! copy are fresh (nothing of one transaction reaches the next) and already
//! configured.
//!
//! Not frozen, and configured per instance as before: a component that holds
//! host resources after `configure` (e.g. a WASI stream it printed to: the
//! handle would be dangling in every copy), and one larger than
//! [`MAX_FROZEN_BYTES`] (Python and JavaScript runtimes: two more compilations
//! at load would cost seconds, and they pre-initialize their runtime when
//! built). Any failure here falls back the same way; only the log says so.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use wasmtime::Store;
use wasmtime::component::{Component, Instance, Lift, WasmList};
use wasmtime_wizer::{ComponentContext, ComponentInstanceState, Wizer};

use super::state::HostState;
use super::{LoadedPlugin, PluginRuntime, PluginSet, engine, first_instance};

/// Components larger than this are configured per instance.
pub const MAX_FROZEN_BYTES: usize = 8 << 20;

/// Runs `p`'s `configure` for this load (once) and checks its exports on
/// that instance; when it can, freezes the configured instance. `Ok(Some)`:
/// the plugin running the frozen copy; `Ok(None)`: instances run `configure`
/// themselves (the log says why); `Err`: `p` refused its settings or
/// exports the wrong types (a load error).
pub async fn configure(
    rt: &PluginRuntime,
    set: &PluginSet,
    p: &LoadedPlugin,
    wasm: Arc<[u8]>,
) -> Result<Option<LoadedPlugin>, String> {
    let path = frozen_path(rt, p);
    // The first instance runs `configure` and checks the exports whatever
    // happens next; only a failure there is a load error.
    let frozen = match probe(rt, p, &wasm, &path).await {
        Probe::Cached(frozen) => {
            first_instance(set, p).await?;
            Ok(frozen)
        }
        Probe::Unfit(why) => {
            first_instance(set, p).await?;
            Err(why)
        }
        Probe::Instrumented(probe) => {
            let (cx, instrumented) = *probe;
            let (mut store, instance) = first_instance(set, &instrumented).await?;
            freeze(rt, &cx, &mut store, instance, path).await
        }
    }
    .and_then(|c| p.with_component(rt, &c, true));
    match frozen {
        Ok(p) => Ok(Some(p)),
        Err(why) => {
            tracing::info!(plugin = &*p.name, "configured per instance: {why}");
            Ok(None)
        }
    }
}

/// Where `p`'s frozen copy is cached: same component, same settings, same
/// frozen copy (a restart or a reload that changed nothing else reuses it).
fn frozen_path(rt: &PluginRuntime, p: &LoadedPlugin) -> PathBuf {
    let key = engine::content_hash(format!("{}\n{}", p.hash, p.config_json).as_bytes());
    engine::artifact(&rt.engine, &rt.cache_dir, &format!("frozen-{key}"))
}

/// What a load can do with a plugin.
enum Probe<'w> {
    /// Its frozen copy from an earlier load.
    Cached(Component),
    /// Nothing: it cannot be frozen, for this reason.
    Unfit(String),
    /// Instrumented for freezing: Wizer's context and the plugin running
    /// the instrumented component.
    Instrumented(Box<(ComponentContext<'w>, LoadedPlugin)>),
}

/// The cached frozen copy of `p` (from `wasm`), else `p` instrumented.
async fn probe<'w>(rt: &PluginRuntime, p: &LoadedPlugin, wasm: &'w [u8], path: &Path) -> Probe<'w> {
    if wasm.len() > MAX_FROZEN_BYTES {
        return Probe::Unfit(format!("larger than {MAX_FROZEN_BYTES} bytes"));
    }
    let (engine, found) = (rt.engine.clone(), path.to_owned());
    if let Ok(Some(c)) = blocking(move || Ok(engine::cached(&engine, &found))).await {
        return Probe::Cached(c);
    }
    let (cx, instrumented) = match Wizer::new().instrument_component(wasm) {
        Ok(done) => done,
        Err(e) => return Probe::Unfit(format!("cannot instrument: {e:#}")),
    };
    // Compiled in memory only: it serves this one instance.
    let engine = rt.engine.clone();
    let compiled = blocking(move || engine::compile(&engine, &instrumented))
        .await
        .and_then(|c| p.with_component(rt, &c, false));
    match compiled {
        Ok(probe) => Probe::Instrumented(Box::new((cx, probe))),
        Err(why) => Probe::Unfit(why),
    }
}

/// The configured `instance` written into a copy of the component, compiled
/// (and cached at `path` unless `configure` read the host).
async fn freeze(
    rt: &PluginRuntime,
    cx: &ComponentContext<'_>,
    store: &mut Store<HostState>,
    instance: Instance,
    path: PathBuf,
) -> Result<Component, String> {
    if !store.data().table.is_empty() {
        return Err("holds host resources after configure".into());
    }
    let read_host = store.data().guest().read_host();
    let mut state = State {
        store,
        instance,
        failed: None,
    };
    let frozen = Wizer::new()
        .snapshot_component(cx, &mut state)
        .await
        .map_err(|e| format!("cannot snapshot: {e:#}"))?;
    if let Some(e) = state.failed {
        return Err(format!("cannot snapshot: {e}"));
    }
    let engine = rt.engine.clone();
    if read_host {
        // What it read (the time, kv, DNS) belongs to this load only.
        blocking(move || engine::compile(&engine, &frozen)).await
    } else {
        blocking(move || engine::compile_to(&engine, &path, &frozen)).await
    }
}

/// Runs `f` off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| e.to_string())?
}

/// The configured instance, read through the accessors Wizer added.
struct State<'a> {
    store: &'a mut Store<HostState>,
    instance: Instance,
    failed: Option<String>,
}

impl State<'_> {
    /// Calls the accessor `func` of `instance`; `None` (and `failed` set) if
    /// it is missing or traps.
    async fn call<R: Lift + Send + Sync + 'static>(
        &mut self,
        instance: &str,
        func: &str,
    ) -> Option<R> {
        let called = async {
            let (_, iface) = self
                .instance
                .get_export(&mut *self.store, None, instance)
                .ok_or("no accessor instance")?;
            let (_, index) = self
                .instance
                .get_export(&mut *self.store, Some(&iface), func)
                .ok_or("no accessor")?;
            let typed = self
                .instance
                .get_typed_func::<(), (R,)>(&mut *self.store, index)
                .map_err(|e| e.to_string())?;
            typed
                .call_async(&mut *self.store, ())
                .await
                .map(|(r,)| r)
                .map_err(|e| e.to_string())
        };
        match called.await {
            Ok(r) => Some(r),
            Err(e) => {
                self.failed.get_or_insert(format!("{instance}#{func}: {e}"));
                None
            }
        }
    }
}

impl ComponentInstanceState for State<'_> {
    async fn call_func_ret_list_u8(
        &mut self,
        instance: &str,
        func: &str,
        contents: impl FnOnce(&[u8]) + Send,
    ) {
        match self.call::<WasmList<u8>>(instance, func).await {
            Some(list) => contents(list.as_le_slice(&*self.store)),
            None => contents(&[]),
        }
    }

    async fn call_func_ret_s32(&mut self, instance: &str, func: &str) -> i32 {
        self.call(instance, func).await.unwrap_or_default()
    }

    async fn call_func_ret_s64(&mut self, instance: &str, func: &str) -> i64 {
        self.call(instance, func).await.unwrap_or_default()
    }

    async fn call_func_ret_f32(&mut self, instance: &str, func: &str) -> u32 {
        self.call::<f32>(instance, func)
            .await
            .unwrap_or_default()
            .to_bits()
    }

    async fn call_func_ret_f64(&mut self, instance: &str, func: &str) -> u64 {
        self.call::<f64>(instance, func)
            .await
            .unwrap_or_default()
            .to_bits()
    }
}
