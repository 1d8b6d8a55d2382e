//! Background writers and readers: values loaded on a schedule by one writer
//! into a (usually shared) cache, and read by every process from its own
//! memory, never on a request's critical path.
//!
//! - A [`BgWriter`] owns one key. It is declared with `#[bg_writer]` on a
//!   loader function, which becomes a `static` of that name; its scheduler
//!   starts on first use (or with [`BgWriter::start`]) and runs until
//!   [`shutdown`]. One writer per key per process (a second one is an error
//!   at start); across processes a lease in the cache's first remote layer
//!   (Redis: `SET NX PX` with a token, renewed every tick, released on
//!   shutdown) lets exactly one replica load per interval; the others pull
//!   what it wrote.
//! - A [`BgReader`] keeps a local copy of a writer's key, pulling from the
//!   writer's cache on its own interval, and on a miss pulls once.
//!
//! Reads never wait once a value is there: an `Arc` of it is returned.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, OnceLock, RwLock};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::cache::Cache;
use crate::global::AsCache;
use crate::key::Key;
use crate::watermark::tag_hash;

/// A loader's failure, as a writer keeps it (its message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BgFailure(pub String);

impl BgFailure {
    /// The failure of a loader error.
    pub fn new(e: &dyn fmt::Display) -> Self {
        BgFailure(e.to_string())
    }
}

/// Why a background writer or reader has no value to give.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BgError {
    /// The loader failed and there is no earlier value.
    #[error("the loader of `{key}` failed: {message}")]
    Failed {
        /// The writer's key.
        key: String,
        /// The loader's error.
        message: String,
    },
    /// Another writer is registered for the same key in this process.
    #[error(
        "a background writer for `{0}` is already registered in this process; one writer per key"
    )]
    Duplicate(String),
    /// A reader found nothing under its key.
    #[error("no value under `{0}` yet")]
    NoValue(String),
    /// The load could not run (no runtime, or it took too long).
    #[error("the load of `{0}` could not complete")]
    Unavailable(String),
}

/// What `#[bg_writer]` knows at compile time.
#[doc(hidden)]
#[derive(Debug)]
pub struct BgSpec {
    /// The key the writer owns.
    pub key: &'static str,
    /// Refresh interval in milliseconds; 0: no schedule, on demand only.
    pub interval_ms: u64,
    /// TTL of the value in the cache; default twice the interval.
    pub ttl_ms: Option<u64>,
    /// Load at start instead of one interval later.
    pub run_immediately: bool,
    /// The writer's name (module path and function).
    pub name: &'static str,
}

type Loading<T> = Pin<Box<dyn Future<Output = Result<T, BgFailure>> + Send>>;

/// How a writer loads: the function under `#[bg_writer]`, sync or async.
#[doc(hidden)]
pub enum BgLoader<T> {
    /// A sync loader (run on tokio's blocking pool).
    Sync(fn() -> Result<T, BgFailure>),
    /// An async loader.
    Async(fn() -> Loading<T>),
}

impl<T> fmt::Debug for BgLoader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BgLoader::Sync(_) => "BgLoader::Sync",
            BgLoader::Async(_) => "BgLoader::Async",
        })
    }
}

/// Anything with a scheduled task that [`shutdown`] must stop.
trait Stop: Send + Sync {
    fn stop(&self) -> Option<Pin<Box<dyn Future<Output = ()> + Send>>>;
}

static RUNNING: LazyLock<Mutex<Vec<Arc<dyn Stop>>>> = LazyLock::new(Default::default);
static WRITERS: LazyLock<Mutex<HashMap<String, usize>>> = LazyLock::new(Default::default);

/// Stops every scheduled writer and reader task and releases the writers'
/// leases. Safe to call twice; stopped writers and readers still answer
/// reads from memory, and start again only when asked ([`BgWriter::start`],
/// [`BgReader::start`]). Call it in test teardown and on graceful shutdown.
pub fn shutdown() {
    let releases = stop_all();
    if releases.is_empty() {
        return;
    }
    let all = async move {
        for r in releases {
            r.await;
        }
    };
    let _ = cachewright_backends::io::block_on(all, Duration::from_secs(2));
}

/// The async twin of [`shutdown`].
pub async fn shutdown_async() {
    for r in stop_all() {
        r.await;
    }
}

fn stop_all() -> Vec<Pin<Box<dyn Future<Output = ()> + Send>>> {
    let running: Vec<Arc<dyn Stop>> =
        std::mem::take(&mut *RUNNING.lock().unwrap_or_else(|e| e.into_inner()));
    running.iter().filter_map(|s| s.stop()).collect()
}

/// Spawns a scheduler on the current tokio runtime (so paused test time
/// drives it), or on cachewright's own runtime outside one.
fn spawn_task<F: Future<Output = ()> + Send + 'static>(f: F) -> Option<tokio::task::AbortHandle> {
    if let Ok(h) = tokio::runtime::Handle::try_current() {
        return Some(h.spawn(f).abort_handle());
    }
    cachewright_backends::io::handle().map(|h| h.spawn(f).abort_handle())
}

/// Runs `tick` every `period`, the first time at once or after one period.
/// A slow tick delays the next one: ticks never overlap.
async fn every<F, Fut>(period: Duration, immediately: bool, mut tick: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    if !immediately {
        tokio::time::sleep(period).await;
    }
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        tick().await;
    }
}

/// The current value and when it was created (for invalidation checks).
struct Current<T> {
    value: Arc<T>,
    created_ms: u64,
}

struct Shared<T> {
    cache: Cache,
    key: Key,
    hashes: [u64; 2],
    current: RwLock<Option<Current<T>>>,
    checked: AtomicU64,
    /// Held while loading or pulling: single-flight, and no overlapping ticks.
    loading: tokio::sync::Mutex<()>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
    stopped: AtomicBool,
    loads: AtomicU64,
    errors: AtomicU64,
}

impl<T: Send + Sync + 'static> Shared<T> {
    fn new(cache: Cache, key_name: &str) -> Self {
        let key = cache.key("bg", &key_name);
        Shared {
            hashes: [tag_hash(key.entity()), tag_hash(key.as_str())],
            key,
            cache,
            current: RwLock::new(None),
            checked: AtomicU64::new(0),
            loading: tokio::sync::Mutex::new(()),
            task: Mutex::new(None),
            stopped: AtomicBool::new(false),
            loads: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }
    }

    /// The current value, unless an invalidation of the key covers it.
    fn valid(&self) -> Option<Arc<T>> {
        let cur = self.current.read().unwrap_or_else(|e| e.into_inner());
        let c = cur.as_ref()?;
        let marks = self.cache.marks();
        let epoch = marks.epoch();
        if self.checked.load(Ordering::Relaxed) != epoch {
            if !marks.valid(c.created_ms, &self.hashes) {
                return None;
            }
            self.checked.store(epoch, Ordering::Relaxed);
        }
        Some(c.value.clone())
    }

    /// Whatever value is held, invalidated or not (served when a refresh
    /// fails).
    fn any(&self) -> Option<Arc<T>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|c| c.value.clone())
    }

    fn keep(&self, v: Arc<T>) {
        let created_ms = self.cache.clock().precise_ms();
        self.checked
            .store(self.cache.marks().epoch(), Ordering::Relaxed);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Current {
            value: v,
            created_ms,
        });
    }

    fn drop_current(&self) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

impl<T> Shared<T>
where
    T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    /// Takes what the key holds in the cache (another replica's write).
    async fn pull(&self) -> Option<Arc<T>> {
        let v = Arc::new(self.cache.get_async::<T>(&self.key).await?);
        self.keep(v.clone());
        Some(v)
    }
}

/// A background writer: see the module docs and `#[bg_writer]`.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// static VERSION: AtomicU32 = AtomicU32::new(0);
///
/// /// Refreshed every 5 minutes; read from memory everywhere else.
/// #[cachewright::bg_writer(key = "feature_flags", interval = "5m")]
/// fn flags() -> Vec<String> {
///     VERSION.fetch_add(1, Ordering::SeqCst);
///     vec!["new-checkout".to_string()]
/// }
///
/// let current = flags.get().unwrap(); // loads once on first use, then serves from memory
/// assert_eq!(current[0], "new-checkout");
/// assert_eq!(flags.ttl(), Some(std::time::Duration::from_secs(600)), "twice the interval");
/// cachewright::shutdown();
/// ```
pub struct BgWriter<T: 'static> {
    spec: BgSpec,
    loader: BgLoader<T>,
    cache: fn() -> Cache,
    shared: OnceLock<Arc<Shared<T>>>,
}

impl<T> fmt::Debug for BgWriter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BgWriter")
            .field("spec", &self.spec)
            .field("loader", &self.loader)
            .finish_non_exhaustive()
    }
}

struct WriterStop<T: 'static> {
    shared: Arc<Shared<T>>,
    lease: Option<(String, Vec<u8>)>,
}

impl<T: Send + Sync + 'static> Stop for WriterStop<T> {
    fn stop(&self) -> Option<Pin<Box<dyn Future<Output = ()> + Send>>> {
        self.shared.stopped.store(true, Ordering::Release);
        if let Some(t) = self
            .shared
            .task
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            t.abort();
        }
        let (key, token) = self.lease.clone()?;
        let cache = self.shared.cache.clone();
        Some(Box::pin(async move {
            if let Some(first) = cache.layers().first() {
                let _ = first.delete_if(&key, token).await;
            }
        }))
    }
}

impl<T> BgWriter<T>
where
    T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    /// What `#[bg_writer]` expands to.
    #[doc(hidden)]
    pub const fn new(spec: BgSpec, loader: BgLoader<T>, cache: fn() -> Cache) -> Self {
        BgWriter {
            spec,
            loader,
            cache,
            shared: OnceLock::new(),
        }
    }

    fn shared(&'static self) -> &'static Arc<Shared<T>> {
        self.shared
            .get_or_init(|| Arc::new(Shared::new((self.cache)(), self.spec.key)))
    }

    /// The key this writer owns.
    pub fn key(&'static self) -> &'static Key {
        &self.shared().key
    }

    /// The refresh interval (`None`: on demand only).
    pub fn interval(&self) -> Option<Duration> {
        (self.spec.interval_ms > 0).then(|| Duration::from_millis(self.spec.interval_ms))
    }

    /// How long a written value lives in the cache: `ttl`, or twice the
    /// interval (`None`: until evicted, for on-demand writers without `ttl`).
    pub fn ttl(&self) -> Option<Duration> {
        match (self.spec.ttl_ms, self.spec.interval_ms) {
            (Some(t), _) => Some(Duration::from_millis(t)),
            (None, 0) => None,
            (None, i) => Some(Duration::from_millis(i.saturating_mul(2))),
        }
    }

    fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.spec.interval_ms.saturating_mul(2).max(1_000))
    }

    /// How many loads ran (scheduled and on demand), and how many failed.
    pub fn counts(&'static self) -> (u64, u64) {
        let s = self.shared();
        (
            s.loads.load(Ordering::Relaxed),
            s.errors.load(Ordering::Relaxed),
        )
    }

    /// Registers the writer and starts its schedule (unless `interval = 0`).
    /// Called on first use; call it at startup to load before the first
    /// request. Starting twice is harmless.
    ///
    /// # Errors
    ///
    /// [`BgError::Duplicate`] when another writer owns the key in this
    /// process.
    pub fn start(&'static self) -> Result<(), BgError> {
        self.start_with(self.spec.run_immediately)
    }

    fn start_with(&'static self, immediately: bool) -> Result<(), BgError> {
        let s = self.shared();
        {
            let mut writers = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
            let me = self as *const Self as usize;
            match writers.get(s.key.as_str()) {
                Some(&other) if other != me => {
                    return Err(BgError::Duplicate(s.key.as_str().to_owned()))
                }
                _ => {
                    writers.insert(s.key.as_str().to_owned(), me);
                }
            }
        }
        s.stopped.store(false, Ordering::Release);
        if self.spec.interval_ms == 0 {
            return Ok(());
        }
        let mut task = s.task.lock().unwrap_or_else(|e| e.into_inner());
        if task.is_some() {
            return Ok(());
        }
        let token = format!("{:016x}", fastrand::u64(..)).into_bytes();
        let lease_key = format!("{}~lease:{}", s.cache.key_prefix(), self.spec.key);
        let period = Duration::from_millis(self.spec.interval_ms);
        let (lk, tk) = (lease_key.clone(), token.clone());
        let Some(handle) = spawn_task(every(period, immediately, move || {
            let (lk, tk) = (lk.clone(), tk.clone());
            async move { self.tick(&lk, &tk).await }
        })) else {
            return Err(BgError::Unavailable(s.key.as_str().to_owned()));
        };
        *task = Some(handle);
        drop(task);
        RUNNING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(WriterStop {
                shared: s.clone(),
                lease: Some((lease_key, token)),
            }));
        tracing::debug!(
            writer = self.spec.name,
            key = s.key.as_str(),
            "background writer started"
        );
        Ok(())
    }

    /// Stops this writer's schedule (and releases its lease) without
    /// touching others.
    pub fn stop(&'static self) {
        let s = self.shared();
        s.stopped.store(true, Ordering::Release);
        if let Some(t) = s.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            t.abort();
        }
    }

    /// One scheduled tick: load if this replica holds the lease, otherwise
    /// take what the holder wrote.
    async fn tick(&'static self, lease_key: &str, token: &[u8]) {
        let s = self.shared();
        if self.hold_lease(lease_key, token).await {
            let _g = s.loading.lock().await;
            let _ = self.load_locked().await;
        } else {
            let _g = s.loading.lock().await;
            let _ = s.pull().await;
        }
    }

    /// Whether this replica may load this tick. Without a remote layer there
    /// is no other replica to share with; if the lease cannot be checked
    /// (Redis down), each replica loads for itself until it can.
    async fn hold_lease(&'static self, lease_key: &str, token: &[u8]) -> bool {
        let s = self.shared();
        let Some(first) = s.cache.layers().first() else {
            return true;
        };
        let ttl = self.lease_ttl();
        match first.renew_if(lease_key, token.to_vec(), ttl).await {
            Ok(true) => true,
            Ok(false) => matches!(
                first.set_if_absent(lease_key, token.to_vec(), ttl).await,
                Ok(true)
            ),
            Err(_) => true,
        }
    }

    /// Runs the loader (the `loading` lock is held). On failure the previous
    /// value stays.
    async fn load_locked(&'static self) -> Result<Arc<T>, BgError> {
        let s = self.shared();
        let r = match self.loader {
            BgLoader::Async(f) => f().await,
            BgLoader::Sync(f) => match tokio::runtime::Handle::try_current() {
                Ok(h) => h
                    .spawn_blocking(f)
                    .await
                    .unwrap_or_else(|_| Err(BgFailure("the loader panicked".into()))),
                Err(_) => f(),
            },
        };
        s.loads.fetch_add(1, Ordering::Relaxed);
        match r {
            Ok(v) => {
                s.cache.set_async(&s.key, v.clone(), self.ttl()).await;
                let v = Arc::new(v);
                s.keep(v.clone());
                tracing::debug!(
                    writer = self.spec.name,
                    key = s.key.as_str(),
                    "background value written"
                );
                Ok(v)
            }
            Err(BgFailure(message)) => {
                s.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(writer = self.spec.name, key = s.key.as_str(), error = %message, "background load failed; the previous value stays");
                s.any().ok_or(BgError::Failed {
                    key: self.spec.key.to_owned(),
                    message,
                })
            }
        }
    }

    fn ensure_started(&'static self) -> Result<(), BgError> {
        let s = self.shared();
        let started = s.task.lock().unwrap_or_else(|e| e.into_inner()).is_some();
        if started || s.stopped.load(Ordering::Acquire) {
            return Ok(());
        }
        // Started by a read, which loads (or finds) the value itself: the
        // first scheduled load comes one interval later.
        self.start_with(false)
    }

    /// The value, from memory, without waiting; `None` before the first
    /// load or after an invalidation of the key.
    pub fn try_get(&'static self) -> Option<Arc<T>> {
        self.shared().valid()
    }

    /// The value. From memory when there is one; otherwise (before the
    /// first load, or after an invalidation) the key is read from the cache
    /// and, if absent, loaded once, however many callers ask together.
    ///
    /// # Errors
    ///
    /// [`BgError::Failed`] when that load fails and no earlier value exists;
    /// [`BgError::Duplicate`] when another writer owns the key.
    pub async fn get_async(&'static self) -> Result<Arc<T>, BgError> {
        self.ensure_started()?;
        let s = self.shared();
        if let Some(v) = s.valid() {
            return Ok(v);
        }
        let _g = s.loading.lock().await;
        if let Some(v) = s.valid() {
            return Ok(v);
        }
        if let Some(v) = s.pull().await {
            return Ok(v);
        }
        self.load_locked().await
    }

    /// The sync twin of [`get_async`](Self::get_async): from memory without
    /// waiting when there is a value; otherwise it waits for the one load.
    ///
    /// # Errors
    ///
    /// As [`get_async`](Self::get_async).
    pub fn get(&'static self) -> Result<Arc<T>, BgError> {
        if let Some(v) = self.shared().valid() {
            self.ensure_started()?;
            return Ok(v);
        }
        cachewright_backends::io::block_on(self.get_async(), Duration::from_secs(300))
            .unwrap_or_else(|_| Err(BgError::Unavailable(self.spec.key.to_owned())))
    }

    /// Loads now (waiting for a load in progress to finish first), whatever
    /// the schedule.
    ///
    /// # Errors
    ///
    /// As [`get_async`](Self::get_async).
    pub async fn refresh(&'static self) -> Result<Arc<T>, BgError> {
        let _g = self.shared().loading.lock().await;
        self.load_locked().await
    }

    /// Invalidates the key everywhere (every layer and process): the next
    /// read loads afresh.
    pub fn invalidate(&'static self) {
        let s = self.shared();
        s.cache.delete(&s.key);
        s.drop_current();
    }
}

/// A background reader: a local copy of a writer's key, pulled from the
/// writer's cache on its own interval; on a miss it pulls once.
///
/// # Examples
///
/// ```
/// use cachewright::{BgReader, Cache};
/// use std::sync::LazyLock;
///
/// static SHARED: LazyLock<Cache> = LazyLock::new(|| Cache::builder().build());
/// static CONFIG: BgReader<Vec<String>> = BgReader::new("daily_config")
///     .interval_secs(60)
///     .cache(&SHARED);
///
/// // The writer (in this or another process) stores under the same key.
/// SHARED.set(&SHARED.key("bg", &"daily_config"), vec!["on".to_string()], None);
/// assert_eq!(CONFIG.get().unwrap()[0], "on");
/// cachewright::shutdown();
/// ```
pub struct BgReader<T: 'static> {
    key: &'static str,
    interval_ms: u64,
    ttl_ms: Option<u64>,
    run_immediately: bool,
    cache: Option<&'static (dyn AsCache + Sync)>,
    on_error: Option<fn(&BgError)>,
    shared: OnceLock<Arc<Shared<T>>>,
}

impl<T> fmt::Debug for BgReader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BgReader")
            .field("key", &self.key)
            .field("interval_ms", &self.interval_ms)
            .finish_non_exhaustive()
    }
}

impl<T> BgReader<T>
where
    T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    /// A reader of `key` in the default cache, pulling every minute.
    pub const fn new(key: &'static str) -> Self {
        BgReader {
            key,
            interval_ms: 60_000,
            ttl_ms: None,
            run_immediately: true,
            cache: None,
            on_error: None,
            shared: OnceLock::new(),
        }
    }

    /// How often to pull (0: never on a schedule, only on a miss).
    pub const fn interval_secs(mut self, secs: u64) -> Self {
        self.interval_ms = secs.saturating_mul(1000);
        self
    }

    /// How often to pull, in milliseconds.
    pub const fn interval_ms(mut self, ms: u64) -> Self {
        self.interval_ms = ms;
        self
    }

    /// How long the local copy is served without a successful pull
    /// (default twice the interval).
    pub const fn ttl_secs(mut self, secs: u64) -> Self {
        self.ttl_ms = Some(secs.saturating_mul(1000));
        self
    }

    /// Pull at start rather than one interval later (default true).
    pub const fn run_immediately(mut self, on: bool) -> Self {
        self.run_immediately = on;
        self
    }

    /// The writer's cache to pull from (default: the default cache).
    pub const fn cache(mut self, cache: &'static (dyn AsCache + Sync)) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Called when a scheduled pull finds nothing.
    pub const fn on_error(mut self, f: fn(&BgError)) -> Self {
        self.on_error = Some(f);
        self
    }

    fn shared(&'static self) -> &'static Arc<Shared<T>> {
        self.shared.get_or_init(|| {
            let cache = match self.cache {
                Some(c) => c.as_cache(),
                None => crate::global::default_cache().clone(),
            };
            Arc::new(Shared::new(cache, self.key))
        })
    }

    fn fresh(&'static self) -> Option<Arc<T>> {
        let s = self.shared();
        let v = s.valid()?;
        let ttl = self.ttl_ms.unwrap_or(self.interval_ms.saturating_mul(2));
        if ttl > 0 {
            let created = s
                .current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()?
                .created_ms;
            if s.cache.clock().precise_ms() >= created.saturating_add(ttl) {
                return None;
            }
        }
        Some(v)
    }

    /// Starts the pull schedule (done on first use). Harmless twice.
    pub fn start(&'static self) {
        let s = self.shared();
        s.stopped.store(false, Ordering::Release);
        if self.interval_ms == 0 {
            return;
        }
        let mut task = s.task.lock().unwrap_or_else(|e| e.into_inner());
        if task.is_some() {
            return;
        }
        let period = Duration::from_millis(self.interval_ms);
        let immediately = self.run_immediately;
        let handle = spawn_task(every(period, immediately, move || async move {
            let s = self.shared();
            let _g = s.loading.lock().await;
            if s.pull().await.is_none() {
                if let Some(f) = self.on_error {
                    f(&BgError::NoValue(s.key.as_str().to_owned()));
                }
            }
        }));
        *task = handle;
        drop(task);
        RUNNING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::new(WriterStop {
                shared: s.clone(),
                lease: None,
            }));
    }

    /// The local copy, without waiting, if there is one.
    pub fn try_get(&'static self) -> Option<Arc<T>> {
        self.fresh()
    }

    /// The local copy; on a miss, one pull from the writer's cache (however
    /// many callers ask together).
    ///
    /// # Errors
    ///
    /// [`BgError::NoValue`] when the writer's cache has nothing either.
    pub async fn get_async(&'static self) -> Result<Arc<T>, BgError> {
        let s = self.shared();
        if !s.stopped.load(Ordering::Acquire) {
            self.start();
        }
        if let Some(v) = self.fresh() {
            return Ok(v);
        }
        let _g = s.loading.lock().await;
        if let Some(v) = self.fresh() {
            return Ok(v);
        }
        match s.pull().await {
            Some(v) => Ok(v),
            // A stale local copy beats nothing when the source is empty.
            None => s
                .any()
                .ok_or_else(|| BgError::NoValue(s.key.as_str().to_owned())),
        }
    }

    /// The sync twin of [`get_async`](Self::get_async).
    ///
    /// # Errors
    ///
    /// As [`get_async`](Self::get_async).
    pub fn get(&'static self) -> Result<Arc<T>, BgError> {
        if let Some(v) = self.fresh() {
            return Ok(v);
        }
        cachewright_backends::io::block_on(self.get_async(), Duration::from_secs(60))
            .unwrap_or_else(|_| Err(BgError::Unavailable(self.key.to_owned())))
    }
}
