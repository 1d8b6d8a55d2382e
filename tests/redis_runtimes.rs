//! One cache with a Redis layer used from several tokio runtimes at once
//! (three OS threads, each driving a current-thread runtime of its own,
//! only while it calls): every runtime is served by the layer, none
//! depends on another being driven.

mod support;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::OnceLock;
use std::time::Duration;

use cachewright::backends::redis::RedisBackend;
use cachewright::{cached, Cache, LayerConfig};
use support::RedisServer;

static CACHE: OnceLock<Cache> = OnceLock::new();
static LOADS: AtomicU32 = AtomicU32::new(0);

fn cache() -> &'static Cache {
    CACHE.get().expect("set first")
}

#[cached(key = "item:<id>", ttl = 300, layers = remote, cache = cache().clone(), name = "Item")]
async fn item(id: u32) -> Result<String, String> {
    LOADS.fetch_add(1, SeqCst);
    Ok(format!("item {id}"))
}

#[test]
fn three_runtimes_share_one_cache_and_its_redis_layer() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let server = RedisServer::start();
    let redis = RedisBackend::from_url(&server.url()).expect("valid url");
    CACHE
        .set(
            Cache::builder()
                .namespace("runtimes")
                .without_bus()
                .layer(LayerConfig::new(redis).timeout(Duration::from_millis(500)))
                .build(),
        )
        .unwrap();
    let threads: Vec<_> = (0..3u32)
        .map(|t| {
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                // Each round is one `block_on`: between rounds this
                // thread's runtime is not driven at all.
                for round in 0..30u32 {
                    rt.block_on(async {
                        for id in 0..10 {
                            assert_eq!(item(id).await.unwrap(), format!("item {id}"));
                        }
                        if round % 3 == t {
                            cache().invalidate_entity_async("item", &(round % 10)).await;
                        }
                    });
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let l = &cache().layer_stats()[0];
    assert_eq!((l.errors, l.skipped), (0, 0), "{l:?}");
    assert!(!l.open && l.hits + l.writes > 0, "{l:?}");

    // A last call after all three runtimes are gone is still served.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async { assert_eq!(item(1).await.unwrap(), "item 1") });
    let l = &cache().layer_stats()[0];
    assert_eq!(l.errors, 0, "{l:?}");
}
