//! A per-host tier: one file per key under a directory.
//!
//! Each file holds a header (format, expiry in Unix milliseconds, the key) and
//! the value. Writes go to a temporary file that is then renamed over the
//! target, so readers in any process see the old or the new value, never a
//! mix. File names are a 128-bit hash of the key; the key stored inside is
//! compared on read, so even a hash collision reads as a miss, never as
//! another key's value.
//!
//! # Conditional changes (leases)
//!
//! `set_if_absent` on an absent key is a hard link of a new file to the
//! target name, which fails if the name exists: one taker wins. Every
//! change of a record that is there (taking over an expired holder,
//! `renew_if`, `delete_if`, and the removal of an expired record) first
//! *claims* the record it read: it creates, with `create_new`, a claim file
//! named after the record's name and a hash of the bytes read. Of all who
//! read the same record, one creates the claim; it checks that the record
//! is still those bytes, replaces or removes it, and removes the claim. No
//! other party can change the record in between, since it would need the
//! same claim (and a party that read it earlier finds other bytes once the
//! claim is gone): so a takeover never races a renewal, and two takers never
//! both win, in threads or in processes. The decision (expired, holds the
//! token) depends on the bytes alone, so a record rewritten with the very
//! same bytes is judged the same. Reads never delete (a record written
//! between a read and a delete would be lost); expired records go in
//! [`FileBackend::cleanup`], and so do the claims of processes that died
//! holding one (older than a minute).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
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
#[derive(Debug, Clone)]
pub struct FileBackend {
    dir: PathBuf,
    max_entries: u64,
    max_bytes: u64,
    cleanup_every: u64,
    sweeps: Arc<Sweeps>,
}

/// The automatic cleanups of one backend (and its clones).
#[derive(Debug, Default)]
struct Sweeps {
    /// Records written by this process.
    writes: AtomicU64,
    /// Whether a cleanup is under way: one at a time.
    running: AtomicBool,
}

/// Clears [`Sweeps::running`] when a cleanup ends, however it ends.
struct Sweeping(Arc<Sweeps>);

impl Drop for Sweeping {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::Release);
    }
}

/// Numbers the temporary files of every backend of this process (two
/// backends on one directory must not share one).
static SEQ: AtomicU64 = AtomicU64::new(0);

/// A claim older than this is removed by cleanup (its process died): a
/// claim is held for one operation, never this long.
const CLAIM_LIFETIME: Duration = Duration::from_secs(60);

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
    ///
    /// # Examples
    ///
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
            max_entries: 100_000,
            max_bytes: 1 << 30,
            cleanup_every: 1_000,
            sweeps: Arc::default(),
        })
    }

    /// Keeps at most `n` records (default 100,000): past it,
    /// [`cleanup`](Self::cleanup) removes the least recently written down to
    /// nine tenths of it.
    #[must_use]
    pub fn max_entries(mut self, n: u64) -> Self {
        self.max_entries = n.max(1);
        self
    }

    /// Keeps at most `n` bytes of records (default 1 GiB), as
    /// [`max_entries`](Self::max_entries) does.
    #[must_use]
    pub fn max_bytes(mut self, n: u64) -> Self {
        self.max_bytes = n;
        self
    }

    /// Runs [`cleanup`](Self::cleanup) in the background on the first write
    /// and then once every `writes` writes of this process (default 1,000,
    /// and at most a tenth of [`max_entries`](Self::max_entries)); 0: only
    /// when called. One cleanup runs at a time.
    #[must_use]
    pub fn cleanup_every(mut self, writes: u64) -> Self {
        self.cleanup_every = writes;
        self
    }

    /// Counts a write, and starts a cleanup when one is due (see
    /// [`cleanup_every`](Self::cleanup_every)). It runs on cachewright's I/O
    /// runtime: this crate has no other, and the write that made it due
    /// does not wait for a directory scan.
    fn wrote(&self) {
        let every = self.cleanup_every.min((self.max_entries / 10).max(1));
        if every == 0 || self.sweeps.writes.fetch_add(1, Ordering::Relaxed) % every != 0 {
            return;
        }
        if self.sweeps.running.swap(true, Ordering::AcqRel) {
            return;
        }
        let sweeping = Sweeping(self.sweeps.clone());
        let Some(io) = crate::io::handle() else {
            return;
        };
        let me = self.clone();
        io.spawn(async move {
            if let Err(e) = me.cleanup().await {
                tracing::warn!(error = %e, "file tier cleanup failed");
            }
            drop(sweeping);
        });
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{}{SUFFIX}", record::name(key)))
    }

    fn temp(&self) -> PathBuf {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
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
        self.wrote();
        Ok(tmp)
    }

    async fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, BackendError> {
        match fs::read(path).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
    }

    /// The record of `key` and a claim on it, if it is live and holds
    /// `token` (a lease this caller holds); `None` otherwise, or when another
    /// caller holds the claim.
    async fn claim_if_held(
        &self,
        key: &str,
        token: &[u8],
    ) -> Result<Option<(PathBuf, Claim)>, BackendError> {
        let target = self.path(key);
        let Some(seen) = self.read(&target).await? else {
            return Ok(None);
        };
        if record::live(MAGIC, &seen, key) != Ok(Some(token)) {
            return Ok(None);
        }
        Ok(self.claim(&target, &seen).await?.map(|c| (target, c)))
    }

    /// Claims the record at `path` as `seen` (see the module docs): `Some`
    /// when this caller, and no other, may now change it, until the claim
    /// is released; `None` when another holds the claim, or the record is
    /// no longer `seen`.
    async fn claim(&self, path: &Path, seen: &[u8]) -> Result<Option<Claim>, BackendError> {
        let Some(name) = path.file_name() else {
            return Ok(None);
        };
        let at = self.dir.join(format!(
            ".claim-{}-{:032x}",
            name.to_string_lossy(),
            xxhash_rust::xxh3::xxh3_128(seen)
        ));
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&at)
            .await
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(None),
            Err(e) => return Err(io(e)),
        }
        let claim = Claim(Some(at));
        if self.read(path).await?.as_deref() != Some(seen) {
            claim.release().await;
            return Ok(None);
        }
        Ok(Some(claim))
    }

    /// Replaces the record at `path` (claimed) with `key`'s `value`.
    async fn replace(
        &self,
        path: &Path,
        key: &str,
        value: &[u8],
        ttl: Duration,
    ) -> Result<(), BackendError> {
        let tmp = self.write_temp(key, value, ttl).await?;
        if let Err(e) = fs::rename(&tmp, path).await {
            let _ = fs::remove_file(&tmp).await;
            return Err(io(e));
        }
        Ok(())
    }

    /// Removes expired entries, abandoned temporary files and old claims,
    /// then, past [`max_entries`](Self::max_entries) or
    /// [`max_bytes`](Self::max_bytes), the least recently written records
    /// down to nine tenths of the bound; returns how many files it removed.
    /// A record is removed only through a claim, so never while it is taken
    /// over or renewed; a value rewritten by a plain `set` at that very
    /// moment may go too (a miss later, never a wrong value).
    ///
    /// # Errors
    ///
    /// [`BackendError::Io`] when the directory cannot be listed.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{file::FileBackend, Backend};
    /// use std::time::Duration;
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let dir = tempfile::tempdir().unwrap();
    /// // Only explicit cleanups here (no background one started by writes).
    /// let files = FileBackend::new(dir.path()).unwrap().cleanup_every(0);
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
        // The live records: (last written, bytes, path).
        let mut kept: Vec<(std::time::SystemTime, u64, PathBuf)> = Vec::new();
        let mut dir = fs::read_dir(&self.dir).await.map_err(io)?;
        while let Some(entry) = dir.next_entry().await.map_err(io)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let modified = entry.metadata().await.ok().and_then(|m| m.modified().ok());
            if name.starts_with(".tmp-") || name.starts_with(".claim-") {
                // A writer that died between write and rename leaves
                // temporary files; claims, a process that died holding one.
                let old = modified
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > CLAIM_LIFETIME);
                if old && fs::remove_file(&path).await.is_ok() {
                    removed += 1;
                }
                continue;
            }
            if !name.ends_with(SUFFIX) {
                continue;
            }
            let Some(b) = self.read(&path).await? else {
                continue;
            };
            if parse(&b).is_some_and(|(exp, _, _)| exp > now) {
                let at = modified.unwrap_or(std::time::UNIX_EPOCH);
                kept.push((at, b.len() as u64, path));
            } else if self.remove_claimed(&path, &b).await? {
                removed += 1;
            }
        }
        let mut bytes: u64 = kept.iter().map(|k| k.1).sum();
        let mut count = kept.len() as u64;
        if count <= self.max_entries && bytes <= self.max_bytes {
            return Ok(removed);
        }
        let (entries, most) = (
            self.max_entries - self.max_entries / 10,
            self.max_bytes - self.max_bytes / 10,
        );
        kept.sort();
        for (_, size, path) in kept {
            if count <= entries && bytes <= most {
                break;
            }
            let Some(b) = self.read(&path).await? else {
                continue;
            };
            if self.remove_claimed(&path, &b).await? {
                removed += 1;
                count -= 1;
                bytes = bytes.saturating_sub(size);
            }
        }
        Ok(removed)
    }

    /// Removes the record at `path` if it still holds `seen`, through a
    /// claim; whether it did.
    async fn remove_claimed(&self, path: &Path, seen: &[u8]) -> Result<bool, BackendError> {
        let Some(claim) = self.claim(path, seen).await? else {
            return Ok(false);
        };
        let gone = fs::remove_file(path).await.is_ok();
        claim.release().await;
        Ok(gone)
    }
}

/// The claim on one record (see the module docs), held until released;
/// dropped unreleased (the operation was cancelled), it is removed in the
/// background.
#[derive(Debug)]
struct Claim(Option<PathBuf>);

impl Claim {
    async fn release(mut self) {
        if let Some(at) = self.0.take() {
            let _ = fs::remove_file(at).await;
        }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let Some(at) = self.0.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(h) => drop(h.spawn_blocking(move || std::fs::remove_file(at))),
            Err(_) => drop(std::fs::remove_file(at)),
        }
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
        // Expired (`Err`): absent; `cleanup` removes it.
        Ok(record::live(MAGIC, &bytes, key)
            .ok()
            .flatten()
            .map(<[u8]>::to_vec))
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
        // A record removed or changed while we looked is looked at again
        // (a few times: each look is as exclusive as the first).
        for _ in 0..3 {
            let tmp = self.write_temp(key, &value, ttl).await?;
            // A hard link fails if the target exists: an atomic "set if
            // absent" across processes.
            let linked = fs::hard_link(&tmp, &target).await;
            let _ = fs::remove_file(&tmp).await;
            match linked {
                Ok(()) => return Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(e)),
            }
            // Held: by a live record, or by an expired one (or another
            // key's, on a hash collision), taken over only through a claim.
            let Some(seen) = self.read(&target).await? else {
                continue;
            };
            if matches!(record::live(MAGIC, &seen, key), Ok(Some(_))) {
                return Ok(false);
            }
            let Some(claim) = self.claim(&target, &seen).await? else {
                continue;
            };
            let r = self.replace(&target, key, &value, ttl).await;
            claim.release().await;
            return r.map(|()| true);
        }
        Ok(false)
    }

    async fn renew_if(&self, key: &str, token: &[u8], ttl: Duration) -> Result<bool, BackendError> {
        let Some((target, claim)) = self.claim_if_held(key, token).await? else {
            return Ok(false);
        };
        let r = self.replace(&target, key, token, ttl).await;
        claim.release().await;
        r.map(|()| true)
    }

    async fn delete_if(&self, key: &str, token: &[u8]) -> Result<bool, BackendError> {
        let Some((target, claim)) = self.claim_if_held(key, token).await? else {
            return Ok(false);
        };
        let r = match fs::remove_file(&target).await {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io(e)),
        };
        claim.release().await;
        r
    }

    async fn scan(
        &self,
        prefix: &str,
        suffix: &str,
        limit: usize,
    ) -> Result<Vec<crate::ScannedKey>, BackendError> {
        let mut out = Vec::new();
        let now = record::now_ms();
        let mut dir = fs::read_dir(&self.dir).await.map_err(io)?;
        while let Some(entry) = dir.next_entry().await.map_err(io)? {
            if out.len() >= limit {
                break;
            }
            if !entry.file_name().to_string_lossy().ends_with(SUFFIX) {
                continue;
            }
            let Some(b) = self.read(&entry.path()).await? else {
                continue;
            };
            let Some((expires, k, _)) = parse(&b) else {
                continue;
            };
            let k = String::from_utf8_lossy(k);
            if expires > now && crate::listed(&k, prefix, suffix) {
                let ttl = Some(Duration::from_millis(expires - now));
                out.push(crate::ScannedKey::new(k.into_owned(), ttl));
            }
        }
        Ok(out)
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
        let f = FileBackend::new(dir.path()).unwrap().cleanup_every(0);
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
        assert!(
            f.path("urn:x:3").exists(),
            "reads never delete: cleanup does"
        );
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
        let f = FileBackend::new(dir.path()).unwrap().cleanup_every(0);
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
        let f = FileBackend::new(dir.path()).unwrap().cleanup_every(0);
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

    /// `n` backends on one directory, as `n` processes of one host have
    /// (without automatic cleanups: a cleanup that removes the expired
    /// holder first may leave a round without a winner).
    fn replicas(dir: &Path, n: usize) -> Vec<std::sync::Arc<FileBackend>> {
        (0..n)
            .map(|_| std::sync::Arc::new(FileBackend::new(dir).unwrap().cleanup_every(0)))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_takers_of_an_expired_holder_never_both_win() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            // No background cleanup started by this write: removing the
            // expired holder first may leave a round without a winner.
            let f = FileBackend::new(dir.path()).unwrap().cleanup_every(0);
            f.set("lock", b"old".to_vec(), Duration::ZERO)
                .await
                .unwrap();
            let mut tasks = Vec::new();
            for (i, r) in replicas(dir.path(), 8).into_iter().enumerate() {
                // Each taker reads too: a read of the expired holder must
                // not remove the winner's record.
                tasks.push(tokio::spawn(async move {
                    let _ = r.get("lock").await.unwrap();
                    let won = r
                        .set_if_absent("lock", vec![i as u8], Duration::from_secs(60))
                        .await
                        .unwrap();
                    let _ = r.get("lock").await.unwrap();
                    won.then_some(i as u8)
                }));
            }
            let mut winners = Vec::new();
            for t in tasks {
                winners.extend(t.await.unwrap());
            }
            assert_eq!(winners.len(), 1, "round {round}: exactly one taker wins");
            assert_eq!(
                f.get("lock").await.unwrap(),
                Some(winners),
                "round {round}: the winner holds the lease"
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_renewal_and_takeovers_at_expiry_never_both_win() {
        let long = Duration::from_secs(60);
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let f = FileBackend::new(dir.path()).unwrap().cleanup_every(0);
            // Expires about now: the holder and the takers race for it.
            f.set("lock", b"holder".to_vec(), Duration::from_millis(2))
                .await
                .unwrap();
            let mut all = replicas(dir.path(), 9);
            let holder = all.pop().unwrap();
            let renewal = tokio::spawn(async move {
                holder
                    .renew_if("lock", b"holder", long)
                    .await
                    .unwrap()
                    .then(|| b"holder".to_vec())
            });
            let takers: Vec<_> = all
                .into_iter()
                .enumerate()
                .map(|(i, r)| {
                    tokio::spawn(async move {
                        r.set_if_absent("lock", vec![i as u8], long)
                            .await
                            .unwrap()
                            .then(|| vec![i as u8])
                    })
                })
                .collect();
            let mut winners: Vec<Vec<u8>> = renewal.await.unwrap().into_iter().collect();
            for t in takers {
                winners.extend(t.await.unwrap());
            }
            assert!(winners.len() <= 1, "round {round}: {winners:?} all hold it");
            if let [w] = &winners[..] {
                assert_eq!(
                    f.get("lock").await.unwrap().as_ref(),
                    Some(w),
                    "round {round}"
                );
            }
        }
    }

    #[tokio::test]
    async fn renew_and_release_only_with_the_token() {
        let dir = tempfile::tempdir().unwrap();
        let f = FileBackend::new(dir.path()).unwrap().cleanup_every(0);
        let ttl = Duration::from_secs(60);
        assert!(f.set_if_absent("lease", b"me".to_vec(), ttl).await.unwrap());
        for _ in 0..5 {
            // Renewals within one millisecond write the same bytes again.
            assert!(f.renew_if("lease", b"me", ttl).await.unwrap());
        }
        assert!(!f.renew_if("lease", b"you", ttl).await.unwrap());
        assert!(!f.delete_if("lease", b"you").await.unwrap());
        assert!(f.delete_if("lease", b"me").await.unwrap());
        assert_eq!(f.get("lease").await.unwrap(), None);
        assert!(!f.renew_if("lease", b"me", ttl).await.unwrap());
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names.is_empty(),
            "no claim or temporary file left: {names:?}"
        );
    }

    /// Writes `key`'s record as last written `age_s` seconds ago (file
    /// times are coarse: set them, rather than write in order).
    async fn aged(f: &FileBackend, key: &str, ttl: Duration, age_s: u64) {
        f.set(key, vec![b'v'; 10], ttl).await.unwrap();
        let at = std::time::SystemTime::now() - Duration::from_secs(age_s);
        std::fs::File::options()
            .write(true)
            .open(f.path(key))
            .unwrap()
            .set_modified(at)
            .unwrap();
    }

    fn records(dir: &Path) -> usize {
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(SUFFIX)
            })
            .count()
    }

    #[tokio::test]
    async fn cleanup_keeps_the_bounds_expired_first_then_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let f = FileBackend::new(dir.path())
            .unwrap()
            .max_entries(5)
            .cleanup_every(0);
        let hour = Duration::from_secs(3600);
        for i in 0..3 {
            aged(&f, &format!("expired{i}"), Duration::ZERO, 1).await;
        }
        for i in 0..4 {
            aged(&f, &format!("live{i}"), hour, 100 - i).await;
        }
        assert_eq!(f.cleanup().await.unwrap(), 3, "the expired ones");
        assert_eq!(
            records(dir.path()),
            4,
            "within the bound: every live one stays"
        );
        for i in 4..8 {
            aged(&f, &format!("live{i}"), hour, 100 - i).await;
        }
        f.cleanup().await.unwrap();
        assert!(records(dir.path()) <= 5, "{} records", records(dir.path()));
        assert_eq!(f.get("live0").await.unwrap(), None, "the oldest went");
        assert!(f.get("live7").await.unwrap().is_some(), "the newest stays");
        let small = FileBackend::new(dir.path())
            .unwrap()
            .max_bytes(300)
            .cleanup_every(0);
        small.cleanup().await.unwrap();
        let bytes: u64 = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert!(bytes <= 300, "{bytes} bytes");
        assert!(small.get("live7").await.unwrap().is_some());
    }

    #[tokio::test]
    async fn writes_start_cleanups_that_keep_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let f = FileBackend::new(dir.path())
            .unwrap()
            .max_entries(40)
            .cleanup_every(4);
        for i in 0..100 {
            f.set(&format!("k{i}"), b"v".to_vec(), Duration::from_secs(60))
                .await
                .unwrap();
            // Waits for the cleanup this write started, if any.
            while f.sweeps.running.load(Ordering::Acquire) {
                tokio::task::yield_now().await;
            }
        }
        let n = records(dir.path());
        assert!(n <= 40 + 4, "{n} records: a cleanup every 4 writes");
        assert!(f.get("k99").await.unwrap().is_some());
    }
}
