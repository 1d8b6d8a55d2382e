//! A cold tier on object storage (S3, GCS, Azure Blob, a local directory, ...)
//! through the [`object_store`] crate.
//!
//! Each key is one object under a prefix, named by a 128-bit hash of the key
//! and holding a record (expiry, the key itself, the value): a collision or
//! a foreign object reads as a miss, never as another key's value. Object
//! stores have no TTL of their own: an expired object reads as absent, and
//! [`ObjectStoreBackend::cleanup`] deletes the expired records under the
//! prefix (or give the bucket a lifecycle rule as long as the layer's TTL
//! cap). Reads never delete: a record written by another process between a
//! read and a delete would be lost.
//!
//! Writes are whole-object puts, atomic in every store. `set_if_absent` is a
//! conditional put (`PutMode::Create`), atomic across processes and hosts;
//! an expired holder, and a lease being renewed (`renew_if`), are replaced
//! only by a put conditional on their version (`PutMode::Update`), so two
//! takers never both win. On a store without conditional updates (a local
//! directory) the replacement checks the version, deletes and creates: the
//! window in which two takers could both win is narrow, not closed.
//!
//! Bring a store built with the `object_store` crate's own features (`aws`,
//! `gcp`, `azure`; the same major version as cachewright's, 0.14). Object stores
//! are slower than Redis: give the layer a timeout to match
//! (`LayerConfig::timeout`).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};

use crate::record::{self, now_ms};
use crate::{Backend, BackendError};

const MAGIC: &[u8] = b"cachewright-object 1\n";

/// One object per key in an [`ObjectStore`].
///
/// # Examples
///
/// ```
/// use std::sync::Arc;
/// use std::time::Duration;
/// use cachewright::backends::{object::ObjectStoreBackend, Backend};
/// use object_store::memory::InMemory;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// // In production: object_store::aws::AmazonS3Builder::from_env()...build()
/// let objects = ObjectStoreBackend::new(Arc::new(InMemory::new())).prefix("cache/shop");
/// objects.set("urn:shop:v1:user:1", b"ada".to_vec(), Duration::from_secs(3600)).await.unwrap();
/// assert_eq!(objects.get("urn:shop:v1:user:1").await.unwrap(), Some(b"ada".to_vec()));
/// # });
/// ```
#[derive(Debug, Clone)]
pub struct ObjectStoreBackend {
    store: Arc<dyn ObjectStore>,
    prefix: Path,
}

fn err(e: object_store::Error) -> BackendError {
    BackendError::Connection {
        backend: "object_store".into(),
        source: Box::new(e),
    }
}

impl ObjectStoreBackend {
    /// Objects under the prefix `cachewright/` of `store`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::object::ObjectStoreBackend;
    /// use cachewright::{Cache, LayerConfig};
    /// use object_store::memory::InMemory;
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let objects = ObjectStoreBackend::new(Arc::new(InMemory::new()));
    /// let cache = Cache::builder()
    ///     .layer(LayerConfig::new(objects).timeout(Duration::from_secs(2)))
    ///     .build();
    /// cache.set(&cache.key("report", &1), vec![1u8, 2, 3], None);
    /// assert_eq!(cache.layer_stats()[0].backend, "object_store");
    /// ```
    pub fn new(store: Arc<dyn ObjectStore>) -> Self {
        ObjectStoreBackend {
            store,
            prefix: Path::from("cachewright"),
        }
    }

    /// Keeps the objects under `prefix` (path segments separated by `/`).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{object::ObjectStoreBackend, Backend};
    /// use object_store::{memory::InMemory, ObjectStore};
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let store = Arc::new(InMemory::new());
    /// let objects = ObjectStoreBackend::new(store.clone()).prefix("cache/shop");
    /// objects.set("k", b"v".to_vec(), Duration::from_secs(60)).await.unwrap();
    /// let prefix = object_store::path::Path::from("cache/shop");
    /// let listed = store.list_with_delimiter(Some(&prefix)).await.unwrap();
    /// assert_eq!(listed.objects.len(), 1, "one object under the prefix");
    /// # });
    /// ```
    #[must_use]
    pub fn prefix(mut self, prefix: &str) -> Self {
        self.prefix = Path::from(prefix);
        self
    }

    fn path(&self, key: &str) -> Path {
        self.prefix.clone().join(record::name(key))
    }

    async fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, BackendError> {
        match self.store.get(path).await {
            Ok(r) => Ok(Some(r.bytes().await.map_err(err)?.to_vec())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    async fn remove(&self, path: &Path) -> Result<(), BackendError> {
        match self.store.delete(path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(err(e)),
        }
    }

    /// The object at `path` and its version, if any.
    async fn read_versioned(
        &self,
        path: &Path,
    ) -> Result<Option<(Vec<u8>, UpdateVersion)>, BackendError> {
        match self.store.get(path).await {
            Ok(r) => {
                let version = UpdateVersion {
                    e_tag: r.meta.e_tag.clone(),
                    version: r.meta.version.clone(),
                };
                Ok(Some((r.bytes().await.map_err(err)?.to_vec(), version)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(err(e)),
        }
    }

    /// Deletes the object at `path` if it is still at `version`; returns
    /// whether it did. Object stores have no conditional delete: the check
    /// narrows the window in which a newer object could be deleted, it does
    /// not close it.
    async fn remove_if_unchanged(
        &self,
        path: &Path,
        version: &UpdateVersion,
    ) -> Result<bool, BackendError> {
        let meta = match self.store.head(path).await {
            Ok(m) => m,
            Err(object_store::Error::NotFound { .. }) => return Ok(false),
            Err(e) => return Err(err(e)),
        };
        if meta.e_tag != version.e_tag || meta.version != version.version {
            return Ok(false);
        }
        self.remove(path).await?;
        Ok(true)
    }

    /// Replaces `key`'s record at `version` with one holding `value`, only
    /// if it is still at `version` (a conditional put where the store has
    /// one, otherwise an unchanged-check, delete and create).
    async fn replace(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
        version: UpdateVersion,
    ) -> Result<bool, BackendError> {
        let path = self.path(key);
        let put = |mode: PutMode| {
            let payload = PutPayload::from(record::encode(MAGIC, key, value, ttl));
            self.store.put_opts(&path, payload, PutOptions::from(mode))
        };
        match put(PutMode::Update(version.clone())).await {
            Ok(_) => return Ok(true),
            Err(
                object_store::Error::Precondition { .. } | object_store::Error::NotFound { .. },
            ) => return Ok(false),
            Err(
                object_store::Error::NotImplemented { .. }
                | object_store::Error::NotSupported { .. },
            ) => {}
            Err(e) => return Err(err(e)),
        }
        if !self.remove_if_unchanged(&path, &version).await? {
            return Ok(false);
        }
        match put(PutMode::Create).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
            Err(e) => Err(err(e)),
        }
    }

    /// Applies `doomed` to every record under the prefix (expiry, key) and
    /// deletes those it picks; objects that are not cachewright's records are left
    /// alone. Returns how many it deleted.
    async fn sweep(&self, doomed: impl Fn(u64, &[u8]) -> bool) -> Result<u64, BackendError> {
        let mut listed = self.store.list(Some(&self.prefix));
        let mut removed = 0;
        while let Some(meta) = listed.next().await {
            let meta = meta.map_err(err)?;
            let Some((bytes, version)) = self.read_versioned(&meta.location).await? else {
                continue;
            };
            let gone = record::parse(MAGIC, &bytes).is_some_and(|(exp, k, _)| doomed(exp, k));
            // Not if it was rewritten since it was read (a lease taken over).
            if gone && self.remove_if_unchanged(&meta.location, &version).await? {
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Deletes the expired records under the prefix; returns how many. A
    /// record rewritten while the sweep runs may go too: a miss later, never
    /// a wrong value.
    ///
    /// # Errors
    ///
    /// [`BackendError::Connection`] when the store fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{object::ObjectStoreBackend, Backend};
    /// use object_store::memory::InMemory;
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let objects = ObjectStoreBackend::new(Arc::new(InMemory::new()));
    /// objects.set("short", b"1".to_vec(), Duration::from_millis(1)).await.unwrap();
    /// objects.set("long", b"2".to_vec(), Duration::from_secs(3600)).await.unwrap();
    /// tokio::time::sleep(Duration::from_millis(20)).await;
    /// assert_eq!(objects.cleanup().await.unwrap(), 1);
    /// assert_eq!(objects.get("long").await.unwrap(), Some(b"2".to_vec()));
    /// # });
    /// ```
    pub async fn cleanup(&self) -> Result<u64, BackendError> {
        let now = now_ms();
        self.sweep(|exp, _| exp <= now).await
    }
}

#[async_trait]
impl Backend for ObjectStoreBackend {
    fn name(&self) -> &str {
        "object_store"
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let path = self.path(key);
        let Some(bytes) = self.read(&path).await? else {
            return Ok(None);
        };
        // Expired (`Err`): absent; `cleanup` deletes it.
        Ok(record::live(MAGIC, &bytes, key)
            .ok()
            .flatten()
            .map(<[u8]>::to_vec))
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), BackendError> {
        let payload = PutPayload::from(record::encode(MAGIC, key, &value, ttl));
        self.store
            .put(&self.path(key), payload)
            .await
            .map(drop)
            .map_err(err)
    }

    async fn delete(&self, key: &str) -> Result<bool, BackendError> {
        let live = self.get(key).await?.is_some();
        self.remove(&self.path(key)).await?;
        Ok(live)
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, BackendError> {
        let path = self.path(key);
        let put = |mode: PutMode| {
            let payload = PutPayload::from(record::encode(MAGIC, key, &value, ttl));
            self.store.put_opts(&path, payload, PutOptions::from(mode))
        };
        match put(PutMode::Create).await {
            Ok(_) => return Ok(true),
            Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(err(e)),
        }
        // Held: by a live record, or by an expired one (or another key's,
        // on a hash collision), replaced only if nobody replaced it first.
        let Some((bytes, version)) = self.read_versioned(&path).await? else {
            return match put(PutMode::Create).await {
                Ok(_) => Ok(true),
                Err(object_store::Error::AlreadyExists { .. }) => Ok(false),
                Err(e) => Err(err(e)),
            };
        };
        if matches!(record::live(MAGIC, &bytes, key), Ok(Some(_))) {
            return Ok(false);
        }
        self.replace(key, &value, ttl, version).await
    }

    async fn renew_if(&self, key: &str, token: &[u8], ttl: Duration) -> Result<bool, BackendError> {
        let Some((bytes, version)) = self.read_versioned(&self.path(key)).await? else {
            return Ok(false);
        };
        if record::live(MAGIC, &bytes, key) != Ok(Some(token)) {
            return Ok(false);
        }
        self.replace(key, token, ttl, version).await
    }

    async fn delete_if(&self, key: &str, token: &[u8]) -> Result<bool, BackendError> {
        let path = self.path(key);
        let Some((bytes, version)) = self.read_versioned(&path).await? else {
            return Ok(false);
        };
        if record::live(MAGIC, &bytes, key) != Ok(Some(token)) {
            return Ok(false);
        }
        self.remove_if_unchanged(&path, &version).await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, BackendError> {
        self.sweep(|_, k| k.starts_with(prefix.as_bytes())).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    fn store() -> (Arc<InMemory>, ObjectStoreBackend) {
        let mem = Arc::new(InMemory::new());
        (mem.clone(), ObjectStoreBackend::new(mem).prefix("t/cache"))
    }

    #[tokio::test]
    async fn round_trip_expiry_and_cleanup() {
        let (mem, o) = store();
        let hour = Duration::from_secs(3600);
        o.set("urn:x:1", b"one".to_vec(), hour).await.unwrap();
        assert_eq!(o.get("urn:x:1").await.unwrap(), Some(b"one".to_vec()));
        // An expiry in the past, written directly: no sleeping needed.
        o.set("urn:x:2", b"old".to_vec(), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(
            o.get("urn:x:2").await.unwrap(),
            None,
            "expired reads as absent"
        );
        assert!(
            mem.get(&o.path("urn:x:2")).await.is_ok(),
            "reads never delete"
        );
        mem.put(
            &Path::from("t/cache/foreign"),
            PutPayload::from_static(b"not ours"),
        )
        .await
        .unwrap();
        mem.put(&Path::from("t/other/kept"), PutPayload::from_static(b"x"))
            .await
            .unwrap();
        assert_eq!(o.cleanup().await.unwrap(), 1, "the expired record");
        assert!(mem.get(&o.path("urn:x:2")).await.is_err());
        assert_eq!(o.get("urn:x:1").await.unwrap(), Some(b"one".to_vec()));
        for kept in ["t/cache/foreign", "t/other/kept"] {
            assert!(
                mem.get(&Path::from(kept)).await.is_ok(),
                "objects that are not cachewright's, or outside the prefix, stay: {kept}"
            );
        }
    }

    #[tokio::test]
    async fn an_object_for_another_key_reads_as_a_miss() {
        let (mem, o) = store();
        // A hash collision, simulated: key B's record at key A's path.
        let b = record::encode(MAGIC, "B", b"b", Duration::from_secs(60));
        mem.put(&o.path("A"), PutPayload::from(b)).await.unwrap();
        assert_eq!(o.get("A").await.unwrap(), None);
        mem.put(&o.path("A"), PutPayload::from_static(b"garbage"))
            .await
            .unwrap();
        assert_eq!(o.get("A").await.unwrap(), None);
    }

    #[tokio::test]
    async fn set_if_absent_is_exclusive_and_takes_over_an_expired_holder() {
        let (mem, o) = store();
        let other = ObjectStoreBackend::new(mem).prefix("t/cache");
        let ttl = Duration::from_secs(60);
        assert!(o.set_if_absent("lock", b"a".to_vec(), ttl).await.unwrap());
        assert!(!other
            .set_if_absent("lock", b"b".to_vec(), ttl)
            .await
            .unwrap());
        assert_eq!(other.get("lock").await.unwrap(), Some(b"a".to_vec()));
        o.set("lock", b"a".to_vec(), Duration::ZERO).await.unwrap();
        assert!(other
            .set_if_absent("lock", b"b".to_vec(), ttl)
            .await
            .unwrap());
        assert_eq!(o.get("lock").await.unwrap(), Some(b"b".to_vec()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn racing_takers_of_an_expired_holder_never_both_win() {
        for round in 0..20 {
            let (mem, o) = store();
            o.set("lock", b"old".to_vec(), Duration::ZERO)
                .await
                .unwrap();
            let takers: Vec<_> = (0..8u8)
                .map(|i| {
                    let o = ObjectStoreBackend::new(mem.clone()).prefix("t/cache");
                    tokio::spawn(async move {
                        o.set_if_absent("lock", vec![i], Duration::from_secs(60))
                            .await
                            .unwrap()
                    })
                })
                .collect();
            let mut winners = 0;
            for t in takers {
                winners += usize::from(t.await.unwrap());
            }
            assert_eq!(winners, 1, "round {round}: exactly one taker wins");
        }
    }

    #[tokio::test]
    async fn a_record_rewritten_since_it_was_read_is_not_deleted() {
        let (_, o) = store();
        o.set("lease", b"old".to_vec(), Duration::ZERO)
            .await
            .unwrap();
        let path = o.path("lease");
        let (_, seen) = o.read_versioned(&path).await.unwrap().unwrap();
        // Taken over between the sweep's read and its delete.
        o.set("lease", b"new".to_vec(), Duration::from_secs(60))
            .await
            .unwrap();
        assert!(!o.remove_if_unchanged(&path, &seen).await.unwrap());
        assert_eq!(o.get("lease").await.unwrap(), Some(b"new".to_vec()));
        assert!(!o
            .replace("lease", b"x", Duration::from_secs(60), seen)
            .await
            .unwrap());
        assert_eq!(o.get("lease").await.unwrap(), Some(b"new".to_vec()));
    }

    #[tokio::test]
    async fn delete_and_delete_prefix() {
        let (_, o) = store();
        let ttl = Duration::from_secs(60);
        o.set("urn:p:1", b"1".to_vec(), ttl).await.unwrap();
        o.set("urn:p:2", b"2".to_vec(), ttl).await.unwrap();
        o.set("urn:q:1", b"1".to_vec(), ttl).await.unwrap();
        assert_eq!(o.delete_prefix("urn:p:").await.unwrap(), 2);
        assert_eq!(o.get("urn:p:1").await.unwrap(), None);
        assert!(o.delete("urn:q:1").await.unwrap());
        assert!(!o.delete("urn:q:1").await.unwrap());
    }
}
