//! Per-thread fronts: a hot entry of plain data is served from a copy on
//! its thread, with no lock. Every change that would stop the shard path
//! from serving an entry must stop its copies too, on every thread; and
//! the eviction policy must see hot entries as hot although their hits no
//! longer reach the shard.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use cachewright::{cache_write, cached, tag, Cache, Clock, ManualClock};

/// A value that is plain data (no drop glue): fronts copy it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Score {
    id: u64,
    version: u64,
}

static CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .name("front-tests")
        .clock(Clock::manual(&CLOCK))
        .build()
});

/// The tests share a clock and a cache: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

static LOADS: AtomicU64 = AtomicU64::new(0);

#[cached(key = "score:<id>", ttl = 60, tags = ["team:<team>"], cache = CACHE, name = "Score")]
fn score(id: u64, team: u64) -> Score {
    let _ = team;
    Score {
        id,
        version: LOADS.fetch_add(1, SeqCst),
    }
}

#[cache_write(invalidate = ["score:<id>"], cache = CACHE)]
fn edit(id: u64) {
    let _ = id;
}

#[cache_write(invalidate = ["score:<id>"], recache = [score(id, team)], cache = CACHE)]
fn edit_and_recache(id: u64, team: u64) {
    let _ = (id, team);
}

/// Calls `score(id, 1)` often enough that its entry has all its second
/// chances and this thread holds a copy; returns the value served.
fn hot(id: u64) -> Score {
    let first = score(id, 1);
    for _ in 0..20 {
        assert_eq!(score(id, 1), first, "a hit");
    }
    first
}

/// Asserts that the next call loads again (the hot copy was dropped).
fn reloads(id: u64, was: Score, what: &str) {
    let loads = LOADS.load(SeqCst);
    let now = score(id, 1);
    assert_ne!(now, was, "{what}: the old value is not served");
    assert_eq!(LOADS.load(SeqCst), loads + 1, "{what}: loaded once");
    assert_eq!(score(id, 1), now, "{what}: then cached again");
}

#[test]
fn hot_hits_are_served_and_counted() {
    let _g = serial();
    let before = CACHE.stats_for("Score").map_or(0, |s| s.hits);
    let loads = LOADS.load(SeqCst);
    hot(100);
    assert_eq!(LOADS.load(SeqCst), loads + 1, "one load, then hits");
    let s = CACHE.stats_for("Score").expect("registered");
    assert_eq!(s.hits - before, 20, "every hit counted, copies' too");
}

#[test]
fn a_write_drops_hot_copies() {
    let _g = serial();
    let was = hot(1);
    edit(1);
    reloads(1, was, "cache_write");
}

#[test]
fn a_recache_replaces_hot_copies() {
    let _g = serial();
    let was = hot(2);
    let loads = LOADS.load(SeqCst);
    edit_and_recache(2, 1);
    assert_eq!(LOADS.load(SeqCst), loads + 1, "recached");
    let now = score(2, 1);
    assert_ne!(now, was, "the recached value, not the old copy");
    assert_eq!(LOADS.load(SeqCst), loads + 1, "served from the recache");
}

#[test]
fn tag_entity_and_clear_drop_hot_copies() {
    let _g = serial();
    let was = hot(3);
    CACHE.invalidate_tags([tag("team", &1)]);
    reloads(3, was, "invalidate_tags");
    let was = hot(3);
    CACHE.invalidate_entity("score", &3);
    reloads(3, was, "invalidate_entity");
    let was = hot(3);
    CACHE.clear();
    reloads(3, was, "clear");
}

#[test]
fn expiry_drops_hot_copies() {
    let _g = serial();
    let was = hot(4);
    CLOCK.advance(Duration::from_secs(59));
    assert_eq!(score(4, 1), was, "fresh a second before the TTL");
    CLOCK.advance(Duration::from_secs(1));
    reloads(4, was, "TTL over");
}

#[test]
fn turning_the_use_case_off_bypasses_hot_copies() {
    let _g = serial();
    let was = hot(5);
    assert!(CACHE.set_enabled("Score", false));
    let loads = LOADS.load(SeqCst);
    let now = score(5, 1);
    CACHE.set_enabled("Score", true);
    assert_ne!(now, was, "off: the function runs");
    assert_eq!(LOADS.load(SeqCst), loads + 1);
}

#[test]
fn a_write_on_another_thread_drops_this_threads_copy() {
    let _g = serial();
    let was = hot(6);
    std::thread::spawn(|| {
        // The other thread holds its own copy, then writes.
        hot(6);
        edit(6);
    })
    .join()
    .expect("writer thread");
    reloads(6, was, "written on another thread");
}

// ---- the policy still sees hot entries as hot ------------------------------------------

static SMALL: LazyLock<Cache> = LazyLock::new(|| Cache::builder().name("front-small").build());
static HOT_LOADS: AtomicU64 = AtomicU64::new(0);
static COLD_LOADS: AtomicU64 = AtomicU64::new(0);

#[cached(key = "hotkey:<id>", ttl = 600, capacity = 64, cache = SMALL, name = "Mixed")]
fn mixed(id: u64) -> Score {
    if id == 0 {
        HOT_LOADS.fetch_add(1, SeqCst);
    } else {
        COLD_LOADS.fetch_add(1, SeqCst);
    }
    Score { id, version: 0 }
}

/// A hot key served from this thread's copy keeps its place while a scan of
/// one-off keys passes through a small use case: the clock hand taking a
/// chance from it drops the copy, and the next hit earns the chance back.
#[test]
fn a_hot_key_served_from_its_copy_survives_a_scan() {
    for _ in 0..50 {
        mixed(0);
    }
    // Each cold key is asked for twice, so that the sketch rates newcomers
    // above an entry whose hits it stopped hearing of.
    for cold in 1..=20_000 {
        mixed(cold);
        mixed(cold);
        mixed(0);
    }
    assert!(COLD_LOADS.load(SeqCst) >= 20_000, "every cold key loaded");
    assert_eq!(HOT_LOADS.load(SeqCst), 1, "the hot key was never evicted");
}

// ---- changes that raise no watermark: only the stripe's version tells ------------------

#[test]
fn a_refresh_replaces_hot_copies_on_every_thread() {
    let _g = serial();
    let was = hot(8);
    let fresh = std::thread::spawn(|| {
        hot(8);
        cachewright::refresh(|| score(8, 1))
    })
    .join()
    .expect("refreshing thread");
    assert_ne!(fresh, was, "the refresh loaded a new value");
    let loads = LOADS.load(SeqCst);
    assert_eq!(score(8, 1), fresh, "this thread's copy gave way");
    assert_eq!(LOADS.load(SeqCst), loads, "served from the store");
}

static HEAVY: LazyLock<Cache> = LazyLock::new(|| Cache::builder().name("front-heavy").build());
static HEAVY_LOADS: AtomicU64 = AtomicU64::new(0);

/// Versions from 1 000 on weigh more than the use case may hold.
fn heft(s: &Score) -> usize {
    if s.version >= 1_000 {
        1 << 30
    } else {
        8
    }
}

#[cached(key = "heavy:<id>", max_bytes = "1MiB", weigher = heft, cache = HEAVY, name = "Heavy")]
fn heavy(id: u64) -> Score {
    Score {
        id,
        version: HEAVY_LOADS.fetch_add(1, SeqCst) * 1_000,
    }
}

/// A refresh whose value is too heavy to keep drops the entry it would have
/// replaced (now out of date): a copy of that entry must not outlive it.
#[test]
fn an_entry_dropped_for_a_too_heavy_value_takes_its_copies() {
    let first = heavy(1);
    for _ in 0..20 {
        assert_eq!(heavy(1), first);
    }
    let refreshed = cachewright::refresh(|| heavy(1));
    assert_eq!(refreshed.version, 1_000, "loaded, too heavy to keep");
    let loads = HEAVY_LOADS.load(SeqCst);
    let now = heavy(1);
    assert_ne!(now, first, "the dropped entry's copy is not served");
    assert_eq!(HEAVY_LOADS.load(SeqCst), loads + 1, "loaded again");
}
