//! The `Cache` handle: configuration, the direct API, and the process-wide
//! default and named caches.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::clock::{saturating_ms, Clock};
use crate::context::Directive;
use crate::entry::{Entry, Freshness};
use crate::envelope::{self, Codec};
use crate::flight::{Flights, Outcome, Role};
use crate::key::Key;
use crate::layer::{LayerConfig, LayerStats, RemoteLayer};
use crate::stats::{Counters, Stats};
use crate::use_case::UseCaseInfo;
use crate::{context, store::Store};

/// The default bound of each use case's in-process layer.
pub const DEFAULT_CAPACITY: usize = 10_000;

type AnyValue = Arc<dyn Any + Send + Sync>;

/// A cache: a namespace and version for its keys, a clock, the in-process
/// layer of every use case stored in it, and a typed direct API.
///
/// Cloning a `Cache` is cheap and gives another handle to the same cache.
///
/// # Examples
///
/// ```
/// use cache_runtime::Cache;
/// use std::time::Duration;
///
/// let cache = Cache::builder().namespace("shop").version("v3").build();
/// let key = cache.key("user", &42);
/// assert_eq!(key.as_str(), "urn:shop:v3:user:42");
///
/// cache.set(&key, String::from("ada"), Some(Duration::from_secs(60)));
/// assert_eq!(cache.get::<String>(&key), Some("ada".to_string()));
/// assert!(cache.delete(&key));
/// assert_eq!(cache.get::<String>(&key), None);
/// ```
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    name: String,
    namespace: String,
    version: String,
    capacity: usize,
    clock: Clock,
    store: Store<String, Entry<AnyValue>>,
    flights: Flights<String, AnyValue>,
    counters: Counters,
    use_cases: Mutex<Vec<&'static dyn UseCaseInfo>>,
    layers: Vec<RemoteLayer>,
    local_ttl: Option<Duration>,
    codec: Codec,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("name", &self.inner.name)
            .field("namespace", &self.inner.namespace)
            .field("version", &self.inner.version)
            .field("capacity", &self.inner.capacity)
            .field("clock", &self.inner.clock)
            .finish_non_exhaustive()
    }
}

/// Configures a [`Cache`].
///
/// # Examples
///
/// ```
/// use cache_runtime::{Cache, ManualClock, Clock};
///
/// let clock = ManualClock::new(0);
/// let cache = Cache::builder()
///     .name("sessions")
///     .namespace("app")
///     .version("v2")
///     .capacity(1_000)
///     .clock(Clock::manual(&clock))
///     .build();
/// assert_eq!(cache.default_capacity(), 1_000);
/// ```
#[derive(Clone, Debug)]
pub struct CacheBuilder {
    name: String,
    namespace: String,
    version: String,
    capacity: usize,
    clock: Clock,
    layers: Vec<LayerConfig>,
    local_ttl: Option<Duration>,
    codec: Codec,
}

impl Default for CacheBuilder {
    fn default() -> Self {
        CacheBuilder {
            name: "default".into(),
            namespace: "cachet".into(),
            version: "v1".into(),
            capacity: DEFAULT_CAPACITY,
            clock: Clock::system(),
            layers: Vec::new(),
            local_ttl: None,
            codec: Codec::Json,
        }
    }
}

impl CacheBuilder {
    /// The cache's name, as stats and logs show it.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The first URN component of every key (default `cachet`). Name your
    /// service or environment here so that caches sharing a Redis stay apart.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The second URN component (default `v1`). Bumping it orphans every
    /// entry written under the old version at once, as after a schema change.
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// The bound of each use case's in-process layer, and of the direct
    /// API's, unless a use case sets its own `capacity` (default 10 000).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// The clock (a [`ManualClock`](crate::ManualClock) in tests).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Adds a remote layer below the in-process one (and below the layers
    /// added before it): Redis, a file tier, your own [`Backend`]. Lookups go
    /// top down; a hit fills the layers above; a load writes every layer.
    ///
    /// [`Backend`]: cache_backends::Backend
    ///
    /// # Examples
    ///
    /// ```
    /// use cache_runtime::{Cache, LayerConfig};
    /// use cache_backends::MemoryBackend;
    /// use std::time::Duration;
    ///
    /// // L1 capped at 30 s, then a shared layer capped at 300 s.
    /// let cache = Cache::builder()
    ///     .local_ttl(Duration::from_secs(30))
    ///     .layer(LayerConfig::new(MemoryBackend::new()).ttl_cap(Duration::from_secs(300)))
    ///     .build();
    /// # assert_eq!(cache.layer_stats()[0].backend, "memory");
    /// ```
    pub fn layer(mut self, layer: LayerConfig) -> Self {
        self.layers.push(layer);
        self
    }

    /// Caps how long any entry lives in the in-process layer (for example
    /// 30 s in front of a Redis holding it for 300 s).
    pub fn local_ttl(mut self, cap: Duration) -> Self {
        self.local_ttl = Some(cap);
        self
    }

    /// The codec of values in remote layers (JSON by default).
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// Builds the cache.
    pub fn build(self) -> Cache {
        Cache {
            inner: Arc::new(Inner {
                store: Store::new(self.capacity),
                flights: Flights::new(),
                counters: Counters::default(),
                use_cases: Mutex::new(Vec::new()),
                layers: self.layers.into_iter().map(RemoteLayer::new).collect(),
                local_ttl: self.local_ttl,
                codec: self.codec,
                name: self.name,
                namespace: self.namespace,
                version: self.version,
                capacity: self.capacity,
                clock: self.clock,
            }),
        }
    }
}

impl Cache {
    /// A builder with the defaults: namespace `cachet`, version `v1`,
    /// capacity 10 000, the system clock.
    pub fn builder() -> CacheBuilder {
        CacheBuilder::default()
    }

    /// The cache's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The namespace of its keys.
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The version of its keys.
    pub fn version(&self) -> &str {
        &self.inner.version
    }

    /// The bound of each use case's in-process layer.
    pub fn default_capacity(&self) -> usize {
        self.inner.capacity
    }

    /// Its clock.
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    pub(crate) fn layers(&self) -> &[RemoteLayer] {
        &self.inner.layers
    }

    pub(crate) fn local_ttl(&self) -> Option<Duration> {
        self.inner.local_ttl
    }

    pub(crate) fn codec(&self) -> Codec {
        self.inner.codec
    }

    /// Counters of each remote layer, top down.
    pub fn layer_stats(&self) -> Vec<LayerStats> {
        self.inner.layers.iter().map(|l| l.stats()).collect()
    }

    fn remote_budget(&self) -> Duration {
        self.inner.layers.iter().map(|l| l.budget()).sum()
    }

    /// The key of entity `key_type`/`id` in this cache's namespace and
    /// version; add `.arg(..)` and `.use_case(..)` as needed.
    pub fn key(&self, key_type: &str, id: &dyn fmt::Display) -> Key {
        Key::new(&self.inner.namespace, &self.inner.version, key_type, id)
    }

    pub(crate) fn register(&self, uc: &'static dyn UseCaseInfo) {
        self.inner
            .use_cases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(uc);
    }

    fn use_cases(&self) -> Vec<&'static dyn UseCaseInfo> {
        self.inner
            .use_cases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Counters of every use case of this cache (the direct API's under the
    /// name `"direct"`).
    pub fn stats(&self) -> Vec<Stats> {
        let mut all: Vec<Stats> = self.use_cases().iter().map(|u| u.stats()).collect();
        all.push(self.inner.counters.snapshot(
            "direct",
            self.inner.store.len(),
            self.inner.store.capacity(),
        ));
        all
    }

    /// The counters of one use case, by name.
    pub fn stats_for(&self, use_case: &str) -> Option<Stats> {
        self.stats().into_iter().find(|s| s.use_case == use_case)
    }

    /// Sets every counter of this cache back to zero.
    pub fn reset_stats(&self) {
        self.use_cases().iter().for_each(|u| u.reset_stats());
        self.inner.counters.reset();
    }

    /// Sets the share of calls of `use_case` that use the cache, in percent
    /// (0 turns it off: every call runs its loader; 100, the default, sends
    /// every call through the cache). Returns whether the use case exists
    /// (it exists once its function has been called).
    ///
    /// # Examples
    ///
    /// ```
    /// #[cachet::cached(key = "ramp_doc:<x>", name = "RampDoc")]
    /// fn f(x: u32) -> u32 { x }
    ///
    /// f(1);
    /// let cache = cachet::default_cache();
    /// assert!(cache.set_ramp("RampDoc", 0.0));
    /// f(1); // runs the loader, as if uncached
    /// assert_eq!(cache.stats_for("RampDoc").unwrap().bypasses, 1);
    /// ```
    pub fn set_ramp(&self, use_case: &str, percent: f64) -> bool {
        let per_mille = (percent.clamp(0.0, 100.0) * 10.0).round() as u32;
        let mut found = false;
        for u in self.use_cases().iter().filter(|u| u.name() == use_case) {
            u.set_ramp(per_mille);
            found = true;
        }
        found
    }

    /// Turns caching of `use_case` on (ramp 100 %) or off (ramp 0 %).
    pub fn set_enabled(&self, use_case: &str, enabled: bool) -> bool {
        self.set_ramp(use_case, if enabled { 100.0 } else { 0.0 })
    }

    /// The ramp of `use_case` in percent, if it exists.
    pub fn ramp(&self, use_case: &str) -> Option<f64> {
        self.use_cases()
            .iter()
            .find(|u| u.name() == use_case)
            .map(|u| f64::from(u.ramp()) / 10.0)
    }

    /// Removes every expired entry now (they are also dropped lazily, when
    /// read or when room is needed); returns how many.
    ///
    /// # Examples
    ///
    /// ```
    /// use cache_runtime::{Cache, Clock, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new(0);
    /// let cache = Cache::builder().clock(Clock::manual(&clock)).build();
    /// cache.set(&cache.key("k", &1), 1u8, Some(Duration::from_secs(1)));
    /// cache.set(&cache.key("k", &2), 2u8, None);
    /// clock.advance(Duration::from_secs(2));
    /// assert_eq!(cache.cleanup_expired(), 1);
    /// ```
    pub fn cleanup_expired(&self) -> usize {
        let now = self.inner.clock.now_ms();
        let direct = self.inner.store.remove_where(|_, e| e.is_expired(now));
        direct
            + self
                .use_cases()
                .iter()
                .map(|u| u.cleanup_expired())
                .sum::<usize>()
    }

    // ---- direct API ----

    fn direct_hash(&self, key: &Key) -> u64 {
        self.inner.store.hash(key.as_str())
    }

    fn read<T: Clone + 'static>(&self, key: &Key) -> Option<(Freshness, T)> {
        let now = self.inner.clock.now_ms();
        self.inner
            .store
            .with(
                self.direct_hash(key),
                |k| k == key.as_str(),
                |e| {
                    let f = e.freshness(now);
                    if f == Freshness::Expired {
                        return None;
                    }
                    e.value.downcast_ref::<T>().map(|v| (f, v.clone()))
                },
            )
            .flatten()
    }

    fn entry_for<T>(&self, key: &Key, value: T, ttl: Option<Duration>) -> Entry<T> {
        let mut e = Entry::new(value, self.inner.clock.now_ms(), ttl, Duration::ZERO);
        e.tags = vec![Box::<str>::from(key.entity())].into_boxed_slice();
        e
    }

    fn put_local<T: Send + Sync + 'static>(&self, key: &Key, entry: Entry<T>) {
        let now = self.inner.clock.now_ms();
        let Entry {
            value,
            created_ms,
            mut fresh_until_ms,
            mut stale_until_ms,
            negative,
            tags,
        } = entry;
        if let Some(cap) = self.inner.local_ttl {
            let until = now.saturating_add(saturating_ms(cap));
            fresh_until_ms = fresh_until_ms.min(until);
            stale_until_ms = stale_until_ms.min(until);
        }
        let any: AnyValue = Arc::new(value);
        let e = Entry {
            value: any,
            created_ms,
            fresh_until_ms,
            stale_until_ms,
            negative,
            tags,
        };
        self.inner
            .store
            .insert(self.direct_hash(key), key.as_str().to_owned(), e, |old| {
                old.is_expired(now)
            });
    }

    fn encode_for_layers<T: Serialize>(
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
        match envelope::encode(entry, self.inner.codec) {
            Ok(b) => Some((b, remaining)),
            Err(e) => {
                tracing::warn!(key = key.as_str(), error = %e, "value does not encode; kept in process only");
                None
            }
        }
    }

    async fn put_remote(&self, key: &Key, bytes: Vec<u8>, remaining: Duration, upto: usize) {
        for layer in self.inner.layers.iter().take(upto) {
            let _ = layer
                .put(
                    &self.inner.clock,
                    key.as_str(),
                    bytes.clone(),
                    layer.capped(remaining),
                )
                .await;
        }
    }

    async fn get_remote<T>(&self, key: &Key) -> Option<T>
    where
        T: Clone + Send + Sync + DeserializeOwned + 'static,
    {
        let clock = &self.inner.clock;
        for (i, layer) in self.inner.layers.iter().enumerate() {
            let Ok(Some(bytes)) = layer.get(clock, key.as_str()).await else {
                continue;
            };
            let entry: Entry<T> = match envelope::decode(&bytes, self.inner.codec) {
                Ok(e) => e,
                Err(e) => {
                    layer.decode_error(key.as_str(), &e);
                    continue;
                }
            };
            let now = clock.now_ms();
            if entry.freshness(now) == Freshness::Expired {
                continue;
            }
            if i > 0 {
                let remaining = Duration::from_millis(entry.stale_until_ms.saturating_sub(now));
                self.put_remote(key, bytes, remaining, i).await;
            }
            let value = entry.value.clone();
            self.put_local(key, entry);
            return Some(value);
        }
        None
    }

    /// Runs the remote phase of a sync direct-API call on cachet's i/o
    /// runtime; `None` when it could not finish in the layers' time budget.
    fn remote_blocking<R, F>(&self, f: impl FnOnce(Cache) -> F) -> Option<R>
    where
        F: Future<Output = R> + Send + 'static,
        R: Send + 'static,
    {
        if self.inner.layers.is_empty() {
            return None;
        }
        cache_backends::io::block_on(f(self.clone()), self.remote_budget()).ok()
    }

    fn count(&self, found: bool) {
        if found {
            self.inner.counters.hit();
        } else {
            self.inner.counters.miss();
        }
    }

    /// The value under `key`, if one of type `T` is there and not expired,
    /// in process or in a remote layer (which then fills the layers above
    /// it). A value of another type reads as absent.
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

    /// The async twin of [`get`](Self::get).
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
    /// `None`) in every layer, replacing what was there.
    pub fn set<T>(&self, key: &Key, value: T, ttl: Option<Duration>)
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    {
        let entry = self.entry_for(key, value, ttl);
        let remote = self.encode_for_layers(key, &entry);
        self.put_local(key, entry);
        if let Some((bytes, remaining)) = remote {
            let key = key.clone();
            self.remote_blocking(|c| async move {
                c.put_remote(&key, bytes, remaining, usize::MAX).await
            });
        }
    }

    /// The async twin of [`set`](Self::set).
    pub async fn set_async<T>(&self, key: &Key, value: T, ttl: Option<Duration>)
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    {
        let entry = self.entry_for(key, value, ttl);
        let remote = self.encode_for_layers(key, &entry);
        self.put_local(key, entry);
        if let Some((bytes, remaining)) = remote {
            self.put_remote(key, bytes, remaining, usize::MAX).await;
        }
    }

    /// Stores `value` under `key` unless a live value is there; returns
    /// whether it stored. Atomic: of concurrent callers exactly one wins, so
    /// it serves as a simple lock with a lease of `ttl`. With remote layers,
    /// the first one decides (so the lock holds across processes); if it
    /// cannot be reached, nobody gets the lock (`false`).
    ///
    /// # Examples
    ///
    /// ```
    /// use cache_runtime::Cache;
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
            return self.set_if_vacant_local(key, self.entry_for(key, value, ttl));
        }
        let key2 = key.clone();
        self.remote_blocking(|c| async move { c.set_if_not_exists_async(&key2, value, ttl).await })
            .unwrap_or(false)
    }

    fn set_if_vacant_local<T: Send + Sync + 'static>(&self, key: &Key, entry: Entry<T>) -> bool {
        let now = self.inner.clock.now_ms();
        let Entry {
            value,
            created_ms,
            fresh_until_ms,
            stale_until_ms,
            negative,
            tags,
        } = entry;
        let any: AnyValue = Arc::new(value);
        let e = Entry {
            value: any,
            created_ms,
            fresh_until_ms,
            stale_until_ms,
            negative,
            tags,
        };
        self.inner
            .store
            .insert_if_vacant(self.direct_hash(key), key.as_str().to_owned(), e, |old| {
                old.is_expired(now)
            })
            .0
    }

    /// The async twin of [`set_if_not_exists`](Self::set_if_not_exists).
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
            return self.set_if_vacant_local(key, entry);
        };
        let Some((bytes, remaining)) = self.encode_for_layers(key, &entry) else {
            return false;
        };
        match first
            .set_if_absent(
                &self.inner.clock,
                key.as_str(),
                bytes,
                first.capped(remaining),
            )
            .await
        {
            Ok(true) => {
                self.put_local(key, entry);
                true
            }
            _ => false,
        }
    }

    /// Whether a live value (of any type) is under `key`, in any layer.
    pub fn exists(&self, key: &Key) -> bool {
        if self.exists_local(key) {
            return true;
        }
        let key2 = key.clone();
        self.remote_blocking(|c| async move { c.exists_remote(&key2).await })
            .unwrap_or(false)
    }

    fn exists_local(&self, key: &Key) -> bool {
        let now = self.inner.clock.now_ms();
        self.inner
            .store
            .with(
                self.direct_hash(key),
                |k| k == key.as_str(),
                |e| !e.is_expired(now),
            )
            .unwrap_or(false)
    }

    async fn exists_remote(&self, key: &Key) -> bool {
        for layer in &self.inner.layers {
            if let Ok(Some(_)) = layer.get(&self.inner.clock, key.as_str()).await {
                return true;
            }
        }
        false
    }

    /// The async twin of [`exists`](Self::exists).
    pub async fn exists_async(&self, key: &Key) -> bool {
        self.exists_local(key) || self.exists_remote(key).await
    }

    fn delete_local(&self, key: &Key) -> bool {
        let now = self.inner.clock.now_ms();
        self.inner
            .store
            .remove(self.direct_hash(key), |k| k == key.as_str())
            .is_some_and(|e| !e.is_expired(now))
    }

    async fn delete_remote(&self, key: &Key) -> bool {
        let mut any = false;
        for layer in &self.inner.layers {
            any |= layer
                .delete(&self.inner.clock, key.as_str())
                .await
                .unwrap_or(false);
        }
        any
    }

    /// Removes the value under `key` from every layer; returns whether a
    /// live one was there.
    pub fn delete(&self, key: &Key) -> bool {
        let local = self.delete_local(key);
        let key2 = key.clone();
        let remote = self
            .remote_blocking(|c| async move { c.delete_remote(&key2).await })
            .unwrap_or(false);
        local || remote
    }

    /// The async twin of [`delete`](Self::delete).
    pub async fn delete_async(&self, key: &Key) -> bool {
        let local = self.delete_local(key);
        self.delete_remote(key).await || local
    }

    /// The value under `key`, or the loader's, stored for `ttl` in every
    /// layer.
    ///
    /// Concurrent calls for one absent key run `loader` once; the others
    /// wait for its value. An error is returned to the caller that ran the
    /// loader and is not cached; waiters then try in turn.
    ///
    /// # Examples
    ///
    /// ```
    /// use cache_runtime::Cache;
    ///
    /// let cache = Cache::builder().build();
    /// let key = cache.key("answer", &"life");
    /// let v: Result<u32, String> = cache.get_or_load(&key, None, || Ok(42));
    /// assert_eq!(v, Ok(42));
    /// let again: Result<u32, String> = cache.get_or_load(&key, None, || Ok(0));
    /// assert_eq!(again, Ok(42));
    /// ```
    pub fn get_or_load<T, E>(
        &self,
        key: &Key,
        ttl: Option<Duration>,
        loader: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E>
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    {
        if let Some((_, v)) = self.read::<T>(key) {
            self.count(true);
            return Ok(v);
        }
        let mut loader = Some(loader);
        loop {
            match self.inner.flights.join(&key.as_str().to_owned()) {
                Role::Leader(lead) => {
                    if let Some((Freshness::Fresh, v)) = self.read::<T>(key) {
                        lead.finish(Outcome::Done(Arc::new(v.clone())));
                        return Ok(v);
                    }
                    let key2 = key.clone();
                    if let Some(v) = self
                        .remote_blocking(|c| async move { c.get_remote::<T>(&key2).await })
                        .flatten()
                    {
                        self.count(true);
                        lead.finish(Outcome::Done(Arc::new(v.clone())));
                        return Ok(v);
                    }
                    self.count(false);
                    let Some(loader) = loader.take() else {
                        lead.finish(Outcome::Abandoned);
                        continue;
                    };
                    let start = Instant::now();
                    let (r, said) = context::directed(loader);
                    self.inner.counters.load(start.elapsed(), r.is_ok());
                    if let Ok(v) = &r {
                        if let Some(ttl) = Self::ttl_said(said, ttl) {
                            self.set(key, v.clone(), ttl);
                        }
                    }
                    return Self::settle(lead, r);
                }
                Role::Waiter(f) => {
                    if let Some(v) = self.waited::<T>(f.wait(|_| None)) {
                        return Ok(v);
                    }
                }
            }
        }
    }

    /// The async twin of [`get_or_load`](Self::get_or_load).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use cache_runtime::Cache;
    ///
    /// let cache = Cache::builder().build();
    /// let key = cache.key("answer", &1);
    /// let v: Result<u32, ()> = cache.get_or_load_async(&key, None, async { Ok(7) }).await;
    /// assert_eq!(v, Ok(7));
    /// # }
    /// ```
    pub async fn get_or_load_async<T, E, F>(
        &self,
        key: &Key,
        ttl: Option<Duration>,
        loader: F,
    ) -> Result<T, E>
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
        F: Future<Output = Result<T, E>>,
    {
        if let Some((_, v)) = self.read::<T>(key) {
            self.count(true);
            return Ok(v);
        }
        let mut loader = Some(loader);
        loop {
            match self.inner.flights.join(&key.as_str().to_owned()) {
                Role::Leader(lead) => {
                    if let Some((Freshness::Fresh, v)) = self.read::<T>(key) {
                        lead.finish(Outcome::Done(Arc::new(v.clone())));
                        return Ok(v);
                    }
                    if let Some(v) = self.get_remote::<T>(key).await {
                        self.count(true);
                        lead.finish(Outcome::Done(Arc::new(v.clone())));
                        return Ok(v);
                    }
                    self.count(false);
                    let Some(loader) = loader.take() else {
                        lead.finish(Outcome::Abandoned);
                        continue;
                    };
                    let start = Instant::now();
                    let (r, said) = context::directed_async(loader).await;
                    self.inner.counters.load(start.elapsed(), r.is_ok());
                    if let Ok(v) = &r {
                        if let Some(ttl) = Self::ttl_said(said, ttl) {
                            self.set_async(key, v.clone(), ttl).await;
                        }
                    }
                    return Self::settle(lead, r);
                }
                Role::Waiter(f) => {
                    if let Some(v) = self.waited::<T>(f.wait_async(|_| None).await) {
                        return Ok(v);
                    }
                }
            }
        }
    }

    /// The values under `keys`, in order: from process memory, then in one
    /// batch per remote layer (`MGET` on Redis) for the rest.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use cache_runtime::Cache;
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
            let Ok(found) = layer.get_many(&self.inner.clock, names).await else {
                continue;
            };
            let now = self.inner.clock.now_ms();
            for (&i, bytes) in missing.iter().zip(found) {
                let Some(bytes) = bytes else { continue };
                match envelope::decode::<T>(&bytes, self.inner.codec) {
                    Ok(e) if e.freshness(now) != Freshness::Expired => {
                        out[i] = Some(e.value.clone());
                        self.put_local(&keys[i], e);
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

    /// The TTL to store a loaded value with, or `None` not to store it.
    fn ttl_said(said: Directive, ttl: Option<Duration>) -> Option<Option<Duration>> {
        match said {
            Directive::Skip => None,
            Directive::Ttl(d) => Some(Some(d)),
            Directive::Default => Some(ttl),
        }
    }

    fn waited<T: Clone + 'static>(&self, o: Outcome<AnyValue>) -> Option<T> {
        match o {
            Outcome::Done(v) => v.downcast_ref::<T>().cloned(),
            _ => None,
        }
    }

    fn settle<T, E>(
        lead: crate::flight::Lead<'_, String, AnyValue>,
        r: Result<T, E>,
    ) -> Result<T, E>
    where
        T: Clone + Send + Sync + 'static,
    {
        match r {
            Ok(v) => {
                lead.finish(Outcome::Done(Arc::new(v.clone())));
                Ok(v)
            }
            Err(e) => {
                lead.finish(Outcome::Failed(None));
                Err(e)
            }
        }
    }

    /// The URN prefix of every key of this cache (`urn:<ns>:<version>:`).
    pub fn key_prefix(&self) -> String {
        let mut p = String::from("urn:");
        crate::key::escape_into(&mut p, &self.inner.namespace);
        p.push(':');
        crate::key::escape_into(&mut p, &self.inner.version);
        p.push(':');
        p
    }

    fn clear_local(&self) {
        self.use_cases().iter().for_each(|u| u.clear());
        self.inner.store.clear();
    }

    async fn clear_remote(&self) {
        let prefix = self.key_prefix();
        for layer in &self.inner.layers {
            let _ = layer.delete_prefix(&self.inner.clock, &prefix).await;
        }
    }

    /// Drops every entry of this cache's namespace and version: in process
    /// (every use case and the direct API) and in every remote layer.
    pub fn clear(&self) {
        self.clear_local();
        let budget = self.remote_budget() * 50;
        if !self.inner.layers.is_empty() {
            let c = self.clone();
            let _ = cache_backends::io::block_on(async move { c.clear_remote().await }, budget);
        }
    }

    /// The async twin of [`clear`](Self::clear).
    pub async fn clear_async(&self) {
        self.clear_local();
        self.clear_remote().await;
    }
}

// ---- process-wide caches ----------------------------------------------------

static DEFAULT: OnceLock<Cache> = OnceLock::new();
static NAMED: LazyLock<RwLock<HashMap<String, Cache>>> = LazyLock::new(Default::default);

/// The process-wide default cache, built on first use with the defaults
/// unless [`configure`] installed another first.
pub fn default_cache() -> &'static Cache {
    DEFAULT.get_or_init(|| Cache::builder().build())
}

/// Counters of every use case of the default cache.
pub fn stats() -> Vec<Stats> {
    default_cache().stats()
}

/// The counters of one use case of the default cache.
pub fn stats_for(use_case: &str) -> Option<Stats> {
    default_cache().stats_for(use_case)
}

/// Why a configuration could not be installed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The default cache was already built (by an earlier `install`, or by a
    /// cached call made before it).
    #[error(
        "the default cache is already in use; configure cachet once, before the first cached call"
    )]
    AlreadyInstalled,
    /// A named cache of that name already exists.
    #[error("a cache named `{0}` is already installed")]
    DuplicateName(String),
}

/// Starts configuring the process-wide caches, once, at startup.
///
/// # Examples
///
/// ```
/// use cache_runtime::{configure, Cache, NamedCache};
///
/// configure()
///     .namespace("billing")
///     .version("v7")
///     .capacity(50_000)
///     .named("sessions", Cache::builder().capacity(1_000))
///     .install()
///     .unwrap();
///
/// static SESSIONS: NamedCache = NamedCache::new("sessions");
/// assert_eq!(SESSIONS.cache().namespace(), "billing");
/// assert_eq!(SESSIONS.cache().default_capacity(), 1_000);
/// assert_eq!(cache_runtime::default_cache().version(), "v7");
/// // Configuring twice is an error, not a silent change.
/// assert!(configure().install().is_err());
/// ```
pub fn configure() -> Setup {
    Setup {
        default: Cache::builder(),
        named: Vec::new(),
    }
}

/// The process-wide configuration being built; see [`configure`].
#[derive(Debug)]
#[must_use = "nothing is configured until `install` is called"]
pub struct Setup {
    default: CacheBuilder,
    named: Vec<(String, CacheBuilder)>,
}

impl Setup {
    /// The namespace of the default cache and of named caches.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.default = self.default.namespace(ns);
        self
    }

    /// The version of the default cache and of named caches.
    pub fn version(mut self, v: impl Into<String>) -> Self {
        self.default = self.default.version(v);
        self
    }

    /// The default per-use-case capacity.
    pub fn capacity(mut self, c: usize) -> Self {
        self.default = self.default.capacity(c);
        self
    }

    /// The clock of the default cache and of named caches.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.default = self.default.clock(clock);
        self
    }

    /// Adds a named cache. Its namespace, version and clock are the default
    /// cache's; its other settings are `builder`'s.
    pub fn named(mut self, name: impl Into<String>, builder: CacheBuilder) -> Self {
        self.named.push((name.into(), builder));
        self
    }

    /// Installs the configuration.
    ///
    /// # Errors
    ///
    /// [`ConfigError::AlreadyInstalled`] when the default cache is already
    /// built; [`ConfigError::DuplicateName`] when a named cache exists.
    pub fn install(self) -> Result<(), ConfigError> {
        let base = self.default.clone();
        let mut named = NAMED.write().unwrap_or_else(|e| e.into_inner());
        for (name, _) in &self.named {
            if named.contains_key(name) {
                return Err(ConfigError::DuplicateName(name.clone()));
            }
        }
        let mut set = false;
        DEFAULT.get_or_init(|| {
            set = true;
            self.default.build()
        });
        if !set {
            return Err(ConfigError::AlreadyInstalled);
        }
        for (name, b) in self.named {
            let cache = CacheBuilder {
                name: name.clone(),
                namespace: base.namespace.clone(),
                version: base.version.clone(),
                clock: base.clock.clone(),
                ..b
            }
            .build();
            named.insert(name, cache);
        }
        Ok(())
    }
}

/// A reference, usable in a `static`, to a named cache configured with
/// [`configure`]. A name that was never configured gets a cache with the
/// default cache's settings on first use.
///
/// # Examples
///
/// ```
/// use cache_runtime::NamedCache;
///
/// static REPORTS: NamedCache = NamedCache::new("reports");
/// assert_eq!(REPORTS.cache().name(), "reports");
/// ```
#[derive(Debug)]
pub struct NamedCache {
    name: &'static str,
    cell: OnceLock<Cache>,
}

impl NamedCache {
    /// A reference to the cache called `name`.
    pub const fn new(name: &'static str) -> Self {
        NamedCache {
            name,
            cell: OnceLock::new(),
        }
    }

    /// The cache, resolved on first use.
    pub fn cache(&self) -> &Cache {
        self.cell.get_or_init(|| {
            if let Some(c) = NAMED
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .get(self.name)
            {
                return c.clone();
            }
            let mut named = NAMED.write().unwrap_or_else(|e| e.into_inner());
            named
                .entry(self.name.to_string())
                .or_insert_with(|| {
                    let d = default_cache();
                    Cache::builder()
                        .name(self.name)
                        .namespace(d.namespace())
                        .version(d.version())
                        .capacity(d.default_capacity())
                        .clock(d.clock().clone())
                        .build()
                })
                .clone()
        })
    }
}

/// Anything a `#[cached(cache = ...)]` argument may name.
pub trait AsCache {
    /// The cache.
    fn as_cache(&self) -> Cache;
}

impl AsCache for Cache {
    fn as_cache(&self) -> Cache {
        self.clone()
    }
}

impl AsCache for NamedCache {
    fn as_cache(&self) -> Cache {
        self.cache().clone()
    }
}

impl<F: FnOnce() -> Cache> AsCache for LazyLock<Cache, F> {
    fn as_cache(&self) -> Cache {
        Cache::clone(self)
    }
}

impl<T: AsCache + ?Sized> AsCache for &T {
    fn as_cache(&self) -> Cache {
        (**self).as_cache()
    }
}

impl<T: AsCache + ?Sized> AsCache for Arc<T> {
    fn as_cache(&self) -> Cache {
        (**self).as_cache()
    }
}
