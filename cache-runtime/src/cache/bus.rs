//! The invalidation bus: what travels on it, listening, and publishing.

use super::*;

/// What travels on the invalidation bus: never values, only what to drop.
#[derive(serde::Serialize, serde::Deserialize, Debug)]
pub(super) struct BusMessage {
    origin: u64,
    kind: BusKind,
    #[serde(default)]
    items: Vec<String>,
    at: u64,
}

#[derive(serde::Serialize, serde::Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
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
            Cache { inner }.on_bus(event);
            true
        });
        bus.subscribe(&self.channel(), sink);
    }

    pub(super) fn on_bus(&self, event: BusEvent) {
        let marks = &self.inner.marks;
        match event {
            BusEvent::Connected => {
                // Whatever was invalidated while we were not listening is
                // unknown: nothing held from before is trusted.
                marks.reset(self.inner.clock.now_ms());
                self.clear_local();
                marks.set_trusted(true);
                tracing::info!(cache = %self.inner.name, "invalidation bus connected");
            }
            BusEvent::Disconnected => {
                marks.set_trusted(false);
                self.clear_local();
            }
            BusEvent::Message(bytes) => {
                let Ok(msg) = serde_json::from_slice::<BusMessage>(&bytes) else {
                    tracing::warn!(cache = %self.inner.name, "unreadable message on the invalidation bus; ignored");
                    return;
                };
                if msg.origin == self.inner.origin {
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
                        let now = self.inner.clock.precise_ms();
                        for item in &msg.items {
                            marks.raise_written(tag_hash(item), msg.at, now);
                        }
                    }
                    BusKind::Clear => self.clear_local(),
                }
                tracing::debug!(cache = %self.inner.name, kind = ?msg.kind, items = msg.items.len(), "invalidation received");
            }
        }
    }

    pub(super) fn message(
        &self,
        kind: BusKind,
        items: Vec<String>,
        at: u64,
    ) -> Option<(Arc<dyn Bus>, Vec<u8>)> {
        let bus = self.inner.bus.clone()?;
        let msg = BusMessage {
            origin: self.inner.origin,
            kind,
            items,
            at,
        };
        serde_json::to_vec(&msg).ok().map(|b| (bus, b))
    }

    pub(super) async fn publish(&self, kind: BusKind, items: Vec<String>, at: u64) {
        let Some((bus, bytes)) = self.message(kind, items, at) else {
            return;
        };
        let channel = self.channel();
        let published = crate::spawn::within(Duration::from_secs(1), async move {
            bus.publish(&channel, bytes).await
        });
        match published.await {
            Some(Ok(())) => {}
            Some(Err(e)) => tracing::warn!(error = %e, "could not publish an invalidation"),
            None => tracing::warn!("publishing an invalidation timed out"),
        }
    }

    /// Tells other processes that `urn` was (re)written with an entry
    /// created at `created`, without waiting: their copies created before it
    /// are dropped (the watermark sits just below the new entry).
    pub(crate) fn announce_write(&self, urn: &str, created: u64) {
        let at = created.saturating_sub(1);
        let Some((bus, bytes)) = self.message(BusKind::Written, vec![urn.to_owned()], at) else {
            return;
        };
        let channel = self.channel();
        if let Some(h) = cachewright_backends::io::handle() {
            h.spawn(async move {
                let _ = tokio::time::timeout(Duration::from_secs(1), bus.publish(&channel, bytes))
                    .await;
            });
        }
    }
}
