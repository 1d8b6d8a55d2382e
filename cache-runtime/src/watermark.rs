//! Tag watermarks: `tag -> invalidated_at`, and the epoch that lets a hot hit
//! skip every tag check while nothing has been invalidated.
//!
//! An entry is valid only if it was created after the watermark of each of
//! its tags (its entity, its explicit tags, and its own key). Invalidating a
//! tag is one write, whatever the number of entries behind it.
//!
//! Tags and keys are known here by a 64-bit hash of their text: a collision
//! can only make an entry look invalidated (an extra miss), never valid.
//! The map is bounded: when it grows past its limit the oldest half goes and
//! a *floor* rises to the newest watermark dropped; entries created before the
//! floor count as invalid, so forgetting a watermark never revives an entry.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;

use crate::clock::Millis;

/// The most watermarks kept before the oldest half is dropped.
const LIMIT: usize = 200_000;

/// A stable hash of a tag's or key's text (the same in every process).
pub(crate) fn tag_hash(tag: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(tag.as_bytes())
}

#[derive(Debug)]
pub(crate) struct Watermarks {
    map: RwLock<HashMap<u64, Millis>>,
    /// Raised when watermarks are forgotten (the map is bounded): entries
    /// created before it, in any layer, are invalid.
    floor: AtomicU64,
    /// Raised when the bus (re)connects: in-process entries created before
    /// it may have missed invalidations. Remote entries are checked against
    /// the remote watermarks instead.
    local_floor: AtomicU64,
    /// Bumped by every change; entries remember the epoch they were last
    /// found valid in, and skip their checks while it has not moved.
    epoch: AtomicU64,
    /// Whether this process's in-process layer can be trusted: false while
    /// the invalidation bus is disconnected (it cannot know what it missed).
    trusted: AtomicBool,
    /// Tags whose remote watermark this process has read since the bus
    /// (re)connected: what it knows of them stays current through the bus.
    known: RwLock<HashSet<u64>>,
}

impl Watermarks {
    pub(crate) fn new(trusted: bool) -> Self {
        Watermarks {
            map: RwLock::new(HashMap::new()),
            floor: AtomicU64::new(0),
            local_floor: AtomicU64::new(0),
            epoch: AtomicU64::new(1),
            trusted: AtomicBool::new(trusted),
            known: RwLock::new(HashSet::new()),
        }
    }

    #[inline]
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn trusted(&self) -> bool {
        self.trusted.load(Ordering::Acquire)
    }

    /// Marks the in-process layer suspect (bus down) or trusted again.
    pub(crate) fn set_trusted(&self, on: bool) {
        self.trusted.store(on, Ordering::Release);
        self.bump();
    }

    /// Records that `hash` was invalidated at `at` (keeping the later of two).
    pub(crate) fn raise(&self, hash: u64, at: Millis) {
        let mut map = self.map.write().unwrap_or_else(|e| e.into_inner());
        let w = map.entry(hash).or_insert(0);
        if at > *w {
            *w = at;
        }
        if map.len() > LIMIT {
            let mut times: Vec<Millis> = map.values().copied().collect();
            let mid = times.len() / 2;
            let (_, median, _) = times.select_nth_unstable(mid);
            let cut = *median;
            map.retain(|_, t| *t > cut);
            self.floor.fetch_max(cut, Ordering::AcqRel);
        }
        drop(map);
        self.bump();
    }

    /// The watermark known for `hash`.
    pub(crate) fn get(&self, hash: u64) -> Option<Millis> {
        self.map
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(&hash)
            .copied()
    }

    /// Whether an entry created at `created` with tags `hashes` is valid by
    /// what this process knows.
    pub(crate) fn valid(&self, created: Millis, hashes: &[u64]) -> bool {
        if created < self.floor.load(Ordering::Acquire) {
            return false;
        }
        let map = self.map.read().unwrap_or_else(|e| e.into_inner());
        hashes
            .iter()
            .all(|h| map.get(h).is_none_or(|&w| created > w))
    }

    /// Whether an in-process entry is valid: as [`valid`](Self::valid), and
    /// put in process memory after the bus last (re)connected.
    pub(crate) fn valid_in_process(&self, filled: Millis, created: Millis, hashes: &[u64]) -> bool {
        filled >= self.local_floor.load(Ordering::Acquire) && self.valid(created, hashes)
    }

    /// After a bus outage: what happened meanwhile is unknown, so in-process
    /// entries from before `now` are invalid and remote watermarks are read
    /// afresh. (Watermarks already known stay: they only ever rise.)
    pub(crate) fn reset(&self, now: Millis) {
        self.known
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        self.local_floor.fetch_max(now, Ordering::AcqRel);
        self.bump();
    }

    /// Whether the remote watermark of `hash` has been read (see `known`).
    pub(crate) fn known(&self, hash: u64) -> bool {
        self.known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains(&hash)
    }

    /// Remembers that the remote watermark of `hash` has been read.
    pub(crate) fn know(&self, hash: u64) {
        let mut known = self.known.write().unwrap_or_else(|e| e.into_inner());
        if known.len() >= LIMIT {
            known.clear();
        }
        known.insert(hash);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.map.read().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_before_a_watermark_are_invalid() {
        let w = Watermarks::new(true);
        let (a, b) = (tag_hash("user:1"), tag_hash("org:2"));
        let e0 = w.epoch();
        assert!(w.valid(100, &[a, b]));
        w.raise(a, 150);
        assert!(w.epoch() > e0, "a change moves the epoch");
        assert!(!w.valid(100, &[a, b]));
        assert!(!w.valid(150, &[a]), "created at the watermark: invalid");
        assert!(w.valid(151, &[a, b]));
        w.raise(a, 120);
        assert_eq!(w.get(a), Some(150), "a watermark never moves back");
    }

    #[test]
    fn forgetting_never_revives_an_entry() {
        let w = Watermarks::new(true);
        for i in 0..(LIMIT as u64 + 10) {
            w.raise(i, 1_000 + i);
        }
        assert!(w.len() <= LIMIT);
        // Tag 0 was dropped; an entry created before its watermark is still
        // invalid, through the floor.
        assert!(!w.valid(1_000, &[0]));
        assert!(w.valid(10_000_000, &[0]));
        w.reset(20_000_000);
        assert!(
            !w.valid_in_process(10_000_000, 10_000_000, &[]),
            "after a reset, in-process entries from before are invalid"
        );
        assert!(
            w.valid_in_process(20_000_000, 10_000_000, &[]),
            "entries filled after it are judged by watermarks"
        );
        assert!(
            w.valid(10_000_000, &[]),
            "remote ones are judged by watermarks"
        );
    }
}
