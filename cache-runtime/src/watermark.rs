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

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::RwLock;

use crate::clock::Stamp;

/// The most watermarks kept before the oldest half is dropped.
const LIMIT: usize = 200_000;

/// A stable hash of a tag's or key's text (the same in every process).
pub(crate) fn tag_hash(tag: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(tag.as_bytes())
}

/// What this process knows of one tag or key.
#[derive(Debug, Clone, Copy, Default)]
struct Mark {
    /// When it was last invalidated (0: never, as far as known).
    at: Stamp,
    /// Whether its remote watermark has been read since the bus (re)connected:
    /// what this process knows of it stays current through the bus.
    known: bool,
    /// Whether it only records that a key was written anew elsewhere (not
    /// an invalidation): the writer wrote through to the remote layers, so
    /// forgetting it could only revive in-process copies.
    written_only: bool,
}

#[derive(Debug)]
pub(crate) struct Watermarks {
    /// Watermarks and "known" flags, in one map so that judging a remote
    /// entry takes one lock.
    map: RwLock<HashMap<u64, Mark>>,
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
    /// The latest arrival (local time) of a `written` mark: when such marks
    /// are forgotten, in-process entries filled up to then go.
    written_arrival: AtomicU64,
    /// Bumped by every [`reset`](Self::reset) (under the map's lock): a read
    /// of remote watermarks that started before a reset must not mark what
    /// it read as known, since an invalidation may have been missed since.
    generation: AtomicU64,
    /// Until when (real monotonic ms, see `clock::real_ms`) the in-process
    /// layer is trusted on the strength of the bus: every invalidation
    /// published before the last of this cache's own pings came back has
    /// been applied, and writers wait no longer than the lease for an
    /// acknowledgement. `u64::MAX`: no lease (no bus, or one that cannot
    /// confirm deliveries).
    lease_until: AtomicU64,
}

impl Watermarks {
    /// Watermarks whose in-process trust also needs a lease (see
    /// [`extend_lease`](Self::extend_lease)), none held yet.
    pub(crate) fn leased() -> Self {
        let w = Self::new(false);
        w.lease_until.store(0, Ordering::Release);
        w
    }

    /// Whether the lease (if any) has not run out. Without a lease, one
    /// load; the clock is read out of line.
    #[inline(always)]
    pub(crate) fn lease_live(&self) -> bool {
        let until = self.lease_until.load(Ordering::Acquire);
        until == u64::MAX || Self::before(until)
    }

    #[inline(never)]
    fn before(until: u64) -> bool {
        crate::clock::real_ms() < until
    }

    /// Gives the lease up (it is earned anew through a new subscription).
    pub(crate) fn drop_lease(&self) {
        let _ = self
            .lease_until
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |u| {
                (u != u64::MAX).then_some(0)
            });
    }

    /// Sets the lease's end outright (tests only).
    #[cfg(test)]
    pub(crate) fn set_lease(&self, until: u64) {
        self.lease_until.store(until, Ordering::Release);
    }

    /// Holds the lease until `until` (real monotonic ms), never shortening it.
    pub(crate) fn extend_lease(&self, until: u64) {
        self.lease_until.fetch_max(until, Ordering::AcqRel);
    }

    pub(crate) fn new(trusted: bool) -> Self {
        Watermarks {
            map: RwLock::new(HashMap::new()),
            floor: AtomicU64::new(0),
            local_floor: AtomicU64::new(0),
            epoch: AtomicU64::new(1),
            trusted: AtomicBool::new(trusted),
            generation: AtomicU64::new(0),
            written_arrival: AtomicU64::new(0),
            lease_until: AtomicU64::new(u64::MAX),
        }
    }

    /// The current reset generation (see [`learn`](Self::learn)).
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    #[inline]
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether the in-process layer is trusted now: the bus subscribed and
    /// its lease (if any) live.
    pub(crate) fn trusted(&self) -> bool {
        self.trusted.load(Ordering::Acquire) && self.lease_live()
    }

    /// Marks the in-process layer suspect (bus down) or trusted again.
    pub(crate) fn set_trusted(&self, on: bool) {
        self.trusted.store(on, Ordering::Release);
        self.bump();
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, HashMap<u64, Mark>> {
        self.map.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, HashMap<u64, Mark>> {
        self.map.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the map within its bound, forgetting the cheapest first:
    /// 1. marks that only say "known" (forgetting them costs a re-read);
    /// 2. marks that only say a key was written anew elsewhere: in-process
    ///    entries filled before the last of them arrived go (they refill
    ///    from the remote layers, which the writers wrote through to);
    /// 3. the older half of the watermarks, the floor rising past the newest
    ///    one dropped (entries before it in any layer are invalid).
    ///
    /// Each step stops once a quarter of the bound is free, so that trims
    /// are rare.
    fn trim(&self, map: &mut HashMap<u64, Mark>) {
        if map.len() <= LIMIT {
            return;
        }
        let room = |map: &HashMap<u64, Mark>| map.len() <= LIMIT / 4 * 3;
        map.retain(|_, m| m.at > 0);
        if room(map) {
            return;
        }
        let before = map.len();
        map.retain(|_, m| !m.written_only);
        if map.len() < before {
            let arrived = self.written_arrival.load(Ordering::Acquire);
            self.local_floor
                .fetch_max(arrived.saturating_add(1), Ordering::AcqRel);
            self.bump();
        }
        if room(map) {
            return;
        }
        let mut times: Vec<Stamp> = map.values().map(|m| m.at).collect();
        let mid = times.len() / 2;
        let (_, median, _) = times.select_nth_unstable(mid);
        let cut = *median;
        map.retain(|_, m| m.at > cut);
        // An entry created at `cut` was invalid by a dropped watermark equal
        // to it: the floor is past it.
        self.floor
            .fetch_max(cut.saturating_add(1), Ordering::AcqRel);
    }

    /// Records that `hash` was invalidated at `at` (keeping the later of
    /// two); the epoch moves only if the watermark rose.
    pub(crate) fn raise(&self, hash: u64, at: Stamp) {
        self.raise_as(hash, at, false);
    }

    /// Records that key `hash` was written anew elsewhere at `at` (arrived
    /// here at `now`): older copies are superseded, not invalidated, and
    /// the mark may be forgotten before invalidations (see `trim`).
    pub(crate) fn raise_written(&self, hash: u64, at: Stamp, now: Stamp) {
        self.written_arrival.fetch_max(now, Ordering::AcqRel);
        self.raise_as(hash, at, true);
    }

    fn raise_as(&self, hash: u64, at: Stamp, written: bool) {
        let mut map = self.write();
        let m = map.entry(hash).or_insert(Mark {
            at: 0,
            known: false,
            written_only: written,
        });
        // Once invalidated, a mark is never only a write.
        m.written_only &= written;
        if at <= m.at {
            return;
        }
        m.at = at;
        self.trim(&mut map);
        drop(map);
        self.bump();
    }

    /// The watermark known for `hash`.
    #[cfg(test)]
    pub(crate) fn get(&self, hash: u64) -> Option<Stamp> {
        self.read().get(&hash).map(|m| m.at).filter(|&at| at > 0)
    }

    fn valid_in(&self, map: &HashMap<u64, Mark>, created: Stamp, hashes: &[u64]) -> bool {
        created >= self.floor.load(Ordering::Acquire)
            && hashes
                .iter()
                .all(|h| map.get(h).is_none_or(|m| created > m.at))
    }

    /// Whether an entry created at `created` with tags `hashes` is valid by
    /// what this process knows.
    pub(crate) fn valid(&self, created: Stamp, hashes: &[u64]) -> bool {
        self.valid_in(&self.read(), created, hashes)
    }

    /// [`valid`](Self::valid), and which of the first `fetchable` hashes
    /// have a remote watermark not known here (bit `i` for hash `i`, bit 63
    /// for all from 63 on); with `listening` false every one of them is.
    /// One lock for both: the read path of every remote hit.
    pub(crate) fn judge(
        &self,
        created: Stamp,
        hashes: &[u64],
        fetchable: usize,
        listening: bool,
    ) -> (bool, u64) {
        let map = self.read();
        if !self.valid_in(&map, created, hashes) {
            return (false, 0);
        }
        let mut unknown = 0u64;
        for (i, h) in hashes.iter().take(fetchable).enumerate() {
            if !(listening && map.get(h).is_some_and(|m| m.known)) {
                unknown |= 1u64 << i.min(63);
            }
        }
        (true, unknown)
    }

    /// Whether an in-process entry is valid: as [`valid`](Self::valid), and
    /// got by this process (its load or read begun) after the bus last
    /// (re)connected: a load that spans a reconnect may have missed an
    /// invalidation that the local watermarks never heard of.
    pub(crate) fn valid_in_process(&self, filled: Stamp, created: Stamp, hashes: &[u64]) -> bool {
        filled >= self.local_floor.load(Ordering::Acquire) && self.valid(created, hashes)
    }

    /// A clear at `at`: every entry whose load began at or before it is
    /// invalid from now on, in every layer, whatever its tags (loads in
    /// flight when the clear came are never stored or served). A floor,
    /// like the one forgetting watermarks raises: it only moves forward.
    pub(crate) fn clear(&self, at: Stamp) {
        self.floor.fetch_max(at.saturating_add(1), Ordering::AcqRel);
        self.bump();
    }

    /// After a bus outage: what happened meanwhile is unknown, so in-process
    /// entries filled before `now` are invalid and remote watermarks are
    /// read afresh. (Watermarks already known stay: they only ever rise.)
    pub(crate) fn reset(&self, now: Stamp) {
        let mut map = self.write();
        map.retain(|_, m| {
            m.known = false;
            m.at > 0
        });
        self.generation.fetch_add(1, Ordering::AcqRel);
        drop(map);
        self.local_floor.fetch_max(now, Ordering::AcqRel);
        self.bump();
    }

    /// Whether the remote watermark of `hash` has been read (see [`Mark`]).
    #[cfg(test)]
    pub(crate) fn known(&self, hash: u64) -> bool {
        self.read().get(&hash).is_some_and(|m| m.known)
    }

    /// Records what was read of remote watermarks: each hash with its
    /// watermark if it had one. `known_since` is the reset generation read
    /// before the read began, when the bus keeps what was read current: the
    /// hashes are then marked known, unless the bus reconnected meanwhile.
    pub(crate) fn learn(
        &self,
        read: impl IntoIterator<Item = (u64, Option<Stamp>)>,
        known_since: Option<u64>,
    ) {
        let mut map = self.write();
        let known = known_since.is_some_and(|g| g == self.generation.load(Ordering::Acquire));
        let mut rose = false;
        for (h, at) in read {
            let m = map.entry(h).or_default();
            if let Some(at) = at.filter(|&at| at > m.at) {
                m.at = at;
                rose = true;
            }
            m.known |= known;
        }
        self.trim(&mut map);
        drop(map);
        if rose {
            self.bump();
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.read().len()
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
    fn remote_reads_are_learnt_and_known_until_the_bus_reconnects() {
        let w = Watermarks::new(true);
        let (a, b, key) = (tag_hash("user:1"), tag_hash("org:2"), tag_hash("urn"));
        let (valid, unknown) = w.judge(100, &[a, b, key], 2, true);
        assert!(valid);
        assert_eq!(unknown, 0b11, "neither tag's remote watermark is known yet");
        let e0 = w.epoch();
        w.learn([(a, Some(50)), (b, None)], Some(w.generation()));
        assert!(w.epoch() > e0, "a watermark rose");
        assert!(w.known(a) && w.known(b));
        assert_eq!(w.judge(100, &[a, b, key], 2, true), (true, 0));
        assert_eq!(
            w.judge(100, &[a, b, key], 2, false),
            (true, 0b11),
            "without a bus, nothing stays known"
        );
        assert_eq!(
            w.judge(40, &[a, b, key], 2, true),
            (false, 0),
            "older than a's watermark"
        );
        let e1 = w.epoch();
        w.learn([(a, Some(20))], Some(w.generation()));
        assert_eq!(w.get(a), Some(50), "a watermark never moves back");
        assert_eq!(w.epoch(), e1, "nothing changed: the epoch stays");
        w.reset(1_000);
        assert!(!w.known(a) && !w.known(b), "after a reconnect, read afresh");
        assert_eq!(w.get(a), Some(50), "what was learnt stays");
        assert_eq!(w.len(), 1, "marks that only said 'known' are gone");
        // A read that began before a reset learns watermarks, not "known".
        let before = w.generation();
        w.reset(2_000);
        w.learn([(b, Some(60))], Some(before));
        assert!(!w.known(b));
        assert_eq!(w.get(b), Some(60));
    }

    #[test]
    fn written_marks_are_forgotten_before_invalidations_and_only_in_process() {
        let w = Watermarks::new(true);
        let tag = u64::MAX;
        w.raise(tag, 500);
        for h in 0..LIMIT as u64 {
            w.raise_written(h, 1_000 + h, 9_000_000);
        }
        assert!(w.len() <= LIMIT);
        assert_eq!(w.get(tag), Some(500), "an invalidation is kept");
        assert_eq!(
            w.floor.load(Ordering::Acquire),
            0,
            "forgetting writes invalidates nothing in remote layers"
        );
        assert!(
            !w.valid_in_process(9_000_000, 0, &[]),
            "in-process entries filled before the last forgotten write arrived go"
        );
        assert!(w.valid_in_process(9_000_001, 0, &[]));
        assert!(!w.valid(400, &[tag]));
        // A key invalidated and also written stays an invalidation.
        w.raise(7, 2_000_000);
        w.raise_written(7, 3_000_000, 9_000_002);
        assert!(!w.read().get(&7).unwrap().written_only);
    }

    #[test]
    fn a_clear_rules_out_every_entry_loaded_before_it() {
        let w = Watermarks::new(true);
        let e0 = w.epoch();
        w.clear(5_000);
        assert!(w.epoch() > e0, "held entries are judged again");
        assert!(!w.valid(4_999, &[]), "whatever its tags");
        assert!(!w.valid(5_000, &[]), "loaded at the clear: covered");
        assert!(w.valid(5_001, &[tag_hash("user:1")]));
        assert!(!w.valid_in_process(9_000, 5_000, &[]), "in process too");
        w.clear(1_000);
        assert!(!w.valid(5_000, &[]), "the floor never moves back");
    }

    #[test]
    fn known_only_marks_never_raise_the_floor() {
        let w = Watermarks::new(true);
        w.learn((0..LIMIT as u64 / 2).map(|h| (h, Some(1_000 + h))), None);
        w.learn((LIMIT as u64..2 * LIMIT as u64).map(|h| (h, None)), Some(0));
        assert!(w.len() <= LIMIT);
        assert!(
            w.valid(1_000, &[u64::MAX]),
            "forgetting 'known' marks invalidated nothing"
        );
        assert_eq!(w.get(5), Some(1_005), "and kept every watermark");
    }

    #[test]
    fn forgetting_never_revives_an_entry() {
        let w = Watermarks::new(true);
        for i in 0..(LIMIT as u64 + 10) {
            w.raise(i, 1_000 + i);
        }
        assert!(w.len() <= LIMIT);
        // Tag 0 was dropped; an entry created before its watermark, or in
        // its very millisecond, is still invalid, through the floor.
        assert!(!w.valid(1_000, &[0]));
        let cut = w.floor.load(Ordering::Acquire) - 1;
        assert!(
            !w.valid(cut, &[]),
            "created at the newest dropped watermark"
        );
        assert!(w.valid(cut + 1, &[]));
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
