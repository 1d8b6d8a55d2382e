//! A background writer keeps a configuration fresh; a reader (as another
//! process would) keeps its own copy; request code reads from memory.
//!
//! ```sh
//! cargo run --example bg_config                                   # in memory
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example bg_config  # shared through Redis
//! ```

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use cachewright::{bg_writer, BgReader, Cache, LayerConfig};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Config {
    version: u32,
    banner: String,
}

/// In memory, or over Redis when `REDIS_URL` is set (then every replica
/// running this writer shares one lease: one of them loads per interval).
static SHARED: LazyLock<Cache> = LazyLock::new(|| {
    let mut b = Cache::builder().namespace("example-bg");
    if let Ok(url) = std::env::var("REDIS_URL") {
        println!("sharing through Redis at {url}");
        let redis =
            cachewright::backends::redis::RedisBackend::from_url(&url).expect("a Redis URL");
        b = b.layer(LayerConfig::new(redis).ttl_cap(Duration::from_secs(60)));
    } else {
        println!("in memory (set REDIS_URL to share through Redis)");
    }
    b.build()
});

static VERSION: AtomicU32 = AtomicU32::new(0);

fn report(e: &String) {
    eprintln!("config refresh failed: {e}");
}

/// Refreshed every 500 ms (try "5m" in a service), loaded at start.
#[bg_writer(key = "daily_config", interval = "500ms", on_error = report, cache = SHARED)]
async fn daily_config() -> Result<Config, String> {
    let version = VERSION.fetch_add(1, Ordering::SeqCst) + 1;
    println!("      writer: loading config v{version} from the database ...");
    Ok(Config {
        version,
        banner: format!("Welcome (config v{version})"),
    })
}

static CONFIG_READER: BgReader<Config> = BgReader::new("daily_config")
    .interval_ms(250)
    .cache(&SHARED);

#[tokio::main]
async fn main() {
    // RUST_LOG=cachewright=debug shows every hit, miss, load and invalidation.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    daily_config.start().expect("one writer for this key");
    for i in 0..6 {
        let from_writer = daily_config.get_async().await.expect("a config");
        let from_reader = CONFIG_READER.get_async().await.expect("a config");
        println!(
            "t={:>4} ms  writer serves v{}, reader's copy is v{} ({:?})",
            i * 300,
            from_writer.version,
            from_reader.version,
            from_reader.banner
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    cachewright::shutdown_async().await;
    println!(
        "shut down: no more loads (loads: {}, failures: {})",
        daily_config.counts().0,
        daily_config.counts().1
    );
}
