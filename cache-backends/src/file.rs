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
    pub fn new(dir: impl AsRef<Path>) -> Result<Self, BackendError> {
        std::fs::create_dir_all(dir.as_ref()).map_err(io)?;
        Ok(FileBackend {
            dir: dir.as_ref().to_path_buf(),
        })
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
        Ok(tmp)
    }

    async fn read(&self, path: &Path) -> Result<Option<Vec<u8>>, BackendError> {
        match fs::read(path).await {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(e)),
        }
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

    /// Removes expired entries, abandoned temporary files and old claims;
    /// returns how many files it removed. An expired record is removed only
    /// through a claim, so never while it is taken over or renewed; a value
    /// rewritten by a plain `set` at that very moment may go too (a miss
    /// later, never a wrong value).
    ///
    /// # Errors
    ///
    /// [`BackendError::Io`] when the directory cannot be listed.
    pub async fn cleanup(&self) -> Result<u64, BackendError> {
        let mut removed = 0;
        let now = now_ms();
        let mut dir = fs::read_dir(&self.dir).await.map_err(io)?;
        while let Some(entry) = dir.next_entry().await.map_err(io)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = entry.path();
            let stale = if name.starts_with(".tmp-") || name.starts_with(".claim-") {
                // A writer that died between write and rename leaves
                // temporary files; claims are left by every change.
                entry
                    .metadata()
                    .await
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age > CLAIM_LIFETIME)
            } else if name.ends_with(SUFFIX) {
                match self.read(&path).await? {
                    Some(b) if parse(&b).is_none_or(|(exp, _, _)| exp <= now) => {
                        if let Some(claim) = self.claim(&path, &b).await? {
                            if fs::remove_file(&path).await.is_ok() {
                                removed += 1;
                            }
                            claim.release().await;
                        }
                        false
                    }
                    _ => false,
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
        let tmp = self.write_temp(key, &value, ttl).await?;
        // A hard link fails if the target exists: an atomic "set if absent"
        // across processes.
        let linked = fs::hard_link(&tmp, &target).await;
        let _ = fs::remove_file(&tmp).await;
        match linked {
            Ok(()) => return Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
        // Held: by a live record, or by an expired one (or another key's,
        // on a hash collision), taken over only through a claim.
        let Some(seen) = self.read(&target).await? else {
            // Removed meanwhile: one more try, as exclusive as the first.
            return Box::pin(self.set_if_absent(key, value, ttl)).await;
        };
        if matches!(record::live(MAGIC, &seen, key), Ok(Some(_))) {
            return Ok(false);
        }
        let Some(claim) = self.claim(&target, &seen).await? else {
            return Ok(false);
        };
        let r = self.replace(&target, key, &value, ttl).await;
        claim.release().await;
        r.map(|()| true)
    }

    async fn renew_if(&self, key: &str, token: &[u8], ttl: Duration) -> Result<bool, BackendError> {
        let target = self.path(key);
        let Some(seen) = self.read(&target).await? else {
            return Ok(false);
        };
        if record::live(MAGIC, &seen, key) != Ok(Some(token)) {
            return Ok(false);
        }
        let Some(claim) = self.claim(&target, &seen).await? else {
            return Ok(false);
        };
        let r = self.replace(&target, key, token, ttl).await;
        claim.release().await;
        r.map(|()| true)
    }

    async fn delete_if(&self, key: &str, token: &[u8]) -> Result<bool, BackendError> {
        let target = self.path(key);
        let Some(seen) = self.read(&target).await? else {
            return Ok(false);
        };
        if record::live(MAGIC, &seen, key) != Ok(Some(token)) {
            return Ok(false);
        }
        let Some(claim) = self.claim(&target, &seen).await? else {
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

    /// `n` backends on one directory, as `n` processes of one host have.
    fn replicas(dir: &Path, n: usize) -> Vec<std::sync::Arc<FileBackend>> {
        (0..n)
            .map(|_| std::sync::Arc::new(FileBackend::new(dir).unwrap()))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn racing_takers_of_an_expired_holder_never_both_win() {
        for round in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let f = FileBackend::new(dir.path()).unwrap();
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
            let f = FileBackend::new(dir.path()).unwrap();
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
        let f = FileBackend::new(dir.path()).unwrap();
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
}
