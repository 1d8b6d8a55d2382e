//! The direct API: typed `get`, `set`, `get_or_load`, ... on the same
//! entries as `#[cached]`.

use super::*;
use crate::entry::EntryRef;

impl Cache {
    pub(super) fn direct_hash(&self, key: &Key) -> u64 {
        self.inner.store.hash(key.as_str())
    }

    /// `f` on the live entry under `key` in the direct API's process memory
    /// (not expired, not invalidated), with the time it was judged at.
    fn with_live<R>(
        &self,
        key: &Key,
        f: impl FnOnce(&EntryRef<'_, AnyValue>, u64) -> Option<R>,
    ) -> Option<R> {
        let now = self.inner.clock.now_ms();
        let mut f = Some(f);
        let own = self
            .inner
            .store
            .with(
                self.direct_hash(key),
                |k| k == key.as_str(),
                |h| {
                    if h.is_expired(now) || !h.valid(&self.inner.marks) {
                        return None;
                    }
                    f.take().and_then(|f| f(&h.view(key.entity()), now))
                },
            )
            .flatten();
        if own.is_some() {
            return own;
        }
        // A `#[cached]` call's entry, held by its use case (keyed by the
        // call's arguments, found by its URN).
        let f = f?;
        let e = self.use_case_entry(key)?;
        f(&e.view(), now)
    }

    pub(super) fn read<T: Clone + 'static>(&self, key: &Key) -> Option<(Freshness, T)> {
        self.with_live(key, |e, now| {
            e.value
                .downcast_ref::<T>()
                .map(|v| (e.freshness(now), v.clone()))
        })
    }

    /// [`read`](Self::read), with what a waiter judges the value by (for
    /// the single-flight loop; off the hot path).
    pub(super) fn read_stamped<T: Clone + 'static>(
        &self,
        key: &Key,
    ) -> Option<(Freshness, Stamped<T>)> {
        // Before the check: a reconnect after it makes the value suspect.
        let since = self.inner.clock.stamp();
        self.with_live(key, |e, now| {
            e.value.downcast_ref::<T>().map(|v| {
                let found = Stamped {
                    value: v.clone(),
                    stamp: e.stamp,
                    tags: e.tags(),
                    since,
                };
                (e.freshness(now), found)
            })
        })
    }

    pub(super) fn entry_for<T>(&self, key: &Key, value: T, ttl: Option<Duration>) -> Entry<T> {
        let clock = &self.inner.clock;
        let mut e = Entry::loaded(value, clock.stamp(), clock.now_ms(), ttl, Duration::ZERO);
        e.tags = direct_tags(key);
        e
    }

    /// Puts `entry` in the direct API's in-process layer (replacing, or
    /// only where nothing live is); whether it went in. `since`: when this
    /// process got the value (see `Store::admit`).
    pub(super) fn put_local<T: Send + Sync + 'static>(
        &self,
        key: &Key,
        entry: Entry<T>,
        weight: u64,
        since: Stamp,
        how: Admit,
    ) -> bool {
        let entry = entry.map(|v| Arc::new(v) as AnyValue);
        let (hash, urn) = (self.direct_hash(key), key.as_str());
        let admitted = self.inner.store.admit(
            hash,
            urn.to_owned(),
            key,
            entry,
            weight,
            since,
            self.inner.local_ttl,
            &self.inner.marks,
            &self.inner.clock,
            how,
        );
        self.enforce_budget();
        matches!(admitted, Admitted::Stored { .. })
    }

    /// What a direct-API entry weighs against a byte bound: its share of
    /// the store, its key, and its value's encoded size (counted only under
    /// a bound; its inline size otherwise).
    /// [`put_local`](Self::put_local), weighing the value by
    /// [`direct_weight`](Self::direct_weight).
    fn put_weighed<T: Send + Sync + Serialize + 'static>(
        &self,
        key: &Key,
        entry: Entry<T>,
        since: Stamp,
        how: Admit,
    ) -> bool {
        let weight = self.direct_weight(key, &entry.value);
        self.put_local(key, entry, weight, since, how)
    }

    fn direct_weight<T: Serialize>(&self, key: &Key, value: &T) -> u64 {
        let value = if self.inner.budget.is_some() {
            crate::envelope::encoded_size(value)
        } else {
            std::mem::size_of::<T>() as u64
        };
        crate::local::ENTRY_OVERHEAD + 2 * key.as_str().len() as u64 + value
    }

    /// [`direct_weight`](Self::direct_weight) of a value that may not
    /// encode: its inline size (and, read from a remote layer, `encoded`).
    fn inline_weight<T>(key: &Key, encoded: u64) -> u64 {
        crate::local::ENTRY_OVERHEAD
            + 2 * key.as_str().len() as u64
            + (std::mem::size_of::<T>() as u64).max(encoded)
    }

    pub(super) fn encode_for_layers<T: Serialize>(
        &self,
        key: &Key,
        entry: &Entry<T>,
    ) -> Option<(Vec<u8>, Duration)> {
        if self.inner.layers.is_empty() {
            return None;
        }
        let remaining = Duration::from_millis(
            entry
                .stale_until_ms
                .saturating_sub(self.inner.clock.now_ms()),
        );
        if remaining.is_zero() {
            // Nothing left to live: a remote write would store a dead entry.
            return None;
        }
        match envelope::encode(key.as_str(), entry, self.format(0)) {
            Ok(b) if self.fits(b.len(), &self.inner.counters, key.as_str()) => Some((b, remaining)),
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(key = %crate::key::Shown(key.as_str()), "value does not encode; kept in process only");
                tracing::debug!(key = key.as_str(), error = %e, "value does not encode");
                None
            }
        }
    }

    pub(super) async fn get_remote<T>(&self, key: &Key) -> Option<T>
    where
        T: Clone + Send + Sync + DeserializeOwned + 'static,
    {
        self.get_remote_stamped(key).await.map(|found| found.value)
    }

    /// [`get_remote`](Self::get_remote), with the stamp of the start of the
    /// value's load and its tags.
    pub(super) async fn get_remote_stamped<T>(&self, key: &Key) -> Option<Stamped<T>>
    where
        T: Clone + Send + Sync + DeserializeOwned + 'static,
    {
        let (urn, tags) = (key.as_str(), direct_tags(key));
        let format = self.format(0);
        // The size of what was read: the entry's weight in process.
        let encoded = std::sync::atomic::AtomicU64::new(0);
        // Before the read: a reconnect during it makes what it found suspect.
        let since = self.inner.clock.stamp();
        let (hit, _) = self
            .read_layers(urn, LayerSet::ALL, &|_, r| r, 0, |b| {
                encoded.store(b.len() as u64, std::sync::atomic::Ordering::Relaxed);
                envelope::decode::<T>(b, format, urn, &tags)
            })
            .await;
        let entry = hit?.entry;
        let found = Stamped {
            value: entry.value.clone(),
            stamp: entry.stamp,
            tags: entry.tags.clone(),
            since,
        };
        let weight =
            Self::inline_weight::<T>(key, encoded.load(std::sync::atomic::Ordering::Relaxed));
        self.put_local(key, entry, weight, since, Admit::Replace);
        Some(found)
    }

    pub(super) fn count(&self, found: bool) {
        if found {
            self.inner.counters.hit();
        } else {
            self.inner.counters.miss();
        }
    }

    /// The value under `key`, if one of type `T` is there and not expired,
    /// in process or in a remote layer (which then fills the layers above
    /// it). A value of another type reads as absent.
    ///
    /// # Blocking
    ///
    /// Reads the remote layers (after a miss in process memory) on cachewright's
    /// I/O runtime, waiting at most the sum of their timeouts.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::Cache;
    ///
    /// let cache = Cache::builder().build();
    /// let key = cache.key("user", &42);
    /// assert_eq!(cache.get::<String>(&key), None);
    /// cache.set(&key, "ada".to_string(), None);
    /// assert_eq!(cache.get::<String>(&key).as_deref(), Some("ada"));
    /// assert_eq!(cache.get::<u64>(&key), None, "another type reads as absent");
    /// ```
    pub fn get<T>(&self, key: &Key) -> Option<T>
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    {
        if let Some((_, v)) = self.read::<T>(key) {
            self.count(true);
            return Some(v);
        }
        let key2 = key.clone();
        let v = self
            .remote_blocking(|c| async move { c.get_remote::<T>(&key2).await })
            .flatten();
        self.count(v.is_some());
        v
    }

    /// The entry under `key` in process memory, with its times and tags, if
    /// it holds a `T` and can still be served (fresh or stale); for
    /// inspection (`is_fresh`, `age`). Not counted as a hit or miss.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, Clock, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new(1_000);
    /// let cache = Cache::builder().clock(Clock::manual(&clock)).build();
    /// let key = cache.key("user", &42);
    /// cache.set(&key, "ada".to_string(), Some(Duration::from_secs(60)));
    /// clock.advance(Duration::from_secs(5));
    /// let e = cache.get_entry::<String>(&key).unwrap();
    /// assert!(e.is_fresh(cache.clock().now_ms()));
    /// assert_eq!(e.age(cache.clock().now_ms()), Duration::from_secs(5));
    /// assert_eq!(e.value, "ada");
    /// assert_eq!(&*e.tags[0], "user:42");
    /// ```
    pub fn get_entry<T: Clone + 'static>(&self, key: &Key) -> Option<Entry<T>> {
        self.with_live(key, |e, _| {
            let value = e.value.downcast_ref::<T>()?.clone();
            Some(e.to_entry().map(|_| value))
        })
    }

    /// The async twin of [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use cachewright::{Cache, LayerConfig};
    /// use cachewright::backends::MemoryBackend;
    /// use std::sync::Arc;
    ///
    /// let shared = Arc::new(MemoryBackend::new());
    /// let writer = Cache::builder().layer(LayerConfig::shared(shared.clone())).build();
    /// let reader = Cache::builder().layer(LayerConfig::shared(shared)).build();
    /// let key = writer.key("user", &42);
    /// writer.set_async(&key, 7u32, None).await;
    /// assert_eq!(reader.get_async::<u32>(&key).await, Some(7), "found in the shared layer");
    /// # }
    /// ```
    pub async fn get_async<T>(&self, key: &Key) -> Option<T>
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    {
        if let Some((_, v)) = self.read::<T>(key) {
            self.count(true);
            return Some(v);
        }
        let v = self.get_remote::<T>(key).await;
        self.count(v.is_some());
        v
    }

    /// Stores `value` under `key` for `ttl` (forever, until evicted, when
    /// `None`) in every layer, replacing what was there; other processes
    /// drop their older copies.
    ///
    /// # Blocking
    ///
    /// Waits for the remote layers at most their timeouts.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, Clock, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new(0);
    /// let cache = Cache::builder().clock(Clock::manual(&clock)).build();
    /// let key = cache.key("token", &"abc");
    /// cache.set(&key, 1u8, Some(Duration::from_secs(60)));
    /// cache.set(&key, 2u8, Some(Duration::from_secs(60)));
    /// assert_eq!(cache.get::<u8>(&key), Some(2), "replaced");
    /// clock.advance(Duration::from_secs(61));
    /// assert_eq!(cache.get::<u8>(&key), None, "expired");
    /// ```
    pub fn set<T>(&self, key: &Key, value: T, ttl: Option<Duration>)
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    {
        self.set_entry(key, self.entry_for(key, value, ttl));
    }

    /// The async twin of [`set`](Self::set).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = cachewright::Cache::builder().build();
    /// let key = cache.key("user", &1);
    /// cache.set_async(&key, vec!["admin".to_string()], None).await;
    /// assert_eq!(cache.get_async::<Vec<String>>(&key).await, Some(vec!["admin".to_string()]));
    /// # }
    /// ```
    pub async fn set_async<T>(&self, key: &Key, value: T, ttl: Option<Duration>)
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    {
        self.set_entry_async(key, self.entry_for(key, value, ttl))
            .await;
    }

    /// Stores `entry` under `key` as it is (its times, whether it is
    /// negative, its tags) in every layer: the twin of
    /// [`get_entry`](Self::get_entry), for copying or restoring entries. The
    /// key's entity tag is added to its tags if missing, as every entry
    /// carries it.
    ///
    /// # Blocking
    ///
    /// Waits for the remote layers at most their timeouts.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, Entry};
    /// use std::time::Duration;
    ///
    /// let cache = Cache::builder().build();
    /// let key = cache.key("report", &7);
    /// let now = cache.clock().precise_ms();
    /// let mut entry = Entry::new(String::from("q3"), now, Some(Duration::from_secs(60)), Duration::ZERO);
    /// entry.tags = vec![cachewright::tag("team", &"sales").into_boxed_str()].into();
    /// cache.set_entry(&key, entry);
    /// let back = cache.get_entry::<String>(&key).unwrap();
    /// assert_eq!(back.value, "q3");
    /// assert_eq!(&*back.tags[0], "report:7");
    /// cache.invalidate_tags([cachewright::tag("team", &"sales")]);
    /// assert!(cache.get_entry::<String>(&key).is_none());
    /// ```
    pub fn set_entry<T>(&self, key: &Key, entry: Entry<T>)
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    {
        self.store_entry(key, entry, self.inner.clock.stamp());
    }

    /// The async twin of [`set_entry`](Self::set_entry).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use cachewright::{Cache, Entry};
    /// use std::time::Duration;
    ///
    /// let (from, to) = (Cache::builder().build(), Cache::builder().build());
    /// let key = from.key("report", &7);
    /// from.set_async(&key, 42u32, Some(Duration::from_secs(60))).await;
    /// let entry = from.get_entry::<u32>(&key).unwrap();
    /// to.set_entry_async(&key, entry.clone()).await;
    /// assert_eq!(to.get_entry::<u32>(&key).unwrap().fresh_until_ms, entry.fresh_until_ms);
    /// # }
    /// ```
    pub async fn set_entry_async<T>(&self, key: &Key, entry: Entry<T>)
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    {
        self.store_entry_async(key, entry, self.inner.clock.stamp())
            .await;
    }

    /// [`set_entry_async`](Self::set_entry_async) of a value this process got
    /// at `since` (see `Store::admit`).
    pub(super) async fn store_entry_async<T>(&self, key: &Key, entry: Entry<T>, since: Stamp)
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    {
        if let Some(write) = self.store_local(key, entry, since) {
            self.store_remote(key, write).await;
        }
    }

    /// [`set_entry`](Self::set_entry) of a value this process got at `since`.
    pub(super) fn store_entry<T>(&self, key: &Key, entry: Entry<T>, since: Stamp)
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    {
        if let Some(write) = self.store_local(key, entry, since) {
            let key2 = key.clone();
            self.remote_blocking(|c| async move { c.store_remote(&key2, write).await });
        }
    }

    /// The in-process half of storing `entry` (with its key's entity tag);
    /// what the remote layers are to get, if they are to get anything.
    fn store_local<T>(&self, key: &Key, entry: Entry<T>, since: Stamp) -> Option<RemoteWrite>
    where
        T: Send + Sync + Serialize + 'static,
    {
        let entry = self.with_entity(key, entry);
        let created = entry.stamp;
        let tags = entry.tags.clone();
        let remote = self.encode_for_layers(key, &entry);
        self.put_weighed(key, entry, since, Admit::Replace);
        remote.map(|(bytes, remaining)| RemoteWrite {
            bytes,
            remaining,
            created,
            tags,
        })
    }

    /// The remote half: every layer, then the other processes are told.
    async fn store_remote(&self, key: &Key, write: RemoteWrite) {
        let remaining = write.remaining;
        let (all, none) = (LayerSet::ALL, LayerSet::NONE);
        self.write_or_owe(
            key.as_str(),
            write.bytes,
            &|_| remaining,
            all,
            none,
            (write.created, &write.tags),
        )
        .await;
        self.announce_write(key.as_str(), write.created);
    }

    /// `entry` with the entity tag of `key` first among its tags.
    fn with_entity<T>(&self, key: &Key, mut entry: Entry<T>) -> Entry<T> {
        let extra: Vec<String> = entry.tags.iter().map(|t| t.to_string()).collect();
        entry.tags = crate::entry::with_tags(&direct_tags(key), extra);
        entry
    }

    /// Stores `value` under `key` unless a live value is there; returns
    /// whether it stored. Atomic: of concurrent callers exactly one wins, so
    /// it serves as a simple lock with a lease of `ttl`. With remote layers,
    /// the first one decides (so the lock holds across processes); if it
    /// cannot be reached, nobody gets the lock (`false`).
    ///
    /// # Blocking
    ///
    /// With remote layers, waits for the first one at most its timeout.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::Cache;
    /// use std::time::Duration;
    ///
    /// let cache = Cache::builder().build();
    /// let lock = cache.key("lock", &"report");
    /// assert!(cache.set_if_not_exists(&lock, "worker-1".to_string(), Some(Duration::from_secs(10))));
    /// assert!(!cache.set_if_not_exists(&lock, "worker-2".to_string(), Some(Duration::from_secs(10))));
    /// assert_eq!(cache.get::<String>(&lock).as_deref(), Some("worker-1"));
    /// ```
    pub fn set_if_not_exists<T>(&self, key: &Key, value: T, ttl: Option<Duration>) -> bool
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    {
        if self.inner.layers.is_empty() {
            let entry = self.entry_for(key, value, ttl);
            return self.put_weighed(key, entry, self.inner.clock.stamp(), Admit::IfVacant);
        }
        let key2 = key.clone();
        self.remote_blocking(|c| async move { c.set_if_not_exists_async(&key2, value, ttl).await })
            .unwrap_or(false)
    }

    /// The async twin of [`set_if_not_exists`](Self::set_if_not_exists).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    ///
    /// let cache = cachewright::Cache::builder().build();
    /// let lock = cache.key("lock", &"nightly");
    /// let lease = Some(Duration::from_secs(30));
    /// assert!(cache.set_if_not_exists_async(&lock, 1u32, lease).await);
    /// assert!(!cache.set_if_not_exists_async(&lock, 2u32, lease).await, "held");
    /// # }
    /// ```
    pub async fn set_if_not_exists_async<T>(
        &self,
        key: &Key,
        value: T,
        ttl: Option<Duration>,
    ) -> bool
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    {
        let entry = self.entry_for(key, value, ttl);
        let Some(first) = self.inner.layers.first() else {
            return self.put_weighed(key, entry, self.inner.clock.stamp(), Admit::IfVacant);
        };
        let Some((bytes, remaining)) = self.encode_for_layers(key, &entry) else {
            return false;
        };
        match first
            .set_if_absent(key.as_str(), bytes, first.capped(remaining))
            .await
        {
            Ok(true) => {
                self.put_weighed(key, entry, self.inner.clock.stamp(), Admit::Replace);
                true
            }
            _ => false,
        }
    }

    /// Whether a live value (of any type) is under `key`, in any layer: one
    /// that a [`get`](Self::get) of its type would return. A remote entry
    /// larger than the cache's `max_value_bytes`, of another schema version
    /// ([`CacheBuilder::schema`](crate::CacheBuilder::schema)), unreadable,
    /// expired or invalidated does not exist. A hit in a lower layer fills the layers
    /// above it, as a `get` does.
    ///
    /// # Blocking
    ///
    /// Reads the remote layers (after a miss in process memory), waiting at
    /// most the sum of their timeouts.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().build();
    /// let key = cache.key("user", &1);
    /// assert!(!cache.exists(&key));
    /// cache.set(&key, 1u8, None);
    /// assert!(cache.exists(&key), "of any type");
    /// ```
    pub fn exists(&self, key: &Key) -> bool {
        if self.exists_local(key) {
            return true;
        }
        let key2 = key.clone();
        self.remote_blocking(|c| async move { c.exists_remote(&key2).await })
            .unwrap_or(false)
    }

    pub(super) fn exists_local(&self, key: &Key) -> bool {
        self.with_live(key, |_, _| Some(())).is_some()
    }

    /// Whether a remote layer holds an entry under `key` that a read would
    /// take, judged on the one remote read path as [`get`](Self::get) is:
    /// within `max_value_bytes`, an envelope of this format, codec and
    /// schema version written under this key, not expired, and not
    /// invalidated since. Its value is not decoded, so it counts whatever
    /// its type.
    pub(super) async fn exists_remote(&self, key: &Key) -> bool {
        let (urn, tags, format) = (key.as_str(), direct_tags(key), self.format(0));
        let (hit, _) = self
            .read_layers(urn, LayerSet::ALL, &|_, r| r, 0, |b| {
                envelope::decode_meta(b, format, urn, &tags)
            })
            .await;
        hit.is_some()
    }

    /// The async twin of [`exists`](Self::exists).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let cache = cachewright::Cache::builder().build();
    /// let key = cache.key("user", &1);
    /// cache.set_async(&key, 1u8, None).await;
    /// assert!(cache.exists_async(&key).await);
    /// cache.delete_async(&key).await;
    /// assert!(!cache.exists_async(&key).await);
    /// # }
    /// ```
    pub async fn exists_async(&self, key: &Key) -> bool {
        self.exists_local(key) || self.exists_remote(key).await
    }

    /// The values under `keys`, in order: from process memory, then in one
    /// batch per remote layer (`MGET` on Redis) for the rest.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use cachewright::Cache;
    ///
    /// let cache = Cache::builder().build();
    /// let keys: Vec<_> = (0..3).map(|i| cache.key("n", &i)).collect();
    /// cache.set_async(&keys[1], 10u32, None).await;
    /// assert_eq!(cache.get_many_async::<u32>(&keys).await, vec![None, Some(10), None]);
    /// # }
    /// ```
    pub async fn get_many_async<T>(&self, keys: &[Key]) -> Vec<Option<T>>
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    {
        let mut out: Vec<Option<T>> = keys
            .iter()
            .map(|k| self.read::<T>(k).map(|(_, v)| v))
            .collect();
        for layer in &self.inner.layers {
            let missing: Vec<usize> = (0..keys.len()).filter(|&i| out[i].is_none()).collect();
            if missing.is_empty() {
                break;
            }
            let names = missing
                .iter()
                .map(|&i| keys[i].as_str().to_owned())
                .collect();
            let Ok(found) = layer.get_many(names).await else {
                continue;
            };
            let now = self.inner.clock.now_ms();
            // Before the checks below: a reconnect during them makes what
            // they found suspect.
            let since = self.inner.clock.stamp();
            for (&i, bytes) in missing.iter().zip(found) {
                let Some(bytes) = bytes else { continue };
                let (urn, tags) = (keys[i].as_str(), direct_tags(&keys[i]));
                if bytes.len() > self.max_value_bytes() {
                    layer.decode_error(urn, &envelope::DecodeError::TooLarge);
                    continue;
                }
                match envelope::decode::<T>(&bytes, self.format(0), urn, &tags) {
                    Ok(e)
                        if e.freshness(now) != Freshness::Expired
                            && self.remote_valid(e.stamp, &e.tags, keys[i].as_str()).await =>
                    {
                        out[i] = Some(e.value.clone());
                        let weight = Self::inline_weight::<T>(&keys[i], bytes.len() as u64);
                        self.put_local(&keys[i], e, weight, since, Admit::Replace);
                    }
                    Ok(_) => {}
                    Err(e) => layer.decode_error(keys[i].as_str(), &e),
                }
            }
        }
        for v in &out {
            self.count(v.is_some());
        }
        out
    }

    /// The sync twin of [`get_many_async`](Self::get_many_async).
    ///
    /// # Blocking
    ///
    /// Reads the remote layers, one batch each, waiting at most the sum of
    /// their timeouts.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().build();
    /// let keys: Vec<_> = ["a", "b"].iter().map(|id| cache.key("user", id)).collect();
    /// cache.set(&keys[0], 1u32, None);
    /// assert_eq!(cache.get_many::<u32>(&keys), vec![Some(1), None]);
    /// ```
    pub fn get_many<T>(&self, keys: &[Key]) -> Vec<Option<T>>
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    {
        let local: Vec<Option<T>> = keys
            .iter()
            .map(|k| self.read::<T>(k).map(|(_, v)| v))
            .collect();
        if local.iter().all(Option::is_some) || self.inner.layers.is_empty() {
            for v in &local {
                self.count(v.is_some());
            }
            return local;
        }
        let keys2 = keys.to_vec();
        self.remote_blocking(|c| async move { c.get_many_async::<T>(&keys2).await })
            .unwrap_or(local)
    }
}

/// The tags of an entry written through the direct API: its key's entity.
pub(super) fn direct_tags(key: &Key) -> crate::entry::Tags {
    Arc::from([Box::<str>::from(key.entity())])
}

/// An encoded entry on its way to the remote layers.
pub(super) struct RemoteWrite {
    bytes: Vec<u8>,
    remaining: Duration,
    created: u64,
    tags: crate::entry::Tags,
}
