//! One shard of the store: its slots, index, window, clock hand and
//! sketch, and the policy's decisions (see the module above).

use std::collections::VecDeque;
use std::hash::{BuildHasher, Hash};
use std::sync::atomic::AtomicU8;

use hashbrown::HashTable;

use super::climb::Climb;
use super::sketch::Sketch;
use super::{Evicted, Put, Versions};

/// Per entry: key, value, weight and where the policy holds it.
pub(super) struct Slot<K, V> {
    pub(super) key: K,
    pub(super) value: V,
    pub(super) weight: u32,
    /// Hits since the main region's clock hand last passed (saturating at
    /// [`MAX_HITS`]): the second chances of an entry in the main region.
    pub(super) hits: AtomicU8,
    pub(super) region: Region,
    /// The entry's stripe of the store's [`Versions`] (in what was padding).
    pub(super) stripe: u16,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Region {
    /// New entries, in arrival order; the oldest leaves first, into the
    /// main region if the sketch says it is asked for more than the main
    /// region's next victim.
    Window,
    /// The rest, swept by a clock hand.
    Main,
}

pub(super) const MAX_HITS: u8 = 3;

/// How many of the main clock's victims (entries out of second chances)
/// are compared by the sketch: the least asked-for of them leaves.
pub(super) const VICTIM_SAMPLES: usize = 4;

/// The window's initial share of a shard, per mille (Caffeine's 1 %).
pub(super) const INITIAL_WINDOW: u32 = 10;

/// A slot's index in its shard: two bytes in the index table per bucket.
/// A shard therefore holds at most [`MAX_SHARD`] entries.
pub(super) type Idx = u16;

/// The most entries one shard holds (one index is kept spare: a new entry
/// goes in before the one it displaces leaves).
pub(super) const MAX_SHARD: usize = Idx::MAX as usize - 1;

/// The capacity a shard's sketch starts with.
pub(super) const SMALL_SKETCH: usize = 64;

/// The most shards a store has.
pub(super) const MAX_SHARDS: usize = 1024;

pub(super) struct Shard<K, V> {
    pub(super) table: HashTable<Idx>,
    pub(super) slots: Vec<Option<Slot<K, V>>>,
    pub(super) free: Vec<Idx>,
    /// Slot indices of the window, oldest first. May hold indices of slots
    /// removed since (skipped when reached, or compacted away).
    pub(super) window: VecDeque<Idx>,
    pub(super) window_len: usize,
    pub(super) main_len: usize,
    pub(super) hand: usize,
    pub(super) capacity: usize,
    pub(super) window_cap: usize,
    pub(super) bytes: u64,
    pub(super) max_bytes: u64,
    pub(super) sketch: Sketch,
    /// The store's versions, bumped whenever an entry that per-thread
    /// fronts may copy stops being what they copied (see `front.rs`).
    pub(super) versions: Versions,
}

impl<K: Hash + Eq, V> Shard<K, V> {
    pub(super) fn new(capacity: usize, max_bytes: u64, versions: Versions) -> Self {
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
            versions,
        }
    }

    pub(super) fn main_cap(&self) -> usize {
        self.capacity.saturating_sub(self.window_cap)
    }

    /// Puts `value` under `key` unless an existing value is to be kept.
    /// Returns what it did, the replaced value and what was evicted. The
    /// value stays in the shard once stored: it weighs no more than the
    /// shard's byte share, so making room never needs to evict it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn put(
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
            self.versions.bump(slot.stripe);
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
            stripe: self.versions.stripe(hash),
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

    pub(super) fn find(&self, hash: u64, key: &K) -> Option<&Idx> {
        let slots = &self.slots;
        self.table.find(hash, |&i| {
            slots[i as usize].as_ref().is_some_and(|s| s.key == *key)
        })
    }

    pub(super) fn slot(&self, idx: Idx) -> Option<&Slot<K, V>> {
        self.slots[idx as usize].as_ref()
    }

    /// While the window is over its share: its oldest entry goes to the
    /// main region if there is room, or if the sketch rates it above the
    /// main region's victim (which then leaves); else it leaves itself.
    /// Dead entries leave first.
    pub(super) fn admit_from_window(
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
    pub(super) fn shrink(
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

    pub(super) fn oldest_in_window(&mut self, keep: Idx) -> Option<Idx> {
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

    pub(super) fn promote(&mut self, idx: Idx) {
        if let Some(s) = self.slots[idx as usize].as_mut() {
            s.region = Region::Main;
            if std::mem::take(s.hits.get_mut()) == MAX_HITS {
                self.versions.bump(s.stripe);
            }
            self.window_len -= 1;
            self.main_len += 1;
        }
    }

    /// The main region's next victim: the clock hand's first entry with no
    /// hits left (each pass takes one away), or a dead one.
    pub(super) fn main_victim(&mut self, is_dead: &impl Fn(&V) -> bool) -> Option<Idx> {
        self.main_victim_by(is_dead, None, Idx::MAX)
    }

    pub(super) fn main_victim_by(
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
                // Fronts copy only entries whose chances are full, and
                // serve them without earning any back: out of them now.
                if *hits == MAX_HITS {
                    self.versions.bump(slot.stripe);
                }
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
    pub(super) fn take(
        &mut self,
        hasher: &foldhash::fast::RandomState,
        idx: Idx,
    ) -> Option<(K, V)> {
        let slot = self.slots[idx as usize].take()?;
        self.versions.bump(slot.stripe);
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
    pub(super) fn compact_window(&mut self) {
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
