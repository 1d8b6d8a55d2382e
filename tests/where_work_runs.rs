//! Where background work runs: refreshes of sync functions on a bounded
//! pool of threads (not one thread per stale key), and loaders of
//! background writers never on cachewright's I/O runtime, whose threads
//! every connection depends on.
//!
//! Cache time is a manual clock; waiting for background work polls.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::{LazyLock, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use cachewright::{bg_writer, cached, Cache, Clock, ManualClock};

/// Waits (polling) until `cond` holds; fails after ten seconds.
fn eventually(mut cond: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("condition not reached");
}

/// The refresh pool is one per process: its tests take turns.
static SERIAL: Mutex<()> = Mutex::new(());

static CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .namespace("where")
        .clock(Clock::manual(&CLOCK))
        .build()
});

fn stats(name: &str) -> cachewright::Stats {
    CACHE.stats_for(name).unwrap()
}

// ---- a storm of stale keys --------------------------------------------------------------

static STORM_LOADS: AtomicU32 = AtomicU32::new(0);
static STORM_THREADS: LazyLock<Mutex<HashSet<ThreadId>>> = LazyLock::new(Default::default);

#[cached(key = "storm:<id>", ttl = 10, swr = 600, cache = CACHE, name = "storm")]
fn storm(id: u32) -> u32 {
    STORM_THREADS
        .lock()
        .unwrap()
        .insert(std::thread::current().id());
    STORM_LOADS.fetch_add(1, SeqCst);
    id
}

#[test]
fn a_storm_of_stale_keys_is_refreshed_by_a_few_threads_not_one_each() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const KEYS: u32 = 200;
    for id in 0..KEYS {
        assert_eq!(storm(id), id);
    }
    STORM_THREADS.lock().unwrap().clear();
    CLOCK.advance(Duration::from_secs(11));
    for id in 0..KEYS {
        assert_eq!(storm(id), id, "stale, served");
    }
    eventually(|| STORM_LOADS.load(SeqCst) == 2 * KEYS);
    let s = stats("storm");
    assert_eq!(
        (s.refreshes, s.refreshes_skipped),
        (KEYS as u64, 0),
        "{s:?}"
    );
    let threads = STORM_THREADS.lock().unwrap().len();
    assert!(
        (1..=4).contains(&threads),
        "{KEYS} refreshes ran on {threads} threads; the pool has 4"
    );
}

// ---- a full queue skips refreshes, and later calls retry ---------------------------------

static GATE_OPEN: AtomicBool = AtomicBool::new(true);
static GATED_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "gated:<id>", ttl = 10, swr = 600, cache = CACHE, name = "gated")]
fn gated(id: u32) -> u32 {
    while !GATE_OPEN.load(SeqCst) {
        std::thread::sleep(Duration::from_millis(1));
    }
    GATED_LOADS.fetch_add(1, SeqCst);
    id
}

#[test]
fn refreshes_beyond_the_queue_are_skipped_and_retried_later() {
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    const KEYS: u32 = 300;
    for id in 0..KEYS {
        assert_eq!(gated(id), id);
    }
    CLOCK.advance(Duration::from_secs(11));
    GATE_OPEN.store(false, SeqCst);
    for id in 0..KEYS {
        assert_eq!(gated(id), id, "stale, served at once, refreshed or not");
    }
    let s = stats("gated");
    assert!(s.refreshes_skipped > 0, "{s:?}");
    assert_eq!(s.refreshes + s.refreshes_skipped, KEYS as u64, "{s:?}");
    GATE_OPEN.store(true, SeqCst);
    let started = s.refreshes as u32;
    eventually(|| GATED_LOADS.load(SeqCst) == KEYS + started);

    // The skipped keys are still stale: the next calls refresh them.
    for id in 0..KEYS {
        assert_eq!(gated(id), id);
    }
    eventually(|| GATED_LOADS.load(SeqCst) == 2 * KEYS);
    let s = stats("gated");
    assert_eq!(s.refreshes, KEYS as u64, "{s:?}");
}

// ---- background writers' loaders, outside any runtime -----------------------------------

fn thread_name() -> String {
    std::thread::current().name().unwrap_or("").to_owned()
}

#[bg_writer(key = "where_async", interval = "1h", cache = CACHE)]
async fn where_async() -> String {
    thread_name()
}

#[bg_writer(key = "where_sync", interval = "1h", cache = CACHE)]
fn where_sync() -> String {
    thread_name()
}

#[test]
fn a_writer_started_outside_a_runtime_never_loads_on_the_io_runtime() {
    // The I/O runtime is up (the test of it would be empty otherwise).
    assert!(cachewright::backends::io::handle().is_some());
    for name in [where_async.get().unwrap(), where_sync.get().unwrap()] {
        assert!(
            !name.starts_with("cachewright-io"),
            "a loader ran on the I/O runtime's thread {name:?}"
        );
    }
    where_async.stop();
    where_sync.stop();
}
