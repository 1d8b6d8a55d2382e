//! One writer, many readers (BGCache's single-writer / multi-reader
//! pattern): a background writer loads the configuration on a schedule
//! and writes it to Redis and to a file tier below it; readers (other
//! replicas, here in one process) keep their own copy from the shared
//! layers and never load it themselves. When Redis loses the key, a new
//! replica still finds it in the file tier (which refills Redis).
//!
//! ```sh
//! REDIS_URL=redis://127.0.0.1:6379 cargo run --example config_loader --features redis,file
//! ```

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use cachewright::backends::file::FileBackend;
use cachewright::backends::redis::RedisBackend;
use cachewright::{bg_writer, BgReader, Cache, LayerConfig};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Config {
    version: u32,
    feature_flags: Vec<String>,
    loaded_by: String,
}

fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// Redis, then a file tier under the system's temporary directory: what
/// each replica of the service would build.
fn replica(name: &str) -> Cache {
    let dir = std::env::temp_dir().join("cachewright-config-loader-example");
    Cache::builder()
        .name(name)
        .namespace("example-config")
        .layer(LayerConfig::new(
            RedisBackend::from_url(&redis_url()).expect("a Redis URL"),
        ))
        .layer(LayerConfig::new(
            FileBackend::new(dir).expect("a writable temp dir"),
        ))
        .build()
}

static WRITER_REPLICA: LazyLock<Cache> = LazyLock::new(|| replica("replica-1"));
static READER_REPLICA: LazyLock<Cache> = LazyLock::new(|| replica("replica-2"));
static LATE_REPLICA: LazyLock<Cache> = LazyLock::new(|| replica("replica-3"));

static VERSION: AtomicU32 = AtomicU32::new(0);

/// Loads the configuration every second (try "5m" in a service).
#[bg_writer(key = "app_config", interval = "1s", cache = WRITER_REPLICA)]
async fn app_config() -> Result<Config, String> {
    let version = VERSION.fetch_add(1, Ordering::SeqCst) + 1;
    println!("      replica-1 (the writer): loading config v{version} from the config database");
    Ok(Config {
        version,
        feature_flags: vec!["new-checkout".into()],
        loaded_by: "replica-1".into(),
    })
}

/// Replica 2's reader: pulls what the writer wrote every 300 ms.
static READER: BgReader<Config> = BgReader::new("app_config")
    .interval_ms(300)
    .cache(&READER_REPLICA);
/// Replica 3's, started after Redis lost the key.
static LATE_READER: BgReader<Config> = BgReader::new("app_config").cache(&LATE_REPLICA);

#[tokio::main]
async fn main() {
    // RUST_LOG=cachewright=debug shows every hit, miss, load and invalidation.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    println!("Redis at {} (set REDIS_URL to change)", redis_url());
    app_config.start().expect("one writer for this key");
    let first = app_config
        .get_async()
        .await
        .expect("the writer loads at start");
    println!(
        "1. writer serves v{} (loaded by {})",
        first.version, first.loaded_by
    );
    let seen = READER
        .get_async()
        .await
        .expect("the reader pulls from Redis");
    println!(
        "2. replica-2 reads v{} from the shared layers (loaded by {}; replica-2 never loads)",
        seen.version, seen.loaded_by
    );
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let now = READER.get_async().await.expect("a config");
    println!(
        "3. a second later the writer loaded v{}; replica-2 now holds v{}",
        app_config.get_async().await.expect("a config").version,
        now.version
    );

    // Redis loses the key (a flush, an eviction): the file tier still has it.
    let key = WRITER_REPLICA.key("bg", &"app_config");
    let client = redis::Client::open(redis_url()).expect("a Redis URL");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("Redis answers");
    let _: () = redis::cmd("DEL")
        .arg(key.as_str())
        .query_async(&mut conn)
        .await
        .expect("DEL");
    println!("4. DEL {key} in Redis");
    let late = LATE_READER
        .get_async()
        .await
        .expect("found in the file tier");
    println!(
        "5. replica-3 starts and reads v{} (loaded by {}) from the file tier, which refills Redis",
        late.version, late.loaded_by
    );
    let back: Option<Vec<u8>> = redis::cmd("GET")
        .arg(key.as_str())
        .query_async(&mut conn)
        .await
        .expect("GET");
    println!("6. the key is back in Redis: {}", back.is_some());
    cachewright::shutdown_async().await;
    println!(
        "shut down: the writer's lease released (loads: {}, failures: {})",
        app_config.counts().0,
        app_config.counts().1
    );
}
