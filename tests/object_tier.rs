//! The object-store cold tier below Redis: a value survives Redis losing it,
//! comes back from the object tier and refills Redis (capped); a failing
//! object store is a counted layer failure, never the caller's. The store is
//! `object_store`'s `LocalFileSystem` over a temporary directory (the crate's
//! own implementation, as an S3 or GCS store would be plugged in), and Redis
//! a real `redis-server`.

mod support;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cachewright::backends::object::ObjectStoreBackend;
use cachewright::backends::redis::RedisBackend;
use cachewright::{cached, Cache, LayerConfig};
use object_store::local::LocalFileSystem;
use support::{eventually, RedisServer};

fn chain(redis_url: &str, objects: Arc<LocalFileSystem>) -> Cache {
    Cache::builder()
        .namespace("cold")
        .layer(
            LayerConfig::new(RedisBackend::from_url(redis_url).unwrap())
                .ttl_cap(Duration::from_secs(300)),
        )
        .layer(
            LayerConfig::new(ObjectStoreBackend::new(objects).prefix("cache"))
                .ttl_cap(Duration::from_secs(3600))
                .timeout(Duration::from_secs(2)),
        )
        .build()
}

static CHAIN: OnceLock<Cache> = OnceLock::new();
static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "report:<id>", ttl = 86_400, cache = CHAIN.get().expect("set first").clone(), name = "Report")]
fn report(id: u32) -> Result<String, String> {
    LOADS.fetch_add(1, SeqCst);
    Ok(format!("report {id}"))
}

#[test]
fn a_value_lost_by_redis_comes_back_from_the_object_tier_and_refills_redis() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let objects = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    CHAIN.set(chain(&server.url(), objects.clone())).unwrap();
    eventually("the bus connects", || CHAIN.get().unwrap().bus_connected());
    assert_eq!(report(1).unwrap(), "report 1");
    assert_eq!(LOADS.load(SeqCst), 1);
    let urn = "urn:cold:v1:report:1#Report";

    // Redis loses everything; a second process (a cache of its own, empty
    // process memory) still finds the value, in the object tier.
    let _: () = redis::cmd("FLUSHALL").query(&mut server.conn()).unwrap();
    let other = chain(&server.url(), objects);
    eventually("the other bus connects", || other.bus_connected());
    let key = other.key("report", &1).use_case("Report");
    assert_eq!(key.as_str(), urn);
    assert_eq!(
        other.get::<String>(&key).as_deref(),
        Some("report 1"),
        "found in the object tier"
    );
    assert_eq!(LOADS.load(SeqCst), 1, "without loading again");
    let stats = other.layer_stats();
    assert_eq!((stats[0].misses, stats[1].hits), (1, 1), "{stats:?}");
    let mut conn = server.conn();
    let pttl: i64 = redis::cmd("PTTL").arg(urn).query(&mut conn).unwrap();
    assert!(
        pttl > 0 && pttl <= 300_000,
        "the hit refilled Redis, capped at 300 s: PTTL {pttl}"
    );
    let objects_on_disk = walk(dir.path());
    assert_eq!(objects_on_disk.len(), 1, "{objects_on_disk:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[tokio::test]
async fn a_failing_object_store_is_counted_and_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("objects");
    std::fs::create_dir(&root).unwrap();
    let objects = Arc::new(LocalFileSystem::new_with_prefix(&root).unwrap());
    let cache = Cache::builder()
        .namespace("cold")
        .without_bus()
        .layer(LayerConfig::new(
            ObjectStoreBackend::new(objects).prefix("cache"),
        ))
        .build();
    // The store's directory becomes a plain file: every operation fails.
    std::fs::remove_dir(&root).unwrap();
    std::fs::write(&root, b"not a directory").unwrap();
    let key = cache.key("k", &1);
    let v = cache
        .get_or_load_async(&key, None, async { Ok::<_, String>(7u32) })
        .await;
    assert_eq!(v, Ok(7));
    let l = &cache.layer_stats()[0];
    assert!(l.errors >= 1 && l.writes == 0, "{l:?}");
}

#[tokio::test]
async fn without_conditional_updates_an_expired_holder_is_still_taken_over() {
    use cachewright::backends::Backend;
    let dir = tempfile::tempdir().unwrap();
    // A local directory has no conditional update: the takeover checks the
    // holder's version, deletes it and creates its own record.
    let store = Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
    let a = ObjectStoreBackend::new(store.clone());
    let b = ObjectStoreBackend::new(store);
    let minute = Duration::from_secs(60);
    assert!(a
        .set_if_absent("lock", b"a".to_vec(), minute)
        .await
        .unwrap());
    assert!(!b
        .set_if_absent("lock", b"b".to_vec(), minute)
        .await
        .unwrap());
    assert!(
        a.renew_if("lock", b"a", minute).await.unwrap(),
        "the holder renews"
    );
    assert!(!b.renew_if("lock", b"b", minute).await.unwrap());
    a.set("lock", b"a".to_vec(), Duration::ZERO).await.unwrap();
    assert!(
        !a.renew_if("lock", b"a", minute).await.unwrap(),
        "expired: lost"
    );
    assert!(b
        .set_if_absent("lock", b"b".to_vec(), minute)
        .await
        .unwrap());
    assert_eq!(a.get("lock").await.unwrap(), Some(b"b".to_vec()));
    assert_eq!(a.cleanup().await.unwrap(), 0, "the live lease stays");
    assert!(!a.delete_if("lock", b"a").await.unwrap());
    assert!(b.delete_if("lock", b"b").await.unwrap());
    assert_eq!(a.get("lock").await.unwrap(), None);
}
