//! The frequency sketch behind L1's admission: how often each key was asked
//! for lately, hits and misses alike, in four bits per counter.
//!
//! A count-min sketch laid out as Caffeine's is: a key's four counters sit in
//! one 64-byte block, so recording or estimating one touches one cache line.
//! Counters saturate at 15, so recording a hit on a hot key (whose counters
//! are all saturated) reads that line and writes nothing. Updates are
//! conservative (only the counters at the key's minimum grow). Every
//! `sample` additions all counters are halved, so the sketch forgets old
//! popularity.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

/// Words (of sixteen counters) per block: one 64-byte cache line.
const BLOCK: usize = 8;

/// Additions per entry of capacity between two halvings. Caffeine uses ten;
/// with conservative update the counters stay apart longer, and forty
/// measured best on the Zipf traces of `benches/hit_ratio.rs` (a
/// stationary popularity is learnt better over a longer sample; the
/// window's hill climber covers shifting traffic).
const SAMPLE_PER_ENTRY: usize = 40;

/// Four-bit counters per entry of capacity (six bytes).
const COUNTERS_PER_ENTRY: usize = 24;

pub(super) struct Sketch {
    capacity: usize,
    words: Box<[AtomicU64]>,
    /// How many blocks (of [`BLOCK`] words).
    blocks: u64,
    additions: AtomicU32,
    sample: u32,
}

impl Sketch {
    /// A sketch for a region holding `capacity` entries:
    /// [`COUNTERS_PER_ENTRY`] counters per entry, halved after
    /// [`SAMPLE_PER_ENTRY`] additions per entry.
    pub(super) fn new(capacity: usize) -> Self {
        let blocks = (capacity.max(1) * COUNTERS_PER_ENTRY).div_ceil(16 * BLOCK);
        let words = blocks * BLOCK;
        Sketch {
            capacity,
            words: (0..words).map(|_| AtomicU64::new(0)).collect(),
            blocks: blocks as u64,
            additions: AtomicU32::new(0),
            sample: u32::try_from(capacity.max(1).saturating_mul(SAMPLE_PER_ENTRY))
                .unwrap_or(u32::MAX),
        }
    }

    /// The capacity it was sized for.
    pub(super) fn capacity(&self) -> usize {
        self.capacity
    }

    /// The (word, shift) of each of the key's four counters.
    #[inline]
    fn counters(&self, hash: u64) -> [(usize, u32); 4] {
        // Spread the hash again: the store uses its low and top bits.
        let h = hash.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        // The hash's top half, scaled to the number of blocks.
        let block = (((h >> 32) * self.blocks) >> 32) as usize * BLOCK;
        let mut out = [(0, 0); 4];
        for (i, o) in out.iter_mut().enumerate() {
            // Counter i lives in words 2i or 2i+1 of the block: four
            // distinct words, so the four never share a counter.
            let word = block + 2 * i + ((h >> i) & 1) as usize;
            let nibble = ((h >> (8 + 4 * i)) & 15) as u32;
            *o = (word, nibble * 4);
        }
        out
    }

    /// Counts one request for the key. Writes nothing once its counters
    /// are all saturated.
    #[inline]
    pub(super) fn record(&self, hash: u64) {
        let mut added = false;
        let cs = self.counters(hash);
        // Conservative update: only the counters at the minimum (the
        // estimate) grow, so keys sharing a counter inflate each other less.
        let min = cs
            .iter()
            .map(|&(w, sh)| (self.words[w].load(Relaxed) >> sh) & 15)
            .min()
            .unwrap_or(0);
        if min == 15 {
            return;
        }
        for (word, shift) in cs {
            if (self.words[word].load(Relaxed) >> shift) & 15 != min {
                continue;
            }
            let w = &self.words[word];
            if (w.load(Relaxed) >> shift) & 15 == 15 {
                continue;
            }
            added |= w
                .fetch_update(Relaxed, Relaxed, |c| {
                    ((c >> shift) & 15 < 15).then_some(c + (1 << shift))
                })
                .is_ok();
        }
        if added {
            self.additions.fetch_add(1, Relaxed);
        }
    }

    /// Whether enough was recorded that it is time to [`age`](Self::age).
    #[inline]
    pub(super) fn due(&self) -> bool {
        self.additions.load(Relaxed) >= self.sample
    }

    /// How often the key was asked for lately (0..=15).
    pub(super) fn estimate(&self, hash: u64) -> u8 {
        self.counters(hash)
            .iter()
            .map(|&(word, shift)| ((self.words[word].load(Relaxed) >> shift) & 15) as u8)
            .min()
            .unwrap_or(0)
    }

    /// Halves every counter (under the shard's write lock).
    pub(super) fn age(&self) {
        for w in self.words.iter() {
            let c = w.load(Relaxed);
            w.store((c >> 1) & 0x7777_7777_7777_7777, Relaxed);
        }
        self.additions
            .store(self.additions.load(Relaxed) / 2, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_saturate_and_age() {
        let s = Sketch::new(1000);
        let h = 0x1234_5678_9abc_def0;
        assert_eq!(s.estimate(h), 0);
        for _ in 0..5 {
            s.record(h);
        }
        assert_eq!(s.estimate(h), 5);
        for _ in 0..40 {
            s.record(h);
        }
        assert_eq!(s.estimate(h), 15, "saturates at 15");
        s.age();
        assert_eq!(s.estimate(h), 7);
        assert!(
            s.estimate(h ^ 0xffff_0000_0000) <= 7,
            "another key, at most what collides"
        );
    }

    #[test]
    fn becomes_due_after_its_sample_of_additions() {
        let s = Sketch::new(100);
        let mut records = 0u64;
        while !s.due() && records < 20_000 {
            s.record(records.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            records += 1;
        }
        assert!(s.due(), "due within 10 000 records");
        assert!(
            records >= 1000,
            "one addition per record at most: {records}"
        );
        s.age();
        assert!(!s.due(), "aging halves the count");
    }
}
