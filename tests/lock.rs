//! `lock = true` across OS processes against a real redis-server: four
//! processes of 200 concurrent callers each miss one cold key at once; with
//! the lock the loader runs once in all (counted in Redis), without it at
//! most once per process. A lease holder killed mid-load holds the others
//! up no longer than the lease.

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cachewright::backends::redis::RedisBackend;
use cachewright::{cached, Cache, LayerConfig};
use support::{eventually, RedisServer};

// ---- the child: one replica ------------------------------------------------------

const URL: &str = "LOCKTEST_URL";
const MODE: &str = "LOCKTEST_MODE";

static CACHE: OnceLock<Cache> = OnceLock::new();
static LOCAL_LOADS: AtomicU32 = AtomicU32::new(0);

fn replica_cache() -> Cache {
    CACHE
        .get()
        .expect("the child builds its cache first")
        .clone()
}

fn redis() -> redis::Connection {
    let url = std::env::var(URL).expect("the parent gives the url");
    redis::Client::open(url).unwrap().get_connection().unwrap()
}

/// The loader: counted in Redis (across processes) and here; a mode of
/// `hang` never returns (its process is killed).
async fn load(id: u32) -> Result<String, String> {
    LOCAL_LOADS.fetch_add(1, SeqCst);
    let _: i64 = redis::cmd("INCR").arg("loads").query(&mut redis()).unwrap();
    if std::env::var(MODE).as_deref() == Ok("hang") {
        tokio::time::sleep(Duration::from_secs(3_600)).await;
    }
    // Long enough that every replica reaches the key while it loads, on a
    // loaded machine too.
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    Ok(format!("item {id}"))
}

#[cached(key = "item:<id>", ttl = 60, lock = true, lock_wait = "4s", cache = replica_cache(), name = "Locked")]
async fn locked(id: u32) -> Result<String, String> {
    load(id).await
}

#[cached(key = "item:<id>", ttl = 60, cache = replica_cache(), name = "Unlocked")]
async fn unlocked(id: u32) -> Result<String, String> {
    load(id).await
}

/// One replica: waits for the parent's `go`, then 200 concurrent calls of
/// key 1; reports its loads and lock waits. Does nothing outside a child.
#[test]
fn replica() {
    let Ok(url) = std::env::var(URL) else {
        return;
    };
    let mode = std::env::var(MODE).unwrap();
    let layer =
        LayerConfig::new(RedisBackend::from_url(&url).unwrap()).timeout(Duration::from_secs(2));
    let cache = Cache::builder().namespace("lock").layer(layer).build();
    CACHE.set(cache.clone()).ok();
    // Until its invalidation bus is up, a process trusts no value it did
    // not load itself (waiters on a load included): a replica serves once
    // it is up.
    eventually("the bus connects", || cache.bus_connected());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let _: i64 = redis::cmd("INCR").arg("ready").query(&mut redis()).unwrap();
    loop {
        let go: Option<String> = redis::cmd("GET").arg("go").query(&mut redis()).unwrap();
        if go.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let start = Instant::now();
    rt.block_on(async {
        let calls: Vec<_> = (0..200)
            .map(|_| {
                let unlocked_mode = mode == "unlocked";
                tokio::spawn(async move {
                    if unlocked_mode {
                        unlocked(1).await
                    } else {
                        locked(1).await
                    }
                })
            })
            .collect();
        for c in calls {
            assert_eq!(c.await.unwrap().unwrap(), "item 1");
        }
    });
    let name = if mode == "unlocked" {
        "Unlocked"
    } else {
        "Locked"
    };
    let s = cache.stats_for(name).unwrap();
    println!(
        "REPLICA loads={} lock_waits={} expired={} ms={}",
        LOCAL_LOADS.load(SeqCst),
        s.lock_waits,
        s.lock_waits_expired,
        start.elapsed().as_millis()
    );
}

// ---- the parent --------------------------------------------------------------------

fn spawn_replica(url: &str, mode: &str) -> Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "replica", "--nocapture", "--test-threads=1"])
        .env(URL, url)
        .env(MODE, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the test binary runs")
}

fn finish(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "a replica failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.find("REPLICA ").map(|i| l[i..].to_owned()))
        .unwrap_or_else(|| panic!("no report:\n{stdout}"))
}

fn count(server: &RedisServer, key: &str) -> i64 {
    let v: Option<i64> = redis::cmd("GET")
        .arg(key)
        .query(&mut server.conn())
        .unwrap();
    v.unwrap_or(0)
}

/// Four replicas of 200 callers each, released together.
fn herd(mode: &str) -> (i64, Vec<String>) {
    let server = RedisServer::start();
    let url = server.url();
    let children: Vec<Child> = (0..4).map(|_| spawn_replica(&url, mode)).collect();
    eventually("the four replicas are ready", || {
        count(&server, "ready") == 4
    });
    let _: () = redis::cmd("SET")
        .arg("go")
        .arg("1")
        .query(&mut server.conn())
        .unwrap();
    let reports: Vec<String> = children.into_iter().map(finish).collect();
    (count(&server, "loads"), reports)
}

#[test]
fn with_the_lock_four_processes_of_200_callers_load_a_cold_key_once() {
    let (loads, reports) = herd("locked");
    println!("{reports:#?}");
    assert_eq!(loads, 1, "one load across the four processes: {reports:#?}");
    let loaded = reports.iter().filter(|r| r.contains("loads=1 ")).count();
    assert_eq!(loaded, 1, "{reports:#?}");
    assert!(
        reports.iter().all(|r| r.contains("expired=0")),
        "nobody gave up waiting: {reports:#?}"
    );
}

/// Without the lock, single flight holds within each process only. A
/// process whose load began before another process's write of the key was
/// announced does not hand its (older) value to its waiters, and loads once
/// more: up to twice per process (seen: 4 or 5 loads in all).
#[test]
fn without_the_lock_each_process_loads_on_its_own() {
    let (loads, reports) = herd("unlocked");
    println!("{reports:#?}");
    assert!(
        (2..=8).contains(&loads),
        "more than one load, at most two per process: {loads}"
    );
    assert!(
        reports.iter().all(|r| ["loads=0 ", "loads=1 ", "loads=2 "]
            .iter()
            .any(|n| r.contains(n))),
        "single flight within each process: {reports:#?}"
    );
}

#[test]
fn a_lease_holder_killed_mid_load_holds_the_others_up_no_longer_than_its_lease() {
    let server = RedisServer::start();
    let url = server.url();
    let mut holder = spawn_replica(&url, "hang");
    eventually("the holder is ready", || count(&server, "ready") == 1);
    let _: () = redis::cmd("SET")
        .arg("go")
        .arg("1")
        .query(&mut server.conn())
        .unwrap();
    eventually("the holder is loading", || count(&server, "loads") == 1);
    let others: Vec<Child> = (0..2).map(|_| spawn_replica(&url, "locked")).collect();
    eventually("the others are calling", || count(&server, "ready") == 3);
    // Let them find the lease held and wait on it, then kill the holder.
    std::thread::sleep(Duration::from_millis(300));
    holder.kill().unwrap();
    holder.wait().unwrap();
    let reports: Vec<String> = others.into_iter().map(finish).collect();
    println!("{reports:#?}");
    let loads = count(&server, "loads");
    assert_eq!(
        loads, 2,
        "one of the two took the lease once it ran out and loaded; the other got its value: {reports:#?}"
    );
}

// ---- sync functions: two caches of one process stand for two replicas --------------

static SYNC_A: OnceLock<Cache> = OnceLock::new();
static SYNC_B: OnceLock<Cache> = OnceLock::new();
static SYNC_LOADS: AtomicU32 = AtomicU32::new(0);

fn sync_load(id: u32) -> String {
    SYNC_LOADS.fetch_add(1, SeqCst);
    std::thread::sleep(Duration::from_millis(1_000));
    format!("row {id}")
}

#[cached(key = "row:<id>", ttl = 60, lock = true, cache = SYNC_A.get().unwrap().clone(), name = "SyncLocked")]
fn row_a(id: u32) -> String {
    sync_load(id)
}

#[cached(key = "row:<id>", ttl = 60, lock = true, cache = SYNC_B.get().unwrap().clone(), name = "SyncLocked")]
fn row_b(id: u32) -> String {
    sync_load(id)
}

#[test]
fn sync_callers_of_two_caches_sharing_redis_load_once() {
    let server = RedisServer::start();
    let build = || {
        let layer = LayerConfig::new(RedisBackend::from_url(&server.url()).unwrap())
            .timeout(Duration::from_secs(2));
        Cache::builder().namespace("sync").layer(layer).build()
    };
    let (a, b) = (build(), build());
    eventually("both buses connect", || {
        a.bus_connected() && b.bus_connected()
    });
    SYNC_A.set(a.clone()).ok();
    SYNC_B.set(b.clone()).ok();
    std::thread::scope(|s| {
        for i in 0..16 {
            s.spawn(move || {
                let v = if i % 2 == 0 { row_a(9) } else { row_b(9) };
                assert_eq!(v, "row 9");
            });
        }
    });
    assert_eq!(SYNC_LOADS.load(SeqCst), 1, "one load for both caches");
    let waits = a.stats_for("SyncLocked").unwrap().lock_waits
        + b.stats_for("SyncLocked").unwrap().lock_waits;
    assert!(
        waits <= 1,
        "at most the other cache's leader waited: {waits}"
    );
}

// ---- early refresh across replicas: the second replica takes the first's -----------

static CLOCK: std::sync::LazyLock<cachewright::ManualClock> =
    std::sync::LazyLock::new(|| cachewright::ManualClock::new(1_000_000));
static EARLY_A: OnceLock<Cache> = OnceLock::new();
static EARLY_B: OnceLock<Cache> = OnceLock::new();
static EARLY_LOADS: AtomicU32 = AtomicU32::new(0);

fn early_load(id: u32) -> String {
    let n = EARLY_LOADS.fetch_add(1, SeqCst) + 1;
    format!("rate {id} v{n}")
}

#[cached(key = "rate:<id>", ttl = 10, early_refresh = 0.8, cache = EARLY_A.get().unwrap().clone(), name = "Rate")]
fn rate_a(id: u32) -> String {
    early_load(id)
}

#[cached(key = "rate:<id>", ttl = 10, early_refresh = 0.8, cache = EARLY_B.get().unwrap().clone(), name = "Rate")]
fn rate_b(id: u32) -> String {
    early_load(id)
}

#[test]
fn a_replica_due_for_an_early_refresh_takes_the_value_another_replica_refreshed() {
    let server = RedisServer::start();
    let build = || {
        let layer = LayerConfig::new(RedisBackend::from_url(&server.url()).unwrap())
            .timeout(Duration::from_secs(2));
        Cache::builder()
            .namespace("early")
            .clock(cachewright::Clock::manual(&CLOCK))
            .layer(layer)
            .build()
    };
    let (a, b) = (build(), build());
    eventually("both buses connect", || {
        a.bus_connected() && b.bus_connected()
    });
    EARLY_A.set(a.clone()).ok();
    EARLY_B.set(b.clone()).ok();
    assert_eq!(rate_a(1), "rate 1 v1");
    assert_eq!(rate_b(1), "rate 1 v1", "read from Redis");
    CLOCK.advance(Duration::from_millis(8_500));
    assert_eq!(
        rate_a(1),
        "rate 1 v1",
        "due: served, refreshed in the background"
    );
    eventually("A refreshed", || rate_a(1) == "rate 1 v2");
    // B hears of A's write (the bus) and reads it, or, due itself before
    // it heard, its refresh finds A's newer value in Redis: no load either
    // way.
    eventually("B has A's refresh", || rate_b(1) == "rate 1 v2");
    assert_eq!(EARLY_LOADS.load(SeqCst), 2, "B ran no load");
}

// Without a bus (a shared memory layer): nothing tells B of A's write, and
// B's own refresh finds it.
static QUIET_CLOCK: std::sync::LazyLock<cachewright::ManualClock> =
    std::sync::LazyLock::new(|| cachewright::ManualClock::new(1_000_000));
static QUIET_A: OnceLock<Cache> = OnceLock::new();
static QUIET_B: OnceLock<Cache> = OnceLock::new();
static QUIET_LOADS: AtomicU32 = AtomicU32::new(0);

fn quiet_load(id: u32) -> String {
    let n = QUIET_LOADS.fetch_add(1, SeqCst) + 1;
    format!("fx {id} v{n}")
}

#[cached(key = "fx:<id>", ttl = 10, early_refresh = 0.8, cache = QUIET_A.get().unwrap().clone(), name = "Fx")]
fn fx_a(id: u32) -> String {
    quiet_load(id)
}

#[cached(key = "fx:<id>", ttl = 10, early_refresh = 0.8, cache = QUIET_B.get().unwrap().clone(), name = "Fx")]
fn fx_b(id: u32) -> String {
    quiet_load(id)
}

#[test]
fn without_a_bus_a_due_refresh_takes_a_newer_value_from_the_shared_layer_instead_of_loading() {
    let shared = std::sync::Arc::new(cachewright::backends::MemoryBackend::new());
    let build = || {
        Cache::builder()
            .namespace("quiet")
            .clock(cachewright::Clock::manual(&QUIET_CLOCK))
            .layer(LayerConfig::shared(shared.clone()))
            .build()
    };
    QUIET_A.set(build()).ok();
    QUIET_B.set(build()).ok();
    assert_eq!(fx_a(1), "fx 1 v1");
    assert_eq!(fx_b(1), "fx 1 v1", "from the shared layer");
    QUIET_CLOCK.advance(Duration::from_millis(8_500));
    assert_eq!(fx_a(1), "fx 1 v1");
    eventually("A refreshed", || fx_a(1) == "fx 1 v2");
    assert_eq!(fx_b(1), "fx 1 v1", "B heard nothing: due, served its own");
    eventually("B took A's refresh", || fx_b(1) == "fx 1 v2");
    assert_eq!(QUIET_LOADS.load(SeqCst), 2, "B's refresh ran no load");
}

// ---- a lease is let go when its load is cancelled; refreshes still load ------------

static CANCEL: OnceLock<Cache> = OnceLock::new();
static SWR_LOADS: AtomicU32 = AtomicU32::new(0);
static SWR_CLOCK: std::sync::LazyLock<cachewright::ManualClock> =
    std::sync::LazyLock::new(|| cachewright::ManualClock::new(1_000_000));

#[cached(key = "stuck:<id>", ttl = 60, lock = true, cache = CANCEL.get().unwrap().clone(), name = "Stuck")]
async fn stuck(id: u32) -> Result<u32, String> {
    std::future::pending::<()>().await;
    Ok(id)
}

#[cached(key = "menu:<id>", ttl = 10, swr = 300, lock = true, cache = CANCEL.get().unwrap().clone(), name = "LockedMenu")]
fn locked_menu(id: u32) -> u32 {
    SWR_LOADS.fetch_add(1, SeqCst) + id
}

fn lock_keys(server: &RedisServer) -> Vec<String> {
    redis::cmd("KEYS")
        .arg("*~lock:*")
        .query(&mut server.conn())
        .unwrap()
}

#[test]
fn a_cancelled_locked_load_lets_go_of_its_lease_and_a_stale_refresh_still_loads() {
    let server = RedisServer::start();
    let layer = LayerConfig::new(RedisBackend::from_url(&server.url()).unwrap())
        .timeout(Duration::from_secs(2));
    let cache = Cache::builder()
        .namespace("cancel")
        .clock(cachewright::Clock::manual(&SWR_CLOCK))
        .layer(layer)
        .build();
    eventually("the bus connects", || cache.bus_connected());
    CANCEL.set(cache.clone()).ok();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let r = tokio::time::timeout(Duration::from_millis(300), stuck(1)).await;
        assert!(r.is_err(), "the load never ends; its caller gives up");
    });
    eventually("the cancelled load's lease is let go", || {
        lock_keys(&server).is_empty()
    });

    // With `swr`, a stale hit's background refresh loads (the value Redis
    // holds is the one being refreshed, not a newer one).
    assert_eq!(locked_menu(100), 100);
    SWR_CLOCK.advance(Duration::from_secs(11));
    assert_eq!(locked_menu(100), 100, "stale, served");
    eventually("the refresh loaded", || locked_menu(100) == 101);
    assert_eq!(SWR_LOADS.load(SeqCst), 2);
    assert!(lock_keys(&server).is_empty(), "and let go of its lease");
}
