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
//! shard's read lock. The policy is W-TinyLFU (Caffeine's) built from
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
use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};

use hashbrown::HashTable;

use crate::clock::{saturating_ms, Clock, Stamp};
use crate::entry::{Entry, Held};
use crate::key::Key;
use crate::watermark::Watermarks;

mod sketch;

use sketch::Sketch;

#[repr(align(128))]
struct Padded<T>(T);

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
        let held = Held::new(entry, urn.as_str(), urn.entity(), epoch, since);
        if !held.admissible(marks) {
            return Admitted::Refused;
        }
        let live = |old: &Held<V>| !old.is_expired(now);
        let (put, _, evicted) = match how {
            Admit::Replace => self.insert(hash, key, held, weight, |old| old.is_expired(now)),
            Admit::IfVacant => self.insert_if_vacant(hash, key, held, weight, |old| {
                old.is_expired(now) || !old.valid(marks)
            }),
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

/// Per entry: key, value, weight and where the policy holds it.
struct Slot<K, V> {
    key: K,
    value: V,
    weight: u32,
    /// Hits since the main region's clock hand last passed (saturating at
    /// [`MAX_HITS`]): the second chances of an entry in the main region.
    hits: AtomicU8,
    region: Region,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Region {
    /// New entries, in arrival order; the oldest leaves first, into the
    /// main region if the sketch says it is asked for more than the main
    /// region's next victim.
    Window,
    /// The rest, swept by a clock hand.
    Main,
}

const MAX_HITS: u8 = 3;

/// Caffeine's hill climber, one per store: every sample of requests (ten
/// per entry of capacity), compare the hit ratio with the previous sample's
/// and move the window's share a step the same way if it improved, the
/// other way if not. Recency-skewed traffic grows the window towards LRU;
/// frequency-skewed traffic shrinks it towards LFU. Steps shrink as it
/// settles and start over when the hit ratio moves a lot (the workload
/// changed). Shards read the share when they admit.
struct Climb {
    /// Hits this sample, counted one in [`HIT_SAMPLE`] by the reading
    /// thread's countdown, so a hit writes a shared line rarely.
    hits: AtomicU64,
    misses: AtomicU64,
    /// Whether a shard has been full (the climb has begun).
    warm: std::sync::atomic::AtomicBool,
    sample: u64,
    /// The window's share of each shard, per mille.
    window: std::sync::atomic::AtomicU32,
    state: std::sync::Mutex<ClimbState>,
}

struct ClimbState {
    previous: f64,
    /// Per mille per step, signed by direction.
    step: f64,
}

const INITIAL_STEP: f64 = 62.5;

/// One hit in this many is counted (by adding this many): a prime.
const HIT_SAMPLE: u64 = 61;

thread_local! {
    static HIT_TICK: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

impl Climb {
    fn new(capacity: usize) -> Self {
        Climb {
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            warm: std::sync::atomic::AtomicBool::new(false),
            sample: (capacity as u64).saturating_mul(10).max(1000),
            window: std::sync::atomic::AtomicU32::new(INITIAL_WINDOW),
            state: std::sync::Mutex::new(ClimbState {
                previous: 0.0,
                step: INITIAL_STEP,
            }),
        }
    }

    /// Counts a hit, one in [`HIT_SAMPLE`].
    #[inline]
    fn hit(&self) {
        // A per-thread count, exact to a sample (a random draw would blur
        // the small differences the climber compares); its period is prime
        // so that a thread going round a few stores in turn credits each.
        let tick = HIT_TICK.with(|t| {
            let v = t.get().wrapping_add(1) % HIT_SAMPLE as u32;
            t.set(v);
            v
        });
        if tick == 0 {
            self.hits.fetch_add(HIT_SAMPLE, Ordering::Relaxed);
        }
    }

    /// The window's share of a shard of `capacity` entries.
    fn window_cap(&self, capacity: usize) -> usize {
        let permille = self.window.load(Ordering::Relaxed) as usize;
        (capacity * permille / 1000).clamp(1, capacity.max(1))
    }

    /// A miss in a shard still filling: the sample starts after it.
    /// Only until some shard first fills: after that, one shard with room
    /// (after removals, or under a byte bound) must not stall the climb.
    fn filling(&self) {
        if self.warm.load(Ordering::Relaxed) {
            return;
        }
        self.hits.store(0, Ordering::Relaxed);
        self.misses.store(0, Ordering::Relaxed);
    }

    /// Counts a miss; at the end of a sample, moves the window's share.
    fn miss(&self) {
        self.warm.store(true, Ordering::Relaxed);
        let misses = self.misses.fetch_add(1, Ordering::Relaxed) + 1;
        let hits = self.hits.load(Ordering::Relaxed);
        if hits + misses < self.sample {
            return;
        }
        let Ok(mut st) = self.state.try_lock() else {
            return;
        };
        let (hits, misses) = (
            self.hits.swap(0, Ordering::Relaxed),
            self.misses.swap(0, Ordering::Relaxed),
        );
        if hits + misses < self.sample / 2 {
            return;
        }
        let ratio = hits as f64 / (hits + misses) as f64;
        let change = ratio - st.previous;
        st.previous = ratio;
        if change < 0.0 {
            st.step = -st.step;
        }
        let now = f64::from(self.window.load(Ordering::Relaxed));
        let next = (now + st.step).clamp(5.0, 800.0);
        self.window.store(next.round() as u32, Ordering::Relaxed);
        st.step = if change.abs() >= 0.05 {
            INITIAL_STEP.copysign(st.step)
        } else {
            st.step * 0.98
        };
    }
}

/// How many of the main clock's victims (entries out of second chances)
/// are compared by the sketch: the least asked-for of them leaves.
const VICTIM_SAMPLES: usize = 4;

/// The window's initial share of a shard, per mille (Caffeine's 1 %).
const INITIAL_WINDOW: u32 = 10;

/// A slot's index in its shard: two bytes in the index table per bucket.
/// A shard therefore holds at most [`MAX_SHARD`] entries.
type Idx = u16;

/// The most entries one shard holds (one index is kept spare: a new entry
/// goes in before the one it displaces leaves).
const MAX_SHARD: usize = Idx::MAX as usize - 1;

/// The capacity a shard's sketch starts with.
const SMALL_SKETCH: usize = 64;

/// The most shards a store has.
const MAX_SHARDS: usize = 1024;

struct Shard<K, V> {
    table: HashTable<Idx>,
    slots: Vec<Option<Slot<K, V>>>,
    free: Vec<Idx>,
    /// Slot indices of the window, oldest first. May hold indices of slots
    /// removed since (skipped when reached, or compacted away).
    window: VecDeque<Idx>,
    window_len: usize,
    main_len: usize,
    hand: usize,
    capacity: usize,
    window_cap: usize,
    bytes: u64,
    max_bytes: u64,
    sketch: Sketch,
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
        let shards = (0..shards_n)
            .map(|i| {
                let cap = (base + usize::from(i < extra)).max(1);
                let max_bytes = bytes_base + u64::from((i as u64) < bytes_extra);
                Padded(RwLock::new(Shard::new(cap, max_bytes)))
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
        let shard = self.read(hash);
        let idx = *shard
            .table
            .find(hash, |&i| match &shard.slots[i as usize] {
                Some(slot) => eq(&slot.key),
                None => false,
            })?;
        let slot = shard.slots[idx as usize].as_ref()?;
        let hits = slot.hits.load(Ordering::Relaxed);
        if hits < MAX_HITS {
            // Counted in the sketch while it earns second chances: an
            // entry hit more often than the clock hand passes (a hot one)
            // reads one byte here and writes nothing.
            slot.hits.store(hits + 1, Ordering::Relaxed);
            shard.sketch.record(hash);
        }
        self.climb.hit();
        Some(f(&slot.value))
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

impl<K: Hash + Eq, V> Shard<K, V> {
    fn new(capacity: usize, max_bytes: u64) -> Self {
        let window_cap = (capacity * INITIAL_WINDOW as usize / 1000).max(1);
        Shard {
            table: HashTable::with_capacity(capacity.min(1024)),
            slots: Vec::new(),
            free: Vec::new(),
            window: VecDeque::new(),
            window_len: 0,
            main_len: 0,
            hand: 0,
            capacity,
            window_cap,
            bytes: 0,
            max_bytes,
            // Sized for a few entries, grown as the shard fills (see `put`):
            // an idle use case with a large capacity costs little.
            sketch: Sketch::new(capacity.min(SMALL_SKETCH)),
        }
    }

    fn main_cap(&self) -> usize {
        self.capacity.saturating_sub(self.window_cap)
    }

    /// Puts `value` under `key` unless an existing value is to be kept.
    /// Returns what it did, the replaced value and what was evicted. The
    /// value stays in the shard once stored: it weighs no more than the
    /// shard's byte share, so making room never needs to evict it.
    #[allow(clippy::too_many_arguments)]
    fn put(
        &mut self,
        hasher: &foldhash::fast::RandomState,
        climb: &Climb,
        hash: u64,
        key: K,
        value: V,
        weight: u64,
        keep_existing: impl Fn(&V) -> bool,
        is_dead: impl Fn(&V) -> bool,
    ) -> (Put, Option<V>, Evicted<K, V>) {
        let weight = u32::try_from(weight).unwrap_or(u32::MAX);
        let mut evicted = Evicted::none();
        let existing = self.find(hash, &key).copied();
        if let Some(idx) = existing {
            let slot = self.slots[idx as usize]
                .as_mut()
                .expect("table points only at occupied slots");
            if keep_existing(&slot.value) {
                return (Put::Kept, None, evicted);
            }
        }
        if u64::from(weight) > self.max_bytes {
            // Heavier than this shard may hold: not kept, nor what it would
            // have replaced (now out of date).
            let old = existing.and_then(|i| self.take(hasher, i)).map(|(_, v)| v);
            return (Put::TooHeavy, old, evicted);
        }
        if self.table.len() * 2 > self.sketch.capacity() && self.sketch.capacity() < self.capacity {
            // Half full: a sketch for four times as many (what it counted
            // so far is forgotten, as Caffeine does).
            self.sketch = Sketch::new(self.capacity.min(self.sketch.capacity() * 4));
        }
        self.sketch.record(hash);
        if self.sketch.due() {
            self.sketch.age();
        }
        if let Some(idx) = existing {
            let slot = self.slots[idx as usize]
                .as_mut()
                .expect("table points only at occupied slots");
            let old = std::mem::replace(&mut slot.value, value);
            self.bytes = self.bytes - u64::from(slot.weight) + u64::from(weight);
            slot.weight = weight;
            let hits = slot.hits.get_mut();
            *hits = (*hits + 1).min(MAX_HITS);
            self.shrink(hasher, &is_dead, &mut evicted, idx);
            return (Put::Stored, Some(old), evicted);
        }
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as Idx
            }
        };
        self.slots[idx as usize] = Some(Slot {
            key,
            value,
            weight,
            hits: AtomicU8::new(0),
            region: Region::Window,
        });
        let slots = &self.slots;
        self.table.insert_unique(hash, idx, |&i| {
            slots[i as usize]
                .as_ref()
                .map_or(0, |s| hasher.hash_one(&s.key))
        });
        self.window.push_back(idx);
        self.window_len += 1;
        self.bytes += u64::from(weight);
        // The climber learns from a full shard only: while a cache fills,
        // its hit ratio rises whatever the window.
        if self.table.len() >= self.capacity {
            climb.miss();
        } else {
            climb.filling();
        }
        self.window_cap = climb.window_cap(self.capacity);
        // The window's oldest through the admission filter, then room by
        // bytes if still short, sparing the new entry (it fits alone).
        self.admit_from_window(hasher, &is_dead, &mut evicted, idx);
        self.shrink(hasher, &is_dead, &mut evicted, idx);
        (Put::Stored, None, evicted)
    }

    fn find(&self, hash: u64, key: &K) -> Option<&Idx> {
        let slots = &self.slots;
        self.table.find(hash, |&i| {
            slots[i as usize].as_ref().is_some_and(|s| s.key == *key)
        })
    }

    fn slot(&self, idx: Idx) -> Option<&Slot<K, V>> {
        self.slots[idx as usize].as_ref()
    }

    /// While the window is over its share: its oldest entry goes to the
    /// main region if there is room, or if the sketch rates it above the
    /// main region's victim (which then leaves); else it leaves itself.
    /// Dead entries leave first.
    fn admit_from_window(
        &mut self,
        hasher: &foldhash::fast::RandomState,
        is_dead: &impl Fn(&V) -> bool,
        evicted: &mut Evicted<K, V>,
        keep: Idx,
    ) {
        while self.window_len > self.window_cap {
            let Some(cand) = self.window.pop_front() else {
                break;
            };
            // An index left by a removed entry whose slot now holds `keep`
            // (its own index comes later) or an entry that left the window.
            let Some(slot) = self.slot(cand) else {
                continue;
            };
            if slot.region != Region::Window || cand == keep {
                continue;
            }
            let cand_dead = is_dead(&slot.value);
            let cand_hash = hasher.hash_one(&slot.key);
            if cand_dead {
                evicted.0.extend(self.take(hasher, cand));
                continue;
            }
            if self.main_len < self.main_cap() && self.bytes <= self.max_bytes {
                self.promote(cand);
                continue;
            }
            let Some(victim) = self.main_victim_by(is_dead, Some(hasher), Idx::MAX) else {
                evicted.0.extend(self.take(hasher, cand));
                continue;
            };
            let (victim_dead, victim_hash) = {
                let v = self.slot(victim).expect("a victim is occupied");
                (is_dead(&v.value), hasher.hash_one(&v.key))
            };
            let (c, v) = (
                self.sketch.estimate(cand_hash),
                self.sketch.estimate(victim_hash),
            );
            // Caffeine's guard against a flood of keys colliding with a
            // popular one: a warm candidate sometimes wins a tie it lost.
            let lucky = c > 5 && fastrand::u8(..) < 2;
            if victim_dead || c > v || lucky {
                evicted.0.extend(self.take(hasher, victim));
                self.promote(cand);
            } else {
                evicted.0.extend(self.take(hasher, cand));
            }
        }
        if self.window.len() > 2 * self.window_len + 64 {
            self.compact_window();
        }
    }

    /// While over the byte bound: evict, main region first, never `keep`
    /// (which fits alone).
    fn shrink(
        &mut self,
        hasher: &foldhash::fast::RandomState,
        is_dead: &impl Fn(&V) -> bool,
        evicted: &mut Evicted<K, V>,
        keep: Idx,
    ) {
        while self.bytes > self.max_bytes || self.table.len() > self.capacity {
            let victim = self
                .main_victim_by(is_dead, None, keep)
                .or_else(|| self.oldest_in_window(keep));
            let Some(victim) = victim else { break };
            evicted.0.extend(self.take(hasher, victim));
        }
    }

    fn oldest_in_window(&mut self, keep: Idx) -> Option<Idx> {
        // Indices of entries gone from the window first: evicting many in
        // a row would otherwise scan past them again each time.
        while let Some(&i) = self.window.front() {
            let gone = self.slots[i as usize]
                .as_ref()
                .is_none_or(|s| s.region != Region::Window);
            if !gone {
                break;
            }
            self.window.pop_front();
        }
        let slots = &self.slots;
        self.window.iter().copied().find(|&i| {
            i != keep
                && slots[i as usize]
                    .as_ref()
                    .is_some_and(|s| s.region == Region::Window)
        })
    }

    fn promote(&mut self, idx: Idx) {
        if let Some(s) = self.slots[idx as usize].as_mut() {
            s.region = Region::Main;
            *s.hits.get_mut() = 0;
            self.window_len -= 1;
            self.main_len += 1;
        }
    }

    /// The main region's next victim: the clock hand's first entry with no
    /// hits left (each pass takes one away), or a dead one.
    fn main_victim(&mut self, is_dead: &impl Fn(&V) -> bool) -> Option<Idx> {
        self.main_victim_by(is_dead, None, Idx::MAX)
    }

    fn main_victim_by(
        &mut self,
        is_dead: &impl Fn(&V) -> bool,
        hasher: Option<&foldhash::fast::RandomState>,
        skip: Idx,
    ) -> Option<Idx> {
        if self.main_len == 0 {
            return None;
        }
        let n = self.slots.len();
        let want = if hasher.is_some() { VICTIM_SAMPLES } else { 1 };
        let mut best: Option<(u8, Idx)> = None;
        let mut seen = 0;
        // Each pass takes a hit from every main entry; MAX_HITS + 1 passes
        // always find one.
        for _ in 0..(usize::from(MAX_HITS) + 1) * n + 1 {
            let idx = self.hand % n;
            self.hand = (idx + 1) % n;
            let Some(slot) = self.slots[idx].as_mut() else {
                continue;
            };
            if slot.region != Region::Main || idx == usize::from(skip) {
                continue;
            }
            if is_dead(&slot.value) {
                return Some(idx as Idx);
            }
            let hits = slot.hits.get_mut();
            if *hits > 0 {
                *hits -= 1;
                continue;
            }
            let Some(h) = hasher else {
                return Some(idx as Idx);
            };
            let f = self.sketch.estimate(h.hash_one(&slot.key));
            if best.is_none_or(|(bf, _)| f < bf) {
                best = Some((f, idx as Idx));
            }
            seen += 1;
            if seen >= want || seen >= self.main_len {
                break;
            }
        }
        best.map(|(_, i)| i)
    }

    /// Removes the entry in slot `idx` from every structure.
    fn take(&mut self, hasher: &foldhash::fast::RandomState, idx: Idx) -> Option<(K, V)> {
        let slot = self.slots[idx as usize].take()?;
        let hash = hasher.hash_one(&slot.key);
        match self.table.find_entry(hash, |&i| i == idx) {
            Ok(e) => {
                e.remove();
            }
            // A key whose owned and borrowed forms hash apart: slow, but
            // the table never keeps an index to a freed slot.
            Err(_) => self.table.retain(|&mut i| i != idx),
        }
        self.free.push(idx);
        self.bytes -= u64::from(slot.weight);
        match slot.region {
            Region::Window => self.window_len -= 1,
            Region::Main => self.main_len -= 1,
        }
        Some((slot.key, slot.value))
    }

    /// Rebuilds the window queue without the indices of removed entries.
    fn compact_window(&mut self) {
        let mut seen = vec![false; self.slots.len()];
        let slots = &self.slots;
        self.window.retain(|&i| {
            let live = slots[i as usize]
                .as_ref()
                .is_some_and(|s| s.region == Region::Window);
            let first = !std::mem::replace(&mut seen[i as usize], true);
            live && first
        });
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn get(s: &Store<String, u32>, k: &str) -> Option<u32> {
        let h = s.hash(k);
        s.with(h, |o| o == k, |v| *v)
    }

    fn put(s: &Store<String, u32>, k: &str, v: u32) {
        let h = s.hash(k);
        s.insert(h, k.to_string(), v, 1, |_| false);
    }

    /// Requests `k`, storing it on a miss; whether it was a hit.
    fn request(s: &Store<String, u32>, k: &str) -> bool {
        if get(s, k).is_some() {
            return true;
        }
        put(s, k, 0);
        false
    }

    #[test]
    fn insert_get_replace_remove() {
        let s = Store::new(100, None, None);
        put(&s, "a", 1);
        put(&s, "b", 2);
        assert_eq!(get(&s, "a"), Some(1));
        put(&s, "a", 3);
        assert_eq!(get(&s, "a"), Some(3));
        assert_eq!(s.len(), 2);
        let h = s.hash("a");
        assert_eq!(s.remove(h, |k| k == "a"), Some(3));
        assert_eq!(get(&s, "a"), None);
        assert_eq!(get(&s, "b"), Some(2));
    }

    #[test]
    fn never_exceeds_capacity_and_keeps_a_hot_entry() {
        let s = Store::new(50, None, None);
        assert_eq!(s.capacity(), 50);
        for i in 0..1000u32 {
            put(&s, &i.to_string(), i);
            // "0" is read after every insert: the sketch rates it above
            // every newcomer, and its hits give it second chances.
            let _ = get(&s, "0");
            assert!(s.len() <= 50);
        }
        assert_eq!(get(&s, "0"), Some(0));
        assert_eq!(s.len(), 50);
    }

    #[test]
    fn dead_entries_go_first() {
        let s: Store<String, u32> = Store::new(2, None, None);
        put(&s, "dead", 0);
        put(&s, "live", 1);
        for _ in 0..5 {
            let _ = get(&s, "dead");
            let _ = get(&s, "live");
        }
        let h = s.hash("new");
        let (put, _, evicted) = s.insert(h, "new".into(), 2, 1, |v| *v == 0);
        assert_eq!(put, Put::Stored);
        assert_eq!(evicted.keys(), vec!["dead".to_string()]);
        assert_eq!(get(&s, "live"), Some(1));
        assert_eq!(get(&s, "new"), Some(2));
    }

    #[test]
    fn insert_if_vacant_respects_live_entries() {
        let s: Store<String, u32> = Store::new(10, None, None);
        let h = s.hash("k");
        assert_eq!(
            s.insert_if_vacant(h, "k".into(), 1, 1, |_| false).0,
            Put::Stored
        );
        assert_eq!(
            s.insert_if_vacant(h, "k".into(), 2, 1, |_| false).0,
            Put::Kept
        );
        assert_eq!(get(&s, "k"), Some(1));
        // A dead holder does not block.
        assert_eq!(
            s.insert_if_vacant(h, "k".into(), 3, 1, |v| *v == 1).0,
            Put::Stored
        );
        assert_eq!(get(&s, "k"), Some(3));
    }

    #[test]
    fn remove_where_and_clear() {
        let s = Store::new(100, None, None);
        for i in 0..10u32 {
            put(&s, &i.to_string(), i);
        }
        assert_eq!(s.remove_where(|_, v| v % 2 == 0), 5);
        assert_eq!(s.len(), 5);
        assert_eq!(get(&s, "3"), Some(3));
        s.clear();
        assert_eq!(s.len(), 0);
        assert_eq!(s.bytes(), 0);
        put(&s, "x", 9);
        assert_eq!(get(&s, "x"), Some(9));
    }

    #[test]
    fn a_loop_slightly_larger_than_the_store_keeps_most_of_it() {
        // Under LRU or CLOCK every request of such a loop misses: each key
        // is evicted just before it comes round again.
        let s = Store::new(1_000, None, None);
        let keys: Vec<String> = (0..1_200).map(|i| format!("k{i}")).collect();
        let mut hits = 0;
        for round in 0..20 {
            for k in &keys {
                let hit = request(&s, k);
                if round >= 10 {
                    hits += usize::from(hit);
                }
            }
        }
        let ratio = hits as f64 / (10 * keys.len()) as f64;
        assert!(ratio > 0.6, "hit ratio {ratio:.3} on the loop");
    }

    #[test]
    fn a_scan_does_not_flush_the_hot_set() {
        let s = Store::new(1_000, None, None);
        let hot: Vec<String> = (0..500).map(|i| format!("hot{i}")).collect();
        for _ in 0..5 {
            for k in &hot {
                request(&s, k);
            }
        }
        for i in 0..10_000 {
            request(&s, &format!("scan{i}"));
        }
        let kept = hot.iter().filter(|k| get(&s, k).is_some()).count();
        assert!(
            kept >= 450,
            "{kept} of 500 hot keys survived a scan of 10 000"
        );
    }

    #[test]
    fn the_byte_bound_holds_with_mixed_weights() {
        let max = 1_000_000;
        let s: Store<String, u32> = Store::new(1_000_000, Some(max), None);
        let mut rng = fastrand::Rng::with_seed(7);
        for i in 0..20_000u32 {
            let k = i.to_string();
            let h = s.hash(&k);
            let w = rng.u64(100..5_000);
            s.insert(h, k, i, w, |_| false);
            assert!(s.bytes() <= max, "{} bytes held, bound {max}", s.bytes());
        }
        assert!(s.bytes() > max * 9 / 10, "filled to {} of {max}", s.bytes());
        // Too heavy for a shard: refused, and the entry it would replace
        // (now out of date) is dropped.
        let h = s.hash("19999");
        let (put, old, _) = s.insert(h, "19999".into(), 0, max, |_| false);
        assert_eq!(put, Put::TooHeavy);
        assert!(old.is_some());
        assert_eq!(get(&s, "19999"), None);
    }

    #[test]
    fn a_shared_budget_counts_every_store_and_gets_bytes_back() {
        let budget = std::sync::Arc::new(Budget::new(10_000));
        let a: Store<String, u32> = Store::new(1_000, None, Some(budget.clone()));
        let b: Store<String, u32> = Store::new(1_000, None, Some(budget.clone()));
        for i in 0..100u32 {
            let k = i.to_string();
            a.insert(a.hash(&k), k.clone(), i, 100, |_| false);
            b.insert(b.hash(&k), k, i, 50, |_| false);
        }
        assert_eq!(budget.excess(), 5_000);
        let freed = a.give_back(5_000, |_| false);
        assert!(freed >= 5_000);
        assert_eq!(a.bytes(), 10_000 - freed);
        assert_eq!(budget.excess(), 0);
        let h = a.hash("5");
        assert!(a.remove(h, |k| k == "5").is_none() || a.bytes() < 5_000);
    }

    #[test]
    fn the_window_grows_for_recency_and_shrinks_for_frequency() {
        let s: Store<u64, u32> = Store::new(1_000, None, None);
        let request = |k: u64| {
            let h = s.hash(&k);
            if s.with(h, |o| *o == k, |_| ()).is_none() {
                s.insert(h, k, 0, 1, |_| false);
            }
        };
        // Each new key is asked for again 100 requests later, then never:
        // only a window of more than 100 entries catches the second asks.
        for i in 0..200_000u64 {
            request(i);
            request(i.saturating_sub(50));
        }
        let grown = s.climb.window.load(Ordering::Relaxed);
        assert!(grown > INITIAL_WINDOW, "window {grown}‰ after recency");
        // A fixed hot set larger than the window, asked for in turn.
        let mut rng = fastrand::Rng::with_seed(3);
        for _ in 0..400_000 {
            request(rng.u64(0..900));
            request(2_000_000 + rng.u64(..));
        }
        let shrunk = s.climb.window.load(Ordering::Relaxed);
        assert!(
            shrunk < grown,
            "window {shrunk}‰ after frequency, {grown}‰ before"
        );
    }

    #[test]
    fn a_large_capacity_spreads_over_more_shards_within_the_index() {
        let s: Store<u64, u32> = Store::new(10_000_000, None, None);
        assert_eq!(s.capacity(), 10_000_000);
        assert_eq!(s.shards.len(), 256, "10M / 65 534 rounds up to 256 shards");
        let huge: Store<u64, u32> = Store::new(usize::MAX, None, None);
        assert_eq!(
            huge.capacity(),
            MAX_SHARDS * MAX_SHARD,
            "capped, never an index overflow"
        );
    }

    #[test]
    fn a_replaced_value_that_grows_evicts_others_to_stay_within_the_bound() {
        let s: Store<String, u32> = Store::new(3, Some(1_000), None);
        for k in ["a", "b", "c"] {
            s.insert(s.hash(k), k.into(), 0, 100, |_| false);
        }
        for _ in 0..3 {
            let _ = get(&s, "a");
        }
        let h = s.hash("c");
        let _ = s.remove(h, |k| k == "c");
        let h = s.hash("b");
        s.insert(h, "b".into(), 1, 950, |_| false);
        assert!(s.bytes() <= 1_000, "{} bytes held, bound 1000", s.bytes());
        assert_eq!(get(&s, "b"), Some(1));
    }

    #[test]
    fn two_stores_hit_in_turn_each_count_their_hits() {
        let a: Store<u64, u32> = Store::new(100, None, None);
        let b: Store<u64, u32> = Store::new(100, None, None);
        for s in [&a, &b] {
            s.insert(s.hash(&1), 1, 0, 1, |_| false);
        }
        for _ in 0..12_800 {
            for s in [&a, &b] {
                let h = s.hash(&1);
                assert!(s.with(h, |k| *k == 1, |_| ()).is_some());
            }
        }
        let (ha, hb) = (
            a.climb.hits.load(Ordering::Relaxed),
            b.climb.hits.load(Ordering::Relaxed),
        );
        // 12 800 hits each, sampled one in 61: about 12 800 counted.
        assert!(ha > 6_400 && hb > 6_400, "hits counted {ha} and {hb}");
    }
}
