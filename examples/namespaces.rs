//! Namespaces, stats and health (the Tiered Cache Manager's `get_stats()`
//! and `health_check()`): two caches with their own namespace and version,
//! use cases in each, a version bump that retires every old key at once, a
//! stats snapshot per cache (hit rate, L1 use) and a health report, as
//! JSON. No services needed: `cargo run --example namespaces`
//! (`REDIS_URL=redis://127.0.0.1:6379` adds a Redis layer to both).

use std::sync::LazyLock;
use std::time::Duration;

use cachewright::{cached, Cache, LayerConfig};

fn cache(name: &str, namespace: &str, version: &str) -> Cache {
    let mut b = Cache::builder()
        .name(name)
        .namespace(namespace)
        .version(version)
        .capacity(1_000);
    if let Ok(url) = std::env::var("REDIS_URL") {
        let redis =
            cachewright::backends::redis::RedisBackend::from_url(&url).expect("a Redis URL");
        b = b.layer(LayerConfig::new(redis).ttl_cap(Duration::from_secs(60)));
    }
    b.build()
}

static USERS: LazyLock<Cache> = LazyLock::new(|| cache("users", "accounts", "v1"));
static BILLING: LazyLock<Cache> = LazyLock::new(|| cache("billing", "billing", "v3"));

#[cached(key = "user:<id>", ttl = 60, cache = USERS, name = "GetUser")]
fn user(id: u32) -> String {
    format!("user {id}")
}

#[cached(key = "invoice:<id>", ttl = 60, cache = BILLING, name = "GetInvoice")]
fn invoice(id: u32) -> u64 {
    u64::from(id) * 100
}

fn main() {
    // RUST_LOG=cachewright=debug shows every hit, miss, load and invalidation.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    for id in 0..50 {
        user(id % 10); // 10 misses, 40 hits
        invoice(id % 25); // 25 misses, 25 hits
    }
    println!(
        "keys: {} and {}",
        USERS.key("user", &1).use_case("GetUser"),
        BILLING.key("invoice", &1).use_case("GetInvoice")
    );
    for c in [&*USERS, &*BILLING] {
        let snap = c.snapshot();
        println!(
            "cache {:<8} namespace {:<9} hit rate {:>5.1} %  L1 use {:>4.1} %  ({} hits, {} misses)",
            snap.cache,
            c.namespace(),
            snap.overall.hit_rate() * 100.0,
            snap.overall.l1_utilisation() * 100.0,
            snap.overall.hits,
            snap.overall.misses
        );
    }

    // Retire every billing key at once: a new version is a new namespace
    // of keys (old entries are never read again and expire on their own).
    let billing_v4 = cache("billing-v4", "billing", "v4");
    println!(
        "after a version bump, {} is a different key",
        billing_v4.key("invoice", &1).use_case("GetInvoice")
    );

    // One cache's whole report, as a `/stats` endpoint would serve it.
    println!(
        "\nusers snapshot:\n{}",
        serde_json::to_string_pretty(&USERS.snapshot().overall).expect("serializable")
    );
    println!(
        "\nbilling health:\n{}",
        serde_json::to_string_pretty(&BILLING.health()).expect("serializable")
    );
    USERS.reset_stats();
    println!(
        "\nusers after reset_stats: {} hits",
        USERS.snapshot().overall.hits
    );
}
