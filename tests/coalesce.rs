//! Read coalescing: concurrent single-key reads of a layer whose batch read
//! is native leave as batch reads, each caller gets its own key's value, and
//! failures, wrong answers, slowness and cancellation of a batch never cost
//! a caller more than the layer's timeout or give it another key's value.
//!
//! A custom backend (as a user would write one) records each operation and
//! can be slowed, made to hang, to fail its batch reads or to answer them
//! with the wrong number of values. Time is tokio's paused clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU8, Ordering::SeqCst};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use cachewright::backends::{async_trait, Backend, BackendError, Bus, BusEvent, BusSink};
use cachewright::{cached, Cache, LayerConfig};

const NORMAL: u8 = 0;
const _: u8 = NORMAL;
/// `get_many` fails.
const BATCH_FAILS: u8 = 1;
/// `get_many` answers one value too few.
const BATCH_SHORT: u8 = 2;
/// Every read waits an hour.
const HANG: u8 = 3;
/// Single-key reads wait an hour; batch reads answer.
const GET_HANGS: u8 = 4;

#[derive(Debug, Default)]
struct Slow {
    map: Mutex<HashMap<String, Vec<u8>>>,
    mode: AtomicU8,
    /// Single-key reads of entries (watermark reads are not counted).
    gets: AtomicU32,
    /// Keys of each batch read of entries.
    batches: Mutex<Vec<usize>>,
    native: bool,
}

impl Slow {
    fn new(native: bool) -> Arc<Self> {
        Arc::new(Slow {
            native,
            ..Default::default()
        })
    }

    async fn pause(&self, single: bool) {
        let mode = self.mode.load(SeqCst);
        let d = if mode == HANG || (single && mode == GET_HANGS) {
            Duration::from_secs(3600)
        } else {
            Duration::from_millis(2)
        };
        tokio::time::sleep(d).await;
    }

    fn reset(&self) {
        self.gets.store(0, SeqCst);
        self.batches.lock().unwrap().clear();
    }

    fn batches(&self) -> Vec<usize> {
        self.batches.lock().unwrap().clone()
    }
}

fn is_entry(key: &str) -> bool {
    !key.contains("~tag:")
}

#[async_trait]
impl Backend for Slow {
    fn name(&self) -> &str {
        "slow"
    }
    fn native_get_many(&self) -> bool {
        self.native
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        if is_entry(key) {
            self.gets.fetch_add(1, SeqCst);
        }
        self.pause(true).await;
        Ok(self.map.lock().unwrap().get(key).cloned())
    }
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, BackendError> {
        let entries = keys.iter().filter(|k| is_entry(k)).count();
        if entries > 0 {
            self.batches.lock().unwrap().push(entries);
        }
        self.pause(false).await;
        let mode = self.mode.load(SeqCst);
        if entries > 0 && mode == BATCH_FAILS {
            return Err(BackendError::Refused {
                backend: "slow".into(),
                message: "batch refused".into(),
            });
        }
        let map = self.map.lock().unwrap();
        let mut out: Vec<_> = keys.iter().map(|k| map.get(k).cloned()).collect();
        if entries > 0 && mode == BATCH_SHORT {
            out.remove(0);
        }
        Ok(out)
    }
    async fn set(&self, key: &str, value: Vec<u8>, _ttl: Duration) -> Result<(), BackendError> {
        self.pause(true).await;
        self.map.lock().unwrap().insert(key.to_owned(), value);
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<bool, BackendError> {
        Ok(self.map.lock().unwrap().remove(key).is_some())
    }
}

/// A bus that is connected at once and carries nothing: tags, once read,
/// stay known, as with Redis pub/sub up.
#[derive(Debug)]
struct Quiet;

#[async_trait]
impl Bus for Quiet {
    async fn publish(&self, _channel: &str, _payload: Vec<u8>) -> Result<(), BackendError> {
        Ok(())
    }
    fn subscribe(&self, _channel: &str, sink: BusSink) {
        sink(BusEvent::Connected);
    }
}

fn cache_over(backend: &Arc<Slow>, coalesce: Option<bool>) -> Cache {
    let mut layer = LayerConfig::shared(backend.clone()).timeout(Duration::from_millis(100));
    if let Some(on) = coalesce {
        layer = layer.coalesce_reads(on);
    }
    Cache::builder().bus(Arc::new(Quiet)).layer(layer).build()
}

/// Fills `ids` through `f`, then calls it for all of them at once; returns
/// the answers in the order of `ids`.
async fn all_at_once<F, Fut>(ids: std::ops::Range<u32>, f: F) -> Vec<Result<String, String>>
where
    F: Fn(u32) -> Fut,
    Fut: std::future::Future<Output = Result<String, String>> + Send + 'static,
{
    let tasks: Vec<_> = ids.map(|id| tokio::spawn(f(id))).collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

fn expected(ids: std::ops::Range<u32>) -> Vec<Result<String, String>> {
    ids.map(|id| Ok(format!("value-{id}"))).collect()
}

// ---- batches, each caller its own value -------------------------------------------

static BATCHED: LazyLock<Arc<Slow>> = LazyLock::new(|| Slow::new(true));
static BATCHED_CACHE: LazyLock<Cache> = LazyLock::new(|| cache_over(&BATCHED, None));
static BATCHED_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "item:<id>", ttl = 600, layers = remote, cache = BATCHED_CACHE)]
async fn batched(id: u32) -> Result<String, String> {
    BATCHED_LOADS.fetch_add(1, SeqCst);
    Ok(format!("value-{id}"))
}

#[tokio::test(start_paused = true)]
async fn concurrent_reads_leave_as_batches_and_each_gets_its_own_value() {
    for id in 0..50 {
        batched(id).await.unwrap();
    }
    assert_eq!(BATCHED_LOADS.load(SeqCst), 50);
    BATCHED.reset();

    assert_eq!(all_at_once(0..50, batched).await, expected(0..50));
    assert_eq!(BATCHED_LOADS.load(SeqCst), 50, "every read was an L2 hit");
    let (gets, batches) = (BATCHED.gets.load(SeqCst), BATCHED.batches());
    assert_eq!(
        gets as usize + batches.iter().sum::<usize>(),
        50,
        "each key read once: {gets} single reads, batches {batches:?}"
    );
    assert!(
        batches.len() < 10 && batches.iter().any(|&n| n > 1),
        "reads were coalesced: {gets} single reads, batches {batches:?}"
    );
    let stats = &BATCHED_CACHE.layer_stats()[0];
    assert_eq!((stats.hits, stats.errors), (50, 0));

    // A lone read goes out alone, at once: nothing is left in flight.
    BATCHED.reset();
    assert_eq!(batched(7).await.unwrap(), "value-7");
    assert_eq!(BATCHED.gets.load(SeqCst), 1);
    assert!(BATCHED.batches().is_empty());
}

// ---- off, and off by default for non-native batch reads -----------------------------

static SEQUENTIAL: LazyLock<Arc<Slow>> = LazyLock::new(|| Slow::new(false));
static SEQUENTIAL_CACHE: LazyLock<Cache> = LazyLock::new(|| cache_over(&SEQUENTIAL, None));
static FORCED_OFF: LazyLock<Arc<Slow>> = LazyLock::new(|| Slow::new(true));
static FORCED_OFF_CACHE: LazyLock<Cache> = LazyLock::new(|| cache_over(&FORCED_OFF, Some(false)));

#[cached(key = "item:<id>", ttl = 600, layers = remote, cache = SEQUENTIAL_CACHE)]
async fn sequential(id: u32) -> Result<String, String> {
    Ok(format!("value-{id}"))
}

#[cached(key = "item:<id>", ttl = 600, layers = remote, cache = FORCED_OFF_CACHE)]
async fn forced_off(id: u32) -> Result<String, String> {
    Ok(format!("value-{id}"))
}

#[tokio::test(start_paused = true)]
async fn without_a_native_batch_read_or_when_turned_off_reads_go_one_by_one() {
    for id in 0..20 {
        sequential(id).await.unwrap();
        forced_off(id).await.unwrap();
    }
    SEQUENTIAL.reset();
    FORCED_OFF.reset();
    assert_eq!(all_at_once(0..20, sequential).await, expected(0..20));
    assert_eq!(all_at_once(0..20, forced_off).await, expected(0..20));
    for b in [&SEQUENTIAL, &FORCED_OFF] {
        assert_eq!(b.gets.load(SeqCst), 20);
        assert!(b.batches().is_empty(), "{:?}", b.batches());
    }
}

// ---- a failed batch: each waiter loads for itself ------------------------------------

static FAILING: LazyLock<Arc<Slow>> = LazyLock::new(|| Slow::new(true));
static FAILING_CACHE: LazyLock<Cache> = LazyLock::new(|| cache_over(&FAILING, None));
static FAILING_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "item:<id>", ttl = 600, layers = remote, cache = FAILING_CACHE)]
async fn failing(id: u32) -> Result<String, String> {
    FAILING_LOADS.fetch_add(1, SeqCst);
    Ok(format!("value-{id}"))
}

#[tokio::test(start_paused = true)]
async fn a_failed_batch_read_sends_its_waiters_to_their_loaders_counted_once() {
    for id in 0..20 {
        failing(id).await.unwrap();
    }
    FAILING_LOADS.store(0, SeqCst);
    FAILING.reset();
    FAILING.mode.store(BATCH_FAILS, SeqCst);

    assert_eq!(all_at_once(0..20, failing).await, expected(0..20));
    let batched: usize = FAILING.batches().iter().sum();
    assert!(batched > 0, "some reads were batched");
    assert_eq!(
        FAILING_LOADS.load(SeqCst) as usize,
        batched,
        "each waiter of a failed batch loads; the direct reads hit"
    );
    let stats = &FAILING_CACHE.layer_stats()[0];
    assert_eq!(
        stats.errors as usize,
        FAILING.batches().len(),
        "one error per failed batch, not per waiter"
    );
}

// ---- a wrong answer: nobody gets another key's value -----------------------------------

static SHORT: LazyLock<Arc<Slow>> = LazyLock::new(|| Slow::new(true));
static SHORT_CACHE: LazyLock<Cache> = LazyLock::new(|| cache_over(&SHORT, None));

#[cached(key = "item:<id>", ttl = 600, layers = remote, cache = SHORT_CACHE)]
async fn short(id: u32) -> Result<String, String> {
    Ok(format!("value-{id}"))
}

#[tokio::test(start_paused = true)]
async fn a_batch_answered_with_too_few_values_is_a_failure_not_a_shift() {
    for id in 0..20 {
        short(id).await.unwrap();
    }
    SHORT.reset();
    SHORT.mode.store(BATCH_SHORT, SeqCst);
    // Were the answers zipped as they came, caller i would get i + 1's value.
    assert_eq!(all_at_once(0..20, short).await, expected(0..20));
    assert!(!SHORT.batches().is_empty());
    assert!(SHORT_CACHE.layer_stats()[0].errors > 0);
}

// ---- a hanging layer: queued reads keep the layer's timeout -------------------------

static HANGING: LazyLock<Arc<Slow>> = LazyLock::new(|| Slow::new(true));
static HANGING_CACHE: LazyLock<Cache> = LazyLock::new(|| cache_over(&HANGING, None));

#[cached(key = "item:<id>", ttl = 600, layers = remote, cache = HANGING_CACHE)]
async fn hanging(id: u32) -> Result<String, String> {
    Ok(format!("value-{id}"))
}

#[tokio::test(start_paused = true)]
async fn queued_reads_of_a_hanging_layer_finish_within_its_timeout() {
    for id in 0..10 {
        hanging(id).await.unwrap();
    }
    HANGING.reset();
    HANGING.mode.store(HANG, SeqCst);
    let timed = |id: u32| async move {
        let start = tokio::time::Instant::now();
        let v = hanging(id).await;
        (v, start.elapsed())
    };
    let tasks: Vec<_> = (0..10).map(|id| tokio::spawn(timed(id))).collect();
    for (id, t) in tasks.into_iter().enumerate() {
        let (v, took) = t.await.unwrap();
        assert_eq!(v.unwrap(), format!("value-{id}"));
        assert!(
            took <= Duration::from_millis(100),
            "call {id} took {took:?}, beyond the 100 ms layer timeout"
        );
    }
    assert!(
        !HANGING.batches().is_empty(),
        "some reads were queued behind the hanging one"
    );
    let l = &HANGING_CACHE.layer_stats()[0];
    assert_eq!(
        l.timeouts as usize,
        1 + HANGING.batches().len(),
        "one timeout for the direct read and one per batch, not one per waiter too: {l:?}"
    );
}

// ---- a cancelled read strands nobody ---------------------------------------------------

static CANCELLED: LazyLock<Arc<Slow>> = LazyLock::new(|| Slow::new(true));
static CANCELLED_CACHE: LazyLock<Cache> = LazyLock::new(|| cache_over(&CANCELLED, None));

#[cached(key = "item:<id>", ttl = 600, layers = remote, cache = CANCELLED_CACHE)]
async fn cancelled(id: u32) -> Result<String, String> {
    Ok(format!("value-{id}"))
}

#[tokio::test(start_paused = true)]
async fn cancelling_reads_in_flight_strands_no_waiter_and_frees_the_layer() {
    for id in 0..10 {
        cancelled(id).await.unwrap();
    }
    CANCELLED.reset();
    let first = tokio::spawn(cancelled(0));
    tokio::task::yield_now().await;
    let rest: Vec<_> = (1..10).map(|id| tokio::spawn(cancelled(id))).collect();
    tokio::task::yield_now().await;
    first.abort();
    for (i, t) in rest.into_iter().enumerate() {
        assert_eq!(t.await.unwrap().unwrap(), format!("value-{}", i + 1));
    }
    assert!(first.await.unwrap_err().is_cancelled());
    // Nothing is counted in flight any more: a lone read goes out alone.
    CANCELLED.reset();
    assert_eq!(cancelled(3).await.unwrap(), "value-3");
    assert_eq!(
        (CANCELLED.gets.load(SeqCst), CANCELLED.batches().len()),
        (1, 0)
    );
}

// ---- a flush stranded on a runtime nobody drives -------------------------------------

static STRANDED: LazyLock<Arc<Slow>> = LazyLock::new(|| Slow::new(true));
static STRANDED_CACHE: LazyLock<Cache> = LazyLock::new(|| cache_over(&STRANDED, None));
static STRANDED_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "item:<id>", ttl = 600, layers = remote, cache = STRANDED_CACHE)]
async fn stranded(id: u32) -> Result<String, String> {
    STRANDED_LOADS.fetch_add(1, SeqCst);
    Ok(format!("value-{id}"))
}

/// A read queued on a current-thread runtime whose caller stops driving it
/// (a `select!` that returned at once) leaves its flush task there, never
/// run. Reads after it still finish: a waiter gives up at its own limit
/// (and loads), and a read queued a timeout later schedules a new flush.
/// Real time: the test asserts outcomes only (it would hang without the fix).
#[test]
fn a_flush_stranded_on_an_undriven_runtime_holds_nobody_beyond_the_timeout() {
    let mt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let ct = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    mt.block_on(async {
        for id in 0..4 {
            stranded(id).await.unwrap();
        }
    });
    STRANDED_LOADS.store(0, SeqCst);
    STRANDED.reset();
    STRANDED.mode.store(GET_HANGS, SeqCst);
    // A direct read that hangs (until its timeout): later reads queue.
    let hanging = mt.spawn(stranded(0));
    while STRANDED.gets.load(SeqCst) == 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    // Queued on `ct`, whose caller returns without ever yielding to it.
    ct.block_on(async {
        let read = std::pin::pin!(stranded(1));
        tokio::select! {
            biased;
            _ = read => unreachable!("a queued read cannot be answered before a flush"),
            _ = std::future::ready(()) => {}
        }
    });
    // Queued behind the stranded flush: answered by its loader at its limit.
    assert_eq!(mt.block_on(stranded(2)).unwrap(), "value-2");
    assert_eq!(mt.block_on(hanging).unwrap().unwrap(), "value-0");
    // A timeout later a new flush is scheduled: an L2 hit again.
    let loads = STRANDED_LOADS.load(SeqCst);
    assert_eq!(mt.block_on(stranded(3)).unwrap(), "value-3");
    assert_eq!(
        STRANDED_LOADS.load(SeqCst),
        loads,
        "read 3 came from the layer, through a new flush"
    );
    let l = &STRANDED_CACHE.layer_stats()[0];
    assert_eq!(
        l.timeouts, 2,
        "the hanging direct read, and read 2 stalled in the queue: {l:?}"
    );
    assert!(
        !l.open && l.skipped == 0,
        "a stalled queue is not held against the backend: {l:?}"
    );
    drop(ct);
}
