//! The in-process layer (L1): the bounded map, and [`Store::admit`], the one
//! place an entry enters it.
//!
//! Why not a crate: L1 must be searched with a *borrowed* key (a tuple of
//! references to the arguments) and must let the caller inspect an entry
//! under the lock and clone only the value, so that a hit allocates nothing
//! and touches no reference count. `quick_cache` and `moka` hand out clones of
//! the whole stored value instead; the benches compare against moka.
//!
//! Shape: a power-of-two number of shards, each an `RwLock` around a
//! `hashbrown::HashTable` of slot indices and a slot vector. Reads take a
//! shard's read lock; eviction is CLOCK (second chance) and prefers entries
//! that are already dead. Capacity is split exactly across shards, so the
//! store never holds more than its capacity.

use std::hash::{BuildHasher, Hash};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

use hashbrown::HashTable;

use crate::clock::{saturating_ms, Clock, Stamp};
use crate::entry::{Entry, Held};
use crate::watermark::Watermarks;

#[repr(align(128))]
struct Padded<T>(T);

struct Slot<K, V> {
    hash: u64,
    key: K,
    value: V,
    referenced: AtomicBool,
}

struct Shard<K, V> {
    table: HashTable<u32>,
    slots: Vec<Option<Slot<K, V>>>,
    free: Vec<u32>,
    hand: usize,
    capacity: usize,
}

type ShardLock<K, V> = Padded<RwLock<Shard<K, V>>>;

pub(crate) struct Store<K, V> {
    shards: Box<[ShardLock<K, V>]>,
    hasher: foldhash::fast::RandomState,
    mask: usize,
}

impl<K: Eq, V> std::fmt::Debug for Store<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("shards", &self.shards.len())
            .field("len", &self.len())
            .finish()
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
    /// Stored; `evicted_live` when room was made by evicting a live entry.
    Stored { evicted_live: bool },
    /// Not stored: an invalidation already covers it (a future buffer), or
    /// the layer is not trusted (the bus is down).
    Refused,
    /// Not stored: a live entry holds the key ([`Admit::IfVacant`]).
    Occupied,
}

impl<K: std::hash::Hash + Eq, V> Store<K, Held<V>> {
    /// The one place an entry enters process memory: its lifetime capped by
    /// `cap` (the local TTL), held with its tags' hashes as of the current
    /// watermark epoch, and stored unless already invalidated or untrusted.
    /// `since` is when this process got hold of the value (the start of its
    /// load, or of the read that found it): a value got before the bus last
    /// reconnected is refused, as an invalidation may have been missed
    /// while it loaded.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn admit(
        &self,
        hash: u64,
        key: K,
        urn: &str,
        mut entry: Entry<V>,
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
        let held = Held::new(entry, urn, epoch, since);
        if !held.admissible(marks) {
            return Admitted::Refused;
        }
        match how {
            Admit::Replace => {
                let (_, evicted) = self.insert(hash, key, held, |old| old.entry.is_expired(now));
                Admitted::Stored {
                    evicted_live: evicted.is_some_and(|(_, old)| !old.entry.is_expired(now)),
                }
            }
            Admit::IfVacant => {
                let (stored, _, evicted) = self.insert_if_vacant(hash, key, held, |old| {
                    old.entry.is_expired(now) || !old.valid(marks)
                });
                if stored {
                    Admitted::Stored {
                        evicted_live: evicted.is_some_and(|(_, old)| !old.entry.is_expired(now)),
                    }
                } else {
                    Admitted::Occupied
                }
            }
        }
    }
}

/// What an insert pushed out, handed back so it is dropped after the lock.
pub(crate) type Evicted<K, V> = Option<(K, V)>;

impl<K: Eq, V> Store<K, V> {
    /// A store holding at most `capacity` entries (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        // Enough shards to spread writers, few enough that each holds a
        // useful share of the capacity.
        let wanted = (capacity / 64).clamp(1, 64);
        let shards_n = wanted.next_power_of_two().min(64);
        let base = capacity / shards_n;
        let extra = capacity % shards_n;
        let shards = (0..shards_n)
            .map(|i| {
                let cap = base + usize::from(i < extra);
                Padded(RwLock::new(Shard {
                    table: HashTable::new(),
                    slots: Vec::new(),
                    free: Vec::new(),
                    hand: 0,
                    capacity: cap.max(1),
                }))
            })
            .collect::<Vec<_>>()
            .into_boxed_slice();
        Store {
            shards,
            hasher: foldhash::fast::RandomState::default(),
            mask: shards_n - 1,
        }
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

    fn write(&self, hash: u64) -> RwLockWriteGuard<'_, Shard<K, V>> {
        self.shard(hash).write().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs `f` on the value stored under the key that `eq` recognises.
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
        if !slot.referenced.load(Ordering::Relaxed) {
            slot.referenced.store(true, Ordering::Relaxed);
        }
        Some(f(&slot.value))
    }

    /// Stores `value` under `key`, replacing what was there. When the shard is
    /// full, evicts one entry, choosing dead ones (per `is_dead`) first.
    pub(crate) fn insert(
        &self,
        hash: u64,
        key: K,
        value: V,
        is_dead: impl Fn(&V) -> bool,
    ) -> (Option<V>, Evicted<K, V>) {
        let mut shard = self.write(hash);
        shard.put(hash, key, value, |_| false, is_dead).1
    }

    /// Stores `value` unless a live entry (per `is_dead`) holds the key.
    /// Returns whether it stored.
    pub(crate) fn insert_if_vacant(
        &self,
        hash: u64,
        key: K,
        value: V,
        is_dead: impl Fn(&V) -> bool,
    ) -> (bool, Option<V>, Evicted<K, V>) {
        let mut shard = self.write(hash);
        let (stored, (old, evicted)) = shard.put(hash, key, value, |v| !is_dead(v), &is_dead);
        (stored, old, evicted)
    }

    /// Removes the key `eq` recognises; returns its value.
    pub(crate) fn remove(&self, hash: u64, eq: impl Fn(&K) -> bool) -> Option<V> {
        let mut shard = self.write(hash);
        let Shard {
            table, slots, free, ..
        } = &mut *shard;
        let entry = table
            .find_entry(hash, |&i| {
                slots[i as usize].as_ref().is_some_and(|s| eq(&s.key))
            })
            .ok()?;
        let (idx, _) = entry.remove();
        free.push(idx);
        slots[idx as usize].take().map(|s| s.value)
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
            let mut shard = shard.0.write().unwrap_or_else(|e| e.into_inner());
            let Shard {
                table, slots, free, ..
            } = &mut *shard;
            table.retain(|&mut i| {
                let keep = match &slots[i as usize] {
                    Some(s) => !drop_it(&s.key, &s.value),
                    None => false,
                };
                if !keep {
                    slots[i as usize] = None;
                    free.push(i);
                    removed += 1;
                }
                keep
            });
        }
        removed
    }

    /// Removes everything.
    pub(crate) fn clear(&self) {
        for shard in self.shards.iter() {
            let mut shard = shard.0.write().unwrap_or_else(|e| e.into_inner());
            let old = std::mem::take(&mut shard.slots);
            shard.table.clear();
            shard.free.clear();
            shard.hand = 0;
            drop(shard);
            drop(old);
        }
    }

    /// How many entries are stored (dead ones included until evicted).
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.0.read().unwrap_or_else(|e| e.into_inner()).table.len())
            .sum()
    }

    /// The most entries the store holds.
    pub(crate) fn capacity(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.0.read().unwrap_or_else(|e| e.into_inner()).capacity)
            .sum()
    }
}

impl<K: Eq, V> Shard<K, V> {
    /// Puts `value` under `key` unless an existing value is to be kept.
    /// Returns whether it stored, the replaced value and any evicted entry.
    fn put(
        &mut self,
        hash: u64,
        key: K,
        value: V,
        keep_existing: impl Fn(&V) -> bool,
        is_dead: impl Fn(&V) -> bool,
    ) -> (bool, (Option<V>, Evicted<K, V>)) {
        let slots = &self.slots;
        if let Some(&idx) = self.table.find(hash, |&i| {
            slots[i as usize].as_ref().is_some_and(|s| s.key == key)
        }) {
            let slot = self.slots[idx as usize]
                .as_mut()
                .expect("table points only at occupied slots");
            if keep_existing(&slot.value) {
                return (false, (None, None));
            }
            slot.referenced.store(true, Ordering::Relaxed);
            let old = std::mem::replace(&mut slot.value, value);
            return (true, (Some(old), None));
        }
        let evicted = if self.table.len() >= self.capacity {
            self.evict_one(&is_dead)
        } else {
            None
        };
        let idx = match self.free.pop() {
            Some(i) => i,
            None => {
                self.slots.push(None);
                (self.slots.len() - 1) as u32
            }
        };
        self.slots[idx as usize] = Some(Slot {
            hash,
            key,
            value,
            referenced: AtomicBool::new(false),
        });
        let slots = &self.slots;
        self.table.insert_unique(hash, idx, |&i| {
            slots[i as usize].as_ref().map_or(0, |s| s.hash)
        });
        (true, (None, evicted))
    }

    fn evict_one(&mut self, is_dead: &impl Fn(&V) -> bool) -> Evicted<K, V> {
        let n = self.slots.len();
        if n == 0 {
            return None;
        }
        // Two sweeps clear every reference bit, so this always finds a victim.
        for _ in 0..2 * n + 1 {
            let idx = self.hand % n;
            self.hand = (idx + 1) % n;
            let Some(slot) = &self.slots[idx] else {
                continue;
            };
            let dead = is_dead(&slot.value);
            if !dead && slot.referenced.swap(false, Ordering::Relaxed) {
                continue;
            }
            let hash = slot.hash;
            if let Ok(e) = self.table.find_entry(hash, |&i| i as usize == idx) {
                e.remove();
            }
            self.free.push(idx as u32);
            return self.slots[idx].take().map(|s| (s.key, s.value));
        }
        None
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
        s.insert(h, k.to_string(), v, |_| false);
    }

    #[test]
    fn insert_get_replace_remove() {
        let s = Store::new(100);
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
    fn never_exceeds_capacity_and_keeps_referenced_entries() {
        let s = Store::new(50);
        assert_eq!(s.capacity(), 50);
        for i in 0..1000u32 {
            put(&s, &i.to_string(), i);
            // "0" is read after every insert, so CLOCK keeps giving it a second chance.
            let _ = get(&s, "0");
            assert!(s.len() <= 50);
        }
        assert_eq!(get(&s, "0"), Some(0));
        assert_eq!(s.len(), 50);
    }

    #[test]
    fn dead_entries_go_first() {
        let s: Store<String, u32> = Store::new(2);
        put(&s, "dead", 0);
        put(&s, "live", 1);
        let _ = get(&s, "dead");
        let _ = get(&s, "live");
        let h = s.hash("new");
        let (_, evicted) = s.insert(h, "new".into(), 2, |v| *v == 0);
        assert_eq!(evicted.map(|e| e.0), Some("dead".to_string()));
        assert_eq!(get(&s, "live"), Some(1));
    }

    #[test]
    fn insert_if_vacant_respects_live_entries() {
        let s: Store<String, u32> = Store::new(10);
        let h = s.hash("k");
        assert!(s.insert_if_vacant(h, "k".into(), 1, |_| false).0);
        assert!(!s.insert_if_vacant(h, "k".into(), 2, |_| false).0);
        assert_eq!(get(&s, "k"), Some(1));
        // A dead holder does not block.
        assert!(s.insert_if_vacant(h, "k".into(), 3, |v| *v == 1).0);
        assert_eq!(get(&s, "k"), Some(3));
    }

    #[test]
    fn remove_where_and_clear() {
        let s = Store::new(100);
        for i in 0..10u32 {
            put(&s, &i.to_string(), i);
        }
        assert_eq!(s.remove_where(|_, v| v % 2 == 0), 5);
        assert_eq!(s.len(), 5);
        assert_eq!(get(&s, "3"), Some(3));
        s.clear();
        assert_eq!(s.len(), 0);
        put(&s, "x", 9);
        assert_eq!(get(&s, "x"), Some(9));
    }
}
