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

#[cfg(feature = "file")]
#[cfg_attr(docsrs, doc(cfg(feature = "file")))]
pub mod file;

#[cfg(feature = "object-store")]
#[cfg_attr(docsrs, doc(cfg(feature = "object-store")))]
pub mod object;

#[cfg(any(feature = "file", feature = "object-store"))]
mod record;
mod url;
pub use url::redact_url;

pub use async_trait::async_trait;

use std::fmt;
use std::ops::Range;
use std::time::Duration;

/// Why a backend operation failed. The runtime never passes these to callers
/// of cached functions: it counts them, logs them and carries on.
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
pub type BusSink = std::sync::Arc<dyn Fn(BusEvent) -> bool + Send + Sync>;

/// A publish/subscribe channel that carries invalidations (never values)
/// between the processes sharing a cache. Redis pub/sub is the one shipped.
#[async_trait]
pub trait Bus: Send + Sync + fmt::Debug + 'static {
    /// Publishes `payload` on `channel`.
    async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), BackendError>;

    /// Starts listening on `channel` in the background, reconnecting by
    /// itself, and hands every event to `sink` until it returns `false`.
    fn subscribe(&self, channel: &str, sink: BusSink);
}

/// Where a value's content hash and its rewritable header sit in the bytes
/// given to [`Backend::set_dedupe`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dedupe {
    /// The header (times, format version) that may be rewritten in place.
    pub header: Range<usize>,
    /// The content hash inside the header: equal bytes here mean equal value.
    pub hash: Range<usize>,
}

/// What [`Backend::set_dedupe`] did.
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
#[async_trait]
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    /// A short name for logs and metrics (`"redis"`, `"file"`).
    fn name(&self) -> &str;

    /// The bytes under `key`, if present and not expired.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError>;

    /// Stores `value` under `key` for `ttl`.
    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), BackendError>;

    /// Removes `key`; returns whether it was there.
    async fn delete(&self, key: &str) -> Result<bool, BackendError>;

    /// The bytes under each of `keys`, in order.
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
    fn native_get_many(&self) -> bool {
        false
    }

    /// Stores every `(key, value, ttl)`.
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

    /// Stores `value`, unless the stored value has the same content hash (at
    /// `dedupe.hash`): then only its header and TTL are renewed. The default
    /// always writes.
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
    async fn delete_if(&self, key: &str, token: &[u8]) -> Result<bool, BackendError> {
        match self.get(key).await? {
            Some(v) if v == token => self.delete(key).await,
            _ => Ok(false),
        }
    }

    /// The invalidation bus that comes with this store, if any (Redis: its
    /// pub/sub). A cache whose layers offer one uses the first.
    fn bus(&self) -> Option<std::sync::Arc<dyn Bus>> {
        None
    }

    /// Removes every key that starts with `prefix`; returns how many.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, BackendError> {
        let _ = prefix;
        Err(BackendError::Unsupported {
            backend: self.name().to_owned(),
            operation: "delete_prefix",
        })
    }
}
