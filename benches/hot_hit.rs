//! Hot-hit cost of a `#[cachewright::cached]` function, against a bare map and
//! against the `cached` and `moka` crates.
//!
//! Every comparison uses the same value, [`User`] (a `u64` and a short heap
//! `String`, so a clone is one small allocation), and the same hot key
//! ([`HOT`]), cached before the measurement starts. Each cached function
//! counts its loader runs; after each bench the count is asserted to be one,
//! so every measured call really was a hit.
//!
//! Groups:
//!
//! * `hot_hit` — one call, one thread:
//!   * `floor`: `std::collections::HashMap<u64, User>` `get` + `clone` (the
//!     baseline of every sync ratio);
//!   * `cachewright_sync`: `#[cachewright::cached(key = "user:<id>", ttl = 300)]`;
//!   * `cachewright_sync_swr`: the same with `swr = 30`;
//!   * `cached_crate`: the `cached` crate's `#[cached(time = 300)]`;
//!   * `moka_sync`: `moka::sync::Cache<u64, User>` with a 300 s TTL, `get`;
//!   * `floor_async/*` and `cachewright_async/*`: an `async fn` doing the map get
//!     (the baseline of the async ratios) and an async
//!     `#[cachewright::cached(..., ttl = 300, swr = 30)]` fn, each measured two
//!     ways: `to_async` (awaited inside criterion's tokio current-thread
//!     runtime) and `poll_noop` (one `Future::poll` with a no-op waker, so
//!     only the future's own cost is left).
//! * `hot_hit_plain` — the same calls on a value that is plain data
//!   ([`Plain`], whose clone allocates nothing), so the ratios show the
//!   cache's own cost: `floor`, `cachewright_sync` (`ttl = 300`),
//!   `cachewright_sync_tags` (with `tags = ["org:<id>"]`), `cached_crate`,
//!   and `floor_async/poll_noop` vs `cachewright_async/poll_noop`. The
//!   issue's bar is stated on these.
//! * `hot_hit_2_threads` — two threads hitting the hot key at once; the time
//!   is the wall time per call of each thread (perfect scaling = the
//!   one-thread time), so it shows cache-line contention on shared state.
//! * `hot_hit_plain_2_threads` — the same on [`Plain`]: `floor` (one
//!   `HashMap<u64, Plain>` shared read-only by both threads through an `Arc`,
//!   get + clone) and `cachewright_sync` (the `hot_hit_plain` function), to
//!   compare with `hot_hit_plain`'s one-thread times without an allocator in
//!   the way.
//! * `hot_hit_arc` — `floor` and `cachewright_sync` again with an `Arc<User>`
//!   value, whose clone is one atomic increment: this leaves the cache's
//!   fixed overhead nearly bare (a supplement; the ratios use `User`).
//! * `pieces` — the parts of a cachewright hit, measured alone, to account for its
//!   time: the coarse clock read, an uncontended `RwLock` read, a relaxed
//!   `fetch_add`, a thread-local read, a `OnceLock<Box<dyn Any>>` get +
//!   downcast, a `User` clone, and the `SipHash` of a `u64` (the floor's hash).
//! * `stampede` — `stampede_1000_tasks_one_key`: 1,000 tokio tasks on a
//!   multi-thread runtime call one async cached fn on one cold key at once
//!   (a fresh key each iteration); the loader sleeps 1 ms and must run
//!   exactly once per iteration, which is asserted.
//!
//! Measurement: the one-thread groups (`hot_hit`, `hot_hit_arc`, `pieces`)
//! measure the bench thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`, Linux; wall
//! time elsewhere), so the time slices another process takes on a shared,
//! oversubscribed machine do not land in the numbers; everything such a
//! thread does runs on it, so on a quiet machine this equals wall time. The
//! multi-thread groups (`hot_hit_2_threads`, `hot_hit_plain_2_threads`,
//! `stampede`) measure wall time.
//!
//! Run: `cargo bench --bench hot_hit -- --warm-up-time 1 --measurement-time 3`.

use std::any::Any;
use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, RandomState};
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier, OnceLock, RwLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use criterion::measurement::Measurement;
use criterion::{black_box, criterion_group, criterion_main, Criterion};

/// The value every cache returns.
#[derive(Clone, Debug, PartialEq)]
struct User {
    id: u64,
    name: String,
}

/// The hot key.
const HOT: u64 = 42;

fn make_user(id: u64) -> User {
    User {
        id,
        name: format!("user-{id}"),
    }
}

/// A value that is plain data: its clone copies 32 bytes, allocating nothing.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Plain {
    id: u64,
    score: u64,
    flags: [u32; 4],
}

fn make_plain(id: u64) -> Plain {
    Plain {
        id,
        score: id * 7,
        flags: [1, 2, 3, 4],
    }
}

// ---- thread CPU time -----------------------------------------------------------

#[path = "common/cpu_time.rs"]
mod cpu_time;

use cpu_time::OneThreadClock;

// ---- the cached functions (each counts its loader runs) ----------------------

static SYNC_LOADS: AtomicU64 = AtomicU64::new(0);
static SYNC_SWR_LOADS: AtomicU64 = AtomicU64::new(0);
static ASYNC_LOADS: AtomicU64 = AtomicU64::new(0);
static CACHED_CRATE_LOADS: AtomicU64 = AtomicU64::new(0);
static ARC_LOADS: AtomicU64 = AtomicU64::new(0);
static STAMPEDE_LOADS: AtomicU64 = AtomicU64::new(0);

#[cachewright::cached(key = "user:<id>", ttl = 300)]
fn cachewright_user(id: u64) -> User {
    SYNC_LOADS.fetch_add(1, Ordering::Relaxed);
    make_user(id)
}

#[cachewright::cached(key = "user:<id>", ttl = 300, swr = 30)]
fn cachewright_user_swr(id: u64) -> User {
    SYNC_SWR_LOADS.fetch_add(1, Ordering::Relaxed);
    make_user(id)
}

#[cachewright::cached(key = "user:<id>", ttl = 300, swr = 30)]
async fn cachewright_user_async(id: u64) -> User {
    ASYNC_LOADS.fetch_add(1, Ordering::Relaxed);
    make_user(id)
}

#[cachewright::cached(key = "user:<id>", ttl = 300)]
fn cachewright_user_arc(id: u64) -> Arc<User> {
    ARC_LOADS.fetch_add(1, Ordering::Relaxed);
    Arc::new(make_user(id))
}

#[cached::proc_macro::cached(time = 300)]
fn cached_crate_user(id: u64) -> User {
    CACHED_CRATE_LOADS.fetch_add(1, Ordering::Relaxed);
    make_user(id)
}

#[cachewright::cached(key = "stampede:<id>", ttl = 300)]
async fn stampede_user(id: u64) -> User {
    STAMPEDE_LOADS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(1)).await;
    make_user(id)
}

static PLAIN_LOADS: AtomicU64 = AtomicU64::new(0);
static PLAIN_TAGS_LOADS: AtomicU64 = AtomicU64::new(0);
static PLAIN_ASYNC_LOADS: AtomicU64 = AtomicU64::new(0);
static PLAIN_CACHED_LOADS: AtomicU64 = AtomicU64::new(0);

#[cachewright::cached(key = "plain:<id>", ttl = 300)]
fn cachewright_plain(id: u64) -> Plain {
    PLAIN_LOADS.fetch_add(1, Ordering::Relaxed);
    make_plain(id)
}

#[cachewright::cached(key = "plain:<id>", ttl = 300, tags = ["org:<id>"])]
fn cachewright_plain_tags(id: u64) -> Plain {
    PLAIN_TAGS_LOADS.fetch_add(1, Ordering::Relaxed);
    make_plain(id)
}

#[cachewright::cached(key = "plain:<id>", ttl = 300)]
async fn cachewright_plain_async(id: u64) -> Plain {
    PLAIN_ASYNC_LOADS.fetch_add(1, Ordering::Relaxed);
    make_plain(id)
}

#[cached::proc_macro::cached(time = 300)]
fn cached_crate_plain(id: u64) -> Plain {
    PLAIN_CACHED_LOADS.fetch_add(1, Ordering::Relaxed);
    make_plain(id)
}

async fn floor_plain_async(map: &HashMap<u64, Plain>, id: u64) -> Plain {
    *map.get(&id).expect("the floor map holds the hot key")
}

/// The async floor: the map get + clone inside an `async fn`.
async fn floor_user_async(map: &HashMap<u64, User>, id: u64) -> User {
    map.get(&id)
        .expect("the floor map holds the hot key")
        .clone()
}

fn floor_map<V>(value: impl Fn(u64) -> V) -> HashMap<u64, V> {
    // A few neighbours, so the map is not a single-entry special case.
    (0..64).map(|id| (id, value(id))).collect()
}

fn moka_cache() -> moka::sync::Cache<u64, User> {
    let cache = moka::sync::Cache::builder()
        .max_capacity(1_000)
        .time_to_live(Duration::from_secs(300))
        .build();
    cache.insert(HOT, make_user(HOT));
    cache
}

/// Asserts that `loads` has counted exactly one loader run: every measured
/// call was a hit.
fn assert_one_load(what: &str, loads: &AtomicU64) {
    assert_eq!(
        loads.load(Ordering::SeqCst),
        1,
        "{what}: the loader ran again, so some measured calls were misses"
    );
}

// ---- polling without an executor --------------------------------------------

struct NoopWake;

impl Wake for NoopWake {
    fn wake(self: Arc<Self>) {}
    fn wake_by_ref(self: &Arc<Self>) {}
}

/// A waker that does nothing (`Waker::noop` without raising the MSRV).
fn noop_waker() -> Waker {
    Waker::from(Arc::new(NoopWake))
}

/// Polls `fut` once; a hot hit completes on its first poll.
#[inline]
fn poll_once<F: Future>(fut: F, cx: &mut Context<'_>) -> F::Output {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(cx) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a hot hit must complete on its first poll"),
    }
}

// ---- hot_hit -----------------------------------------------------------------

fn hot_hit<M: Measurement>(c: &mut Criterion<M>) {
    let map = floor_map(make_user);
    let moka = moka_cache();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    let waker = noop_waker();

    let mut g = c.benchmark_group("hot_hit");

    g.bench_function("floor", |b| {
        b.iter(|| map.get(&black_box(HOT)).expect("hot").clone())
    });

    assert_eq!(cachewright_user(HOT), make_user(HOT));
    g.bench_function("cachewright_sync", |b| {
        b.iter(|| cachewright_user(black_box(HOT)))
    });
    assert_one_load("cachewright_sync", &SYNC_LOADS);

    assert_eq!(cachewright_user_swr(HOT), make_user(HOT));
    g.bench_function("cachewright_sync_swr", |b| {
        b.iter(|| cachewright_user_swr(black_box(HOT)))
    });
    assert_one_load("cachewright_sync_swr", &SYNC_SWR_LOADS);

    assert_eq!(cached_crate_user(HOT), make_user(HOT));
    g.bench_function("cached_crate", |b| {
        b.iter(|| cached_crate_user(black_box(HOT)))
    });
    assert_one_load("cached_crate", &CACHED_CRATE_LOADS);

    g.bench_function("moka_sync", |b| {
        b.iter(|| moka.get(&black_box(HOT)).expect("hot"))
    });

    g.bench_function("floor_async/to_async", |b| {
        b.to_async(&rt)
            .iter(|| floor_user_async(&map, black_box(HOT)))
    });
    g.bench_function("floor_async/poll_noop", |b| {
        let mut cx = Context::from_waker(&waker);
        b.iter(|| poll_once(floor_user_async(&map, black_box(HOT)), &mut cx))
    });

    assert_eq!(rt.block_on(cachewright_user_async(HOT)), make_user(HOT));
    g.bench_function("cachewright_async/to_async", |b| {
        b.to_async(&rt)
            .iter(|| cachewright_user_async(black_box(HOT)))
    });
    g.bench_function("cachewright_async/poll_noop", |b| {
        let mut cx = Context::from_waker(&waker);
        b.iter(|| poll_once(cachewright_user_async(black_box(HOT)), &mut cx))
    });
    assert_one_load("cachewright_async", &ASYNC_LOADS);

    g.finish();
}

// ---- hot_hit_plain -----------------------------------------------------------

fn hot_hit_plain<M: Measurement>(c: &mut Criterion<M>) {
    let map = floor_map(make_plain);
    let waker = noop_waker();
    let mut g = c.benchmark_group("hot_hit_plain");
    #[allow(clippy::clone_on_copy)] // the floor is a get + clone, as for every value
    g.bench_function("floor", |b| {
        b.iter(|| map.get(&black_box(HOT)).expect("hot").clone())
    });
    assert_eq!(cachewright_plain(HOT), make_plain(HOT));
    g.bench_function("cachewright_sync", |b| {
        b.iter(|| cachewright_plain(black_box(HOT)))
    });
    assert_one_load("plain cachewright_sync", &PLAIN_LOADS);
    assert_eq!(cachewright_plain_tags(HOT), make_plain(HOT));
    g.bench_function("cachewright_sync_tags", |b| {
        b.iter(|| cachewright_plain_tags(black_box(HOT)))
    });
    assert_one_load("plain cachewright_sync_tags", &PLAIN_TAGS_LOADS);
    assert_eq!(cached_crate_plain(HOT), make_plain(HOT));
    g.bench_function("cached_crate", |b| {
        b.iter(|| cached_crate_plain(black_box(HOT)))
    });
    assert_one_load("plain cached_crate", &PLAIN_CACHED_LOADS);
    g.bench_function("floor_async/poll_noop", |b| {
        let mut cx = Context::from_waker(&waker);
        b.iter(|| poll_once(floor_plain_async(&map, black_box(HOT)), &mut cx))
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime");
    assert_eq!(rt.block_on(cachewright_plain_async(HOT)), make_plain(HOT));
    g.bench_function("cachewright_async/poll_noop", |b| {
        let mut cx = Context::from_waker(&waker);
        b.iter(|| poll_once(cachewright_plain_async(black_box(HOT)), &mut cx))
    });
    assert_one_load("plain cachewright_async", &PLAIN_ASYNC_LOADS);
    g.finish();
}

// ---- hot_hit_2_threads -------------------------------------------------------

/// Runs `f` `iters` times on each of two threads started together; returns
/// the longer of the two threads' times.
fn two_threads<R>(iters: u64, f: impl Fn() -> R + Sync) -> Duration {
    let barrier = Barrier::new(2);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(f());
                    }
                    start.elapsed()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("bench thread"))
            .max()
            .unwrap_or_default()
    })
}

fn hot_hit_2_threads(c: &mut Criterion) {
    let map = floor_map(make_user);
    let moka = moka_cache();
    // Already warmed by `hot_hit`; harmless if run alone.
    let _ = cachewright_user(HOT);
    let _ = cached_crate_user(HOT);

    let mut g = c.benchmark_group("hot_hit_2_threads");
    g.bench_function("floor", |b| {
        b.iter_custom(|iters| two_threads(iters, || map.get(&black_box(HOT)).expect("hot").clone()))
    });
    g.bench_function("cachewright_sync", |b| {
        b.iter_custom(|iters| two_threads(iters, || cachewright_user(black_box(HOT))))
    });
    g.bench_function("cached_crate", |b| {
        b.iter_custom(|iters| two_threads(iters, || cached_crate_user(black_box(HOT))))
    });
    g.bench_function("moka_sync", |b| {
        b.iter_custom(|iters| two_threads(iters, || moka.get(&black_box(HOT)).expect("hot")))
    });
    g.finish();
    assert_one_load("cachewright_sync", &SYNC_LOADS);
    assert_one_load("cached_crate", &CACHED_CRATE_LOADS);
}

// ---- hot_hit_plain_2_threads -------------------------------------------------

fn hot_hit_plain_2_threads(c: &mut Criterion) {
    // One map, shared read-only by both threads.
    let map = Arc::new(floor_map(make_plain));
    // Already warmed by `hot_hit_plain`; harmless if run alone.
    let _ = cachewright_plain(HOT);

    let mut g = c.benchmark_group("hot_hit_plain_2_threads");
    #[allow(clippy::clone_on_copy)] // the floor is a get + clone, as for every value
    g.bench_function("floor", |b| {
        b.iter_custom(|iters| two_threads(iters, || map.get(&black_box(HOT)).expect("hot").clone()))
    });
    g.bench_function("cachewright_sync", |b| {
        b.iter_custom(|iters| two_threads(iters, || cachewright_plain(black_box(HOT))))
    });
    g.finish();
    assert_one_load("plain cachewright_sync", &PLAIN_LOADS);
}

// ---- hot_hit_arc -------------------------------------------------------------

fn hot_hit_arc<M: Measurement>(c: &mut Criterion<M>) {
    let map = floor_map(|id| Arc::new(make_user(id)));
    let mut g = c.benchmark_group("hot_hit_arc");
    g.bench_function("floor", |b| {
        b.iter(|| Arc::clone(map.get(&black_box(HOT)).expect("hot")))
    });
    assert_eq!(cachewright_user_arc(HOT).id, HOT);
    g.bench_function("cachewright_sync", |b| {
        b.iter(|| cachewright_user_arc(black_box(HOT)))
    });
    g.finish();
    assert_one_load("cachewright_sync_arc", &ARC_LOADS);
}

// ---- pieces ------------------------------------------------------------------

thread_local! {
    static FLAG: Cell<u8> = const { Cell::new(0) };
}

fn pieces<M: Measurement>(c: &mut Criterion<M>) {
    let mut g = c.benchmark_group("pieces");

    let clock = cachewright::Clock::system();
    g.bench_function("clock_now_ms", |b| b.iter(|| black_box(&clock).now_ms()));

    let lock = RwLock::new(7u64);
    g.bench_function("rwlock_read_uncontended", |b| {
        b.iter(|| *black_box(&lock).read().expect("not poisoned"))
    });

    let counter = AtomicU64::new(0);
    g.bench_function("atomic_fetch_add", |b| {
        b.iter(|| black_box(&counter).fetch_add(1, Ordering::Relaxed))
    });

    g.bench_function("thread_local_read", |b| {
        b.iter(|| FLAG.with(|f| black_box(f.get())))
    });

    let slot: OnceLock<Box<dyn Any + Send + Sync>> = OnceLock::new();
    let _ = slot.set(Box::new(7u64));
    g.bench_function("oncelock_dyn_any_downcast", |b| {
        b.iter(|| {
            black_box(&slot)
                .get()
                .and_then(|b| b.downcast_ref::<u64>())
                .copied()
        })
    });

    let user = make_user(HOT);
    g.bench_function("user_clone", |b| b.iter(|| black_box(&user).clone()));

    let sip = RandomState::new();
    g.bench_function("siphash_u64", |b| b.iter(|| sip.hash_one(black_box(HOT))));

    g.finish();
}

// ---- stampede ----------------------------------------------------------------

/// Ids of cold keys; each stampede iteration takes a fresh one.
static NEXT_COLD_ID: AtomicU64 = AtomicU64::new(1_000_000);

const TASKS: usize = 1_000;

fn stampede(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a multi-thread runtime");

    let mut g = c.benchmark_group("stampede");
    g.sample_size(10);
    g.bench_function("stampede_1000_tasks_one_key", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let id = NEXT_COLD_ID.fetch_add(1, Ordering::Relaxed);
                    let before = STAMPEDE_LOADS.load(Ordering::SeqCst);
                    let start = Instant::now();
                    let handles: Vec<_> = (0..TASKS)
                        .map(|_| tokio::spawn(stampede_user(id)))
                        .collect();
                    let mut results = Vec::with_capacity(TASKS);
                    for h in handles {
                        results.push(h.await.expect("stampede task"));
                    }
                    total += start.elapsed();
                    let loads = STAMPEDE_LOADS.load(Ordering::SeqCst) - before;
                    assert_eq!(loads, 1, "key {id}: the loader ran {loads} times");
                    assert!(results.iter().all(|u| u.id == id));
                }
                total
            })
        })
    });
    g.finish();
}

criterion_group! {
    name = one_thread;
    // No plots: rendering them costs more than some of the benches.
    config = Criterion::default()
        .with_measurement(OneThreadClock)
        .without_plots();
    targets = hot_hit, hot_hit_plain, hot_hit_arc, pieces
}
criterion_group! {
    name = many_threads;
    config = Criterion::default().without_plots();
    targets = hot_hit_2_threads, hot_hit_plain_2_threads, stampede
}
criterion_main!(one_thread, many_threads);
