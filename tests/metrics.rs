//! Metrics through the `metrics` facade: each one this cache publishes is
//! checked with a recorder that keeps what it was given.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::LazyLock;

use cachewright::backends::MemoryBackend;
use cachewright::{cached, Cache, LayerConfig};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use metrics_util::CompositeKey;

/// What the recorder held (taken once: a snapshot drains histograms).
type Taken = Vec<(
    CompositeKey,
    Option<metrics::Unit>,
    Option<metrics::SharedString>,
    DebugValue,
)>;

static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .name("metered")
        .without_bus()
        .layer(LayerConfig::new(MemoryBackend::new()))
        .build()
});

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "user:<id>", ttl = 60, negative_ttl = 60, cache = CACHE, name = "User")]
fn user(id: u32) -> Option<u32> {
    LOADS.fetch_add(1, SeqCst);
    (id != 0).then_some(id)
}

static RATES_FAIL: AtomicU32 = AtomicU32::new(0);

/// The writer's own cache: its reads and writes stay out of `CACHE`'s
/// layer counts.
static WRITERS: LazyLock<Cache> = LazyLock::new(|| Cache::builder().name("writers").build());

#[cachewright::bg_writer(key = "rates", interval = 0, cache = WRITERS)]
fn rates() -> Result<u32, String> {
    if RATES_FAIL.load(SeqCst) == 1 {
        return Err("source down".into());
    }
    Ok(1)
}

#[cached(key = "shadowed:<id>", ttl = 60, cache = CACHE, name = "Shadowed", shadow = 100, layers = local)]
fn shadowed(id: u32) -> u32 {
    id
}

/// The value of the metric `name` whose labels include every one of `with`.
fn value<'a>(snap: &'a Taken, name: &str, with: &[(&str, &str)]) -> Option<&'a DebugValue> {
    snap.iter()
        .find(|(key, _, _, _)| {
            let key = key.key();
            key.name() == name
                && with
                    .iter()
                    .all(|(k, v)| key.labels().any(|l| l.key() == *k && l.value() == *v))
        })
        .map(|(_, _, _, v)| v)
}

fn counter(snap: &Taken, name: &str, with: &[(&str, &str)]) -> u64 {
    match value(snap, name, with) {
        Some(DebugValue::Counter(n)) => *n,
        other => panic!("{name} {with:?}: {other:?}"),
    }
}

fn gauge(snap: &Taken, name: &str, with: &[(&str, &str)]) -> f64 {
    match value(snap, name, with) {
        Some(DebugValue::Gauge(g)) => g.into_inner(),
        other => panic!("{name} {with:?}: {other:?}"),
    }
}

#[test]
fn every_metric_is_published_where_it_should_be() {
    // A shadow read, counted before the recorder is given the totals.
    shadowed(5);
    shadowed(5);
    for _ in 0..10_000 {
        if CACHE.stats_for("Shadowed").unwrap().shadow_matches == 1 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // Global: remote layer operations run on cachewright's I/O threads.
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test binary");
    // A background writer storing into the cache: one run ok, one failed.
    RATES_FAIL.store(0, SeqCst);
    assert_eq!(*rates.get().unwrap(), 1);
    RATES_FAIL.store(1, SeqCst);
    rates.invalidate();
    let _ = rates.get();
    {
        user(1); // miss, load
        user(1); // hit
        user(1); // hit
        user(0); // miss, load of an absence
        user(0); // negative hit
        cachewright::bypass(|| user(2)); // bypass
        let n: Result<u32, String> = CACHE.get_or_load(&CACHE.key("n", &1), None, || Ok(1));
        assert_eq!(n, Ok(1));
        CACHE.invalidate_entity("user", &1);
        CACHE.publish_metrics();
        WRITERS.publish_metrics();
    }
    let snap: Taken = snapshotter.snapshot().into_vec();
    let uc = [
        ("cache", "metered"),
        ("use_case", "User"),
        ("key_type", "user"),
    ];
    let req = |result: &str| {
        let mut l = uc.to_vec();
        l.push(("result", result));
        counter(&snap, "cachewright_requests_total", &l)
    };
    assert_eq!(req("hit"), 2);
    assert_eq!(req("negative"), 1);
    assert_eq!(req("stale"), 0);
    assert_eq!(req("miss"), 2);
    assert_eq!(req("bypass"), 1);
    assert_eq!(
        counter(&snap, "cachewright_loads_total", &uc),
        2,
        "bypasses are not loads"
    );
    assert_eq!(counter(&snap, "cachewright_load_errors_total", &uc), 0);
    match value(&snap, "cachewright_load_duration_seconds", &uc[..2]) {
        Some(DebugValue::Histogram(v)) => {
            assert_eq!(v.len(), 2, "one per load (a bypass is not one)")
        }
        other => panic!("load durations: {other:?}"),
    }
    assert_eq!(
        gauge(&snap, "cachewright_entries", &uc[..2]),
        2.0,
        "1 and the absence of 0"
    );
    assert!(gauge(&snap, "cachewright_bytes", &uc[..2]) > 0.0);
    assert_eq!(counter(&snap, "cachewright_evictions_total", &uc[..2]), 0);
    assert_eq!(
        counter(
            &snap,
            "cachewright_invalidations_total",
            &[("cache", "metered")]
        ),
        1
    );
    assert_eq!(
        counter(
            &snap,
            "cachewright_bus_messages_total",
            &[("cache", "metered"), ("direction", "in")]
        ),
        0
    );
    let layer = |op: &str, result: &str| {
        counter(
            &snap,
            "cachewright_layer_operations_total",
            &[
                ("cache", "metered"),
                ("layer", "memory"),
                ("op", op),
                ("result", result),
            ],
        )
    };
    assert_eq!(
        layer("get", "miss"),
        3,
        "the two misses and the direct load read the layer"
    );
    assert_eq!(layer("set", "ok"), 3, "and wrote what loaded");
    assert_eq!(layer("any", "error"), 0);
    assert_eq!(
        gauge(
            &snap,
            "cachewright_breaker_open",
            &[("cache", "metered"), ("layer", "memory")]
        ),
        0.0
    );
    let shadow = |result: &str| {
        counter(
            &snap,
            "cachewright_shadow_reads_total",
            &[
                ("use_case", "Shadowed"),
                ("key_type", "shadowed"),
                ("result", result),
            ],
        )
    };
    assert_eq!(
        (shadow("match"), shadow("mismatch"), shadow("error")),
        (1, 0, 0)
    );
    match value(
        &snap,
        "cachewright_load_duration_seconds",
        &[("cache", "metered"), ("use_case", "direct")],
    ) {
        Some(DebugValue::Histogram(v)) => assert_eq!(v.len(), 1, "the direct API's load"),
        other => panic!("direct load durations: {other:?}"),
    }
    let runs = |result: &str| {
        counter(
            &snap,
            "cachewright_bg_runs_total",
            &[("cache", "writers"), ("key", "rates"), ("result", result)],
        )
    };
    assert_eq!((runs("ok"), runs("error")), (1, 1));
    match value(
        &snap,
        "cachewright_layer_duration_seconds",
        &[("layer", "memory"), ("op", "get")],
    ) {
        Some(DebugValue::Histogram(v)) => assert!(!v.is_empty()),
        other => panic!("layer durations: {other:?}"),
    }
    // Every metric the library names was published.
    for (name, _, _) in cachewright::METRICS {
        assert!(value(&snap, name, &[]).is_some(), "{name} published");
    }
}
