//! Fail-safe, its throttle, loaders that mark their result failed, and the
//! soft and hard timeouts, on the injected clock (expiry) and paused tokio
//! time (timeouts). Each test has its own cache and clock.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::LazyLock;
use std::time::Duration;

use cachewright::{cached, Cache, Clock, ManualClock};

fn cache_on(clock: &'static LazyLock<ManualClock>, name: &str) -> Cache {
    Cache::builder()
        .name(name)
        .clock(Clock::manual(clock))
        .build()
}

#[derive(Debug, Clone, PartialEq)]
struct DbDown;

// ---- fail-safe and its throttle ---------------------------------------------------

static C1: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static CACHE1: LazyLock<Cache> = LazyLock::new(|| cache_on(&C1, "fs1"));
static DOWN1: AtomicBool = AtomicBool::new(false);
static VERSION1: AtomicU32 = AtomicU32::new(1);
static LOADS1: AtomicU32 = AtomicU32::new(0);

#[cached(key = "price:<id>", ttl = 10, fail_safe = "1h", cache = CACHE1, name = "Price")]
fn price(id: u32) -> Result<u32, DbDown> {
    LOADS1.fetch_add(1, SeqCst);
    if DOWN1.load(SeqCst) {
        return Err(DbDown);
    }
    Ok(id * 100 + VERSION1.load(SeqCst))
}

#[test]
fn an_expired_value_is_served_when_the_loader_fails_and_retried_after_the_throttle_only_up_to_the_first_expiry_plus_the_window(
) {
    assert_eq!(price(7), Ok(701));
    C1.advance(Duration::from_secs(11)); // expired 1 s ago
    DOWN1.store(true, SeqCst);
    assert_eq!(price(7), Ok(701), "the loader failed: the last good value");
    assert_eq!(LOADS1.load(SeqCst), 2);
    for _ in 0..100 {
        assert_eq!(price(7), Ok(701));
    }
    assert_eq!(
        LOADS1.load(SeqCst),
        2,
        "within the 30 s throttle, the failing loader is not called again"
    );
    C1.advance(Duration::from_secs(31));
    assert_eq!(
        price(7),
        Ok(701),
        "throttle over: tried again, failed, served again"
    );
    assert_eq!(LOADS1.load(SeqCst), 3);
    let s = CACHE1.stats_for("Price").unwrap();
    assert_eq!(s.fail_safe_served, 2);
    assert_eq!(s.load_errors, 2);
    // Throttled re-serves do not move the window: it ends 1 h after the
    // first expiry (at 10 s), not 1 h after the last re-serve.
    C1.advance(Duration::from_secs(3_540)); // 3 582 s after the load
    assert_eq!(price(7), Ok(701), "still inside the window");
    C1.advance(Duration::from_secs(30)); // 3 612 s: past 10 s + 1 h
    assert_eq!(price(7), Err(DbDown), "past the window: the error");
    // The source is back: a fresh value, and fail-safe is idle.
    DOWN1.store(false, SeqCst);
    VERSION1.store(2, SeqCst);
    assert_eq!(price(7), Ok(702));
}

static C2: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static CACHE2: LazyLock<Cache> = LazyLock::new(|| cache_on(&C2, "fs2"));
static DOWN2: AtomicBool = AtomicBool::new(false);

#[cached(key = "acct:<id>", ttl = 10, fail_safe = "1h", fail_safe_throttle = "5s", cache = CACHE2, name = "Acct")]
fn account(id: u32) -> Result<String, DbDown> {
    if DOWN2.load(SeqCst) {
        return Err(DbDown);
    }
    Ok(format!("account {id}"))
}

#[test]
fn an_invalidated_value_is_never_served_by_fail_safe_even_inside_its_throttle() {
    assert_eq!(account(1).as_deref(), Ok("account 1"));
    assert_eq!(account(2).as_deref(), Ok("account 2"));
    C2.advance(Duration::from_secs(11));
    DOWN2.store(true, SeqCst);
    assert_eq!(account(1).as_deref(), Ok("account 1"), "fail-safe");
    // Served again for the throttle; then the entity is invalidated.
    CACHE2.invalidate_entity("acct", &1);
    assert_eq!(
        account(1),
        Err(DbDown),
        "invalidated: the error, not the old value"
    );
    // An expired entry invalidated before any failure is not served either.
    CACHE2.invalidate_entity("acct", &2);
    assert_eq!(account(2), Err(DbDown));
    let s = CACHE2.stats_for("Acct").unwrap();
    assert_eq!(s.fail_safe_served, 1);
}

static C3: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static CACHE3: LazyLock<Cache> = LazyLock::new(|| cache_on(&C3, "fs3"));
static FEED_DOWN: AtomicBool = AtomicBool::new(false);
static FEED_LOADS: AtomicU32 = AtomicU32::new(0);

/// A function with no error type: the loader marks its placeholder failed.
#[cached(key = "quote:<sym>", ttl = 10, fail_safe = "10m", cache = CACHE3, name = "Quote")]
fn quote(sym: &str) -> Option<u64> {
    FEED_LOADS.fetch_add(1, SeqCst);
    if FEED_DOWN.load(SeqCst) {
        cachewright::mark_failed();
        return None;
    }
    Some(sym.len() as u64 * 10)
}

#[test]
fn a_result_marked_failed_is_replaced_by_the_last_good_value_and_never_cached() {
    FEED_DOWN.store(true, SeqCst);
    assert_eq!(
        quote("NEW"),
        None,
        "nothing to fall back on: the result itself"
    );
    assert_eq!(quote("NEW"), None);
    assert_eq!(
        FEED_LOADS.load(SeqCst),
        2,
        "a result marked failed is not cached"
    );
    FEED_DOWN.store(false, SeqCst);
    assert_eq!(quote("ACME"), Some(40));
    C3.advance(Duration::from_secs(20));
    FEED_DOWN.store(true, SeqCst);
    assert_eq!(
        quote("ACME"),
        Some(40),
        "the last good value, not the placeholder"
    );
    let s = CACHE3.stats_for("Quote").unwrap();
    assert_eq!(s.fail_safe_served, 1);
    assert_eq!(
        s.load_errors, 3,
        "each marked result counts as a failed load"
    );
    C3.advance(Duration::from_secs(600));
    assert_eq!(quote("ACME"), None, "past the 10 min window");
}

// ---- timeouts (paused tokio time) ---------------------------------------------------

#[derive(Debug, PartialEq)]
enum SlowError {
    Timeout(Duration),
    Db,
}

impl From<cachewright::Timeout> for SlowError {
    fn from(t: cachewright::Timeout) -> Self {
        SlowError::Timeout(t.after())
    }
}

static C4: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static CACHE4: LazyLock<Cache> = LazyLock::new(|| cache_on(&C4, "fs4"));
static DELAY4: AtomicU32 = AtomicU32::new(0);
static VERSION4: AtomicU32 = AtomicU32::new(1);
static LOADS4: AtomicU32 = AtomicU32::new(0);
static DONE4: AtomicU32 = AtomicU32::new(0);

#[cached(
    key = "profile:<id>",
    ttl = 10,
    fail_safe = "1h",
    soft_timeout = "100ms",
    hard_timeout = "2s",
    cache = CACHE4,
    name = "Profile"
)]
async fn profile(id: u32) -> Result<String, SlowError> {
    LOADS4.fetch_add(1, SeqCst);
    let delay = DELAY4.load(SeqCst);
    tokio::time::sleep(Duration::from_millis(u64::from(delay))).await;
    DONE4.fetch_add(1, SeqCst);
    Ok(format!("profile {id} v{}", VERSION4.load(SeqCst)))
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn past_the_soft_timeout_the_fail_safe_value_is_served_and_the_load_finishes_in_the_background(
) {
    assert_eq!(profile(1).await.unwrap(), "profile 1 v1");
    C4.advance(Duration::from_secs(11));
    // The source got slow (1 s) and changed.
    DELAY4.store(1_000, SeqCst);
    VERSION4.store(2, SeqCst);
    let start = tokio::time::Instant::now();
    assert_eq!(
        profile(1).await.unwrap(),
        "profile 1 v1",
        "soft timeout: fail-safe"
    );
    assert_eq!(
        start.elapsed(),
        Duration::from_millis(100),
        "waited the soft timeout"
    );
    assert_eq!(DONE4.load(SeqCst), 1, "the slow load is still running");
    // The load goes on and stores its value.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(DONE4.load(SeqCst), 2, "the slow load finished");
    assert_eq!(
        profile(1).await.unwrap(),
        "profile 1 v2",
        "its value serves"
    );
    let s = CACHE4.stats_for("Profile").unwrap();
    assert_eq!(
        (s.soft_timeouts, s.hard_timeouts, s.fail_safe_served),
        (1, 0, 1)
    );
    assert_eq!(LOADS4.load(SeqCst), 2, "one load for the slow key");
}

#[cached(key = "stuck:<id>", ttl = 10, hard_timeout = "2s", cache = CACHE4, name = "Stuck")]
async fn stuck(id: u32) -> Result<String, SlowError> {
    tokio::time::sleep(Duration::from_secs(60)).await;
    Ok(format!("stuck {id}"))
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn past_the_hard_timeout_with_nothing_to_fall_back_on_the_call_gets_the_timeout_error() {
    let start = tokio::time::Instant::now();
    assert_eq!(
        stuck(2).await,
        Err(SlowError::Timeout(Duration::from_secs(2))),
        "no value was ever loaded: the timeout error"
    );
    assert_eq!(start.elapsed(), Duration::from_secs(2));
    assert_ne!(SlowError::Db, SlowError::Timeout(Duration::ZERO));
    let s = CACHE4.stats_for("Stuck").unwrap();
    assert_eq!((s.hard_timeouts, s.fail_safe_served), (1, 0));
    // The load went on: once it ends, its value serves.
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert_eq!(stuck(2).await.unwrap(), "stuck 2");
}

static C5: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static CACHE5: LazyLock<Cache> = LazyLock::new(|| cache_on(&C5, "fs5"));
static DELAY5: AtomicU32 = AtomicU32::new(0);

#[cached(key = "feed:<id>", ttl = 10, fail_safe = "1h", hard_timeout = "500ms", cache = CACHE5, name = "Feed")]
async fn feed(id: u32) -> Result<u32, SlowError> {
    tokio::time::sleep(Duration::from_millis(u64::from(DELAY5.load(SeqCst)))).await;
    Ok(id)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn past_the_hard_timeout_with_a_fail_safe_value_every_waiting_caller_is_served_it() {
    assert_eq!(feed(3).await, Ok(3));
    C5.advance(Duration::from_secs(11));
    DELAY5.store(60_000, SeqCst);
    let calls: Vec<_> = (0..50).map(|_| tokio::spawn(feed(3))).collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), Ok(3), "served the fail-safe value");
    }
    let s = CACHE5.stats_for("Feed").unwrap();
    assert_eq!(s.hard_timeouts, 50, "every caller waited its hard timeout");
    assert_eq!(s.fail_safe_served, 50);
    assert_eq!(s.misses, 1 + 50);
    // One slow load for the 50 callers (its start counts; it has not ended).
    assert_eq!(s.loads, 1, "only the first call's load has ended");
    assert_eq!(feed(3).await, Ok(3), "a hit: served again for the throttle");
    assert_eq!(CACHE5.stats_for("Feed").unwrap().misses, 51);
}

// ---- review fixes -----------------------------------------------------------------

static C6: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static CACHE6: LazyLock<Cache> = LazyLock::new(|| cache_on(&C6, "fs6"));
static DOWN6: AtomicBool = AtomicBool::new(false);
static LOADS6: AtomicU32 = AtomicU32::new(0);

#[cached(key = "menu:<id>", ttl = 10, swr = 300, fail_safe = "1h", cache = CACHE6, name = "Menu")]
fn menu(id: u32) -> Result<u32, DbDown> {
    LOADS6.fetch_add(1, SeqCst);
    if DOWN6.load(SeqCst) {
        return Err(DbDown);
    }
    Ok(id)
}

fn eventually(mut cond: impl FnMut() -> bool) {
    for _ in 0..5_000 {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("condition not reached");
}

#[test]
fn a_failed_background_refresh_keeps_the_stale_value_for_the_throttle_and_is_served_to_nobody() {
    assert_eq!(menu(1), Ok(1));
    C6.advance(Duration::from_secs(11)); // stale
    DOWN6.store(true, SeqCst);
    assert_eq!(menu(1), Ok(1), "stale, served; the refresh fails");
    eventually(|| LOADS6.load(SeqCst) == 2);
    eventually(|| CACHE6.stats_for("Menu").unwrap().refreshes == 1 && menu(1) == Ok(1));
    for _ in 0..20 {
        assert_eq!(menu(1), Ok(1));
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        LOADS6.load(SeqCst),
        2,
        "held for the throttle: no refresh per stale hit"
    );
    let s = CACHE6.stats_for("Menu").unwrap();
    assert_eq!(s.fail_safe_served, 0, "a refresh serves nobody");
    assert_eq!(s.refreshes, 1);
}

static C7: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static CACHE7: LazyLock<Cache> = LazyLock::new(|| cache_on(&C7, "fs7"));
static DOWN7: AtomicBool = AtomicBool::new(false);
static LOADS7: AtomicU32 = AtomicU32::new(0);

#[cached(key = "tile:<id>", ttl = 10, early_refresh = 0.5, fail_safe = "1h", fail_safe_throttle = "60s", cache = CACHE7, name = "Tile")]
fn tile(id: u32) -> Result<u32, DbDown> {
    LOADS7.fetch_add(1, SeqCst);
    if DOWN7.load(SeqCst) {
        return Err(DbDown);
    }
    Ok(id)
}

#[test]
fn a_value_served_again_for_its_throttle_is_never_due_for_an_early_refresh() {
    assert_eq!(tile(1), Ok(1));
    C7.advance(Duration::from_secs(11));
    DOWN7.store(true, SeqCst);
    assert_eq!(tile(1), Ok(1), "fail-safe");
    assert_eq!(LOADS7.load(SeqCst), 2);
    // 56 s into a 60 s throttle of an entry whose TTL is 10 s.
    C7.advance(Duration::from_secs(56));
    for _ in 0..5 {
        assert_eq!(tile(1), Ok(1));
    }
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(
        LOADS7.load(SeqCst),
        2,
        "no early refresh of a throttled value"
    );
}

#[test]
fn a_direct_load_marked_failed_is_returned_and_not_cached() {
    let cache = Cache::builder().build();
    let key = cache.key("feed", &1);
    let v: Result<u32, DbDown> = cache.get_or_load(&key, Some(Duration::from_secs(60)), || {
        assert!(cachewright::mark_failed());
        Ok(0)
    });
    assert_eq!(v, Ok(0));
    let again: Result<u32, DbDown> =
        cache.get_or_load(&key, Some(Duration::from_secs(60)), || Ok(5));
    assert_eq!(again, Ok(5), "the marked result was not kept");
    let direct = cache
        .stats()
        .into_iter()
        .find(|s| s.use_case == "direct")
        .unwrap();
    assert_eq!(direct.load_errors, 1);
}

static C8: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static CACHE8: LazyLock<Cache> = LazyLock::new(|| cache_on(&C8, "fs8"));

#[cached(key = "hang:<id>", ttl = 10, hard_timeout = "50ms", cache = CACHE8, name = "Hang")]
async fn hang(id: u32) -> Result<u32, SlowError> {
    std::future::pending::<()>().await;
    Ok(id)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn callers_that_time_out_waiting_on_a_stuck_load_leave_no_task_behind() {
    let tasks = || {
        tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks()
    };
    let before = tasks();
    for _ in 0..200 {
        assert_eq!(
            hang(1).await,
            Err(SlowError::Timeout(Duration::from_millis(50)))
        );
    }
    assert!(
        tasks() <= before + 1,
        "only the stuck load itself goes on: {} tasks",
        tasks() - before
    );
}

tokio::task_local! {
    static TENANT: u32;
}

static C9: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static CACHE9: LazyLock<Cache> = LazyLock::new(|| cache_on(&C9, "fs9"));

#[cached(key = "row:<id>", ttl = 10, hard_timeout = "1s", cache = CACHE9, name = "TenantRow")]
async fn tenant_row(id: u32) -> Result<u32, SlowError> {
    TENANT.try_with(|t| t + id).map_err(|_| SlowError::Db)
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn a_timed_load_runs_in_the_callers_task_with_its_task_locals() {
    assert_eq!(TENANT.scope(7, tenant_row(1)).await, Ok(8));
}
