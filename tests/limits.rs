//! Configuration at its limits never makes a call fail: durations as large
//! as `Duration::MAX`, and a tokio runtime built without a time driver.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::LazyLock;
use std::time::Duration;

use cachewright::backends::MemoryBackend;
use cachewright::{cached, Cache, Clock, LayerConfig, ManualClock};

// ---- durations as large as a user can write -----------------------------------------

static HUGE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .namespace("huge")
        .local_ttl(Duration::MAX)
        .layer(
            LayerConfig::new(MemoryBackend::new())
                .timeout(Duration::MAX)
                .ttl_cap(Duration::MAX)
                .breaker(1, Duration::MAX),
        )
        .layer(LayerConfig::new(MemoryBackend::new()).timeout(Duration::MAX))
        .without_bus()
        .build()
});
static HUGE_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "sync:<id>", ttl = 60, cache = HUGE)]
fn huge_sync(id: u32) -> u32 {
    HUGE_LOADS.fetch_add(1, SeqCst);
    id
}

#[cached(key = "async:<id>", ttl = 60, layers = remote, cache = HUGE)]
async fn huge_async(id: u32) -> Result<u32, String> {
    HUGE_LOADS.fetch_add(1, SeqCst);
    Ok(id)
}

#[test]
fn duration_max_everywhere_is_a_long_time_not_a_panic() {
    assert_eq!(huge_sync(1), 1);
    assert_eq!(huge_sync(1), 1);
    HUGE.invalidate_entity("sync", &1);
    assert_eq!(huge_sync(1), 1);
    assert_eq!(HUGE_LOADS.load(SeqCst), 2, "loaded, served, loaded again");
    HUGE.clear();

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(huge_async(2).await.unwrap(), 2);
        assert_eq!(huge_async(2).await.unwrap(), 2);
        HUGE.invalidate_entity_async("async", &2).await;
    });
    assert_eq!(HUGE_LOADS.load(SeqCst), 3);
    let l = &HUGE.layer_stats()[0];
    assert!(l.hits >= 1 && l.errors == 0, "{l:?}");
}

// ---- a runtime without timers ---------------------------------------------------------

static PLAIN_CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static PLAIN: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .namespace("plain")
        .clock(Clock::manual(&PLAIN_CLOCK))
        .layer(LayerConfig::new(MemoryBackend::new()))
        .without_bus()
        .build()
});
static PLAIN_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "item:<id>", ttl = 60, layers = remote, cache = PLAIN)]
async fn plain(id: u32) -> Result<u32, String> {
    PLAIN_LOADS.fetch_add(1, SeqCst);
    Ok(id)
}

#[cached(key = "fresh:<id>", ttl = 1, swr = 60, cache = PLAIN)]
async fn refreshed(id: u32) -> Result<u32, String> {
    REFRESHED_LOADS.fetch_add(1, SeqCst);
    Ok(id)
}
static REFRESHED_LOADS: AtomicU32 = AtomicU32::new(0);

/// `Builder::new_current_thread().build()` without `enable_all`: no time
/// driver, on which any tokio timer panics. The layer's time limits are
/// kept elsewhere; the layer is used, without errors.
#[test]
fn a_runtime_without_a_time_driver_still_uses_the_layers() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(plain(1).await.unwrap(), 1);
        assert_eq!(plain(1).await.unwrap(), 1);
        PLAIN.invalidate_entity_async("item", &1).await;
        assert_eq!(plain(1).await.unwrap(), 1);
        assert_eq!(refreshed(1).await.unwrap(), 1);
        PLAIN_CLOCK.advance(Duration::from_secs(2));
        assert_eq!(refreshed(1).await.unwrap(), 1, "stale, served");
    });
    // The refresh runs in the background, on a runtime with timers.
    for _ in 0..1000 {
        if REFRESHED_LOADS.load(SeqCst) == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(
        REFRESHED_LOADS.load(SeqCst),
        2,
        "refreshed in the background"
    );
    assert_eq!(
        PLAIN_LOADS.load(SeqCst),
        2,
        "loaded, read from the layer, loaded"
    );
    let l = PLAIN.layer_stats()[0].clone();
    assert!(l.hits >= 1 && l.writes >= 2 && l.errors == 0, "{l:?}");

    // A multi-thread runtime without timers, too.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .build()
        .unwrap();
    rt.block_on(async { assert_eq!(plain(1).await.unwrap(), 1) });
    let after = &PLAIN.layer_stats()[0];
    assert_eq!((after.hits, after.errors), (l.hits + 1, 0), "{after:?}");
}

// ---- values too large for the remote layers ------------------------------------------------

static PAGES_LOADS: AtomicU32 = AtomicU32::new(0);
static SMALL: LazyLock<(std::sync::Arc<MemoryBackend>, Cache)> = LazyLock::new(|| {
    let shared = std::sync::Arc::new(MemoryBackend::new());
    let cache = Cache::builder()
        .namespace("small")
        .max_value_bytes(1_024)
        .layer(LayerConfig::shared(shared.clone()))
        .build();
    (shared, cache)
});

#[cached(key = "page:<id>", ttl = 60, cache = SMALL.1, name = "Page")]
fn page(id: u32) -> String {
    PAGES_LOADS.fetch_add(1, SeqCst);
    format!("{id}").repeat(id as usize)
}

/// A value whose encoded form is over the limit is returned and kept in
/// process, but never written to the remote layers; a small one is.
#[test]
fn an_oversized_value_is_returned_not_written_remotely() {
    let (shared, cache) = &*SMALL;
    assert_eq!(page(2_000).len(), 8_000);
    assert_eq!(page(2_000).len(), 8_000, "served from process memory");
    assert_eq!(PAGES_LOADS.load(SeqCst), 1);
    let s = cache.stats_for("Page").unwrap();
    assert_eq!((s.oversized, s.hits), (1, 1), "{s:?}");
    assert_eq!(cache.layer_stats()[0].writes, 0);
    page(3);
    assert_eq!(cache.layer_stats()[0].writes, 1, "a small value is written");
    // Bytes over the limit in a layer are never decoded: another cache with
    // a larger limit wrote them, this one reads a miss.
    let big = Cache::builder()
        .namespace("small")
        .layer(LayerConfig::shared(shared.clone()))
        .build();
    let key = big.key("blob", &1);
    big.set(&key, "x".repeat(5_000), None);
    assert_eq!(cache.get::<String>(&key), None);
    assert_eq!(cache.layer_stats()[0].decode_errors, 1);
}

/// `exists` judges a remote entry as `get` does: bytes over this cache's
/// limit, written by a cache with a larger one, do not exist for it (it
/// said they did while `get` read a miss).
#[test]
fn an_oversized_remote_entry_does_not_exist() {
    let shared = std::sync::Arc::new(MemoryBackend::new());
    let over = |max| {
        Cache::builder()
            .namespace("exists-small")
            .max_value_bytes(max)
            .layer(LayerConfig::shared(shared.clone()))
            .build()
    };
    let (small, big) = (over(1_024), over(1 << 20));
    let (large, short) = (big.key("blob", &1), big.key("blob", &2));
    big.set(&large, "x".repeat(5_000), None);
    big.set(&short, "x".to_string(), None);
    assert_eq!(small.get::<String>(&large), None, "over the limit: a miss");
    assert!(!small.exists(&large), "and absent, as get says");
    assert!(small.exists(&short), "a small one exists");
    let fresh = over(1 << 20);
    assert!(
        fresh.exists(&large),
        "for a cache with a larger limit, it exists"
    );
}

// ---- long ids ----------------------------------------------------------------------------------

static LONG_LOADS: AtomicU32 = AtomicU32::new(0);
static LONG_SHARED: LazyLock<std::sync::Arc<MemoryBackend>> = LazyLock::new(Default::default);
static LONG_A: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .namespace("long")
        .layer(LayerConfig::shared(LONG_SHARED.clone()))
        .build()
});

#[cached(key = "search:<query>", ttl = 60, cache = LONG_A, name = "Search")]
fn search(query: &str) -> usize {
    LONG_LOADS.fetch_add(1, SeqCst);
    query.len()
}

/// A 2 000-character id is stored under a short hashed key, found again by
/// the direct API under its full URN, and never confused with a neighbour.
#[test]
fn long_ids_are_stored_under_short_keys_without_collisions() {
    let q1 = "q".repeat(2_000);
    let q2 = format!("{}r", "q".repeat(1_999));
    assert_eq!(search(&q1), 2_000);
    assert_eq!(search(&q2), 2_000);
    assert_eq!(LONG_LOADS.load(SeqCst), 2, "two ids, two loads");
    assert_eq!(LONG_SHARED.len(), 2, "two entries in the layer");
    let fresh = Cache::builder()
        .namespace("long")
        .layer(LayerConfig::shared(LONG_SHARED.clone()))
        .build();
    let key = fresh.key("search", &q1).use_case("Search");
    assert_eq!(
        fresh.get::<usize>(&key),
        Some(2_000),
        "read back under its full URN"
    );
    assert_eq!(fresh.layer_stats()[0].decode_errors, 0);
}
