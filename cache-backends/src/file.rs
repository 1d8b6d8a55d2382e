//! A per-host tier: one file per key under a directory.
//!
//! Each file holds a header (format, expiry in Unix milliseconds, the key) and
//! the value. Writes go to a temporary file that is then renamed over the
//! target, so readers in any process see the old or the new value, never a
//! mix. File names are a 128-bit hash of the key; the key stored inside is
//! compared on read, so even a hash collision reads as a miss, never as
//! another key's value. Expired files are removed when read and by
//! [`FileBackend::cleanup`].

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use tokio::fs;

use crate::record::{self, now_ms};
use crate::{Backend, BackendError};

const MAGIC: &[u8] = b"cachewright-file 1\n";
const SUFFIX: &str = ".cachewright";

/// Files under a directory, safe to share between processes of one host.
///
/// # Examples
///
/// ```
/// use cachewright::backends::{file::FileBackend, Backend};
/// use std::time::Duration;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let dir = tempfile::tempdir().unwrap();
/// let files = FileBackend::new(dir.path()).unwrap();
/// files.set("urn:a:v1:user:1", b"ada".to_vec(), Duration::from_secs(60)).await.unwrap();
/// assert_eq!(files.get("urn:a:v1:user:1").await.unwrap(), Some(b"ada".to_vec()));
/// # });
/// ```
#[derive(Debug)]
pub struct FileBackend {
    dir: PathBuf,
    seq: AtomicU64,
}

fn io(e: std::io::Error) -> BackendError {
    BackendError::Io {
        backend: "file".into(),
        source: e,
    }
}

/// Splits a file into (expiry, key, value); `None` if it is not ours.
fn parse(bytes: &[u8]) -> Option<(u64, &[u8], &[u8])> {
    record::parse(MAGIC, bytes)
}

impl FileBackend {
    /// A backend storing under `dir`, which is created if missing.
    ///
    /// # Errors
    ///
    /// [`BackendError::Io`] when the directory cannot be created.
    /// ///
    /// # Examples
    /// ///
    /// ```
    /// use cachewright::backends::file::FileBackend;
    /// use cachewright::{Cache, LayerConfig};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let files = FileBackend::new(dir.path().join("cache")).unwrap();
    /// assert!(dir.path().join("cache").is_dir(), "created");
    /// let cache = Cache::builder().layer(LayerConfig::new(files)).build();
    /// let key = cache.key("page", &1);
    /// cache.set(&key, "<html>".to_string(), None);
    /// assert_eq!(cache.layer_stats()[0].writes, 1);
    /// ```
    pub fn new(dir: impl AsRef<Path>) -> Result<Self, BackendError> {
        std::fs::create_dir_all(dir.as_ref()).map_err(io)?;
        Ok(FileBackend {
            dir: dir.as_ref().to_path_buf(),
            seq: AtomicU64::new(0),
        })
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{}{SUFFIX}", record::name(key)))
    }

    fn temp(&self) -> PathBuf {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        self.dir
            .join(format!(".tmp-{}-{n}-{:x}", std::process::id(), now_ms()))
    }

    fn encode(key: &str, value: &[u8], ttl: Duration) -> Vec<u8> {
        record::encode(MAGIC, key, value, ttl)
    }

    async fn write_temp(
        &self,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<PathBuf, BackendError> {
        let tmp = self.temp();
        fs::write(&tmp, Self::encode(key, value, ttl))
            .await
            .map_err(io)?;
        Ok(tmp)
    }

    async fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, BackendError> {
        match fs::read(path).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    /// Removes expired entries and abandoned temporary files; returns how
    /// many files it removed.
    ///
    /// # Errors
    ///
    /// [`BackendError::Io`] when the directory cannot be listed.
    /// ///
    /// # Examples
    /// ///
    /// ```
    /// use cachewright::backends::{file::FileBackend, Backend};
    /// use std::time::Duration;
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// let files = FileBackend::new(dir.path()).unwrap();
    /// files.set("short", b"1".to_vec(), Duration::from_millis(1)).await.unwrap();
    /// files.set("long", b"2".to_vec(), Duration::from_secs(3600)).await.unwrap();
    /// tokio::time::sleep(Duration::from_millis(20)).await;
    /// assert_eq!(files.cleanup().await.unwrap(), 1);
    /// assert_eq!(files.get("long").await.unwrap(), Some(b"2".to_vec()));
    /// # });
    /// ```
    pub async fn cleanup(&self) -> Result<u64, BackendError> {
        let mut removed = 0;
        let now = now_ms();
        let mut dir = fs::read_dir(&self.dir).await.map_err(io)?;
        while let Some(entry) = dir.next_entry().await.map_err(io)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let stale = if name.starts_with(".tmp-") {
                // A writer that died between write and rename leaves these.
                entry
                    .metadata()
                    .await
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > Duration::from_secs(60))
            } else if name.ends_with(SUFFIX) {
                match self.read(&path).await? {
                    Some(b) => parse(&b).is_none_or(|(exp, _, _)| exp <= now),
                    None => false,
                }
            } else {
                false
            };
            if stale && fs::remove_file(&path).await.is_ok() {
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[async_trait]
impl Backend for FileBackend {
    fn name(&self) -> &str {
        "file"
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let path = self.path(key);
        let Some(bytes) = self.read(&path).await? else {
            return Ok(None);
        };
        match record::live(MAGIC, &bytes, key) {
            Ok(v) => Ok(v.map(<[u8]>::to_vec)),
            Err(()) => {
                let _ = fs::remove_file(&path).await;
                Ok(None)
            }
        }
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), BackendError> {
        let tmp = self.write_temp(key, &value, ttl).await?;
        if let Err(e) = fs::rename(&tmp, self.path(key)).await {
            let _ = fs::remove_file(&tmp).await;
            return Err(io(e));
        }
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool, BackendError> {
        let live = self.get(key).await?.is_some();
        match fs::remove_file(self.path(key)).await {
            Ok(()) => Ok(live),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(e)),
        }
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, BackendError> {
        let target = self.path(key);
        let tmp = self.write_temp(key, &value, ttl).await?;
        // A hard link fails if the target exists: an atomic "set if absent"
        // across processes. An expired holder is removed and tried once more.
        let mut result = fs::hard_link(&tmp, &target).await;
        if result
            .as_ref()
            .is_err_and(|e| e.kind() == std::io::ErrorKind::AlreadyExists)
            && self.get(key).await?.is_none()
        {
            let _ = fs::remove_file(&target).await;
            result = fs::hard_link(&tmp, &target).await;
        }
        let _ = fs::remove_file(&tmp).await;
        match result {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io(e)),
        }
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, BackendError> {
        let mut removed = 0;
        let mut dir = fs::read_dir(&self.dir).await.map_err(io)?;
        while let Some(entry) = dir.next_entry().await.map_err(io)? {
            if !entry.file_name().to_string_lossy().ends_with(SUFFIX) {
                continue;
            }
            let path = entry.path();
            if let Some(b) = self.read(&path).await? {
                if parse(&b).is_some_and(|(_, k, _)| k.starts_with(prefix.as_bytes()))
                    && fs::remove_file(&path).await.is_ok()
                {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn round_trip_expiry_and_cleanup() {
        let dir = tempfile::tempdir().unwrap();
        let f = FileBackend::new(dir.path()).unwrap();
        f.set("urn:x:1", b"one".to_vec(), Duration::from_secs(60))
            .await
            .unwrap();
        f.set("urn:x:2", b"two".to_vec(), Duration::from_millis(1))
            .await
            .unwrap();
        assert_eq!(f.get("urn:x:1").await.unwrap(), Some(b"one".to_vec()));
        // An expiry in the past, written directly: no sleeping needed.
        std::fs::write(
            f.path("urn:x:3"),
            FileBackend::encode("urn:x:3", b"old", Duration::ZERO),
        )
        .unwrap();
        assert_eq!(
            f.get("urn:x:3").await.unwrap(),
            None,
            "expired reads as absent"
        );
        assert!(!f.path("urn:x:3").exists(), "and is removed lazily");
        std::fs::write(
            f.path("urn:x:4"),
            FileBackend::encode("urn:x:4", b"old", Duration::ZERO),
        )
        .unwrap();
        assert!(f.cleanup().await.unwrap() >= 1);
        assert!(!f.path("urn:x:4").exists());
        assert_eq!(f.get("urn:x:1").await.unwrap(), Some(b"one".to_vec()));
    }

    #[tokio::test]
    async fn a_file_for_another_key_reads_as_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let f = FileBackend::new(dir.path()).unwrap();
        // Simulate a hash collision: key B's bytes in key A's file.
        std::fs::write(
            f.path("A"),
            FileBackend::encode("B", b"b", Duration::from_secs(60)),
        )
        .unwrap();
        assert_eq!(f.get("A").await.unwrap(), None);
        std::fs::write(f.path("A"), b"garbage").unwrap();
        assert_eq!(f.get("A").await.unwrap(), None);
    }

    #[tokio::test]
    async fn set_if_absent_is_exclusive_and_delete_prefix_works() {
        let dir = tempfile::tempdir().unwrap();
        let f = FileBackend::new(dir.path()).unwrap();
        let ttl = Duration::from_secs(60);
        assert!(f.set_if_absent("lock", b"a".to_vec(), ttl).await.unwrap());
        assert!(!f.set_if_absent("lock", b"b".to_vec(), ttl).await.unwrap());
        assert_eq!(f.get("lock").await.unwrap(), Some(b"a".to_vec()));
        f.set("urn:p:1", b"1".to_vec(), ttl).await.unwrap();
        f.set("urn:q:1", b"1".to_vec(), ttl).await.unwrap();
        assert_eq!(f.delete_prefix("urn:p:").await.unwrap(), 1);
        assert!(f.delete("urn:q:1").await.unwrap());
        assert!(!f.delete("urn:q:1").await.unwrap());
    }

    #[test]
    fn concurrent_writers_in_threads_never_tear_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = std::sync::Arc::new(FileBackend::new(dir.path()).unwrap());
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let mut tasks = Vec::new();
            for i in 0..8u8 {
                let f = f.clone();
                tasks.push(tokio::spawn(async move {
                    for _ in 0..50 {
                        f.set("k", vec![i; 4096], Duration::from_secs(60))
                            .await
                            .unwrap();
                        if let Some(v) = f.get("k").await.unwrap() {
                            assert!(v.len() == 4096 && v.iter().all(|&b| b == v[0]), "torn read");
                        }
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        });
    }
}
