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
