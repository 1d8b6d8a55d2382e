//! Closing a cache for a clean shutdown, against a real redis-server:
//! background writers stop and release their leases, invalidations still
//! owed are delivered, the bus is left, and calls made afterwards still
//! work. Also: the health report carries each writer's last success and
//! failure.

mod support;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::OnceLock;
use std::time::Duration;

use cachewright::backends::redis::RedisBackend;
use cachewright::{bg_writer, cached, Cache, HealthState, LayerConfig};
use support::{eventually, RedisServer};

static CACHE: OnceLock<Cache> = OnceLock::new();
static FAIL: AtomicU32 = AtomicU32::new(0);
static LOADS: AtomicU32 = AtomicU32::new(0);

#[bg_writer(key = "config", interval = "1h", cache = CACHE.get().expect("built").clone())]
fn config() -> Result<u32, String> {
    if FAIL.load(SeqCst) == 1 {
        return Err("config source down".into());
    }
    Ok(7)
}

#[cached(key = "item:<id>", ttl = 300, cache = CACHE.get().expect("built").clone())]
fn item(id: u32) -> u32 {
    LOADS.fetch_add(1, SeqCst);
    id * 10
}

fn exists(server: &RedisServer, key: &str) -> bool {
    redis::cmd("EXISTS")
        .arg(key)
        .query::<u32>(&mut server.conn())
        .unwrap()
        == 1
}

#[test]
fn writers_report_health_and_close_delivers_releases_and_leaves_the_bus() {
    let mut server = RedisServer::start();
    let cache = CACHE.get_or_init(|| {
        Cache::builder()
            .name("closing")
            .namespace("close")
            .layer(
                LayerConfig::new(RedisBackend::from_url(&server.url()).unwrap())
                    .timeout(Duration::from_millis(300)),
            )
            .build()
    });
    eventually("the bus connects", || cache.bus_connected());

    // A writer that loaded: up, with its last success.
    config.start().unwrap();
    assert_eq!(*config.get().unwrap(), 7);
    let h = cache.health();
    let w = &h.bg_writers[0];
    assert_eq!((w.key.as_str(), w.running), ("config", true));
    assert!(
        w.last_success_ms.is_some() && w.last_failure_ms.is_none(),
        "{w:?}"
    );
    assert_eq!(h.state, HealthState::Up);
    // Its last load failed: degraded, with what it said.
    FAIL.store(1, SeqCst);
    config.invalidate();
    let _ = config.get();
    let h = cache.health();
    let w = &h.bg_writers[0];
    assert_eq!(w.last_error.as_deref(), Some("config source down"));
    assert!(w.failing());
    assert_eq!(h.state, HealthState::Degraded, "{h:?}");
    FAIL.store(0, SeqCst);
    config.invalidate();
    assert_eq!(*config.get().unwrap(), 7);
    assert_eq!(cache.health().state, HealthState::Up);
    let lease = "urn:close:v1:~lease:config";
    assert!(exists(&server, lease), "the writer holds its lease");

    // An invalidation made while Redis is down is owed...
    assert_eq!(item(1), 10);
    server.kill();
    cache.invalidate_entity("item", &1);
    assert!(
        cache.bus_stats().undelivered > 0 || !cache.flush(Duration::ZERO),
        "owed before close"
    );
    server.restart();
    // The writer takes its lease again on the new server (a restart
    // forgets everything).
    config.invalidate();
    assert_eq!(*config.get().unwrap(), 7);
    eventually("the lease is held again", || exists(&server, lease));
    // ... and close delivers what is owed, releases the lease and leaves
    // the bus.
    assert!(cache.close(Duration::from_secs(10)), "nothing left owed");
    assert!(cache.is_closed());
    assert!(
        exists(&server, "urn:close:v1:~tag:item:1"),
        "the watermark reached Redis"
    );
    assert!(!exists(&server, lease), "the lease was released");
    assert!(!cache.health().bg_writers[0].running);
    assert!(!cache.bus_connected());
    // Calls still work: nothing served from before the invalidation.
    let loads = LOADS.load(SeqCst);
    assert_eq!(item(1), 10);
    assert_eq!(LOADS.load(SeqCst), loads + 1, "invalidated: loaded again");
    assert_eq!(item(2), 20);
    assert!(
        cache.close(Duration::from_secs(1)),
        "closing twice is harmless"
    );
    // A writer of a closed cache does not start its schedule again.
    assert!(matches!(
        config.start(),
        Err(cachewright::BgError::Closed(_))
    ));
    assert!(!cache.health().bg_writers[0].running);
}
