//! The one wasmtime `Engine`, its epoch ticker, and the on-disk cache of
//! compiled components.
//!
//! Compiling a component takes 0.1 s (Rust) to 10 s (Python); loading a
//! precompiled artifact takes well under a millisecond. Artifacts are cached as
//! `<sha256 of the .wasm>-<engine compatibility hash>.cwasm`, written to a
//! temporary name and renamed, so a restart or a reload of an unchanged plugin
//! never recompiles, and a half-written artifact is never loaded. Using an
//! artifact marks it (its modification time); after each load, artifacts no
//! load has used for [`CACHE_UNUSED_FOR`] are removed, so replaced plugins and
//! edited settings (each edit freezes a new copy) do not pile up.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use wasmtime::component::Component;
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

/// How often the epoch advances: the granularity of plugin deadlines.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Linear memory reset by memset (not madvise) when a slot is reused.
const MEMORY_KEEP_RESIDENT_BYTES: usize = 512 << 10;
/// Table memory reset by memset when a slot is reused.
const TABLE_KEEP_RESIDENT_BYTES: usize = 64 << 10;

/// How long a compiled artifact that no load uses stays in the cache.
pub const CACHE_UNUSED_FOR: Duration = Duration::from_secs(24 * 3600);

/// The largest memory any plugin instance may have (per-plugin caps are lower).
pub const MAX_PLUGIN_MEMORY_BYTES: u64 = 512 << 20;

/// The process's one engine (and its epoch ticker), created on first use.
/// One per process: the pooling allocator reserves address space for every
/// slot up front.
pub fn shared() -> Result<&'static Engine, String> {
    static ENGINE: OnceLock<Result<(Engine, Ticker), String>> = OnceLock::new();
    let made = ENGINE.get_or_init(|| {
        let engine = new_engine().map_err(|e| format!("cannot create the wasm engine: {e:#}"))?;
        let ticker = Ticker::start(engine.clone())
            .map_err(|e| format!("cannot start the epoch ticker: {e}"))?;
        Ok((engine, ticker))
    });
    made.as_ref().map(|(e, _)| e).map_err(Clone::clone)
}

fn new_engine() -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    config.epoch_interruption(true);
    let mut pool = PoolingAllocationConfig::default();
    pool.total_component_instances(1000);
    pool.total_core_instances(4000);
    pool.total_memories(1000);
    pool.total_tables(2000);
    pool.max_memory_size(usize::try_from(MAX_PLUGIN_MEMORY_BYTES).unwrap_or(usize::MAX));
    // Instances live for one transaction, so slots are reset all the time.
    // Resetting the first pages with memset instead of madvise avoids a TLB
    // shootdown on every other core per instance (measured: it dominated the
    // cost of a chain of no-op plugins under load). Small plugins fit.
    pool.linear_memory_keep_resident(MEMORY_KEEP_RESIDENT_BYTES);
    pool.table_keep_resident(TABLE_KEEP_RESIDENT_BYTES);
    // Reset only the pages an instance touched (Linux ≥ 6.7; else as above).
    pool.pagemap_scan(Enabled::Auto);
    config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    Engine::new(&config)
}

/// Advances the engine's epoch every [`EPOCH_TICK`] until dropped.
#[derive(Debug)]
pub struct Ticker {
    stop: Arc<AtomicBool>,
}

impl Ticker {
    /// Starts the ticker thread.
    pub fn start(engine: Engine) -> std::io::Result<Ticker> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::Builder::new()
            .name("plugin-epoch".into())
            .spawn(move || {
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(EPOCH_TICK);
                    engine.increment_epoch();
                }
            })?;
        Ok(Ticker { stop })
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// The sha256 of a component, hex.
pub fn content_hash(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Loads `wasm` through the cache in `cache_dir`; returns the component and
/// whether it had to be compiled. Blocking: call off the async workers.
pub fn load_component(
    engine: &Engine,
    cache_dir: &Path,
    wasm: &[u8],
) -> Result<(Component, bool), String> {
    let path = artifact(engine, cache_dir, &content_hash(wasm));
    if let Some(c) = cached(engine, &path) {
        return Ok((c, false));
    }
    compile_to(engine, &path, wasm).map(|c| (c, true))
}

/// Where the compiled artifact named `key` lives: the key and the engine's
/// compatibility hash.
pub fn artifact(engine: &Engine, cache_dir: &Path, key: &str) -> PathBuf {
    let mut h = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    cache_dir.join(format!("{key}-{:016x}.cwasm", h.finish()))
}

/// The compiled component at `path`, if there is a readable one.
pub fn cached(engine: &Engine, path: &Path) -> Option<Component> {
    if !path.exists() {
        return None;
    }
    // SAFETY: the artifact was produced by `precompile_component` of an
    // engine with the same compatibility hash (it is in the name) and
    // written by us with temp + rename into our own data directory, so it
    // is complete and trusted. A damaged one is recompiled by the caller.
    #[allow(unsafe_code)]
    match unsafe { Component::deserialize_file(engine, path) } {
        Ok(c) => {
            mark_used(path);
            Some(c)
        }
        Err(e) => {
            tracing::warn!(
                "ignoring unreadable compiled plugin {}: {e}",
                path.display()
            );
            None
        }
    }
}

/// Compiles `wasm` in memory only (nothing cached). Blocking.
pub fn compile(engine: &Engine, wasm: &[u8]) -> Result<Component, String> {
    Component::new(engine, wasm).map_err(|e| format!("cannot compile: {e:#}"))
}

/// Compiles `wasm`, writes the artifact to `path` (temp + rename) and loads
/// it from there. Blocking.
pub fn compile_to(engine: &Engine, path: &Path, wasm: &[u8]) -> Result<Component, String> {
    let compiled = engine
        .precompile_component(wasm)
        .map_err(|e| format!("{e:#}"))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::write(&tmp, &compiled)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("{}: {e}", path.display()))?;
    // SAFETY: as in `cached`; this file was written from `precompile_component` just now.
    #[allow(unsafe_code)]
    let component =
        unsafe { Component::deserialize_file(engine, path) }.map_err(|e| format!("{e:#}"))?;
    Ok(component)
}

/// Sets `path`'s modification time to now: the artifact is in use. Best
/// effort (a read-only cache is only never pruned).
fn mark_used(path: &Path) {
    if let Ok(file) = std::fs::File::open(path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// Removes the compiled artifacts in `cache_dir` (and temporary files left by
/// an interrupted write) that have not been used for `unused_for`; returns how
/// many went. Blocking.
pub fn prune(cache_dir: &Path, unused_for: Duration) -> usize {
    let Ok(entries) = std::fs::read_dir(cache_dir) else {
        return 0;
    };
    let Some(cutoff) = SystemTime::now().checked_sub(unused_for) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.ends_with(".cwasm") || name.ends_with(".tmp")) {
            continue;
        }
        let stale = entry
            .metadata()
            .and_then(|m| m.modified())
            .is_ok_and(|t| t < cutoff);
        if stale && std::fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pruning_keeps_what_was_used_recently() {
        let dir = tempfile::tempdir().expect("tempdir");
        let day = Duration::from_secs(24 * 3600);
        let old = SystemTime::now() - 2 * day;
        let write = |name: &str, modified: SystemTime| {
            let path = dir.path().join(name);
            std::fs::write(&path, b"x").expect("write");
            std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(modified))
                .expect("set_modified");
            path
        };
        let stale = write("aa-1.cwasm", old);
        let half_written = write("bb-1.cwasm.77.tmp", old);
        let fresh = write("cc-1.cwasm", SystemTime::now());
        let used = write("dd-1.cwasm", old);
        let other = write("notes.txt", old);
        mark_used(&used);
        assert_eq!(prune(dir.path(), day), 2);
        assert!(!stale.exists() && !half_written.exists());
        assert!(fresh.exists() && used.exists() && other.exists());
        assert_eq!(prune(&dir.path().join("missing"), day), 0);
    }
}
