//! The breaker of a remote layer: a layer that fails is skipped, probed
//! again once its retry time has come, and used again when a probe
//! succeeds, even when a probe's caller was cancelled midway.
//!
//! A custom backend (as a user would write one) can be switched to fail or
//! to hang. Breaker time is the cache's manual clock; the hang and the
//! callers' time limits run on tokio's paused clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering::SeqCst};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use cachewright::backends::{async_trait, Backend, BackendError};
use cachewright::{cached, Cache, Clock, LayerConfig, ManualClock};

const UP: u8 = 0;
const FAILING: u8 = 1;
const HANGING: u8 = 2;

/// A dictionary that can fail or hang on demand.
#[derive(Debug, Default)]
struct Flaky {
    map: Mutex<HashMap<String, Vec<u8>>>,
    mode: AtomicU8,
    /// Writes fail, whatever the mode.
    writes_fail: AtomicBool,
}

impl Flaky {
    async fn check(&self) -> Result<(), BackendError> {
        match self.mode.load(SeqCst) {
            FAILING => Err(BackendError::Refused {
                backend: "flaky".into(),
                message: "switched off".into(),
            }),
            HANGING => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[async_trait]
impl Backend for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.check().await?;
        Ok(self.map.lock().unwrap().get(key).cloned())
    }
    async fn set(&self, key: &str, value: Vec<u8>, _ttl: Duration) -> Result<(), BackendError> {
        if self.writes_fail.load(SeqCst) {
            return Err(BackendError::Refused {
                backend: "flaky".into(),
                message: "read-only".into(),
            });
        }
        self.check().await?;
        self.map.lock().unwrap().insert(key.to_owned(), value);
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<bool, BackendError> {
        self.check().await?;
        Ok(self.map.lock().unwrap().remove(key).is_some())
    }
}

fn cache_over(backend: &Arc<Flaky>, clock: &ManualClock, coalesce: bool) -> Cache {
    Cache::builder()
        .clock(Clock::manual(clock))
        .layer(
            LayerConfig::shared(backend.clone())
                .timeout(Duration::from_millis(100))
                .breaker(1, Duration::from_secs(1))
                .coalesce_reads(coalesce),
        )
        .without_bus()
        .build()
}

/// Opens the breaker of `cache`'s layer, then cancels the probe made once
/// its retry time has come, heals the backend and reads `id` again: the
/// layer must answer (no load).
async fn cancelled_probe_then_heal<F, Fut>(
    backend: &Flaky,
    clock: &ManualClock,
    cache: &Cache,
    loads: &AtomicU32,
    call: F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<String, String>>,
{
    assert_eq!(call().await.unwrap(), "value");
    assert_eq!(loads.load(SeqCst), 1);
    assert_eq!(backend.map.lock().unwrap().len(), 1, "written to the layer");

    // The layer fails: the breaker opens; the call still succeeds.
    backend.mode.store(FAILING, SeqCst);
    assert_eq!(call().await.unwrap(), "value");
    assert!(cache.layer_stats()[0].open);
    let loads_while_open = loads.load(SeqCst);

    // Retry time: the next call probes, and its caller gives up first.
    clock.advance(Duration::from_secs(2));
    backend.mode.store(HANGING, SeqCst);
    let gave_up = tokio::time::timeout(Duration::from_millis(10), call()).await;
    assert!(
        gave_up.is_err(),
        "the probe hung and its caller was cancelled"
    );

    // Healed: the next call probes again, and the layer answers.
    backend.mode.store(UP, SeqCst);
    let hits_before = cache.layer_stats()[0].hits;
    assert_eq!(call().await.unwrap(), "value");
    let l = &cache.layer_stats()[0];
    assert_eq!(l.hits, hits_before + 1, "read from the layer again: {l:?}");
    assert!(!l.open, "the breaker closed: {l:?}");
    assert_eq!(loads.load(SeqCst), loads_while_open, "not loaded again");
}

static DIRECT: LazyLock<Arc<Flaky>> = LazyLock::new(Default::default);
static DIRECT_CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static DIRECT_CACHE: LazyLock<Cache> = LazyLock::new(|| cache_over(&DIRECT, &DIRECT_CLOCK, false));
static DIRECT_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "item:<id>", ttl = 600, layers = remote, cache = DIRECT_CACHE)]
async fn direct(id: u32) -> Result<String, String> {
    let _ = id;
    DIRECT_LOADS.fetch_add(1, SeqCst);
    Ok("value".to_owned())
}

#[tokio::test(start_paused = true)]
async fn a_probe_whose_caller_is_cancelled_does_not_disable_the_layer() {
    cancelled_probe_then_heal(&DIRECT, &DIRECT_CLOCK, &DIRECT_CACHE, &DIRECT_LOADS, || {
        direct(1)
    })
    .await;
}

static COALESCED: LazyLock<Arc<Flaky>> = LazyLock::new(Default::default);
static COALESCED_CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static COALESCED_CACHE: LazyLock<Cache> =
    LazyLock::new(|| cache_over(&COALESCED, &COALESCED_CLOCK, true));
static COALESCED_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "item:<id>", ttl = 600, layers = remote, cache = COALESCED_CACHE)]
async fn coalesced(id: u32) -> Result<String, String> {
    let _ = id;
    COALESCED_LOADS.fetch_add(1, SeqCst);
    Ok("value".to_owned())
}

/// The probe is a read queued for a batch (another read is in flight);
/// its caller is cancelled while it waits. The batch settles without a
/// probe of its own: the layer must still be probed again and used.
#[tokio::test(start_paused = true)]
async fn a_cancelled_probe_queued_for_a_batch_does_not_disable_the_layer() {
    let (backend, clock, cache) = (&*COALESCED, &*COALESCED_CLOCK, &*COALESCED_CACHE);
    assert_eq!(coalesced(1).await.unwrap(), "value");
    assert_eq!(COALESCED_LOADS.load(SeqCst), 1);

    // A read in flight (admitted while the breaker was closed), and a
    // failed write that opens the breaker meanwhile.
    backend.mode.store(HANGING, SeqCst);
    let in_flight = tokio::spawn(coalesced(2));
    tokio::task::yield_now().await;
    backend.writes_fail.store(true, SeqCst);
    cache
        .set_async(&cache.key("other", &1), 1u32, Some(Duration::from_secs(60)))
        .await;
    assert!(cache.layer_stats()[0].open);

    // Retry time: the probe queues behind the read in flight, and its
    // caller gives up first.
    clock.advance(Duration::from_secs(2));
    let gave_up = tokio::time::timeout(Duration::from_millis(10), coalesced(1)).await;
    assert!(
        gave_up.is_err(),
        "the probe waited and its caller was cancelled"
    );
    assert_eq!(in_flight.await.unwrap().unwrap(), "value");

    // Healed, at the next retry time: the layer answers.
    backend.mode.store(UP, SeqCst);
    backend.writes_fail.store(false, SeqCst);
    clock.advance(Duration::from_secs(2));
    let loads = COALESCED_LOADS.load(SeqCst);
    let hits_before = cache.layer_stats()[0].hits;
    assert_eq!(coalesced(1).await.unwrap(), "value");
    let l = &cache.layer_stats()[0];
    assert_eq!(l.hits, hits_before + 1, "read from the layer again: {l:?}");
    assert!(!l.open, "the breaker closed: {l:?}");
    assert_eq!(COALESCED_LOADS.load(SeqCst), loads, "not loaded again");
}
