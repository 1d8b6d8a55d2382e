//! A product catalogue under stale-while-revalidate (advanced-caching's
//! SWR example): prices are fresh for 1 s, then served stale for up to 3 s
//! more while one background refresh per product fetches the new price.
//! Callers never wait for the catalogue service after the first load.
//! No services needed: `cargo run --example catalogue_swr`.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use cachewright::cached;

#[derive(Clone, Debug)]
struct Product {
    sku: String,
    price_cents: u64,
}

/// The catalogue service's current prices; the example changes them.
static PRICES: LazyLock<Mutex<HashMap<&'static str, u64>>> =
    LazyLock::new(|| Mutex::new(HashMap::from([("A-1", 1999), ("B-2", 4500)])));

#[cached(key = "product:<sku>", ttl = 1, swr = 3, name = "GetProduct")]
async fn product(sku: &str) -> Result<Product, String> {
    let price = PRICES
        .lock()
        .unwrap()
        .get(sku)
        .copied()
        .ok_or("unknown sku")?;
    println!(
        "      catalogue call for {sku} on {:?} (slow: 300 ms)",
        std::thread::current().name().unwrap_or("a worker thread")
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    Ok(Product {
        sku: sku.to_owned(),
        price_cents: price,
    })
}

async fn show(label: &str) {
    let before = cachewright::stats_for("GetProduct").unwrap_or_default();
    let t = Instant::now();
    let p = product("A-1").await.expect("known sku");
    let took = t.elapsed();
    let s = cachewright::stats_for("GetProduct").unwrap_or_default();
    let how = if s.stale_hits > before.stale_hits {
        "stale: served at once; one refresh runs"
    } else if s.hits > before.hits {
        "fresh hit"
    } else {
        "miss: the caller waited for the load"
    };
    println!(
        "{label:<34} {} at {} cents in {took:>10.1?}  [{how}]",
        p.sku, p.price_cents
    );
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
    show("t=0.0 s  first call").await;
    show("t=0.3 s  again").await;
    PRICES.lock().unwrap().insert("A-1", 1799);
    println!("         (the price of A-1 drops to 1799 at the source)");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    show("t=1.4 s  past the TTL").await;
    show("t=1.4 s  while it refreshes").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    show("t=1.8 s  after the refresh").await;
    let s = cachewright::stats_for("GetProduct").expect("used");
    println!(
        "\nGetProduct: {} hits ({} stale), {} misses, {} loads, {} background refreshes",
        s.hits, s.stale_hits, s.misses, s.loads, s.refreshes
    );
}
