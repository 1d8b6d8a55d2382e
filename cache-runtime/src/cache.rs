//! The `Cache` handle: configuration, the direct API, and the process-wide
//! default and named caches.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use crate::clock::Clock;
use crate::context::Directive;
use crate::entry::{Entry, Freshness};
use crate::flight::{Flights, Outcome, Role};
use crate::key::Key;
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
}

impl Default for CacheBuilder {
    fn default() -> Self {
        CacheBuilder {
            name: "default".into(),
            namespace: "cachet".into(),
            version: "v1".into(),
            capacity: DEFAULT_CAPACITY,
            clock: Clock::system(),
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

    /// Builds the cache.
    pub fn build(self) -> Cache {
        Cache {
            inner: Arc::new(Inner {
                store: Store::new(self.capacity),
                flights: Flights::new(),
                counters: Counters::default(),
                use_cases: Mutex::new(Vec::new()),
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

    /// Drops every entry of every use case and of the direct API.
    pub fn clear(&self) {
        self.use_cases().iter().for_each(|u| u.clear());
        self.inner.store.clear();
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

    // ---- direct API -------------------------------------------------------

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

    fn entry(&self, key: &Key, value: AnyValue, ttl: Option<Duration>) -> Entry<AnyValue> {
        let mut e = Entry::new(value, self.inner.clock.now_ms(), ttl, Duration::ZERO);
        e.tags = vec![Box::<str>::from(key.entity())].into_boxed_slice();
        e
    }

    /// The value under `key`, if one of type `T` is there and not expired.
    /// A value of another type reads as absent.
    pub fn get<T: Clone + Send + Sync + 'static>(&self, key: &Key) -> Option<T> {
        match self.read::<T>(key) {
            Some((_, v)) => {
                self.inner.counters.hit();
                Some(v)
            }
            None => {
                self.inner.counters.miss();
                None
            }
        }
    }

    /// Stores `value` under `key` for `ttl` (forever, until evicted, when
    /// `None`), replacing what was there.
    pub fn set<T: Send + Sync + 'static>(&self, key: &Key, value: T, ttl: Option<Duration>) {
        let now = self.inner.clock.now_ms();
        let entry = self.entry(key, Arc::new(value), ttl);
        self.inner
            .store
            .insert(self.direct_hash(key), key.as_str().to_owned(), entry, |e| {
                e.is_expired(now)
            });
    }

    /// Stores `value` under `key` unless a live value is there; returns
    /// whether it stored. Atomic: of concurrent callers exactly one wins, so
    /// it serves as a simple lock with a lease of `ttl`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cache_runtime::Cache;
    /// use std::time::Duration;
    ///
    /// let cache = Cache::builder().build();
    /// let lock = cache.key("lock", &"report");
    /// assert!(cache.set_if_not_exists(&lock, "worker-1", Some(Duration::from_secs(10))));
    /// assert!(!cache.set_if_not_exists(&lock, "worker-2", Some(Duration::from_secs(10))));
    /// assert_eq!(cache.get::<&str>(&lock), Some("worker-1"));
    /// ```
    pub fn set_if_not_exists<T: Send + Sync + 'static>(
        &self,
        key: &Key,
        value: T,
        ttl: Option<Duration>,
    ) -> bool {
        let now = self.inner.clock.now_ms();
        let entry = self.entry(key, Arc::new(value), ttl);
        self.inner
            .store
            .insert_if_vacant(self.direct_hash(key), key.as_str().to_owned(), entry, |e| {
                e.is_expired(now)
            })
            .0
    }

    /// Whether a live value (of any type) is under `key`.
    pub fn exists(&self, key: &Key) -> bool {
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

    /// Removes the value under `key`; returns whether a live one was there.
    pub fn delete(&self, key: &Key) -> bool {
        let now = self.inner.clock.now_ms();
        self.inner
            .store
            .remove(self.direct_hash(key), |k| k == key.as_str())
            .is_some_and(|e| !e.is_expired(now))
    }

    /// The value under `key`, or the loader's, stored for `ttl`.
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
        T: Clone + Send + Sync + 'static,
    {
        if let Some(v) = self.get::<T>(key) {
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
                    let Some(loader) = loader.take() else {
                        lead.finish(Outcome::Abandoned);
                        continue;
                    };
                    let start = Instant::now();
                    let (r, said) = context::directed(loader);
                    self.inner.counters.load(start.elapsed(), r.is_ok());
                    return self.settle(key, ttl, lead, r, said);
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
        T: Clone + Send + Sync + 'static,
        F: Future<Output = Result<T, E>>,
    {
        if let Some(v) = self.get::<T>(key) {
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
                    let Some(loader) = loader.take() else {
                        lead.finish(Outcome::Abandoned);
                        continue;
                    };
                    let start = Instant::now();
                    let (r, said) = context::directed_async(loader).await;
                    self.inner.counters.load(start.elapsed(), r.is_ok());
                    return self.settle(key, ttl, lead, r, said);
                }
                Role::Waiter(f) => {
                    if let Some(v) = self.waited::<T>(f.wait_async(|_| None).await) {
                        return Ok(v);
                    }
                }
            }
        }
    }

    fn waited<T: Clone + 'static>(&self, o: Outcome<AnyValue>) -> Option<T> {
        match o {
            Outcome::Done(v) => v.downcast_ref::<T>().cloned(),
            _ => None,
        }
    }

    fn settle<T, E>(
        &self,
        key: &Key,
        ttl: Option<Duration>,
        lead: crate::flight::Lead<'_, String, AnyValue>,
        r: Result<T, E>,
        said: Directive,
    ) -> Result<T, E>
    where
        T: Clone + Send + Sync + 'static,
    {
        match r {
            Ok(v) => {
                let shared: AnyValue = Arc::new(v.clone());
                match said {
                    Directive::Skip => {}
                    Directive::Ttl(d) => self.set(key, v.clone(), Some(d)),
                    Directive::Default => self.set(key, v.clone(), ttl),
                }
                lead.finish(Outcome::Done(shared));
                Ok(v)
            }
            Err(e) => {
                lead.finish(Outcome::Failed(None));
                Err(e)
            }
        }
    }

    /// [`get`](Self::get), for async code (the in-process layer never waits,
    /// so this is `get`; layers below it make it differ).
    pub async fn get_async<T: Clone + Send + Sync + 'static>(&self, key: &Key) -> Option<T> {
        self.get(key)
    }

    /// [`set`](Self::set), for async code.
    pub async fn set_async<T: Send + Sync + 'static>(
        &self,
        key: &Key,
        value: T,
        ttl: Option<Duration>,
    ) {
        self.set(key, value, ttl)
    }

    /// [`delete`](Self::delete), for async code.
    pub async fn delete_async(&self, key: &Key) -> bool {
        self.delete(key)
    }

    /// [`exists`](Self::exists), for async code.
    pub async fn exists_async(&self, key: &Key) -> bool {
        self.exists(key)
    }

    /// [`set_if_not_exists`](Self::set_if_not_exists), for async code.
    pub async fn set_if_not_exists_async<T: Send + Sync + 'static>(
        &self,
        key: &Key,
        value: T,
        ttl: Option<Duration>,
    ) -> bool {
        self.set_if_not_exists(key, value, ttl)
    }

    /// [`clear`](Self::clear), for async code.
    pub async fn clear_async(&self) {
        self.clear()
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
