//! Early refresh on the injected clock: a hot entry is refreshed in the
//! background before it expires (at a fixed share of its TTL, or by XFetch's
//! rising probability), callers are served at once and never miss, and a
//! key has at most one refresh in flight.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use cachewright::{cached, Cache, Clock, ManualClock};

static CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .name("early")
        .clock(Clock::manual(&CLOCK))
        .build()
});

/// The tests share the clock.
static SERIAL: Mutex<()> = Mutex::new(());

fn eventually(mut cond: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("condition not reached");
}

fn stats(name: &str) -> cachewright::Stats {
    CACHE.stats_for(name).expect("used")
}

static FIXED_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "fixed:<id>", ttl = 10, early_refresh = 0.8, cache = CACHE, name = "Fixed")]
fn fixed(id: u32) -> u32 {
    FIXED_LOADS.fetch_add(1, SeqCst) + id
}

#[test]
fn a_hit_past_80_percent_of_the_ttl_refreshes_before_expiry_and_nobody_misses() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(fixed(100), 100);
    CLOCK.advance(Duration::from_millis(7_900));
    assert_eq!(fixed(100), 100, "a hit before 80 %: nothing more");
    std::thread::sleep(Duration::from_millis(20));
    assert_eq!(FIXED_LOADS.load(SeqCst), 1);
    CLOCK.advance(Duration::from_millis(200)); // 8.1 s of 10
    assert_eq!(fixed(100), 100, "due: served the fresh value at once");
    eventually(|| FIXED_LOADS.load(SeqCst) == 2);
    eventually(|| fixed(100) == 101);
    // Past the first entry's expiry: the refreshed one serves.
    CLOCK.advance(Duration::from_millis(2_000));
    assert_eq!(fixed(100), 101);
    let s = stats("Fixed");
    assert_eq!(s.misses, 1, "only the first call missed");
    assert_eq!(s.stale_hits, 0, "early refresh serves fresh values");
    assert!(s.refreshes >= 1);
}

static SLOW_LOADS: AtomicU32 = AtomicU32::new(0);
static SLOW_RUNNING: AtomicU32 = AtomicU32::new(0);
static SLOW_MAX: AtomicU32 = AtomicU32::new(0);
static GATE: Mutex<()> = Mutex::new(());

#[cached(key = "slow:<id>", ttl = 10, early_refresh = 0.5, cache = CACHE, name = "Slow")]
fn slow(id: u32) -> u32 {
    let n = SLOW_RUNNING.fetch_add(1, SeqCst) + 1;
    SLOW_MAX.fetch_max(n, SeqCst);
    // Held while the test keeps the gate.
    drop(GATE.lock().unwrap_or_else(|e| e.into_inner()));
    SLOW_RUNNING.fetch_sub(1, SeqCst);
    SLOW_LOADS.fetch_add(1, SeqCst) + id
}

#[test]
fn many_due_hits_start_one_refresh() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(slow(0), 0);
    CLOCK.advance(Duration::from_secs(6));
    let gate = GATE.lock().unwrap();
    // 8 threads, 200 due hits each, while the refresh is held.
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..200 {
                    assert_eq!(slow(0), 0, "served the held value at once");
                }
            });
        }
    });
    eventually(|| SLOW_RUNNING.load(SeqCst) == 1);
    drop(gate);
    eventually(|| SLOW_LOADS.load(SeqCst) == 2);
    assert_eq!(
        SLOW_MAX.load(SeqCst),
        1,
        "never two loads of the key at once"
    );
    eventually(|| slow(0) == 1);
    assert_eq!(SLOW_LOADS.load(SeqCst), 2, "one refresh for 1 600 due hits");
}

static X_LOADS: AtomicU32 = AtomicU32::new(0);
static X_RUNNING: AtomicU32 = AtomicU32::new(0);
static X_MAX: AtomicU32 = AtomicU32::new(0);

#[cached(key = "x:<id>", ttl = 10, early_refresh = "xfetch", cache = CACHE, name = "XFetch")]
fn xfetch(id: u32) -> u32 {
    let n = X_RUNNING.fetch_add(1, SeqCst) + 1;
    X_MAX.fetch_max(n, SeqCst);
    // A load takes about 20 ms (real time): XFetch's δ.
    std::thread::sleep(Duration::from_millis(20));
    X_RUNNING.fetch_sub(1, SeqCst);
    X_LOADS.fetch_add(1, SeqCst) + id
}

#[test]
fn xfetch_refreshes_before_expiry_and_one_at_a_time() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(xfetch(0), 0);
    // Far from expiry (5 s left, 250 δ): never due.
    CLOCK.advance(Duration::from_secs(5));
    for _ in 0..1000 {
        xfetch(0);
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(X_LOADS.load(SeqCst), 1, "no refresh far from expiry");
    // Walk to expiry in 5 ms steps, 20 hits per step: a refresh starts
    // before the entry expires (the chance that none does is below 1e-30).
    let mut left_at_refresh = None;
    for step in 0..1000 {
        let left = 5_000 - step * 5;
        if left == 0 {
            break;
        }
        for _ in 0..20 {
            assert_eq!(xfetch(0), 0, "served fresh while it refreshes");
        }
        // Counted by the hit that starts it, on this thread.
        if stats("XFetch").refreshes > 0 {
            left_at_refresh = Some(left);
            break;
        }
        CLOCK.advance(Duration::from_millis(5));
    }
    let left = left_at_refresh.expect("a refresh started before expiry");
    assert!(left > 0 && left < 5_000, "{left} ms before expiry");
    eventually(|| X_LOADS.load(SeqCst) == 2);
    assert_eq!(X_MAX.load(SeqCst), 1, "one load of the key at a time");
    let s = stats("XFetch");
    assert_eq!((s.misses, s.stale_hits), (1, 0));
}

static RACE_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "race:<id>", ttl = 10, early_refresh = 0.5, cache = CACHE, name = "Race")]
fn race(id: u32) -> u32 {
    RACE_LOADS.fetch_add(1, SeqCst) + id
}

#[test]
fn hits_that_saw_the_old_entry_due_do_not_refresh_it_again() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    race(0);
    CLOCK.advance(Duration::from_secs(6));
    // Hits keep coming while the one refresh runs and ends: those that saw
    // the old entry due and reach the key after the refresh find it fresh.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..2000 {
                    race(0);
                }
            });
        }
    });
    eventually(|| RACE_LOADS.load(SeqCst) >= 2);
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(RACE_LOADS.load(SeqCst), 2, "one refresh for 8 000 hits");
}

static SHORT_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "short:<id>", ttl = 60, negative_ttl = 5, early_refresh = 0.8, cache = CACHE, name = "Short")]
fn short(id: u32) -> Option<u32> {
    SHORT_LOADS.fetch_add(1, SeqCst);
    if id == 0 {
        return None; // cached 5 s: shorter than a fifth of the TTL
    }
    cachewright::set_ttl(Duration::from_secs(5));
    Some(id)
}

#[test]
fn entries_shorter_than_the_ttl_are_refreshed_at_80_percent_of_their_own_life() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for id in [0, 1] {
        let before = SHORT_LOADS.load(SeqCst);
        for _ in 0..6 {
            short(id);
        }
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(
            SHORT_LOADS.load(SeqCst),
            before + 1,
            "not due from the start"
        );
        CLOCK.advance(Duration::from_millis(4_100)); // 82 % of 5 s
        short(id);
        eventually(|| SHORT_LOADS.load(SeqCst) == before + 2);
    }
}
