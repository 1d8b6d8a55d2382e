//! `Cache::health()` against a real `redis-server` started by the test:
//! up, then killed (degraded, then breaker open, with since when), then
//! back (up again, since the probe that succeeded). Breaker time is the
//! cache's manual clock.

mod support;

use std::sync::LazyLock;
use std::time::Duration;

use cachewright::backends::redis::RedisBackend;
use cachewright::{cached, Cache, Clock, HealthState, LayerConfig, LayerState, ManualClock};
use std::sync::OnceLock;
use support::{eventually, RedisServer};

static CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static CACHE: OnceLock<Cache> = OnceLock::new();

#[cached(key = "h:<id>", ttl = 60, layers = remote, cache = CACHE.get().expect("built").clone())]
async fn remote_only(id: u32) -> u32 {
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_redis_down_and_back() {
    let mut server = RedisServer::start();
    let cache = CACHE.get_or_init(|| {
        Cache::builder()
            .name("health")
            .without_bus()
            .clock(Clock::manual(&CLOCK))
            .layer(
                LayerConfig::new(RedisBackend::from_url(&server.url()).expect("url"))
                    .timeout(Duration::from_millis(500))
                    .breaker(3, Duration::from_secs(5)),
            )
            .build()
    });
    remote_only(1).await;
    let h = cache.health();
    assert_eq!(h.state, HealthState::Up, "{h:?}");
    assert_eq!(h.layers.len(), 1);
    assert_eq!(h.layers[0].state, LayerState::Up);
    assert_eq!(h.layers[0].since_ms, None, "up since the start");

    server.kill();
    let down_at = CLOCK.now_ms();
    // One read fails (the call then loads, and does not write to a layer
    // that failed it): degraded, below the breaker's 3 failures.
    remote_only(2).await;
    let h = cache.health();
    assert_eq!(h.state, HealthState::Degraded, "{h:?}");
    assert_eq!(h.layers[0].state, LayerState::Degraded, "{h:?}");
    assert_eq!(
        h.layers[0].since_ms,
        Some(down_at),
        "failing since the kill"
    );
    CLOCK.advance(Duration::from_secs(1));
    let open_at = CLOCK.now_ms();
    for id in 3..10 {
        remote_only(id).await;
    }
    let h = cache.health();
    assert_eq!(h.layers[0].state, LayerState::BreakerOpen, "{h:?}");
    assert_eq!(
        h.layers[0].since_ms,
        Some(open_at),
        "open since the third failure"
    );
    assert!(h.layers[0].failures_in_a_row >= 3);
    assert!(h.layers[0].errors >= 3);
    let json = serde_json::to_string(&h).expect("serializable");
    assert!(json.contains("\"breaker_open\""), "{json}");

    server.restart();
    CLOCK.advance(Duration::from_secs(6)); // past the breaker's retry time
    let back_at = CLOCK.now_ms();
    eventually("the probe succeeds once Redis is back", || {
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(remote_only(100))
        });
        cache.health().layers[0].state == LayerState::Up
    });
    let h = cache.health();
    assert_eq!(h.state, HealthState::Up, "{h:?}");
    assert_eq!(h.layers[0].since_ms, Some(back_at), "up since the probe");
}
