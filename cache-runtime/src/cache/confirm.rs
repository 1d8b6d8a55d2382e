//! Confirmed invalidations: an invalidation returns once every cache on the
//! bus has applied it, or once those that did not can no longer be serving
//! their in-process copies.
//!
//! Over a bus that [`confirms`](cachewright_backends::Bus::confirms) (Redis
//! pub/sub: one subscription delivers all its channels in the order the
//! server accepted the messages), each cache subscribes, on one connection,
//! to the namespace's channel, its ping channel and its own channel:
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
//!   lease are the members an invalidation must reach. Subscribers that do
//!   not ping (a `redis-cli SUBSCRIBE`, a cache with confirmation off) are
//!   not waited for.
//! - **Acknowledgements.** A message that asks for one (`seq` > 0) is
//!   answered, once applied, on the sender's own channel. The sender waits
//!   until its own message came back to it (then every ping the server took
//!   before it has been heard: the members are known) and every member
//!   answered, subscribed anew, or can no longer trust its in-process layer
//!   (a lease after it was last heard); in any case no longer than a lease
//!   after publishing. When publishing fails (the bus is down for
//!   everyone), it waits for the members' leases alone: once per outage,
//!   since later invalidations find them run out.

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
    /// (real monotonic ms), their lease (ms) and the number of their
    /// subscription (the highest heard), as their pings say.
    members: Mutex<HashMap<u64, (u64, u64, u64)>>,
    /// This cache's subscriptions so far (its pings carry the number).
    pub(super) subscriptions: AtomicU64,
    /// When the first subscription began (real monotonic ms; 0 before):
    /// until it is a lease old, a member stalled since before it may be
    /// unknown here. (After a reconnect, the members heard before are
    /// still known.)
    pub(super) subscribed_at: AtomicU64,
    /// Invalidations every receiver acknowledged.
    pub(super) confirmed: AtomicU64,
    /// Invalidations some receiver did not acknowledge within its lease.
    pub(super) unconfirmed: AtomicU64,
}

/// Who acknowledged one message (this cache itself when its own
/// subscription delivered it back).
type Acked = Vec<u64>;

impl Confirm {
    pub(super) fn new(lease: Duration) -> Self {
        Confirm {
            lease: lease.max(MIN_LEASE),
            next: AtomicU64::new(1),
            waiting: Mutex::default(),
            members: Mutex::default(),
            subscriptions: AtomicU64::new(0),
            subscribed_at: AtomicU64::new(0),
            confirmed: AtomicU64::new(0),
            unconfirmed: AtomicU64::new(0),
        }
    }

    fn waiting(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<u64, tokio::sync::watch::Sender<Acked>>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn members(&self) -> std::sync::MutexGuard<'_, HashMap<u64, (u64, u64, u64)>> {
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
            tx.send_modify(|a| a.push(from));
        }
    }

    fn forget(&self, seq: u64) {
        self.waiting().remove(&seq);
    }

    /// Another cache's ping was heard now: its lease is `lease_ms_of`, it
    /// was sent from its subscription number `subscription`.
    ///
    /// A member first heard from a newer subscription while a message is
    /// waited for has answered it (see `wait_for_acks`): the waiters are
    /// woken to look.
    pub(super) fn heard(&self, origin: u64, lease_ms_of: u64, subscription: u64) {
        let now = crate::clock::real_ms();
        let renewed = {
            let mut m = self.members();
            let e = m.entry(origin).or_insert((now, lease_ms_of, subscription));
            let renewed = subscription > e.2;
            *e = (now, lease_ms_of, e.2.max(subscription));
            if m.len() > 64 {
                m.retain(|_, &mut (at, lease, _)| {
                    at.saturating_add(lease.saturating_mul(4)) >= now
                });
            }
            renewed
        };
        if renewed {
            for tx in self.waiting().values() {
                tx.send_modify(|_| {});
            }
        }
    }

    /// The subscription number last heard from `origin`.
    fn subscription_of(&self, origin: u64) -> u64 {
        self.members().get(&origin).map_or(0, |m| m.2)
    }

    /// The members whose lease may still run at `now`, each with the
    /// moment it surely ran out (heard + its lease + margin) and its
    /// subscription number.
    pub(super) fn live_members(&self, now: u64) -> Vec<(u64, u64, u64)> {
        let margin = lease_ms(MARGIN);
        self.members()
            .iter()
            .map(|(&o, &(heard, lease, sub))| {
                (o, heard.saturating_add(lease).saturating_add(margin), sub)
            })
            .filter(|&(_, until, _)| until > now)
            .collect()
    }

    /// The longest lease on the bus as far as known: this cache's and its
    /// members'.
    pub(super) fn longest_lease_ms(&self) -> u64 {
        self.members()
            .values()
            .map(|&(_, lease, _)| lease)
            .fold(lease_ms(self.lease), u64::max)
    }

    /// How often pings go out.
    pub(super) fn ping_every(&self) -> Duration {
        self.lease / 4
    }
}

/// Removes a message's waiting entry when dropped.
struct Registered<'a>(&'a Confirm, u64);

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        self.0.forget(self.1);
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
        let subscription = self
            .inner
            .confirm
            .as_ref()
            .map_or(0, |c| c.subscriptions.load(Relaxed));
        let mut msg = BusMessage::control(
            self.inner.origin,
            BusKind::Ping,
            crate::clock::real_ms(),
            subscription,
        );
        msg.lease = self.inner.confirm.as_ref().map_or(0, |c| lease_ms(c.lease));
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
                if inner.closed.load(Relaxed) {
                    return;
                }
                Cache { inner }.ping();
            }
        });
    }

    /// A ping: one of this cache's coming back (the lease runs from its
    /// sending), or another cache's (a member heard).
    pub(super) fn on_ping(&self, from: u64, sent_ms: u64, subscription: u64, lease: u64) {
        let Some(confirm) = &self.inner.confirm else {
            return;
        };
        if from != self.inner.origin {
            // A ping from a build that did not say its lease: the default.
            let lease = if lease == 0 {
                lease_ms(DEFAULT_INVALIDATION_LEASE)
            } else {
                lease
            };
            return confirm.heard(from, lease, subscription);
        }
        // Only a ping sent from the current subscription vouches for it.
        if subscription == confirm.subscriptions.load(Relaxed) {
            let until = sent_ms.saturating_add(lease_ms(confirm.lease));
            self.inner.marks.extend_lease(until);
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
            // A connection broken under it fails once; the sender would
            // wait out a lease for an answer that never comes.
            let mut pause = Duration::from_millis(10);
            for attempt in 1..=4 {
                match bus.publish(&channel, bytes.clone()).await {
                    Ok(()) => return,
                    Err(e) if attempt == 4 => {
                        tracing::debug!(error = %e, "acknowledging an invalidation failed");
                    }
                    Err(_) => {
                        tokio::time::sleep(pause).await;
                        pause *= 4;
                    }
                }
            }
        });
    }

    /// Publishes an invalidation on the bus and, when the bus confirms
    /// deliveries, waits until every member applied it, or until those that
    /// did not can no longer trust their in-process copies (see the
    /// module's documentation). One that cannot go now is owed and retried
    /// in the background until it does (see `outbox`).
    pub(super) async fn publish(&self, kind: BusKind, items: Vec<String>, at: Stamp) {
        let Some(confirm) = &self.inner.confirm else {
            return self.deliver_message(kind, items, at).await;
        };
        let (seq, acks) = confirm.register();
        // Forgotten however this ends, a cancelled caller included.
        let _registered = Registered(confirm, seq);
        let Some((bus, bytes)) = self.message(kind, items.clone(), at, seq) else {
            return;
        };
        let published = self.send(bus, bytes).await;
        if !published {
            self.owe_message(kind, items, at);
        }
        // On cachewright's runtime, whose timers are real: a paused test
        // clock must not cut the wait short.
        let c = self.clone();
        let wait = async move { c.wait_for_acks(acks, published).await };
        let all = match cachewright_backends::io::handle() {
            Some(h) => h.spawn(wait).await.unwrap_or(false),
            None => {
                let limit = Duration::from_millis(confirm.longest_lease_ms())
                    .saturating_add(MARGIN.saturating_mul(2));
                crate::spawn::within(limit, wait).await.unwrap_or(false)
            }
        };
        if !published {
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

    /// Waits for the answers to one message; whether every member answered.
    ///
    /// Published: once the message came back through this cache's own
    /// subscription, every ping the server took before it has been heard
    /// here, so the members then known are all that may have been trusting
    /// their in-process layer without it (a member whose first ping came
    /// later applies the message before its lease starts). Each is waited
    /// for until it answers, subscribes anew, or its lease surely ran out
    /// (a lease and a margin after it was last heard). Until this cache's
    /// own subscription is a lease old, a member stalled since before it
    /// began may be unknown here, so the wait lasts at least until then
    /// (once after startup or a reconnect). Whatever happens, the wait ends
    /// a lease and a margin after publishing: by then every cache that has
    /// not applied the message has stopped trusting its in-process layer
    /// (its last ping that came back was sent before the message reached
    /// the server).
    ///
    /// Not published (the bus is down): the members known are waited for
    /// until their leases ran out, which later invalidations of the same
    /// outage find already done.
    async fn wait_for_acks(
        &self,
        mut acks: tokio::sync::watch::Receiver<Acked>,
        published: bool,
    ) -> bool {
        let Some(confirm) = &self.inner.confirm else {
            return true;
        };
        let own = self.inner.origin;
        let members = |now| -> Vec<(u64, u64, u64)> {
            confirm
                .live_members(now)
                .into_iter()
                .filter(|&(o, _, _)| o != own)
                .collect()
        };
        let start = crate::clock::real_ms();
        let longest = confirm.longest_lease_ms();
        let grace = longest.saturating_add(lease_ms(MARGIN));
        let full = start.saturating_add(grace);
        // Members are all known once the first subscription is a lease old
        // (every member with a lease has pinged through it since).
        let complete_at = match confirm.subscribed_at.load(Relaxed) {
            0 => u64::MAX,
            at => at.saturating_add(grace),
        };
        let mut known = (!published).then(|| members(start));
        let until = match &known {
            Some(m) => {
                // Its last ping that came back may be one it sent after the
                // last one heard here: a ping interval (a quarter of the
                // longest lease) later.
                let heard = m
                    .iter()
                    .map(|&(_, u, _)| u.saturating_add(longest / 4))
                    .max()
                    .unwrap_or(start);
                if complete_at > start {
                    heard.max(full)
                } else {
                    heard
                }
            }
            None => full,
        };
        loop {
            let now = crate::clock::real_ms();
            let answered = acks.borrow_and_update().clone();
            if known.is_none() && answered.contains(&own) {
                known = Some(members(now));
            }
            let mut next = until;
            if let Some(m) = &known {
                // Answered: acknowledged, or (published) heard from a
                // subscription newer than the one it had when this
                // message came back here. Such a ping was taken after the
                // message, and a cache's lease is earned anew through each
                // subscription (dropped when it reconnects), so it applies
                // the message before it trusts its in-process layer again.
                let done = |o: u64, sub: u64| {
                    answered.contains(&o) || (published && confirm.subscription_of(o) > sub)
                };
                let silent = m.iter().filter(|&&(o, _, sub)| !done(o, sub));
                let everyone = silent.clone().next().is_none();
                let missing = silent
                    .filter(|&&(_, deadline, _)| deadline > now)
                    .map(|&(_, deadline, _)| deadline)
                    .max();
                match missing {
                    // Every member answered, or can no longer trust its
                    // in-process layer (then unconfirmed).
                    None if now >= complete_at => return published && everyone,
                    None => next = next.min(complete_at),
                    Some(d) => next = next.min(d),
                }
            }
            if now >= until {
                return false;
            }
            let left = Duration::from_millis(next.saturating_sub(now).max(1));
            // An answer, or the time to look again; a closed channel means
            // the message was forgotten: stop.
            if let Ok(Err(_)) = tokio::time::timeout(left, acks.changed()).await {
                return false;
            }
        }
    }
}
