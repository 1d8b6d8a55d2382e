//! An in-memory bytes backend: a layer for tests and single-process setups
//! that want the encoded path (and an example of a complete backend).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::{Backend, BackendError, Dedupe, Written};

/// The most entries kept by default.
const DEFAULT_MAX_ENTRIES: usize = 100_000;
/// The most bytes (keys and values) kept by default: 256 MiB.
const DEFAULT_MAX_BYTES: usize = 256 << 20;

/// Bytes in a `HashMap`, with TTLs on the system monotonic clock, bounded in
/// entries and bytes.
///
/// Past a bound, a write first drops the expired entries, then the least
/// recently written ones, down to nine tenths of the bound (so that the
/// work is done once per many writes, not at each). Expired entries are also
/// dropped when read, and all of them once per as many writes as there are
/// entries: no timer is needed, and an idle backend holds nothing new.
///
/// # Examples
///
/// ```
/// use cachewright::backends::{Backend, MemoryBackend};
/// use std::time::Duration;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let m = MemoryBackend::new().max_entries(10_000).max_bytes(64 << 20);
/// assert!(m.set_if_absent("lock", b"me".to_vec(), Duration::from_secs(5)).await.unwrap());
/// assert!(!m.set_if_absent("lock", b"you".to_vec(), Duration::from_secs(5)).await.unwrap());
/// # });
/// ```
#[derive(Debug)]
pub struct MemoryBackend {
    max_entries: usize,
    max_bytes: usize,
    store: Mutex<Store>,
}

impl Default for MemoryBackend {
    fn default() -> Self {
        MemoryBackend {
            max_entries: DEFAULT_MAX_ENTRIES,
            max_bytes: DEFAULT_MAX_BYTES,
            store: Mutex::default(),
        }
    }
}

#[derive(Debug)]
struct Slot {
    value: Vec<u8>,
    until: Instant,
    /// When it was last written, in writes since the backend began.
    written: u64,
}

#[derive(Debug, Default)]
struct Store {
    map: HashMap<String, Slot>,
    /// Keys and values, added up.
    bytes: usize,
    writes: u64,
    /// Writes since expired entries were last dropped.
    since_purge: usize,
}

fn weight(key: &str, value: &[u8]) -> usize {
    key.len().saturating_add(value.len())
}

impl Store {
    fn live(&self, key: &str, now: Instant) -> Option<&Slot> {
        self.map.get(key).filter(|s| s.until > now)
    }

    fn remove(&mut self, key: &str) -> Option<Slot> {
        let slot = self.map.remove(key)?;
        self.bytes = self.bytes.saturating_sub(weight(key, &slot.value));
        Some(slot)
    }

    fn insert(&mut self, key: &str, value: Vec<u8>, until: Instant) {
        self.remove(key);
        self.writes += 1;
        self.since_purge += 1;
        self.bytes = self.bytes.saturating_add(weight(key, &value));
        let written = self.writes;
        self.map.insert(
            key.to_owned(),
            Slot {
                value,
                until,
                written,
            },
        );
    }

    fn purge_expired(&mut self, now: Instant) {
        let bytes = &mut self.bytes;
        self.map.retain(|k, s| {
            let keep = s.until > now;
            if !keep {
                *bytes = bytes.saturating_sub(weight(k, &s.value));
            }
            keep
        });
        self.since_purge = 0;
    }

    /// Keeps the store within its bounds (see [`MemoryBackend`]).
    fn bound(&mut self, max_entries: usize, max_bytes: usize, now: Instant) {
        let over = |s: &Store| s.map.len() > max_entries || s.bytes > max_bytes;
        if over(self) || self.since_purge >= self.map.len().max(1024) {
            self.purge_expired(now);
        }
        if !over(self) {
            return;
        }
        let (entries, bytes) = (max_entries - max_entries / 10, max_bytes - max_bytes / 10);
        let mut by_age: Vec<(u64, String)> = self
            .map
            .iter()
            .map(|(k, s)| (s.written, k.clone()))
            .collect();
        by_age.sort_unstable();
        for (_, k) in by_age {
            if self.map.len() <= entries && self.bytes <= bytes {
                break;
            }
            self.remove(&k);
        }
    }
}

impl MemoryBackend {
    /// An empty backend, keeping at most 100,000 entries and 256 MiB of
    /// keys and values.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, LayerConfig};
    /// use cachewright::backends::MemoryBackend;
    ///
    /// let memory = MemoryBackend::new();
    /// assert!(memory.is_empty());
    /// let cache = Cache::builder().layer(LayerConfig::new(memory)).build();
    /// assert_eq!(cache.layer_stats()[0].backend, "memory");
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Keeps at most `n` entries (at least one).
    #[must_use]
    pub fn max_entries(mut self, n: usize) -> Self {
        self.max_entries = n.max(1);
        self
    }

    /// Keeps at most `n` bytes of keys and values.
    #[must_use]
    pub fn max_bytes(mut self, n: usize) -> Self {
        self.max_bytes = n;
        self
    }

    fn with<R>(&self, f: impl FnOnce(&mut Store, Instant) -> R) -> R {
        let mut store = self.store.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut store, Instant::now())
    }

    /// Writes `value` under `key` and keeps the bounds.
    fn put(&self, store: &mut Store, key: &str, value: Vec<u8>, until: Instant, now: Instant) {
        store.insert(key, value, until);
        store.bound(self.max_entries, self.max_bytes, now);
    }

    /// How many keys are stored (expired ones included until dropped).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, LayerConfig};
    /// use cachewright::backends::MemoryBackend;
    /// use std::sync::Arc;
    ///
    /// let memory = Arc::new(MemoryBackend::new());
    /// let cache = Cache::builder().layer(LayerConfig::shared(memory.clone())).build();
    /// cache.set(&cache.key("user", &1), 1u8, None);
    /// cache.set(&cache.key("user", &2), 2u8, None);
    /// assert_eq!(memory.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.with(|s, _| s.map.len())
    }

    /// Whether nothing is stored.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{Backend, MemoryBackend};
    /// use std::time::Duration;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let m = MemoryBackend::new();
    /// assert!(m.is_empty());
    /// m.set("k", b"v".to_vec(), Duration::from_secs(1)).await.unwrap();
    /// assert!(!m.is_empty());
    /// # });
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many bytes of keys and values are stored.
    pub fn bytes(&self) -> usize {
        self.with(|s, _| s.bytes)
    }
}

fn deadline(now: Instant, ttl: Duration) -> Instant {
    now.checked_add(ttl)
        .unwrap_or(now + Duration::from_secs(100 * 365 * 86_400))
}

#[async_trait]
impl Backend for MemoryBackend {
    fn name(&self) -> &str {
        "memory"
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self.with(|s, now| match s.map.get(key) {
            Some(slot) if slot.until > now => Some(slot.value.clone()),
            Some(_) => {
                // Under the lock: no write can come between.
                s.remove(key);
                None
            }
            None => None,
        }))
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), BackendError> {
        self.with(|s, now| self.put(s, key, value, deadline(now, ttl), now));
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool, BackendError> {
        Ok(self.with(|s, now| s.remove(key).is_some_and(|slot| slot.until > now)))
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, BackendError> {
        Ok(self.with(|s, now| {
            if s.live(key, now).is_some() {
                return false;
            }
            self.put(s, key, value, deadline(now, ttl), now);
            true
        }))
    }

    fn dedupes(&self) -> bool {
        true
    }

    async fn set_dedupe(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
        dedupe: &Dedupe,
    ) -> Result<Written, BackendError> {
        Ok(self.with(|s, now| {
            s.writes += 1;
            let written = s.writes;
            if let Some(old) = s.map.get_mut(key) {
                if old.until > now
                    && old.value.get(dedupe.hash.clone()) == value.get(dedupe.hash.clone())
                {
                    if let (Some(dst), Some(src)) = (
                        old.value.get_mut(dedupe.header.clone()),
                        value.get(dedupe.header.clone()),
                    ) {
                        dst.copy_from_slice(src);
                        old.until = deadline(now, ttl);
                        old.written = written;
                        return Written::Renewed;
                    }
                }
            }
            self.put(s, key, value, deadline(now, ttl), now);
            Written::Value
        }))
    }

    async fn renew_if(&self, key: &str, token: &[u8], ttl: Duration) -> Result<bool, BackendError> {
        Ok(self.with(|s, now| match s.map.get_mut(key) {
            Some(slot) if slot.until > now && slot.value == token => {
                slot.until = deadline(now, ttl);
                true
            }
            _ => false,
        }))
    }

    async fn delete_if(&self, key: &str, token: &[u8]) -> Result<bool, BackendError> {
        Ok(self.with(|s, now| {
            if s.live(key, now).is_some_and(|slot| slot.value == token) {
                s.remove(key);
                return true;
            }
            false
        }))
    }

    async fn scan(
        &self,
        prefix: &str,
        suffix: &str,
        limit: usize,
    ) -> Result<Vec<crate::ScannedKey>, BackendError> {
        Ok(self.with(|s, now| {
            s.map
                .iter()
                .filter(|(k, slot)| crate::listed(k, prefix, suffix) && slot.until > now)
                .take(limit)
                .map(|(k, slot)| crate::ScannedKey::new(k.clone(), Some(slot.until - now)))
                .collect()
        }))
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, BackendError> {
        Ok(self.with(|s, _| {
            let doomed: Vec<String> = s
                .map
                .keys()
                .filter(|k| k.starts_with(prefix))
                .cloned()
                .collect();
            for k in &doomed {
                s.remove(k);
            }
            doomed.len() as u64
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dedupe_renews_header_only_when_hash_matches() {
        let m = MemoryBackend::new();
        let d = Dedupe {
            header: 0..2,
            hash: 1..2,
        };
        let ttl = Duration::from_secs(60);
        assert_eq!(
            m.set_dedupe("k", b"1Abody".to_vec(), ttl, &d)
                .await
                .unwrap(),
            Written::Value
        );
        assert_eq!(
            m.set_dedupe("k", b"2Abody".to_vec(), ttl, &d)
                .await
                .unwrap(),
            Written::Renewed
        );
        assert_eq!(m.get("k").await.unwrap().unwrap(), b"2Abody");
        assert_eq!(
            m.set_dedupe("k", b"3Bnew".to_vec(), ttl, &d).await.unwrap(),
            Written::Value
        );
        assert_eq!(m.get("k").await.unwrap().unwrap(), b"3Bnew");
        assert_eq!(m.delete_prefix("k").await.unwrap(), 1);
        assert!(m.is_empty());
    }

    #[tokio::test]
    async fn past_its_entry_bound_it_drops_expired_entries_first_then_the_oldest() {
        let m = MemoryBackend::new().max_entries(4);
        let hour = Duration::from_secs(3600);
        m.set("expired", b"x".to_vec(), Duration::ZERO)
            .await
            .unwrap();
        for k in ["a", "b", "c"] {
            m.set(k, b"v".to_vec(), hour).await.unwrap();
        }
        m.set("d", b"v".to_vec(), hour).await.unwrap();
        assert_eq!(m.len(), 4, "the expired one made room");
        for k in ["a", "b", "c", "d"] {
            assert!(m.get(k).await.unwrap().is_some(), "{k} kept");
        }
        m.set("a", b"rewritten".to_vec(), hour).await.unwrap();
        m.set("e", b"v".to_vec(), hour).await.unwrap();
        assert!(m.len() <= 4);
        assert_eq!(
            m.get("b").await.unwrap(),
            None,
            "the least recently written went"
        );
        assert!(
            m.get("a").await.unwrap().is_some(),
            "rewritten: young again"
        );
        assert!(m.get("e").await.unwrap().is_some(), "the newest stays");
    }

    #[tokio::test]
    async fn past_its_byte_bound_it_drops_the_oldest() {
        let m = MemoryBackend::new().max_bytes(1_000);
        for i in 0..20 {
            m.set(&format!("k{i:02}"), vec![0; 97], Duration::from_secs(60))
                .await
                .unwrap();
            assert!(m.bytes() <= 1_000, "{} bytes", m.bytes());
        }
        assert!(m.get("k19").await.unwrap().is_some());
        assert_eq!(m.get("k00").await.unwrap(), None);
    }

    #[tokio::test]
    async fn expired_entries_go_without_being_read() {
        let m = MemoryBackend::new();
        for i in 0..3_000 {
            m.set(&format!("gone{i}"), b"v".to_vec(), Duration::ZERO)
                .await
                .unwrap();
        }
        assert!(
            m.len() < 3_000,
            "dropped once per as many writes as entries: {}",
            m.len()
        );
    }

    #[tokio::test]
    async fn leases_renew_and_release_only_with_their_token() {
        let m = MemoryBackend::new();
        let ttl = Duration::from_secs(60);
        assert!(m.set_if_absent("l", b"me".to_vec(), ttl).await.unwrap());
        assert!(m.renew_if("l", b"me", ttl).await.unwrap());
        assert!(!m.renew_if("l", b"you", ttl).await.unwrap());
        assert!(!m.delete_if("l", b"you").await.unwrap());
        assert!(m.delete_if("l", b"me").await.unwrap());
        assert!(m.is_empty());
        assert_eq!(m.bytes(), 0);
    }
}
