//! An in-memory bytes backend: a layer for tests and single-process setups
//! that want the encoded path (and an example of a complete backend).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::{Backend, BackendError, Dedupe, Written};

/// Bytes in a `HashMap`, with TTLs on the system monotonic clock.
///
/// # Examples
///
/// ```
/// use cachewright::backends::{Backend, MemoryBackend};
/// use std::time::Duration;
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let m = MemoryBackend::new();
/// assert!(m.set_if_absent("lock", b"me".to_vec(), Duration::from_secs(5)).await.unwrap());
/// assert!(!m.set_if_absent("lock", b"you".to_vec(), Duration::from_secs(5)).await.unwrap());
/// # });
/// ```
#[derive(Debug, Default)]
pub struct MemoryBackend {
    map: Mutex<HashMap<String, (Vec<u8>, Instant)>>,
}

impl MemoryBackend {
    /// An empty backend.
    /// ///
    /// # Examples
    /// ///
    /// ```
    /// use cachewright::{Cache, LayerConfig};
    /// use cachewright::backends::MemoryBackend;
    ///
    /// let memory = MemoryBackend::new();
    /// assert!(memory.is_empty());
    /// let cache = Cache::builder().layer(LayerConfig::new(memory)).build();
    /// assert_eq!(cache.layer_stats()[0].backend, "memory");
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    fn live<R>(&self, f: impl FnOnce(&mut HashMap<String, (Vec<u8>, Instant)>, Instant) -> R) -> R {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut map, Instant::now())
    }

    /// How many keys are stored (expired ones included until touched).
    /// ///
    /// # Examples
    /// ///
    /// ```
    /// use cachewright::{Cache, LayerConfig};
    /// use cachewright::backends::MemoryBackend;
    /// use std::sync::Arc;
    ///
    /// let memory = Arc::new(MemoryBackend::new());
    /// let cache = Cache::builder().layer(LayerConfig::shared(memory.clone())).build();
    /// cache.set(&cache.key("user", &1), 1u8, None);
    /// cache.set(&cache.key("user", &2), 2u8, None);
    /// assert_eq!(memory.len(), 2);
    /// ```
    pub fn len(&self) -> usize {
        self.live(|m, _| m.len())
    }

    /// Whether nothing is stored.
    /// ///
    /// # Examples
    /// ///
    /// ```
    /// use cachewright::backends::{Backend, MemoryBackend};
    /// use std::time::Duration;
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let m = MemoryBackend::new();
    /// assert!(m.is_empty());
    /// m.set("k", b"v".to_vec(), Duration::from_secs(1)).await.unwrap();
    /// assert!(!m.is_empty());
    /// # });
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn deadline(now: Instant, ttl: Duration) -> Instant {
    now.checked_add(ttl)
        .unwrap_or(now + Duration::from_secs(100 * 365 * 86_400))
}

#[async_trait]
impl Backend for MemoryBackend {
    fn name(&self) -> &str {
        "memory"
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        Ok(self.live(|m, now| match m.get(key) {
            Some((v, until)) if *until > now => Some(v.clone()),
            Some(_) => {
                m.remove(key);
                None
            }
            None => None,
        }))
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), BackendError> {
        self.live(|m, now| m.insert(key.to_owned(), (value, deadline(now, ttl))));
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<bool, BackendError> {
        Ok(self.live(|m, now| m.remove(key).is_some_and(|(_, until)| until > now)))
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, BackendError> {
        Ok(self.live(|m, now| match m.get(key) {
            Some((_, until)) if *until > now => false,
            _ => {
                m.insert(key.to_owned(), (value, deadline(now, ttl)));
                true
            }
        }))
    }

    async fn set_dedupe(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
        dedupe: &Dedupe,
    ) -> Result<Written, BackendError> {
        Ok(self.live(|m, now| {
            if let Some((old, until)) = m.get_mut(key) {
                if *until > now && old.get(dedupe.hash.clone()) == value.get(dedupe.hash.clone()) {
                    if let (Some(dst), Some(src)) = (
                        old.get_mut(dedupe.header.clone()),
                        value.get(dedupe.header.clone()),
                    ) {
                        dst.copy_from_slice(src);
                        *until = deadline(now, ttl);
                        return Written::Renewed;
                    }
                }
            }
            m.insert(key.to_owned(), (value, deadline(now, ttl)));
            Written::Value
        }))
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, BackendError> {
        Ok(self.live(|m, _| {
            let before = m.len();
            m.retain(|k, _| !k.starts_with(prefix));
            (before - m.len()) as u64
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dedupe_renews_header_only_when_hash_matches() {
        let m = MemoryBackend::new();
        let d = Dedupe {
            header: 0..2,
            hash: 1..2,
        };
        let ttl = Duration::from_secs(60);
        assert_eq!(
            m.set_dedupe("k", b"1Abody".to_vec(), ttl, &d)
                .await
                .unwrap(),
            Written::Value
        );
        assert_eq!(
            m.set_dedupe("k", b"2Abody".to_vec(), ttl, &d)
                .await
                .unwrap(),
            Written::Renewed
        );
        assert_eq!(m.get("k").await.unwrap().unwrap(), b"2Abody");
        assert_eq!(
            m.set_dedupe("k", b"3Bnew".to_vec(), ttl, &d).await.unwrap(),
            Written::Value
        );
        assert_eq!(m.get("k").await.unwrap().unwrap(), b"3Bnew");
        assert_eq!(m.delete_prefix("k").await.unwrap(), 1);
        assert!(m.is_empty());
    }
}
