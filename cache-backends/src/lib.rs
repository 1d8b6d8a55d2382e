//! Storage layers of [cachewright](https://docs.rs/cachewright): the [`Backend`] trait
//! and its implementations, each behind a feature of the same name.
//!
//! A backend stores bytes under string keys with a TTL per write. It knows
//! nothing of entries, codecs or tags: the runtime encodes an entry into an
//! envelope, and reads it back, with a format version, so a backend only
//! moves bytes. That keeps a custom backend small:
//!
//! ```
//! use cachewright::backends::{async_trait, Backend, BackendError};
//! use std::collections::HashMap;
//! use std::sync::Mutex;
//! use std::time::Duration;
//!
//! /// A toy backend that ignores TTLs.
//! #[derive(Debug, Default)]
//! struct Toy(Mutex<HashMap<String, Vec<u8>>>);
//!
//! #[async_trait]
//! impl Backend for Toy {
//!     fn name(&self) -> &str { "toy" }
//!     async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
//!         Ok(self.0.lock().unwrap().get(key).cloned())
//!     }
//!     async fn set(&self, key: &str, value: Vec<u8>, _ttl: Duration) -> Result<(), BackendError> {
//!         self.0.lock().unwrap().insert(key.to_owned(), value);
//!         Ok(())
//!     }
//!     async fn delete(&self, key: &str) -> Result<bool, BackendError> {
//!         Ok(self.0.lock().unwrap().remove(key).is_some())
//!     }
//! }
//! # let toy = Toy::default();
//! # let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! # rt.block_on(async {
//! toy.set("k", b"v".to_vec(), Duration::from_secs(1)).await.unwrap();
//! assert_eq!(toy.get("k").await.unwrap(), Some(b"v".to_vec()));
//! # });
//! ```
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod io;
mod memory;
pub use memory::MemoryBackend;

#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod redis;

#[cfg(feature = "cluster")]
#[cfg_attr(docsrs, doc(cfg(feature = "cluster")))]
pub mod redis_cluster;

#[cfg(feature = "file")]
#[cfg_attr(docsrs, doc(cfg(feature = "file")))]
pub mod file;

#[cfg(feature = "object-store")]
#[cfg_attr(docsrs, doc(cfg(feature = "object-store")))]
pub mod object;

#[cfg(any(feature = "file", feature = "object-store"))]
mod record;
mod url;
pub use url::{node_urls, redact_url};

pub use async_trait::async_trait;

use std::fmt;
use std::ops::Range;
use std::time::Duration;

/// Why a backend operation failed. The runtime never passes these to callers
/// of cached functions: it counts them, logs them and carries on.
///
/// # Examples
///
/// ```
/// use cachewright::backends::BackendError;
/// use std::error::Error as _;
///
/// let e = BackendError::Io {
///     backend: "file".into(),
///     source: std::io::Error::new(std::io::ErrorKind::PermissionDenied, "read-only"),
/// };
/// assert_eq!(e.to_string(), "i/o error in file");
/// assert_eq!(e.source().unwrap().to_string(), "read-only", "the cause is chained");
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackendError {
    /// The store could not be reached, or the connection broke.
    #[error("connection to {backend} failed")]
    Connection {
        /// Which backend.
        backend: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The store answered with an error.
    #[error("{backend} refused the operation: {message}")]
    Refused {
        /// Which backend.
        backend: String,
        /// What it said.
        message: String,
    },
    /// Local I/O failed.
    #[error("i/o error in {backend}")]
    Io {
        /// Which backend.
        backend: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The backend was configured wrongly.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The backend does not offer this operation.
    #[error("{backend} does not support {operation}")]
    Unsupported {
        /// Which backend.
        backend: String,
        /// Which operation.
        operation: &'static str,
    },
}

/// What an invalidation bus reports to its subscriber.
///
/// # Examples
///
/// ```
/// use cachewright::backends::{BusEvent, BusSink};
/// use std::sync::Arc;
///
/// let sink: BusSink = Arc::new(|event| !matches!(event, BusEvent::Disconnected));
/// assert!(sink(BusEvent::Connected), "go on");
/// assert!(sink(BusEvent::Message(b"urn:a:v1:user:1".to_vec())));
/// assert!(!sink(BusEvent::Disconnected), "stop listening");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusEvent {
    /// Subscribed: from now on every message published reaches us.
    Connected,
    /// The subscription broke: messages may be missed until `Connected`.
    Disconnected,
    /// A message published by some process (possibly this one).
    Message(Vec<u8>),
    /// An attempt to (re)connect failed, for the reason given (for example
    /// an ACL that denies pub/sub); the bus keeps trying.
    Unreachable(String),
}

/// What a subscriber says after each event: go on, or stop listening.
///
/// # Examples
///
/// ```
/// use cachewright::backends::{BusEvent, BusSink};
/// use std::sync::{Arc, Mutex};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let log = seen.clone();
/// let sink: BusSink = Arc::new(move |event| {
///     log.lock().unwrap().push(event);
///     true
/// });
/// sink(BusEvent::Message(b"hello".to_vec()));
/// assert_eq!(seen.lock().unwrap()[0], BusEvent::Message(b"hello".to_vec()));
/// ```
pub type BusSink = std::sync::Arc<dyn Fn(BusEvent) -> bool + Send + Sync>;

/// A publish/subscribe channel that carries invalidations (never values)
/// between the processes sharing a cache. Redis pub/sub is the one shipped
/// (sharded pub/sub on a Redis Cluster).
///
/// # Examples
///
/// A bus within one process, delivering every message to every
/// subscriber (a stand-in for a broker in tests):
///
/// ```
/// use cachewright::backends::{async_trait, BackendError, Bus, BusEvent, BusSink};
/// use std::sync::Mutex;
///
/// #[derive(Default)]
/// struct Local(Mutex<Vec<(String, BusSink)>>);
///
/// impl std::fmt::Debug for Local {
///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
///         f.write_str("Local")
///     }
/// }
///
/// #[async_trait]
/// impl Bus for Local {
///     async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), BackendError> {
///         let subs: Vec<BusSink> = self.0.lock().unwrap().iter()
///             .filter(|(c, _)| c == channel).map(|(_, s)| s.clone()).collect();
///         for s in subs {
///             s(BusEvent::Message(payload.clone()));
///         }
///         Ok(())
///     }
///     fn subscribe(&self, channel: &str, sink: BusSink) {
///         sink(BusEvent::Connected);
///         self.0.lock().unwrap().push((channel.to_owned(), sink));
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let bus = Local::default();
/// let got = std::sync::Arc::new(Mutex::new(Vec::new()));
/// let g = got.clone();
/// bus.subscribe("inval", std::sync::Arc::new(move |e| { g.lock().unwrap().push(e); true }));
/// bus.publish("inval", b"user:1".to_vec()).await.unwrap();
/// assert_eq!(got.lock().unwrap()[1], BusEvent::Message(b"user:1".to_vec()));
/// # });
/// ```
#[async_trait]
pub trait Bus: Send + Sync + fmt::Debug + 'static {
    /// Publishes `payload` on `channel`.
    ///
    /// # Errors
    ///
    /// [`BackendError`] when the message could not be published (the caller retries it).
    ///
    /// # Examples
    ///
    /// With a bus that delivers within one process (hidden here; see [`Bus`]):
    ///
    /// ```
    /// # use cachewright::backends::{async_trait, BackendError, Bus, BusEvent, BusSink};
    /// # use std::sync::{Arc, Mutex};
    /// # #[derive(Default)]
    /// # struct Local(Mutex<Vec<(String, BusSink)>>);
    /// # impl std::fmt::Debug for Local {
    /// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("Local") }
    /// # }
    /// # #[async_trait]
    /// # impl Bus for Local {
    /// #     async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), BackendError> {
    /// #         // A sink that returns `false` is dropped.
    /// #         self.0.lock().unwrap()
    /// #             .retain(|(c, s)| c != channel || s(BusEvent::Message(payload.clone())));
    /// #         Ok(())
    /// #     }
    /// #     fn subscribe(&self, channel: &str, sink: BusSink) {
    /// #         sink(BusEvent::Connected);
    /// #         self.0.lock().unwrap().push((channel.to_owned(), sink));
    /// #     }
    /// # }
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let bus = Local::default();
    /// let got = Arc::new(Mutex::new(Vec::new()));
    /// let g = got.clone();
    /// bus.subscribe("inval", Arc::new(move |e| { g.lock().unwrap().push(e); true }));
    /// bus.publish("inval", b"user:1".to_vec()).await.unwrap();
    /// bus.publish("other", b"user:2".to_vec()).await.unwrap();
    /// assert_eq!(*got.lock().unwrap(), [BusEvent::Connected, BusEvent::Message(b"user:1".to_vec())]);
    /// # });
    /// ```
    async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), BackendError>;

    /// Starts listening on `channel` in the background, reconnecting by
    /// itself, and hands every event to `sink` until it returns `false`.
    ///
    /// # Examples
    ///
    /// With a bus that delivers within one process (hidden here; see [`Bus`]):
    ///
    /// ```
    /// # use cachewright::backends::{async_trait, BackendError, Bus, BusEvent, BusSink};
    /// # use std::sync::{Arc, Mutex};
    /// # #[derive(Default)]
    /// # struct Local(Mutex<Vec<(String, BusSink)>>);
    /// # impl std::fmt::Debug for Local {
    /// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("Local") }
    /// # }
    /// # #[async_trait]
    /// # impl Bus for Local {
    /// #     async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), BackendError> {
    /// #         // A sink that returns `false` is dropped.
    /// #         self.0.lock().unwrap()
    /// #             .retain(|(c, s)| c != channel || s(BusEvent::Message(payload.clone())));
    /// #         Ok(())
    /// #     }
    /// #     fn subscribe(&self, channel: &str, sink: BusSink) {
    /// #         sink(BusEvent::Connected);
    /// #         self.0.lock().unwrap().push((channel.to_owned(), sink));
    /// #     }
    /// # }
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let bus = Local::default();
    /// let count = Arc::new(Mutex::new(0));
    /// let c = count.clone();
    /// // Stop listening after the first message.
    /// bus.subscribe("inval", Arc::new(move |e| {
    ///     if let BusEvent::Message(_) = e { *c.lock().unwrap() += 1; return false; }
    ///     true
    /// }));
    /// bus.publish("inval", b"user:1".to_vec()).await.unwrap();
    /// bus.publish("inval", b"user:2".to_vec()).await.unwrap();
    /// assert_eq!(*count.lock().unwrap(), 1, "no longer listening");
    /// # });
    /// ```
    fn subscribe(&self, channel: &str, sink: BusSink);

    /// Whether deliveries can be confirmed: [`subscribe_all`](Self::subscribe_all)
    /// hands over the messages of all its channels in the one order the
    /// broker accepted them (one connection). A cache then waits, bounded,
    /// for every other cache on the bus to acknowledge an invalidation
    /// before it returns, and trusts its own in-process layer only while a
    /// ping it sends through the bus keeps coming back (a lease). `false`
    /// by default.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{redis::RedisBackend, Backend};
    ///
    /// let redis = RedisBackend::from_url("redis://127.0.0.1:1").unwrap();
    /// assert!(redis.bus().unwrap().confirms(), "one subscription, one order");
    /// ```
    fn confirms(&self) -> bool {
        false
    }

    /// Starts listening on every one of `channels`, as
    /// [`subscribe`](Self::subscribe) does on one. A bus that
    /// [`confirms`](Self::confirms) uses one subscription for all, so their
    /// messages arrive in the order they were published; the default
    /// subscribes to each apart (each then reports its own connection
    /// events).
    ///
    /// # Examples
    ///
    /// ```
    /// # use cachewright::backends::{async_trait, BackendError, Bus, BusEvent, BusSink};
    /// # use std::sync::{Arc, Mutex};
    /// # #[derive(Default)]
    /// # struct Local(Mutex<Vec<(String, BusSink)>>);
    /// # impl std::fmt::Debug for Local {
    /// #     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str("Local") }
    /// # }
    /// # #[async_trait]
    /// # impl Bus for Local {
    /// #     async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), BackendError> {
    /// #         for (c, s) in self.0.lock().unwrap().iter() {
    /// #             if c == channel { s(BusEvent::Message(payload.clone())); }
    /// #         }
    /// #         Ok(())
    /// #     }
    /// #     fn subscribe(&self, channel: &str, sink: BusSink) {
    /// #         self.0.lock().unwrap().push((channel.to_owned(), sink));
    /// #     }
    /// # }
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let bus = Local::default();
    /// let got = Arc::new(Mutex::new(Vec::new()));
    /// let g = got.clone();
    /// bus.subscribe_all(&["a".into(), "b".into()], Arc::new(move |e| { g.lock().unwrap().push(e); true }));
    /// bus.publish("b", b"2".to_vec()).await.unwrap();
    /// bus.publish("c", b"3".to_vec()).await.unwrap();
    /// assert_eq!(*got.lock().unwrap(), [BusEvent::Message(b"2".to_vec())]);
    /// # });
    /// ```
    fn subscribe_all(&self, channels: &[String], sink: BusSink) {
        for c in channels {
            self.subscribe(c, sink.clone());
        }
    }
}

/// Where a value's content hash and its rewritable header sit in the bytes
/// given to [`Backend::set_dedupe`].
///
/// # Examples
///
/// ```
/// use cachewright::backends::{Backend, Dedupe, MemoryBackend, Written};
/// use std::time::Duration;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// // Bytes 0..4 are a header; 4..8 the content hash; the value follows.
/// let d = Dedupe { header: 0..8, hash: 4..8 };
/// let m = MemoryBackend::new();
/// let ttl = Duration::from_secs(60);
/// assert_eq!(m.set_dedupe("k", b"t001HASHvalue".to_vec(), ttl, &d).await.unwrap(), Written::Value);
/// assert_eq!(m.set_dedupe("k", b"t002HASHvalue".to_vec(), ttl, &d).await.unwrap(), Written::Renewed);
/// assert_eq!(m.get("k").await.unwrap().unwrap(), b"t002HASHvalue", "header rewritten");
/// # });
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dedupe {
    /// The header (times, format version) that may be rewritten in place.
    pub header: Range<usize>,
    /// The content hash inside the header: equal bytes here mean equal value.
    pub hash: Range<usize>,
}

/// What [`Backend::set_dedupe`] did.
///
/// # Examples
///
/// ```
/// use cachewright::backends::{Backend, Dedupe, MemoryBackend, Written};
/// use std::time::Duration;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let d = Dedupe { header: 0..2, hash: 1..2 };
/// let m = MemoryBackend::new();
/// let ttl = Duration::from_secs(60);
/// assert_eq!(m.set_dedupe("k", b"1Av".to_vec(), ttl, &d).await.unwrap(), Written::Value);
/// assert_eq!(m.set_dedupe("k", b"2Bw".to_vec(), ttl, &d).await.unwrap(), Written::Value, "hash changed");
/// # });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Written {
    /// The value was written.
    Value,
    /// The same value was there: only its header and TTL were renewed.
    Renewed,
}

/// A storage layer: bytes under string keys, each write with a TTL.
///
/// Implementations must be safe to call concurrently. Only [`get`],
/// [`set`] and [`delete`] are required; the batch and conditional operations
/// have default implementations built on them (override them when the store
/// can do better, as Redis does with `MGET`, pipelines and `SET NX`).
///
/// [`get`]: Backend::get
/// [`set`]: Backend::set
/// [`delete`]: Backend::delete
///
/// # Examples
///
/// A store of your own, as a cache's remote layer:
///
/// ```
/// use cachewright::backends::{async_trait, Backend, BackendError};
/// use cachewright::{Cache, LayerConfig};
/// use std::collections::HashMap;
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
///
/// /// A map that ignores TTLs (a stand-in for a real store).
/// #[derive(Debug, Default)]
/// struct Map(Mutex<HashMap<String, Vec<u8>>>);
///
/// #[async_trait]
/// impl Backend for Map {
///     fn name(&self) -> &str { "map" }
///     async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
///         Ok(self.0.lock().unwrap().get(key).cloned())
///     }
///     async fn set(&self, key: &str, value: Vec<u8>, _ttl: Duration) -> Result<(), BackendError> {
///         self.0.lock().unwrap().insert(key.to_owned(), value);
///         Ok(())
///     }
///     async fn delete(&self, key: &str) -> Result<bool, BackendError> {
///         Ok(self.0.lock().unwrap().remove(key).is_some())
///     }
/// }
///
/// let map = Arc::new(Map::default());
/// let cache = Cache::builder().layer(LayerConfig::shared(map.clone())).build();
/// let key = cache.key("user", &1);
/// cache.set(&key, "ada".to_string(), None);
/// assert!(map.0.lock().unwrap().contains_key(key.as_str()), "stored under the key's URN");
/// ```
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    /// A short name for logs and metrics (`"redis"`, `"file"`).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{Backend, MemoryBackend};
    ///
    /// assert_eq!(MemoryBackend::new().name(), "memory");
    /// ```
    fn name(&self) -> &str;

    /// The bytes under `key`, if present and not expired.
    ///
    /// # Errors
    ///
    /// [`BackendError`] when the store fails; the cache counts it and reads on as after a miss.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{Backend, MemoryBackend};
    /// use std::time::Duration;
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let m = MemoryBackend::new();
    /// assert_eq!(m.get("k").await.unwrap(), None);
    /// m.set("k", b"v".to_vec(), Duration::from_millis(20)).await.unwrap();
    /// assert_eq!(m.get("k").await.unwrap(), Some(b"v".to_vec()));
    /// tokio::time::sleep(Duration::from_millis(30)).await;
    /// assert_eq!(m.get("k").await.unwrap(), None, "expired");
    /// # });
    /// ```
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError>;

    /// Stores `value` under `key` for `ttl`.
    ///
    /// # Errors
    ///
    /// [`BackendError`] when the store fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{Backend, MemoryBackend};
    /// use std::time::Duration;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let m = MemoryBackend::new();
    /// m.set("k", b"one".to_vec(), Duration::from_secs(60)).await.unwrap();
    /// m.set("k", b"two".to_vec(), Duration::from_secs(60)).await.unwrap();
    /// assert_eq!(m.get("k").await.unwrap(), Some(b"two".to_vec()), "replaced");
    /// # });
    /// ```
    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), BackendError>;

    /// Removes `key`; returns whether it was there.
    ///
    /// # Errors
    ///
    /// [`BackendError`] when the store fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{Backend, MemoryBackend};
    /// use std::time::Duration;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let m = MemoryBackend::new();
    /// m.set("k", b"v".to_vec(), Duration::from_secs(60)).await.unwrap();
    /// assert!(m.delete("k").await.unwrap());
    /// assert!(!m.delete("k").await.unwrap(), "already gone");
    /// # });
    /// ```
    async fn delete(&self, key: &str) -> Result<bool, BackendError>;

    /// The bytes under each of `keys`, in order.
    ///
    /// # Errors
    ///
    /// [`BackendError`] when the store fails (the default: at the first failed `get`).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{Backend, MemoryBackend};
    /// use std::time::Duration;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let m = MemoryBackend::new();
    /// m.set("b", b"2".to_vec(), Duration::from_secs(60)).await.unwrap();
    /// let keys = ["a".to_string(), "b".to_string()];
    /// assert_eq!(m.get_many(&keys).await.unwrap(), vec![None, Some(b"2".to_vec())]);
    /// # });
    /// ```
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, BackendError> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(self.get(k).await?);
        }
        Ok(out)
    }

    /// Whether [`get_many`](Backend::get_many) is one round trip whatever
    /// the number of keys (Redis `MGET`), rather than the default's one
    /// `get` after another. A cache coalesces concurrent single-key reads of
    /// such a layer into batch reads (see cachewright's
    /// `LayerConfig::coalesce_reads`). The default is `false`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{Backend, MemoryBackend};
    ///
    /// assert!(!MemoryBackend::new().native_get_many(), "one get after another");
    /// ```
    fn native_get_many(&self) -> bool {
        false
    }

    /// Stores every `(key, value, ttl)`.
    ///
    /// # Errors
    ///
    /// [`BackendError`] when the store fails (the default: at the first failed `set`, the items before it stored).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{Backend, MemoryBackend};
    /// use std::time::Duration;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let m = MemoryBackend::new();
    /// let ttl = Duration::from_secs(60);
    /// m.set_many(vec![("a".into(), b"1".to_vec(), ttl), ("b".into(), b"2".to_vec(), ttl)])
    ///     .await
    ///     .unwrap();
    /// assert_eq!(m.len(), 2);
    /// # });
    /// ```
    async fn set_many(&self, items: Vec<(String, Vec<u8>, Duration)>) -> Result<(), BackendError> {
        for (k, v, ttl) in items {
            self.set(&k, v, ttl).await?;
        }
        Ok(())
    }

    /// Raises each `(key, stamp, ttl)` to `stamp` unless it holds a larger
    /// number already (a watermark only moves forward), and keeps it at least
    /// `ttl` more. Keys holding something that is not a number are
    /// overwritten. The default reads then writes (not atomic: two raises
    /// racing may lower a watermark); stores that can (Redis) override it
    /// with one atomic step per key.
    ///
    /// # Errors
    ///
    /// [`BackendError`] when the store fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{Backend, MemoryBackend};
    /// use std::time::Duration;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let m = MemoryBackend::new();
    /// let ttl = Duration::from_secs(60);
    /// m.raise_many(vec![("mark".into(), 20, ttl)]).await.unwrap();
    /// m.raise_many(vec![("mark".into(), 10, ttl)]).await.unwrap();
    /// assert_eq!(m.get("mark").await.unwrap(), Some(b"20".to_vec()), "never moves back");
    /// # });
    /// ```
    async fn raise_many(&self, items: Vec<(String, u64, Duration)>) -> Result<(), BackendError> {
        for (k, stamp, ttl) in items {
            let current = self
                .get(&k)
                .await?
                .and_then(|b| std::str::from_utf8(&b).ok()?.trim().parse::<u64>().ok());
            if current.is_none_or(|c| stamp > c) {
                self.set(&k, stamp.to_string().into_bytes(), ttl).await?;
            }
        }
        Ok(())
    }

    /// Stores `value` unless `key` holds a value; returns whether it stored.
    /// The default is not atomic; stores that can be (Redis) override it.
    ///
    /// # Errors
    ///
    /// [`BackendError`] when the store fails; the caller then holds nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{Backend, MemoryBackend};
    /// use std::time::Duration;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let m = MemoryBackend::new();
    /// let lease = Duration::from_secs(10);
    /// assert!(m.set_if_absent("lock", b"a".to_vec(), lease).await.unwrap());
    /// assert!(!m.set_if_absent("lock", b"b".to_vec(), lease).await.unwrap());
    /// assert_eq!(m.get("lock").await.unwrap(), Some(b"a".to_vec()));
    /// # });
    /// ```
    async fn set_if_absent(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, BackendError> {
        if self.get(key).await?.is_some() {
            return Ok(false);
        }
        self.set(key, value, ttl).await?;
        Ok(true)
    }

    /// Whether [`set_dedupe`](Self::set_dedupe) can skip rewriting a value
    /// the store already holds (by reading its content hash where it is
    /// stored). `false` by default: then it always writes the whole value,
    /// and a cache refuses `dedupe_writes` on this layer.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{Backend, MemoryBackend};
    ///
    /// assert!(MemoryBackend::new().dedupes());
    /// ```
    fn dedupes(&self) -> bool {
        false
    }

    /// Stores `value`, unless the stored value has the same content hash (at
    /// `dedupe.hash`): then only its header and TTL are renewed. The default
    /// always writes. A backend that overrides it also overrides
    /// [`dedupes`](Self::dedupes) (else caches refuse `dedupe_writes` on it).
    ///
    /// # Errors
    ///
    /// [`BackendError`] when the store fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{Backend, Dedupe, MemoryBackend, Written};
    /// use std::time::Duration;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let d = Dedupe { header: 0..2, hash: 1..2 };
    /// let (m, ttl) = (MemoryBackend::new(), Duration::from_secs(60));
    /// assert_eq!(m.set_dedupe("k", b"1Xv".to_vec(), ttl, &d).await.unwrap(), Written::Value);
    /// assert_eq!(m.set_dedupe("k", b"2Xv".to_vec(), ttl, &d).await.unwrap(), Written::Renewed);
    /// # });
    /// ```
    async fn set_dedupe(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
        dedupe: &Dedupe,
    ) -> Result<Written, BackendError> {
        let _ = dedupe;
        self.set(key, value, ttl).await?;
        Ok(Written::Value)
    }

    /// Extends `key`'s TTL to `ttl` if it holds exactly `token`; returns
    /// whether it did (a lease renewal). The default is not atomic; Redis
    /// overrides it with a script.
    ///
    /// # Errors
    ///
    /// [`BackendError`] when the store fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{Backend, MemoryBackend};
    /// use std::time::Duration;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let m = MemoryBackend::new();
    /// m.set("lease", b"me".to_vec(), Duration::from_secs(5)).await.unwrap();
    /// assert!(m.renew_if("lease", b"me", Duration::from_secs(30)).await.unwrap());
    /// assert!(!m.renew_if("lease", b"you", Duration::from_secs(30)).await.unwrap(), "not the holder");
    /// # });
    /// ```
    async fn renew_if(&self, key: &str, token: &[u8], ttl: Duration) -> Result<bool, BackendError> {
        match self.get(key).await? {
            Some(v) if v == token => {
                self.set(key, v, ttl).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Removes `key` if it holds exactly `token` (a lease release).
    ///
    /// # Errors
    ///
    /// [`BackendError`] when the store fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{Backend, MemoryBackend};
    /// use std::time::Duration;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let m = MemoryBackend::new();
    /// m.set("lease", b"me".to_vec(), Duration::from_secs(5)).await.unwrap();
    /// assert!(!m.delete_if("lease", b"you").await.unwrap(), "not the holder");
    /// assert!(m.delete_if("lease", b"me").await.unwrap());
    /// assert!(m.is_empty());
    /// # });
    /// ```
    async fn delete_if(&self, key: &str, token: &[u8]) -> Result<bool, BackendError> {
        match self.get(key).await? {
            Some(v) if v == token => self.delete(key).await,
            _ => Ok(false),
        }
    }

    /// The invalidation bus that comes with this store, if any (Redis: its
    /// pub/sub). A cache whose layers offer one uses the first.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{Backend, MemoryBackend};
    ///
    /// assert!(MemoryBackend::new().bus().is_none(), "a memory layer has no bus");
    /// ```
    fn bus(&self) -> Option<std::sync::Arc<dyn Bus>> {
        None
    }

    /// Removes every key that starts with `prefix`; returns how many.
    ///
    /// # Errors
    ///
    /// [`BackendError::Unsupported`] by default, for stores that cannot list keys; otherwise when the store fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{Backend, MemoryBackend};
    /// use std::time::Duration;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let m = MemoryBackend::new();
    /// let ttl = Duration::from_secs(60);
    /// m.set("urn:a:v1:x", b"1".to_vec(), ttl).await.unwrap();
    /// m.set("urn:b:v1:x", b"2".to_vec(), ttl).await.unwrap();
    /// assert_eq!(m.delete_prefix("urn:a:").await.unwrap(), 1);
    /// assert_eq!(m.len(), 1);
    /// # });
    /// ```
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, BackendError> {
        let _ = prefix;
        Err(BackendError::Unsupported {
            backend: self.name().to_owned(),
            operation: "delete_prefix",
        })
    }

    /// Lists up to `limit` live keys that start with `prefix` followed by a
    /// character other than `~` (cachewright keeps its watermarks and
    /// leases under `prefix~`) and end with `suffix` (`""`: any), each with
    /// its remaining TTL (`None`: no expiry, or not known), in no
    /// particular order; for inspection, not for the hot path (Redis walks
    /// the keyspace with `SCAN`, never `KEYS`).
    ///
    /// # Errors
    ///
    /// [`BackendError::Unsupported`] by default, for stores that cannot list keys; otherwise when the store fails.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{Backend, MemoryBackend};
    /// use std::time::Duration;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let m = MemoryBackend::new();
    /// m.set("urn:a:v1:x", b"1".to_vec(), Duration::from_secs(60)).await.unwrap();
    /// m.set("urn:b:v1:x", b"2".to_vec(), Duration::from_secs(60)).await.unwrap();
    /// let found = m.scan("urn:a:", "", 10).await.unwrap();
    /// assert_eq!(found.len(), 1);
    /// assert_eq!(found[0].key, "urn:a:v1:x");
    /// assert!(found[0].ttl.unwrap() <= Duration::from_secs(60));
    /// # });
    /// ```
    async fn scan(
        &self,
        prefix: &str,
        suffix: &str,
        limit: usize,
    ) -> Result<Vec<ScannedKey>, BackendError> {
        let _ = (prefix, suffix, limit);
        Err(BackendError::Unsupported {
            backend: self.name().to_owned(),
            operation: "scan",
        })
    }
}

/// Whether [`Backend::scan`] lists `key`: `prefix`, then anything not
/// starting with `~`, then `suffix`.
fn listed(key: &str, prefix: &str, suffix: &str) -> bool {
    key.strip_prefix(prefix)
        .is_some_and(|rest| !rest.starts_with('~') && rest.ends_with(suffix) && !rest.is_empty())
}

/// A key a store holds, as [`Backend::scan`] lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ScannedKey {
    /// The key, as stored.
    pub key: String,
    /// Its remaining time to live (`None`: no expiry, or not known).
    pub ttl: Option<Duration>,
}

impl ScannedKey {
    /// A listed key.
    ///
    /// # Examples
    ///
    /// ```
    /// let k = cachewright::backends::ScannedKey::new("urn:a:v1:x".into(), None);
    /// assert_eq!(k.key, "urn:a:v1:x");
    /// ```
    pub fn new(key: String, ttl: Option<Duration>) -> Self {
        ScannedKey { key, ttl }
    }
}

#[cfg(test)]
mod listing_tests {
    #[test]
    fn listed_keys_skip_internal_ones_and_never_slice_inside_a_character() {
        assert!(super::listed("urn:a:v1:user:1#Get", "urn:a:v1:", "#Get"));
        assert!(super::listed("urn:a:v1:user:1", "urn:a:v1:", ""));
        assert!(!super::listed("urn:a:v1:~tag:user:1", "urn:a:v1:", ""));
        assert!(!super::listed("urn:a:v1:user:1#Other", "urn:a:v1:", "#Get"));
        assert!(!super::listed("urn:ns:éééé", "urn:ns:v1:", ""));
        assert!(!super::listed("é", "urn:ns:v1:", ""));
    }
}
