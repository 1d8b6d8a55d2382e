//! Confirmed invalidations: an invalidation returns once every process
//! subscribed to the bus has applied it, or once those that did not can no
//! longer be serving their in-process copies.
//!
//! Over a bus that [`confirms`](cachewright_backends::Bus::confirms) (Redis
//! pub/sub: `PUBLISH` says how many subscribers received a message, and one
//! subscription delivers all its channels in the order the server accepted
//! the messages), each cache subscribes, on one connection, to the
//! namespace's channel, its ping channel and its own channel:
//!
//! - **A lease.** Every cache pings the ping channel every quarter of the
//!   lease. Its in-process layer is trusted only until a lease after the
//!   sending of its last ping that came back. A ping that comes back after
//!   an invalidation was published comes back after it (one subscription,
//!   one order), so the invalidation was applied first; a cache that stops
//!   hearing the bus (stalled, partitioned, its subscription killed
//!   unnoticed) stops trusting its in-process layer at most a lease after it
//!   last heard itself.
//! - **Members.** Every cache hears the others' pings: those heard within a
//!   lease are the members an invalidation must reach.
//! - **Acknowledgements.** A message that asks for one (`seq` > 0) is
//!   answered, once applied, on the sender's own channel. The sender waits
//!   until as many answers came as `PUBLISH` counted receivers (its own
//!   subscriber answers by receiving its own message) and every member it
//!   knew answered, or until those that did not answer can no longer trust
//!   their in-process layer: a lease after it last heard them, and a lease
//!   after `PUBLISH` returned for receivers it did not know. When publishing
//!   fails (the bus is down for everyone), it waits for the members' leases
//!   alone: once per outage, since later invalidations find them run out.

use super::bus::BusMessage;
use super::*;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Added to the lease before a sender stops waiting: the coarse clock's
/// tick and the time a ping takes to be sent once stamped.
const MARGIN: Duration = Duration::from_millis(50);

/// The shortest lease (pings go out every quarter of it).
pub(super) const MIN_LEASE: Duration = Duration::from_millis(200);

/// The default lease: how long a process that stopped answering may serve
/// its in-process copies, and the longest an invalidation waits for it (see
/// [`CacheBuilder::invalidation_lease`](crate::CacheBuilder::invalidation_lease)).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// assert_eq!(cachewright::DEFAULT_INVALIDATION_LEASE, Duration::from_secs(2));
/// ```
pub const DEFAULT_INVALIDATION_LEASE: Duration = Duration::from_secs(2);

/// A cache's side of confirmed invalidations.
pub(super) struct Confirm {
    /// How long a ping that came back keeps the in-process layer trusted.
    pub(super) lease: Duration,
    next: AtomicU64,
    /// Messages waiting for acknowledgements: seq -> who answered so far.
    waiting: Mutex<HashMap<u64, tokio::sync::watch::Sender<Acked>>>,
    /// Other caches on the bus: origin -> when their last ping was heard
    /// (real monotonic ms).
    members: Mutex<HashMap<u64, u64>>,
    /// Invalidations every receiver acknowledged.
    pub(super) confirmed: AtomicU64,
    /// Invalidations some receiver did not acknowledge within its lease.
    pub(super) unconfirmed: AtomicU64,
}

/// The acknowledgements of one message.
#[derive(Default, Clone)]
struct Acked {
    count: u64,
    from: Vec<u64>,
}

impl Confirm {
    pub(super) fn new(lease: Duration) -> Self {
        Confirm {
            lease: lease.max(MIN_LEASE),
            next: AtomicU64::new(1),
            waiting: Mutex::default(),
            members: Mutex::default(),
            confirmed: AtomicU64::new(0),
            unconfirmed: AtomicU64::new(0),
        }
    }

    fn waiting(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, tokio::sync::watch::Sender<Acked>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn members(&self) -> std::sync::MutexGuard<'_, HashMap<u64, u64>> {
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A sequence number for a message, and where its acknowledgements
    /// are counted.
    fn register(&self) -> (u64, tokio::sync::watch::Receiver<Acked>) {
        let seq = self.next.fetch_add(1, Relaxed);
        let (tx, rx) = tokio::sync::watch::channel(Acked::default());
        self.waiting().insert(seq, tx);
        (seq, rx)
    }

    /// `from` acknowledged `seq` (ignored when nobody waits for it).
    pub(super) fn ack(&self, seq: u64, from: u64) {
        if let Some(tx) = self.waiting().get(&seq) {
            tx.send_modify(|a| {
                a.count += 1;
                a.from.push(from);
            });
        }
    }

    fn forget(&self, seq: u64) {
        self.waiting().remove(&seq);
    }

    /// Another cache's ping was heard now.
    pub(super) fn heard(&self, origin: u64) {
        let now = crate::clock::real_ms();
        let forget_before = now.saturating_sub(lease_ms(self.lease).saturating_mul(4));
        let mut m = self.members();
        m.insert(origin, now);
        if m.len() > 64 {
            m.retain(|_, &mut at| at >= forget_before);
        }
    }

    /// The members whose lease may still run at `now`, each with the
    /// moment it surely ran out (heard + lease + margin).
    fn live_members(&self, now: u64) -> Vec<(u64, u64)> {
        let grace = lease_ms(self.lease).saturating_add(lease_ms(MARGIN));
        self.members()
            .iter()
            .map(|(&o, &heard)| (o, heard.saturating_add(grace)))
            .filter(|&(_, until)| until > now)
            .collect()
    }

    /// How often pings go out.
    pub(super) fn ping_every(&self) -> Duration {
        self.lease / 4
    }
}

/// The lease in whole milliseconds.
fn lease_ms(lease: Duration) -> u64 {
    crate::clock::saturating_ms(lease)
}

impl Cache {
    /// This cache's own channel: its pings, and the acknowledgements of
    /// what it published.
    pub(super) fn own_channel(&self) -> String {
        Self::member_channel(&self.channel(), self.inner.origin)
    }

    pub(super) fn member_channel(channel: &str, origin: u64) -> String {
        format!("{channel}:m:{origin:016x}")
    }

    /// The namespace's ping channel, where every cache hears every other.
    pub(super) fn ping_channel(&self) -> String {
        format!("{}:ping", self.channel())
    }

    /// Sends this cache a ping; when it comes back, the lease is extended
    /// from the moment it was sent.
    pub(super) fn ping(&self) {
        let Some(bus) = self.inner.bus.clone() else {
            return;
        };
        let msg = BusMessage::control(self.inner.origin, BusKind::Ping, crate::clock::real_ms(), 0);
        let Ok(bytes) = serde_json::to_vec(&msg) else {
            return;
        };
        let channel = self.ping_channel();
        crate::spawn::spawn_on_io(async move {
            if let Err(e) = bus.publish(&channel, bytes).await {
                tracing::debug!(error = %e, "ping on the invalidation bus failed");
            }
        });
    }

    /// Pings every quarter lease while the cache lives.
    pub(super) fn start_pings(&self) {
        let Some(confirm) = &self.inner.confirm else {
            return;
        };
        let every = confirm.ping_every();
        let weak = Arc::downgrade(&self.inner);
        crate::spawn::spawn_on_io(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(inner) = weak.upgrade() else { return };
                Cache { inner }.ping();
            }
        });
    }

    /// A ping: one of this cache's coming back (the lease runs from its
    /// sending), or another cache's (a member heard).
    pub(super) fn on_ping(&self, from: u64, sent_ms: u64) {
        let Some(confirm) = &self.inner.confirm else {
            return;
        };
        if from == self.inner.origin {
            let until = sent_ms.saturating_add(lease_ms(confirm.lease));
            self.inner.marks.extend_lease(until);
        } else {
            confirm.heard(from);
        }
    }

    /// Tells `to` that its message `seq` was applied here.
    pub(super) fn acknowledge(&self, to: u64, seq: u64) {
        let Some(bus) = self.inner.bus.clone() else {
            return;
        };
        let msg = BusMessage::control(self.inner.origin, BusKind::Ack, 0, seq);
        let Ok(bytes) = serde_json::to_vec(&msg) else {
            return;
        };
        let channel = Self::member_channel(&self.channel(), to);
        crate::spawn::spawn_on_io(async move {
            if let Err(e) = bus.publish(&channel, bytes).await {
                tracing::debug!(error = %e, "acknowledging an invalidation failed");
            }
        });
    }

    /// Publishes an invalidation and waits until every subscriber applied
    /// it, or until those that did not can no longer trust their
    /// in-process copies (see the module's documentation). One that cannot
    /// be published is owed and retried.
    pub(super) async fn publish_confirmed(&self, kind: BusKind, items: Vec<String>, at: Stamp) {
        let Some(confirm) = &self.inner.confirm else {
            return self.deliver_message(kind, items, at).await;
        };
        let (seq, acks) = confirm.register();
        let Some((bus, bytes)) = self.message(kind, items.clone(), at, seq) else {
            confirm.forget(seq);
            return;
        };
        let channel = self.channel();
        let published = crate::spawn::within(Duration::from_secs(1), async move {
            bus.publish_counted(&channel, bytes).await
        })
        .await;
        let receivers = match published {
            Some(Ok(Some(n))) => Some(n),
            Some(Ok(None)) => {
                // Sent; this bus cannot count its receivers.
                confirm.forget(seq);
                return;
            }
            Some(Err(e)) => {
                tracing::warn!(cache = %self.inner.name, error = %e, "could not publish an invalidation");
                None
            }
            None => {
                tracing::warn!(cache = %self.inner.name, "publishing an invalidation timed out");
                None
            }
        };
        if receivers.is_none() {
            confirm.forget(seq);
            self.owe_message(kind, items.clone(), at);
        }
        let now = crate::clock::real_ms();
        let members: Vec<(u64, u64)> = confirm
            .live_members(now)
            .into_iter()
            .filter(|&(o, _)| o != self.inner.origin)
            .collect();
        let unknown_until = now
            .saturating_add(lease_ms(confirm.lease))
            .saturating_add(lease_ms(MARGIN));
        // On cachewright's runtime, whose timers are real: a paused test
        // clock must not cut the wait short.
        let wait = wait_for_acks(acks, receivers, members, unknown_until);
        let all = match cachewright_backends::io::handle() {
            Some(h) => h.spawn(wait).await.unwrap_or(false),
            None => {
                let limit = confirm.lease.saturating_add(MARGIN.saturating_mul(2));
                crate::spawn::within(limit, wait).await.unwrap_or(false)
            }
        };
        confirm.forget(seq);
        if receivers.is_none() {
            return; // owed: neither confirmed nor unconfirmed yet
        }
        if all {
            confirm.confirmed.fetch_add(1, Relaxed);
        } else {
            let n = confirm.unconfirmed.fetch_add(1, Relaxed) + 1;
            if n == 1 || n % 100 == 0 {
                tracing::warn!(
                    cache = %self.inner.name,
                    unconfirmed = n,
                    lease_ms = lease_ms(confirm.lease),
                    "a process did not acknowledge an invalidation within its lease; it no longer trusts its in-process layer"
                );
            }
        }
    }
}

/// Waits until `receivers` acknowledgements came (when known) and every
/// member answered, each for as long as it may still trust its in-process
/// layer: a member until its deadline, receivers not known as members until
/// `unknown_until`. Whether everyone answered.
async fn wait_for_acks(
    mut acks: tokio::sync::watch::Receiver<Acked>,
    receivers: Option<u64>,
    members: Vec<(u64, u64)>,
    unknown_until: u64,
) -> bool {
    loop {
        let (count_met, missing) = {
            let a = acks.borrow_and_update();
            let count_met = receivers.is_none_or(|n| a.count >= n);
            let missing = members
                .iter()
                .filter(|(o, _)| !a.from.contains(o))
                .map(|&(_, until)| until)
                .max();
            (count_met, missing)
        };
        if receivers.is_some() && count_met && missing.is_none() {
            return true;
        }
        let mut until = missing.unwrap_or(0);
        if !count_met {
            until = until.max(unknown_until);
        }
        let now = crate::clock::real_ms();
        if now >= until {
            return false;
        }
        let left = Duration::from_millis(until - now);
        // A change, or the time to look again; a closed channel means the
        // message was forgotten: stop.
        if let Ok(Err(_)) = tokio::time::timeout(left, acks.changed()).await {
            return false;
        }
    }
}
