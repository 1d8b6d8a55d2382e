//! The process-wide caches: the default cache every `#[cached]` without
//! `cache = ...` uses, the named caches, [`configure`] and the environment.
//!
//! The default cache is built once, on first use. What it is built from, in
//! order of precedence:
//!
//! 1. [`configure()`]`...install()`, if it ran before the first use: the
//!    environment is then not read at all (call [`Setup::from_env`] to start
//!    from it and override in code);
//! 2. otherwise the `CACHEWRIGHT_*` environment variables (see
//!    [`Setup::from_env`]); a malformed one is logged once, at error level,
//!    naming the variable, and the default cache is then in-process only with
//!    the built-in defaults — a typo never sends a service's entries to the
//!    wrong Redis or namespace, and never fails a call;
//! 3. otherwise the built-in defaults: in process only, namespace
//!    `cachewright`, version `v1`, capacity 10 000.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, OnceLock, RwLock};
use std::time::Duration;

use crate::cache::{Cache, CacheBuilder};
use crate::clock::Clock;
use crate::envelope::Codec;
use crate::layer::LayerConfig;
use crate::stats::Stats;

mod env;
mod presets;
pub use presets::TtlPreset;

pub use env::EnvProblem;

static DEFAULT: OnceLock<Cache> = OnceLock::new();
static NAMED: LazyLock<RwLock<HashMap<String, Cache>>> = LazyLock::new(Default::default);

/// The process-wide default cache, built on first use: from [`configure`]
/// if it was installed first, else from the `CACHEWRIGHT_*` environment
/// variables (see [`Setup::from_env`]), else with the defaults.
///
/// # Examples
///
/// ```
/// let cache = cachewright::default_cache();
/// assert_eq!(cache.name(), "default");
/// ```
pub fn default_cache() -> &'static Cache {
    DEFAULT.get_or_init(|| env::from_environment(&env::process_env).build())
}

/// The process-wide caches built so far: the default one (if built) and
/// the named ones.
pub(crate) fn installed() -> Vec<Cache> {
    let mut all: Vec<Cache> = DEFAULT.get().cloned().into_iter().collect();
    all.extend(
        NAMED
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned(),
    );
    all
}

/// Counters of every use case of the default cache.
///
/// # Examples
///
/// ```
/// for s in cachewright::stats() {
///     println!("{}: {} hits, {} misses", s.use_case, s.hits, s.misses);
/// }
/// ```
pub fn stats() -> Vec<Stats> {
    default_cache().stats()
}

/// The counters of one use case of the default cache.
///
/// # Examples
///
/// ```
/// assert!(cachewright::stats_for("no such use case").is_none());
/// ```
pub fn stats_for(use_case: &str) -> Option<Stats> {
    default_cache().stats_for(use_case)
}

/// Why a configuration could not be installed.
///
/// # Examples
///
/// ```
/// use cachewright::{configure, ConfigError};
///
/// configure().install().unwrap();
/// assert_eq!(configure().install(), Err(ConfigError::AlreadyInstalled));
/// ```
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The default cache was already built (by an earlier `install`, or by a
    /// cached call made before it).
    #[error(
        "the default cache is already in use; configure cachewright once, before the first cached call"
    )]
    AlreadyInstalled,
    /// A named cache of that name already exists.
    #[error("a cache named `{0}` is already installed")]
    DuplicateName(String),
    /// A layer could not be set up (a Redis URL that does not parse, a
    /// missing feature). Credentials are never part of the message.
    #[error("a layer could not be configured: {0}")]
    Layer(String),
    /// One or more `CACHEWRIGHT_*` variables are malformed.
    #[error("{}", list(.0))]
    Environment(Vec<EnvProblem>),
    /// A TTL preset was set to zero (a TTL of zero would cache nothing;
    /// turn a use case off with its ramp instead).
    #[error("the TTL preset {0:?} must be greater than zero")]
    ZeroTtlPreset(TtlPreset),
}

fn list(problems: &[EnvProblem]) -> String {
    let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
    all.join("; ")
}

/// Starts configuring the process-wide caches, once, at startup.
///
/// Installed before the first cached call, this configuration is the default
/// cache's, and the `CACHEWRIGHT_*` environment is not read (start from it
/// with [`Setup::from_env`]).
///
/// # Examples
///
/// ```
/// use cachewright::{configure, Cache, NamedCache};
/// use std::time::Duration;
///
/// configure()
///     .namespace("billing")
///     .version("v7")
///     .capacity(50_000)
///     .local_ttl(Duration::from_secs(30))
///     .named("sessions", Cache::builder().capacity(1_000))
///     .install()
///     .unwrap();
///
/// static SESSIONS: NamedCache = NamedCache::new("sessions");
/// assert_eq!(SESSIONS.cache().namespace(), "billing");
/// assert_eq!(SESSIONS.cache().default_capacity(), 1_000);
/// assert_eq!(cachewright::default_cache().version(), "v7");
/// // Configuring twice is an error, not a silent change.
/// assert!(configure().install().is_err());
/// ```
pub fn configure() -> Setup {
    Setup {
        default: Cache::builder(),
        named: Vec::new(),
        error: None,
        enabled_by_default: true,
        presets: Vec::new(),
        provider: None,
    }
}

/// The process-wide configuration being built; see [`configure`].
///
/// Its layer settings are those of [`CacheBuilder`]: a Redis or other remote
/// layer given here is used by every `#[cached]` function without a
/// `cache = ...` argument, and invalidations reach it and its bus.
///
/// # Examples
///
/// ```
/// use cachewright::{configure, Cache, NamedCache};
///
/// configure()
///     .namespace("shop")
///     .named("pages", Cache::builder().capacity(100))
///     .install()
///     .unwrap();
/// static PAGES: NamedCache = NamedCache::new("pages");
/// assert_eq!(PAGES.cache().namespace(), "shop");
/// ```
#[derive(Debug)]
#[must_use = "nothing is configured until `install` is called"]
pub struct Setup {
    default: CacheBuilder,
    named: Vec<(String, CacheBuilder)>,
    /// The first setting that failed; `install` reports it.
    error: Option<ConfigError>,
    /// Whether calls outside an `enabled` scope use the cache.
    enabled_by_default: bool,
    /// TTL presets set here.
    presets: Vec<(TtlPreset, Duration)>,
    /// The configuration provider of every cache configured here.
    provider: Option<crate::tuning::Provider>,
}

impl Setup {
    /// The application's per-use-case settings, asked about each use case
    /// of the default cache and of the named caches configured here (unless
    /// a named cache's builder has its own) when it is built, and again on
    /// [`Cache::reload`]. See [`ConfigProvider`](crate::ConfigProvider).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{configure, ConfigFor, LayerTuning, UseCaseConfig};
    /// use std::time::Duration;
    ///
    /// configure()
    ///     .config_provider(|uc: &ConfigFor<'_>| match uc.use_case {
    ///         "GetPrices" => Some(UseCaseConfig::new().local(LayerTuning::new().ttl(Duration::from_secs(5)))),
    ///         _ => None,
    ///     })
    ///     .install()
    ///     .unwrap();
    /// ```
    pub fn config_provider(mut self, provider: impl crate::ConfigProvider) -> Self {
        self.provider = Some(crate::tuning::Provider(std::sync::Arc::new(provider)));
        self
    }

    /// Whether cached calls use the cache outside an
    /// [`enabled`](crate::enabled) scope (default `true`). With `false`,
    /// only cached calls inside an `enabled` scope read and fill the cache:
    /// GCache's safe default, for services that turn caching on path by
    /// path. Invalidations run either way, and the direct API (`get`,
    /// `get_or_load`, ...) is explicit and ignores scopes.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// static LOADS: AtomicU32 = AtomicU32::new(0);
    ///
    /// #[cachewright::cached(key = "opt_in_doc:<x>")]
    /// fn f(x: u32) -> u32 { LOADS.fetch_add(1, Ordering::SeqCst); x }
    ///
    /// cachewright::configure().enabled_by_default(false).install().unwrap();
    /// f(1);
    /// f(1);
    /// assert_eq!(LOADS.load(Ordering::SeqCst), 2, "off: both ran");
    /// cachewright::enabled_sync(|| { f(1); f(1); });
    /// assert_eq!(LOADS.load(Ordering::SeqCst), 3, "on in the scope: one load");
    /// ```
    pub fn enabled_by_default(mut self, on: bool) -> Self {
        self.enabled_by_default = on;
        self
    }

    /// What a TTL preset (`#[cached(ttl = "short")]`) means in this
    /// process, over `CACHEWRIGHT_TTL_SHORT` / `_DEFAULT` / `_LONG` and the
    /// defaults (30 s, 5 min, 1 h). Use cases built before `install` keep
    /// the TTL they were built with. A zero TTL is an error.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::TtlPreset;
    /// use std::time::Duration;
    ///
    /// cachewright::configure()
    ///     .ttl_preset(TtlPreset::Short, Duration::from_secs(5))
    ///     .install()
    ///     .unwrap();
    /// assert_eq!(TtlPreset::Short.resolve(), Duration::from_secs(5));
    /// ```
    pub fn ttl_preset(mut self, preset: TtlPreset, ttl: Duration) -> Self {
        if ttl.is_zero() {
            self.error.get_or_insert(ConfigError::ZeroTtlPreset(preset));
        }
        self.presets.push((preset, ttl));
        self
    }

    /// The namespace of the default cache and of named caches.
    ///
    /// # Examples
    ///
    /// ```
    /// cachewright::configure().namespace("billing").install().unwrap();
    /// assert_eq!(cachewright::default_cache().namespace(), "billing");
    /// ```
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.default = self.default.namespace(ns);
        self
    }

    /// The version of the default cache and of named caches.
    ///
    /// # Examples
    ///
    /// ```
    /// cachewright::configure().version("v7").install().unwrap();
    /// assert_eq!(cachewright::default_cache().key_prefix(), "urn:cachewright:v7:");
    /// ```
    pub fn version(mut self, v: impl Into<String>) -> Self {
        self.default = self.default.version(v);
        self
    }

    /// The default per-use-case capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// cachewright::configure().capacity(50_000).install().unwrap();
    /// assert_eq!(cachewright::default_cache().default_capacity(), 50_000);
    /// ```
    pub fn capacity(mut self, c: usize) -> Self {
        self.default = self.default.capacity(c);
        self
    }

    /// The default cache's memory budget for its in-process entries (see
    /// [`CacheBuilder::max_bytes`](crate::CacheBuilder::max_bytes)).
    ///
    /// # Examples
    ///
    /// ```
    /// cachewright::configure().max_bytes(256 << 20).install().unwrap();
    /// assert_eq!(cachewright::default_cache().max_bytes(), Some(256 << 20));
    /// ```
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.default = self.default.max_bytes(bytes);
        self
    }

    /// The clock of the default cache and of named caches.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{configure, Clock, ManualClock};
    ///
    /// let clock = ManualClock::new(0);
    /// configure().clock(Clock::manual(&clock)).install().unwrap();
    /// assert!(cachewright::default_cache().clock().is_manual());
    /// ```
    pub fn clock(mut self, clock: Clock) -> Self {
        self.default = self.default.clock(clock);
        self
    }

    /// Adds a remote layer to the default cache, below those added before
    /// (see [`CacheBuilder::layer`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{configure, LayerConfig};
    /// use cachewright::backends::MemoryBackend;
    /// use std::time::Duration;
    ///
    /// configure()
    ///     .local_ttl(Duration::from_secs(30))
    ///     .layer(LayerConfig::new(MemoryBackend::new()).ttl_cap(Duration::from_secs(300)))
    ///     .install()
    ///     .unwrap();
    /// assert_eq!(cachewright::default_cache().layer_stats()[0].backend, "memory");
    /// ```
    pub fn layer(mut self, layer: LayerConfig) -> Self {
        self.default = self.default.layer(layer);
        self
    }

    /// Adds a Redis layer to the default cache: `redis://[user][:password@]host[:port][/db]`,
    /// or `rediss://...` with the `redis-tls` feature; a comma list of nodes,
    /// `redis://[:password@]h1:7000,h2:7001`, is a Redis Cluster (feature
    /// `cluster`; without it, a [`ConfigError::Layer`]). Nothing connects
    /// until the first cached call, and a Redis that is down then is skipped
    /// and counted (calls still run their loaders). Invalidations reach Redis
    /// and, through its pub/sub, every other process of the namespace.
    ///
    /// The layer has the defaults of [`LayerConfig::new`]; for other
    /// settings build it yourself with
    /// `LayerConfig::new(RedisBackend::from_url(url)?)` and [`layer`](Self::layer).
    ///
    /// # Errors
    ///
    /// A URL that does not parse makes [`install`](Self::install) return
    /// [`ConfigError::Layer`]; the message never holds the password.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{configure, ConfigError};
    ///
    /// // A URL that does not parse: nothing is installed.
    /// let err = configure().redis("redis://:secret@[::1").install().unwrap_err();
    /// assert!(matches!(&err, ConfigError::Layer(m) if !m.contains("secret")));
    ///
    /// // Nothing connects here: a Redis that is down is skipped by calls.
    /// configure()
    ///     .redis("redis://:secret@127.0.0.1:6379/0")
    ///     .namespace("shop")
    ///     .install()
    ///     .expect("a valid configuration");
    /// assert_eq!(cachewright::default_cache().layer_stats()[0].backend, "redis");
    /// ```
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis(mut self, url: &str) -> Self {
        match env::redis_layer(url) {
            Ok(layer) => self.default = self.default.layer(layer),
            Err(e) => self.fail(ConfigError::Layer(e)),
        }
        self
    }

    /// Caps how long any entry lives in the default cache's in-process
    /// layer (see [`CacheBuilder::local_ttl`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// cachewright::configure().local_ttl(Duration::from_secs(30)).install().unwrap();
    /// let cache = cachewright::default_cache();
    /// let key = cache.key("k", &1);
    /// cache.set(&key, 1u8, Some(Duration::from_secs(3_600)));
    /// let e = cache.get_entry::<u8>(&key).unwrap();
    /// let left = e.fresh_until_ms - cache.clock().now_ms();
    /// assert!(left <= 30_000, "capped at 30 s in process, not an hour");
    /// ```
    pub fn local_ttl(mut self, cap: Duration) -> Self {
        self.default = self.default.local_ttl(cap);
        self
    }

    /// The codec of values in the default cache's remote layers.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{configure, Codec, LayerConfig};
    /// use cachewright::backends::MemoryBackend;
    ///
    /// configure()
    ///     .codec(Codec::Json)
    ///     .layer(LayerConfig::new(MemoryBackend::new()))
    ///     .install()
    ///     .unwrap();
    /// let cache = cachewright::default_cache();
    /// cache.set(&cache.key("k", &1), 1u8, None);
    /// assert_eq!(cache.layer_stats()[0].writes, 1);
    /// ```
    pub fn codec(mut self, codec: Codec) -> Self {
        self.default = self.default.codec(codec);
        self
    }

    /// Starts from the `CACHEWRIGHT_*` environment variables, so that
    /// settings made after this call override them. Without `configure()`,
    /// the default cache reads the same variables by itself on first use.
    ///
    /// | variable | meaning | example |
    /// |---|---|---|
    /// | `CACHEWRIGHT_REDIS_URL` | a Redis layer (feature `redis`); a comma list of nodes is a Redis Cluster (feature `cluster`) | `redis://:pw@10.0.0.5:6379/0`, `redis://h1:7000,h2:7001` |
    /// | `CACHEWRIGHT_NAMESPACE` | the namespace | `billing` |
    /// | `CACHEWRIGHT_VERSION` | the version | `v7` |
    /// | `CACHEWRIGHT_LOCAL_TTL` | cap of the in-process layer | `30s`, `250ms`, `1h30m`, `45` (seconds) |
    /// | `CACHEWRIGHT_CAPACITY` | default per-use-case capacity | `50000` |
    ///
    /// An unset, empty or blank variable keeps the default. The Redis layer
    /// of `CACHEWRIGHT_REDIS_URL` is added like [`redis`](Self::redis): a
    /// layer added in code after it goes below it (layers add up; the other
    /// settings made in code replace the environment's).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Environment`] naming every malformed variable (not
    /// UTF-8; a URL the Redis client does not take, or one set without the
    /// `redis` feature; a namespace or version holding blanks or control
    /// characters; a duration without a valid unit, or under 1 ms; a
    /// capacity that is not a positive whole number). Use it to fail fast at
    /// startup where a silent fallback to in-process caching is not wanted.
    ///
    /// # Examples
    ///
    /// ```
    /// let setup = cachewright::configure().from_env().expect("a valid environment");
    /// setup.capacity(20_000).install().unwrap();
    /// ```
    pub fn from_env(mut self) -> Result<Self, ConfigError> {
        self.default =
            env::read(self.default, &env::process_env).map_err(ConfigError::Environment)?;
        Ok(self)
    }

    /// Adds a named cache. Its namespace, version and clock are the default
    /// cache's; its other settings (layers included) are `builder`'s.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{configure, Cache, LayerConfig, NamedCache};
    /// use cachewright::backends::MemoryBackend;
    ///
    /// configure()
    ///     .version("v2")
    ///     .named("sessions", Cache::builder().layer(LayerConfig::new(MemoryBackend::new())))
    ///     .install()
    ///     .unwrap();
    /// static SESSIONS: NamedCache = NamedCache::new("sessions");
    /// assert_eq!(SESSIONS.cache().version(), "v2", "the default cache's identity");
    /// assert_eq!(SESSIONS.cache().layer_stats().len(), 1, "its own layers");
    /// ```
    pub fn named(mut self, name: impl Into<String>, builder: CacheBuilder) -> Self {
        self.named.push((name.into(), builder));
        self
    }

    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    fn fail(&mut self, error: ConfigError) {
        self.error.get_or_insert(error);
    }

    /// Installs the configuration.
    ///
    /// # Errors
    ///
    /// The first failed setting ([`ConfigError::Layer`]); then
    /// [`ConfigError::AlreadyInstalled`] when the default cache is already
    /// built; [`ConfigError::DuplicateName`] when a named cache exists.
    /// Nothing is installed when it fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{configure, Cache, ConfigError};
    ///
    /// configure().named("a", Cache::builder()).install().unwrap();
    /// assert_eq!(configure().install(), Err(ConfigError::AlreadyInstalled));
    /// ```
    pub fn install(mut self) -> Result<(), ConfigError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        self.default.check()?;
        for (_, b) in &self.named {
            b.check()?;
        }
        if let Some(p) = &self.provider {
            self.default = self.default.provider_or(p);
            for (_, b) in &mut self.named {
                *b = std::mem::take(b).provider_or(p);
            }
        }
        let base = self.default.clone();
        let mut named = NAMED.write().unwrap_or_else(|e| e.into_inner());
        for (name, _) in &self.named {
            if named.contains_key(name) {
                return Err(ConfigError::DuplicateName(name.clone()));
            }
        }
        let mut set = false;
        let (enabled_by_default, presets) = (self.enabled_by_default, &self.presets);
        DEFAULT.get_or_init(|| {
            set = true;
            // Before the default cache is published: a call made the moment
            // it is must already see these.
            crate::scope::set_enabled_by_default(enabled_by_default);
            for &(preset, ttl) in presets {
                preset.configure(ttl);
            }
            self.default.build()
        });
        if !set {
            return Err(ConfigError::AlreadyInstalled);
        }
        for (name, b) in self.named {
            let cache = b.name(name.clone()).identity_of(&base).build();
            named.insert(name, cache);
        }
        Ok(())
    }
}

/// A reference, usable in a `static`, to a named cache configured with
/// [`configure`]. A name that was never configured gets a cache with the
/// default cache's namespace, version, capacity and clock on first use (in
/// process only: give it layers with [`Setup::named`]).
///
/// # Examples
///
/// ```
/// use cachewright::NamedCache;
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
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::NamedCache;
    ///
    /// static A: NamedCache = NamedCache::new("a");
    /// static ALSO_A: NamedCache = NamedCache::new("a");
    /// A.cache().set(&A.cache().key("k", &1), 1u8, None);
    /// assert_eq!(ALSO_A.cache().get::<u8>(&A.cache().key("k", &1)), Some(1), "one cache per name");
    /// ```
    pub const fn new(name: &'static str) -> Self {
        NamedCache {
            name,
            cell: OnceLock::new(),
        }
    }

    /// The cache, resolved on first use.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::NamedCache;
    ///
    /// static REPORTS: NamedCache = NamedCache::new("reports");
    /// let cache = REPORTS.cache();
    /// assert_eq!(cache.name(), "reports");
    /// assert_eq!(cache.namespace(), cachewright::default_cache().namespace());
    /// ```
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
///
/// # Examples
///
/// ```
/// use cachewright::{AsCache, Cache};
/// use std::sync::LazyLock;
///
/// static LOCAL: LazyLock<Cache> = LazyLock::new(|| Cache::builder().name("local").build());
/// assert_eq!(LOCAL.as_cache().name(), "local");
/// ```
pub trait AsCache {
    /// The cache.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{AsCache, Cache, NamedCache};
    /// use std::sync::Arc;
    ///
    /// static NAMED: NamedCache = NamedCache::new("named");
    /// assert_eq!(NAMED.as_cache().name(), "named");
    /// let shared = Arc::new(Cache::builder().name("arc").build());
    /// assert_eq!(shared.as_cache().name(), "arc");
    /// ```
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
