//! Auto-recovery against a real redis-server: entries a remote layer could
//! not take while Redis was down are written when it answers again (the
//! newest per key, and not over a newer value), before the bus messages
//! owed, and invalidations owed are delivered.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::support::{eventually, RedisServer};
use cachewright::backends::redis::RedisBackend;
use cachewright::backends::{async_trait, Backend, BackendError};
use cachewright::{cached, Cache, LayerConfig};

static CACHE: OnceLock<Cache> = OnceLock::new();
static VERSION: AtomicU32 = AtomicU32::new(1);

#[cached(key = "doc:<id>", ttl = 300, cache = CACHE.get().unwrap().clone(), name = "Doc")]
fn doc(id: u32) -> String {
    format!("doc {id} v{}", VERSION.load(SeqCst))
}

fn raw(server: &RedisServer, key: &str) -> Option<String> {
    let v: Option<Vec<u8>> = redis::cmd("GET").arg(key).query(&mut server.conn()).ok()?;
    v.map(|b| String::from_utf8_lossy(&b).into_owned())
}

#[test]
fn writes_made_while_redis_was_down_reach_it_when_it_is_back() {
    let mut server = RedisServer::start();
    let layer = LayerConfig::new(RedisBackend::from_url(&server.url()).unwrap())
        .timeout(Duration::from_millis(300));
    let cache = Cache::builder().namespace("rec").layer(layer).build();
    CACHE.set(cache.clone()).ok();
    eventually("the bus connects", || cache.bus_connected());
    let urn = |id: u32| format!("{}#Doc", cache.key("doc", &id).as_str());

    server.kill();
    assert_eq!(doc(1), "doc 1 v1", "Redis down: the function runs");
    // Loaded again while down (a forced refresh): the newer value is owed.
    VERSION.store(2, SeqCst);
    assert_eq!(cachewright::refresh(|| doc(1)), "doc 1 v2");
    assert_eq!(doc(2), "doc 2 v2");
    cache.invalidate_entity("doc", &3);
    assert!(
        cache.bus_stats().undelivered >= 3,
        "{:?}",
        cache.bus_stats()
    );

    server.restart();
    eventually("everything owed is delivered", || {
        cache.bus_stats().undelivered == 0
    });
    let one = raw(&server, &urn(1)).expect("key 1 written on recovery");
    assert!(
        one.contains("doc 1 v2"),
        "the newest value of the key: {one}"
    );
    let two = raw(&server, &urn(2)).expect("key 2 written on recovery");
    assert!(two.contains("doc 2 v2"), "{two}");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(urn(1))
        .query(&mut server.conn())
        .unwrap();
    assert!(
        pttl > 200_000 && pttl <= 300_000,
        "with what was left of its life: {pttl}"
    );
    let marks: Vec<String> = redis::cmd("KEYS")
        .arg("*~tag:*")
        .query(&mut server.conn())
        .unwrap();
    assert!(
        !marks.is_empty(),
        "the invalidation owed raised its watermark"
    );
    assert_eq!(cache.bus_stats().lost, 0);
}

/// A layer that can be taken down and brought back at will, so that the
/// order of events is the test's: a value written under the key while the
/// layer was down (by another process) is not replaced by the owed write.
#[derive(Default, Debug)]
struct Flaky {
    down: AtomicBool,
    /// Writes never answer (until the layer's timeout).
    hang: AtomicBool,
    map: Mutex<HashMap<String, Vec<u8>>>,
}

impl Flaky {
    fn check(&self) -> Result<(), BackendError> {
        if self.down.load(SeqCst) {
            return Err(BackendError::Refused {
                backend: "flaky".into(),
                message: "down".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Backend for Flaky {
    fn name(&self) -> &str {
        "flaky"
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.check()?;
        Ok(self.map.lock().unwrap().get(key).cloned())
    }
    async fn set(&self, key: &str, value: Vec<u8>, _ttl: Duration) -> Result<(), BackendError> {
        self.check()?;
        while self.hang.load(SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        self.map.lock().unwrap().insert(key.to_owned(), value);
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<bool, BackendError> {
        self.check()?;
        Ok(self.map.lock().unwrap().remove(key).is_some())
    }
}

#[test]
fn an_owed_write_does_not_replace_a_value_written_since() {
    let flaky = Arc::new(Flaky::default());
    let cache = Cache::builder()
        .namespace("rec2")
        .layer(LayerConfig::shared(flaky.clone()))
        .build();
    let (old, new) = (cache.key("note", &1), cache.key("note", &2));
    flaky.down.store(true, SeqCst);
    cache.set(&old, "mine".to_string(), Some(Duration::from_secs(300)));
    cache.set(&new, "mine".to_string(), Some(Duration::from_secs(300)));
    assert_eq!(cache.bus_stats().undelivered, 2, "both writes owed");
    // Meanwhile another process wrote key 1.
    flaky
        .map
        .lock()
        .unwrap()
        .insert(old.as_str().to_owned(), b"theirs".to_vec());
    flaky.down.store(false, SeqCst);
    eventually("the owed writes are settled", || {
        cache.bus_stats().undelivered == 0
    });
    let map = flaky.map.lock().unwrap();
    assert_eq!(
        map.get(old.as_str()).map(Vec::as_slice),
        Some(&b"theirs"[..]),
        "not replaced"
    );
    let mine = String::from_utf8_lossy(map.get(new.as_str()).expect("key 2 written")).into_owned();
    assert!(mine.contains("mine"), "{mine}");
}

#[test]
fn a_write_owed_is_not_written_back_after_the_key_was_deleted() {
    let flaky = Arc::new(Flaky::default());
    let cache = Cache::builder()
        .namespace("rec3")
        .layer(LayerConfig::shared(flaky.clone()))
        .build();
    let key = cache.key("note", &1);
    flaky.down.store(true, SeqCst);
    cache.set(&key, "old".to_string(), Some(Duration::from_secs(300)));
    assert_eq!(cache.bus_stats().undelivered, 1);
    flaky.down.store(false, SeqCst);
    // Deleted before the replay: the old value must not come back.
    cache.delete(&key);
    eventually("nothing is owed", || cache.bus_stats().undelivered == 0);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !flaky.map.lock().unwrap().contains_key(key.as_str()),
        "the deleted value was not written back"
    );
    assert_eq!(cache.get::<String>(&key), None);
}

#[test]
fn a_flush_that_times_out_loses_nothing_it_owed() {
    let flaky = Arc::new(Flaky::default());
    let layer = LayerConfig::shared(flaky.clone()).timeout(Duration::from_secs(1));
    let cache = Cache::builder().namespace("rec4").layer(layer).build();
    let key = cache.key("note", &1);
    flaky.down.store(true, SeqCst);
    cache.set(&key, "mine".to_string(), Some(Duration::from_secs(300)));
    // Back, but every write hangs: the flush gives up mid-attempt.
    flaky.hang.store(true, SeqCst);
    flaky.down.store(false, SeqCst);
    assert!(
        !cache.flush(Duration::from_millis(100)),
        "not delivered in time"
    );
    assert!(
        cache.bus_stats().undelivered >= 1,
        "still owed: {:?}",
        cache.bus_stats()
    );
    flaky.hang.store(false, SeqCst);
    eventually("delivered once writes answer", || {
        flaky.map.lock().unwrap().contains_key(key.as_str())
    });
    eventually("nothing is owed", || cache.bus_stats().undelivered == 0);
    assert_eq!(cache.bus_stats().lost, 0);
}
