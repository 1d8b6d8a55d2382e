//! Per-use-case counters and their snapshots.

use std::sync::atomic::{
    AtomicU64,
    Ordering::{Acquire, Relaxed, Release},
};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

#[repr(align(128))]
#[derive(Default)]
struct Line(AtomicU64);

/// What an in-process layer holds, for a [`Stats`] snapshot.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Occupancy {
    pub(crate) size: usize,
    pub(crate) capacity: usize,
    /// The use case's key type (`user` for `key = "user:<id>"`).
    pub(crate) key_type: &'static str,
    pub(crate) bytes: u64,
    pub(crate) max_bytes: Option<u64>,
}

/// The hits of one use case, on cache lines each written by one thread only.
///
/// The first [`OWNED`] live threads each own a line index (the same index in
/// every use case) and count with a plain load and store, no locked
/// instruction, since no other thread writes that line: a hot hit then
/// neither makes an atomic read-modify-write nor moves a shared line between
/// cores. Threads beyond them share one line and `fetch_add`. A snapshot sums
/// the lines, so the count is exact (once the counting threads are done; a
/// snapshot taken meanwhile may miss the hits in flight, as any relaxed
/// counter would). Only a line's owner writes it, so a reset cannot zero the
/// lines: it records their sum as a baseline, which later reads subtract.
#[derive(Default)]
struct Hits {
    owned: [Line; OWNED],
    shared: Line,
    base: AtomicU64,
}

/// How many threads at once count hits on a line of their own.
const OWNED: usize = 16;

/// The line index this thread owns in every [`Hits`], or `usize::MAX` if all
/// were taken; given back when the thread ends.
struct Owner(usize);

/// Line indexes handed out so far (the next new one) and those given back.
static FREE: Mutex<(usize, Vec<usize>)> = Mutex::new((0, Vec::new()));

impl Owner {
    fn take() -> Self {
        let mut free = FREE.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(i) = free.1.pop() {
            return Owner(i);
        }
        if free.0 < OWNED {
            free.0 += 1;
            return Owner(free.0 - 1);
        }
        Owner(usize::MAX)
    }
}

impl Drop for Owner {
    fn drop(&mut self) {
        if self.0 < OWNED {
            FREE.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .1
                .push(self.0);
        }
    }
}

thread_local! {
    static OWNER: Owner = Owner::take();
}

impl Hits {
    #[inline]
    fn add(&self) {
        // After this thread's `OWNER` is destroyed (in another thread-local's
        // destructor), count on the shared line.
        let i = OWNER.try_with(|o| o.0).unwrap_or(usize::MAX);
        match self.owned.get(i) {
            // Only this thread writes this line. A line's previous owner gave
            // its index back under the `FREE` lock and this thread took it
            // under that lock, so the previous owner's last store happens
            // before this load.
            Some(line) => line.0.store(line.0.load(Relaxed).wrapping_add(1), Relaxed),
            None => {
                self.shared.0.fetch_add(1, Relaxed);
            }
        }
    }

    fn sum(&self) -> u64 {
        self.owned
            .iter()
            .chain(std::iter::once(&self.shared))
            .fold(0, |a, l| a.wrapping_add(l.0.load(Relaxed)))
    }

    /// The hits since the last reset.
    fn load(&self) -> u64 {
        // Acquire pairs with `reset`'s release: the lines read below are then
        // at least what that reset summed, so the difference is never
        // negative.
        let base = self.base.load(Acquire);
        self.sum().wrapping_sub(base)
    }

    fn reset(&self) {
        self.base.store(self.sum(), Release);
    }
}

/// The live counters of one use case. Hits sit on cache lines of their own,
/// since every hit of every thread writes them.
#[derive(Default)]
pub(crate) struct Counters {
    hits: Hits,
    misses: AtomicU64,
    stale_hits: AtomicU64,
    loads: AtomicU64,
    load_errors: AtomicU64,
    load_ns: AtomicU64,
    refreshes: AtomicU64,
    refreshes_skipped: AtomicU64,
    bypasses: AtomicU64,
    evictions: AtomicU64,
    discarded: AtomicU64,
    oversized: AtomicU64,
    shadow_matches: AtomicU64,
    shadow_mismatches: AtomicU64,
    shadow_errors: AtomicU64,
    fail_safe_served: AtomicU64,
    soft_timeouts: AtomicU64,
    hard_timeouts: AtomicU64,
    lock_waits: AtomicU64,
    lock_waits_expired: AtomicU64,
    negative_hits: AtomicU64,
    remote_hits: AtomicU64,
    invalidations: AtomicU64,
    bus_messages: AtomicU64,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters")
            .field("hits", &self.hits.load())
            .finish_non_exhaustive()
    }
}

impl Counters {
    #[inline]
    pub(crate) fn hit(&self) {
        self.hits.add();
    }
    pub(crate) fn miss(&self) {
        self.misses.fetch_add(1, Relaxed);
    }
    pub(crate) fn stale_hit(&self) {
        self.stale_hits.fetch_add(1, Relaxed);
    }
    pub(crate) fn bus_message(&self) {
        self.bus_messages.fetch_add(1, Relaxed);
    }
    pub(crate) fn invalidation(&self, n: u64) {
        self.invalidations.fetch_add(n, Relaxed);
    }
    pub(crate) fn remote_hit(&self) {
        self.remote_hits.fetch_add(1, Relaxed);
    }
    pub(crate) fn negative_hit(&self) {
        self.negative_hits.fetch_add(1, Relaxed);
    }
    pub(crate) fn load(&self, took: Duration, ok: bool) {
        self.loads.fetch_add(1, Relaxed);
        self.load_ns
            .fetch_add(u64::try_from(took.as_nanos()).unwrap_or(u64::MAX), Relaxed);
        if !ok {
            self.load_errors.fetch_add(1, Relaxed);
        }
    }
    pub(crate) fn refresh(&self) {
        self.refreshes.fetch_add(1, Relaxed);
    }
    pub(crate) fn refresh_skipped(&self) {
        self.refreshes_skipped.fetch_add(1, Relaxed);
    }
    pub(crate) fn bypass(&self) {
        self.bypasses.fetch_add(1, Relaxed);
    }
    pub(crate) fn shadowed(&self, outcome: crate::use_case::Shadowed) {
        use crate::use_case::Shadowed;
        match outcome {
            Shadowed::Match => &self.shadow_matches,
            Shadowed::Mismatch => &self.shadow_mismatches,
            Shadowed::Error => &self.shadow_errors,
        }
        .fetch_add(1, Relaxed);
    }
    pub(crate) fn fail_safe_served(&self) {
        self.fail_safe_served.fetch_add(1, Relaxed);
    }
    pub(crate) fn timed_out(&self, hard: bool) {
        if hard {
            &self.hard_timeouts
        } else {
            &self.soft_timeouts
        }
        .fetch_add(1, Relaxed);
    }
    /// A locked load waited on another process (`expired`: and gave up
    /// waiting, loading itself).
    pub(crate) fn lock_waited(&self, expired: bool) {
        self.lock_waits.fetch_add(1, Relaxed);
        if expired {
            self.lock_waits_expired.fetch_add(1, Relaxed);
        }
    }
    pub(crate) fn oversized(&self) {
        self.oversized.fetch_add(1, Relaxed);
    }
    pub(crate) fn discarded(&self) {
        self.discarded.fetch_add(1, Relaxed);
    }
    pub(crate) fn evicted(&self, n: u64) {
        self.evictions.fetch_add(n, Relaxed);
    }

    /// The cache-wide counters: invalidations made and bus messages heard.
    pub(crate) fn cache_wide(&self) -> (u64, u64) {
        (
            self.invalidations.load(Relaxed),
            self.bus_messages.load(Relaxed),
        )
    }

    pub(crate) fn snapshot(&self, use_case: &str, held: Occupancy) -> Stats {
        let load_ns = self.load_ns.load(Relaxed);
        Stats {
            use_case: use_case.to_string(),
            key_type: held.key_type.to_string(),
            hits: self.hits.load(),
            misses: self.misses.load(Relaxed),
            stale_hits: self.stale_hits.load(Relaxed),
            negative_hits: self.negative_hits.load(Relaxed),
            remote_hits: self.remote_hits.load(Relaxed),
            loads: self.loads.load(Relaxed),
            load_errors: self.load_errors.load(Relaxed),
            load_time: Duration::from_nanos(load_ns),
            refreshes: self.refreshes.load(Relaxed),
            refreshes_skipped: self.refreshes_skipped.load(Relaxed),
            bypasses: self.bypasses.load(Relaxed),
            evictions: self.evictions.load(Relaxed),
            discarded: self.discarded.load(Relaxed),
            oversized: self.oversized.load(Relaxed),
            shadow_matches: self.shadow_matches.load(Relaxed),
            shadow_mismatches: self.shadow_mismatches.load(Relaxed),
            shadow_errors: self.shadow_errors.load(Relaxed),
            fail_safe_served: self.fail_safe_served.load(Relaxed),
            soft_timeouts: self.soft_timeouts.load(Relaxed),
            hard_timeouts: self.hard_timeouts.load(Relaxed),
            lock_waits: self.lock_waits.load(Relaxed),
            lock_waits_expired: self.lock_waits_expired.load(Relaxed),
            size: held.size,
            capacity: held.capacity,
            bytes: held.bytes,
            max_bytes: held.max_bytes,
        }
    }

    pub(crate) fn reset(&self) {
        self.hits.reset();
        for c in [
            &self.misses,
            &self.stale_hits,
            &self.negative_hits,
            &self.remote_hits,
            &self.invalidations,
            &self.bus_messages,
            &self.loads,
            &self.load_errors,
            &self.load_ns,
            &self.refreshes,
            &self.refreshes_skipped,
            &self.bypasses,
            &self.evictions,
            &self.discarded,
            &self.oversized,
            &self.shadow_matches,
            &self.shadow_mismatches,
            &self.shadow_errors,
            &self.fail_safe_served,
            &self.soft_timeouts,
            &self.hard_timeouts,
            &self.lock_waits,
            &self.lock_waits_expired,
        ] {
            c.store(0, Relaxed);
        }
    }
}

/// A snapshot of one use case's counters.
///
/// `hits` counts calls served by the in-process layer, fresh or stale, and
/// `misses` the others (so `hits + misses` is every cached call that was not
/// bypassed); `remote_hits` says how many misses a remote layer served;
/// `stale_hits` and `negative_hits` how many hits were stale or cached
/// absences.
///
/// # Examples
///
/// ```
/// #[cachewright::cached(key = "stats_doc:<x>", name = "StatsDoc")]
/// fn f(x: u32) -> u32 { x }
///
/// f(1);
/// f(1);
/// let s = cachewright::stats_for("StatsDoc").unwrap();
/// assert_eq!((s.hits, s.misses, s.loads), (1, 1, 1));
/// assert_eq!(s.hit_rate(), 0.5);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Default, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// The use case's name.
    pub use_case: String,
    /// Its key type: the text of its key template before the first
    /// placeholder (`user` for `key = "user:<id>"`; empty for the direct
    /// API's row).
    pub key_type: String,
    /// Calls served by the in-process layer (fresh or stale).
    pub hits: u64,
    /// Calls the in-process layer could not serve.
    pub misses: u64,
    /// Hits served stale while a refresh ran.
    pub stale_hits: u64,
    /// Hits on a cached absence (`None`).
    pub negative_hits: u64,
    /// Misses of the in-process layer served by a remote layer (Redis, file).
    pub remote_hits: u64,
    /// Loader runs (misses, refreshes and forced refreshes; not bypasses).
    pub loads: u64,
    /// Loader runs that returned an error (or `Err` from a refresh).
    pub load_errors: u64,
    /// Time spent in loaders, in total.
    pub load_time: Duration,
    /// Background (stale-while-revalidate) refreshes started.
    pub refreshes: u64,
    /// Background refreshes of sync functions not started because the
    /// refresh queue was full (the stale value was served; a later call
    /// tries again).
    pub refreshes_skipped: u64,
    /// Calls that bypassed the cache.
    pub bypasses: u64,
    /// Entries pushed out to respect the capacity.
    pub evictions: u64,
    /// Loaded values not stored because an invalidation came while they
    /// loaded (their load began before it, so they could never be served).
    pub discarded: u64,
    /// Values whose encoded form was larger than the cache's
    /// [`max_value_bytes`](crate::CacheBuilder::max_value_bytes): returned
    /// and kept in process, not written to the remote layers.
    pub oversized: u64,
    /// Shadow reads whose function result equalled the value served.
    pub shadow_matches: u64,
    /// Shadow reads whose function result differed from the value served
    /// (the cache served something the source no longer says).
    pub shadow_mismatches: u64,
    /// Shadow reads whose function failed (nothing to compare).
    pub shadow_errors: u64,
    /// Calls served an expired value by fail-safe (`fail_safe`) because
    /// the loader failed, timed out or marked its result failed.
    pub fail_safe_served: u64,
    /// Calls that stopped waiting for a slow loader at `soft_timeout` and
    /// were served the fail-safe value (the load went on).
    pub soft_timeouts: u64,
    /// Calls that stopped waiting at `hard_timeout`: served the fail-safe
    /// value, or given a timeout error.
    pub hard_timeouts: u64,
    /// Locked loads (`lock`) that found another process loading the key
    /// and waited for it.
    pub lock_waits: u64,
    /// Of those, waits that ended with this process loading after all: the
    /// holder let go of its lease without a value (its load failed) or died,
    /// or `lock_wait` ran out.
    pub lock_waits_expired: u64,
    /// Entries held in the in-process layer.
    pub size: usize,
    /// The most entries the in-process layer holds.
    pub capacity: usize,
    /// The weight of the entries held in the in-process layer, in bytes:
    /// each entry's share of the store (about 128 bytes) plus its value's
    /// weight (its encoded size under a byte bound, its inline size
    /// otherwise, or what the use case's `weigher` says).
    pub bytes: u64,
    /// The use case's own byte bound (`max_bytes`), if set.
    pub max_bytes: Option<u64>,
}

impl Stats {
    /// Share of cached calls served from any layer:
    /// `(hits + remote_hits) / (hits + misses)`, or 0 with no calls.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut s = cachewright::Stats::default();
    /// assert_eq!(s.hit_rate(), 0.0, "no calls");
    /// (s.hits, s.misses, s.remote_hits) = (6, 4, 2);
    /// assert_eq!(s.hit_rate(), 0.8, "6 in process and 2 from a remote layer, of 10");
    /// ```
    pub fn hit_rate(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            (self.hits + self.remote_hits) as f64 / total as f64
        }
    }

    /// Share of the in-process layer's entry capacity in use:
    /// `size / capacity`, or 0 with no capacity.
    ///
    /// # Examples
    ///
    /// ```
    /// let mut s = cachewright::Stats::default();
    /// (s.size, s.capacity) = (250, 1_000);
    /// assert_eq!(s.l1_utilisation(), 0.25);
    /// ```
    pub fn l1_utilisation(&self) -> f64 {
        if self.capacity == 0 {
            0.0
        } else {
            self.size as f64 / self.capacity as f64
        }
    }

    /// The sum of `rows`, named `use_case`.
    fn sum<'a>(use_case: &str, rows: impl IntoIterator<Item = &'a Stats>) -> Stats {
        let mut t = Stats {
            use_case: use_case.to_string(),
            ..Stats::default()
        };
        for s in rows {
            t.hits += s.hits;
            t.misses += s.misses;
            t.stale_hits += s.stale_hits;
            t.negative_hits += s.negative_hits;
            t.remote_hits += s.remote_hits;
            t.loads += s.loads;
            t.load_errors += s.load_errors;
            t.load_time += s.load_time;
            t.refreshes += s.refreshes;
            t.refreshes_skipped += s.refreshes_skipped;
            t.bypasses += s.bypasses;
            t.evictions += s.evictions;
            t.discarded += s.discarded;
            t.oversized += s.oversized;
            t.shadow_matches += s.shadow_matches;
            t.shadow_mismatches += s.shadow_mismatches;
            t.shadow_errors += s.shadow_errors;
            t.fail_safe_served += s.fail_safe_served;
            t.soft_timeouts += s.soft_timeouts;
            t.hard_timeouts += s.hard_timeouts;
            t.lock_waits += s.lock_waits;
            t.lock_waits_expired += s.lock_waits_expired;
            t.size += s.size;
            t.capacity += s.capacity;
            t.bytes += s.bytes;
        }
        t
    }

    /// The mean loader time, or zero with no loads.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let mut s = cachewright::Stats::default();
    /// assert_eq!(s.mean_load_time(), Duration::ZERO);
    /// (s.loads, s.load_time) = (4, Duration::from_millis(100));
    /// assert_eq!(s.mean_load_time(), Duration::from_millis(25));
    /// ```
    pub fn mean_load_time(&self) -> Duration {
        match u32::try_from(self.loads) {
            Ok(0) => Duration::ZERO,
            Ok(n) => self.load_time / n,
            Err(_) => self.load_time / u32::MAX,
        }
    }
}

/// A snapshot of a whole cache, for those without a metrics exporter (the
/// Tiered Cache Manager's `get_stats()`): every use case, their sum, the
/// cache-wide counters, the bus and the layers below. Serializable (to JSON
/// for an admin endpoint, say).
///
/// # Examples
///
/// ```
/// use cachewright::{cached, Cache};
/// use std::sync::LazyLock;
///
/// static SHOP: LazyLock<Cache> = LazyLock::new(|| Cache::builder().name("shop").build());
///
/// #[cached(key = "item:<id>", cache = SHOP, name = "Item")]
/// fn item(id: u32) -> u32 { id }
///
/// item(1);
/// item(1);
/// SHOP.invalidate_entity("item", &1);
/// let snap = SHOP.snapshot();
/// assert_eq!(snap.cache, "shop");
/// assert_eq!((snap.overall.hits, snap.overall.misses), (1, 1));
/// assert_eq!(snap.overall.hit_rate(), 0.5);
/// assert_eq!(snap.invalidations, 1, "cache-wide, not on a use case");
/// let row = snap.use_cases.iter().find(|s| s.use_case == "Item").unwrap();
/// assert_eq!(row.size, 1);
/// assert!(serde_json::to_string(&snap).unwrap().contains("\"invalidations\":1"));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct CacheStats {
    /// The cache's name.
    pub cache: String,
    /// The sum of every use case's row (named `"overall"`): its
    /// [`hit_rate`](Stats::hit_rate) and
    /// [`l1_utilisation`](Stats::l1_utilisation) are the cache's.
    pub overall: Stats,
    /// One row per use case; the direct API's is named `"direct"`.
    pub use_cases: Vec<Stats>,
    /// Tags and entities invalidated through this cache
    /// (`invalidate_tags`, `invalidate_entity`, `#[cache_write]`; a
    /// `delete` is not counted here).
    pub invalidations: u64,
    /// Invalidations received from other processes over the bus.
    pub bus_messages: u64,
    /// The bus's state and counters.
    pub bus: crate::BusStats,
    /// Each layer below the in-process one.
    pub layers: Vec<crate::LayerStats>,
}

impl CacheStats {
    pub(crate) fn new(
        cache: &str,
        use_cases: Vec<Stats>,
        (invalidations, bus_messages): (u64, u64),
        bus: crate::BusStats,
        layers: Vec<crate::LayerStats>,
    ) -> Self {
        CacheStats {
            cache: cache.to_string(),
            overall: Stats::sum("overall", &use_cases),
            use_cases,
            invalidations,
            bus_messages,
            bus,
            layers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    fn hits(c: &Counters) -> u64 {
        c.snapshot("t", Occupancy::default()).hits
    }

    /// Hits from more threads than there are owned lines, all alive at once
    /// (so some count on the shared line), add up exactly; a reset zeroes
    /// the count, and threads started afterwards (taking the lines given
    /// back) count from there.
    #[test]
    fn hits_from_many_threads_sum_exactly_and_reset() {
        const THREADS: usize = OWNED + 4;
        const PER_THREAD: u64 = 10_000;
        let c = Counters::default();
        let count = |threads: usize| {
            let barrier = Barrier::new(threads);
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| {
                        // The first hit takes a line (or none); the barrier
                        // then holds every thread, with its line, until all
                        // have one.
                        c.hit();
                        barrier.wait();
                        for _ in 1..PER_THREAD {
                            c.hit();
                        }
                    });
                }
            });
        };

        count(THREADS);
        assert_eq!(hits(&c), THREADS as u64 * PER_THREAD);
        assert!(
            c.hits.shared.0.load(Relaxed) > 0,
            "some threads shared a line"
        );

        c.reset();
        assert_eq!(hits(&c), 0);
        assert_eq!(format!("{c:?}"), "Counters { hits: 0, .. }");

        count(3);
        c.hit();
        assert_eq!(hits(&c), 3 * PER_THREAD + 1);
        c.reset();
        assert_eq!(hits(&c), 0);
    }
}
