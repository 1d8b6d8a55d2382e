//! Background writers and readers: values loaded on a schedule by one writer
//! into a (usually shared) cache, and read by every process from its own
//! memory, never on a request's critical path.
//!
//! - A [`BgWriter`] owns one key. It is declared with `#[bg_writer]` on a
//!   loader function, which becomes a `static` of that name; its scheduler
//!   starts on first use (or with [`BgWriter::start`]) and runs until
//!   [`shutdown`]. One writer per key per process (a second one is an error
//!   at start); across processes a lease in the cache's first remote layer
//!   (Redis: `SET NX PX` with a token, renewed every tick and every third
//!   of its TTL during a load, released by [`BgWriter::stop`] and
//!   [`shutdown`]) lets exactly one replica load per interval; the others
//!   pull what it wrote. Only a lease the layer confirmed counts, and a
//!   value is written only if the lease is still ours right before the
//!   write (fenced) and no invalidation of the key came during its load.
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
///
/// # Examples
///
/// ```
/// use cachewright::BgError;
///
/// #[cachewright::bg_writer(key = "broken", interval = 0)]
/// fn broken() -> Result<u32, String> { Err("source down".into()) }
///
/// let err = broken.get().unwrap_err();
/// assert!(matches!(&err, BgError::Failed { message, .. } if message == "source down"));
/// assert_eq!(err.to_string(), "the loader of `broken` failed: source down");
/// ```
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
    /// The writer's cache was closed ([`Cache::close`]): its schedule does
    /// not start again.
    #[error("the cache of `{0}` is closed")]
    Closed(String),
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
    /// Whether it stores into (or reads from) `cache`.
    fn of(&self, cache: &Cache) -> bool;
}

/// The scheduled writers and readers, by the address of their [`Shared`]:
/// one registration each, however often they start and stop.
static RUNNING: LazyLock<Mutex<HashMap<usize, Arc<dyn Stop>>>> = LazyLock::new(Default::default);
static WRITERS: LazyLock<Mutex<HashMap<String, usize>>> = LazyLock::new(Default::default);

/// Stops every scheduled writer and reader task and releases the writers'
/// leases, then delivers what the process-wide caches (the default and the
/// named ones) still owe their remote layers and buses (see
/// [`Cache::flush`]). Safe to call twice; stopped writers and readers still
/// answer reads from memory, and start again only when asked
/// ([`BgWriter::start`], [`BgReader::start`]); the caches keep working.
/// Call it in test teardown and on graceful shutdown; a cache of your own
/// is closed with [`Cache::close`].
///
/// # Blocking
///
/// Waits for the leases' release and for the deliveries at most two
/// seconds each.
///
/// # Examples
///
/// ```
/// #[cachewright::bg_writer(key = "shut", interval = "1m")]
/// fn shut() -> u32 { 1 }
///
/// shut.start().unwrap();
/// cachewright::shutdown();
/// cachewright::shutdown(); // safe twice
/// assert_eq!(*shut.get().unwrap(), 1, "still answers reads");
/// ```
pub fn shutdown() {
    let releases = stop_all(None);
    if !releases.is_empty() {
        let all = async move {
            for r in releases {
                r.await;
            }
        };
        let _ = cachewright_backends::io::block_on(all, Duration::from_secs(2));
    }
    for c in crate::global::installed() {
        c.flush(Duration::from_secs(2));
    }
}

/// The async twin of [`shutdown`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #[cachewright::bg_writer(key = "shut_async", interval = "1m")]
/// async fn shut_async() -> u32 { 1 }
///
/// assert_eq!(*shut_async.get_async().await.unwrap(), 1);
/// cachewright::shutdown_async().await;
/// # }
/// ```
pub async fn shutdown_async() {
    for r in stop_all(None) {
        r.await;
    }
    for c in crate::global::installed() {
        c.flush_async(Duration::from_secs(2)).await;
    }
}

/// Stops the scheduled writers and readers (of `cache` only, if given);
/// their leases' releases, to await.
pub(crate) fn stop_all(cache: Option<&Cache>) -> Vec<Pin<Box<dyn Future<Output = ()> + Send>>> {
    let mut running = RUNNING.lock().unwrap_or_else(|e| e.into_inner());
    let stopping: Vec<Arc<dyn Stop>> = match cache {
        None => std::mem::take(&mut *running).into_values().collect(),
        Some(c) => {
            let ids: Vec<usize> = running
                .iter()
                .filter(|(_, s)| s.of(c))
                .map(|(&id, _)| id)
                .collect();
            ids.iter().filter_map(|id| running.remove(id)).collect()
        }
    };
    drop(running);
    stopping.iter().filter_map(|s| s.stop()).collect()
}

/// Registers `shared`'s schedule for [`shutdown`] (once, however often it
/// starts).
fn register<T: Send + Sync + 'static>(shared: &Arc<Shared<T>>) {
    RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(shared.id())
        .or_insert_with(|| {
            Arc::new(WriterStop {
                shared: shared.clone(),
            })
        });
}

/// Takes `shared`'s schedule off the [`shutdown`] list.
fn unregister<T: Send + Sync + 'static>(shared: &Shared<T>) {
    RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&shared.id());
}

/// Runs `tick` every `period`, the first time at once or after one period.
/// A slow tick delays the next one: ticks never overlap.
async fn every<F, Fut>(period: Duration, immediately: bool, mut tick: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    // A period past any schedule's horizon would overflow the ticker's
    // next deadline: a century is as good as never.
    let period = period.min(Duration::from_secs(100 * 365 * 86_400));
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
    stamp: crate::clock::Stamp,
}

/// A writer's lease: where it lives in the first remote layer, and the
/// token that says this writer holds it. The token changes at each stop, so
/// that a release still under way never drops a lease taken after a restart.
struct Lease {
    key: String,
    token: Mutex<Arc<[u8]>>,
}

fn new_token() -> Arc<[u8]> {
    Arc::from(format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..)).into_bytes())
}

impl Lease {
    fn token(&self) -> Arc<[u8]> {
        self.token.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The token held so far, replaced by a fresh one.
    fn rotate(&self) -> Arc<[u8]> {
        std::mem::replace(
            &mut *self.token.lock().unwrap_or_else(|e| e.into_inner()),
            new_token(),
        )
    }
}

struct Shared<T> {
    cache: Cache,
    key: Key,
    /// A writer's lease (`None` for a reader).
    lease: Option<Lease>,
    hashes: [u64; 2],
    current: RwLock<Option<Current<T>>>,
    checked: AtomicU64,
    /// Held while loading or pulling: single-flight, and no overlapping ticks.
    loading: tokio::sync::Mutex<()>,
    task: Mutex<Option<tokio::task::AbortHandle>>,
    stopped: AtomicBool,
    loads: AtomicU64,
    errors: AtomicU64,
    /// When a load last succeeded and last failed (Unix ms; 0: never), and
    /// the last failure's message.
    last_ok_ms: AtomicU64,
    last_err_ms: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Whether the last load failed (not judged by the times: two loads can
    /// end in one millisecond, and wall clocks step back).
    last_failed: AtomicBool,
}

/// A background writer's health, as [`Cache::health`] reports it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct WriterHealth {
    /// The writer's key (`key = ...`).
    pub key: String,
    /// Whether its schedule runs.
    pub running: bool,
    /// Loads so far (scheduled and on demand).
    pub loads: u64,
    /// Of them, those that failed.
    pub errors: u64,
    /// When a load last succeeded, in Unix milliseconds.
    pub last_success_ms: Option<u64>,
    /// When a load last failed, in Unix milliseconds.
    pub last_failure_ms: Option<u64>,
    /// What the last failure said.
    pub last_error: Option<String>,
    /// Whether its last load failed.
    pub failing: bool,
}

impl WriterHealth {
    /// Whether its last load failed.
    pub fn failing(&self) -> bool {
        self.failing
    }
}

/// What [`Cache::health`] asks of each writer.
pub(crate) trait Report: Send + Sync {
    fn cache(&self) -> &Cache;
    fn report(&self) -> WriterHealth;
}

/// Every writer built so far (a writer is a `static`: it lives as long as
/// the process).
static REPORTS: LazyLock<Mutex<Vec<Arc<dyn Report>>>> = LazyLock::new(Default::default);

/// The health of every writer storing into `cache`.
pub(crate) fn writers_of(cache: &Cache) -> Vec<WriterHealth> {
    REPORTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|r| r.cache().same(cache))
        .map(|r| r.report())
        .collect()
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

struct Reporter<T>(Arc<Shared<T>>, &'static str);

impl<T: Send + Sync + 'static> Report for Reporter<T> {
    fn cache(&self) -> &Cache {
        &self.0.cache
    }
    fn report(&self) -> WriterHealth {
        let s = &self.0;
        let at = |a: &AtomicU64| Some(a.load(Ordering::Relaxed)).filter(|&ms| ms != 0);
        WriterHealth {
            key: self.1.to_owned(),
            running: s.task.lock().unwrap_or_else(|e| e.into_inner()).is_some(),
            loads: s.loads.load(Ordering::Relaxed),
            errors: s.errors.load(Ordering::Relaxed),
            last_success_ms: at(&s.last_ok_ms),
            last_failure_ms: at(&s.last_err_ms),
            last_error: s
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            failing: s.last_failed.load(Ordering::Acquire),
        }
    }
}

/// Lists a writer for [`writers_of`].
fn report<T: Send + Sync + 'static>(shared: &Arc<Shared<T>>, key: &'static str) {
    REPORTS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Arc::new(Reporter(shared.clone(), key)));
}

impl<T> Shared<T> {
    /// Records a load's outcome for health reports.
    fn outcome(&self, error: Option<&str>) {
        match error {
            None => self.last_ok_ms.store(unix_ms(), Ordering::Relaxed),
            Some(e) => {
                self.last_err_ms.store(unix_ms(), Ordering::Relaxed);
                *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(e.to_owned());
            }
        }
        self.last_failed.store(error.is_some(), Ordering::Release);
    }
}

impl<T: Send + Sync + 'static> Shared<T> {
    fn new(cache: Cache, key_name: &str, leased: bool) -> Self {
        let key = cache.key("bg", &key_name);
        let lease = leased.then(|| Lease {
            key: crate::key::lease_key(&cache.key_prefix(), key_name),
            token: Mutex::new(new_token()),
        });
        Shared {
            hashes: [tag_hash(key.entity()), tag_hash(key.as_str())],
            key,
            lease,
            cache,
            current: RwLock::new(None),
            checked: AtomicU64::new(0),
            loading: tokio::sync::Mutex::new(()),
            task: Mutex::new(None),
            stopped: AtomicBool::new(false),
            loads: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            last_ok_ms: AtomicU64::new(0),
            last_err_ms: AtomicU64::new(0),
            last_error: Mutex::new(None),
            last_failed: AtomicBool::new(false),
        }
    }

    /// The current value, unless an invalidation of the key covers it.
    fn valid(&self) -> Option<Arc<T>> {
        let cur = self.current.read().unwrap_or_else(|e| e.into_inner());
        let c = cur.as_ref()?;
        let marks = self.cache.marks();
        let epoch = marks.epoch();
        if self.checked.load(Ordering::Relaxed) != epoch {
            if !marks.valid(c.stamp, &self.hashes) {
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

    /// Where this writer or reader is registered for [`shutdown`].
    fn id(&self) -> usize {
        self as *const Self as usize
    }

    /// Stops the schedule; the release of the lease, if this is a writer,
    /// to be awaited.
    fn halt(&self) -> Option<Pin<Box<dyn Future<Output = ()> + Send>>> {
        self.stopped.store(true, Ordering::Release);
        if let Some(t) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            t.abort();
        }
        let lease = self
            .lease
            .as_ref()
            .filter(|_| !self.cache.layers().is_empty())?;
        let (key, token) = (lease.key.clone(), lease.rotate());
        let cache = self.cache.clone();
        Some(Box::pin(async move {
            if let Some(first) = cache.layers().first() {
                let _ = first.delete_if(&key, token.to_vec()).await;
            }
        }))
    }

    /// Keeps `v`, loaded (or written by another replica) at `stamp`.
    fn keep(&self, v: Arc<T>, stamp: crate::clock::Stamp) {
        self.checked
            .store(self.cache.marks().epoch(), Ordering::Relaxed);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) =
            Some(Current { value: v, stamp });
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
        self.keep(v.clone(), self.cache.clock().stamp());
        Some(v)
    }
}

struct WriterStop<T: 'static> {
    shared: Arc<Shared<T>>,
}

impl<T: Send + Sync + 'static> Stop for WriterStop<T> {
    fn stop(&self) -> Option<Pin<Box<dyn Future<Output = ()> + Send>>> {
        self.shared.halt()
    }
    fn of(&self, cache: &Cache) -> bool {
        self.shared.cache.same(cache)
    }
}

mod reader;
mod writer;

pub use reader::BgReader;
pub use writer::BgWriter;
