//! The `Cache` handle: configuration, the direct API, and the process-wide
//! default and named caches.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::clock::{saturating_ms, Clock};
use crate::context::{AsyncLoader, Directive, Loader, SyncLoader};
use crate::entry::Held;
use crate::entry::{Entry, Freshness};
use crate::envelope::{self, Codec};
use crate::flight::{self, Flights, Load, ShareError, Wait};
use crate::key::Key;
use crate::layer::{LayerConfig, LayerSet, LayerStats, RemoteLayer};
use crate::local::{Admit, Admitted, Store};
use crate::stats::{Counters, Stats};
use crate::use_case::UseCaseInfo;
use crate::watermark::{tag_hash, Watermarks};
use cachewright_backends::{Bus, BusEvent};

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
/// use cachewright_runtime::Cache;
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
    store: Store<String, Held<AnyValue>>,
    /// The direct API's loads in flight, one map per value type (callers
    /// asking for different types under one key load apart).
    flights: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    counters: Counters,
    use_cases: Mutex<Vec<&'static dyn UseCaseInfo>>,
    layers: Vec<Arc<RemoteLayer>>,
    local_ttl: Option<Duration>,
    codec: Codec,
    marks: Arc<Watermarks>,
    bus: Option<Arc<dyn Bus>>,
    /// Identifies this cache's messages on the bus, so it skips its own.
    origin: u64,
}

/// What travels on the invalidation bus: never values, only what to drop.
#[derive(serde::Serialize, serde::Deserialize, Debug)]
struct BusMessage {
    origin: u64,
    kind: BusKind,
    #[serde(default)]
    items: Vec<String>,
    at: u64,
}

#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum BusKind {
    /// Tags invalidated at `at` (watermarks).
    Tags,
    /// Keys invalidated (deleted) at `at`: older copies are invalid.
    Keys,
    /// Keys written anew at `at`: older copies are superseded. Written
    /// through to the remote layers, so only in-process copies elsewhere
    /// need dropping; this process may forget these first (see
    /// `Watermarks::raise_written`).
    Written,
    /// The namespace was cleared.
    Clear,
}

/// Which invalidation bus a cache uses.
#[derive(Clone, Default)]
enum BusChoice {
    /// The first remote layer's, if it has one (Redis pub/sub).
    #[default]
    Auto,
    Off,
    Custom(Arc<dyn Bus>),
}

impl fmt::Debug for BusChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BusChoice::Auto => "Auto",
            BusChoice::Off => "Off",
            BusChoice::Custom(_) => "Custom",
        })
    }
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
/// use cachewright_runtime::{Cache, ManualClock, Clock};
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
    bus: BusChoice,
}

impl Default for CacheBuilder {
    fn default() -> Self {
        CacheBuilder {
            name: "default".into(),
            namespace: "cachewright".into(),
            version: "v1".into(),
            capacity: DEFAULT_CAPACITY,
            clock: Clock::system(),
            layers: Vec::new(),
            local_ttl: None,
            codec: Codec::Json,
            bus: BusChoice::Auto,
        }
    }
}

impl CacheBuilder {
    /// The cache's name, as stats and logs show it.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The first URN component of every key (default `cachewright`). Name your
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
    /// [`Backend`]: cachewright_backends::Backend
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright_runtime::{Cache, LayerConfig};
    /// use cachewright_backends::MemoryBackend;
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

    /// Uses `bus` to tell other processes about invalidations, instead of
    /// the first remote layer's own (Redis pub/sub, used by default).
    pub fn bus(mut self, bus: Arc<dyn Bus>) -> Self {
        self.bus = BusChoice::Custom(bus);
        self
    }

    /// No invalidation bus: other processes' in-process layers are not told
    /// about invalidations (they see them in shared layers only), and this
    /// process's in-process layer is always trusted.
    pub fn without_bus(mut self) -> Self {
        self.bus = BusChoice::Off;
        self
    }

    /// This builder with `base`'s namespace, version and clock (named caches
    /// share the default cache's).
    pub(crate) fn identity_of(self, base: &CacheBuilder) -> Self {
        CacheBuilder {
            namespace: base.namespace.clone(),
            version: base.version.clone(),
            clock: base.clock.clone(),
            ..self
        }
    }

    /// Builds the cache. With a bus, it starts listening in the background;
    /// until it is subscribed the in-process layer is not used (it could
    /// not learn of invalidations).
    pub fn build(self) -> Cache {
        let bus = match self.bus {
            BusChoice::Off => None,
            BusChoice::Custom(b) => Some(b),
            BusChoice::Auto => self.layers.iter().find_map(|l| l.backend().bus()),
        };
        let cache = Cache {
            inner: Arc::new(Inner {
                marks: Arc::new(Watermarks::new(bus.is_none())),
                bus,
                origin: fastrand::u64(..),
                store: Store::new(self.capacity),
                flights: Mutex::default(),
                counters: Counters::default(),
                use_cases: Mutex::new(Vec::new()),
                layers: self
                    .layers
                    .into_iter()
                    .map(|l| Arc::new(RemoteLayer::new(l, self.clock.clone())))
                    .collect(),
                local_ttl: self.local_ttl,
                codec: self.codec,
                name: self.name,
                namespace: self.namespace,
                version: self.version,
                capacity: self.capacity,
                clock: self.clock,
            }),
        };
        cache.listen();
        cache
    }
}

impl Cache {
    /// A builder with the defaults: namespace `cachewright`, version `v1`,
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

    pub(crate) fn layers(&self) -> &[Arc<RemoteLayer>] {
        &self.inner.layers
    }

    pub(crate) fn marks(&self) -> &Arc<Watermarks> {
        &self.inner.marks
    }

    /// The bus channel of this cache's namespace and version.
    fn channel(&self) -> String {
        format!("cachewright:bus:{}", self.key_prefix())
    }

    /// Subscribes to the bus, holding only a weak reference: listening stops
    /// once the cache is dropped.
    fn listen(&self) {
        let Some(bus) = &self.inner.bus else { return };
        let weak = Arc::downgrade(&self.inner);
        let sink: cachewright_backends::BusSink = Arc::new(move |event| {
            let Some(inner) = weak.upgrade() else {
                return false;
            };
            Cache { inner }.on_bus(event);
            true
        });
        bus.subscribe(&self.channel(), sink);
    }

    fn on_bus(&self, event: BusEvent) {
        let marks = &self.inner.marks;
        match event {
            BusEvent::Connected => {
                // Whatever was invalidated while we were not listening is
                // unknown: nothing held from before is trusted.
                marks.reset(self.inner.clock.now_ms());
                self.clear_local();
                marks.set_trusted(true);
                tracing::info!(cache = %self.inner.name, "invalidation bus connected");
            }
            BusEvent::Disconnected => {
                marks.set_trusted(false);
                self.clear_local();
            }
            BusEvent::Message(bytes) => {
                let Ok(msg) = serde_json::from_slice::<BusMessage>(&bytes) else {
                    tracing::warn!(cache = %self.inner.name, "unreadable message on the invalidation bus; ignored");
                    return;
                };
                if msg.origin == self.inner.origin {
                    return;
                }
                self.inner.counters.bus_message();
                match msg.kind {
                    BusKind::Tags | BusKind::Keys => {
                        for item in &msg.items {
                            marks.raise(tag_hash(item), msg.at);
                        }
                    }
                    BusKind::Written => {
                        let now = self.inner.clock.precise_ms();
                        for item in &msg.items {
                            marks.raise_written(tag_hash(item), msg.at, now);
                        }
                    }
                    BusKind::Clear => self.clear_local(),
                }
                tracing::debug!(cache = %self.inner.name, kind = ?msg.kind, items = msg.items.len(), "invalidation received");
            }
        }
    }

    fn message(
        &self,
        kind: BusKind,
        items: Vec<String>,
        at: u64,
    ) -> Option<(Arc<dyn Bus>, Vec<u8>)> {
        let bus = self.inner.bus.clone()?;
        let msg = BusMessage {
            origin: self.inner.origin,
            kind,
            items,
            at,
        };
        serde_json::to_vec(&msg).ok().map(|b| (bus, b))
    }

    async fn publish(&self, kind: BusKind, items: Vec<String>, at: u64) {
        let Some((bus, bytes)) = self.message(kind, items, at) else {
            return;
        };
        let channel = self.channel();
        match tokio::time::timeout(Duration::from_secs(1), bus.publish(&channel, bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "could not publish an invalidation"),
            Err(_) => tracing::warn!("publishing an invalidation timed out"),
        }
    }

    /// Tells other processes that `urn` was (re)written with an entry
    /// created at `created`, without waiting: their copies created before it
    /// are dropped (the watermark sits just below the new entry).
    pub(crate) fn announce_write(&self, urn: &str, created: u64) {
        let at = created.saturating_sub(1);
        let Some((bus, bytes)) = self.message(BusKind::Written, vec![urn.to_owned()], at) else {
            return;
        };
        let channel = self.channel();
        if let Some(h) = cachewright_backends::io::handle() {
            h.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(1), bus.publish(&channel, bytes))
                    .await;
            });
        }
    }

    /// The key under which a tag's watermark lives in the first remote
    /// layer. `~` cannot start a key type, so it never meets an entry.
    fn watermark_key(&self, tag: &str) -> String {
        format!("{}~tag:{tag}", self.key_prefix())
    }

    /// Whether an entry read from a remote layer is still valid: its tags
    /// and key against the watermarks this process knows, and, for tags it
    /// has not yet heard of, those stored in the first remote layer.
    pub(crate) async fn remote_valid(&self, created: u64, tags: &[Box<str>], urn: &str) -> bool {
        let marks = &self.inner.marks;
        // The tags' hashes, then the key's: on the stack for the usual few.
        let mut stack = [0u64; 8];
        let mut heap = Vec::new();
        let n = tags.len() + 1;
        let hashes: &mut [u64] = if n <= stack.len() {
            &mut stack[..n]
        } else {
            heap.resize(n, 0);
            &mut heap
        };
        for (h, t) in hashes
            .iter_mut()
            .zip(tags.iter().map(|t| &**t).chain([urn]))
        {
            *h = tag_hash(t);
        }
        let Some(first) = self.inner.layers.first() else {
            return marks.valid(created, hashes);
        };
        // With the bus up, a tag fetched once stays known: later
        // invalidations arrive as messages.
        let listening = self.inner.bus.is_some() && marks.trusted();
        let (valid, unknown) = marks.judge(created, hashes, tags.len(), listening);
        if !valid {
            return false;
        }
        if unknown == 0 {
            return true;
        }
        let wanted: Vec<usize> = (0..tags.len())
            .filter(|&i| unknown & (1u64 << i.min(63)) != 0)
            .collect();
        let keys = wanted
            .iter()
            .map(|&i| self.watermark_key(&tags[i]))
            .collect();
        let generation = marks.generation();
        let Ok(found) = first.get_many_uncounted(keys).await else {
            // Cannot verify: not served.
            return false;
        };
        let read = wanted.iter().zip(found).map(|(&i, v)| {
            let at = v.and_then(|b| std::str::from_utf8(&b).ok()?.trim().parse::<u64>().ok());
            (hashes[i], at)
        });
        marks.learn(read, listening.then_some(generation));
        marks.valid(created, hashes)
    }

    /// Whether this cache's in-process layer is in use: always without a
    /// bus; with one, once it is subscribed (and not while it is down).
    pub fn bus_connected(&self) -> bool {
        self.inner.marks.trusted()
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
    /// #[cachewright::cached(key = "ramp_doc:<x>", name = "RampDoc")]
    /// fn f(x: u32) -> u32 { x }
    ///
    /// f(1);
    /// let cache = cachewright::default_cache();
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
    /// use cachewright_runtime::{Cache, Clock, ManualClock};
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
        let direct = self
            .inner
            .store
            .remove_where(|_, e| e.entry.is_expired(now));
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
                |h| {
                    let f = h.entry.freshness(now);
                    if f == Freshness::Expired || !h.valid(&self.inner.marks) {
                        return None;
                    }
                    h.entry.value.downcast_ref::<T>().map(|v| (f, v.clone()))
                },
            )
            .flatten()
    }

    fn entry_for<T>(&self, key: &Key, value: T, ttl: Option<Duration>) -> Entry<T> {
        let mut e = Entry::new(value, self.inner.clock.precise_ms(), ttl, Duration::ZERO);
        e.tags = direct_tags(key);
        e
    }

    /// Puts `entry` in the direct API's in-process layer (replacing, or
    /// only where nothing live is); whether it went in.
    fn put_local<T: Send + Sync + 'static>(&self, key: &Key, entry: Entry<T>, how: Admit) -> bool {
        let entry = entry.map(|v| Arc::new(v) as AnyValue);
        let now = self.inner.clock.now_ms();
        let (hash, urn) = (self.direct_hash(key), key.as_str());
        matches!(
            self.inner.store.admit(
                hash,
                urn.to_owned(),
                urn,
                entry,
                self.inner.local_ttl,
                &self.inner.marks,
                now,
                how,
            ),
            Admitted::Stored { .. }
        )
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
                .saturating_sub(self.inner.clock.precise_ms()),
        );
        if remaining.is_zero() {
            // Nothing left to live: a remote write would store a dead entry.
            return None;
        }
        match envelope::encode(key.as_str(), entry, self.inner.codec) {
            Ok(b) => Some((b, remaining)),
            Err(e) => {
                tracing::warn!(key = key.as_str(), error = %e, "value does not encode; kept in process only");
                None
            }
        }
    }

    /// Writes an encoded entry to the layers of `to`, each capped by its
    /// own TTL cap: the one write path of every remote write.
    pub(crate) async fn write_layers(
        &self,
        urn: &str,
        bytes: Vec<u8>,
        remaining: Duration,
        to: LayerSet,
    ) {
        for (i, layer) in self.inner.layers.iter().enumerate() {
            if to.contains(i) {
                let _ = layer.put(urn, bytes.clone(), layer.capped(remaining)).await;
            }
        }
    }

    /// Reads `urn` from the remote layers, top down: the first entry that
    /// `decode` takes, that has not expired and that no invalidation covers
    /// wins, and fills the layers above the one that held it. The one read
    /// path of every remote read; also says which layers failed.
    pub(crate) async fn read_layers<V>(
        &self,
        urn: &str,
        decode: impl Fn(&[u8]) -> Result<Entry<V>, crate::envelope::DecodeError>,
    ) -> (Option<RemoteHit<V>>, LayerSet) {
        let mut failed = LayerSet::NONE;
        for (i, layer) in self.inner.layers.iter().enumerate() {
            let bytes = match layer.get(urn).await {
                Ok(Some(b)) => b,
                Ok(None) => continue,
                Err(_) => {
                    failed = failed.with(i);
                    continue;
                }
            };
            let entry = match decode(&bytes) {
                Ok(e) => e,
                Err(e) => {
                    // Another build, another type or garbage: a miss; the
                    // load that follows overwrites it.
                    layer.decode_error(urn, &e);
                    continue;
                }
            };
            let now = self.inner.clock.now_ms();
            let freshness = entry.freshness(now);
            if freshness == Freshness::Expired
                || !self.remote_valid(entry.created_ms, &entry.tags, urn).await
            {
                // Invalidated since it was written (or not verifiable now).
                continue;
            }
            if i > 0 {
                let remaining = Duration::from_millis(entry.stale_until_ms.saturating_sub(now));
                self.write_layers(urn, bytes, remaining, LayerSet::above(i))
                    .await;
            }
            tracing::debug!(key = urn, layer = layer.backend.name(), "remote hit");
            let hit = RemoteHit { entry, freshness };
            return (Some(hit), failed);
        }
        (None, failed)
    }

    async fn get_remote<T>(&self, key: &Key) -> Option<T>
    where
        T: Clone + Send + Sync + DeserializeOwned + 'static,
    {
        let (urn, tags) = (key.as_str(), direct_tags(key));
        let codec = self.inner.codec;
        let (hit, _) = self
            .read_layers(urn, |b| envelope::decode::<T>(b, codec, urn, &tags))
            .await;
        let entry = hit?.entry;
        let value = entry.value.clone();
        self.put_local(key, entry, Admit::Replace);
        Some(value)
    }

    /// Runs the remote phase of a sync direct-API call on cachewright's i/o
    /// runtime; `None` when it could not finish in the layers' time budget.
    fn remote_blocking<R, F>(&self, f: impl FnOnce(Cache) -> F) -> Option<R>
    where
        F: Future<Output = R> + Send + 'static,
        R: Send + 'static,
    {
        if self.inner.layers.is_empty() {
            return None;
        }
        cachewright_backends::io::block_on(f(self.clone()), self.remote_budget()).ok()
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

    /// The entry under `key` in process memory, with its times and tags, if
    /// it holds a `T` and can still be served (fresh or stale); for
    /// inspection (`is_fresh`, `age`). Not counted as a hit or miss.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright_runtime::{Cache, Clock, ManualClock};
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
        let now = self.inner.clock.now_ms();
        self.inner
            .store
            .with(
                self.direct_hash(key),
                |k| k == key.as_str(),
                |h| {
                    let e = &h.entry;
                    if e.is_expired(now) || !h.valid(&self.inner.marks) {
                        return None;
                    }
                    Some(Entry {
                        value: e.value.downcast_ref::<T>()?.clone(),
                        created_ms: e.created_ms,
                        fresh_until_ms: e.fresh_until_ms,
                        stale_until_ms: e.stale_until_ms,
                        negative: e.negative,
                        tags: e.tags.clone(),
                    })
                },
            )
            .flatten()
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
        let created = entry.created_ms;
        let remote = self.encode_for_layers(key, &entry);
        self.put_local(key, entry, Admit::Replace);
        if let Some((bytes, remaining)) = remote {
            let key2 = key.clone();
            self.remote_blocking(|c| async move {
                c.write_layers(key2.as_str(), bytes, remaining, LayerSet::ALL)
                    .await
            });
            self.announce_write(key.as_str(), created);
        }
    }

    /// The async twin of [`set`](Self::set).
    pub async fn set_async<T>(&self, key: &Key, value: T, ttl: Option<Duration>)
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    {
        let entry = self.entry_for(key, value, ttl);
        let created = entry.created_ms;
        let remote = self.encode_for_layers(key, &entry);
        self.put_local(key, entry, Admit::Replace);
        if let Some((bytes, remaining)) = remote {
            self.write_layers(key.as_str(), bytes, remaining, LayerSet::ALL)
                .await;
            self.announce_write(key.as_str(), created);
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
    /// use cachewright_runtime::Cache;
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
            return self.put_local(key, self.entry_for(key, value, ttl), Admit::IfVacant);
        }
        let key2 = key.clone();
        self.remote_blocking(|c| async move { c.set_if_not_exists_async(&key2, value, ttl).await })
            .unwrap_or(false)
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
            return self.put_local(key, entry, Admit::IfVacant);
        };
        let Some((bytes, remaining)) = self.encode_for_layers(key, &entry) else {
            return false;
        };
        match first
            .set_if_absent(key.as_str(), bytes, first.capped(remaining))
            .await
        {
            Ok(true) => {
                self.put_local(key, entry, Admit::Replace);
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
                |h| !h.entry.is_expired(now) && h.valid(&self.inner.marks),
            )
            .unwrap_or(false)
    }

    async fn exists_remote(&self, key: &Key) -> bool {
        for layer in &self.inner.layers {
            if let Ok(Some(_)) = layer.get(key.as_str()).await {
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
            .is_some_and(|h| !h.entry.is_expired(now) && h.valid(&self.inner.marks))
    }

    async fn delete_remote(&self, key: &Key) -> bool {
        let mut any = false;
        for layer in &self.inner.layers {
            any |= layer.delete(key.as_str()).await.unwrap_or(false);
        }
        any
    }

    /// Removes the value under `key` (a URN, as [`key`](Self::key) or
    /// `#[cached]` build it) from every layer and every process: the key's
    /// watermark is raised, so the in-process copy of a `#[cached]` call
    /// under that URN, in this process and (through the bus) in the others,
    /// is never served again, nor is a load of it that began before this
    /// call. Returns whether a layer held a live value.
    ///
    /// # Blocking
    ///
    /// Waits for the remote layers at most their timeouts, and until the
    /// clock has moved past the deletion (at most about 1 ms), so that a
    /// value stored right after it counts as newer.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::Cache;
    /// use std::time::Duration;
    ///
    /// let cache = Cache::builder().build();
    /// let key = cache.key("session", &"abc");
    /// cache.set(&key, 7u32, Some(Duration::from_secs(60)));
    /// assert!(cache.delete(&key));
    /// assert!(!cache.delete(&key), "already gone");
    /// assert_eq!(cache.get::<u32>(&key), None);
    /// ```
    pub fn delete(&self, key: &Key) -> bool {
        let at = self.inner.clock.precise_ms();
        // Whether a live value was here, judged before the watermark rules
        // it out.
        let local = self.delete_local(key);
        self.raise_local(&[key.as_str().to_owned()], at);
        let remote = if self.inner.layers.is_empty() && self.inner.bus.is_none() {
            false
        } else {
            let c = self.clone();
            let key2 = key.clone();
            let budget = self.remote_budget() + Duration::from_secs(1);
            cachewright_backends::io::block_on(
                async move { c.delete_everywhere(&key2, at).await },
                budget,
            )
            .unwrap_or(false)
        };
        self.wait_past(at);
        local || remote
    }

    /// The async twin of [`delete`](Self::delete).
    pub async fn delete_async(&self, key: &Key) -> bool {
        let at = self.inner.clock.precise_ms();
        let local = self.delete_local(key);
        self.raise_local(&[key.as_str().to_owned()], at);
        let remote = self.delete_everywhere(key, at).await;
        self.wait_past_async(at).await;
        local || remote
    }

    /// Removes `key` from the remote layers and tells the other processes.
    async fn delete_everywhere(&self, key: &Key, at: u64) -> bool {
        let removed = self.delete_remote(key).await;
        self.publish(BusKind::Keys, vec![key.as_str().to_owned()], at)
            .await;
        removed
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
    /// use cachewright_runtime::Cache;
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
        flight::block_here(self.load(key, ttl, SyncLoader(loader), Wait::Block))
    }

    /// The async twin of [`get_or_load`](Self::get_or_load).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use cachewright_runtime::Cache;
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
        self.load(key, ttl, AsyncLoader(loader), Wait::Yield).await
    }

    /// The value under `key`, or `loader`'s through the single-flight loop.
    async fn load<T, E>(
        &self,
        key: &Key,
        ttl: Option<Duration>,
        loader: impl Loader<T, E>,
        wait: Wait,
    ) -> Result<T, E>
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    {
        if let Some((_, v)) = self.read::<T>(key) {
            self.count(true);
            return Ok(v);
        }
        let call = DirectLoad {
            cache: self,
            key,
            ttl,
            loader,
            blocking: wait == Wait::Block,
            types: std::marker::PhantomData,
        };
        let flights = self.flights::<T>();
        let flight_key = key.as_str().to_owned();
        flight::run(&flights, &flight_key, wait, ShareError::none(), call).await
    }

    /// The loads in flight of values of type `T`.
    fn flights<T: Clone + Send + Sync + 'static>(&self) -> Arc<Flights<String, T>> {
        let mut all = self.inner.flights.lock().unwrap_or_else(|e| e.into_inner());
        let any = all
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(Flights::<String, T>::new()))
            .clone();
        // The map is keyed by the type, so this always succeeds; were it
        // not to, loads of this call would run apart, not fail.
        any.downcast().unwrap_or_else(|_| Arc::new(Flights::new()))
    }

    /// The values under `keys`, in order: from process memory, then in one
    /// batch per remote layer (`MGET` on Redis) for the rest.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use cachewright_runtime::Cache;
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
            for (&i, bytes) in missing.iter().zip(found) {
                let Some(bytes) = bytes else { continue };
                let (urn, tags) = (keys[i].as_str(), direct_tags(&keys[i]));
                match envelope::decode::<T>(&bytes, self.inner.codec, urn, &tags) {
                    Ok(e)
                        if e.freshness(now) != Freshness::Expired
                            && self
                                .remote_valid(e.created_ms, &e.tags, keys[i].as_str())
                                .await =>
                    {
                        out[i] = Some(e.value.clone());
                        self.put_local(&keys[i], e, Admit::Replace);
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
        self.delete_prefix_everywhere(&self.key_prefix()).await;
        self.publish(BusKind::Clear, Vec::new(), self.inner.clock.now_ms())
            .await;
    }

    async fn delete_prefix_everywhere(&self, prefix: &str) {
        for layer in &self.inner.layers {
            let _ = layer.delete_prefix(prefix).await;
        }
    }

    /// Drops every cachewright entry this cache can reach, of every namespace:
    /// in process, in every remote layer (all `urn:` keys) and, through the
    /// bus, in other processes. For tests and emergencies.
    pub async fn flush_all_async(&self) {
        self.clear_local();
        self.delete_prefix_everywhere("urn:").await;
        self.publish(BusKind::Clear, Vec::new(), self.inner.clock.now_ms())
            .await;
    }

    /// The sync twin of [`flush_all_async`](Self::flush_all_async).
    pub fn flush_all(&self) {
        self.clear_local();
        let budget = self.remote_budget() * 50 + Duration::from_secs(1);
        let c = self.clone();
        let _ =
            cachewright_backends::io::block_on(async move { c.flush_all_async().await }, budget);
    }

    // ---- invalidation -------------------------------------------------------------

    /// Raises the watermarks of `tags` to `at` here, in the first remote
    /// layer and, through the bus, in every other process.
    async fn invalidate_at(&self, tags: Vec<String>, at: u64) {
        self.raise_local(&tags, at);
        if let Some(first) = self.inner.layers.first() {
            let ttl = self
                .inner
                .layers
                .iter()
                .map(|l| l.longest())
                .max()
                .unwrap_or_default()
                + Duration::from_secs(60);
            let items = tags
                .iter()
                .map(|t| (self.watermark_key(t), at.to_string().into_bytes(), ttl))
                .collect();
            let _ = first.set_many_raw(items).await;
        }
        self.publish(BusKind::Tags, tags, at).await;
    }

    fn raise_local(&self, items: &[String], at: u64) {
        for t in items {
            self.inner.marks.raise(tag_hash(t), at);
        }
        self.inner.counters.invalidation(items.len() as u64);
        tracing::debug!(cache = %self.inner.name, items = ?items, at, "invalidated");
    }

    fn at(&self, buffer: Duration) -> u64 {
        self.inner
            .clock
            .precise_ms()
            .saturating_add(saturating_ms(buffer))
    }

    /// Waits (at most a few milliseconds) until the clock is past `at`, so
    /// that values stored from now on count as newer than an invalidation
    /// at `at`. For `recache` after a write.
    #[doc(hidden)]
    pub fn wait_past(&self, at: u64) {
        for _ in 0..20 {
            if self.inner.clock.precise_ms() > at || self.inner.clock.is_manual() {
                return;
            }
            std::thread::sleep(Duration::from_micros(250));
        }
    }

    /// The async twin of [`wait_past`](Self::wait_past).
    #[doc(hidden)]
    pub async fn wait_past_async(&self, at: u64) {
        for _ in 0..20 {
            if self.inner.clock.precise_ms() > at || self.inner.clock.is_manual() {
                return;
            }
            tokio::time::sleep(Duration::from_micros(250)).await;
        }
    }

    /// The time an invalidation made now, with `buffer`, is stamped with.
    #[doc(hidden)]
    pub fn invalidation_time(&self, buffer: Duration) -> u64 {
        self.at(buffer)
    }

    /// Runs the remote part of a sync invalidation (this process already
    /// knows; the wait is bounded by the layer and bus timeouts).
    fn spread<F: Future<Output = ()> + Send + 'static>(&self, f: impl FnOnce(Cache) -> F) {
        if self.inner.layers.is_empty() && self.inner.bus.is_none() {
            return;
        }
        let budget = self.remote_budget() + Duration::from_secs(1);
        let _ = cachewright_backends::io::block_on(f(self.clone()), budget);
    }

    /// Invalidates every entry carrying any of `tags`, in every layer and,
    /// through the bus, in every process: one write per tag, whatever the
    /// number of entries. Tags are rendered as in templates: build them
    /// with [`tag`](crate::tag) (`tag("org", &5)` for `"org:<org_id>"`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// static LOADS: AtomicU32 = AtomicU32::new(0);
    ///
    /// #[cachewright::cached(key = "member:<id>", tags = ["org:<org>"])]
    /// fn member(id: u32, org: u32) -> u32 { LOADS.fetch_add(1, Ordering::SeqCst) }
    ///
    /// member(1, 5);
    /// member(1, 5);
    /// cachewright::default_cache().invalidate_tags([cachewright::tag("org", &5)]);
    /// member(1, 5);
    /// assert_eq!(LOADS.load(Ordering::SeqCst), 2);
    /// ```
    pub fn invalidate_tags<I, S>(&self, tags: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.invalidate_tags_buffered(tags, Duration::ZERO)
    }

    /// [`invalidate_tags`](Self::invalidate_tags) with the watermark set
    /// `buffer` into the future: entries stored during the next `buffer` are
    /// discarded too, so a read that raced the write that caused this
    /// invalidation, and stored an old value just after it, is not served.
    pub fn invalidate_tags_buffered<I, S>(&self, tags: I, buffer: Duration)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let tags: Vec<String> = tags.into_iter().map(Into::into).collect();
        let at = self.at(buffer);
        self.raise_local(&tags, at);
        self.spread(move |c| async move { c.invalidate_at(tags, at).await });
    }

    /// The async twin of [`invalidate_tags_buffered`](Self::invalidate_tags_buffered)
    /// (pass `Duration::ZERO` for no buffer).
    pub async fn invalidate_tags_async<I, S>(&self, tags: I, buffer: Duration)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let tags: Vec<String> = tags.into_iter().map(Into::into).collect();
        let at = self.at(buffer);
        self.invalidate_at(tags, at).await;
    }

    /// Invalidates every entry about one entity, across all use cases:
    /// `invalidate_entity("user", &123)` drops everything keyed
    /// `"user:<...>"` with 123 as first value.
    pub fn invalidate_entity(&self, key_type: &str, id: &dyn fmt::Display) {
        self.invalidate_tags([crate::tag(key_type, id)]);
    }

    /// The async twin of [`invalidate_entity`](Self::invalidate_entity).
    pub async fn invalidate_entity_async(&self, key_type: &str, id: &dyn fmt::Display) {
        self.invalidate_tags_async([crate::tag(key_type, id)], Duration::ZERO)
            .await;
    }

    /// Drops every entry of this cache's namespace and version: in process
    /// (every use case and the direct API), in every remote layer, and in
    /// the in-process layers of the other processes on the bus.
    pub fn clear(&self) {
        self.clear_local();
        let budget = self.remote_budget() * 50 + Duration::from_secs(1);
        if !self.inner.layers.is_empty() || self.inner.bus.is_some() {
            let c = self.clone();
            let _ =
                cachewright_backends::io::block_on(async move { c.clear_remote().await }, budget);
        }
    }

    /// The async twin of [`clear`](Self::clear).
    pub async fn clear_async(&self) {
        self.clear_local();
        self.clear_remote().await;
    }
}

/// The tags of an entry written through the direct API: its key's entity.
fn direct_tags(key: &Key) -> crate::entry::Tags {
    Arc::from([Box::<str>::from(key.entity())])
}

/// One `get_or_load` of the direct API, as the single-flight loop drives it.
/// Values travel between callers as `Arc<T>` behind `dyn Any`.
struct DirectLoad<'a, T, E, L> {
    cache: &'a Cache,
    key: &'a Key,
    ttl: Option<Duration>,
    loader: L,
    blocking: bool,
    types: std::marker::PhantomData<fn() -> (T, E)>,
}

impl<T, E, L> Load for DirectLoad<'_, T, E, L>
where
    T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    L: Loader<T, E>,
{
    type Value = T;
    type Error = E;

    fn peek(&self) -> Option<T> {
        match self.cache.read::<T>(self.key) {
            Some((Freshness::Fresh, v)) => Some(v),
            _ => None,
        }
    }

    async fn remote(&mut self) -> Option<T> {
        let found = if self.blocking {
            let key = self.key.clone();
            self.cache
                .remote_blocking(|c| async move { c.get_remote::<T>(&key).await })
                .flatten()
        } else {
            self.cache.get_remote::<T>(self.key).await
        };
        self.cache.count(found.is_some());
        found
    }

    async fn load(self) -> Result<T, E> {
        let start = Instant::now();
        let (r, said) = self.loader.run().await;
        self.cache.inner.counters.load(start.elapsed(), r.is_ok());
        if let (Ok(v), Some(ttl)) = (&r, Cache::ttl_said(said, self.ttl)) {
            if self.blocking {
                self.cache.set(self.key, v.clone(), ttl);
            } else {
                self.cache.set_async(self.key, v.clone(), ttl).await;
            }
        }
        r
    }
}

/// What a remote read found: the entry, and where it stood when read.
pub(crate) struct RemoteHit<V> {
    pub(crate) entry: Entry<V>,
    pub(crate) freshness: Freshness,
}
