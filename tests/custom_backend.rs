//! A backend written outside the library, as a user would: the trait is small
//! enough, and the cache reads and writes through it like any other layer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use cachewright::backends::{async_trait, Backend, BackendError};
use cachewright::{cached, Cache, LayerConfig};

/// A dictionary that counts operations and can be switched off.
#[derive(Debug, Default)]
struct Dict {
    map: Mutex<HashMap<String, Vec<u8>>>,
    gets: AtomicU32,
    sets: AtomicU32,
    /// Writes asked to skip an unchanged value (this store cannot).
    dedupe_calls: AtomicU32,
    down: std::sync::atomic::AtomicBool,
}

impl Dict {
    fn check(&self) -> Result<(), BackendError> {
        if self.down.load(SeqCst) {
            Err(BackendError::Refused {
                backend: "dict".into(),
                message: "switched off".into(),
            })
        } else {
            Ok(())
        }
    }
}

#[async_trait]
impl Backend for Dict {
    fn name(&self) -> &str {
        "dict"
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.check()?;
        self.gets.fetch_add(1, SeqCst);
        Ok(self.map.lock().unwrap().get(key).cloned())
    }
    async fn set(&self, key: &str, value: Vec<u8>, _ttl: Duration) -> Result<(), BackendError> {
        self.check()?;
        self.sets.fetch_add(1, SeqCst);
        self.map.lock().unwrap().insert(key.to_owned(), value);
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<bool, BackendError> {
        self.check()?;
        Ok(self.map.lock().unwrap().remove(key).is_some())
    }
    async fn set_dedupe(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
        _dedupe: &cachewright::backends::Dedupe,
    ) -> Result<cachewright::backends::Written, BackendError> {
        self.dedupe_calls.fetch_add(1, SeqCst);
        self.set(key, value, ttl).await?;
        Ok(cachewright::backends::Written::Value)
    }
}

static DICT: LazyLock<Arc<Dict>> = LazyLock::new(Default::default);
static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .layer(LayerConfig::shared(DICT.clone()))
        .build()
});
static LOADS: AtomicU32 = AtomicU32::new(0);

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Report {
    id: u32,
    lines: Vec<String>,
}

#[cached(key = "report:<id>", ttl = 60, cache = CACHE, name = "Report")]
async fn report(id: u32) -> Result<Report, String> {
    LOADS.fetch_add(1, SeqCst);
    Ok(Report {
        id,
        lines: vec![format!("line of {id}")],
    })
}

#[tokio::test]
async fn a_user_backend_is_a_layer_like_any_other() {
    let r = report(1).await.unwrap();
    assert_eq!(
        DICT.sets.load(SeqCst),
        1,
        "the load was written to the user's backend"
    );
    let stored = DICT.map.lock().unwrap().values().next().cloned().unwrap();
    assert!(stored.starts_with(b"cachewright:4j"));
    // Another cache over the same backend, as another process, reads it there.
    let other = Cache::builder()
        .layer(LayerConfig::shared(DICT.clone()))
        .build();
    let key = other.key("report", &1).use_case("Report");
    assert_eq!(other.get_async::<Report>(&key).await, Some(r.clone()));
    assert_eq!(LOADS.load(SeqCst), 1, "served from the user's backend");
    assert_eq!(other.layer_stats()[0].hits, 1);
    // A clear empties process memory and rules out everything loaded before
    // it, the dict's copy too (it has no delete_prefix to remove it).
    CACHE.clear_async().await;
    assert_eq!(report(1).await.unwrap(), r);
    assert_eq!(LOADS.load(SeqCst), 2, "loaded again after the clear");
    // Switched off: calls still succeed through the loader.
    let errors_before = CACHE.layer_stats()[0].errors;
    assert_eq!(
        errors_before, 0,
        "an unsupported delete_prefix is not a failure"
    );
    DICT.down.store(true, SeqCst);
    assert_eq!(report(2).await.unwrap().id, 2);
    assert!(CACHE.layer_stats()[0].errors > errors_before);
}

// ---- per-use-case TTL caps, and flush_all ----------------------------------------------

/// Records the TTL of every write.
#[derive(Debug, Default)]
struct TtlLog {
    inner: Dict,
    ttls: Mutex<Vec<(String, Duration)>>,
}

#[async_trait]
impl Backend for TtlLog {
    fn name(&self) -> &str {
        "ttl-log"
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.inner.get(key).await
    }
    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), BackendError> {
        self.ttls.lock().unwrap().push((key.to_owned(), ttl));
        self.inner.set(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<bool, BackendError> {
        self.inner.delete(key).await
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, BackendError> {
        let mut map = self.inner.map.lock().unwrap();
        let before = map.len();
        map.retain(|k, _| !k.starts_with(prefix));
        Ok((before - map.len()) as u64)
    }
}

static LOG: LazyLock<Arc<TtlLog>> = LazyLock::new(Default::default);
static CLOCK: LazyLock<cachewright::ManualClock> =
    LazyLock::new(|| cachewright::ManualClock::new(1_000_000));
static CAPPED: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .namespace("capped")
        .clock(cachewright::Clock::manual(&CLOCK))
        .layer(LayerConfig::shared(LOG.clone()))
        .without_bus()
        .build()
});
static CAPPED_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "rate:<id>", ttl = 300, local_ttl = 1, remote_ttl = 5, cache = CAPPED, name = "Rate")]
fn rate(id: u32) -> u32 {
    CAPPED_LOADS.fetch_add(1, SeqCst);
    id * 10
}

#[test]
fn local_ttl_and_remote_ttl_cap_each_layer_per_use_case() {
    assert_eq!(rate(1), 10);
    let written: Vec<Duration> = LOG
        .ttls
        .lock()
        .unwrap()
        .iter()
        .filter(|(k, _)| k.contains("rate:1"))
        .map(|(_, t)| *t)
        .collect();
    assert_eq!(written.len(), 1);
    assert!(
        written[0] <= Duration::from_secs(5) && written[0] > Duration::from_secs(4),
        "the remote write is capped at remote_ttl, not the 300 s ttl: {written:?}"
    );
    assert_eq!(rate(1), 10);
    assert_eq!(
        CAPPED.stats_for("Rate").unwrap().hits,
        1,
        "from process memory"
    );
    // Past local_ttl: process memory no longer serves it; the layer does.
    CLOCK.advance(Duration::from_millis(1_500));
    assert_eq!(rate(1), 10);
    let s = CAPPED.stats_for("Rate").unwrap();
    assert_eq!((s.remote_hits, CAPPED_LOADS.load(SeqCst)), (1, 1), "{s:?}");

    // flush_all: every cachewright key this cache reaches, every layer.
    CAPPED.flush_all();
    assert!(LOG
        .inner
        .map
        .lock()
        .unwrap()
        .keys()
        .all(|k| !k.starts_with("urn:")));
    assert_eq!(rate(1), 10);
    assert_eq!(CAPPED_LOADS.load(SeqCst), 2, "loaded again after flush_all");
}

/// `dedupe_writes` on a layer whose backend cannot skip a write (this one,
/// the file tier, object stores): an error where the builder can say so,
/// logged and turned off where it cannot; never silently ignored.
#[test]
fn dedupe_writes_on_a_backend_that_cannot_dedupe_is_refused() {
    use cachewright::backends::file::FileBackend;
    let dir = tempfile::tempdir().unwrap();
    let file = || LayerConfig::new(FileBackend::new(dir.path()).unwrap()).dedupe_writes(true);
    let err = Cache::builder().layer(file()).try_build().unwrap_err();
    assert!(
        matches!(&err, cachewright::ConfigError::Layer(m) if m.contains("dedupe_writes") && m.contains("file")),
        "{err}"
    );
    let custom = Arc::new(Dict::default());
    assert!(Cache::builder()
        .layer(LayerConfig::shared(custom.clone()).dedupe_writes(true))
        .try_build()
        .is_err());
    // `build` logs it and writes in full: two writes of one value are two
    // writes, not a write and a renewal.
    let cache = Cache::builder()
        .layer(LayerConfig::shared(custom.clone()).dedupe_writes(true))
        .build();
    let key = cache.key("d", &1);
    cache.set(&key, 5u32, None);
    cache.set(&key, 5u32, None);
    let s = &cache.layer_stats()[0];
    assert_eq!((s.writes, s.renewals), (2, 0));
    assert_eq!(custom.sets.load(SeqCst), 2);
    assert_eq!(custom.dedupe_calls.load(SeqCst), 0, "dedupe was turned off");
    // Backends that can (memory, Redis) accept it.
    assert!(Cache::builder()
        .layer(LayerConfig::new(cachewright::backends::MemoryBackend::new()).dedupe_writes(true))
        .try_build()
        .is_ok());
}
