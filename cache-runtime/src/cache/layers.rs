//! The remote layers as a cache uses them: the one read path (top down,
//! filling the layers above a hit) and the one write path, and whether an
//! entry read from them is still valid.

use super::*;

impl Cache {
    /// The key under which a tag's watermark lives in the first remote
    /// layer. `~` cannot start a key type, so it never meets an entry.
    pub(super) fn watermark_key(&self, tag: &str) -> String {
        crate::key::watermark_key(&self.key_prefix(), tag)
    }

    /// Whether no invalidation this process knows of covers a value of `urn`
    /// with `tags` whose load began at `stamp`.
    pub(crate) fn current(&self, stamp: Stamp, tags: &[Box<str>], urn: &str) -> bool {
        let hashes: Vec<u64> = tags
            .iter()
            .map(|t| tag_hash(t))
            .chain([tag_hash(urn)])
            .collect();
        self.inner.marks.valid(stamp, &hashes)
    }

    /// Whether a flight's value of `urn` may be handed to a waiter: as
    /// [`current`](Self::current), and got by this process after the bus
    /// last reconnected (as an in-process entry must be), while the
    /// in-process layer is trusted (a waiter that missed in process because
    /// the lease ran out must not be handed what the bus may have
    /// invalidated unheard).
    pub(crate) fn shareable<V>(&self, value: &Stamped<V>, urn: &str) -> bool {
        let hashes: Vec<u64> = value
            .tags
            .iter()
            .map(|t| tag_hash(t))
            .chain([tag_hash(urn)])
            .collect();
        self.inner.marks.trusted()
            && self
                .inner
                .marks
                .valid_in_process(value.since, value.stamp, &hashes)
    }

    /// Whether an entry read from a remote layer is still valid: its tags
    /// and key against the watermarks this process knows, and, for tags it
    /// has not yet heard of, those stored in the first remote layer.
    pub(crate) async fn remote_valid(&self, created: Stamp, tags: &[Box<str>], urn: &str) -> bool {
        let marks = &self.inner.marks;
        // The tags' hashes, then the key's: on the stack for the usual few.
        let mut stack = [0u64; 8];
        let mut heap = Vec::new();
        let n = tags.len() + 1;
        let hashes: &mut [u64] = if n <= stack.len() {
            &mut stack[..n]
        } else {
            heap.resize(n, 0);
            &mut heap
        };
        for (h, t) in hashes
            .iter_mut()
            .zip(tags.iter().map(|t| &**t).chain([urn]))
        {
            *h = tag_hash(t);
        }
        let Some(first) = self.inner.layers.first() else {
            return marks.valid(created, hashes);
        };
        // With the bus up, a tag fetched once stays known: later
        // invalidations arrive as messages.
        let listening = self.inner.bus.is_some() && marks.trusted();
        let (valid, unknown) = marks.judge(created, hashes, tags.len(), listening);
        if !valid {
            return false;
        }
        if unknown == 0 {
            return true;
        }
        let wanted: Vec<usize> = (0..tags.len())
            .filter(|&i| unknown & (1u64 << i.min(63)) != 0)
            .collect();
        let keys = wanted
            .iter()
            .map(|&i| self.watermark_key(&tags[i]))
            .collect();
        let generation = marks.generation();
        let Ok(found) = first.get_many_uncounted(keys).await else {
            // Cannot verify: not served.
            return false;
        };
        let read = wanted.iter().zip(found).map(|(&i, v)| {
            let at = v.and_then(|b| std::str::from_utf8(&b).ok()?.trim().parse::<u64>().ok());
            (hashes[i], at)
        });
        marks.learn(read, listening.then_some(generation));
        marks.valid(created, hashes)
    }

    /// Writes an encoded entry to the layers of `to`, for as long as
    /// `remaining(i)` says for layer `i` (a use case's caps), each capped
    /// by its own TTL cap: the one write path of every remote write.
    pub(crate) async fn write_layers(
        &self,
        urn: &str,
        bytes: Vec<u8>,
        remaining: &(dyn Fn(usize) -> Duration + Sync),
        to: LayerSet,
    ) -> LayerSet {
        let mut failed = LayerSet::NONE;
        for (i, layer) in self.inner.layers.iter().enumerate() {
            let left = remaining(i);
            if to.contains(i)
                && !left.is_zero()
                && layer
                    .put(urn, bytes.clone(), layer.capped(left))
                    .await
                    .is_err()
            {
                failed = failed.with(i);
            }
        }
        failed
    }

    /// Writes an entry to the layers of `to` and owes it to those that
    /// fail, and to those of `owed` (which failed a read just before: not
    /// tried again now), to be written when they answer again.
    pub(crate) async fn write_or_owe(
        &self,
        urn: &str,
        bytes: Vec<u8>,
        remaining: &(dyn Fn(usize) -> Duration + Sync),
        to: LayerSet,
        owed: LayerSet,
        stamped: (Stamp, &crate::entry::Tags),
    ) {
        let failed = if to == LayerSet::NONE {
            LayerSet::NONE
        } else {
            self.write_layers(urn, bytes.clone(), remaining, to).await
        };
        let owed = owed.without(to).with_all(failed);
        let now = self.inner.clock.now_ms();
        for i in (0..self.inner.layers.len()).filter(|&i| owed.contains(i)) {
            let left = remaining(i);
            if left.is_zero() {
                continue;
            }
            let capped = self.inner.layers[i].capped(left);
            let until = now.saturating_add(crate::clock::saturating_ms(capped));
            self.owe_writes(LayerSet::NONE.with(i), urn, &bytes, until, stamped);
        }
    }

    /// Reads `urn` from the remote layers, top down: the first entry that
    /// `decode` takes, that has not expired and that no invalidation covers
    /// wins, and fills the layers above the one that held it. The one read
    /// path of every remote read; also says which layers failed. Only the
    /// layers of `from` are read and filled, a filled layer `i` keeping the
    /// entry for `cap(i, remaining)`. With `keep_expired` (a fail-safe
    /// window, in milliseconds), an expired entry no older than that past
    /// its expiry, and valid, is returned (as `Expired`, filling nothing)
    /// when no layer holds a live one.
    pub(crate) async fn read_layers<V>(
        &self,
        urn: &str,
        from: LayerSet,
        cap: &(dyn Fn(usize, Duration) -> Duration + Sync),
        keep_expired: u64,
        decode: impl Fn(&[u8]) -> Result<Entry<V>, crate::envelope::DecodeError>,
    ) -> (Option<RemoteHit<V>>, LayerSet) {
        let mut failed = LayerSet::NONE;
        let mut expired: Option<RemoteHit<V>> = None;
        for (i, layer) in self.inner.layers.iter().enumerate() {
            if !from.contains(i) {
                continue;
            }
            let bytes = match layer.get(urn).await {
                Ok(Some(b)) => b,
                Ok(None) => continue,
                Err(_) => {
                    failed = failed.with(i);
                    continue;
                }
            };
            if bytes.len() > self.max_value_bytes() {
                // Never decoded: a blob this large was not written by this
                // cache's settings (corrupt, or another application's).
                layer.decode_error(urn, &crate::envelope::DecodeError::TooLarge);
                continue;
            }
            let entry = match decode(&bytes) {
                Ok(e) => e,
                Err(e) => {
                    // Another build, another type or garbage: a miss; the
                    // load that follows overwrites it.
                    layer.decode_error(urn, &e);
                    continue;
                }
            };
            let now = self.inner.clock.now_ms();
            let freshness = entry.freshness(now);
            if freshness == Freshness::Expired {
                let servable = now < entry.stale_until_ms.saturating_add(keep_expired);
                if servable
                    && expired.is_none()
                    && self.remote_valid(entry.stamp, &entry.tags, urn).await
                {
                    expired = Some(RemoteHit { entry, freshness });
                }
                continue;
            }
            if !self.remote_valid(entry.stamp, &entry.tags, urn).await {
                // Invalidated since it was written (or not verifiable now).
                continue;
            }
            if i > 0 {
                let remaining = Duration::from_millis(entry.stale_until_ms.saturating_sub(now));
                let to = LayerSet::above(i).and(from);
                self.write_layers(urn, bytes, &|j| cap(j, remaining), to)
                    .await;
            }
            tracing::debug!(key = urn, layer = layer.backend.name(), "remote hit");
            let hit = RemoteHit { entry, freshness };
            return (Some(hit), failed);
        }
        (expired, failed)
    }

    /// Runs the remote phase of a sync direct-API call on cachewright's i/o
    /// runtime; `None` when it could not finish in the layers' time budget.
    pub(super) fn remote_blocking<R, F>(&self, f: impl FnOnce(Cache) -> F) -> Option<R>
    where
        F: Future<Output = R> + Send + 'static,
        R: Send + 'static,
    {
        if self.inner.layers.is_empty() {
            return None;
        }
        cachewright_backends::io::block_on(f(self.clone()), self.remote_budget()).ok()
    }
}

/// What a remote read found: the entry, and where it stood when read.
pub(crate) struct RemoteHit<V> {
    pub(crate) entry: Entry<V>,
    pub(crate) freshness: Freshness,
}
