//! L1 + Redis in a few lines, against a local Redis:
//!
//! ```sh
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example redis --features redis
//! ```
//!
//! Shows a miss (loader + both layers written), an L1 hit, an L2 hit in a
//! "second replica" (a fresh in-process layer), and what Redis holds.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use cachewright::backends::redis::RedisBackend;
use cachewright::{cached, Cache, LayerConfig};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Product {
    sku: String,
    price_cents: u64,
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// L1 capped at 30 s, Redis at 300 s; a dead Redis costs one 100 ms timeout
/// and then is skipped by the circuit breaker.
fn layered() -> Cache {
    let redis = RedisBackend::from_url(&redis_url()).expect("a valid Redis URL");
    Cache::builder()
        .namespace("example")
        .version("v1")
        .local_ttl(Duration::from_secs(30))
        .layer(LayerConfig::new(redis).ttl_cap(Duration::from_secs(300)))
        .build()
}

static CACHE: LazyLock<Cache> = LazyLock::new(layered);

#[cached(key = "product:<sku>", ttl = 600, cache = CACHE, name = "GetProduct")]
async fn get_product(sku: &str) -> Result<Product, String> {
    println!("      loader: fetching {sku} from the catalogue service ...");
    tokio::time::sleep(Duration::from_millis(100)).await;
    Ok(Product {
        sku: sku.to_string(),
        price_cents: 1999,
    })
}

#[tokio::main]
async fn main() {
    // RUST_LOG=cachewright=debug shows every hit, miss, load and invalidation.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    println!("Redis at {}", redis_url());
    // Start clean, so the first call is a miss in both layers.
    CACHE.clear_async().await;

    let t = Instant::now();
    println!(
        "1. {:?} in {:?} (miss: loader ran, L1 and Redis written)",
        get_product("A-1").await,
        t.elapsed()
    );
    let t = Instant::now();
    println!(
        "2. {:?} in {:?} (L1 hit)",
        get_product("A-1").await,
        t.elapsed()
    );

    // Another replica: its own L1, the same Redis.
    let replica = layered();
    let key = replica.key("product", &"A-1").use_case("GetProduct");
    let t = Instant::now();
    let from_redis: Option<Product> = replica.get_async(&key).await;
    println!(
        "3. another replica reads {key}: {from_redis:?} in {:?} (Redis hit)",
        t.elapsed()
    );

    let s = CACHE.stats_for("GetProduct").expect("called above");
    println!(
        "\nGetProduct: hits {}, misses {}, remote hits {}, loads {}",
        s.hits, s.misses, s.remote_hits, s.loads
    );
    for l in CACHE.layer_stats() {
        println!(
            "layer {}: hits {}, misses {}, writes {}, errors {} (timeouts {}), skipped {}, breaker open: {}",
            l.backend, l.hits, l.misses, l.writes, l.errors, l.timeouts, l.skipped, l.open
        );
    }
    // What each layer holds of the use case (Redis walked with SCAN).
    let found = CACHE
        .inspect_async(&cachewright::Inspect::use_case("GetProduct"))
        .await;
    for layer in &found.layers {
        println!(
            "inspect {}: {} key(s) listed, {} held unlisted{}",
            layer.layer,
            layer.keys.len(),
            layer.unlisted,
            layer
                .error
                .as_deref()
                .map(|e| format!(" ({e})"))
                .unwrap_or_default()
        );
        for k in &layer.keys {
            println!(
                "  {} {} ttl {:?} ms tags {:?}",
                k.key, k.state, k.remaining_ms, k.tags
            );
        }
    }
    if CACHE.layer_stats().iter().any(|l| l.errors > 0) {
        println!("(Redis did not answer: every call was still served, by the loader.)");
    }
}
