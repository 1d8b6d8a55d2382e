//! `Cache::flush`: an invalidation that could not reach a failing layer is
//! owed (retried in the background); a flush delivers it once the layer is
//! back, and says so, or says it could not within its time.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cachewright::backends::{async_trait, Backend, BackendError};
use cachewright::{Cache, LayerConfig};

/// A dictionary that refuses everything while `down`.
#[derive(Debug, Default)]
struct Switchable {
    map: Mutex<HashMap<String, Vec<u8>>>,
    down: AtomicBool,
}

impl Switchable {
    fn check(&self) -> Result<(), BackendError> {
        if self.down.load(SeqCst) {
            return Err(BackendError::Refused {
                backend: "switchable".into(),
                message: "down".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl Backend for Switchable {
    fn name(&self) -> &str {
        "switchable"
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.check()?;
        Ok(self.map.lock().unwrap().get(key).cloned())
    }
    async fn set(&self, key: &str, value: Vec<u8>, _ttl: Duration) -> Result<(), BackendError> {
        self.check()?;
        self.map.lock().unwrap().insert(key.to_owned(), value);
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<bool, BackendError> {
        self.check()?;
        Ok(self.map.lock().unwrap().remove(key).is_some())
    }
}

#[test]
fn a_flush_delivers_what_a_failing_layer_was_owed() {
    let backend = Arc::new(Switchable::default());
    let cache = Cache::builder()
        .name("flush")
        .without_bus()
        .layer(
            LayerConfig::shared(backend.clone())
                .timeout(Duration::from_millis(100))
                .breaker(1_000, Duration::from_millis(10)),
        )
        .build();
    backend.down.store(true, SeqCst);
    cache.invalidate_tags(["org:1"]);
    assert!(
        cache.bus_stats().undelivered > 0,
        "owed while the layer is down"
    );
    assert!(
        !cache.flush(Duration::from_millis(200)),
        "still owed: the layer is down"
    );
    backend.down.store(false, SeqCst);
    assert!(
        cache.flush(Duration::from_secs(30)),
        "delivered once it is back"
    );
    assert_eq!(cache.bus_stats().undelivered, 0);
    assert!(
        !backend.map.lock().unwrap().is_empty(),
        "the watermark reached the layer"
    );
}
