//! Inspection: what each layer holds of a use case or of the cache's
//! namespace, key by key, with remaining TTLs and tags. For operators and
//! debugging, not for calls: remote layers are walked with `SCAN` (never
//! `KEYS`) and each key's header read.

use serde::Serialize;

use super::Cache;
use crate::entry::Freshness;

/// What to inspect; see [`Cache::inspect`].
///
/// # Examples
///
/// ```
/// use cachewright::Inspect;
///
/// let all = Inspect::all().limit(100);
/// let one = Inspect::use_case("GetUser");
/// # let _ = (all, one);
/// ```
#[derive(Clone, Debug)]
pub struct Inspect {
    use_case: Option<String>,
    limit: usize,
    timeout: std::time::Duration,
}

impl Inspect {
    /// Every key of the cache's namespace and version (up to 1000 per
    /// layer).
    pub fn all() -> Self {
        Inspect {
            use_case: None,
            limit: 1000,
            timeout: std::time::Duration::from_secs(5),
        }
    }

    /// The keys of one use case, by name.
    pub fn use_case(name: impl Into<String>) -> Self {
        Inspect {
            use_case: Some(name.into()),
            ..Inspect::all()
        }
    }

    /// At most `n` keys per layer.
    pub fn limit(mut self, n: usize) -> Self {
        self.limit = n;
        self
    }

    /// How long each remote layer may take to list and read its keys
    /// (default 5 s); a layer that takes longer is reported with an error.
    pub fn timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// One key in one layer.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct KeyInfo {
    /// The key (its URN).
    pub key: String,
    /// The use case that stored it (the URN's `#` part; `direct` for the
    /// direct API).
    pub use_case: String,
    /// How long the layer keeps it still, in milliseconds (`None`: no
    /// expiry, or not known).
    pub remaining_ms: Option<u64>,
    /// `fresh`, `stale` (inside its stale-while-revalidate window) or
    /// `expired`, by the entry's own header; `unknown` when it could not
    /// be read.
    pub state: &'static str,
    /// Whether it records an absence (a cached `None`).
    pub negative: bool,
    /// Whether an invalidation covers it (it is held, but never served).
    pub invalidated: bool,
    /// Its tags (the entity tag first).
    pub tags: Vec<String>,
}

/// What one layer holds.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct LayerKeys {
    /// The layer: `local` for the in-process one, else its backend's name.
    pub layer: String,
    /// The keys found (up to the limit).
    pub keys: Vec<KeyInfo>,
    /// Entries held that are not listed by key: in-process entries of
    /// `#[cached]` functions are kept by their arguments, not their URN
    /// (only their number is known here).
    pub unlisted: usize,
    /// Why the layer could not be listed, if it could not (a backend that
    /// cannot list keys, such as object stores; an error).
    pub error: Option<String>,
}

/// What [`Cache::inspect`] found, layer by layer, top down.
#[derive(Clone, Debug, Serialize)]
#[non_exhaustive]
pub struct Inspection {
    /// The cache's name.
    pub cache: String,
    /// The in-process layer first, then each remote layer.
    pub layers: Vec<LayerKeys>,
}

fn state(f: Freshness) -> &'static str {
    match f {
        Freshness::Fresh => "fresh",
        Freshness::Stale => "stale",
        Freshness::Expired => "expired",
    }
}

impl Cache {
    /// Lists what each layer holds of a use case, or of the whole cache
    /// (its namespace and version), with each key's remaining TTL, state
    /// and tags. Remote layers are walked with `SCAN` (Redis) or a
    /// directory listing (files), the listed keys read in batches, each
    /// layer within the inspection's timeout. In
    /// process, the direct API's entries are listed by key and
    /// `#[cached]` functions' are counted (they are kept by argument
    /// values, not by URN). Meant for operators and debugging: it reads
    /// every listed key.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Cache, Inspect};
    /// use std::time::Duration;
    ///
    /// let cache = Cache::builder().namespace("shop").build();
    /// cache.set(&cache.key("user", &7), 7u32, Some(Duration::from_secs(60)));
    /// let found = cache.inspect(&Inspect::all());
    /// let local = &found.layers[0];
    /// assert_eq!(local.layer, "local");
    /// assert_eq!(local.keys[0].key, "urn:shop:v1:user:7");
    /// assert_eq!(local.keys[0].tags, ["user:7"]);
    /// assert!(local.keys[0].remaining_ms.unwrap() <= 60_000);
    /// ```
    pub fn inspect(&self, what: &Inspect) -> Inspection {
        let mut layers = vec![self.inspect_local(what)];
        let (cache, what2) = (self.clone(), what.clone());
        // On cachewright's I/O runtime, where the layers' clients live;
        // each layer is bounded by the inspection's timeout.
        let per_layer = what
            .timeout
            .saturating_add(std::time::Duration::from_secs(1));
        let budget = per_layer.saturating_mul(self.inner.layers.len() as u32);
        match cachewright_backends::io::block_on(
            async move { cache.inspect_remote(&what2).await },
            budget,
        ) {
            Ok(remote) => layers.extend(remote),
            Err(_) => layers.extend(self.inner.layers.iter().map(|l| LayerKeys {
                layer: l.backend.name().to_owned(),
                keys: Vec::new(),
                unlisted: 0,
                error: Some("the layers could not be inspected in time".into()),
            })),
        }
        Inspection {
            cache: self.name().to_owned(),
            layers,
        }
    }

    /// [`inspect`](Self::inspect), awaiting the remote layers.
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
    /// let cache = cachewright::Cache::builder().build();
    /// let found = cache.inspect_async(&cachewright::Inspect::all()).await;
    /// assert_eq!(found.layers.len(), 1, "in process only");
    /// # });
    /// ```
    pub async fn inspect_async(&self, what: &Inspect) -> Inspection {
        let mut layers = vec![self.inspect_local(what)];
        layers.extend(self.inspect_remote(what).await);
        Inspection {
            cache: self.name().to_owned(),
            layers,
        }
    }

    fn inspect_local(&self, what: &Inspect) -> LayerKeys {
        let now = self.inner.clock.now_ms();
        let marks = &*self.inner.marks;
        let wanted = |uc: &str| what.use_case.as_deref().is_none_or(|w| w == uc);
        let prefix = self.key_prefix();
        let keys = if wanted("direct") {
            self.inner.store.collect(what.limit, |k: &String, h| {
                // The entity: what follows the prefix, up to `?` or `#`.
                let rest = k.strip_prefix(prefix.as_str()).unwrap_or(k);
                let entity = rest.split(['?', '#']).next().unwrap_or(rest);
                let e = h.view(entity);
                Some(KeyInfo {
                    key: k.clone(),
                    use_case: "direct".into(),
                    remaining_ms: Some(e.stale_until_ms.saturating_sub(now))
                        .filter(|_| e.stale_until_ms != u64::MAX),
                    state: state(h.freshness(now)),
                    negative: e.negative,
                    invalidated: !h.valid(marks),
                    tags: e.tags().iter().map(|t| t.to_string()).collect(),
                })
            })
        } else {
            Vec::new()
        };
        let unlisted = self
            .use_cases()
            .iter()
            .filter(|u| wanted(u.name()))
            .map(|u| u.stats().size)
            .sum();
        LayerKeys {
            layer: "local".into(),
            keys,
            unlisted,
            error: None,
        }
    }

    async fn inspect_remote(&self, what: &Inspect) -> Vec<LayerKeys> {
        let mut out = Vec::new();
        for layer in &self.inner.layers {
            let name = layer.backend.name().to_owned();
            let failed = |error: String| LayerKeys {
                layer: name.clone(),
                keys: Vec::new(),
                unlisted: 0,
                error: Some(error),
            };
            if layer.health().state == crate::LayerState::BreakerOpen {
                out.push(failed("breaker open: skipped".into()));
                continue;
            }
            let (cache, layer2, what2) = (self.clone(), layer.clone(), what.clone());
            let listed = crate::spawn::within(what.timeout, async move {
                cache.inspect_layer(&layer2, &what2).await
            })
            .await;
            out.push(match listed {
                Some(Ok(keys)) => LayerKeys {
                    layer: name.clone(),
                    keys,
                    unlisted: 0,
                    error: None,
                },
                Some(Err(e)) => failed(e),
                None => failed(format!("no answer within {:?}", what.timeout)),
            });
        }
        out
    }

    /// One layer's keys: listed with `scan` (which leaves out the
    /// `<prefix>~` keys of watermarks and leases), then read in batches.
    async fn inspect_layer(
        &self,
        layer: &crate::layer::RemoteLayer,
        what: &Inspect,
    ) -> Result<Vec<KeyInfo>, String> {
        let prefix = self.key_prefix();
        let suffix = what
            .use_case
            .as_deref()
            .map_or(String::new(), |u| format!("#{u}"));
        let listed = layer
            .backend
            .scan(&prefix, &suffix, what.limit)
            .await
            .map_err(|e| e.to_string())?;
        // A backend may list more than asked; never an internal key.
        let listed: Vec<_> = listed
            .into_iter()
            .filter(|k| {
                k.key
                    .strip_prefix(prefix.as_str())
                    .is_some_and(|rest| !rest.starts_with('~'))
            })
            .take(what.limit)
            .collect();
        let mut keys = Vec::with_capacity(listed.len());
        for batch in listed.chunks(100) {
            let names: Vec<String> = batch.iter().map(|k| k.key.clone()).collect();
            let values = layer
                .backend
                .get_many(&names)
                .await
                .map_err(|e| e.to_string())?;
            for (k, bytes) in batch.iter().zip(values) {
                keys.push(self.describe(k, bytes.as_deref()).await);
            }
        }
        Ok(keys)
    }

    /// A listed remote key, described from its stored bytes (if it was
    /// still there).
    async fn describe(
        &self,
        k: &cachewright_backends::ScannedKey,
        bytes: Option<&[u8]>,
    ) -> KeyInfo {
        let use_case = k
            .key
            .rsplit_once('#')
            .map_or("direct", |(_, u)| u)
            .to_owned();
        let mut info = KeyInfo {
            use_case,
            remaining_ms: k
                .ttl
                .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            state: "unknown",
            negative: false,
            invalidated: false,
            tags: Vec::new(),
            key: k.key.clone(),
        };
        let Some(bytes) = bytes else { return info };
        if let Ok(meta) = crate::envelope::decode_meta_any(bytes, self.inner.codec, &info.key) {
            let now = self.inner.clock.now_ms();
            info.state = state(meta.freshness(now));
            info.negative = meta.negative;
            info.invalidated = !self.remote_valid(meta.stamp, &meta.tags, &info.key).await;
            info.tags = meta.tags.iter().map(|t| t.to_string()).collect();
        }
        info
    }
}
