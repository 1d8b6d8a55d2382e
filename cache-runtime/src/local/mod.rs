//! The in-process layer (L1): the bounded map, its eviction policy, and
//! [`Store::admit`], the one place an entry enters it.
//!
//! Why not a crate: L1 must be searched with a *borrowed* key (a tuple of
//! references to the arguments) and must let the caller inspect an entry
//! under the lock and clone only the value, so that a hit allocates nothing
//! and touches no reference count. `quick_cache` and `moka` hand out clones of
//! the whole stored value instead; `benches/hit_ratio.rs` compares their
//! hit ratios with this one's on the same traces.
//!
//! Shape: a power-of-two number of shards, each a reader-sharded lock
//! (`crossbeam_utils::sync::ShardedLock`: a reader locks only its thread's
//! sub-lock, so two threads reading one shard write no common line) around a
//! `hashbrown::HashTable` of slot indices and a slot vector. Reads take a
//! shard's read lock, except a use case's hot hits on a value that is plain
//! data, which each thread serves from its own copy (`front.rs`), checked
//! against per-stripe [`Versions`] without a lock. The policy is W-TinyLFU (Caffeine's) built from
//! clocks rather than lists, so a hit moves nothing: new entries wait in a
//! small window (1 % of the shard, oldest first); leaving it, an entry
//! enters the main region only if a frequency sketch (`sketch.rs`) rates it
//! above the entry the main region would give up, which a clock hand picks
//! (each entry has up to three second chances, earned by hits). Dead
//! entries (expired, invalidated) go first wherever they are met. A loop
//! slightly larger than the cache keeps most of its keys instead of none,
//! and one-off scans pass through the window without displacing the main
//! region. Capacity (in entries, and optionally in bytes of entry weight)
//! is split exactly across shards, so the store never holds more.

use crossbeam_utils::sync::{ShardedLock as RwLock, ShardedLockReadGuard as RwLockReadGuard};
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::Ordering;

use crate::clock::{saturating_ms, Clock, Millis, Stamp};
use crate::entry::{Entry, Held};
use crate::key::Key;
use crate::watermark::Watermarks;

mod climb;
pub(crate) mod front;
mod shard;
mod sketch;

use climb::Climb;
use shard::{Idx, Shard, MAX_HITS, MAX_SHARD, MAX_SHARDS};

#[repr(align(128))]
struct Padded<T>(T);

/// Version counters, one per stripe of the hash space, bumped (under the
/// shard's write lock) whenever an entry leaves its shard, is replaced, or
/// runs out of the second chances it held when a per-thread front copied
/// it. A front's copy stands while its stripe's version is unchanged: the
/// entry is then still there, unchanged, with full chances. Read without a
/// lock, so a front's hit takes none.
#[derive(Clone)]
pub(crate) struct Versions(std::sync::Arc<[std::sync::atomic::AtomicU64]>);

impl Versions {
    /// Enough stripes that one eviction rarely touches a hot entry's:
    /// an eighth of the capacity, between 16 and 8192.
    fn new(capacity: usize) -> Self {
        let n = (capacity / 8).clamp(16, 8192).next_power_of_two();
        Versions(
            (0..n)
                .map(|_| std::sync::atomic::AtomicU64::new(0))
                .collect(),
        )
    }

    #[inline]
    pub(super) fn stripe(&self, hash: u64) -> u16 {
        // Bits neither the shard (40 up), hashbrown's buckets (low) nor
        // its control bytes (top seven) use alone.
        ((hash >> 24) as usize & (self.0.len() - 1)) as u16
    }

    pub(super) fn bump(&self, stripe: u16) {
        self.0[usize::from(stripe)].fetch_add(1, Ordering::Release);
    }

    #[inline]
    fn get(&self, stripe: u16) -> u64 {
        self.0[usize::from(stripe)].load(Ordering::Acquire)
    }
}

/// Where a saturated entry stood when it was read: its stripe and the
/// stripe's version then. See [`Store::unchanged`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ticket {
    stripe: u16,
    version: u64,
}

/// What an entry costs the store beyond its key's and value's own heap
/// bytes, counted in every weight: its slot (held entry, key, policy
/// state) and its share of the index and sketch, for a small key and value.
pub(crate) const ENTRY_OVERHEAD: u64 = 128;

/// A byte budget shared by several stores (a cache's, across its use
/// cases): each store adds what it holds; whoever finds it exceeded asks
/// the largest holder to give bytes back (see `Cache::enforce_budget`).
#[derive(Debug)]
pub(crate) struct Budget {
    pub(crate) max: u64,
    used: std::sync::atomic::AtomicI64,
    /// Held by the one thread bringing the total back within the budget
    /// (others skip: each would free the same excess again).
    pub(crate) freeing: std::sync::Mutex<()>,
}

impl Budget {
    pub(crate) fn new(max: u64) -> Self {
        Budget {
            max,
            used: std::sync::atomic::AtomicI64::new(0),
            freeing: std::sync::Mutex::new(()),
        }
    }
    fn add(&self, delta: i64) {
        if delta != 0 {
            self.used.fetch_add(delta, Ordering::Relaxed);
        }
    }
    /// The bytes held over the budget (0 within it).
    pub(crate) fn excess(&self) -> u64 {
        u64::try_from(self.used.load(Ordering::Relaxed))
            .unwrap_or(0)
            .saturating_sub(self.max)
    }
}

/// How [`Store::admit`] treats a live entry already under the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admit {
    /// The new entry replaces it.
    Replace,
    /// The new entry goes in only where no live, valid entry is.
    IfVacant,
    /// A fail-safe value served again for its throttle, whose fail-safe
    /// horizon ends at the given time; it replaces only an expired, invalid,
    /// older or same entry (a newer load's is kept).
    Throttled(Millis),
    /// A value read from a remote layer: it replaces an entry only if that
    /// one is invalid, older, or expired while it is not (a remote copy
    /// never takes the place of a newer one held here).
    FromRemote,
}

/// What [`Store::admit`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admitted {
    /// Stored; `evicted_live` live entries were evicted to make room.
    Stored { evicted_live: usize },
    /// Not stored: an invalidation already covers it (a future buffer), or
    /// the layer is not trusted (the bus is down).
    Refused,
    /// Not stored: a live entry holds the key ([`Admit::IfVacant`]).
    Occupied,
    /// Not kept: it weighs more than a shard's share of the byte bound.
    TooHeavy,
}

impl<K: Hash + Eq, V> Store<K, Held<V>> {
    /// The one place an entry enters process memory: its lifetime capped by
    /// `cap` (the local TTL), held with its tags' hashes as of the current
    /// watermark epoch, and stored unless already invalidated or untrusted.
    /// `since` is when this process got hold of the value (the start of its
    /// load, or of the read that found it): a value got before the bus last
    /// reconnected is refused, as an invalidation may have been missed
    /// while it loaded. `weight` counts against the byte bound.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn admit(
        &self,
        hash: u64,
        key: K,
        urn: &Key,
        mut entry: Entry<V>,
        weight: u64,
        since: Stamp,
        cap: Option<std::time::Duration>,
        marks: &Watermarks,
        clock: &Clock,
        how: Admit,
    ) -> Admitted {
        let now = clock.now_ms();
        let epoch = marks.epoch();
        if let Some(cap) = cap {
            let until = now.saturating_add(saturating_ms(cap));
            entry.fresh_until_ms = entry.fresh_until_ms.min(until);
            entry.stale_until_ms = entry.stale_until_ms.min(until);
        }
        let held = match how {
            Admit::Throttled(horizon) if entry.stale_until_ms <= entry.fresh_until_ms => {
                Held::throttled(entry, horizon, urn.as_str(), urn.entity(), epoch, since)
            }
            // A throttled value still servable stale after its throttle is
            // held as an ordinary entry: its fail-safe window ends where the
            // value's first one did.
            _ => Held::new(entry, urn.as_str(), urn.entity(), epoch, since),
        };
        if !held.admissible(marks) {
            return Admitted::Refused;
        }
        let live = |old: &Held<V>| !old.is_expired(now);
        let (put, _, evicted) = match how {
            Admit::Replace => self.insert(hash, key, held, weight, |old| old.is_expired(now)),
            Admit::IfVacant => self.insert_if_vacant(hash, key, held, weight, |old| {
                old.is_expired(now) || !old.valid(marks)
            }),
            Admit::FromRemote => {
                let (stamp, expired) = (held.stamp(), held.is_expired(now));
                self.insert_if_vacant(hash, key, held, weight, |old| {
                    !old.valid(marks) || old.stamp() < stamp || (old.is_expired(now) && !expired)
                })
            }
            // Over the entry it serves again (a stale one, after a failed
            // refresh) or an older one; never over a newer load's.
            Admit::Throttled(_) => {
                let stamp = held.stamp();
                self.insert_if_vacant(hash, key, held, weight, |old| {
                    old.is_expired(now) || !old.valid(marks) || old.stamp() <= stamp
                })
            }
        };
        match put {
            Put::Stored => Admitted::Stored {
                evicted_live: evicted.live(live),
            },
            Put::Kept => Admitted::Occupied,
            Put::TooHeavy => Admitted::TooHeavy,
        }
    }
}

/// What an insert did with its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Put {
    /// Stored.
    Stored,
    /// Not stored: the live entry under the key was kept.
    Kept,
    /// Not stored: it weighs more than the shard's share of the byte bound.
    TooHeavy,
}

/// What an insert pushed out, handed back so it is dropped after the lock.
pub(crate) struct Evicted<K, V>(Vec<(K, V)>);

impl<K, V> Evicted<K, V> {
    fn none() -> Self {
        Evicted(Vec::new())
    }
    /// How many of the evicted entries `live` says were still live.
    pub(crate) fn live(&self, live: impl Fn(&V) -> bool) -> usize {
        self.0.iter().filter(|(_, v)| live(v)).count()
    }
    #[cfg(test)]
    fn keys(self) -> Vec<K> {
        self.0.into_iter().map(|(k, _)| k).collect()
    }
}

type ShardLock<K, V> = Padded<RwLock<Shard<K, V>>>;

/// The in-process map: see the module's documentation.
pub(crate) struct Store<K, V> {
    shards: Box<[ShardLock<K, V>]>,
    hasher: foldhash::fast::RandomState,
    mask: usize,
    budget: Option<std::sync::Arc<Budget>>,
    /// Where the next [`give_back`](Store::give_back) starts.
    next_shard: std::sync::atomic::AtomicUsize,
    climb: Climb,
    versions: Versions,
}

impl<K, V> std::fmt::Debug for Store<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("shards", &self.shards.len())
            .finish_non_exhaustive()
    }
}

/// Below this many bytes a shard's share of a byte bound would be too
/// small to hold a few large values, so fewer shards are used.
const MIN_SHARD_BYTES: u64 = 256 * 1024;

impl<K: Hash + Eq, V> Store<K, V> {
    /// A store holding at most `capacity` entries (at least one) and, when
    /// `max_bytes` is given, at most that many bytes of entry weight.
    pub(crate) fn new(
        capacity: usize,
        max_bytes: Option<u64>,
        budget: Option<std::sync::Arc<Budget>>,
    ) -> Self {
        // At most MAX_SHARDS shards of MAX_SHARD entries (67 million), and
        // no more entries than the byte bound can hold (each weighs at
        // least ENTRY_OVERHEAD), so that a large capacity does not split a
        // small byte bound into shards too small for one value.
        let by_bytes = max_bytes.map_or(usize::MAX, |b| {
            usize::try_from(b / ENTRY_OVERHEAD).unwrap_or(usize::MAX)
        });
        let capacity = capacity.min(by_bytes).clamp(1, MAX_SHARDS * MAX_SHARD);
        // Enough shards to spread writers, few enough that each holds a
        // useful share of the capacity (and of the byte bound); more only
        // where a shard would outgrow its index.
        let mut wanted = (capacity / 64).clamp(1, 64);
        if let Some(b) = max_bytes {
            wanted = wanted.min(usize::try_from(b / MIN_SHARD_BYTES).unwrap_or(64).max(1));
        }
        let shards_n = ((wanted + 1).next_power_of_two() / 2)
            .max(capacity.div_ceil(MAX_SHARD).next_power_of_two())
            .clamp(1, MAX_SHARDS);
        let base = capacity / shards_n;
        let extra = capacity % shards_n;
        let bytes = max_bytes.unwrap_or(u64::MAX);
        let (bytes_base, bytes_extra) = (bytes / shards_n as u64, bytes % shards_n as u64);
        let versions = Versions::new(capacity);
        let shards = (0..shards_n)
            .map(|i| {
                let cap = (base + usize::from(i < extra)).max(1);
                let max_bytes = bytes_base + u64::from((i as u64) < bytes_extra);
                Padded(RwLock::new(Shard::new(cap, max_bytes, versions.clone())))
            })
            .collect::<Vec<_>>()
            .into_boxed_slice();
        Store {
            shards,
            hasher: foldhash::fast::RandomState::default(),
            mask: shards_n - 1,
            budget,
            next_shard: std::sync::atomic::AtomicUsize::new(0),
            climb: Climb::new(capacity),
            versions,
        }
    }

    /// Runs `f` on the shard under its write lock, telling the shared
    /// budget how the shard's bytes changed.
    fn change<R>(&self, shard: &RwLock<Shard<K, V>>, f: impl FnOnce(&mut Shard<K, V>) -> R) -> R {
        let mut shard = shard.write().unwrap_or_else(|e| e.into_inner());
        let before = shard.bytes;
        let r = f(&mut shard);
        if let Some(b) = &self.budget {
            b.add(shard.bytes as i64 - before as i64);
        }
        r
    }

    /// Evicts entries (the policy's victims, shard after shard) until
    /// `bytes` are freed or the store is empty; returns what was freed.
    /// For a shared budget another store exceeded.
    pub(crate) fn give_back(&self, bytes: u64, is_dead: impl Fn(&V) -> bool) -> u64 {
        let n = self.shards.len();
        let start = self.next_shard.fetch_add(1, Ordering::Relaxed);
        let mut freed = 0u64;
        for i in 0..n {
            if freed >= bytes {
                break;
            }
            let shard = &self.shards[(start + i) % n].0;
            let gone = self.change(shard, |s| {
                let mut gone = Evicted::none();
                while freed < bytes && !s.table.is_empty() {
                    let before = s.bytes;
                    let victim = match s.main_victim(&is_dead) {
                        Some(v) => Some(v),
                        None => s.oldest_in_window(Idx::MAX),
                    };
                    let Some(v) = victim else { break };
                    gone.0.extend(s.take(&self.hasher, v));
                    freed += before - s.bytes;
                }
                gone
            });
            drop(gone);
        }
        freed
    }

    #[inline]
    pub(crate) fn hash<Q: Hash + ?Sized>(&self, q: &Q) -> u64 {
        self.hasher.hash_one(q)
    }

    #[inline]
    fn shard(&self, hash: u64) -> &RwLock<Shard<K, V>> {
        // hashbrown uses the low bits for the bucket and the top seven for its
        // control bytes; shard on bits in between so neither is skewed.
        &self.shards[(hash >> 40) as usize & self.mask].0
    }

    #[inline]
    fn read(&self, hash: u64) -> RwLockReadGuard<'_, Shard<K, V>> {
        // A panic under a write lock leaves the shard consistent (every
        // mutation below completes or does nothing), so poisoning is ignored.
        self.shard(hash).read().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the value stored under the key that `eq` recognises, and
    /// counts the request for the eviction policy (a hit on a hot key
    /// writes nothing shared).
    #[inline]
    pub(crate) fn with<R>(
        &self,
        hash: u64,
        eq: impl Fn(&K) -> bool,
        f: impl FnOnce(&V) -> R,
    ) -> Option<R> {
        self.with_ticket(hash, eq, |v, _| f(v))
    }

    /// [`with`](Self::with), also handing `f` a [`Ticket`] when the entry
    /// has all its second chances (a front may then copy it).
    #[inline]
    pub(crate) fn with_ticket<R>(
        &self,
        hash: u64,
        eq: impl Fn(&K) -> bool,
        f: impl FnOnce(&V, Option<Ticket>) -> R,
    ) -> Option<R> {
        let shard = self.read(hash);
        let idx = *shard
            .table
            .find(hash, |&i| match &shard.slots[i as usize] {
                Some(slot) => eq(&slot.key),
                None => false,
            })?;
        let slot = shard.slots[idx as usize].as_ref()?;
        let hits = slot.hits.load(Ordering::Relaxed);
        let ticket = if hits < MAX_HITS {
            // Counted in the sketch while it earns second chances: an
            // entry hit more often than the clock hand passes (a hot one)
            // reads one byte here and writes nothing.
            // Not a store: one delayed past a concurrent rise to
            // MAX_HITS (and a ticket) would take a chance back unseen.
            let _ =
                slot.hits
                    .compare_exchange(hits, hits + 1, Ordering::Relaxed, Ordering::Relaxed);
            shard.sketch.record(hash);
            None
        } else {
            // Bumps happen under the write lock: exact under this read lock.
            Some(Ticket {
                stripe: slot.stripe,
                version: self.versions.get(slot.stripe),
            })
        };
        self.climb.hit();
        Some(f(&slot.value, ticket))
    }

    /// Whether the entry `ticket` was given for is still in the store,
    /// unchanged and with all its second chances. Takes no lock.
    #[inline]
    pub(crate) fn unchanged(&self, ticket: Ticket) -> bool {
        self.versions.get(ticket.stripe) == ticket.version
    }

    /// Counts a hit served from a front for the window's climber.
    #[inline]
    pub(crate) fn count_hit(&self) {
        self.climb.hit();
    }

    /// Stores `value` (of `weight` bytes) under `key`, replacing what was
    /// there; then makes room, choosing dead entries (per `is_dead`) first.
    /// Returns what it did, the replaced value and what was evicted.
    pub(crate) fn insert(
        &self,
        hash: u64,
        key: K,
        value: V,
        weight: u64,
        is_dead: impl Fn(&V) -> bool,
    ) -> (Put, Option<V>, Evicted<K, V>) {
        self.put(hash, (key, value, weight), |_| false, is_dead)
    }

    /// Stores `value` unless a live entry (per `is_dead`) holds the key.
    pub(crate) fn insert_if_vacant(
        &self,
        hash: u64,
        key: K,
        value: V,
        weight: u64,
        is_dead: impl Fn(&V) -> bool,
    ) -> (Put, Option<V>, Evicted<K, V>) {
        self.put(hash, (key, value, weight), |v| !is_dead(v), &is_dead)
    }

    fn put(
        &self,
        hash: u64,
        (key, value, weight): (K, V, u64),
        keep_existing: impl Fn(&V) -> bool,
        is_dead: impl Fn(&V) -> bool,
    ) -> (Put, Option<V>, Evicted<K, V>) {
        self.change(self.shard(hash), |s| {
            s.put(
                &self.hasher,
                &self.climb,
                hash,
                key,
                value,
                weight,
                keep_existing,
                is_dead,
            )
        })
    }

    /// Removes the key `eq` recognises; returns its value.
    pub(crate) fn remove(&self, hash: u64, eq: impl Fn(&K) -> bool) -> Option<V> {
        self.change(self.shard(hash), |shard| {
            let slots = &shard.slots;
            let idx = *shard.table.find(hash, |&i| {
                slots[i as usize].as_ref().is_some_and(|s| eq(&s.key))
            })?;
            shard.take(&self.hasher, idx).map(|(_, v)| v)
        })
    }

    /// The first `f(value)` that is `Some`, over every entry (one shard read
    /// lock at a time). A scan: for inspection paths, not for calls.
    pub(crate) fn find_map<R>(&self, mut f: impl FnMut(&V) -> Option<R>) -> Option<R> {
        for shard in self.shards.iter() {
            let shard = shard.0.read().unwrap_or_else(|e| e.into_inner());
            if let Some(r) = shard.slots.iter().flatten().find_map(|s| f(&s.value)) {
                return Some(r);
            }
        }
        None
    }

    /// Up to `limit` results of `f(key, value)`, over every entry (one
    /// shard read lock at a time). A scan: for inspection, not for calls.
    pub(crate) fn collect<R>(
        &self,
        limit: usize,
        mut f: impl FnMut(&K, &V) -> Option<R>,
    ) -> Vec<R> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.0.read().unwrap_or_else(|e| e.into_inner());
            for s in shard.slots.iter().flatten() {
                if out.len() >= limit {
                    return out;
                }
                out.extend(f(&s.key, &s.value));
            }
        }
        out
    }

    /// Removes every entry for which `drop_it` says so; returns how many.
    pub(crate) fn remove_where(&self, mut drop_it: impl FnMut(&K, &V) -> bool) -> usize {
        let mut removed = 0;
        for shard in self.shards.iter() {
            let gone = self.change(&shard.0, |shard| {
                let doomed: Vec<Idx> = (0..shard.slots.len() as Idx)
                    .filter(|&i| {
                        shard.slots[i as usize]
                            .as_ref()
                            .is_some_and(|s| drop_it(&s.key, &s.value))
                    })
                    .collect();
                let mut gone = Vec::with_capacity(doomed.len());
                for i in doomed {
                    gone.extend(shard.take(&self.hasher, i));
                }
                gone
            });
            removed += gone.len();
            drop(gone);
        }
        removed
    }

    /// Removes everything.
    pub(crate) fn clear(&self) {
        for shard in self.shards.iter() {
            let old = self.change(&shard.0, |shard| {
                shard.table.clear();
                shard.free.clear();
                shard.window.clear();
                shard.window_len = 0;
                shard.main_len = 0;
                shard.hand = 0;
                shard.bytes = 0;
                // Under the lock: a copy must not outlive its entry into a
                // shard that takes a new value for the key.
                for slot in shard.slots.iter().flatten() {
                    shard.versions.bump(slot.stripe);
                }
                std::mem::take(&mut shard.slots)
            });
            drop(old);
        }
    }

    /// How many entries are stored (dead ones included until evicted).
    pub(crate) fn len(&self) -> usize {
        self.each(|s| s.table.len() as u64) as usize
    }

    /// The most entries the store holds.
    pub(crate) fn capacity(&self) -> usize {
        self.each(|s| s.capacity as u64) as usize
    }

    /// The weight of what is stored, in bytes.
    pub(crate) fn bytes(&self) -> u64 {
        self.each(|s| s.bytes)
    }

    fn each(&self, f: impl Fn(&Shard<K, V>) -> u64) -> u64 {
        self.shards
            .iter()
            .map(|s| f(&s.0.read().unwrap_or_else(|e| e.into_inner())))
            .fold(0u64, u64::saturating_add)
    }
}

#[cfg(test)]
mod tests;
