//! Fail-safe against a real redis-server: Redis keeps entries for the
//! fail-safe window past their expiry, and an expired entry there is served
//! when the loader fails, unless an invalidation covers it.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::{LazyLock, OnceLock};
use std::time::Duration;

use crate::support::{eventually, RedisServer};
use cachewright::backends::redis::RedisBackend;
use cachewright::{cached, Cache, Clock, LayerConfig, ManualClock};

static SERVER: LazyLock<RedisServer> = LazyLock::new(RedisServer::start);
static CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static CACHE: OnceLock<Cache> = OnceLock::new();

fn cache() -> Cache {
    CACHE
        .get_or_init(|| {
            let layer = LayerConfig::new(RedisBackend::from_url(&SERVER.url()).expect("url"))
                .timeout(Duration::from_secs(2));
            Cache::builder()
                .namespace("fsr")
                .clock(Clock::manual(&CLOCK))
                .layer(layer)
                .build()
        })
        .clone()
}

#[derive(Debug, Clone, PartialEq)]
struct DbDown;

static DOWN: AtomicBool = AtomicBool::new(false);
static LOADS: AtomicU32 = AtomicU32::new(0);

/// Kept in Redis only: fail-safe can find the value there alone.
#[cached(key = "sku:<id>", ttl = 10, fail_safe = "1h", layers = remote, cache = cache(), name = "Sku")]
fn sku(id: u32) -> Result<String, DbDown> {
    LOADS.fetch_add(1, SeqCst);
    if DOWN.load(SeqCst) {
        return Err(DbDown);
    }
    Ok(format!("sku {id}"))
}

#[test]
fn redis_keeps_the_entry_for_the_window_and_fail_safe_serves_it_unless_invalidated() {
    let c = cache();
    eventually("the bus connects", || c.bus_connected());
    assert_eq!(sku(1).as_deref(), Ok("sku 1"));
    assert_eq!(sku(2).as_deref(), Ok("sku 2"));
    let urn = c.key("sku", &1);
    let urn = format!("{}#Sku", urn.as_str());
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&urn)
        .query(&mut SERVER.conn())
        .unwrap();
    assert!(
        pttl > 3_000_000,
        "kept for 10 s of TTL and 1 h of fail-safe: PTTL {pttl} ms"
    );
    CLOCK.advance(Duration::from_secs(11)); // expired for the cache
    DOWN.store(true, SeqCst);
    assert_eq!(sku(1).as_deref(), Ok("sku 1"), "the expired entry in Redis");
    let s = c.stats_for("Sku").unwrap();
    assert_eq!((s.fail_safe_served, s.remote_hits), (1, 0));
    // Invalidated: never served again, though Redis still holds it.
    c.invalidate_entity("sku", &2);
    assert_eq!(sku(2), Err(DbDown));
    assert_eq!(c.stats_for("Sku").unwrap().fail_safe_served, 1);
    // Past the window: the error.
    CLOCK.advance(Duration::from_secs(3_600));
    assert_eq!(sku(1), Err(DbDown));
}

#[derive(Debug, Clone, PartialEq)]
enum Slow {
    Timeout,
}

impl From<cachewright::Timeout> for Slow {
    fn from(_: cachewright::Timeout) -> Self {
        Slow::Timeout
    }
}

static HANG: AtomicBool = AtomicBool::new(false);
static CLOCK2: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static CACHE2: OnceLock<Cache> = OnceLock::new();

/// A second cache on its own clock: the tests run at once.
fn cache2() -> Cache {
    CACHE2
        .get_or_init(|| {
            let layer = LayerConfig::new(RedisBackend::from_url(&SERVER.url()).expect("url"))
                .timeout(Duration::from_secs(2));
            Cache::builder()
                .namespace("fsr2")
                .clock(Clock::manual(&CLOCK2))
                .layer(layer)
                .build()
        })
        .clone()
}

#[cached(key = "bom:<id>", ttl = 10, remote_ttl = 120, fail_safe = "1h", hard_timeout = "200ms", layers = remote, cache = cache2(), name = "Bom")]
async fn bom(id: u32) -> Result<String, Slow> {
    if HANG.load(SeqCst) {
        std::future::pending::<()>().await;
    }
    Ok(format!("bom {id}"))
}

#[test]
fn remote_ttl_bounds_the_fail_safe_window_and_a_timed_out_call_is_served_from_redis() {
    let c = cache2();
    eventually("the bus connects", || c.bus_connected());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(rt.block_on(bom(1)).as_deref(), Ok("bom 1"));
    let urn = format!("{}#Bom", c.key("bom", &1).as_str());
    let pttl: i64 = redis::cmd("PTTL")
        .arg(&urn)
        .query(&mut SERVER.conn())
        .unwrap();
    assert!(
        pttl <= 120_000,
        "remote_ttl caps the fail-safe retention: {pttl} ms"
    );
    CLOCK2.advance(Duration::from_secs(11));
    HANG.store(true, SeqCst);
    assert_eq!(
        rt.block_on(bom(1)).as_deref(),
        Ok("bom 1"),
        "past the hard timeout: the expired value in Redis"
    );
    let s = c.stats_for("Bom").unwrap();
    assert_eq!((s.hard_timeouts, s.fail_safe_served), (1, 1));
}
