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
    DEFAULT.get_or_init(|| from_environment(&process_env).build())
}

/// A variable of this process's environment: `Err` when it is set but not
/// UTF-8 (reported as malformed, never taken as unset).
fn process_env(name: &str) -> Lookup {
    match std::env::var_os(name) {
        None => Ok(None),
        Some(v) => v.into_string().map(Some).map_err(|_| ()),
    }
}

/// What looking a variable up gives: its value if set, `Err` if not UTF-8.
type Lookup = Result<Option<String>, ()>;

/// The default cache's builder as the environment `lookup` describes it,
/// or, when a variable is malformed, the built-in defaults (after logging
/// every malformed variable once).
fn from_environment(lookup: &dyn Fn(&str) -> Lookup) -> CacheBuilder {
    match Setup::read_env(Cache::builder(), lookup) {
        Ok(builder) => builder,
        Err(problems) => {
            for p in &problems {
                tracing::error!(
                    target: "cachewright",
                    variable = p.variable,
                    "{p}; the default cache runs in process only, with the built-in defaults"
                );
            }
            Cache::builder()
        }
    }
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
}

fn list(problems: &[EnvProblem]) -> String {
    let all: Vec<String> = problems.iter().map(ToString::to_string).collect();
    all.join("; ")
}

/// One malformed environment variable: which, and what is wrong with it.
///
/// The value of `CACHEWRIGHT_REDIS_URL` is shown with its password masked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvProblem {
    /// The variable's name, such as `CACHEWRIGHT_CAPACITY`.
    pub variable: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

impl fmt::Display for EnvProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is malformed: {}", self.variable, self.reason)
    }
}

/// The variables [`Setup::from_env`] reads.
const REDIS_URL: &str = "CACHEWRIGHT_REDIS_URL";
const NAMESPACE: &str = "CACHEWRIGHT_NAMESPACE";
const VERSION: &str = "CACHEWRIGHT_VERSION";
const LOCAL_TTL: &str = "CACHEWRIGHT_LOCAL_TTL";
const CAPACITY: &str = "CACHEWRIGHT_CAPACITY";

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
    }
}

/// The process-wide configuration being built; see [`configure`].
///
/// Its layer settings are those of [`CacheBuilder`]: a Redis or other remote
/// layer given here is used by every `#[cached]` function without a
/// `cache = ...` argument, and invalidations reach it and its bus.
#[derive(Debug)]
#[must_use = "nothing is configured until `install` is called"]
pub struct Setup {
    default: CacheBuilder,
    named: Vec<(String, CacheBuilder)>,
    /// The first setting that failed; `install` reports it.
    error: Option<ConfigError>,
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
    /// or `rediss://...` with the `redis-tls` feature. Nothing connects
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
    /// ```no_run
    /// cachewright::configure()
    ///     .redis("redis://:secret@127.0.0.1:6379/0")
    ///     .namespace("shop")
    ///     .install()
    ///     .expect("a valid configuration");
    /// ```
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn redis(mut self, url: &str) -> Self {
        match cachewright_backends::redis::RedisBackend::from_url(url) {
            Ok(backend) => self.default = self.default.layer(LayerConfig::new(backend)),
            Err(e) => self.fail(ConfigError::Layer(e.to_string())),
        }
        self
    }

    /// Caps how long any entry lives in the default cache's in-process
    /// layer (see [`CacheBuilder::local_ttl`]).
    pub fn local_ttl(mut self, cap: Duration) -> Self {
        self.default = self.default.local_ttl(cap);
        self
    }

    /// The codec of values in the default cache's remote layers.
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
    /// | `CACHEWRIGHT_REDIS_URL` | a Redis layer (feature `redis`) | `redis://:pw@10.0.0.5:6379/0` |
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
            Self::read_env(self.default, &process_env).map_err(ConfigError::Environment)?;
        Ok(self)
    }

    /// Applies the variables that `lookup` finds to `builder`.
    fn read_env(
        mut builder: CacheBuilder,
        lookup: &dyn Fn(&str) -> Lookup,
    ) -> Result<CacheBuilder, Vec<EnvProblem>> {
        let mut problems = Vec::new();
        let mut get = |variable: &'static str| match lookup(variable) {
            Ok(v) => v.filter(|v| !v.trim().is_empty()),
            Err(()) => {
                problems.push(EnvProblem {
                    variable,
                    reason: "not valid UTF-8".into(),
                });
                None
            }
        };
        let ns = get(NAMESPACE);
        let version = get(VERSION);
        let ttl = get(LOCAL_TTL);
        let capacity = get(CAPACITY);
        let url = get(REDIS_URL);
        let mut problem = |variable, reason: String| problems.push(EnvProblem { variable, reason });
        if let Some(ns) = ns {
            match word(&ns) {
                Ok(()) => builder = builder.namespace(ns),
                Err(why) => problem(NAMESPACE, why),
            }
        }
        if let Some(v) = version {
            match word(&v) {
                Ok(()) => builder = builder.version(v),
                Err(why) => problem(VERSION, why),
            }
        }
        if let Some(t) = ttl {
            match parse_duration(&t) {
                Ok(d) if d >= Duration::from_millis(1) => builder = builder.local_ttl(d),
                Ok(_) => problem(
                    LOCAL_TTL,
                    format!("`{t}` is under 1 ms, which keeps nothing; leave it unset for no cap"),
                ),
                Err(why) => problem(LOCAL_TTL, format!("`{t}`: {why}")),
            }
        }
        if let Some(c) = capacity {
            match c.trim().replace('_', "").parse::<usize>() {
                Ok(n) if n > 0 => builder = builder.capacity(n),
                _ => problem(
                    CAPACITY,
                    format!("`{c}` is not a whole number of entries of at least 1"),
                ),
            }
        }
        if let Some(url) = url {
            match redis_layer(url.trim()) {
                Ok(layer) => builder = builder.layer(layer),
                Err(why) => problem(REDIS_URL, why),
            }
        }
        if problems.is_empty() {
            Ok(builder)
        } else {
            Err(problems)
        }
    }

    /// Adds a named cache. Its namespace, version and clock are the default
    /// cache's; its other settings (layers included) are `builder`'s.
    pub fn named(mut self, name: impl Into<String>, builder: CacheBuilder) -> Self {
        self.named.push((name.into(), builder));
        self
    }

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
    pub fn install(self) -> Result<(), ConfigError> {
        if let Some(e) = self.error {
            return Err(e);
        }
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
            let cache = b.name(name.clone()).identity_of(&base).build();
            named.insert(name, cache);
        }
        Ok(())
    }
}

/// A namespace or version: a non-empty word without blanks or control
/// characters (it is escaped in keys, so any other character is safe).
fn word(v: &str) -> Result<(), String> {
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(format!(
            "`{}` holds blanks or control characters",
            v.escape_debug()
        ))
    } else {
        Ok(())
    }
}

#[cfg(feature = "redis")]
fn redis_layer(url: &str) -> Result<LayerConfig, String> {
    cachewright_backends::redis::RedisBackend::from_url(url)
        .map(LayerConfig::new)
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "redis"))]
fn redis_layer(url: &str) -> Result<LayerConfig, String> {
    Err(format!(
        "`{}` is set, but cachewright was built without its `redis` feature",
        cachewright_backends::redact_url(url)
    ))
}

/// A duration: whole or fractional seconds (`45`, `1.5`), or numbers with
/// units `ms`, `s`, `m`, `h`, `d`, in any combination (`250ms`, `1h30m`,
/// `1m 30s`). Saturates instead of overflowing.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return t
            .parse::<f64>()
            .map(|secs| Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
            .map_err(|_| "not a number of seconds".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    if rest.is_empty() {
        return Err("empty".into());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or("a number needs a unit: ms, s, m, h or d")?;
        let (number, tail) = rest.split_at(digits);
        let number: f64 = number
            .parse()
            .map_err(|_| "expected a number followed by ms, s, m, h or d")?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit.trim() {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            other => {
                return Err(format!(
                    "unknown unit `{other}`: use ms, s, m, h or d (as in 250ms, 30s, 1h30m)"
                ))
            }
        };
        let part = Duration::try_from_secs_f64(number * scale).unwrap_or(Duration::MAX);
        total = total.saturating_add(part);
        rest = tail.trim_start();
    }
    Ok(total)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Result<CacheBuilder, Vec<EnvProblem>> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Setup::read_env(Cache::builder(), &move |name| Ok(map.get(name).cloned()))
    }

    #[test]
    fn durations_as_attributes_write_them() {
        let ok = |t: &str| parse_duration(t).unwrap();
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("45"), Duration::from_secs(45));
        assert_eq!(ok("1.5"), Duration::from_millis(1500));
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("2d"), Duration::from_secs(172_800));
        assert_eq!(ok("1m 30s"), Duration::from_secs(90));
        assert_eq!(ok("99999999999999999999d"), Duration::MAX);
        for bad in [
            "",
            "30x",
            "s",
            "-5",
            "ten",
            "5 parsecs",
            "NaN",
            "inf",
            "1e3",
            "1..2",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn every_malformed_variable_is_named() {
        let problems = env(&[
            (CAPACITY, "lots"),
            (LOCAL_TTL, "30 parsecs"),
            (NAMESPACE, "my app"),
            (VERSION, "v1"),
        ])
        .unwrap_err();
        let named: Vec<&str> = problems.iter().map(|p| p.variable).collect();
        assert_eq!(named, [NAMESPACE, LOCAL_TTL, CAPACITY]);
        assert!(problems[2]
            .to_string()
            .contains("CACHEWRIGHT_CAPACITY is malformed"));
        for zero in [(CAPACITY, "0"), (LOCAL_TTL, "0s"), (LOCAL_TTL, "0.5ms")] {
            assert_eq!(env(&[zero]).unwrap_err()[0].variable, zero.0);
        }
    }

    #[test]
    fn well_formed_variables_configure_the_default_cache() {
        let cache = env(&[
            (NAMESPACE, "billing"),
            (VERSION, "v9"),
            (CAPACITY, "1_000"),
            (LOCAL_TTL, "30s"),
            (REDIS_URL, "   "),
        ])
        .unwrap()
        .without_bus()
        .build();
        assert_eq!(cache.namespace(), "billing");
        assert_eq!(cache.version(), "v9");
        assert_eq!(cache.default_capacity(), 1_000);
        assert!(cache.layer_stats().is_empty(), "a blank URL is unset");
    }

    #[test]
    fn a_malformed_environment_falls_back_to_in_process_defaults() {
        let vars: HashMap<&str, &str> = [(NAMESPACE, "billing"), (CAPACITY, "-3")].into();
        let cache = from_environment(&|n| Ok(vars.get(n).map(|v| v.to_string()))).build();
        assert_eq!(
            cache.namespace(),
            "cachewright",
            "no half-applied environment"
        );
        assert_eq!(cache.default_capacity(), crate::cache::DEFAULT_CAPACITY);
        assert!(cache.layer_stats().is_empty());
    }

    #[test]
    fn a_value_that_is_not_utf8_is_malformed_not_unset() {
        let problems = Setup::read_env(Cache::builder(), &|name| {
            if name == NAMESPACE {
                Err(())
            } else {
                Ok(None)
            }
        })
        .unwrap_err();
        assert_eq!(problems[0].variable, NAMESPACE);
    }

    #[test]
    fn redis_url_problems_mask_the_password() {
        for url in [
            "http://user:hunter2@example:80",
            "redis://:hunter2/x@127.0.0.1:1/0",
            "redis://:hunter2?x@127.0.0.1:1/0",
            "redis://:hunter2#x@127.0.0.1:notaport/0",
        ] {
            let problems = env(&[(REDIS_URL, url)]).unwrap_err();
            assert_eq!(problems[0].variable, REDIS_URL);
            let e = ConfigError::Environment(problems);
            for text in [e.to_string(), format!("{e:?}")] {
                assert!(!text.contains("hunter2"), "{text}");
                assert!(text.contains(REDIS_URL), "{text}");
            }
        }
    }

    #[cfg(feature = "redis")]
    #[test]
    fn a_redis_url_adds_a_redis_layer() {
        let cache = env(&[(REDIS_URL, "redis://:pw@127.0.0.1:1/0")])
            .unwrap()
            .without_bus()
            .build();
        assert_eq!(cache.layer_stats()[0].backend, "redis");
    }

    #[cfg(feature = "redis")]
    #[test]
    fn a_bad_redis_url_in_code_fails_install_without_the_password() {
        let err = configure()
            .redis("redis://:hunter2@127.0.0.1:notaport/0")
            .install()
            .unwrap_err();
        assert!(matches!(err, ConfigError::Layer(_)), "{err:?}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    }
}
