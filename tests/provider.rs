//! The per-use-case configuration provider (GCache's `cache_config_provider`):
//! a TTL, an on/off switch and a ramp per layer, asked when a use case is
//! built and again on `reload()`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use cachewright::backends::{async_trait, Backend, BackendError};
use cachewright::{
    cached, Cache, Clock, ConfigFor, LayerConfig, LayerTuning, ManualClock, UseCaseConfig,
};

/// A remote layer that keeps what it is given and the TTL of each write.
#[derive(Debug, Default)]
struct Dict {
    map: Mutex<HashMap<String, Vec<u8>>>,
    ttls: Mutex<Vec<Duration>>,
    gets: AtomicU32,
}

#[async_trait]
impl Backend for Dict {
    fn name(&self) -> &str {
        "dict"
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.gets.fetch_add(1, SeqCst);
        Ok(self.map.lock().unwrap().get(key).cloned())
    }
    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), BackendError> {
        self.ttls.lock().unwrap().push(ttl);
        self.map.lock().unwrap().insert(key.to_owned(), value);
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<bool, BackendError> {
        Ok(self.map.lock().unwrap().remove(key).is_some())
    }
}

/// What the provider answers, per use case; tests change it and reload.
static SETTINGS: LazyLock<Mutex<HashMap<String, UseCaseConfig>>> = LazyLock::new(Default::default);
static ASKED: AtomicU32 = AtomicU32::new(0);

fn set(use_case: &str, config: UseCaseConfig) {
    SETTINGS.lock().unwrap().insert(use_case.to_owned(), config);
}

fn provider(uc: &ConfigFor<'_>) -> Option<UseCaseConfig> {
    ASKED.fetch_add(1, SeqCst);
    if uc.use_case == "Panics" {
        panic!("a provider bug");
    }
    SETTINGS.lock().unwrap().get(uc.use_case).cloned()
}

static CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static DICT: LazyLock<Arc<Dict>> = LazyLock::new(Default::default);
/// In process only.
static LOCAL: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .name("provider-local")
        .clock(Clock::manual(&CLOCK))
        .config_provider(provider)
        .build()
});
/// In process and one remote layer, no bus.
static LAYERED: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .name("provider-layered")
        .clock(Clock::manual(&CLOCK))
        .layer(LayerConfig::shared(DICT.clone()))
        .without_bus()
        .config_provider(provider)
        .build()
});

/// The tests share the clock and the provider's settings.
static SERIAL: Mutex<()> = Mutex::new(());
fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "p:<id>", ttl = 300, cache = LOCAL, name = "LocalTtl")]
fn local_ttl(id: u32) -> u32 {
    LOADS.fetch_add(1, SeqCst);
    id
}

#[test]
fn the_provider_sets_the_local_ttl_before_the_first_call_and_on_reload() {
    let _s = serial();
    set(
        "LocalTtl",
        UseCaseConfig::new().local(LayerTuning::new().ttl(Duration::from_secs(5))),
    );
    let before = LOADS.load(SeqCst);
    local_ttl(1);
    local_ttl(1);
    assert_eq!(LOADS.load(SeqCst), before + 1, "cached");
    CLOCK.advance(Duration::from_secs(6));
    local_ttl(1);
    assert_eq!(
        LOADS.load(SeqCst),
        before + 2,
        "the provider's 5 s, not the attribute's 300 s"
    );
    // Back to the attribute's TTL on reload.
    SETTINGS.lock().unwrap().remove("LocalTtl");
    assert!(LOCAL.reload() >= 1);
    local_ttl(2);
    CLOCK.advance(Duration::from_secs(6));
    local_ttl(2);
    assert_eq!(LOADS.load(SeqCst), before + 3, "300 s again: still cached");
}

static OFF_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "off:<id>", ttl = 300, cache = LOCAL, name = "LocalOff")]
fn local_off(id: u32) -> u32 {
    OFF_LOADS.fetch_add(1, SeqCst);
    id
}

#[test]
fn a_ttl_of_zero_means_do_not_cache_and_reload_turns_it_back_on() {
    let _s = serial();
    set(
        "LocalOff",
        UseCaseConfig::new().local(LayerTuning::new().ttl(Duration::ZERO)),
    );
    for _ in 0..3 {
        local_off(7);
    }
    assert_eq!(OFF_LOADS.load(SeqCst), 3, "no layer: every call loads");
    let s = LOCAL.stats_for("LocalOff").unwrap();
    assert_eq!((s.bypasses, s.hits, s.misses), (3, 0, 0));
    set("LocalOff", UseCaseConfig::new());
    LOCAL.reload();
    local_off(7);
    local_off(7);
    assert_eq!(OFF_LOADS.load(SeqCst), 4, "cached again after reload");
}

static RAMP_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "ramp:<id>", ttl = 300, cache = LOCAL, name = "LocalRamp")]
fn local_ramp(id: u32) -> u32 {
    RAMP_LOADS.fetch_add(1, SeqCst);
    id
}

#[test]
fn a_layer_ramp_of_30_percent_sends_about_30_percent_of_calls_through_it() {
    let _s = serial();
    local_ramp(1); // stored: every call after this one that uses L1 hits
    set(
        "LocalRamp",
        UseCaseConfig::new().local(LayerTuning::new().ramp(30.0)),
    );
    LOCAL.reload();
    let before = LOCAL.stats_for("LocalRamp").unwrap();
    let n = 10_000u64;
    for _ in 0..n {
        local_ramp(1);
    }
    let after = LOCAL.stats_for("LocalRamp").unwrap();
    let (hits, bypasses) = (after.hits - before.hits, after.bypasses - before.bypasses);
    assert_eq!(hits + bypasses, n, "every call is a hit or ran uncached");
    // Binomial(10 000, 0.3): sd 45.8; six of them either side.
    let expected = 0.3 * n as f64;
    let sd = (n as f64 * 0.3 * 0.7).sqrt();
    assert!(
        (hits as f64 - expected).abs() < 6.0 * sd,
        "{hits} hits of {n}"
    );
}

static REMOTE_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "r:<id>", ttl = 300, cache = LAYERED, name = "RemoteTtl")]
async fn remote_ttl(id: u32) -> u32 {
    REMOTE_LOADS.fetch_add(1, SeqCst);
    id
}

#[test]
fn per_layer_ttls_reach_the_remote_layer_and_a_layer_can_be_turned_off() {
    let _s = serial();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        set(
            "RemoteTtl",
            UseCaseConfig::new()
                .local(LayerTuning::new().ttl(Duration::from_secs(5)))
                .layer("dict", LayerTuning::new().ttl(Duration::from_secs(10))),
        );
        DICT.ttls.lock().unwrap().clear();
        remote_ttl(1).await;
        assert_eq!(
            *DICT.ttls.lock().unwrap(),
            vec![Duration::from_secs(10)],
            "the remote layer keeps it for its own TTL"
        );
        // L1's 5 s pass: read from the remote layer, not loaded again.
        CLOCK.advance(Duration::from_secs(6));
        let gets = DICT.gets.load(SeqCst);
        remote_ttl(1).await;
        assert_eq!(REMOTE_LOADS.load(SeqCst), 1, "an L2 hit");
        assert!(DICT.gets.load(SeqCst) > gets, "read from L2");

        // The remote layer off: neither read nor written.
        set("RemoteTtl", UseCaseConfig::new().remote(LayerTuning::off()));
        LAYERED.reload();
        let gets = DICT.gets.load(SeqCst);
        DICT.ttls.lock().unwrap().clear();
        remote_ttl(2).await;
        remote_ttl(2).await;
        assert_eq!(REMOTE_LOADS.load(SeqCst), 2, "cached in process");
        assert_eq!(DICT.gets.load(SeqCst), gets, "not read");
        assert!(DICT.ttls.lock().unwrap().is_empty(), "not written");

        // And L1 off with the remote layer on: every call reads the remote one.
        set("RemoteTtl", UseCaseConfig::new().local(LayerTuning::off()));
        LAYERED.reload();
        remote_ttl(3).await;
        let gets = DICT.gets.load(SeqCst);
        remote_ttl(3).await;
        let after_one = DICT.gets.load(SeqCst);
        remote_ttl(3).await;
        assert_eq!(REMOTE_LOADS.load(SeqCst), 3, "loaded once, then L2 hits");
        assert!(after_one > gets, "each call reads L2");
        assert_eq!(
            DICT.gets.load(SeqCst) - after_one,
            after_one - gets,
            "the same reads for every call: nothing kept in process"
        );

        // The provider removed: a reload puts every layer back on the
        // attribute's settings (300 s in the remote layer, not 10 s).
        set(
            "RemoteTtl",
            UseCaseConfig::new().layer("dict", LayerTuning::new().ttl(Duration::from_secs(10))),
        );
        LAYERED.reload();
        LAYERED.clear_config_provider();
        LAYERED.reload();
        DICT.ttls.lock().unwrap().clear();
        remote_ttl(4).await;
        assert_eq!(*DICT.ttls.lock().unwrap(), vec![Duration::from_secs(300)]);
    });
}

static LATE_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "late:<id>", cache = LOCAL, name = "Late")]
fn late(id: u32) -> u32 {
    LATE_LOADS.fetch_add(1, SeqCst);
    id
}

static LATE_CACHE: LazyLock<Cache> =
    LazyLock::new(|| Cache::builder().name("provider-late").build());
static LATE_CACHE_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "lc:<id>", cache = LATE_CACHE, name = "LateCache")]
fn late_cache(id: u32) -> u32 {
    LATE_CACHE_LOADS.fetch_add(1, SeqCst);
    id
}

#[cached(key = "panics:<id>", cache = LOCAL, name = "Panics")]
fn panics(id: u32) -> u32 {
    id
}

#[test]
fn a_provider_set_later_applies_to_use_cases_built_later_and_a_panicking_one_is_ignored() {
    let _s = serial();
    // A provider set after the cache was built, before the use case's
    // first call: it applies from that first call.
    LATE_CACHE.set_config_provider(|uc: &ConfigFor<'_>| {
        (uc.cache == "provider-late" && uc.use_case == "LateCache" && uc.key_type == "lc")
            .then(|| UseCaseConfig::new().local(LayerTuning::off()))
    });
    late_cache(1);
    late_cache(1);
    assert_eq!(LATE_CACHE_LOADS.load(SeqCst), 2, "off from the first call");
    // On `LOCAL`, whose provider was given at build: asked on first call.
    set("Late", UseCaseConfig::new().local(LayerTuning::off()));
    let asked = ASKED.load(SeqCst);
    late(1);
    late(1);
    assert!(ASKED.load(SeqCst) > asked, "asked when built");
    assert_eq!(LATE_LOADS.load(SeqCst), 2, "off from the first call");
    // A provider that panics: logged, the attribute's settings apply.
    panics(1);
    panics(1);
    assert_eq!(LOCAL.stats_for("Panics").unwrap().hits, 1);
    SETTINGS.lock().unwrap().remove("Late");
    LOCAL.reload();
    late(1);
    late(1);
    assert_eq!(LATE_LOADS.load(SeqCst), 3, "on after reload");
}
