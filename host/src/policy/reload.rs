//! Reloading: a new configuration's plugins and chains replace the current
//! ones only if every plugin loads; otherwise the old set keeps serving and the
//! reasons are logged.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};

use super::{Policy, PolicySet};
use crate::config::Config;
use crate::control::Control;

/// Quiet time after the last change before reloading (an editor's save or a
/// `cp` of a large component comes as several events).
const SETTLE: Duration = Duration::from_millis(300);

/// Reloads the policy from `config` (the embedded default when `None`).
/// Returns a summary line, or the reasons nothing changed.
pub async fn reload(policy: &Policy, config: Option<&Path>) -> Result<String, Vec<String>> {
    let cfg = Config::load(config)
        .map_err(|e| e.0.iter().map(ToString::to_string).collect::<Vec<_>>())?;
    let old = policy.snapshot();
    match policy.runtime().load(&cfg, Some(&old.plugins)).await {
        Ok(set) => {
            let n = set.list().len();
            policy.replace(PolicySet {
                chains: cfg.chains,
                plugins: std::sync::Arc::new(set),
            });
            let line = format!("reloaded: {n} plugin(s)");
            tracing::info!("{line}");
            Ok(line)
        }
        Err(errors) => {
            let reasons: Vec<String> = errors.iter().map(ToString::to_string).collect();
            for r in &reasons {
                tracing::error!("reload refused, previous plugins still serving: {r}");
            }
            Err(reasons)
        }
    }
}

/// Watches the plugin directory and the configuration file; reloads after
/// changes settle. The watcher stops when the returned value is dropped.
pub fn watch(
    plugin_dir: &Path,
    config: Option<&Path>,
    files: &[PathBuf],
    control: Arc<Control>,
) -> notify::Result<notify::RecommendedWatcher> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    let config_file: Option<PathBuf> =
        config.map(|c| std::fs::canonicalize(c).unwrap_or_else(|_| c.to_owned()));
    // Watch and compare canonical paths: events name files under the watched path.
    let plugin_dir_c = std::fs::canonicalize(plugin_dir).unwrap_or_else(|_| plugin_dir.to_owned());
    let plugin_dir_watch = plugin_dir_c.clone();
    let files: Vec<PathBuf> = files
        .iter()
        .map(|f| std::fs::canonicalize(f).unwrap_or_else(|_| f.clone()))
        .collect();
    let file_dirs: Vec<PathBuf> = files
        .iter()
        .filter_map(|f| f.parent().map(Path::to_path_buf))
        .collect();
    let wanted = {
        let config_file = config_file.clone();
        let files = files.clone();
        move |p: &Path| {
            p.starts_with(&plugin_dir_c)
                || config_file.as_deref() == Some(p)
                || files.iter().any(|f| f == p)
        }
    };
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        if let Ok(event) = event
            && !event.kind.is_access()
            && event.paths.iter().any(|p| wanted(p))
        {
            // A full channel already holds a pending reload: that one will do.
            let _ = tx.try_send(());
        }
    })?;
    watcher.watch(&plugin_dir_watch, RecursiveMode::NonRecursive)?;
    let mut dirs: Vec<PathBuf> = config_file
        .as_deref()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .into_iter()
        .collect();
    dirs.extend(file_dirs);
    dirs.sort();
    dirs.dedup();
    for d in dirs.iter().filter(|d| **d != plugin_dir_watch) {
        watcher.watch(d, RecursiveMode::NonRecursive)?;
    }
    tokio::spawn(async move {
        while rx.recv().await.is_some() {
            // Let the burst of events settle, then reload once.
            loop {
                tokio::time::sleep(SETTLE).await;
                if rx.try_recv().is_err() {
                    break;
                }
            }
            tracing::info!("plugin or configuration change detected");
            let _ = control.reload().await;
        }
    });
    Ok(watcher)
}
