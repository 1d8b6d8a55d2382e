//! What a layer stores for one key, and how its age is judged.

use std::time::Duration;

use crate::clock::{ms_of_stamp, saturating_ms, stamp_of_ms, Millis, Stamp};

/// Where an entry stands at a given moment.
///
/// # Examples
///
/// ```
/// use cachewright::{Entry, Freshness};
/// use std::time::Duration;
///
/// let e = Entry::new(1u8, 0, Some(Duration::from_secs(1)), Duration::from_secs(1));
/// assert_eq!(e.freshness(500), Freshness::Fresh);
/// assert_eq!(e.freshness(1_500), Freshness::Stale);
/// assert_eq!(e.freshness(2_000), Freshness::Expired);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Inside its TTL: served as it is.
    Fresh,
    /// Past its TTL but inside its stale-while-revalidate window: served
    /// while one background refresh runs.
    Stale,
    /// Past both: treated as absent.
    Expired,
}

/// The tags of an entry: shared, since every entry of one call's key has
/// the same ones.
///
/// # Examples
///
/// ```
/// use cachewright::Tags;
///
/// let tags: Tags = vec![cachewright::tag("org", &5).into_boxed_str()].into();
/// assert_eq!(&*tags[0], "org:5");
/// ```
pub type Tags = std::sync::Arc<[Box<str>]>;

/// `base` and, after them, those of `extra` it does not hold already.
pub(crate) fn with_tags(base: &Tags, extra: Vec<String>) -> Tags {
    if extra.is_empty() {
        return base.clone();
    }
    let mut all: Vec<Box<str>> = base.to_vec();
    for t in extra {
        if !all.iter().any(|have| **have == *t) {
            all.push(t.into_boxed_str());
        }
    }
    Tags::from(all)
}

/// One cached value and its lifetimes.
///
/// Deadlines are Unix milliseconds of the cache's
/// [`Clock::now_ms`](crate::Clock::now_ms), counted from when the entry was
/// stored (`u64::MAX` means "never"); the entry's [`Stamp`] says when its
/// load began, in microseconds of the wall clock, and only orders it against
/// invalidations: a step of the wall clock moves stamps, never lifetimes.
///
/// # Examples
///
/// ```
/// use cachewright::{Entry, Freshness};
/// use std::time::Duration;
///
/// let e = Entry::new("v", 1_000, Some(Duration::from_secs(10)), Duration::from_secs(5));
/// assert_eq!(e.freshness(5_000), Freshness::Fresh);
/// assert_eq!(e.freshness(12_000), Freshness::Stale);
/// assert_eq!(e.freshness(16_000), Freshness::Expired);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<V> {
    /// The cached value.
    pub value: V,
    /// When its load began reading the source ([`Clock::stamp`](crate::Clock::stamp)):
    /// an invalidation stamped at or after it covers it.
    pub stamp: Stamp,
    /// Until when it is fresh.
    pub fresh_until_ms: Millis,
    /// Until when it may be served stale (at least `fresh_until_ms`).
    pub stale_until_ms: Millis,
    /// Whether it records an absence (a cached `None`).
    pub negative: bool,
    /// Its tags; the first is always the entity of its key. Shared: every
    /// entry of one call's key holds the same ones.
    pub tags: Tags,
}

impl<V> Entry<V> {
    /// An entry created at `now_ms`, fresh for `ttl` (forever when `None`)
    /// and servable stale for `swr` after that; stamped with the start of
    /// `now_ms`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::Entry;
    /// use std::time::Duration;
    ///
    /// let e = Entry::new("v", 1_000, Some(Duration::from_secs(10)), Duration::from_secs(5));
    /// assert_eq!(e.fresh_until_ms, 11_000);
    /// assert_eq!(e.stale_until_ms, 16_000);
    /// assert!(!e.negative);
    /// assert_eq!(Entry::new("v", 0, None, Duration::ZERO).fresh_until_ms, u64::MAX, "no TTL: forever");
    /// ```
    pub fn new(value: V, now_ms: Millis, ttl: Option<Duration>, swr: Duration) -> Self {
        Self::loaded(value, stamp_of_ms(now_ms), now_ms, ttl, swr)
    }

    /// An entry whose load began at `stamp`, stored at `now_ms`
    /// ([`Clock::now_ms`](crate::Clock::now_ms)): its lifetimes count from
    /// `now_ms`, on the clock they are judged with; the stamp, of the wall
    /// clock, only orders it against invalidations.
    pub(crate) fn loaded(
        value: V,
        stamp: Stamp,
        now_ms: Millis,
        ttl: Option<Duration>,
        swr: Duration,
    ) -> Self {
        let fresh_until_ms = ttl.map_or(u64::MAX, |t| now_ms.saturating_add(saturating_ms(t)));
        Entry {
            value,
            stamp,
            fresh_until_ms,
            stale_until_ms: fresh_until_ms.saturating_add(saturating_ms(swr)),
            negative: false,
            tags: Tags::default(),
        }
    }

    /// Where the entry stands at `now_ms`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Entry, Freshness};
    /// use std::time::Duration;
    ///
    /// let e = Entry::new((), 0, Some(Duration::from_secs(10)), Duration::ZERO);
    /// assert_eq!(e.freshness(9_999), Freshness::Fresh);
    /// assert_eq!(e.freshness(10_000), Freshness::Expired, "no stale window");
    /// ```
    #[inline]
    pub fn freshness(&self, now_ms: Millis) -> Freshness {
        if now_ms < self.fresh_until_ms {
            Freshness::Fresh
        } else if now_ms < self.stale_until_ms {
            Freshness::Stale
        } else {
            Freshness::Expired
        }
    }

    /// Whether the entry is inside its TTL at `now_ms`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::Entry;
    /// use std::time::Duration;
    ///
    /// let e = Entry::new((), 0, Some(Duration::from_secs(1)), Duration::from_secs(60));
    /// assert!(e.is_fresh(999));
    /// assert!(!e.is_fresh(1_000), "stale, not fresh");
    /// ```
    pub fn is_fresh(&self, now_ms: Millis) -> bool {
        self.freshness(now_ms) == Freshness::Fresh
    }

    /// How old the entry is at `now_ms`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::Entry;
    /// use std::time::Duration;
    ///
    /// let e = Entry::new((), 1_000, None, Duration::ZERO);
    /// assert_eq!(e.age(3_500), Duration::from_millis(2_500));
    /// ```
    pub fn age(&self, now_ms: Millis) -> Duration {
        Duration::from_millis(now_ms.saturating_sub(ms_of_stamp(self.stamp)))
    }

    /// Whether the entry can no longer be served at `now_ms`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::Entry;
    /// use std::time::Duration;
    ///
    /// let e = Entry::new((), 0, Some(Duration::from_secs(1)), Duration::from_secs(1));
    /// assert!(!e.is_expired(1_500), "stale can still be served");
    /// assert!(e.is_expired(2_000));
    /// ```
    #[inline]
    pub fn is_expired(&self, now_ms: Millis) -> bool {
        now_ms >= self.stale_until_ms
    }

    /// The same entry with its value mapped by `f`.
    pub(crate) fn map<U>(self, f: impl FnOnce(V) -> U) -> Entry<U> {
        Entry {
            value: f(self.value),
            stamp: self.stamp,
            fresh_until_ms: self.fresh_until_ms,
            stale_until_ms: self.stale_until_ms,
            negative: self.negative,
            tags: self.tags,
        }
    }
}

/// An entry as the in-process layer holds it: with the hashes of its tags
/// (and of its own key), the URN it was stored under, and the invalidation
/// epoch in which it was last found valid. While the epoch has not moved, a
/// hit checks nothing else.
#[derive(Debug)]
pub(crate) struct Held<V> {
    pub(crate) entry: Entry<V>,
    /// Since when this process holds its value: the start of its load, or
    /// of the read that found it (see `Watermarks::valid_in_process`).
    filled: Stamp,
    checked: std::sync::atomic::AtomicU64,
    hashes: Box<[u64]>,
    /// The URN it was stored under, whole: a `#[cached]` use case's L1 is
    /// keyed by the call's arguments, and a lookup by URN (the direct API
    /// reading a use case's entry) must compare the URN itself, never only
    /// its hash.
    urn: Box<str>,
}

impl<V> Held<V> {
    /// Holds `entry` stored under `urn`, got at `filled`, valid as of `epoch`.
    pub(crate) fn new(entry: Entry<V>, urn: &str, epoch: u64, filled: Stamp) -> Self {
        let hashes = entry
            .tags
            .iter()
            .map(|t| crate::watermark::tag_hash(t))
            .chain(std::iter::once(crate::watermark::tag_hash(urn)))
            .collect();
        Held {
            entry,
            filled,
            checked: std::sync::atomic::AtomicU64::new(epoch),
            hashes,
            urn: urn.into(),
        }
    }

    /// Whether it was stored under `urn`, whose hash is `urn_hash`: the
    /// hash (kept last among its hashes) only rules most entries out
    /// cheaply; a match is decided by the URN itself, so that two URNs of
    /// one hash never hand out each other's value.
    pub(crate) fn stored_under(&self, urn: &str, urn_hash: u64) -> bool {
        self.hashes.last() == Some(&urn_hash) && *self.urn == *urn
    }

    /// Whether it may be put in process memory now: not invalidated yet,
    /// and the layer trusted.
    pub(crate) fn admissible(&self, marks: &crate::watermark::Watermarks) -> bool {
        marks.trusted() && marks.valid_in_process(self.filled, self.entry.stamp, &self.hashes)
    }

    /// Whether no invalidation known to `marks` covers this entry. One
    /// atomic load while nothing has changed since the last check.
    #[inline]
    pub(crate) fn valid(&self, marks: &crate::watermark::Watermarks) -> bool {
        // The lease first: an invalidation's epoch bump comes before the
        // ping that renews the lease after it, so a renewed lease seen here
        // means the bump is seen too.
        let live = marks.lease_live();
        let epoch = marks.epoch();
        if live && self.checked.load(std::sync::atomic::Ordering::Relaxed) == epoch {
            return true;
        }
        self.revalidate(marks, epoch)
    }

    #[cold]
    fn revalidate(&self, marks: &crate::watermark::Watermarks, epoch: u64) -> bool {
        if !self.admissible(marks) {
            return false;
        }
        self.checked
            .store(epoch, std::sync::atomic::Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watermark::tag_hash;

    #[test]
    fn an_entry_is_found_by_its_urn_never_by_a_hash_alone() {
        let entry = Entry::new(7u8, 0, None, Duration::ZERO);
        let mut held = Held::new(entry, "urn:t:v1:user:1#f", 1, 0);
        assert!(held.stored_under("urn:t:v1:user:1#f", tag_hash("urn:t:v1:user:1#f")));
        assert!(!held.stored_under("urn:t:v1:user:2#f", tag_hash("urn:t:v1:user:2#f")));
        // A collision, forced: the entry's URN hash is another URN's.
        *held.hashes.last_mut().unwrap() = tag_hash("urn:t:v1:user:2#f");
        assert!(
            !held.stored_under("urn:t:v1:user:2#f", tag_hash("urn:t:v1:user:2#f")),
            "the same hash, another URN: not this entry"
        );
    }
}
