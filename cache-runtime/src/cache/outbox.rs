//! Invalidations not yet delivered: a watermark raise the first remote layer
//! refused, a bus message that could not be published. Kept (the newest per
//! tag or key) and retried with back-off until delivered, never dropped.
//! Also the entries a remote layer could not take (the newest per key and
//! layer, within a byte bound): written again when the layer answers, if
//! they have not expired, no invalidation, delete or clear came since, and
//! the layer holds nothing under the key by then (`SET NX`), before the bus
//! messages owed are sent.

use super::*;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

/// The most distinct undelivered items kept; past it, new ones are counted
/// as lost and logged (a layer and bus down for a long time under a storm
/// of distinct invalidations).
const LIMIT: usize = 100_000;
/// The most bytes of entries kept for a layer that is down.
const WRITES_LIMIT: usize = 64 << 20;

/// What is owed to the first remote layer and to the bus.
#[derive(Default)]
pub(super) struct Outbox {
    pending: Mutex<Pending>,
    /// Whether a retry task is running.
    running: AtomicBool,
    /// Items taken out for an attempt and not settled yet: still owed, as
    /// far as anyone asking knows.
    in_flight: std::sync::atomic::AtomicUsize,
    /// Deliveries that failed (first tries and retries).
    pub(super) failures: AtomicU64,
    /// Items given up on because the outbox was full.
    pub(super) lost: AtomicU64,
    /// Failed attempts of the bus to connect.
    pub(super) bus_unreachable: AtomicU64,
    /// Why the bus last failed to connect, until it connects.
    pub(super) bus_error: Mutex<Option<String>>,
}

#[derive(Default)]
struct Pending {
    /// Watermark raises owed to the first remote layer: tag -> stamp.
    raises: HashMap<String, Stamp>,
    /// Bus messages owed: (kind, tag or key) -> stamp.
    messages: HashMap<(BusKind, String), Stamp>,
    /// A `Clear` owed, with its stamp.
    clear: Option<Stamp>,
    /// Entries owed to remote layers: (layer, key) -> the newest.
    writes: HashMap<(usize, String), OwedWrite>,
    /// Their bytes.
    write_bytes: usize,
}

/// An entry a remote layer could not take.
struct OwedWrite {
    bytes: Vec<u8>,
    /// Its tags: an invalidation of any of them since means it is not
    /// written back.
    tags: crate::entry::Tags,
    /// When it stops being worth writing, by the cache's clock.
    until_ms: crate::clock::Millis,
    /// The start of its load: a newer write of the key replaces it.
    stamp: Stamp,
}

/// One attempt at everything owed: settles its count of items in flight
/// when it ends, and puts back what it had not reached if it is dropped
/// before (the newest per item kept).
struct Attempt<'a> {
    outbox: &'a Outbox,
    n: usize,
    left: Pending,
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        let left = std::mem::take(&mut self.left);
        if left.len() > 0 {
            let mut p = self.outbox.lock();
            let mut lost = 0u64;
            for (t, at) in left.raises {
                lost += u64::from(!keep_newest(&mut p.raises, t, at));
            }
            for (k, at) in left.messages {
                lost += u64::from(!keep_newest(&mut p.messages, k, at));
            }
            if let Some(at) = left.clear {
                p.clear = Some(p.clear.unwrap_or(0).max(at));
            }
            for ((i, urn), w) in left.writes {
                lost += u64::from(!p.owe_write(i, urn, w));
            }
            self.outbox.lost.fetch_add(lost, Relaxed);
        }
        self.outbox.in_flight.fetch_sub(self.n, Relaxed);
    }
}

impl Pending {
    fn len(&self) -> usize {
        self.raises.len()
            + self.messages.len()
            + usize::from(self.clear.is_some())
            + self.writes.len()
    }

    /// Keeps `w` for `(layer, key)` unless a newer one is kept; false when
    /// it is given up (the bound is reached).
    fn owe_write(&mut self, layer: usize, key: String, w: OwedWrite) -> bool {
        let slot = (layer, key);
        if let Some(have) = self.writes.get(&slot) {
            if have.stamp > w.stamp {
                return true;
            }
        }
        let freed = self.writes.get(&slot).map_or(0, |h| h.bytes.len());
        let after = self.write_bytes - freed + w.bytes.len();
        if after > WRITES_LIMIT || (freed == 0 && self.writes.len() >= LIMIT) {
            return false;
        }
        self.write_bytes = after;
        self.writes.insert(slot, w);
        true
    }
}

fn keep_newest<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Stamp>, k: K, at: Stamp) -> bool {
    if let Some(have) = map.get_mut(&k) {
        *have = (*have).max(at);
        return true;
    }
    if map.len() >= LIMIT {
        return false;
    }
    map.insert(k, at);
    true
}

impl Outbox {
    pub(super) fn undelivered(&self) -> usize {
        self.pending.lock().unwrap_or_else(|e| e.into_inner()).len() + self.in_flight.load(Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Cache {
    /// Raises the watermarks of `tags` to `at` in the first remote layer;
    /// whatever fails is owed and retried.
    pub(super) async fn deliver_raises(&self, tags: Vec<String>, at: Stamp) {
        let Some(first) = self.inner.layers.first() else {
            return;
        };
        let ttl = self.watermark_ttl();
        let items = tags
            .iter()
            .map(|t| (self.watermark_key(t), at, ttl))
            .collect();
        if first.raise_many(items).await.is_err() {
            self.owe(|p, lost| {
                for t in tags {
                    *lost += u64::from(!keep_newest(&mut p.raises, t, at));
                }
            });
        }
    }

    /// Publishes one bus message; if it cannot go now, it is owed.
    pub(super) async fn deliver_message(&self, kind: BusKind, items: Vec<String>, at: Stamp) {
        if self.inner.bus.is_none() || self.publish_now(kind, items.clone(), at).await {
            return;
        }
        self.owe_message(kind, items, at);
    }

    /// Owes the write of `bytes` under `urn` to each layer of `layers`,
    /// worth writing until `until_ms`; the newest (by `stamp`) per key and
    /// layer is kept.
    pub(crate) fn owe_writes(
        &self,
        layers: LayerSet,
        urn: &str,
        bytes: &[u8],
        until_ms: crate::clock::Millis,
        (stamp, tags): (Stamp, &crate::entry::Tags),
    ) {
        if layers == LayerSet::NONE {
            return;
        }
        self.owe(|p, lost| {
            for i in (0..self.inner.layers.len()).filter(|&i| layers.contains(i)) {
                let w = OwedWrite {
                    bytes: bytes.to_vec(),
                    tags: tags.clone(),
                    until_ms,
                    stamp,
                };
                *lost += u64::from(!p.owe_write(i, urn.to_owned(), w));
            }
        });
    }

    /// Owes a bus message, to be retried in the background.
    pub(super) fn owe_message(&self, kind: BusKind, items: Vec<String>, at: Stamp) {
        self.owe(|p, lost| {
            if kind == BusKind::Clear {
                p.clear = Some(p.clear.unwrap_or(0).max(at));
            }
            for i in items {
                *lost += u64::from(!keep_newest(&mut p.messages, (kind, i), at));
            }
        });
    }

    /// How long a watermark must stay in the first remote layer: longer
    /// than any entry it may cover.
    pub(super) fn watermark_ttl(&self) -> Duration {
        self.inner
            .layers
            .iter()
            .map(|l| l.longest())
            .max()
            .unwrap_or_default()
            .saturating_add(Duration::from_secs(60))
    }

    fn owe(&self, add: impl FnOnce(&mut Pending, &mut u64)) {
        let outbox = &self.inner.outbox;
        outbox.failures.fetch_add(1, Relaxed);
        let mut lost = 0;
        let first = {
            let mut p = outbox.lock();
            let first = p.len() == 0 && outbox.in_flight.load(Relaxed) == 0;
            add(&mut p, &mut lost);
            first
        };
        if lost > 0 {
            outbox.lost.fetch_add(lost, Relaxed);
            tracing::error!(cache = %self.inner.name, lost, "too many undelivered invalidations; some were given up");
        }
        // Once per outage, not once per write while a layer is down.
        if first {
            tracing::warn!(cache = %self.inner.name, "an invalidation or a write could not be delivered; retrying in the background");
        } else {
            tracing::debug!(cache = %self.inner.name, "owed to a layer or the bus; retrying in the background");
        }
        self.start_retries();
    }

    /// Forgets the writes owed of `urn` (deleted), or of every key
    /// (`None`: cleared).
    pub(super) fn forget_writes(&self, urn: Option<&str>) {
        let mut p = self.inner.outbox.lock();
        let before = p.writes.len();
        p.writes.retain(|(_, k), _| urn.is_some_and(|u| u != k));
        if p.writes.len() != before {
            p.write_bytes = p.writes.values().map(|w| w.bytes.len()).sum();
        }
    }

    fn start_retries(&self) {
        if self.inner.outbox.running.swap(true, Relaxed) {
            return;
        }
        let weak = Arc::downgrade(&self.inner);
        // On cachewright's own runtime: the caller's may be gone before the
        // layer or the bus is back.
        crate::spawn::spawn_on_io(async move {
            let mut pause = Duration::from_millis(100);
            loop {
                tokio::time::sleep(pause).await;
                let Some(inner) = weak.upgrade() else { return };
                let cache = Cache { inner };
                if cache.retry_once().await {
                    cache.inner.outbox.running.store(false, Relaxed);
                    // Owed meanwhile, after the last look: go on.
                    if cache.inner.outbox.undelivered() == 0
                        || cache.inner.outbox.running.swap(true, Relaxed)
                    {
                        return;
                    }
                    pause = Duration::from_millis(100);
                } else {
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
            }
        });
    }

    /// One attempt at everything owed; whether nothing is owed any more.
    async fn retry_once(&self) -> bool {
        let outbox = &self.inner.outbox;
        let mut attempt = {
            let mut pending = outbox.lock();
            let n = pending.len();
            // Counted before the lock is let go: nobody sees the items gone
            // before they are delivered or owed again.
            outbox.in_flight.fetch_add(n, Relaxed);
            Attempt {
                outbox,
                n,
                left: std::mem::take(&mut *pending),
            }
        };
        // Each item leaves `left` once its delivery has run (a failed one
        // owes itself again): cancelled mid-way (a flush that timed out),
        // the attempt puts the rest back.
        let mut raises: HashMap<Stamp, Vec<String>> = HashMap::new();
        for (t, at) in &attempt.left.raises {
            raises.entry(*at).or_default().push(t.clone());
        }
        for (at, tags) in raises {
            self.deliver_raises(tags.clone(), at).await;
            for t in tags {
                attempt.left.raises.remove(&t);
            }
        }
        // Entries before the bus messages: another process told of a write
        // finds it there.
        let now = self.inner.clock.now_ms();
        let slots: Vec<(usize, String)> = attempt.left.writes.keys().cloned().collect();
        for (i, urn) in slots {
            let Some(w) = attempt.left.writes.get(&(i, urn.clone())) else {
                continue;
            };
            let left = Duration::from_millis(w.until_ms.saturating_sub(now));
            let (bytes, stamp, tags) = (w.bytes.clone(), w.stamp, w.tags.clone());
            // Expired, or deleted, cleared or invalidated since: not
            // written back.
            let wanted = !left.is_zero() && self.current(stamp, &tags, &urn);
            let failed = match self.inner.layers.get(i) {
                Some(layer) if wanted => layer.set_if_absent(&urn, bytes, left).await.is_err(),
                _ => false,
            };
            if let Some(w) = attempt.left.writes.remove(&(i, urn.clone())) {
                attempt.left.write_bytes -= w.bytes.len();
                if failed && !outbox.lock().owe_write(i, urn, w) {
                    outbox.lost.fetch_add(1, Relaxed);
                }
            }
        }
        if let Some(at) = attempt.left.clear {
            self.deliver_message(BusKind::Clear, Vec::new(), at).await;
            attempt.left.clear = None;
        }
        let messages: Vec<((BusKind, String), Stamp)> = attempt
            .left
            .messages
            .iter()
            .map(|(k, at)| (k.clone(), *at))
            .collect();
        for ((kind, item), at) in messages {
            if kind != BusKind::Clear {
                self.deliver_message(kind, vec![item.clone()], at).await;
            }
            attempt.left.messages.remove(&(kind, item));
        }
        drop(attempt);
        outbox.undelivered() == 0
    }
}

impl Cache {
    /// Delivers what this cache still owes the layers below and the bus
    /// (invalidations that failed to go out, retried in the background),
    /// waiting at most `timeout`: for a clean shutdown, after the last
    /// write. Returns whether nothing is owed any more.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    ///
    /// let cache = cachewright::Cache::builder().build();
    /// cache.invalidate_tags_async(["org:1"]).await;
    /// assert!(cache.flush_async(Duration::from_secs(1)).await, "nothing owed");
    /// # }
    /// ```
    pub async fn flush_async(&self, timeout: Duration) -> bool {
        let cache = self.clone();
        let flushed = async move {
            loop {
                if cache.inner.outbox.undelivered() == 0 || cache.retry_once().await {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        };
        // On cachewright's runtime, where the layers' clients live; the
        // timer is made there too (the caller's executor may have none).
        match cachewright_backends::io::handle() {
            Some(io) => {
                let _ = io
                    .spawn(async move {
                        let _ = tokio::time::timeout(timeout, flushed).await;
                    })
                    .await;
            }
            None => {
                let _ = crate::spawn::within(timeout, flushed).await;
            }
        }
        self.inner.outbox.undelivered() == 0
    }

    /// The blocking twin of [`flush_async`](Self::flush_async).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = cachewright::Cache::builder().build();
    /// cache.invalidate_tags(["org:1"]);
    /// assert!(cache.flush(Duration::from_secs(1)));
    /// ```
    pub fn flush(&self, timeout: Duration) -> bool {
        let cache = self.clone();
        let _ = cachewright_backends::io::block_on(
            async move { cache.flush_async(timeout).await },
            timeout.saturating_add(Duration::from_secs(1)),
        );
        self.inner.outbox.undelivered() == 0
    }

    /// Closes this cache for a clean shutdown: stops the background
    /// writers and readers that use it and releases their leases, delivers
    /// what it still owes the layers and the bus (all within `timeout`),
    /// then leaves the bus (its subscription ends; pings stop). Returns
    /// whether nothing was left undelivered.
    ///
    /// Calls made afterwards still work: with no bus to hear invalidations
    /// the in-process layer is no longer trusted, so they read the remote
    /// layers or run their functions. Closing twice is harmless. The
    /// remote layers' connections close when the last handle to the cache
    /// is dropped.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::time::Duration;
    ///
    /// let cache = cachewright::Cache::builder().build();
    /// cache.invalidate_tags_async(["org:1"]).await;
    /// assert!(cache.close_async(Duration::from_secs(1)).await, "nothing left owed");
    /// assert!(cache.is_closed());
    /// # }
    /// ```
    pub async fn close_async(&self, timeout: Duration) -> bool {
        let started = std::time::Instant::now();
        let releases = crate::bg::stop_all(Some(self));
        let _ = crate::spawn::within(timeout, async move {
            for r in releases {
                r.await;
            }
        })
        .await;
        let left = timeout.saturating_sub(started.elapsed());
        let flushed = self.flush_async(left).await;
        self.leave_bus();
        flushed
    }

    /// The blocking twin of [`close_async`](Self::close_async).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let cache = cachewright::Cache::builder().build();
    /// assert!(cache.close(Duration::from_secs(1)));
    /// assert!(cache.close(Duration::from_secs(1)), "twice is harmless");
    /// ```
    pub fn close(&self, timeout: Duration) -> bool {
        let cache = self.clone();
        let _ = cachewright_backends::io::block_on(
            async move { cache.close_async(timeout).await },
            timeout.saturating_add(Duration::from_secs(1)),
        );
        // Whatever happened to the deliveries, the bus is left.
        self.leave_bus();
        self.inner.outbox.undelivered() == 0
    }

    /// Whether [`close`](Self::close) was called.
    ///
    /// # Examples
    ///
    /// ```
    /// assert!(!cachewright::Cache::builder().build().is_closed());
    /// ```
    pub fn is_closed(&self) -> bool {
        self.inner.closed.load(std::sync::atomic::Ordering::Acquire)
    }

    fn leave_bus(&self) {
        if self
            .inner
            .closed
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        if self.inner.bus.is_some() {
            // No invalidation can be heard from now on.
            self.on_bus(cachewright_backends::BusEvent::Disconnected);
            tracing::info!(
                cache = self.name(),
                "cache closed: left the invalidation bus"
            );
        }
    }
}
