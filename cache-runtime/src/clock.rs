//! One injectable clock for every TTL, SWR and watermark decision.

use std::fmt;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, as cachewright's clock reads them.
///
/// # Examples
///
/// ```
/// use cachewright::{Clock, ManualClock, Millis};
///
/// let clock = Clock::manual(&ManualClock::new(1_700_000_000_000));
/// let now: Millis = clock.now_ms();
/// assert_eq!(now, 1_700_000_000_000);
/// ```
pub type Millis = u64;

/// When a load began or an invalidation was made: microseconds since the
/// Unix epoch, read from the cache's clock and made unique and increasing
/// within a process (or a [`ManualClock`]), so that of any two events in one
/// process the later has the larger stamp, even within one microsecond.
/// An entry is invalidated by a watermark at or after its stamp.
///
/// # Examples
///
/// ```
/// use cachewright::{Clock, ManualClock, Stamp};
///
/// let clock = Clock::manual(&ManualClock::new(2));
/// let first: Stamp = clock.stamp();
/// assert_eq!(first, 2_000, "the start of the clock's millisecond, in microseconds");
/// assert!(clock.stamp() > first);
/// ```
pub type Stamp = u64;

/// The stamp of the start of `ms`: what a deadline in milliseconds compares
/// against.
pub(crate) const fn stamp_of_ms(ms: Millis) -> Stamp {
    ms.saturating_mul(1_000)
}

/// The millisecond a stamp falls in.
pub(crate) const fn ms_of_stamp(s: Stamp) -> Millis {
    s / 1_000
}

/// A duration in whole microseconds, saturating at `u64::MAX`.
pub(crate) fn saturating_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The next stamp after `last` at wall time `now_us`: the wall time when it
/// has moved past every stamp given out, else one more than the last (a
/// hybrid logical clock: stamps stay close to wall time and never repeat).
fn next_stamp(last: &AtomicU64, now_us: u64) -> Stamp {
    let mut seen = last.load(Ordering::Acquire);
    loop {
        let next = now_us.max(seen.saturating_add(1));
        match last.compare_exchange_weak(seen, next, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return next,
            Err(now) => seen = now,
        }
    }
}

/// The last stamp the system clock gave out in this process.
static SYSTEM_LAST: AtomicU64 = AtomicU64::new(0);

/// The time source of a cache.
///
/// The system clock reads `CLOCK_MONOTONIC_COARSE` (no syscall, a few
/// nanoseconds) and maps it onto Unix milliseconds once at start, so deadlines
/// written by one process can be compared by another while a hit never pays
/// for a precise clock. A [`ManualClock`] replaces it in tests, so TTL and SWR
/// behaviour is tested without sleeping.
///
/// # Examples
///
/// ```
/// use cachewright::{Clock, ManualClock};
/// use std::time::Duration;
///
/// let manual = ManualClock::new(1_000);
/// let clock = Clock::manual(&manual);
/// assert_eq!(clock.now_ms(), 1_000);
/// manual.advance(Duration::from_secs(5));
/// assert_eq!(clock.now_ms(), 6_000);
/// ```
#[derive(Clone, Default)]
pub struct Clock {
    source: Source,
}

#[derive(Clone, Default)]
enum Source {
    #[default]
    System,
    Manual(Arc<Manual>),
}

/// A manual clock's time, how far its wall clock stands from it, and the
/// last stamp it gave out.
#[derive(Debug, Default)]
struct Manual {
    /// Monotonic time, as Unix milliseconds: what `now_ms` reads.
    ms: AtomicU64,
    /// Wall time minus `ms`, in milliseconds: moved by a wall-clock step.
    wall_ahead: AtomicI64,
    last: AtomicU64,
}

impl Manual {
    fn wall_ms(&self) -> Millis {
        let ms = self.ms.load(Ordering::Acquire);
        ms.saturating_add_signed(self.wall_ahead.load(Ordering::Acquire))
    }
}

impl Clock {
    /// The system clock (the default).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::Clock;
    ///
    /// let clock = Clock::system();
    /// assert!(!clock.is_manual());
    /// assert!(clock.now_ms() > 1_600_000_000_000, "Unix milliseconds");
    /// ```
    pub fn system() -> Self {
        Self {
            source: Source::System,
        }
    }

    /// A clock that reads `manual`, and moves only when it is moved.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Clock, ManualClock};
    /// use std::time::Duration;
    ///
    /// let manual = ManualClock::new(0);
    /// let clock = Clock::manual(&manual);
    /// manual.advance(Duration::from_secs(1));
    /// assert_eq!(clock.now_ms(), 1_000, "the clock follows its ManualClock");
    /// ```
    pub fn manual(manual: &ManualClock) -> Self {
        Self {
            source: Source::Manual(manual.0.clone()),
        }
    }

    /// Now, in Unix milliseconds: monotonic time mapped onto the wall clock
    /// once, at start. Every deadline (fresh until, stale until) is counted
    /// from it when an entry is stored, and judged by it. The system clock
    /// is read by a background thread every millisecond while calls read it
    /// (one atomic load here; the thread parks after a second unused), and
    /// by calling threads themselves on one `#[cached]` hit in 61 and on
    /// every `#[cached]` miss, so a ticker starved of CPU time delays
    /// deadlines by at most that many of a thread's calls.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Clock, ManualClock};
    ///
    /// assert_eq!(Clock::manual(&ManualClock::new(5)).now_ms(), 5);
    /// ```
    #[inline]
    pub fn now_ms(&self) -> Millis {
        match &self.source {
            Source::System => ticker::now_ms(),
            Source::Manual(m) => m.ms.load(Ordering::Acquire),
        }
    }

    /// Now, in Unix milliseconds, read precisely from the wall clock: what
    /// [`stamp`](Self::stamp) follows. For ordering events, never for
    /// deadlines: a wall-clock step (NTP, an operator) moves it, while
    /// [`now_ms`](Self::now_ms), which every deadline is counted and read
    /// with, only moves forward with monotonic time.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::Clock;
    ///
    /// let clock = Clock::system();
    /// let (coarse, precise) = (clock.now_ms(), clock.precise_ms());
    /// assert!(precise.abs_diff(coarse) < 1_000);
    /// ```
    pub fn precise_ms(&self) -> Millis {
        match &self.source {
            Source::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(saturating_ms)
                .unwrap_or(0),
            Source::Manual(m) => m.wall_ms(),
        }
    }

    /// A [`Stamp`] for an event happening now: later than every stamp this
    /// process (or this manual clock) gave out before, and at least the
    /// precise wall time. Entries are stamped with the start of their load
    /// and invalidations with their moment, so their order in one process is
    /// exact.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Clock, ManualClock};
    ///
    /// let manual = ManualClock::new(1_000);
    /// let clock = Clock::manual(&manual);
    /// let (a, b) = (clock.stamp(), clock.stamp());
    /// assert!(b > a, "unique, increasing");
    /// assert!(a >= 1_000_000, "in microseconds, at least the clock's time");
    /// ```
    pub fn stamp(&self) -> Stamp {
        match &self.source {
            Source::System => {
                let now_us = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map(saturating_us)
                    .unwrap_or(0);
                next_stamp(&SYSTEM_LAST, now_us)
            }
            Source::Manual(m) => next_stamp(&m.last, stamp_of_ms(m.wall_ms())),
        }
    }

    /// Whether this clock is a [`ManualClock`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Clock, ManualClock};
    ///
    /// assert!(Clock::manual(&ManualClock::new(0)).is_manual());
    /// assert!(!Clock::system().is_manual());
    /// ```
    pub fn is_manual(&self) -> bool {
        matches!(self.source, Source::Manual(_))
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::System => f.write_str("Clock::System"),
            Source::Manual(m) => write!(f, "Clock::Manual({})", m.ms.load(Ordering::Relaxed)),
        }
    }
}

/// A clock that tests move by hand.
///
/// Clones share the same time.
///
/// # Examples
///
/// ```
/// use cachewright::ManualClock;
/// use std::time::Duration;
///
/// let clock = ManualClock::new(0);
/// clock.advance(Duration::from_millis(1500));
/// assert_eq!(clock.now_ms(), 1500);
/// clock.set_ms(10);
/// assert_eq!(clock.now_ms(), 10);
/// ```
#[derive(Clone, Debug, Default)]
pub struct ManualClock(Arc<Manual>);

impl ManualClock {
    /// A clock standing at `start_ms` Unix milliseconds.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(cachewright::ManualClock::new(1_000).now_ms(), 1_000);
    /// ```
    pub fn new(start_ms: Millis) -> Self {
        Self(Arc::new(Manual {
            ms: AtomicU64::new(start_ms),
            wall_ahead: AtomicI64::new(0),
            last: AtomicU64::new(0),
        }))
    }

    /// Moves the clock forward by `by`.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::ManualClock;
    /// use std::time::Duration;
    ///
    /// let clock = ManualClock::new(0);
    /// let shared = clock.clone();
    /// clock.advance(Duration::from_millis(250));
    /// assert_eq!(shared.now_ms(), 250, "clones share the time");
    /// ```
    pub fn advance(&self, by: Duration) {
        self.0.ms.fetch_add(saturating_ms(by), Ordering::AcqRel);
    }

    /// Sets the clock to `ms` Unix milliseconds.
    ///
    /// # Examples
    ///
    /// ```
    /// let clock = cachewright::ManualClock::new(10_000);
    /// clock.set_ms(0);
    /// assert_eq!(clock.now_ms(), 0, "it may move backwards too");
    /// ```
    pub fn set_ms(&self, ms: Millis) {
        self.0.ms.store(ms, Ordering::Release);
    }

    /// Steps the wall clock to `ms` Unix milliseconds, leaving monotonic
    /// time ([`now_ms`](Self::now_ms)) where it is: as NTP or an operator
    /// steps a host's clock. [`Clock::stamp`] and [`Clock::precise_ms`]
    /// follow the wall clock; later [`advance`](Self::advance)s move both.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{Clock, ManualClock};
    ///
    /// let manual = ManualClock::new(10_000);
    /// let clock = Clock::manual(&manual);
    /// manual.set_wall_ms(3_610_000);
    /// assert_eq!(clock.now_ms(), 10_000, "monotonic time did not move");
    /// assert_eq!(clock.precise_ms(), 3_610_000);
    /// assert!(clock.stamp() >= 3_610_000_000, "stamps follow the wall clock");
    /// ```
    pub fn set_wall_ms(&self, ms: Millis) {
        let now = self.0.ms.load(Ordering::Acquire);
        let ahead = i128::from(ms) - i128::from(now);
        let ahead = i64::try_from(ahead).unwrap_or(if ahead < 0 { i64::MIN } else { i64::MAX });
        self.0.wall_ahead.store(ahead, Ordering::Release);
    }

    /// The clock's time, in Unix milliseconds.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let clock = cachewright::ManualClock::new(0);
    /// clock.advance(Duration::from_secs(2));
    /// assert_eq!(clock.now_ms(), 2_000);
    /// ```
    pub fn now_ms(&self) -> Millis {
        self.0.ms.load(Ordering::Acquire)
    }
}

/// A duration in whole milliseconds, saturating at `u64::MAX`.
pub(crate) fn saturating_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

struct Anchor {
    mono: coarsetime::Instant,
    unix_ms: u64,
}

fn anchor() -> &'static Anchor {
    static ANCHOR: std::sync::OnceLock<Anchor> = std::sync::OnceLock::new();
    ANCHOR.get_or_init(|| Anchor {
        mono: coarsetime::Instant::now_without_cache_update(),
        unix_ms: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(saturating_ms)
            .unwrap_or(0),
    })
}

/// Real monotonic time in milliseconds (whatever clock a cache was given):
/// for leases, which are about real delivery, never about TTLs.
#[inline]
pub(crate) fn real_ms() -> Millis {
    system_now_ms()
}

/// The millisecond ticker behind [`Clock::now_ms`] on the system clock: a
/// read of the monotonic clock costs a hot hit about as much as the rest of
/// its checks, so a thread reads it for everyone while anyone needs it.
///
/// Callers keep it honest ([`audit`]): a sample of hits and every miss
/// read the clock themselves and move the shared time forward if the
/// ticker fell behind (starved of CPU time), and a ticker found a second
/// behind in another process (a `fork` without `exec` copies the time but
/// not the thread) is started anew. Time never goes back: it only moves by
/// `fetch_max`, except to 0 when the ticker parks.
mod ticker {
    use super::{system_now_ms, Millis};
    use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
    use std::sync::Mutex;
    use std::time::Duration;

    /// How often the ticker reads the clock.
    const TICK: Duration = Duration::from_millis(1);
    /// Ticks between the ticker's looks for readers.
    const LOOK: u32 = 100;
    /// Looks without a reader before the ticker parks (a second).
    const IDLE_LOOKS: u32 = 10;
    /// How far behind a ticker may be before it is taken for lost.
    const LOST_MS: u64 = 1_000;

    /// The time the ticker (or an auditing reader) last read, or 0 while
    /// the ticker is parked. Read by every call, written once a tick.
    /// Beside it, whether a reader came since the ticker last looked
    /// (written by one reader per look), and the process the ticker runs in.
    #[repr(align(128))]
    struct Shared {
        recent: AtomicU64,
        wanted: AtomicBool,
        pid: AtomicU32,
    }

    static SHARED: Shared = Shared {
        recent: AtomicU64::new(0),
        wanted: AtomicBool::new(false),
        pid: AtomicU32::new(0),
    };

    /// The ticker's thread: `Some(None)` once it could not be started.
    static THREAD: Mutex<Option<Option<std::thread::Thread>>> = Mutex::new(None);

    #[inline]
    pub(super) fn now_ms() -> Millis {
        let recent = SHARED.recent.load(Ordering::Acquire);
        if !SHARED.wanted.load(Ordering::Relaxed) {
            SHARED.wanted.store(true, Ordering::Relaxed);
        }
        if recent == 0 {
            return catch_up(recent);
        }
        recent
    }

    /// Reads the clock itself and moves the shared time up to it (see
    /// [`super::audit`]).
    #[cold]
    pub(super) fn audit() {
        let recent = SHARED.recent.load(Ordering::Acquire);
        if recent != 0 {
            catch_up(recent);
        }
    }

    /// Reads the clock itself; moves the shared time up to it, and
    /// (re)starts the ticker when it is parked or lost.
    #[cold]
    fn catch_up(recent: Millis) -> Millis {
        let now = system_now_ms().max(1);
        let lost = recent != 0
            && now.saturating_sub(recent) > LOST_MS
            && SHARED.pid.load(Ordering::Relaxed) != std::process::id();
        if recent == 0 || lost {
            wake(lost);
        }
        if now > recent {
            now.max(SHARED.recent.fetch_max(now, Ordering::AcqRel))
        } else {
            recent
        }
    }

    fn wake(lost: bool) {
        let mut thread = THREAD.lock().unwrap_or_else(|e| e.into_inner());
        if thread.is_none() || lost {
            let spawned = std::thread::Builder::new()
                .name("cachewright-clock".into())
                .spawn(tick);
            *thread = Some(match spawned {
                Ok(h) => Some(h.thread().clone()),
                Err(e) => {
                    tracing::warn!(error = %e, "no clock thread: calls read the clock themselves");
                    None
                }
            });
        }
        if let Some(Some(t)) = &*thread {
            t.unpark();
        }
    }

    fn tick() {
        SHARED.pid.store(std::process::id(), Ordering::Relaxed);
        loop {
            let mut idle = 0;
            while idle < IDLE_LOOKS {
                for _ in 0..LOOK {
                    SHARED
                        .recent
                        .fetch_max(system_now_ms().max(1), Ordering::AcqRel);
                    std::thread::sleep(TICK);
                }
                if SHARED.wanted.swap(false, Ordering::Relaxed) {
                    idle = 0;
                } else {
                    idle += 1;
                }
            }
            // No reader for a while: stop reading the clock until one
            // comes (it reads the clock itself and unparks this thread).
            SHARED.recent.store(0, Ordering::Release);
            if SHARED.wanted.load(Ordering::Relaxed) {
                continue;
            }
            std::thread::park();
        }
    }

    #[cfg(test)]
    pub(super) fn ticking() -> bool {
        SHARED.recent.load(Ordering::Acquire) != 0
    }
}

/// Reads the system clock and moves the ticker's time up to it if it fell
/// behind (restarting a ticker lost to a `fork`). Called on a sample of
/// hits (one in 61 per thread) and on every miss.
pub(crate) fn audit() {
    ticker::audit();
}

#[inline]
fn system_now_ms() -> Millis {
    let a = anchor();
    let now = coarsetime::Instant::now_without_cache_update();
    a.unix_ms + now.duration_since(a.mono).as_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_clock_tracks_wall_time() {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let ours = Clock::system().now_ms();
        // Coarse clocks tick every few milliseconds; a second of slack is plenty.
        assert!(ours.abs_diff(wall) < 1_000, "ours {ours} wall {wall}");
    }

    #[test]
    fn the_ticker_starts_on_a_read_and_never_goes_back() {
        let c = Clock::system();
        let mut last = c.now_ms();
        for _ in 0..1_000 {
            if ticker::ticking() {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
            last = c.now_ms();
        }
        assert!(ticker::ticking(), "a read started the ticker");
        for _ in 0..100_000 {
            let now = c.now_ms();
            assert!(now >= last, "{now} after {last}");
            last = now;
        }
        let direct = system_now_ms();
        assert!(
            direct >= last,
            "the ticker reads the same clock, never ahead"
        );
    }

    #[test]
    fn manual_clock_moves_only_when_moved() {
        let m = ManualClock::new(5);
        let c = Clock::manual(&m);
        assert_eq!(c.now_ms(), 5);
        m.advance(Duration::from_secs(2));
        assert_eq!(c.now_ms(), 2_005);
        assert!(c.is_manual());
        assert!(!Clock::system().is_manual());
    }

    #[test]
    fn stamps_are_unique_increasing_and_follow_the_clock() {
        let m = ManualClock::new(5);
        let (c, c2) = (Clock::manual(&m), Clock::manual(&m));
        let a = c.stamp();
        let b = c2.stamp();
        assert!(b > a, "clocks over one manual clock share their stamps");
        assert_eq!(a, 5_000);
        m.advance(Duration::from_millis(1));
        assert_eq!(
            c.stamp(),
            6_000,
            "back on wall time once it passed the last"
        );
        let s = Clock::system();
        let mut last = s.stamp();
        for _ in 0..10_000 {
            let next = s.stamp();
            assert!(next > last);
            last = next;
        }
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_micros() as u64;
        assert!(last.abs_diff(wall) < 1_000_000);
    }
}
