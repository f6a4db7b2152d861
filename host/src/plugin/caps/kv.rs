//! `postern:mta/kv`: a persistent key-value store with one namespace per
//! plugin and optional expiry, for greylisting and rate state.
//!
//! Backed by redb in `$data_directory/plugin-kv.redb`, so it survives
//! restarts. Keys are `plugin \0 key`; values carry their expiry (ms since the
//! epoch, 0 = never) in front. Expired entries read as absent and are removed
//! lazily. Writes are committed (fsynced) before the call returns.

use std::path::Path;
use std::sync::Arc;

use redb::{Database, TableDefinition};

use super::super::bindings::postern::mta::kv::Host;
use super::super::state::HostState;
use super::clock::now_ms;
use crate::config::Capability;

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("plugin-kv");

/// Longest key and value a plugin may store.
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest value a plugin may store.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
#[error("kv store: {0}")]
pub struct KvError(String);

fn err(e: impl std::fmt::Display) -> KvError {
    KvError(e.to_string())
}

/// The embedded store.
#[derive(Debug, Clone)]
pub struct KvStore {
    db: Arc<Database>,
}

fn full_key(namespace: &str, key: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(namespace.len() + 1 + key.len());
    k.extend_from_slice(namespace.as_bytes());
    k.push(0);
    k.extend_from_slice(key.as_bytes());
    k
}

impl KvStore {
    /// Opens (or creates) the store file.
    pub fn open(path: &Path) -> Result<KvStore, KvError> {
        let db = Database::create(path).map_err(err)?;
        let tx = db.begin_write().map_err(err)?;
        tx.open_table(TABLE).map_err(err)?;
        tx.commit().map_err(err)?;
        Ok(KvStore { db: Arc::new(db) })
    }

    /// The live value of `key` in `namespace`.
    pub fn get(&self, namespace: &str, key: &str, now_ms: u64) -> Result<Option<Vec<u8>>, KvError> {
        let tx = self.db.begin_read().map_err(err)?;
        let table = tx.open_table(TABLE).map_err(err)?;
        let Some(v) = table
            .get(full_key(namespace, key).as_slice())
            .map_err(err)?
        else {
            return Ok(None);
        };
        let raw = v.value();
        let Some((expiry, value)) = raw.split_first_chunk::<8>() else {
            return Ok(None);
        };
        let expiry = u64::from_be_bytes(*expiry);
        if expiry != 0 && expiry <= now_ms {
            return Ok(None);
        }
        Ok(Some(value.to_vec()))
    }

    /// Stores `value`, expiring `ttl_secs` after `now_ms` if given.
    pub fn set(
        &self,
        namespace: &str,
        key: &str,
        value: &[u8],
        ttl_secs: Option<u64>,
        now_ms: u64,
    ) -> Result<(), KvError> {
        let expiry = ttl_secs.map_or(0, |t| now_ms.saturating_add(t.saturating_mul(1000)));
        let mut stored = Vec::with_capacity(8 + value.len());
        stored.extend_from_slice(&expiry.to_be_bytes());
        stored.extend_from_slice(value);
        let tx = self.db.begin_write().map_err(err)?;
        {
            let mut table = tx.open_table(TABLE).map_err(err)?;
            table
                .insert(full_key(namespace, key).as_slice(), stored.as_slice())
                .map_err(err)?;
        }
        tx.commit().map_err(err)
    }

    /// Removes `key`.
    pub fn delete(&self, namespace: &str, key: &str) -> Result<(), KvError> {
        let tx = self.db.begin_write().map_err(err)?;
        {
            let mut table = tx.open_table(TABLE).map_err(err)?;
            table
                .remove(full_key(namespace, key).as_slice())
                .map_err(err)?;
        }
        tx.commit().map_err(err)
    }
}

impl HostState {
    fn kv(&self) -> wasmtime::Result<KvStore> {
        self.require(Capability::Kv)?;
        self.guest()
            .kv
            .clone()
            .ok_or_else(|| wasmtime::format_err!("kv store unavailable"))
    }
}

impl Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Option<Vec<u8>>> {
        let kv = self.kv()?;
        if key.len() > MAX_KEY_BYTES {
            return Ok(None);
        }
        Ok(kv.get(&self.guest().plugin, &key, now_ms())?)
    }

    async fn set(
        &mut self,
        key: String,
        value: Vec<u8>,
        ttl_secs: Option<u64>,
    ) -> wasmtime::Result<()> {
        let kv = self.kv()?;
        if key.len() > MAX_KEY_BYTES || value.len() > MAX_VALUE_BYTES {
            wasmtime::bail!(
                "kv: key or value too large ({} / {} bytes)",
                key.len(),
                value.len()
            );
        }
        let ns = self.guest().plugin.clone();
        // The commit fsyncs: keep it off the async workers.
        tokio::task::spawn_blocking(move || kv.set(&ns, &key, &value, ttl_secs, now_ms()))
            .await??;
        Ok(())
    }

    async fn delete(&mut self, key: String) -> wasmtime::Result<()> {
        let kv = self.kv()?;
        let ns = self.guest().plugin.clone();
        tokio::task::spawn_blocking(move || kv.delete(&ns, &key)).await??;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_ttl_and_persistence() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("kv.redb");
        {
            let kv = KvStore::open(&path).expect("open");
            kv.set("a", "k", b"1", None, 1000).expect("set");
            kv.set("b", "k", b"2", Some(10), 1000).expect("set");
            assert_eq!(kv.get("a", "k", 1000).expect("get"), Some(b"1".to_vec()));
            assert_eq!(kv.get("b", "k", 10_999).expect("get"), Some(b"2".to_vec()));
            assert_eq!(kv.get("b", "k", 11_000).expect("get"), None, "expired");
            assert_eq!(
                kv.get("c", "k", 1000).expect("get"),
                None,
                "other namespace"
            );
            kv.delete("a", "k").expect("delete");
            assert_eq!(kv.get("a", "k", 1000).expect("get"), None);
            kv.set("a", "keep", b"x", None, 0).expect("set");
        }
        let kv = KvStore::open(&path).expect("reopen");
        assert_eq!(kv.get("a", "keep", 5).expect("get"), Some(b"x".to_vec()));
    }
}
