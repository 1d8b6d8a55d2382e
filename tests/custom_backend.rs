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
    assert!(stored.starts_with(b"cachewright:2j"));
    CACHE.clear_async().await; // empties process memory; the dict keeps its copy (no delete_prefix)
    assert_eq!(report(1).await.unwrap(), r);
    assert_eq!(LOADS.load(SeqCst), 1, "served from the user's backend");
    assert_eq!(CACHE.stats_for("Report").unwrap().remote_hits, 1);
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
