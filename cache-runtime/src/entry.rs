//! What a layer stores for one key, and how its age is judged.

use std::fmt;
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

/// Where an entry fresh until `fresh` and servable until `stale` stands.
#[inline]
fn freshness(now_ms: Millis, fresh: Millis, stale: Millis) -> Freshness {
    if now_ms < fresh {
        Freshness::Fresh
    } else if now_ms < stale {
        Freshness::Stale
    } else {
        Freshness::Expired
    }
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
        freshness(now_ms, self.fresh_until_ms, self.stale_until_ms)
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

/// A borrowed view of an entry, whether a public [`Entry`] or one held in
/// process memory (whose tags are rebuilt only when asked for).
pub(crate) struct EntryRef<'a, V> {
    pub(crate) value: &'a V,
    pub(crate) stamp: Stamp,
    pub(crate) fresh_until_ms: Millis,
    pub(crate) stale_until_ms: Millis,
    pub(crate) negative: bool,
    tags: TagsRef<'a>,
}

enum TagsRef<'a> {
    Whole(&'a Tags),
    /// Only the entity tag, which the reader knows (the entity of the key).
    Entity(&'a str),
}

impl<V> EntryRef<'_, V> {
    /// Where the entry stands at `now_ms`.
    #[inline]
    pub(crate) fn freshness(&self, now_ms: Millis) -> Freshness {
        freshness(now_ms, self.fresh_until_ms, self.stale_until_ms)
    }

    /// Its tags (allocated, for an entry held in process).
    pub(crate) fn tags(&self) -> Tags {
        match self.tags {
            TagsRef::Whole(t) => t.clone(),
            TagsRef::Entity(e) => Tags::from(vec![Box::<str>::from(e)]),
        }
    }

    /// An owned copy.
    pub(crate) fn to_entry(&self) -> Entry<V>
    where
        V: Clone,
    {
        Entry {
            value: self.value.clone(),
            stamp: self.stamp,
            fresh_until_ms: self.fresh_until_ms,
            stale_until_ms: self.stale_until_ms,
            negative: self.negative,
            tags: self.tags(),
        }
    }
}

impl<V> Entry<V> {
    /// A borrowed view of it.
    pub(crate) fn view(&self) -> EntryRef<'_, V> {
        EntryRef {
            value: &self.value,
            stamp: self.stamp,
            fresh_until_ms: self.fresh_until_ms,
            stale_until_ms: self.stale_until_ms,
            negative: self.negative,
            tags: TagsRef::Whole(&self.tags),
        }
    }
}

/// An entry as the in-process layer holds it, kept small (56 bytes plus the
/// value for an entry whose only tag is its entity, with no allocation of
/// its own): its deadlines, the hashes of its entity tag and of its URN,
/// and the invalidation epoch in which it was last found valid. While the epoch has not moved, a hit checks
/// nothing else. Tags beyond the entity's are kept aside, with their hashes.
pub(crate) struct Held<V> {
    value: V,
    stamp: Stamp,
    fresh_until_ms: Millis,
    checked: std::sync::atomic::AtomicU64,
    /// Hashes of its entity tag and of its URN (when `extra` is `None`).
    hashes: [u64; 2],
    extra: Option<Box<Extra>>,
    /// Milliseconds (rounded down) from `stamp` to when this process got
    /// the value, which may come first when the stamp is another process's
    /// (see `filled_after`): about 24 days either way.
    filled_after: i32,
    /// Milliseconds of stale window after `fresh_until_ms` (saturating: a
    /// shorter window is only safer), in its top bit whether the entry
    /// records an absence, and in the next whether it is a fail-safe value
    /// served again for its throttle: then it has no stale window, and the
    /// milliseconds are how long after `fresh_until_ms` its fail-safe
    /// horizon ends.
    stale_and_negative: u32,
}

impl<V: fmt::Debug> fmt::Debug for Held<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Held")
            .field("value", &self.value)
            .field("stamp", &self.stamp)
            .finish_non_exhaustive()
    }
}

/// An entry's tags beyond its entity tag: all of them, and the hashes of
/// all of them and of its URN.
struct Extra {
    tags: Tags,
    hashes: Box<[u64]>,
}

const NEGATIVE: u32 = 1 << 31;
const THROTTLED: u32 = 1 << 30;
const SPAN: u32 = THROTTLED - 1;

/// `filled - stamp` in whole milliseconds, rounded down, as
/// [`Held::filled_after`] keeps it: a fill too late to count is kept as
/// earlier (judged more strictly), one too early as "at the start of time"
/// (`i32::MIN`); never as later than it was.
fn filled_after(stamp: Stamp, filled: Stamp) -> i32 {
    let d = (i128::from(filled) - i128::from(stamp)).div_euclid(1000);
    if d > i128::from(i32::MAX) {
        i32::MAX
    } else if d <= i128::from(i32::MIN) {
        i32::MIN
    } else {
        d as i32
    }
}

impl<V> Held<V> {
    /// Holds `entry` stored under `urn` (whose entity tag is `entity`), got
    /// at `filled`, valid as of `epoch`.
    pub(crate) fn new(entry: Entry<V>, urn: &str, entity: &str, epoch: u64, filled: Stamp) -> Self {
        use crate::watermark::tag_hash;
        let urn_hash = tag_hash(urn);
        let (hashes, extra) = match &*entry.tags {
            [only] if **only == *entity => ([tag_hash(only), urn_hash], None),
            tags => {
                let hashes = tags
                    .iter()
                    .map(|t| tag_hash(t))
                    .chain(std::iter::once(urn_hash))
                    .collect();
                let extra = Extra {
                    tags: entry.tags.clone(),
                    hashes,
                };
                ([0, urn_hash], Some(Box::new(extra)))
            }
        };
        let stale = entry.stale_until_ms.saturating_sub(entry.fresh_until_ms);
        let stale = u32::try_from(stale).unwrap_or(u32::MAX).min(SPAN);
        Held {
            value: entry.value,
            stamp: entry.stamp,
            fresh_until_ms: entry.fresh_until_ms,
            checked: std::sync::atomic::AtomicU64::new(epoch),
            hashes,
            extra,
            filled_after: filled_after(entry.stamp, filled),
            stale_and_negative: stale | if entry.negative { NEGATIVE } else { 0 },
        }
    }

    /// The value.
    #[inline]
    pub(crate) fn value(&self) -> &V {
        &self.value
    }

    /// When its load began.
    pub(crate) fn stamp(&self) -> Stamp {
        self.stamp
    }

    /// When its load began, in the clock's milliseconds.
    pub(crate) fn loaded_ms(&self) -> Millis {
        crate::clock::ms_of_stamp(self.stamp)
    }

    /// Until when it is fresh.
    #[inline]
    pub(crate) fn fresh_until_ms(&self) -> Millis {
        self.fresh_until_ms
    }

    /// Whether it records an absence.
    #[inline]
    pub(crate) fn negative(&self) -> bool {
        self.stale_and_negative & NEGATIVE != 0
    }

    /// A fail-safe value served again until `entry.fresh_until_ms` (its
    /// throttle), with no stale window, that fail-safe may serve until
    /// `horizon_ms` (its first expiry's horizon, which no throttle moves).
    pub(crate) fn throttled(
        entry: Entry<V>,
        horizon_ms: Millis,
        urn: &str,
        entity: &str,
        epoch: u64,
        filled: Stamp,
    ) -> Self {
        let span = horizon_ms.saturating_sub(entry.fresh_until_ms);
        let mut held = Held::new(entry, urn, entity, epoch, filled);
        // Saturating: a horizon beyond 12 days is cut, never lengthened.
        let span = u32::try_from(span).unwrap_or(u32::MAX).min(SPAN);
        held.stale_and_negative = (held.stale_and_negative & NEGATIVE) | THROTTLED | span;
        held
    }

    #[inline]
    fn stale_until_ms(&self) -> Millis {
        if self.stale_and_negative & THROTTLED != 0 {
            return self.fresh_until_ms;
        }
        self.fresh_until_ms
            .saturating_add(u64::from(self.stale_and_negative & SPAN))
    }

    /// Whether it is a fail-safe value served again for its throttle (never
    /// due for an early refresh: the loader is tried when it ends).
    #[inline]
    pub(crate) fn is_throttled(&self) -> bool {
        self.stale_and_negative & THROTTLED != 0
    }

    /// Until when fail-safe may serve it: `fail_safe` past its expiry, or,
    /// served again for its throttle, its first expiry's horizon.
    pub(crate) fn fail_safe_until_ms(&self, fail_safe_ms: u64) -> Millis {
        let span = u64::from(self.stale_and_negative & SPAN);
        if self.stale_and_negative & THROTTLED != 0 {
            return self.fresh_until_ms.saturating_add(span);
        }
        self.stale_until_ms().saturating_add(fail_safe_ms)
    }

    /// Where it stands at `now_ms`.
    #[inline]
    pub(crate) fn freshness(&self, now_ms: Millis) -> Freshness {
        freshness(now_ms, self.fresh_until_ms, self.stale_until_ms())
    }

    /// Whether it can no longer be served at `now_ms`.
    #[inline]
    pub(crate) fn is_expired(&self, now_ms: Millis) -> bool {
        now_ms >= self.stale_until_ms()
    }

    /// A view of it, its entity tag being `entity` (the entity of the key
    /// it was found by).
    pub(crate) fn view<'a>(&'a self, entity: &'a str) -> EntryRef<'a, V> {
        EntryRef {
            value: &self.value,
            stamp: self.stamp,
            fresh_until_ms: self.fresh_until_ms,
            stale_until_ms: self.stale_until_ms(),
            negative: self.negative(),
            tags: match &self.extra {
                Some(x) => TagsRef::Whole(&x.tags),
                None => TagsRef::Entity(entity),
            },
        }
    }

    fn tag_hashes(&self) -> &[u64] {
        match &self.extra {
            Some(x) => &x.hashes,
            None => &self.hashes,
        }
    }

    /// Whether it was stored under the URN whose hash is `urn_hash`. The
    /// URN itself is not kept (it would double the entry); callers also
    /// check [`of_entity`](Self::of_entity), so a match needs the same
    /// 64-bit hashes of the whole URN and of its entity: finding another
    /// URN of one entity with one URN's hash takes about 2^64 tries.
    pub(crate) fn stored_under(&self, urn_hash: u64) -> bool {
        self.tag_hashes().last() == Some(&urn_hash)
    }

    /// Whether its entity tag (its first tag) hashes to `entity_hash`.
    pub(crate) fn of_entity(&self, entity_hash: u64) -> bool {
        self.tag_hashes().first() == Some(&entity_hash)
    }

    /// Whether it may be put in process memory now: not invalidated yet,
    /// and the layer trusted.
    pub(crate) fn admissible(&self, marks: &crate::watermark::Watermarks) -> bool {
        let filled = match self.filled_after {
            i32::MIN => 0,
            d => self.stamp.saturating_add_signed(i64::from(d) * 1000),
        };
        marks.trusted() && marks.valid_in_process(filled, self.stamp, self.tag_hashes())
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
    fn an_entry_is_found_by_its_urn_hash() {
        let mut entry = Entry::new(7u8, 0, None, Duration::ZERO);
        entry.tags = vec![Box::<str>::from("user:1")].into();
        let held = Held::new(entry, "urn:t:v1:user:1#f", "user:1", 1, 0);
        assert!(held.stored_under(tag_hash("urn:t:v1:user:1#f")));
        assert!(!held.stored_under(tag_hash("urn:t:v1:user:2#f")));
        assert!(held.of_entity(tag_hash("user:1")));
        assert!(!held.of_entity(tag_hash("user:2")));
    }

    #[test]
    fn a_throttled_fail_safe_entry_has_no_stale_window_and_keeps_its_first_horizon() {
        // Fresh 10 s, stale 5 s: fail-safe 60 s keeps it until 75 s.
        let mut entry = Entry::new(
            1u8,
            0,
            Some(Duration::from_secs(10)),
            Duration::from_secs(5),
        );
        entry.tags = vec![Box::<str>::from("k:1")].into();
        let held = Held::new(entry.clone(), "urn:k:1", "k:1", 1, 0);
        assert_eq!(held.freshness(12_000), Freshness::Stale);
        assert_eq!(held.fail_safe_until_ms(60_000), 75_000);
        // Served again at 20 s for a 30 s throttle, negative.
        entry.fresh_until_ms = 50_000;
        entry.stale_until_ms = 50_000;
        entry.negative = true;
        let again = Held::throttled(entry, 75_000, "urn:k:1", "k:1", 1, 0);
        assert_eq!(again.freshness(49_999), Freshness::Fresh);
        assert_eq!(
            again.freshness(50_000),
            Freshness::Expired,
            "no stale window"
        );
        assert!(again.is_expired(50_000));
        assert!(again.negative());
        assert_eq!(
            again.fail_safe_until_ms(60_000),
            75_000,
            "the first horizon, not the throttle's end plus the window"
        );
    }

    #[test]
    fn a_held_entry_is_small_and_rebuilds_its_tags() {
        // 56 bytes beside a 32-byte value: the budget of issue 12 (128
        // resident bytes per entry with the key, the policy and the index).
        assert_eq!(std::mem::size_of::<Held<[u64; 4]>>(), 32 + 56);
        let mut entry = Entry::new(1u8, 0, None, Duration::ZERO);
        entry.tags = vec![Box::<str>::from("user:1")].into();
        let held = Held::new(entry.clone(), "urn:t:v1:user:1#f", "user:1", 1, 0);
        assert_eq!(
            held.view("user:1").tags(),
            entry.tags,
            "entity only: rebuilt"
        );
        entry.tags = vec![Box::<str>::from("user:1"), "org:2".into()].into();
        let held = Held::new(entry.clone(), "urn:t:v1:user:1#f", "user:1", 1, 0);
        assert_eq!(held.view("user:1").tags(), entry.tags, "more: kept");
    }

    #[test]
    fn an_entry_loaded_long_before_a_reconnect_and_read_after_it_is_kept() {
        // Loaded (by any process) an hour ago; the bus reconnected 20
        // minutes ago; read from a remote layer now: admissible. Kept as
        // microseconds in 32 bits, the fill looked 36 minutes after the
        // stamp at most, before the reconnect, and the entry was refused.
        let marks = crate::watermark::Watermarks::new(true);
        let min = 60_000_000u64;
        let stamp = 1_000 * min;
        marks.reset(stamp + 40 * min);
        let entry = Entry::loaded(1u8, stamp, 0, None, Duration::ZERO);
        let read_now = Held::new(
            entry.clone(),
            "urn:t:v1:k:1#f",
            "k:1",
            marks.epoch(),
            stamp + 60 * min,
        );
        assert!(read_now.admissible(&marks));
        let read_before = Held::new(
            entry,
            "urn:t:v1:k:1#f",
            "k:1",
            marks.epoch(),
            stamp + 39 * min,
        );
        assert!(
            !read_before.admissible(&marks),
            "got before the reconnect: refused"
        );
    }
}
