//! The `Cache` handle: its configuration and what it holds, its use cases
//! and their controls. What a cache does is in the submodules: the direct
//! API, the remote layers' read and write paths, invalidation, the bus.

use std::any::{Any, TypeId};
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::clock::{saturating_us, Clock, Stamp};
use crate::context::{AsyncLoader, Loader, SyncLoader};
use crate::entry::Held;
use crate::entry::{Entry, Freshness};
use crate::envelope::{self, Codec};
use crate::flight::{self, Flights, Load, ShareError, Stamped, Wait};
use crate::key::Key;
use crate::layer::{LayerConfig, LayerSet, LayerStats, RemoteLayer};
use crate::lifetime::LoadOptions;
use crate::local::{Admit, Admitted, Budget, Store};
use crate::stats::{Counters, Stats};
use crate::watermark::{tag_hash, Watermarks};
use cachewright_backends::{Bus, BusEvent};

mod builder;
mod bus;
mod confirm;
mod direct;
mod health;
pub use health::{Health, HealthState};
mod inspect;
pub use inspect::{Inspect, Inspection, KeyInfo, LayerKeys};
mod invalidation;
mod layers;
mod load;
mod outbox;

pub use builder::{CacheBuilder, DEFAULT_MAX_VALUE_BYTES};
use bus::BusKind;
pub use bus::BusStats;
pub use confirm::DEFAULT_INVALIDATION_LEASE;

/// What a cache needs of each of its use cases, whatever their types.
pub(crate) trait UseCaseInfo: Send + Sync {
    fn name(&self) -> &'static str;
    fn stats(&self) -> Stats;
    fn reset_stats(&self);
    fn clear(&self);
    fn cleanup_expired(&self) -> usize;
    fn set_ramp(&self, per_mille: u32);
    fn ramp(&self) -> u32;
    /// Asks the cache's configuration provider again.
    fn reconfigure(&self);
    /// Sets the shadow-read share; `false` if none is compiled in.
    fn set_shadow(&self, per_mille: u32) -> bool;
    /// The shadow-read share, if compiled in.
    fn shadow(&self) -> Option<u32>;
    /// The live in-process entry stored under `urn` (whose entity is
    /// `entity`), its value shared as `Any`; found by a scan.
    fn local_entry(&self, urn: &str, entity: &str) -> Option<Entry<AnyValue>>;
    /// The weight of its in-process entries, in bytes.
    fn local_bytes(&self) -> u64;
    /// Evicts in-process entries until `bytes` are freed (or none are
    /// left); returns what was freed.
    fn give_back(&self, bytes: u64) -> u64;
}

/// The default bound of each use case's in-process layer.
///
/// # Examples
///
/// ```
/// let cache = cachewright::Cache::builder().build();
/// assert_eq!(cache.default_capacity(), cachewright::DEFAULT_CAPACITY);
/// ```
pub const DEFAULT_CAPACITY: usize = 10_000;

pub(crate) type AnyValue = Arc<dyn Any + Send + Sync>;

/// A cache: a namespace and version for its keys, a clock, the in-process
/// layer of every use case stored in it, and a typed direct API.
///
/// Cloning a `Cache` is cheap and gives another handle to the same cache.
///
/// # Examples
///
/// ```
/// use cachewright::Cache;
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
    /// The byte budget of every in-process entry of this cache, if set.
    budget: Option<Arc<Budget>>,
    /// The direct API's loads in flight, one map per value type (callers
    /// asking for different types under one key load apart).
    flights: Mutex<HashMap<TypeId, Arc<dyn Any + Send + Sync>>>,
    counters: Counters,
    use_cases: Mutex<UseCases>,
    layers: Vec<Arc<RemoteLayer>>,
    local_ttl: Option<Duration>,
    codec: Codec,
    max_value_bytes: usize,
    schema: u32,
    marks: Arc<Watermarks>,
    bus: Option<Arc<dyn Bus>>,
    /// Identifies this cache's messages on the bus, so it skips its own.
    origin: u64,
    /// Invalidations owed to the first remote layer or the bus.
    outbox: outbox::Outbox,
    /// Confirmed invalidations and the lease (with a bus that confirms
    /// deliveries, unless turned off).
    confirm: Option<confirm::Confirm>,
    /// What the application says about each use case, if anything.
    provider: std::sync::RwLock<Option<crate::tuning::Provider>>,
    /// Set by `close`: the bus is left, and its events ignored.
    closed: std::sync::atomic::AtomicBool,
}

/// A cache's use cases, one per name.
#[derive(Default)]
struct UseCases {
    /// Names taken, including those of use cases being built.
    names: HashSet<&'static str>,
    all: Vec<&'static dyn UseCaseInfo>,
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

impl Cache {
    /// A builder with the defaults: namespace `cachewright`, version `v1`,
    /// capacity 10 000, the system clock.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().namespace("shop").build();
    /// assert_eq!(cache.namespace(), "shop");
    /// assert_eq!(cache.version(), "v1");
    /// assert_eq!(cache.default_capacity(), cachewright::DEFAULT_CAPACITY);
    /// ```
    pub fn builder() -> CacheBuilder {
        CacheBuilder::default()
    }

    /// The cache's name.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().name("pages").build();
    /// assert_eq!(cache.name(), "pages");
    /// ```
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The namespace of its keys.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().namespace("shop").build();
    /// assert_eq!(cache.namespace(), "shop");
    /// ```
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The version of its keys.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().version("v7").build();
    /// assert_eq!(cache.version(), "v7");
    /// ```
    pub fn version(&self) -> &str {
        &self.inner.version
    }

    /// The bound of each use case's in-process layer.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().capacity(500).build();
    /// assert_eq!(cache.default_capacity(), 500);
    /// ```
    pub fn default_capacity(&self) -> usize {
        self.inner.capacity
    }

    /// The memory budget of its in-process entries, if one was set
    /// ([`CacheBuilder::max_bytes`](crate::CacheBuilder::max_bytes)).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().max_bytes(1 << 20).build();
    /// assert_eq!(cache.max_bytes(), Some(1 << 20));
    /// assert_eq!(cachewright::Cache::builder().build().max_bytes(), None);
    /// ```
    pub fn max_bytes(&self) -> Option<u64> {
        self.inner.budget.as_ref().map(|b| b.max)
    }

    /// The shared byte budget, if set (for use cases' stores).
    pub(crate) fn budget(&self) -> Option<&Arc<Budget>> {
        self.inner.budget.as_ref()
    }

    /// Brings the in-process entries back within the cache's byte budget,
    /// if one is set and exceeded: the holder of the most bytes (a use
    /// case, or the direct API) gives back the excess and 1/64 of the
    /// budget, through its own eviction policy.
    pub(crate) fn enforce_budget(&self) {
        let Some(budget) = &self.inner.budget else {
            return;
        };
        if budget.excess() == 0 {
            return;
        }
        let Ok(_freeing) = budget.freeing.try_lock() else {
            return;
        };
        for _ in 0..4 {
            let excess = budget.excess();
            if excess == 0 {
                return;
            }
            let want = excess + budget.max / 64;
            let direct = self.inner.store.bytes();
            let largest = self
                .use_cases()
                .into_iter()
                .map(|u| (u.local_bytes(), u))
                .max_by_key(|(b, _)| *b);
            let now = self.inner.clock.now_ms();
            let freed = match largest {
                Some((b, u)) if b > direct => u.give_back(want),
                _ => self.inner.store.give_back(want, |h| h.is_expired(now)),
            };
            if freed == 0 {
                return;
            }
        }
    }

    /// Its clock.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, Clock, ManualClock};
    ///
    /// let manual = ManualClock::new(42);
    /// let cache = Cache::builder().clock(Clock::manual(&manual)).build();
    /// assert!(cache.clock().is_manual());
    /// assert_eq!(cache.clock().now_ms(), 42);
    /// ```
    pub fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    pub(crate) fn layers(&self) -> &[Arc<RemoteLayer>] {
        &self.inner.layers
    }

    pub(crate) fn marks(&self) -> &Arc<Watermarks> {
        &self.inner.marks
    }

    /// Whether this cache's in-process layer is in use: always without a
    /// bus; with one, once it is subscribed (and not while it is down).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().build();
    /// assert!(cache.bus_connected(), "no bus: always trusted");
    /// ```
    pub fn bus_connected(&self) -> bool {
        self.inner.marks.trusted()
    }

    pub(crate) fn local_ttl(&self) -> Option<Duration> {
        self.inner.local_ttl
    }

    /// How entries of a use case at schema `schema` are written (the
    /// direct API's: 0).
    pub(crate) fn format(&self, schema: u32) -> envelope::Format {
        let mixed = (u64::from(self.inner.schema) << 32) | u64::from(schema);
        envelope::Format::new(self.inner.codec, mixed)
    }

    /// Whether an encoded entry of `len` bytes may go to the remote layers;
    /// counted in `counters` (the use case's, or the direct API's) if not.
    pub(crate) fn fits(&self, len: usize, counters: &Counters, urn: &str) -> bool {
        if len <= self.inner.max_value_bytes {
            return true;
        }
        counters.oversized();
        tracing::debug!(
            key = urn,
            len,
            max = self.inner.max_value_bytes,
            "value too large for the remote layers; kept in process only"
        );
        false
    }

    /// The largest stored bytes a remote read decodes.
    pub(crate) fn max_value_bytes(&self) -> usize {
        self.inner.max_value_bytes
    }

    /// Counters of each remote layer, top down.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, LayerConfig};
    /// use cachewright::backends::MemoryBackend;
    ///
    /// let cache = Cache::builder().layer(LayerConfig::new(MemoryBackend::new())).build();
    /// let key = cache.key("k", &1);
    /// cache.set(&key, 1u8, None);
    /// let layers = cache.layer_stats();
    /// assert_eq!(layers.len(), 1);
    /// assert_eq!(layers[0].backend, "memory");
    /// assert_eq!(layers[0].writes, 1);
    /// ```
    pub fn layer_stats(&self) -> Vec<LayerStats> {
        self.inner.layers.iter().map(|l| l.stats()).collect()
    }

    /// How long a sync invalidation may wait: the remote layers, a second
    /// for the bus, and the lease for acknowledgements.
    fn invalidation_budget(&self) -> Duration {
        let confirm = self.inner.confirm.as_ref().map_or(Duration::ZERO, |c| {
            let longest = Duration::from_millis(c.longest_lease_ms());
            longest
                .saturating_add(longest / 4)
                .saturating_add(Duration::from_millis(200))
        });
        self.remote_budget()
            .saturating_add(Duration::from_secs(1))
            .saturating_add(confirm)
    }

    fn remote_budget(&self) -> Duration {
        crate::layer::budget_of(&self.inner.layers)
    }

    /// The key of entity `key_type`/`id` in this cache's namespace and
    /// version; add `.arg(..)` and `.use_case(..)` as needed.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().namespace("shop").build();
    /// let key = cache.key("user", &42).arg("lang", &"en");
    /// assert_eq!(key.as_str(), "urn:shop:v1:user:42?lang=en");
    /// assert_eq!(key.entity(), "user:42");
    /// ```
    pub fn key(&self, key_type: &str, id: &dyn fmt::Display) -> Key {
        Key::new(&self.inner.namespace, &self.inner.version, key_type, id)
    }

    /// Takes `name` for a use case about to be built; false when another
    /// use case of this cache has it. Once per use case, never on a call's
    /// path.
    pub(crate) fn claim_name(&self, name: &'static str) -> bool {
        self.registry().names.insert(name)
    }

    /// Lists a built use case (whose name it claimed) in stats and controls.
    pub(crate) fn register(&self, uc: &'static dyn UseCaseInfo) {
        self.registry().all.push(uc);
    }

    fn registry(&self) -> std::sync::MutexGuard<'_, UseCases> {
        self.inner
            .use_cases
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    fn use_cases(&self) -> Vec<&'static dyn UseCaseInfo> {
        self.registry().all.clone()
    }

    /// The in-process entry of a `#[cached]` call under `key` (a URN naming
    /// its use case after `#`), if that use case holds one live.
    pub(super) fn use_case_entry(&self, key: &Key) -> Option<Entry<AnyValue>> {
        let (_, use_case) = key.as_str().rsplit_once('#')?;
        let uc = self
            .use_cases()
            .into_iter()
            .find(|u| u.name() == use_case)?;
        uc.local_entry(key.as_str(), key.entity())
    }

    /// Counters of every use case of this cache (the direct API's under the
    /// name `"direct"`).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().build();
    /// let key = cache.key("k", &1);
    /// cache.set(&key, 1u8, None);
    /// let _ = cache.get::<u8>(&key);
    /// let direct = cache.stats().into_iter().find(|s| s.use_case == "direct").unwrap();
    /// assert_eq!(direct.hits, 1);
    /// ```
    pub fn stats(&self) -> Vec<Stats> {
        let mut all: Vec<Stats> = self.use_cases().iter().map(|u| u.stats()).collect();
        all.push(self.inner.counters.snapshot(
            "direct",
            crate::stats::Occupancy {
                size: self.inner.store.len(),
                capacity: self.inner.store.capacity(),
                bytes: self.inner.store.bytes(),
                max_bytes: None,
                key_type: "",
            },
        ));
        all
    }

    /// Everything this cache counts, in one serializable snapshot: every
    /// use case and their sum, the cache-wide counters (invalidations, bus
    /// messages), the bus and the layers. See [`CacheStats`](crate::CacheStats).
    pub fn snapshot(&self) -> crate::CacheStats {
        crate::CacheStats::new(
            self.name(),
            self.stats(),
            self.inner.counters.cache_wide(),
            self.bus_stats(),
            self.layer_stats(),
        )
    }

    /// The counters of one use case, by name.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().build();
    /// let _ = cache.get::<u8>(&cache.key("k", &1));
    /// assert_eq!(cache.stats_for("direct").unwrap().misses, 1);
    /// assert!(cache.stats_for("NoSuchUseCase").is_none());
    /// ```
    pub fn stats_for(&self, use_case: &str) -> Option<Stats> {
        self.stats().into_iter().find(|s| s.use_case == use_case)
    }

    /// Sets every counter of this cache back to zero.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().build();
    /// let _ = cache.get::<u8>(&cache.key("k", &1));
    /// cache.reset_stats();
    /// assert_eq!(cache.stats_for("direct").unwrap().misses, 0);
    /// ```
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

    /// Whether `other` is a handle to this same cache.
    pub(crate) fn same(&self, other: &Cache) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    /// The configuration provider, if one is set.
    pub(crate) fn provider(&self) -> Option<crate::tuning::Provider> {
        self.inner
            .provider
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets the provider asked about every use case built from now on; call
    /// [`reload`](Self::reload) to apply it to those built already
    /// ([`clear_config_provider`](Self::clear_config_provider) removes it).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, ConfigFor, LayerTuning, UseCaseConfig};
    ///
    /// let cache = Cache::builder().build();
    /// cache.set_config_provider(|_: &ConfigFor<'_>| {
    ///     Some(UseCaseConfig::new().local(LayerTuning::off()))
    /// });
    /// cache.clear_config_provider();
    /// ```
    pub fn set_config_provider(&self, provider: impl crate::ConfigProvider) {
        let p = Some(crate::tuning::Provider(Arc::new(provider)));
        *self
            .inner
            .provider
            .write()
            .unwrap_or_else(|e| e.into_inner()) = p;
    }

    /// Removes the configuration provider: use cases built from now on take
    /// the attribute's settings, and so do those built already on the next
    /// [`reload`](Self::reload).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, ConfigFor, LayerTuning, UseCaseConfig};
    ///
    /// let cache = Cache::builder()
    ///     .config_provider(|_: &ConfigFor<'_>| Some(UseCaseConfig::new().local(LayerTuning::off())))
    ///     .build();
    /// cache.clear_config_provider();
    /// cache.reload();
    /// ```
    pub fn clear_config_provider(&self) {
        *self
            .inner
            .provider
            .write()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Asks the configuration provider again about every use case built so
    /// far, and applies what it says now (the attribute's settings where it
    /// says nothing, or when no provider is set); returns how many use
    /// cases were asked. Each takes its new settings at once: calls that
    /// have started finish with the old ones.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, ConfigFor, LayerTuning, UseCaseConfig};
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// static OFF: AtomicBool = AtomicBool::new(false);
    ///
    /// #[cachewright::cached(key = "reload_doc:<x>", name = "ReloadDoc")]
    /// fn f(x: u32) -> u32 { x }
    ///
    /// let cache = cachewright::default_cache();
    /// cache.set_config_provider(|uc: &ConfigFor<'_>| {
    ///     (uc.use_case == "ReloadDoc" && OFF.load(Ordering::Relaxed))
    ///         .then(|| UseCaseConfig::new().local(LayerTuning::off()))
    /// });
    /// f(1);
    /// f(1);
    /// assert_eq!(cache.stats_for("ReloadDoc").unwrap().hits, 1);
    /// OFF.store(true, Ordering::Relaxed);
    /// assert!(cache.reload() >= 1);
    /// f(1); // no layer left: runs the function, as if uncached
    /// assert_eq!(cache.stats_for("ReloadDoc").unwrap().bypasses, 1);
    /// ```
    pub fn reload(&self) -> usize {
        let all = self.use_cases();
        all.iter().for_each(|u| u.reconfigure());
        all.len()
    }

    /// Sets the share of `use_case`'s fresh hits, in percent, that also run
    /// its function in the background and compare the result with the
    /// value served (shadow reads; see `shadow = ...` in the attribute,
    /// which compiles them in and gives the starting share). Returns
    /// whether the use case exists and has shadow reads compiled in. A
    /// [`reload`](Self::reload) sets it back to what the provider or the
    /// attribute says.
    ///
    /// # Examples
    ///
    /// ```
    /// #[cachewright::cached(key = "shadow_doc:<x>", name = "ShadowDoc", shadow = 0)]
    /// fn f(x: u32) -> u32 { x }
    ///
    /// f(1);
    /// let cache = cachewright::default_cache();
    /// assert_eq!(cache.shadow("ShadowDoc"), Some(0.0));
    /// assert!(cache.set_shadow("ShadowDoc", 1.0)); // 1 % of hits
    /// assert_eq!(cache.shadow("ShadowDoc"), Some(1.0));
    /// ```
    pub fn set_shadow(&self, use_case: &str, percent: f64) -> bool {
        let pm = if percent.is_nan() {
            0
        } else {
            (percent.clamp(0.0, 100.0) * 10.0).round() as u32
        };
        let mut found = false;
        for u in self.use_cases().iter().filter(|u| u.name() == use_case) {
            found |= u.set_shadow(pm);
        }
        found
    }

    /// The shadow-read share of `use_case`, in percent, if it exists and
    /// has shadow reads compiled in.
    ///
    /// # Examples
    ///
    /// ```
    /// #[cachewright::cached(key = "no_shadow_doc:<x>", name = "NoShadowDoc")]
    /// fn f(x: u32) -> u32 { x }
    ///
    /// f(1);
    /// assert_eq!(cachewright::default_cache().shadow("NoShadowDoc"), None);
    /// ```
    pub fn shadow(&self, use_case: &str) -> Option<f64> {
        self.use_cases()
            .iter()
            .find(|u| u.name() == use_case)
            .and_then(|u| u.shadow())
            .map(|pm| f64::from(pm) / 10.0)
    }

    /// Turns caching of `use_case` on (ramp 100 %) or off (ramp 0 %).
    ///
    /// # Examples
    ///
    /// ```
    /// #[cachewright::cached(key = "enabled_doc:<x>", name = "EnabledDoc")]
    /// fn f(x: u32) -> u32 { x }
    ///
    /// f(1);
    /// let cache = cachewright::default_cache();
    /// assert!(cache.set_enabled("EnabledDoc", false));
    /// assert_eq!(cache.ramp("EnabledDoc"), Some(0.0));
    /// assert!(!cache.set_enabled("NotCalledYet", false), "no such use case");
    /// ```
    pub fn set_enabled(&self, use_case: &str, enabled: bool) -> bool {
        self.set_ramp(use_case, if enabled { 100.0 } else { 0.0 })
    }

    /// The ramp of `use_case` in percent, if it exists.
    ///
    /// # Examples
    ///
    /// ```
    /// #[cachewright::cached(key = "ramp_get_doc:<x>", name = "RampGetDoc")]
    /// fn f(x: u32) -> u32 { x }
    ///
    /// f(1);
    /// let cache = cachewright::default_cache();
    /// assert_eq!(cache.ramp("RampGetDoc"), Some(100.0));
    /// cache.set_ramp("RampGetDoc", 25.0);
    /// assert_eq!(cache.ramp("RampGetDoc"), Some(25.0));
    /// ```
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
    /// use cachewright::{Cache, Clock, ManualClock};
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

    /// The URN prefix of every key of this cache (`urn:<ns>:<version>:`).
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().namespace("shop").version("v3").build();
    /// assert_eq!(cache.key_prefix(), "urn:shop:v3:");
    /// assert!(cache.key("user", &1).as_str().starts_with(&cache.key_prefix()));
    /// ```
    pub fn key_prefix(&self) -> String {
        crate::key::prefix(&self.inner.namespace, &self.inner.version)
    }

    fn clear_local(&self) {
        self.use_cases().iter().for_each(|u| u.clear());
        self.inner.store.clear();
    }
}
