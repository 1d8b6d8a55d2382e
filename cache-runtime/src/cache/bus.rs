//! The invalidation bus: what travels on it, listening, and publishing.

use super::*;
use std::sync::atomic::Ordering::Relaxed;

/// What travels on the invalidation bus: never values, only what to drop.
#[derive(serde::Serialize, serde::Deserialize, Debug)]
pub(super) struct BusMessage {
    origin: u64,
    kind: BusKind,
    #[serde(default)]
    items: Vec<String>,
    at: u64,
    /// Asks every receiver to acknowledge this message once applied
    /// (0: no acknowledgement wanted; builds before confirmations).
    #[serde(default)]
    seq: u64,
    /// For a `Ping`: the sender's lease in milliseconds (how long it may
    /// trust its in-process layer after the ping was sent).
    #[serde(default)]
    pub(super) lease: u64,
}

impl BusMessage {
    /// A message of the confirmation protocol (`Ping`, `Ack`).
    pub(super) fn control(origin: u64, kind: BusKind, at: u64, seq: u64) -> Self {
        BusMessage {
            origin,
            kind,
            items: Vec::new(),
            at,
            seq,
            lease: 0,
        }
    }
}

#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub(super) enum BusKind {
    /// Tags invalidated at `at` (watermarks).
    Tags,
    /// Keys invalidated at `at`: older copies are invalid. This build sends
    /// none (a delete travels as `Written`); still honoured from processes
    /// running earlier builds on the same bus.
    Keys,
    /// Keys written anew at `at`: older copies are superseded. Written
    /// through to the remote layers, so only in-process copies elsewhere
    /// need dropping; this process may forget these first (see
    /// `Watermarks::raise_written`).
    Written,
    /// The namespace was cleared.
    Clear,
    /// A cache's ping, on the namespace's ping channel: `at` is when it
    /// was sent (real monotonic ms), `seq` the number of the sender's
    /// subscription. Coming back to its sender it extends the lease; heard
    /// by others it makes the sender a member.
    Ping,
    /// On the sender's own channel: message `seq` was applied by `origin`.
    Ack,
}

impl Cache {
    /// The bus channel of this cache's namespace and version.
    pub(super) fn channel(&self) -> String {
        format!("cachewright:bus:{}", self.key_prefix())
    }

    /// Subscribes to the bus, holding only a weak reference: listening stops
    /// once the cache is dropped.
    pub(super) fn listen(&self) {
        let Some(bus) = &self.inner.bus else { return };
        let weak = Arc::downgrade(&self.inner);
        let sink: cachewright_backends::BusSink = Arc::new(move |event| {
            let Some(inner) = weak.upgrade() else {
                return false;
            };
            if inner.closed.load(Relaxed) {
                // Closed: the subscription ends here.
                return false;
            }
            Cache { inner }.on_bus(event);
            true
        });
        if self.inner.confirm.is_some() {
            // One subscription for both channels: a ping coming back after
            // an invalidation proves the invalidation was applied.
            bus.subscribe_all(
                &[self.channel(), self.ping_channel(), self.own_channel()],
                sink,
            );
            self.start_pings();
        } else {
            bus.subscribe(&self.channel(), sink);
        }
    }

    pub(super) fn on_bus(&self, event: BusEvent) {
        let marks = &self.inner.marks;
        match event {
            BusEvent::Connected => {
                *self
                    .inner
                    .outbox
                    .bus_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = None;
                // Whatever was invalidated while we were not listening is
                // unknown: nothing held from before is trusted.
                if let Some(c) = &self.inner.confirm {
                    c.subscriptions.fetch_add(1, Relaxed);
                    // The first subscription only: on later ones the
                    // members heard before are still known.
                    let _ = c.subscribed_at.compare_exchange(
                        0,
                        crate::clock::real_ms().max(1),
                        Relaxed,
                        Relaxed,
                    );
                    // Earned anew by a ping through this subscription.
                    marks.drop_lease();
                }
                marks.reset(self.inner.clock.stamp());
                self.clear_local();
                marks.set_trusted(true);
                // With a lease, the in-process layer is used once this
                // comes back.
                self.ping();
                tracing::info!(cache = %self.inner.name, "invalidation bus connected");
            }
            BusEvent::Disconnected => {
                marks.drop_lease();
                marks.set_trusted(false);
                self.clear_local();
            }
            BusEvent::Unreachable(why) => {
                let n = self.inner.outbox.bus_unreachable.fetch_add(1, Relaxed) + 1;
                if n == 1 || n % 100 == 0 {
                    tracing::warn!(cache = %self.inner.name, attempts = n, reason = %why, "the invalidation bus cannot connect; in-process entries are not trusted until it does");
                }
                *self
                    .inner
                    .outbox
                    .bus_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(why);
            }
            BusEvent::Message(bytes) => {
                let Ok(msg) = serde_json::from_slice::<BusMessage>(&bytes) else {
                    tracing::warn!(cache = %self.inner.name, "unreadable message on the invalidation bus; ignored");
                    return;
                };
                match msg.kind {
                    BusKind::Ping => return self.on_ping(msg.origin, msg.at, msg.seq, msg.lease),
                    BusKind::Ack => return self.ack(msg.seq, msg.origin),
                    _ => {}
                }
                if msg.origin == self.inner.origin {
                    // Our own subscriber received it: one receiver.
                    if msg.seq > 0 {
                        self.ack(msg.seq, msg.origin);
                    }
                    return;
                }
                self.inner.counters.bus_message();
                match msg.kind {
                    BusKind::Tags | BusKind::Keys => {
                        for item in &msg.items {
                            marks.raise(tag_hash(item), msg.at);
                        }
                    }
                    BusKind::Written => {
                        let now = self.inner.clock.stamp();
                        for item in &msg.items {
                            marks.raise_written(tag_hash(item), msg.at, now);
                        }
                    }
                    // Loads in flight here that began before the clear are
                    // neither stored nor served (an earlier build's `at`,
                    // in milliseconds, reads as 1970: it rules nothing out
                    // beyond dropping what is held).
                    BusKind::Clear => self.clear_local_at(msg.at),
                    BusKind::Ping | BusKind::Ack => {}
                }
                tracing::debug!(cache = %self.inner.name, kind = ?msg.kind, items = msg.items.len(), "invalidation received");
                if msg.seq > 0 {
                    self.acknowledge(msg.origin, msg.seq);
                }
            }
        }
    }

    pub(super) fn message(
        &self,
        kind: BusKind,
        items: Vec<String>,
        at: u64,
        seq: u64,
    ) -> Option<(Arc<dyn Bus>, Vec<u8>)> {
        let bus = self.inner.bus.clone()?;
        let msg = BusMessage {
            origin: self.inner.origin,
            kind,
            items,
            at,
            seq,
            lease: 0,
        };
        serde_json::to_vec(&msg).ok().map(|b| (bus, b))
    }

    fn ack(&self, seq: u64, from: u64) {
        if let Some(c) = &self.inner.confirm {
            c.ack(seq, from);
        }
    }

    /// One try at publishing; whether it went out.
    pub(super) async fn publish_now(&self, kind: BusKind, items: Vec<String>, at: u64) -> bool {
        let Some((bus, bytes)) = self.message(kind, items, at, 0) else {
            return true;
        };
        self.send(bus, bytes).await
    }

    /// Publishes encoded message `bytes` on this cache's channel, within a
    /// second; whether it went out (a failure is logged).
    pub(super) async fn send(&self, bus: Arc<dyn Bus>, bytes: Vec<u8>) -> bool {
        let channel = self.channel();
        let published = crate::spawn::within(Duration::from_secs(1), async move {
            bus.publish(&channel, bytes).await
        });
        match published.await {
            Some(Ok(())) => true,
            Some(Err(e)) => {
                tracing::warn!(cache = %self.inner.name, error = %e, "could not publish an invalidation");
                false
            }
            None => {
                tracing::warn!(cache = %self.inner.name, "publishing an invalidation timed out");
                false
            }
        }
    }

    /// Tells other processes that `urn` was (re)written with an entry
    /// created at `created`, without waiting: their copies created before it
    /// are dropped (the watermark sits just below the new entry).
    pub(crate) fn announce_write(&self, urn: &str, created: u64) {
        if self.inner.bus.is_none() {
            return;
        }
        let at = created.saturating_sub(1);
        let (c, urn) = (self.clone(), urn.to_owned());
        crate::spawn::spawn_io(
            async move { c.deliver_message(BusKind::Written, vec![urn], at).await },
        );
    }
}

/// The invalidation bus and the invalidations owed, as
/// [`Cache::bus_stats`] reports them.
///
/// # Examples
///
/// ```
/// use cachewright::{Cache, LayerConfig};
/// use cachewright::backends::MemoryBackend;
///
/// // A memory layer brings no bus.
/// let cache = Cache::builder().layer(LayerConfig::new(MemoryBackend::new())).build();
/// let s = cache.bus_stats();
/// assert!(!s.configured && !s.connected);
/// assert_eq!((s.connect_failures, s.lost), (0, 0));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct BusStats {
    /// Whether the cache has a bus at all.
    pub configured: bool,
    /// Whether it is subscribed now (in-process entries are trusted).
    pub connected: bool,
    /// Failed attempts to connect since the cache was built.
    pub connect_failures: u64,
    /// Why the last attempt failed, while it is not connected (the
    /// server's error code, such as `NOPERM`, or the kind of failure).
    pub last_error: Option<String>,
    /// Watermark writes, bus messages and entry writes that failed to go
    /// out (each is retried until it does).
    pub delivery_failures: u64,
    /// Invalidations and entry writes owed now (retried in the background,
    /// entries before the bus messages that announce them).
    pub undelivered: usize,
    /// Invalidations and entry writes given up on because too many were
    /// owed (entry writes: 100 000 keys or 64 MiB).
    pub lost: u64,
    /// Whether invalidations wait for every subscriber's acknowledgement
    /// (see [`CacheBuilder::invalidation_lease`](crate::CacheBuilder::invalidation_lease)).
    pub confirmed_delivery: bool,
    /// Invalidations every subscriber acknowledged.
    pub confirmed: u64,
    /// Invalidations some subscriber did not acknowledge within the lease
    /// (it stopped trusting its in-process layer instead).
    pub unconfirmed: u64,
    /// Other processes' caches heard on the bus whose lease may still run
    /// (with confirmed delivery): those an invalidation now waits for.
    pub members: usize,
}

impl Cache {
    /// The state of the invalidation bus and of the invalidations not yet
    /// delivered to the first remote layer or the bus.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = cachewright::Cache::builder().build();
    /// let s = cache.bus_stats();
    /// assert!(!s.configured, "no remote layer, no bus");
    /// assert_eq!(s.undelivered, 0);
    /// ```
    pub fn bus_stats(&self) -> BusStats {
        let o = &self.inner.outbox;
        BusStats {
            configured: self.inner.bus.is_some(),
            connected: self.inner.bus.is_some() && self.inner.marks.trusted(),
            connect_failures: o.bus_unreachable.load(Relaxed),
            last_error: o
                .bus_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
            delivery_failures: o.failures.load(Relaxed),
            undelivered: o.undelivered(),
            lost: o.lost.load(Relaxed),
            confirmed_delivery: self.inner.confirm.is_some(),
            confirmed: self
                .inner
                .confirm
                .as_ref()
                .map_or(0, |c| c.confirmed.load(Relaxed)),
            unconfirmed: self
                .inner
                .confirm
                .as_ref()
                .map_or(0, |c| c.unconfirmed.load(Relaxed)),
            members: self
                .inner
                .confirm
                .as_ref()
                .map_or(0, |c| c.live_members(crate::clock::real_ms()).len()),
        }
    }
}
