//! Background writers and readers, on paused tokio time (no real sleeping):
//! the BGCache single-writer / multi-reader pattern, schedules, TTLs,
//! on-demand loads, errors, overlap, duplicates, invalidation.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use cachewright::backends::{async_trait, Backend, BackendError};
use cachewright::{bg_writer, BgError, BgReader, Cache, Clock, LayerConfig, ManualClock};
use serde::{Deserialize, Serialize};
use tokio::time::{sleep, Instant};

/// `cachewright::shutdown()` stops every writer of the process: tests take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

static SHARED: LazyLock<Cache> = LazyLock::new(|| Cache::builder().name("bg-shared").build());

// ---- the BGCache guide: one writer, a reader, shutdown ----------------------------------

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Demo {
    v: u32,
}

static DEMO_CALLS: AtomicU32 = AtomicU32::new(0);

#[bg_writer(key = "demo", interval = "50ms", cache = SHARED)]
async fn demo_writer() -> Demo {
    Demo {
        v: DEMO_CALLS.fetch_add(1, SeqCst) + 1,
    }
}

static DEMO_READER: BgReader<Demo> = BgReader::new("demo").interval_ms(50).cache(&SHARED);

#[tokio::test(start_paused = true)]
async fn writer_and_reader_then_shutdown() {
    let _g = SERIAL.lock().await;
    demo_writer.start().unwrap();
    DEMO_READER.start();
    sleep(Duration::from_millis(100)).await;
    let v1 = DEMO_READER.get_async().await.unwrap();
    assert!(v1.v >= 1, "{v1:?}");
    sleep(Duration::from_millis(100)).await;
    let v2 = DEMO_READER.get_async().await.unwrap();
    assert!(
        v2.v > v1.v,
        "the reader sees increasing versions: {v1:?} then {v2:?}"
    );
    assert_eq!(
        demo_writer.get_async().await.unwrap().v,
        DEMO_CALLS.load(SeqCst),
        "the writer serves its latest"
    );
    cachewright::shutdown_async().await;
    cachewright::shutdown_async().await; // twice is fine
    let n = DEMO_CALLS.load(SeqCst);
    sleep(Duration::from_secs(10)).await;
    assert_eq!(DEMO_CALLS.load(SeqCst), n, "no loader call after shutdown");
    assert_eq!(
        DEMO_READER.get_async().await.unwrap().v,
        n,
        "reads still answer from memory"
    );
}

// ---- schedules ---------------------------------------------------------------------------

static LATE_CALLS: AtomicU32 = AtomicU32::new(0);

#[bg_writer(key = "late", interval = 10, run_immediately = false, cache = SHARED)]
async fn late() -> u32 {
    LATE_CALLS.fetch_add(1, SeqCst) + 1
}

static EARLY_CALLS: AtomicU32 = AtomicU32::new(0);

#[bg_writer(key = "early", interval = 10, cache = SHARED)]
async fn early() -> u32 {
    EARLY_CALLS.fetch_add(1, SeqCst) + 1
}

#[tokio::test(start_paused = true)]
async fn interval_and_run_immediately() {
    let _g = SERIAL.lock().await;
    late.start().unwrap();
    early.start().unwrap();
    sleep(Duration::from_millis(1)).await;
    assert_eq!(
        EARLY_CALLS.load(SeqCst),
        1,
        "run_immediately (the default): loaded at start"
    );
    assert_eq!(
        LATE_CALLS.load(SeqCst),
        0,
        "run_immediately = false: nothing yet"
    );
    sleep(Duration::from_secs(5)).await;
    assert_eq!(LATE_CALLS.load(SeqCst), 0);
    sleep(Duration::from_secs(6)).await; // t = 11 s
    assert_eq!((LATE_CALLS.load(SeqCst), EARLY_CALLS.load(SeqCst)), (1, 2));
    sleep(Duration::from_secs(30)).await; // t = 41 s
    assert_eq!(
        (LATE_CALLS.load(SeqCst), EARLY_CALLS.load(SeqCst)),
        (4, 5),
        "one load per 10 s"
    );
    assert_eq!(
        late.ttl(),
        Some(Duration::from_secs(20)),
        "ttl defaults to twice the interval"
    );
    assert_eq!(late.interval(), Some(Duration::from_secs(10)));
    late.stop();
    early.stop();
}

static TTL_CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static TTL_CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .name("bg-ttl")
        .clock(Clock::manual(&TTL_CLOCK))
        .build()
});

#[bg_writer(key = "ttl_default", interval = 30, cache = TTL_CACHE)]
async fn ttl_default() -> String {
    "cfg".to_string()
}

#[tokio::test(start_paused = true)]
async fn the_value_lives_twice_the_interval_in_the_cache() {
    let _g = SERIAL.lock().await;
    ttl_default.start().unwrap();
    sleep(Duration::from_millis(1)).await;
    ttl_default.stop();
    let key = ttl_default.key().clone();
    TTL_CLOCK.advance(Duration::from_secs(59));
    assert_eq!(TTL_CACHE.get::<String>(&key).as_deref(), Some("cfg"));
    TTL_CLOCK.advance(Duration::from_secs(1));
    assert_eq!(
        TTL_CACHE.get::<String>(&key),
        None,
        "gone after 60 s = 2 x 30 s"
    );
}

static DEMAND_CALLS: AtomicU32 = AtomicU32::new(0);

#[bg_writer(key = "on_demand", interval = 0, cache = SHARED)]
async fn on_demand() -> u32 {
    sleep(Duration::from_millis(20)).await;
    DEMAND_CALLS.fetch_add(1, SeqCst) + 1
}

#[tokio::test(start_paused = true)]
async fn interval_zero_loads_on_demand_only_once() {
    let _g = SERIAL.lock().await;
    on_demand.start().unwrap();
    sleep(Duration::from_secs(3600)).await;
    assert_eq!(DEMAND_CALLS.load(SeqCst), 0, "no schedule");
    assert!(on_demand.try_get().is_none(), "try_get never waits");
    let reads: Vec<_> = (0..10)
        .map(|_| tokio::spawn(on_demand.get_async()))
        .collect();
    for r in reads {
        assert_eq!(*r.await.unwrap().unwrap(), 1);
    }
    assert_eq!(
        DEMAND_CALLS.load(SeqCst),
        1,
        "ten concurrent first reads, one load"
    );
    assert_eq!(on_demand.interval(), None);
}

static FLAKY_CALLS: AtomicU32 = AtomicU32::new(0);
static FLAKY_ERRORS: AtomicU32 = AtomicU32::new(0);

fn note_error(e: &String) {
    assert_eq!(e, "upstream down");
    FLAKY_ERRORS.fetch_add(1, SeqCst);
}

#[bg_writer(key = "flaky", interval = 10, on_error = note_error, cache = SHARED)]
async fn flaky() -> Result<u32, String> {
    let n = FLAKY_CALLS.fetch_add(1, SeqCst) + 1;
    if n >= 2 {
        Err("upstream down".into())
    } else {
        Ok(n)
    }
}

#[tokio::test(start_paused = true)]
async fn on_error_hears_the_error_and_the_old_value_stays() {
    let _g = SERIAL.lock().await;
    flaky.start().unwrap();
    sleep(Duration::from_millis(1)).await;
    assert_eq!(*flaky.get_async().await.unwrap(), 1);
    sleep(Duration::from_secs(25)).await;
    assert_eq!(FLAKY_CALLS.load(SeqCst), 3);
    assert_eq!(FLAKY_ERRORS.load(SeqCst), 2, "on_error got each failure");
    assert_eq!(
        *flaky.get_async().await.unwrap(),
        1,
        "the previous value keeps being served"
    );
    assert_eq!(flaky.counts(), (3, 2));
    flaky.stop();
}

static PANICKY_CALLS: AtomicU32 = AtomicU32::new(0);

#[bg_writer(key = "panicky", interval = 10, cache = SHARED)]
async fn panicky() -> u32 {
    let n = PANICKY_CALLS.fetch_add(1, SeqCst) + 1;
    if n == 2 {
        panic!("a bug in the loader");
    }
    n
}

#[tokio::test(start_paused = true)]
async fn an_async_loader_that_panics_once_fails_that_load_and_the_schedule_goes_on() {
    let _g = SERIAL.lock().await;
    panicky.start().unwrap();
    sleep(Duration::from_millis(1)).await;
    assert_eq!(*panicky.get_async().await.unwrap(), 1);
    sleep(Duration::from_secs(15)).await;
    assert_eq!(PANICKY_CALLS.load(SeqCst), 2, "the second load panicked");
    assert_eq!(
        *panicky.get_async().await.unwrap(),
        1,
        "the old value stays"
    );
    assert_eq!(panicky.counts(), (2, 1), "the panic counts as a failure");
    sleep(Duration::from_secs(10)).await;
    assert_eq!(PANICKY_CALLS.load(SeqCst), 3, "the schedule went on");
    assert_eq!(*panicky.get_async().await.unwrap(), 3);
    assert_eq!(panicky.counts(), (3, 1));
    panicky.stop();
}

static SLOW_CALLS: AtomicU32 = AtomicU32::new(0);
static SLOW_IN_FLIGHT: AtomicU32 = AtomicU32::new(0);
static SLOW_MAX: AtomicU32 = AtomicU32::new(0);

#[bg_writer(key = "slow", interval = 1, cache = SHARED)]
async fn slow() -> u32 {
    let now = SLOW_IN_FLIGHT.fetch_add(1, SeqCst) + 1;
    SLOW_MAX.fetch_max(now, SeqCst);
    sleep(Duration::from_millis(3_500)).await; // longer than the interval
    SLOW_IN_FLIGHT.fetch_sub(1, SeqCst);
    SLOW_CALLS.fetch_add(1, SeqCst) + 1
}

#[tokio::test(start_paused = true)]
async fn a_slow_load_delays_the_next_tick_instead_of_overlapping() {
    let _g = SERIAL.lock().await;
    slow.start().unwrap();
    sleep(Duration::from_secs(20)).await;
    slow.stop();
    assert_eq!(SLOW_MAX.load(SeqCst), 1, "never two loads at once");
    let n = SLOW_CALLS.load(SeqCst);
    assert!(
        (4..=6).contains(&n),
        "about one load per 3.5 s in 20 s, got {n}"
    );
}

// ---- one writer per key; writer values are cache entries ----------------------------------

#[bg_writer(key = "owned", interval = 60, cache = SHARED)]
async fn owner_one() -> u32 {
    1
}

#[bg_writer(key = "owned", interval = 60, cache = SHARED)]
async fn owner_two() -> u32 {
    2
}

#[tokio::test(start_paused = true)]
async fn a_second_writer_for_a_key_is_refused() {
    let _g = SERIAL.lock().await;
    owner_one.start().unwrap();
    let e = owner_two.start().unwrap_err();
    assert!(
        matches!(e, BgError::Duplicate(ref k) if k.contains("owned")),
        "{e}"
    );
    assert!(owner_two.get_async().await.is_err(), "its reads say so too");
    owner_one.start().unwrap(); // the owner may start again
    owner_one.stop();
}

static CFG_CALLS: AtomicU32 = AtomicU32::new(0);

#[bg_writer(key = "daily_config", interval = 300, cache = SHARED)]
fn daily_config() -> Result<Vec<String>, String> {
    Ok(vec![format!("v{}", CFG_CALLS.fetch_add(1, SeqCst) + 1)])
}

#[test]
fn a_sync_writer_is_an_entry_and_invalidation_forces_a_reload() {
    let _g = SERIAL.blocking_lock();
    assert_eq!(daily_config.get().unwrap()[0], "v1");
    daily_config.stop();
    let key = daily_config.key().clone();
    assert_eq!(
        SHARED.get::<Vec<String>>(&key),
        Some(vec!["v1".to_string()]),
        "an entry like any other"
    );
    daily_config.invalidate();
    assert!(daily_config.try_get().is_none());
    assert_eq!(daily_config.get().unwrap()[0], "v2", "reloaded early");
    SHARED.invalidate_entity("bg", &"daily_config");
    assert!(
        daily_config.try_get().is_none(),
        "tag invalidation reaches it too"
    );
    assert_eq!(daily_config.get().unwrap()[0], "v3");
}

// ---- readers: ttl, on_error, run_immediately -----------------------------------------------

static READER_CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(5_000_000));
static READER_SRC: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .name("reader-src")
        .clock(Clock::manual(&READER_CLOCK))
        .build()
});

/// Where a writer of `key` keeps its value (what a reader pulls).
fn publish(key: &str, v: u32) {
    READER_SRC.set(&READER_SRC.key("bg", &key), v, None);
}

static TTL_READER: BgReader<u32> = BgReader::new("ttl_src")
    .interval_ms(0)
    .ttl_secs(10)
    .cache(&READER_SRC);

#[tokio::test(start_paused = true)]
async fn a_readers_ttl_bounds_how_old_its_copy_may_be() {
    let _g = SERIAL.lock().await;
    publish("ttl_src", 1);
    assert_eq!(*TTL_READER.get_async().await.unwrap(), 1);
    publish("ttl_src", 2);
    assert_eq!(
        TTL_READER.try_get().as_deref(),
        Some(&1),
        "the copy, within its ttl"
    );
    READER_CLOCK.advance(Duration::from_secs(11));
    assert_eq!(TTL_READER.try_get(), None, "older than its ttl: not served");
    assert_eq!(*TTL_READER.get_async().await.unwrap(), 2, "pulled again");
}

static EMPTY_ERRORS: AtomicU32 = AtomicU32::new(0);

fn count_empty(e: &BgError) {
    if matches!(e, BgError::NoValue(_)) {
        EMPTY_ERRORS.fetch_add(1, SeqCst);
    }
}

static EMPTY_READER: BgReader<u32> = BgReader::new("nothing_here")
    .interval_secs(5)
    .on_error(count_empty)
    .cache(&READER_SRC);

#[tokio::test(start_paused = true)]
async fn a_reader_tells_on_error_when_its_source_is_empty() {
    let _g = SERIAL.lock().await;
    EMPTY_READER.start();
    sleep(Duration::from_secs(16)).await;
    let n = EMPTY_ERRORS.load(SeqCst);
    assert!((3..=4).contains(&n), "one report per pull: {n}");
    assert!(matches!(
        EMPTY_READER.get_async().await,
        Err(BgError::NoValue(_))
    ));
    cachewright::shutdown_async().await;
}

static EAGER_READER: BgReader<u32> = BgReader::new("eager_src")
    .interval_secs(10)
    .run_immediately(true)
    .cache(&READER_SRC);
static LAZY_READER: BgReader<u32> = BgReader::new("lazy_src")
    .interval_secs(10)
    .run_immediately(false)
    .cache(&READER_SRC);

#[tokio::test(start_paused = true)]
async fn run_immediately_pulls_at_start_or_one_interval_later() {
    let _g = SERIAL.lock().await;
    publish("eager_src", 7);
    publish("lazy_src", 8);
    EAGER_READER.start();
    LAZY_READER.start();
    sleep(Duration::from_millis(10)).await;
    assert_eq!(
        EAGER_READER.try_get().as_deref(),
        Some(&7),
        "pulled at start"
    );
    assert_eq!(LAZY_READER.try_get(), None, "not yet");
    sleep(Duration::from_secs(10)).await;
    assert_eq!(
        LAZY_READER.try_get().as_deref(),
        Some(&8),
        "pulled after one interval"
    );
    cachewright::shutdown_async().await;
}

// ---- leases: a layer that plays the shared Redis of several replicas ------------------------

/// A remote layer for lease tests: values and leases with expiries on
/// tokio's clock (paused in these tests), what the writer did to it, and a
/// switch that makes every lease check fail. Lease keys are those with
/// `~lease:` in them.
#[derive(Debug, Default)]
struct Lab {
    map: Mutex<HashMap<String, (Vec<u8>, Instant)>>,
    fail_leases: AtomicBool,
    value_writes: AtomicU32,
    renewals: AtomicU32,
    releases: AtomicU32,
}

impl Lab {
    fn live(&self, key: &str) -> Option<Vec<u8>> {
        let map = self.map.lock().unwrap();
        map.get(key)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(v, _)| v.clone())
    }

    fn lease_key(&self) -> Option<String> {
        let map = self.map.lock().unwrap();
        map.keys().find(|k| k.contains("~lease:")).cloned()
    }

    /// The token of the live lease, if any.
    fn holder(&self) -> Option<Vec<u8>> {
        self.live(&self.lease_key()?)
    }

    /// Another replica takes the lease, whoever holds it.
    fn steal(&self) {
        let key = self.lease_key().expect("a lease was taken");
        let until = Instant::now() + Duration::from_secs(3600);
        self.map
            .lock()
            .unwrap()
            .insert(key, (b"another replica".to_vec(), until));
    }

    fn lease_check(&self) -> Result<(), BackendError> {
        if self.fail_leases.load(SeqCst) {
            return Err(BackendError::Refused {
                backend: "lab".into(),
                message: "lease checks fail".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Backend for Lab {
    fn name(&self) -> &str {
        "lab"
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self.live(key))
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), BackendError> {
        if !key.contains('~') {
            self.value_writes.fetch_add(1, SeqCst);
        }
        let until = Instant::now() + ttl;
        self.map
            .lock()
            .unwrap()
            .insert(key.to_owned(), (value, until));
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool, BackendError> {
        Ok(self.map.lock().unwrap().remove(key).is_some())
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, BackendError> {
        self.lease_check()?;
        if self.live(key).is_some() {
            return Ok(false);
        }
        let until = Instant::now() + ttl;
        self.map
            .lock()
            .unwrap()
            .insert(key.to_owned(), (value, until));
        Ok(true)
    }

    async fn renew_if(&self, key: &str, token: &[u8], ttl: Duration) -> Result<bool, BackendError> {
        self.lease_check()?;
        self.renewals.fetch_add(1, SeqCst);
        let mut map = self.map.lock().unwrap();
        match map.get_mut(key) {
            Some((v, until)) if *until > Instant::now() && v == token => {
                *until = Instant::now() + ttl;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn delete_if(&self, key: &str, token: &[u8]) -> Result<bool, BackendError> {
        self.releases.fetch_add(1, SeqCst);
        let mut map = self.map.lock().unwrap();
        if map.get(key).is_some_and(|(v, _)| v == token) {
            map.remove(key);
            return Ok(true);
        }
        Ok(false)
    }
}

/// A cache whose one remote layer is `lab`.
fn lab_cache(name: &str, lab: &Arc<Lab>) -> Cache {
    Cache::builder()
        .name(name)
        .namespace(name)
        .layer(LayerConfig::shared(lab.clone()).breaker(1000, Duration::from_millis(1)))
        .build()
}

static STOP_LAB: LazyLock<Arc<Lab>> = LazyLock::new(Default::default);
static STOP_CACHE: LazyLock<Cache> = LazyLock::new(|| lab_cache("bg-stop", &STOP_LAB));

#[bg_writer(key = "stoppable", interval = 10, cache = STOP_CACHE)]
async fn stoppable() -> u32 {
    1
}

#[tokio::test(start_paused = true)]
async fn stop_releases_the_lease_and_a_restart_registers_once() {
    let _g = SERIAL.lock().await;
    for _ in 0..3 {
        stoppable.start().unwrap();
        stoppable.start().unwrap(); // twice is harmless
        sleep(Duration::from_millis(1)).await;
        assert!(STOP_LAB.holder().is_some(), "the writer holds its lease");
        stoppable.stop();
        sleep(Duration::from_millis(1)).await; // the release runs in the background
        assert_eq!(STOP_LAB.holder(), None, "stop released the lease");
    }
    stoppable.start().unwrap();
    sleep(Duration::from_millis(1)).await;
    let before = STOP_LAB.releases.load(SeqCst);
    cachewright::shutdown_async().await;
    assert_eq!(STOP_LAB.holder(), None, "shutdown released the lease");
    assert_eq!(
        STOP_LAB.releases.load(SeqCst) - before,
        1,
        "one registration, however often the writer started"
    );
}

static BLIND_LAB: LazyLock<Arc<Lab>> = LazyLock::new(Default::default);
static BLIND_CACHE: LazyLock<Cache> = LazyLock::new(|| lab_cache("bg-blind", &BLIND_LAB));
static BLIND_CALLS: AtomicU32 = AtomicU32::new(0);

#[bg_writer(key = "blind", interval = 10, cache = BLIND_CACHE)]
async fn blind() -> u32 {
    BLIND_CALLS.fetch_add(1, SeqCst) + 1
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_cannot_confirm_its_lease_neither_loads_nor_writes() {
    let _g = SERIAL.lock().await;
    BLIND_LAB.fail_leases.store(true, SeqCst);
    blind.start().unwrap();
    sleep(Duration::from_secs(35)).await; // four ticks
    assert_eq!(
        BLIND_LAB.value_writes.load(SeqCst),
        0,
        "no write without a confirmed lease"
    );
    assert_eq!(BLIND_CALLS.load(SeqCst), 0, "no scheduled load either");
    BLIND_LAB.fail_leases.store(false, SeqCst);
    sleep(Duration::from_secs(10)).await;
    assert!(
        BLIND_LAB.holder().is_some(),
        "confirmed: the lease is taken"
    );
    assert_eq!(BLIND_CALLS.load(SeqCst), 1, "and the tick loads");
    assert_eq!(BLIND_LAB.value_writes.load(SeqCst), 1, "and writes");
    assert_eq!(*blind.get_async().await.unwrap(), 1);
    blind.stop_async().await;
    assert_eq!(BLIND_LAB.holder(), None, "stop_async released the lease");
}

static LONG_LAB: LazyLock<Arc<Lab>> = LazyLock::new(Default::default);
static LONG_CACHE: LazyLock<Cache> = LazyLock::new(|| lab_cache("bg-long", &LONG_LAB));

/// Ten seconds a load, with a lease of 2 s (twice the interval).
#[bg_writer(key = "long_load", interval = 1, cache = LONG_CACHE)]
async fn long_load() -> u32 {
    sleep(Duration::from_secs(10)).await;
    7
}

#[tokio::test(start_paused = true)]
async fn a_load_longer_than_the_lease_keeps_it_and_writes() {
    let _g = SERIAL.lock().await;
    long_load.start().unwrap();
    sleep(Duration::from_millis(1)).await;
    let mine = LONG_LAB.holder().expect("the writer took the lease");
    sleep(Duration::from_secs(6)).await; // three lease TTLs into the load
    assert_eq!(
        LONG_LAB.holder().as_ref(),
        Some(&mine),
        "renewed during the load"
    );
    assert_eq!(LONG_LAB.value_writes.load(SeqCst), 0, "still loading");
    sleep(Duration::from_secs(5)).await;
    assert_eq!(LONG_LAB.value_writes.load(SeqCst), 1, "written");
    assert_eq!(long_load.try_get().as_deref(), Some(&7));
    long_load.stop_async().await;
}

static LOST_LAB: LazyLock<Arc<Lab>> = LazyLock::new(Default::default);
static LOST_CACHE: LazyLock<Cache> = LazyLock::new(|| lab_cache("bg-lost", &LOST_LAB));

#[bg_writer(key = "lost_lease", interval = 60, cache = LOST_CACHE)]
async fn lost_lease() -> u32 {
    sleep(Duration::from_secs(10)).await;
    1
}

#[tokio::test(start_paused = true)]
async fn a_replica_that_lost_its_lease_during_the_load_does_not_write() {
    let _g = SERIAL.lock().await;
    lost_lease.start().unwrap();
    sleep(Duration::from_secs(3)).await;
    LOST_LAB.steal(); // as if it had expired and another replica took it
    sleep(Duration::from_secs(10)).await;
    assert_eq!(LOST_LAB.value_writes.load(SeqCst), 0, "fenced: not written");
    assert_eq!(
        LOST_LAB.holder().as_deref(),
        Some(&b"another replica"[..]),
        "the other replica keeps its lease"
    );
    lost_lease.stop_async().await;
    assert_eq!(
        LOST_LAB.holder().as_deref(),
        Some(&b"another replica"[..]),
        "stop releases only its own lease"
    );
}

static OVERTAKEN_CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(7_000_000));
static OVERTAKEN_LAB: LazyLock<Arc<Lab>> = LazyLock::new(Default::default);
static OVERTAKEN_CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .name("bg-overtaken")
        .namespace("bg-overtaken")
        .clock(Clock::manual(&OVERTAKEN_CLOCK))
        .layer(LayerConfig::shared(OVERTAKEN_LAB.clone()))
        .build()
});

#[bg_writer(key = "overtaken", interval = 60, cache = OVERTAKEN_CACHE)]
async fn overtaken() -> u32 {
    sleep(Duration::from_secs(10)).await;
    1
}

#[tokio::test(start_paused = true)]
async fn a_load_overtaken_by_an_invalidation_is_not_stored() {
    let _g = SERIAL.lock().await;
    overtaken.start().unwrap();
    sleep(Duration::from_secs(3)).await;
    OVERTAKEN_CLOCK.advance(Duration::from_secs(3));
    OVERTAKEN_CACHE
        .invalidate_entity_async("bg", &"overtaken")
        .await;
    OVERTAKEN_CLOCK.advance(Duration::from_secs(7));
    sleep(Duration::from_secs(10)).await;
    assert_eq!(OVERTAKEN_LAB.value_writes.load(SeqCst), 0, "not written");
    assert_eq!(overtaken.try_get(), None, "nor served");
    let key = overtaken.key().clone();
    assert_eq!(OVERTAKEN_CACHE.get_async::<u32>(&key).await, None);
    overtaken.stop_async().await;
}
