//! The quick start: a miss, a hit, a stale-while-revalidate serve, the stats.
//! Needs no services: `cargo run --example quickstart`.

use std::time::{Duration, Instant};

use cachewright::cached;

#[derive(Clone, Debug)]
#[allow(dead_code)]
struct User {
    id: u64,
    name: String,
}

/// Fresh for 1 s, then served stale for up to 5 s more while one background
/// refresh runs.
#[cached(key = "user:<id>", ttl = 1, swr = 5, name = "GetUser")]
async fn get_user(id: u64) -> Result<User, String> {
    println!("      loader: querying the database for user {id} ...");
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(User {
        id,
        name: format!("user-{id}"),
    })
}

async fn timed(label: &str) {
    let start = Instant::now();
    let user = get_user(42).await.expect("the loader does not fail here");
    println!("{label:<44} -> {user:?} in {:?}", start.elapsed());
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
    println!("1. first call: a miss, the loader runs");
    timed("   get_user(42)").await;

    println!("2. second call: a hit from memory");
    timed("   get_user(42)").await;

    println!("3. past the 1 s TTL, inside the 5 s stale window:");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    timed("   get_user(42) (stale, refreshing)").await;
    // Give the background refresh time to finish.
    tokio::time::sleep(Duration::from_millis(400)).await;
    timed("   get_user(42) (refreshed)").await;

    let s = cachewright::stats_for("GetUser").expect("the use case exists once called");
    println!(
        "\nstats for {}: hits {} (stale {}), misses {}, loads {}, refreshes {}, hit rate {:.0} %, mean load {:?}",
        s.use_case,
        s.hits,
        s.stale_hits,
        s.misses,
        s.loads,
        s.refreshes,
        s.hit_rate() * 100.0,
        s.mean_load_time()
    );
}
