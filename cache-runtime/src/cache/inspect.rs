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
}

impl Inspect {
    /// Every key of the cache's namespace and version (up to 1000 per
    /// layer).
    pub fn all() -> Self {
        Inspect {
            use_case: None,
            limit: 1000,
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
    /// directory listing (files); each listed key's header is read. In
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
        let mut out = Inspection {
            cache: self.name().to_owned(),
            layers: vec![self.inspect_local(what)],
        };
        let what2 = what.clone();
        let remote = self.remote_blocking(move |c| async move { c.inspect_remote(&what2).await });
        match remote {
            Some(layers) => out.layers.extend(layers),
            None => out
                .layers
                .extend(self.inner.layers.iter().map(|l| LayerKeys {
                    layer: l.backend.name().to_owned(),
                    keys: Vec::new(),
                    unlisted: 0,
                    error: Some("the layers did not answer in time".into()),
                })),
        }
        out
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
        let prefix = self.key_prefix();
        let suffix = what
            .use_case
            .as_deref()
            .map_or(String::new(), |u| format!("#{u}"));
        let mut out = Vec::new();
        for layer in &self.inner.layers {
            let scan = layer.backend.scan(&prefix, &suffix, what.limit);
            let budget = layer.timeout().saturating_mul(50);
            let listed = match tokio::time::timeout(budget, scan).await {
                Ok(Ok(keys)) => keys,
                Ok(Err(e)) => {
                    out.push(LayerKeys {
                        layer: layer.backend.name().to_owned(),
                        keys: Vec::new(),
                        unlisted: 0,
                        error: Some(e.to_string()),
                    });
                    continue;
                }
                Err(_) => {
                    out.push(LayerKeys {
                        layer: layer.backend.name().to_owned(),
                        keys: Vec::new(),
                        unlisted: 0,
                        error: Some(format!("no answer in {budget:?}")),
                    });
                    continue;
                }
            };
            let mut keys = Vec::with_capacity(listed.len());
            for k in listed {
                // Watermarks and leases (`<prefix>~...`) are not entries.
                if k.key[prefix.len().min(k.key.len())..].starts_with('~') {
                    continue;
                }
                keys.push(self.describe(layer, k).await);
            }
            out.push(LayerKeys {
                layer: layer.backend.name().to_owned(),
                keys,
                unlisted: 0,
                error: None,
            });
        }
        out
    }

    /// A listed remote key, its header read.
    async fn describe(
        &self,
        layer: &crate::layer::RemoteLayer,
        k: cachewright_backends::ScannedKey,
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
            key: k.key,
        };
        let budget = layer.timeout();
        let Ok(Ok(Some(bytes))) = tokio::time::timeout(budget, layer.backend.get(&info.key)).await
        else {
            return info;
        };
        if let Ok(meta) = crate::envelope::decode_meta_any(&bytes, self.inner.codec, &info.key) {
            let now = self.inner.clock.now_ms();
            info.state = state(meta.freshness(now));
            info.negative = meta.negative;
            info.invalidated = !self.remote_valid(meta.stamp, &meta.tags, &info.key).await;
            info.tags = meta.tags.iter().map(|t| t.to_string()).collect();
        }
        info
    }
}
