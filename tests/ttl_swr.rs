//! TTL, stale-while-revalidate, negative caching, jitter and adaptive TTL,
//! on a manual clock: nothing here sleeps to make time pass.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use cachewright::{cached, Cache, Clock, ManualClock};

static CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .name("ttl-tests")
        .clock(Clock::manual(&CLOCK))
        .build()
});

/// Tests here share one clock; each takes this lock so that one test's
/// `advance` does not move another's entries.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn stats(name: &str) -> cachewright::Stats {
    CACHE.stats_for(name).expect("use case registered")
}

/// Waits (without any timing assertion) until `cond` holds: background work
/// runs on other threads, and its completion is what is asserted.
fn eventually(mut cond: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("condition not reached");
}

static TTL_CALLS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "ttl:<id>", ttl = 10, cache = CACHE, name = "ttl")]
fn ttl_fn(id: u32) -> u32 {
    TTL_CALLS.fetch_add(1, SeqCst) + id * 100
}

#[test]
fn fresh_until_ttl_then_reloaded() {
    let _g = serial();
    let first = ttl_fn(1);
    assert_eq!(ttl_fn(1), first, "hit inside the TTL");
    CLOCK.advance(Duration::from_millis(9_999));
    assert_eq!(ttl_fn(1), first, "still fresh 1 ms before the TTL");
    CLOCK.advance(Duration::from_millis(1));
    let second = ttl_fn(1);
    assert_ne!(second, first, "reloaded once the TTL is over");
    let s = stats("ttl");
    assert_eq!((s.hits, s.misses, s.loads), (2, 2, 2));
}

static SWR_CALLS: AtomicU32 = AtomicU32::new(0);
static SWR_GATE: Mutex<Option<mpsc::Receiver<()>>> = Mutex::new(None);

#[cached(key = "swr:<id>", ttl = 10, swr = 5, cache = CACHE, name = "swr_sync")]
fn swr_fn(id: u32) -> u32 {
    let n = SWR_CALLS.fetch_add(1, SeqCst);
    if n > 0 {
        // A refresh waits for the test to let it go, proving the caller who
        // triggered it was not kept waiting.
        if let Some(rx) = SWR_GATE.lock().unwrap().as_ref() {
            rx.recv().ok();
        }
    }
    id + n
}

#[test]
fn sync_stale_value_served_while_one_refresh_runs() {
    let _g = serial();
    assert_eq!(swr_fn(7), 7);
    let (tx, rx) = mpsc::channel();
    *SWR_GATE.lock().unwrap() = Some(rx);
    CLOCK.advance(Duration::from_secs(12)); // past the TTL, inside the window
                                            // Many stale reads while the refresh is held: all served the old value,
                                            // without waiting, and only one refresh starts.
    for _ in 0..20 {
        assert_eq!(swr_fn(7), 7);
    }
    assert_eq!(stats("swr_sync").refreshes, 1);
    tx.send(()).unwrap();
    eventually(|| swr_fn(7) == 8);
    assert_eq!(SWR_CALLS.load(SeqCst), 2, "exactly one refresh ran");
    let s = stats("swr_sync");
    assert!(s.stale_hits >= 20);
    // Past TTL + window the stale value is no longer served: a blocking load.
    *SWR_GATE.lock().unwrap() = None;
    CLOCK.advance(Duration::from_secs(16));
    assert_eq!(swr_fn(7), 9);
}

static ASYNC_SWR_CALLS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "aswr:<id>", ttl = 10, swr = 5, cache = CACHE, name = "swr_async")]
async fn swr_async(id: u32) -> Result<u32, String> {
    let n = ASYNC_SWR_CALLS.fetch_add(1, SeqCst);
    if n > 0 {
        // The refresh yields a few times: the stale read must not wait for it.
        for _ in 0..3 {
            tokio::task::yield_now().await;
        }
    }
    Ok(id + n)
}

#[tokio::test(flavor = "current_thread")]
// The guard serialises whole tests (each has its own runtime); nothing else awaits it.
#[allow(clippy::await_holding_lock)]
async fn async_stale_value_served_while_one_refresh_runs() {
    let _g = serial();
    assert_eq!(swr_async(1).await, Ok(1));
    CLOCK.advance(Duration::from_secs(11));
    // On a current-thread runtime the spawned refresh cannot run before the
    // caller yields: both reads are served stale without waiting for it.
    assert_eq!(swr_async(1).await, Ok(1));
    assert_eq!(swr_async(1).await, Ok(1));
    assert_eq!(stats("swr_async").refreshes, 1);
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    assert_eq!(swr_async(1).await, Ok(2));
    assert_eq!(ASYNC_SWR_CALLS.load(SeqCst), 2);
}

static NEG_CALLS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "neg:<id>", ttl = 100, negative_ttl = 5, cache = CACHE, name = "neg")]
fn find(id: u32) -> Option<u32> {
    NEG_CALLS.fetch_add(1, SeqCst);
    (id % 2 == 0).then_some(id)
}

#[test]
fn none_is_cached_for_the_negative_ttl_only() {
    let _g = serial();
    assert_eq!(find(3), None);
    assert_eq!(find(3), None);
    assert_eq!(NEG_CALLS.load(SeqCst), 1, "the absence is cached");
    assert_eq!(stats("neg").negative_hits, 1);
    CLOCK.advance(Duration::from_secs(6));
    assert_eq!(find(3), None);
    assert_eq!(NEG_CALLS.load(SeqCst), 2, "the absence expired after 5 s");
    assert_eq!(find(4), Some(4));
    CLOCK.advance(Duration::from_secs(6));
    assert_eq!(find(4), Some(4));
    assert_eq!(
        NEG_CALLS.load(SeqCst),
        3,
        "a present value keeps its 100 s TTL"
    );
}

static OPT_CALLS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "noneg:<id>", ttl = 100, cache = CACHE)]
fn find_uncached_none(id: u32) -> Option<u32> {
    OPT_CALLS.fetch_add(1, SeqCst);
    (id != 0).then_some(id)
}

#[test]
fn none_is_not_cached_without_negative_ttl() {
    let _g = serial();
    assert_eq!(find_uncached_none(0), None);
    assert_eq!(find_uncached_none(0), None);
    assert_eq!(OPT_CALLS.load(SeqCst), 2);
    assert_eq!(find_uncached_none(1), Some(1));
    assert_eq!(find_uncached_none(1), Some(1));
    assert_eq!(OPT_CALLS.load(SeqCst), 3);
}

static RO_CALLS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "ro:<id>", ttl = 100, negative_ttl = 2, cache = CACHE)]
async fn result_option(id: u32) -> Result<Option<u32>, String> {
    RO_CALLS.fetch_add(1, SeqCst);
    match id {
        0 => Err("db down".into()),
        1 => Ok(None),
        n => Ok(Some(n)),
    }
}

#[tokio::test]
#[allow(clippy::await_holding_lock)]
async fn result_option_caches_ok_none_negatively_and_never_errors() {
    let _g = serial();
    assert!(result_option(0).await.is_err());
    assert!(result_option(0).await.is_err());
    assert_eq!(RO_CALLS.load(SeqCst), 2, "errors are never cached");
    assert_eq!(result_option(1).await, Ok(None));
    assert_eq!(result_option(1).await, Ok(None));
    assert_eq!(RO_CALLS.load(SeqCst), 3);
    CLOCK.advance(Duration::from_secs(3));
    assert_eq!(result_option(1).await, Ok(None));
    assert_eq!(RO_CALLS.load(SeqCst), 4);
    assert_eq!(result_option(5).await, Ok(Some(5)));
    assert_eq!(result_option(5).await, Ok(Some(5)));
    assert_eq!(RO_CALLS.load(SeqCst), 5);
}

static JITTER_CALLS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "jit:<id>", ttl = 100, jitter = 0.5, cache = CACHE, name = "jitter")]
fn jittered(id: u32) -> u32 {
    JITTER_CALLS.fetch_add(1, SeqCst);
    id
}

#[test]
fn jitter_spreads_expiry_of_a_batch() {
    let _g = serial();
    for id in 0..200 {
        jittered(id);
    }
    assert_eq!(JITTER_CALLS.load(SeqCst), 200);
    // TTLs lie in [50 s, 150 s]: at 49 s none has expired, at 100 s some
    // have and some have not, at 151 s all have.
    CLOCK.advance(Duration::from_secs(49));
    for id in 0..200 {
        jittered(id);
    }
    assert_eq!(
        JITTER_CALLS.load(SeqCst),
        200,
        "nothing expires before ttl * (1 - jitter)"
    );
    CLOCK.advance(Duration::from_secs(51));
    for id in 0..200 {
        jittered(id);
    }
    let reloaded = JITTER_CALLS.load(SeqCst) - 200;
    assert!(
        (20..180).contains(&reloaded),
        "a batch written together expires spread out, got {reloaded} of 200 at the nominal TTL"
    );
}

static SMOOTH_CALLS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "smooth:<id>", ttl = 100, smooth_expiry = true, cache = CACHE)]
fn smooth(id: u32) -> u32 {
    SMOOTH_CALLS.fetch_add(1, SeqCst);
    id
}

#[test]
fn smooth_expiry_is_ten_percent_jitter() {
    let _g = serial();
    for id in 0..100 {
        smooth(id);
    }
    CLOCK.advance(Duration::from_secs(89));
    for id in 0..100 {
        smooth(id);
    }
    assert_eq!(
        SMOOTH_CALLS.load(SeqCst),
        100,
        "nothing expires before 90 s"
    );
    CLOCK.advance(Duration::from_secs(22));
    for id in 0..100 {
        smooth(id);
    }
    assert_eq!(
        SMOOTH_CALLS.load(SeqCst),
        200,
        "everything expired after 110 s"
    );
}

static ADAPT_CALLS: AtomicU32 = AtomicU32::new(0);

/// A 404 is cached for 1 s, a "do not cache" result not at all, the rest
/// for the use case's 60 s.
#[cached(key = "adaptive:<code>", ttl = 60, cache = CACHE)]
fn fetch_status(code: u16) -> Result<String, String> {
    ADAPT_CALLS.fetch_add(1, SeqCst);
    match code {
        404 => {
            cachewright::set_ttl(Duration::from_secs(1));
            Ok("not found".into())
        }
        503 => {
            cachewright::do_not_cache();
            Ok("try later".into())
        }
        _ => Ok("ok".into()),
    }
}

#[test]
fn loader_decides_its_own_ttl_or_not_to_cache() {
    let _g = serial();
    fetch_status(404).unwrap();
    fetch_status(503).unwrap();
    fetch_status(200).unwrap();
    assert_eq!(ADAPT_CALLS.load(SeqCst), 3);
    fetch_status(404).unwrap();
    fetch_status(200).unwrap();
    assert_eq!(ADAPT_CALLS.load(SeqCst), 3, "404 and 200 cached");
    fetch_status(503).unwrap();
    assert_eq!(ADAPT_CALLS.load(SeqCst), 4, "503 was not cached");
    CLOCK.advance(Duration::from_secs(2));
    fetch_status(404).unwrap();
    fetch_status(200).unwrap();
    assert_eq!(
        ADAPT_CALLS.load(SeqCst),
        5,
        "the 404's own 1 s TTL ended; 200 still fresh"
    );
}

static FOREVER_CALLS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "forever:<id>", cache = CACHE)]
fn no_ttl(id: u32) -> u32 {
    FOREVER_CALLS.fetch_add(1, SeqCst);
    id
}

#[test]
fn without_ttl_entries_live_until_evicted() {
    let _g = serial();
    no_ttl(1);
    CLOCK.advance(Duration::from_secs(10 * 365 * 24 * 3600));
    no_ttl(1);
    assert_eq!(FOREVER_CALLS.load(SeqCst), 1);
}

static DUR_CALLS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "dur:<id>", ttl = "250ms", cache = CACHE)]
fn short(id: u32) -> u32 {
    DUR_CALLS.fetch_add(1, SeqCst);
    id
}

#[test]
fn duration_strings_are_honoured() {
    let _g = serial();
    short(1);
    CLOCK.advance(Duration::from_millis(249));
    short(1);
    assert_eq!(DUR_CALLS.load(SeqCst), 1);
    CLOCK.advance(Duration::from_millis(1));
    short(1);
    assert_eq!(DUR_CALLS.load(SeqCst), 2);
}

/// A cache of its own: its test steps the wall clock, which no other test
/// should see.
static STEPPED_CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000_000));
static STEPPED: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .name("ttl-stepped")
        .clock(Clock::manual(&STEPPED_CLOCK))
        .build()
});
static STEPPED_CALLS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "stepped:<id>", ttl = 10, cache = STEPPED, name = "stepped")]
fn stepped(id: u32) -> u32 {
    STEPPED_CALLS.fetch_add(1, SeqCst) + id * 100
}

/// Stores one entry of each kind (`#[cached]`, `set`, `get_or_load`), then
/// checks that each lives its 10 s TTL on monotonic time, and no longer.
fn lives_its_ttl_exactly(id: u32) {
    let ttl = Duration::from_secs(10);
    let (set_key, load_key) = (STEPPED.key("set", &id), STEPPED.key("load", &id));
    let first = stepped(id);
    STEPPED.set(&set_key, id, Some(ttl));
    assert_eq!(
        STEPPED.get_or_load(&load_key, ttl, || Ok::<u32, ()>(id)),
        Ok(id)
    );
    STEPPED_CLOCK.advance(ttl - Duration::from_millis(1));
    assert_eq!(stepped(id), first, "fresh until its TTL is over");
    assert_eq!(STEPPED.get::<u32>(&set_key), Some(id));
    assert_eq!(STEPPED.get::<u32>(&load_key), Some(id));
    STEPPED_CLOCK.advance(Duration::from_millis(1));
    assert_ne!(stepped(id), first, "reloaded once its TTL is over");
    assert_eq!(STEPPED.get::<u32>(&set_key), None, "set: expired");
    assert_eq!(STEPPED.get::<u32>(&load_key), None, "get_or_load: expired");
}

#[test]
fn lifetimes_count_on_monotonic_time_whatever_the_wall_clock_does() {
    let now = STEPPED_CLOCK.now_ms();
    // The wall clock stepped an hour ahead: stamps are an hour ahead of
    // monotonic time, lifetimes are not.
    STEPPED_CLOCK.set_wall_ms(now + 3_600_000);
    lives_its_ttl_exactly(1);
    // Then two hours back: stamps stay ahead (they never repeat), lifetimes
    // still count from the store.
    STEPPED_CLOCK.set_wall_ms(STEPPED_CLOCK.now_ms() - 7_200_000);
    lives_its_ttl_exactly(2);
}
