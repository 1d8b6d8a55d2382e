//! Building a [`Cache`]: its name, namespace, version, clock, layers and
//! limits.

use super::*;

/// Configures a [`Cache`].
///
/// # Examples
///
/// ```
/// use cachewright::{Cache, ManualClock, Clock};
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
    max_bytes: Option<u64>,
    clock: Clock,
    layers: Vec<LayerConfig>,
    local_ttl: Option<Duration>,
    codec: Codec,
    max_value_bytes: usize,
    schema: u32,
    bus: BusChoice,
    invalidation_lease: Duration,
    provider: Option<crate::tuning::Provider>,
}

/// The largest encoded entry a cache writes to (or reads from) a remote
/// layer by default: 4 MiB.
///
/// # Examples
///
/// ```
/// assert_eq!(cachewright::DEFAULT_MAX_VALUE_BYTES, 4 * 1024 * 1024);
/// ```
pub const DEFAULT_MAX_VALUE_BYTES: usize = 4 << 20;

impl Default for CacheBuilder {
    fn default() -> Self {
        CacheBuilder {
            name: "default".into(),
            namespace: "cachewright".into(),
            version: "v1".into(),
            capacity: DEFAULT_CAPACITY,
            max_bytes: None,
            clock: Clock::system(),
            layers: Vec::new(),
            local_ttl: None,
            codec: Codec::Json,
            max_value_bytes: DEFAULT_MAX_VALUE_BYTES,
            schema: 0,
            bus: BusChoice::Auto,
            invalidation_lease: super::confirm::DEFAULT_INVALIDATION_LEASE,
            provider: None,
        }
    }
}

impl CacheBuilder {
    /// The cache's name, as stats and logs show it.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().name("sessions").build();
    /// assert_eq!(cache.name(), "sessions");
    /// assert!(cache.stats_for("direct").is_some());
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The first URN component of every key (default `cachewright`). Name your
    /// service or environment here so that caches sharing a Redis stay apart.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().namespace("billing").build();
    /// assert_eq!(cache.key("invoice", &9).as_str(), "urn:billing:v1:invoice:9");
    /// ```
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = namespace.into();
        self
    }

    /// The second URN component (default `v1`). Bumping it orphans every
    /// entry written under the old version at once, as after a schema change.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::Cache;
    /// let v1 = Cache::builder().build();
    /// let v2 = Cache::builder().version("v2").build();
    /// assert_ne!(v1.key("user", &1), v2.key("user", &1));
    /// assert_eq!(v2.key_prefix(), "urn:cachewright:v2:");
    /// ```
    pub fn version(mut self, version: impl Into<String>) -> Self {
        self.version = version.into();
        self
    }

    /// The bound of each use case's in-process layer, and of the direct
    /// API's, unless a use case sets its own `capacity` (default 10 000).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().capacity(2).build();
    /// for i in 0..10u32 {
    ///     cache.set(&cache.key("n", &i), i, None);
    /// }
    /// assert_eq!(cache.default_capacity(), 2);
    /// assert!(cache.stats_for("direct").unwrap().size <= 2, "the oldest are evicted");
    /// ```
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity.max(1);
        self
    }

    /// A memory budget for everything this cache holds in process: the
    /// entries of every use case and of the direct API, weighed as the
    /// stats' `bytes` count them (an entry's share of the store, about 128
    /// bytes, plus its key's and value's encoded sizes, or what a use
    /// case's `weigher` says). When an entry pushes the total over, the
    /// holder of the most bytes gives back the excess (and 1/64 of the
    /// budget, so that the next fills need not), through its own eviction
    /// policy. Use cases may also set their own bound (`max_bytes` on
    /// `#[cached]`).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().max_bytes(64 * 1024).build();
    /// for i in 0..1_000u32 {
    ///     cache.set(&cache.key("page", &i), "x".repeat(1_000), None);
    /// }
    /// let held = cache.stats_for("direct").unwrap();
    /// assert!(held.bytes <= 64 * 1024, "{} bytes held", held.bytes);
    /// assert!(held.size > 0 && held.size < 1_000);
    /// ```
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes.max(1));
        self
    }

    /// The clock (a [`ManualClock`](crate::ManualClock) in tests).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, Clock, ManualClock};
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new(0);
    /// let cache = Cache::builder().clock(Clock::manual(&clock)).build();
    /// let key = cache.key("otp", &7);
    /// cache.set(&key, 123_456u32, Some(Duration::from_secs(30)));
    /// clock.advance(Duration::from_secs(31));
    /// assert_eq!(cache.get::<u32>(&key), None, "expired by the manual clock");
    /// ```
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
    /// use cachewright::{Cache, LayerConfig};
    /// use cachewright::backends::MemoryBackend;
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
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, Clock, LayerConfig, ManualClock};
    /// use cachewright::backends::MemoryBackend;
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new(0);
    /// let cache = Cache::builder()
    ///     .clock(Clock::manual(&clock))
    ///     .local_ttl(Duration::from_secs(30))
    ///     .layer(LayerConfig::new(MemoryBackend::new()))
    ///     .build();
    /// let key = cache.key("price", &1);
    /// cache.set(&key, 99u32, Some(Duration::from_secs(300)));
    /// clock.advance(Duration::from_secs(60));
    /// assert!(cache.get_entry::<u32>(&key).is_none(), "gone from process memory");
    /// assert_eq!(cache.get::<u32>(&key), Some(99), "still in the remote layer");
    /// ```
    pub fn local_ttl(mut self, cap: Duration) -> Self {
        self.local_ttl = Some(cap);
        self
    }

    /// The codec of values in remote layers (JSON by default).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, Codec, LayerConfig};
    /// use cachewright::backends::MemoryBackend;
    ///
    /// let cache = Cache::builder()
    ///     .codec(Codec::Json)
    ///     .layer(LayerConfig::new(MemoryBackend::new()))
    ///     .build();
    /// cache.set(&cache.key("k", &1), vec![1u8, 2, 3], None);
    /// assert_eq!(cache.layer_stats()[0].writes, 1);
    /// ```
    pub fn codec(mut self, codec: Codec) -> Self {
        self.codec = codec;
        self
    }

    /// The largest encoded entry written to or read from a remote layer
    /// ([`DEFAULT_MAX_VALUE_BYTES`] unless set). A larger value is returned
    /// to its caller and kept in process, but not written to the remote
    /// layers (counted in [`Stats::oversized`](crate::Stats::oversized));
    /// larger stored bytes read as a miss, so a corrupt or foreign blob is
    /// never decoded.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, LayerConfig};
    /// use cachewright::backends::MemoryBackend;
    ///
    /// let cache = Cache::builder()
    ///     .layer(LayerConfig::new(MemoryBackend::new()))
    ///     .max_value_bytes(256)
    ///     .build();
    /// let key = cache.key("page", &1);
    /// cache.set(&key, "x".repeat(1_000), None);
    /// assert_eq!(cache.get::<String>(&key).map(|s| s.len()), Some(1_000), "kept in process");
    /// assert_eq!(cache.stats_for("direct").unwrap().oversized, 1, "not written to the layer");
    /// assert_eq!(cache.layer_stats()[0].writes, 0);
    /// ```
    pub fn max_value_bytes(mut self, max: usize) -> Self {
        self.max_value_bytes = max.max(1);
        self
    }

    /// The schema version of every value this cache writes to remote layers
    /// (0 unless set). It is part of the fingerprint each stored entry
    /// carries with its value type: bump it when the types' serialised form
    /// changes and entries written before read as misses, never as values
    /// that happen to deserialize. `#[cached(schema = N)]` bumps one use
    /// case alone.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, LayerConfig};
    /// use cachewright::backends::MemoryBackend;
    /// use std::sync::Arc;
    ///
    /// let redis_like = Arc::new(MemoryBackend::new());
    /// let old = Cache::builder().layer(LayerConfig::shared(redis_like.clone())).build();
    /// let key = old.key("user", &1);
    /// old.set(&key, 7u32, None);
    ///
    /// let new = Cache::builder()
    ///     .layer(LayerConfig::shared(redis_like))
    ///     .schema(2)
    ///     .build();
    /// assert_eq!(new.get::<u32>(&key), None, "written at schema 0: a miss");
    /// ```
    pub fn schema(mut self, version: u32) -> Self {
        self.schema = version;
        self
    }

    /// Uses `bus` to tell other processes about invalidations, instead of
    /// the first remote layer's own (Redis pub/sub, used by default).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{async_trait, BackendError, Bus, BusEvent, BusSink};
    /// use cachewright::Cache;
    /// use std::sync::{Arc, Mutex};
    ///
    /// /// A bus within one process: it says it is connected, and records what
    /// /// it is asked to publish.
    /// #[derive(Debug, Default)]
    /// struct Recorder(Mutex<Vec<Vec<u8>>>);
    ///
    /// #[async_trait]
    /// impl Bus for Recorder {
    ///     async fn publish(&self, _channel: &str, payload: Vec<u8>) -> Result<(), BackendError> {
    ///         self.0.lock().unwrap().push(payload);
    ///         Ok(())
    ///     }
    ///     fn subscribe(&self, _channel: &str, sink: BusSink) {
    ///         sink(BusEvent::Connected);
    ///     }
    /// }
    ///
    /// let bus = Arc::new(Recorder::default());
    /// let cache = Cache::builder().bus(bus.clone()).build();
    /// assert!(cache.bus_stats().configured);
    /// assert!(cache.bus_connected());
    /// cache.invalidate_tags(["user:1"]);
    /// assert!(!bus.0.lock().unwrap().is_empty(), "the invalidation was published");
    /// ```
    pub fn bus(mut self, bus: Arc<dyn Bus>) -> Self {
        self.bus = BusChoice::Custom(bus);
        self
    }

    /// No invalidation bus: other processes' in-process layers are not told
    /// about invalidations (they see them in shared layers only), and this
    /// process's in-process layer is always trusted.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, LayerConfig};
    /// use cachewright::backends::MemoryBackend;
    ///
    /// let cache = Cache::builder()
    ///     .layer(LayerConfig::new(MemoryBackend::new()))
    ///     .without_bus()
    ///     .build();
    /// assert!(!cache.bus_stats().configured);
    /// assert!(cache.bus_connected(), "no bus: the in-process layer is trusted at once");
    /// ```
    pub fn without_bus(mut self) -> Self {
        self.bus = BusChoice::Off;
        self
    }

    /// How invalidations reach the other processes' in-process layers, on a
    /// bus that confirms deliveries (Redis pub/sub): `invalidate(...)` (and
    /// `delete`, `clear`, `#[cache_write]`) returns once every subscribed
    /// process has applied it, so a read that begins afterwards, in any
    /// process, never returns a value loaded before it. A process that does
    /// not answer (stalled, partitioned) is waited for at most `lease`: each
    /// cache trusts its in-process layer only while a ping it sends itself
    /// through the bus every quarter lease keeps coming back, so by then it
    /// has stopped serving in-process copies (it reads the remote layer,
    /// whose watermarks were raised first). A cache learns who else is on
    /// the bus from their pings, so in the first lease after it subscribes
    /// (startup, reconnect) an invalidation waits until that lease is over.
    /// Default:
    /// [`DEFAULT_INVALIDATION_LEASE`](crate::DEFAULT_INVALIDATION_LEASE)
    /// (2 s); at least 200 ms.
    ///
    /// `Duration::ZERO` turns confirmation off: invalidations return once
    /// published, and other processes drop their copies when their
    /// subscriber applies the message (usually well under a millisecond
    /// later, with no bound).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, LayerConfig};
    /// use cachewright::backends::redis::RedisBackend;
    /// use std::time::Duration;
    ///
    /// let redis = RedisBackend::from_url("redis://127.0.0.1:6379/0").unwrap();
    /// let cache = Cache::builder()
    ///     .layer(LayerConfig::new(redis))
    ///     .invalidation_lease(Duration::from_millis(500))
    ///     .build();
    /// assert!(cache.bus_stats().confirmed_delivery);
    /// ```
    pub fn invalidation_lease(mut self, lease: Duration) -> Self {
        self.invalidation_lease = lease;
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

    /// The application's per-use-case settings: asked about each use case
    /// of this cache when it is built, and again on
    /// [`Cache::reload`](crate::Cache::reload). See [`ConfigProvider`](crate::ConfigProvider).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, ConfigFor, LayerTuning, UseCaseConfig};
    ///
    /// let cache = Cache::builder()
    ///     .config_provider(|_: &ConfigFor<'_>| {
    ///         Some(UseCaseConfig::new().local(LayerTuning::new().ramp(50.0)))
    ///     })
    ///     .build();
    /// # let _ = cache;
    /// ```
    pub fn config_provider(mut self, provider: impl crate::ConfigProvider) -> Self {
        self.provider = Some(crate::tuning::Provider(Arc::new(provider)));
        self
    }

    /// This builder, with `p` as its provider unless it has one.
    pub(crate) fn provider_or(mut self, p: &crate::tuning::Provider) -> Self {
        self.provider.get_or_insert_with(|| p.clone());
        self
    }

    /// Builds the cache. With a bus, it starts listening in the background;
    /// until it is subscribed the in-process layer is not used (it could
    /// not learn of invalidations).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().build();
    /// assert_eq!(cache.name(), "default");
    /// assert_eq!(cache.key_prefix(), "urn:cachewright:v1:");
    /// ```
    pub fn build(mut self) -> Cache {
        for l in &mut self.layers {
            if let Some(name) = l.dedupe_unsupported() {
                tracing::error!(
                    layer = name.as_str(),
                    "dedupe_writes is not supported by this layer: it writes every value in full"
                );
                l.drop_dedupe();
            }
        }
        self.build_checked()
    }

    /// [`build`](Self::build), or an error when a layer asks for something
    /// its backend cannot do (`dedupe_writes` on the file tier or an object
    /// store).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Layer`](crate::ConfigError::Layer), naming the layer.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, LayerConfig};
    /// use cachewright::backends::MemoryBackend;
    ///
    /// let ok = Cache::builder()
    ///     .layer(LayerConfig::new(MemoryBackend::new()).dedupe_writes(true))
    ///     .try_build();
    /// assert!(ok.is_ok());
    /// ```
    pub fn try_build(self) -> Result<Cache, crate::ConfigError> {
        self.check()?;
        Ok(self.build_checked())
    }

    /// Whether every layer can do what it is asked.
    pub(crate) fn check(&self) -> Result<(), crate::ConfigError> {
        match self.layers.iter().find_map(|l| l.dedupe_unsupported()) {
            Some(name) => Err(crate::ConfigError::Layer(format!(
                "dedupe_writes is not supported by the {name} layer (it would write every value in full); turn it off for that layer"
            ))),
            None => Ok(()),
        }
    }

    fn build_checked(self) -> Cache {
        let bus = match self.bus {
            BusChoice::Off => None,
            BusChoice::Custom(b) => Some(b),
            BusChoice::Auto => self.layers.iter().find_map(|l| l.backend().bus()),
        };
        let confirm = bus
            .as_ref()
            .filter(|b| b.confirms() && !self.invalidation_lease.is_zero())
            .map(|_| super::confirm::Confirm::new(self.invalidation_lease));
        let marks = if confirm.is_some() {
            Watermarks::leased()
        } else {
            Watermarks::new(bus.is_none())
        };
        let budget = self.max_bytes.map(|b| Arc::new(Budget::new(b)));
        let cache = Cache {
            inner: Arc::new(Inner {
                marks: Arc::new(marks),
                confirm,
                bus,
                origin: fastrand::u64(..),
                outbox: Default::default(),
                store: Store::new(self.capacity, None, budget.clone()),
                budget,
                flights: Mutex::default(),
                counters: Counters::default(),
                use_cases: Mutex::default(),
                layers: self
                    .layers
                    .into_iter()
                    .map(|l| Arc::new(RemoteLayer::new(l, self.clock.clone())))
                    .collect(),
                local_ttl: self.local_ttl,
                codec: self.codec,
                max_value_bytes: self.max_value_bytes,
                schema: self.schema,
                name: self.name,
                namespace: self.namespace,
                version: self.version,
                capacity: self.capacity,
                clock: self.clock,
                provider: std::sync::RwLock::new(self.provider),
                closed: Default::default(),
            }),
        };
        cache.listen();
        cache
    }
}
