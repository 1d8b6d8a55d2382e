//! A remote layer as the cache uses it: a [`Backend`] behind a TTL cap, a
//! timeout, a circuit breaker and counters. Every failure ends here: it is
//! counted, logged and turned into "skip this layer"; callers of cached
//! functions never see it.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use cachewright_backends::{Backend, BackendError, Dedupe, Written};

/// The most an entry without a TTL is kept in a layer without a cap.
const UNCAPPED: Duration = Duration::from_secs(30 * 86_400);

use crate::clock::{saturating_ms, Clock};
use crate::key::{stored, Shown};

mod breaker;
mod coalesce;

use breaker::{Breaker, Permit};

use coalesce::{Coalescer, Turn};

/// Settings of one remote layer.
///
/// # Examples
///
/// ```
/// use cachewright::{LayerConfig, Cache};
/// use cachewright::backends::MemoryBackend;
/// use std::time::Duration;
///
/// let cache = Cache::builder()
///     .layer(
///         LayerConfig::new(MemoryBackend::new())
///             .ttl_cap(Duration::from_secs(300))
///             .timeout(Duration::from_millis(50))
///             .dedupe_writes(true),
///     )
///     .build();
/// assert_eq!(cache.layer_stats().len(), 1);
/// ```
#[derive(Clone)]
#[must_use]
pub struct LayerConfig {
    backend: Arc<dyn Backend>,
    ttl_cap: Option<Duration>,
    timeout: Duration,
    failures_to_open: u32,
    retry_after: Duration,
    dedupe: bool,
    coalesce: Option<bool>,
}

impl fmt::Debug for LayerConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerConfig")
            .field("backend", &self.backend.name())
            .field("ttl_cap", &self.ttl_cap)
            .field("timeout", &self.timeout)
            .field("failures_to_open", &self.failures_to_open)
            .field("retry_after", &self.retry_after)
            .field("dedupe", &self.dedupe)
            .field("coalesce_reads", &self.coalesce)
            .finish()
    }
}

impl LayerConfig {
    /// A layer over `backend`: no TTL cap, a 100 ms timeout, a breaker that
    /// opens after 3 consecutive failures and retries every 500 ms; reads
    /// coalesced under concurrency if the backend's batch read is native
    /// (see [`coalesce_reads`](Self::coalesce_reads)).
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
    /// assert_eq!(cache.layer_stats()[0].writes, 1);
    /// ```
    pub fn new(backend: impl Backend) -> Self {
        Self::shared(Arc::new(backend))
    }

    /// A layer over a backend shared with other caches.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, LayerConfig};
    /// use cachewright::backends::MemoryBackend;
    /// use std::sync::Arc;
    ///
    /// let shared = Arc::new(MemoryBackend::new());
    /// let a = Cache::builder().layer(LayerConfig::shared(shared.clone())).build();
    /// let b = Cache::builder().layer(LayerConfig::shared(shared.clone())).build();
    /// let key = a.key("k", &1);
    /// a.set(&key, 5u8, None);
    /// assert_eq!(b.get::<u8>(&key), Some(5));
    /// assert_eq!(shared.len(), 1);
    /// ```
    pub fn shared(backend: Arc<dyn Backend>) -> Self {
        LayerConfig {
            backend,
            ttl_cap: None,
            timeout: Duration::from_millis(100),
            failures_to_open: 3,
            retry_after: Duration::from_millis(500),
            dedupe: false,
            coalesce: None,
        }
    }

    pub(crate) fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The backend's name, when this layer asks for `dedupe_writes` and the
    /// backend cannot skip a write (it would silently write every value in
    /// full).
    pub(crate) fn dedupe_unsupported(&self) -> Option<String> {
        (self.dedupe && !self.backend.dedupes()).then(|| self.backend.name().to_owned())
    }

    /// Turns `dedupe_writes` off for this layer.
    pub(crate) fn drop_dedupe(&mut self) {
        self.dedupe = false;
    }

    /// The longest an entry lives in this layer, whatever its own TTL.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, LayerConfig};
    /// use cachewright::backends::MemoryBackend;
    /// use std::sync::Arc;
    /// use std::time::Duration;
    ///
    /// let remote = Arc::new(MemoryBackend::new());
    /// let layer = LayerConfig::shared(remote.clone()).ttl_cap(Duration::from_millis(50));
    /// let cache = Cache::builder().layer(layer).build();
    /// let key = cache.key("k", &1);
    /// cache.set(&key, 1u8, Some(Duration::from_secs(3_600)));
    /// std::thread::sleep(Duration::from_millis(100));
    /// let other = Cache::builder().layer(LayerConfig::shared(remote)).build();
    /// assert_eq!(other.get::<u8>(&key), None, "the layer kept it 50 ms only");
    /// assert_eq!(cache.get::<u8>(&key), Some(1), "in process: the entry's own TTL");
    /// ```
    pub fn ttl_cap(mut self, cap: Duration) -> Self {
        self.ttl_cap = Some(cap);
        self
    }

    /// How long one operation may take before the layer is skipped for it.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{async_trait, Backend, BackendError};
    /// use cachewright::{Cache, LayerConfig};
    /// use std::time::Duration;
    ///
    /// /// A store that answers reads after a second.
    /// #[derive(Debug)]
    /// struct Slow;
    ///
    /// #[async_trait]
    /// impl Backend for Slow {
    ///     fn name(&self) -> &str { "slow" }
    ///     async fn get(&self, _: &str) -> Result<Option<Vec<u8>>, BackendError> {
    ///         tokio::time::sleep(Duration::from_secs(1)).await;
    ///         Ok(None)
    ///     }
    ///     async fn set(&self, _: &str, _: Vec<u8>, _: Duration) -> Result<(), BackendError> { Ok(()) }
    ///     async fn delete(&self, _: &str) -> Result<bool, BackendError> { Ok(false) }
    /// }
    ///
    /// let cache = Cache::builder()
    ///     .layer(LayerConfig::new(Slow).timeout(Duration::from_millis(20)))
    ///     .build();
    /// assert_eq!(cache.get::<u8>(&cache.key("k", &1)), None);
    /// assert_eq!(cache.layer_stats()[0].timeouts, 1, "skipped after 20 ms");
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// After `failures` consecutive failures the layer is skipped, and tried
    /// again with one probe every `retry_after` until one succeeds.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{async_trait, Backend, BackendError};
    /// use cachewright::{Cache, LayerConfig};
    /// use std::time::Duration;
    ///
    /// /// A store that is down.
    /// #[derive(Debug)]
    /// struct Down;
    ///
    /// #[async_trait]
    /// impl Backend for Down {
    ///     fn name(&self) -> &str { "down" }
    ///     async fn get(&self, _: &str) -> Result<Option<Vec<u8>>, BackendError> {
    ///         Err(BackendError::Config("down".into()))
    ///     }
    ///     async fn set(&self, _: &str, _: Vec<u8>, _: Duration) -> Result<(), BackendError> {
    ///         Err(BackendError::Config("down".into()))
    ///     }
    ///     async fn delete(&self, _: &str) -> Result<bool, BackendError> {
    ///         Err(BackendError::Config("down".into()))
    ///     }
    /// }
    ///
    /// let cache = Cache::builder()
    ///     .layer(LayerConfig::new(Down).breaker(2, Duration::from_secs(60)))
    ///     .build();
    /// for i in 0..5 {
    ///     assert_eq!(cache.get::<u8>(&cache.key("k", &i)), None);
    /// }
    /// let s = &cache.layer_stats()[0];
    /// assert!(s.open);
    /// assert_eq!((s.errors, s.skipped), (2, 3), "two failures, then skipped");
    /// ```
    pub fn breaker(mut self, failures: u32, retry_after: Duration) -> Self {
        self.failures_to_open = failures.max(1);
        self.retry_after = retry_after;
        self
    }

    /// Skip writing a value the layer already holds (by content hash): only
    /// its times and TTL are renewed. Only backends that can read the hash
    /// where they store it offer it (Redis, memory; see
    /// [`Backend::dedupes`](cachewright_backends::Backend::dedupes)): on
    /// others (the file tier, object stores) asking for it is an error from
    /// [`CacheBuilder::try_build`](crate::CacheBuilder::try_build) and
    /// `configure().install()`, and [`CacheBuilder::build`](crate::CacheBuilder::build)
    /// logs it at error level and writes in full.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, LayerConfig};
    /// use cachewright::backends::MemoryBackend;
    ///
    /// let cache = Cache::builder()
    ///     .layer(LayerConfig::new(MemoryBackend::new()).dedupe_writes(true))
    ///     .build();
    /// let key = cache.key("k", &1);
    /// cache.set(&key, "same".to_string(), None);
    /// cache.set(&key, "same".to_string(), None);
    /// let s = &cache.layer_stats()[0];
    /// assert_eq!((s.writes, s.renewals), (1, 1), "the second write only renewed");
    /// ```
    pub fn dedupe_writes(mut self, on: bool) -> Self {
        self.dedupe = on;
        self
    }

    /// Read coalescing. A single-key read made while the layer is idle goes
    /// out at once; reads made while others are outstanding leave together,
    /// at the end of the scheduler's current round, as one batch read (the
    /// backend's [`get_many`](cachewright_backends::Backend::get_many): `MGET` on
    /// Redis). Under concurrency the server and the client then handle one
    /// command per batch instead of one per key; a lone caller pays nothing.
    /// A queued read keeps the layer's timeout, counted from when it was
    /// made.
    ///
    /// By default it is on for backends whose batch read is one round trip
    /// ([`Backend::native_get_many`], as Redis) and off for the others, whose
    /// batch read is one read after another.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, LayerConfig};
    /// use cachewright::backends::MemoryBackend;
    ///
    /// let one_by_one = LayerConfig::new(MemoryBackend::new()).coalesce_reads(false);
    /// let cache = Cache::builder().layer(one_by_one).build();
    /// let keys: Vec<_> = (0..3).map(|i| cache.key("k", &i)).collect();
    /// assert_eq!(cache.get_many::<u8>(&keys), vec![None, None, None]);
    /// assert_eq!(cache.layer_stats()[0].misses, 3);
    /// ```
    pub fn coalesce_reads(mut self, on: bool) -> Self {
        self.coalesce = Some(on);
        self
    }
}

/// A set of a cache's remote layers, by position from the top (layer 0 is
/// the one right below the in-process layer). At most 64 layers are told
/// apart; layers past the 64th share the last position.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LayerSet(u64);

impl LayerSet {
    /// No layer.
    pub(crate) const NONE: LayerSet = LayerSet(0);
    /// Every layer.
    pub(crate) const ALL: LayerSet = LayerSet(u64::MAX);

    fn bit(i: usize) -> u64 {
        1u64 << i.min(63)
    }

    /// The layers above layer `i` (those a hit in layer `i` fills).
    pub(crate) fn above(i: usize) -> LayerSet {
        LayerSet(Self::bit(i) - 1)
    }

    /// This set and layer `i`.
    pub(crate) fn with(self, i: usize) -> LayerSet {
        LayerSet(self.0 | Self::bit(i))
    }

    /// Whether layer `i` is in the set.
    pub(crate) fn contains(self, i: usize) -> bool {
        self.0 & Self::bit(i) != 0
    }

    /// The layers in both sets.
    pub(crate) fn and(self, other: LayerSet) -> LayerSet {
        LayerSet(self.0 & other.0)
    }

    /// This set without the layers of `other`.
    pub(crate) fn without(self, other: LayerSet) -> LayerSet {
        LayerSet(self.0 & !other.0)
    }

    /// The layers in either set.
    pub(crate) fn with_all(self, other: LayerSet) -> LayerSet {
        LayerSet(self.0 | other.0)
    }
}

/// Where a remote layer stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerState {
    /// Its last operation succeeded.
    Up,
    /// Some operations in a row failed, fewer than open its breaker.
    Degraded,
    /// Its breaker is open: it is skipped (and probed now and then).
    BreakerOpen,
}

/// One remote layer's health (see [`Cache::health`](crate::Cache::health)).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct LayerHealth {
    /// The backend's name.
    pub backend: String,
    /// Where it stands.
    pub state: LayerState,
    /// Since when, in milliseconds of the cache's clock (Unix time for the
    /// system clock); `None`: up since the cache was built.
    pub since_ms: Option<u64>,
    /// Operations that failed in a row (0 when up).
    pub failures_in_a_row: u32,
    /// Operations that failed, in total.
    pub errors: u64,
    /// Of those, timeouts.
    pub timeouts: u64,
}

/// A snapshot of one layer's counters.
///
/// # Examples
///
/// ```
/// use cachewright::{Cache, LayerConfig};
/// use cachewright::backends::MemoryBackend;
///
/// let cache = Cache::builder().layer(LayerConfig::new(MemoryBackend::new())).build();
/// let key = cache.key("k", &1);
/// let _ = cache.get::<u8>(&key);
/// let s = &cache.layer_stats()[0];
/// assert_eq!((s.backend.as_str(), s.misses, s.errors, s.open), ("memory", 1, 0, false));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct LayerStats {
    /// The backend's name.
    pub backend: String,
    /// Reads that found a value.
    pub hits: u64,
    /// Reads that found nothing.
    pub misses: u64,
    /// Values written.
    pub writes: u64,
    /// Writes skipped because the same value was there (TTL renewed).
    pub renewals: u64,
    /// Operations that failed (errors and timeouts).
    pub errors: u64,
    /// Of those, timeouts.
    pub timeouts: u64,
    /// Operations not tried because the breaker was open.
    pub skipped: u64,
    /// Stored bytes that did not decode (treated as misses, overwritten).
    pub decode_errors: u64,
    /// Whether the breaker is open now.
    pub open: bool,
}

#[derive(Default)]
struct Counters {
    hits: AtomicU64,
    misses: AtomicU64,
    writes: AtomicU64,
    renewals: AtomicU64,
    errors: AtomicU64,
    timeouts: AtomicU64,
    skipped: AtomicU64,
    decode_errors: AtomicU64,
}

/// The time limits of a read and a write in each of `layers`, added up
/// (saturating: a layer's timeout may be as large as a user likes).
pub(crate) fn budget_of(layers: &[Arc<RemoteLayer>]) -> Duration {
    layers
        .iter()
        .fold(Duration::ZERO, |sum, l| sum.saturating_add(l.budget()))
}

/// One remote layer of a cache.
pub(crate) struct RemoteLayer {
    pub(crate) backend: Arc<dyn Backend>,
    pub(crate) ttl_cap: Option<Duration>,
    timeout: Duration,
    dedupe: bool,
    breaker: Breaker,
    counters: Counters,
    coalescer: Coalescer,
    /// The cache's clock (breaker timing).
    clock: Clock,
}

/// Why an operation produced nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skip {
    /// The breaker is open.
    Open,
    /// Timed out or failed (counted already).
    Failed,
}

impl RemoteLayer {
    pub(crate) fn new(c: LayerConfig, clock: Clock) -> Self {
        RemoteLayer {
            coalescer: Coalescer::new(c.coalesce.unwrap_or_else(|| c.backend.native_get_many())),
            clock,
            backend: c.backend,
            ttl_cap: c.ttl_cap,
            timeout: c.timeout,
            dedupe: c.dedupe,
            breaker: Breaker::new(c.failures_to_open, saturating_ms(c.retry_after)),
            counters: Counters::default(),
        }
    }

    pub(crate) fn stats(&self) -> LayerStats {
        let c = &self.counters;
        LayerStats {
            backend: self.backend.name().to_owned(),
            hits: c.hits.load(Relaxed),
            misses: c.misses.load(Relaxed),
            writes: c.writes.load(Relaxed),
            renewals: c.renewals.load(Relaxed),
            errors: c.errors.load(Relaxed),
            timeouts: c.timeouts.load(Relaxed),
            skipped: c.skipped.load(Relaxed),
            decode_errors: c.decode_errors.load(Relaxed),
            open: self.breaker.is_open(),
        }
    }

    pub(crate) fn health(&self) -> LayerHealth {
        let (state, since_ms, failures_in_a_row) = self.breaker.state();
        LayerHealth {
            backend: self.backend.name().to_owned(),
            state,
            since_ms,
            failures_in_a_row,
            errors: self.counters.errors.load(Relaxed),
            timeouts: self.counters.timeouts.load(Relaxed),
        }
    }

    pub(crate) fn decode_error(&self, key: &str, e: &crate::envelope::DecodeError) {
        self.counters.decode_errors.fetch_add(1, Relaxed);
        // The codec's message may quote the stored value: debug level only.
        tracing::warn!(layer = self.backend.name(), key = %Shown(key), error = e.summary(), "stored bytes do not decode; treated as a miss");
        tracing::debug!(layer = self.backend.name(), key, error = %e, "stored bytes do not decode");
    }

    /// The TTL of a write of an entry that lives `remaining` more.
    pub(crate) fn capped(&self, remaining: Duration) -> Duration {
        remaining.min(self.ttl_cap.unwrap_or(UNCAPPED))
    }

    /// The sum of this layer's time limits for one read and one write.
    pub(crate) fn budget(&self) -> Duration {
        self.timeout.saturating_mul(2)
    }

    /// Records the outcome of an operation (the breaker, the counters, the
    /// log) and turns a failure into a skip. The permit of the operation, if
    /// the caller holds one, is released after the outcome is recorded.
    fn settle<T>(
        &self,
        permit: Option<Permit<'_>>,
        op: &str,
        key: &str,
        r: Result<Result<T, BackendError>, Timeout>,
    ) -> Result<T, Skip> {
        let out = match r {
            Ok(Ok(v)) => {
                self.breaker.success(self.clock.now_ms());
                Ok(v)
            }
            Ok(Err(BackendError::Unsupported { .. })) => {
                // A backend that does not offer an operation is not failing.
                tracing::debug!(
                    layer = self.backend.name(),
                    op,
                    "operation not supported by this layer"
                );
                Err(Skip::Failed)
            }
            Ok(Err(e)) => {
                self.counters.errors.fetch_add(1, Relaxed);
                self.breaker.failure(self.clock.now_ms());
                tracing::warn!(layer = self.backend.name(), op, key = %Shown(key), error = %e, "remote layer error; skipped");
                tracing::debug!(
                    layer = self.backend.name(),
                    op,
                    key,
                    "remote layer error on this key"
                );
                Err(Skip::Failed)
            }
            Err(Timeout) => {
                self.counters.errors.fetch_add(1, Relaxed);
                self.counters.timeouts.fetch_add(1, Relaxed);
                self.breaker.failure(self.clock.now_ms());
                tracing::warn!(layer = self.backend.name(), op, key = %Shown(key), timeout = ?self.timeout, "remote layer timed out; skipped");
                Err(Skip::Failed)
            }
        };
        drop(permit);
        out
    }

    /// Leave to run one operation, held until it is settled or abandoned
    /// (see [`Permit`]).
    fn admit(&self) -> Result<Permit<'_>, Skip> {
        self.breaker.allow(self.clock.now_ms()).ok_or_else(|| {
            self.counters.skipped.fetch_add(1, Relaxed);
            Skip::Open
        })
    }

    fn count_read(&self, found: bool) {
        if found {
            self.counters.hits.fetch_add(1, Relaxed);
        } else {
            self.counters.misses.fetch_add(1, Relaxed);
        }
    }

    fn count_write(&self, w: Written) {
        match w {
            Written::Value => self.counters.writes.fetch_add(1, Relaxed),
            Written::Renewed => self.counters.renewals.fetch_add(1, Relaxed),
        };
    }

    // ---- async ------------------------------------------------------------------

    /// One key's read; coalesced with others' under load (see
    /// [`LayerConfig::coalesce_reads`]).
    pub(crate) async fn get(self: &Arc<Self>, key: &str) -> Result<Option<Vec<u8>>, Skip> {
        let permit = self.admit()?;
        let v = match self.coalescer.enter(self, key, self.timeout) {
            Turn::Direct(in_flight) => {
                let b = self.backend.clone();
                let k = stored(key).into_owned();
                let r = self
                    .timed("get", self.timeout, async move { b.get(&k).await })
                    .await;
                drop(in_flight);
                self.settle(Some(permit), "get", key, r)?
            }
            // The batch read settled (counted) its outcome; a lost flush
            // task (its runtime shut down) is a failure. The flush keeps
            // the waiter's limit; waiting on the answer keeps it too, so no
            // failure of the flush can hold the caller longer. The permit
            // (this read may be the breaker's probe) is held until the
            // batch has settled, or this caller gives up or is cancelled.
            Turn::Queued(rx, limit, id) => {
                let answer = run(limit, rx).await;
                drop(permit);
                match answer {
                    Ok(answer) => answer.unwrap_or(Err(Skip::Failed))?,
                    Err(Timeout) => {
                        // Counted here only if no flush took the read (that
                        // flush counts its own failure).
                        if self.coalescer.withdraw(id) {
                            self.queue_stalled(key);
                        }
                        return Err(Skip::Failed);
                    }
                }
            }
        };
        self.count_read(v.is_some());
        Ok(v)
    }

    pub(crate) fn coalescer(&self) -> &Coalescer {
        &self.coalescer
    }

    /// The batch read of coalesced keys, within `limit`; one outcome for
    /// the breaker and the counters, whatever the number of keys.
    pub(crate) async fn batch_read(
        &self,
        keys: Vec<String>,
        limit: Duration,
    ) -> Result<Vec<Option<Vec<u8>>>, Skip> {
        let n = keys.len();
        let first = keys.first().cloned().unwrap_or_default();
        let b = self.backend.clone();
        let r = self
            .timed("get_many", limit, async move {
                let keys: Vec<String> = keys.iter().map(|k| stored(k).into_owned()).collect();
                match b.get_many(&keys).await {
                    Ok(v) if v.len() != n => Err(BackendError::Refused {
                        backend: b.name().to_owned(),
                        message: format!("a batch read of {n} keys answered {} values", v.len()),
                    }),
                    r => r,
                }
            })
            .await;
        self.settle(None, "get (coalesced)", &first, r)
    }

    /// Reads whose time ran out in the queue, before any batch took them:
    /// counted as timeouts, but not held against the backend (the breaker),
    /// since the backend was never asked; the caller's runtime was too busy
    /// or stopped running the flush.
    pub(crate) fn queue_stalled(&self, key: &str) {
        self.counters.errors.fetch_add(1, Relaxed);
        self.counters.timeouts.fetch_add(1, Relaxed);
        tracing::warn!(layer = self.backend.name(), key = %Shown(key), timeout = ?self.timeout, "read timed out in the coalescing queue; skipped");
    }

    pub(crate) async fn put(&self, key: &str, bytes: Vec<u8>, ttl: Duration) -> Result<(), Skip> {
        let permit = self.admit()?;
        let b = self.backend.clone();
        let k = stored(key).into_owned();
        let dedupe = self.dedupe;
        let r = self
            .timed("set", self.timeout, async move {
                write(&*b, &k, bytes, ttl, dedupe).await
            })
            .await;
        let w = self.settle(Some(permit), "set", key, r)?;
        self.count_write(w);
        Ok(())
    }

    /// Raises watermarks (compare-and-raise: never lowered).
    pub(crate) async fn raise_many(&self, items: Vec<(String, u64, Duration)>) -> Result<(), Skip> {
        let permit = self.admit()?;
        let b = self.backend.clone();
        let first = items.first().map(|i| i.0.clone()).unwrap_or_default();
        let items = items
            .into_iter()
            .map(|(k, at, ttl)| (stored(&k).into_owned(), at, ttl))
            .collect();
        let r = self
            .timed(
                "raise",
                self.timeout,
                async move { b.raise_many(items).await },
            )
            .await;
        self.settle(Some(permit), "raise", &first, r)
    }

    /// How long something must stay in this layer to outlive its entries.
    pub(crate) fn longest(&self) -> Duration {
        self.ttl_cap.unwrap_or(UNCAPPED)
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<bool, Skip> {
        let permit = self.admit()?;
        let b = self.backend.clone();
        let k = stored(key).into_owned();
        let r = self
            .timed("delete", self.timeout, async move { b.delete(&k).await })
            .await;
        self.settle(Some(permit), "delete", key, r)
    }

    pub(crate) async fn set_if_absent(
        &self,
        key: &str,
        bytes: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, Skip> {
        let permit = self.admit()?;
        let b = self.backend.clone();
        let k = stored(key).into_owned();
        let r = self
            .timed("set_if_absent", self.timeout, async move {
                b.set_if_absent(&k, bytes, ttl).await
            })
            .await;
        self.settle(Some(permit), "set_if_absent", key, r)
    }

    pub(crate) async fn get_many(&self, keys: Vec<String>) -> Result<Vec<Option<Vec<u8>>>, Skip> {
        let v = self.get_many_uncounted(keys).await?;
        for x in &v {
            self.count_read(x.is_some());
        }
        Ok(v)
    }

    pub(crate) async fn renew_if(
        &self,
        key: &str,
        token: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, Skip> {
        let permit = self.admit()?;
        let b = self.backend.clone();
        let k = stored(key).into_owned();
        let r = self
            .timed("renew_if", self.timeout, async move {
                b.renew_if(&k, &token, ttl).await
            })
            .await;
        self.settle(Some(permit), "renew_if", key, r)
    }

    pub(crate) async fn delete_if(&self, key: &str, token: Vec<u8>) -> Result<bool, Skip> {
        let permit = self.admit()?;
        let b = self.backend.clone();
        let k = stored(key).into_owned();
        let r = self
            .timed("delete_if", self.timeout, async move {
                b.delete_if(&k, &token).await
            })
            .await;
        self.settle(Some(permit), "delete_if", key, r)
    }

    /// A batch read that does not count as hits or misses (watermarks).
    pub(crate) async fn get_many_uncounted(
        &self,
        keys: Vec<String>,
    ) -> Result<Vec<Option<Vec<u8>>>, Skip> {
        let permit = self.admit()?;
        let b = self.backend.clone();
        let first = keys.first().cloned().unwrap_or_default();
        let r = self
            .timed("get_many", self.timeout, async move {
                let keys: Vec<String> = keys.iter().map(|k| stored(k).into_owned()).collect();
                b.get_many(&keys).await
            })
            .await;
        self.settle(Some(permit), "get_many", &first, r)
    }

    /// [`run`], its time recorded in `cachewright_layer_duration_seconds`
    /// (timeouts included, at the limit): a remote round trip's cost, not
    /// the hot hit's.
    async fn timed<T: Send + 'static>(
        &self,
        op: &'static str,
        limit: Duration,
        fut: impl Future<Output = T> + Send + 'static,
    ) -> Result<T, Timeout> {
        let started = std::time::Instant::now();
        let r = run(limit, fut).await;
        metrics::histogram!(
            "cachewright_layer_duration_seconds",
            "layer" => self.backend.name().to_owned(),
            "op" => op
        )
        .record(started.elapsed().as_secs_f64());
        r
    }

    pub(crate) async fn delete_prefix(&self, prefix: &str) -> Result<u64, Skip> {
        let permit = self.admit()?;
        let b = self.backend.clone();
        let p = prefix.to_owned();
        // Scanning a large keyspace may take longer than one read.
        let r = self
            .timed(
                "delete_prefix",
                self.timeout.saturating_mul(50),
                async move { b.delete_prefix(&p).await },
            )
            .await;
        self.settle(Some(permit), "delete_prefix", prefix, r)
    }
}

async fn write(
    b: &dyn Backend,
    key: &str,
    bytes: Vec<u8>,
    ttl: Duration,
    dedupe: bool,
) -> Result<Written, BackendError> {
    if dedupe {
        let spec = Dedupe {
            header: 0..crate::envelope::HEADER_LEN,
            hash: crate::envelope::HASH_AT,
        };
        b.set_dedupe(key, bytes, ttl, &spec).await
    } else {
        b.set(key, bytes, ttl).await.map(|()| Written::Value)
    }
}

struct Timeout;

/// Runs a backend future with a time limit (see [`crate::spawn::within`]).
async fn run<T: Send + 'static>(
    limit: Duration,
    fut: impl Future<Output = T> + Send + 'static,
) -> Result<T, Timeout> {
    crate::spawn::within(limit, fut).await.ok_or(Timeout)
}
