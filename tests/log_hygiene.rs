//! Secrets and data stay out of logs above debug level: a key's id and
//! arguments (session tokens, emails) and a value's contents never appear in
//! a warn or error line, whatever goes wrong. Every line the library logs in
//! this test binary is captured (one global subscriber, every thread).

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use cachewright::backends::{async_trait, Backend, BackendError};
use cachewright::{cached, Cache, LayerConfig};

const TOKEN: &str = "tok_SECRET_7f3a";
const CONTENT: &str = "s3cr3t-contents";

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;
impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(|| Capture)
            .init();
    });
}

fn logged() -> String {
    String::from_utf8_lossy(&LOG.lock().unwrap()).into_owned()
}

/// A dictionary that can be switched to failing, and whose stored bytes the
/// test can tamper with.
#[derive(Debug, Default)]
struct Dict {
    map: Mutex<HashMap<String, Vec<u8>>>,
    down: AtomicBool,
}

#[async_trait]
impl Backend for Dict {
    fn name(&self) -> &str {
        "dict"
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        if self.down.load(SeqCst) {
            return Err(BackendError::Refused {
                backend: "dict".into(),
                message: "switched off".into(),
            });
        }
        Ok(self.map.lock().unwrap().get(key).cloned())
    }
    async fn set(&self, key: &str, v: Vec<u8>, _ttl: Duration) -> Result<(), BackendError> {
        if self.down.load(SeqCst) {
            return Err(BackendError::Refused {
                backend: "dict".into(),
                message: "switched off".into(),
            });
        }
        self.map.lock().unwrap().insert(key.to_owned(), v);
        Ok(())
    }
    async fn delete(&self, key: &str) -> Result<bool, BackendError> {
        Ok(self.map.lock().unwrap().remove(key).is_some())
    }
}

static DICT: LazyLock<Arc<Dict>> = LazyLock::new(Default::default);
static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .name("hygiene")
        .layer(LayerConfig::shared(DICT.clone()).breaker(1_000, Duration::from_secs(1)))
        .build()
});

/// A value whose serialisation fails with a message quoting its contents.
#[derive(Clone, Debug)]
struct Unserialisable(String);

impl serde::Serialize for Unserialisable {
    fn serialize<S: serde::Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom(format!(
            "cannot write {}",
            self.0
        )))
    }
}
impl<'de> serde::Deserialize<'de> for Unserialisable {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Unserialisable)
    }
}

#[cached(key = "session:<token>", ttl = 60, cache = CACHE, name = "Session")]
fn session(token: &str) -> Unserialisable {
    let _ = token;
    Unserialisable(CONTENT.to_string())
}

#[test]
fn no_key_id_or_value_contents_in_warnings() {
    capture();
    // 1. A value that does not encode: warned, without its message.
    assert_eq!(session(TOKEN).0, CONTENT);
    // 2. A layer that fails: warned with the key's type, not its id.
    DICT.down.store(true, SeqCst);
    let key = CACHE.key("session", &TOKEN);
    CACHE.set(&key, 5u32, None);
    assert_eq!(CACHE.get::<u32>(&CACHE.key("session", &"other")), None);
    DICT.down.store(false, SeqCst);
    // 3. Stored bytes that do not decode, quoting a value: warned without
    //    the codec's message.
    CACHE.set(&key, 5u32, None);
    {
        let mut map = DICT.map.lock().unwrap();
        let bytes = map.get_mut(key.as_str()).expect("written to the layer");
        assert_eq!(bytes.pop(), Some(b'5'));
        bytes.extend_from_slice(format!("\"{CONTENT}\"").as_bytes());
    }
    let fresh = Cache::builder()
        .name("reader")
        .layer(LayerConfig::shared(DICT.clone()))
        .build();
    assert_eq!(fresh.get::<u32>(&key), None, "a decode error is a miss");
    assert_eq!(fresh.layer_stats()[0].decode_errors, 1);
    let log = logged();
    for what in [
        "value does not encode",
        "remote layer error",
        "stored bytes do not decode",
        "urn:cachewright:v1:session:…",
    ] {
        assert!(log.contains(what), "expected {what:?} in:\n{log}");
    }
    assert!(!log.contains("SECRET"), "a key's id was logged:\n{log}");
    assert!(
        !log.contains(CONTENT),
        "a value's contents were logged:\n{log}"
    );
}
