//! One injectable clock for every TTL, SWR and watermark decision.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch, as cachewright's clock reads them.
pub type Millis = u64;

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
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// The system clock (the default).
    pub fn system() -> Self {
        Self {
            source: Source::System,
        }
    }

    /// A clock that reads `manual`, and moves only when it is moved.
    pub fn manual(manual: &ManualClock) -> Self {
        Self {
            source: Source::Manual(manual.0.clone()),
        }
    }

    /// Now, in Unix milliseconds.
    #[inline]
    pub fn now_ms(&self) -> Millis {
        match &self.source {
            Source::System => system_now_ms(),
            Source::Manual(ms) => ms.load(Ordering::Acquire),
        }
    }

    /// Now, in Unix milliseconds, read precisely: for stamping entries and
    /// invalidations (slow paths), where the coarse clock's few
    /// milliseconds of lag would blur their order.
    pub fn precise_ms(&self) -> Millis {
        match &self.source {
            Source::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(saturating_ms)
                .unwrap_or(0),
            Source::Manual(ms) => ms.load(Ordering::Acquire),
        }
    }

    /// Whether this clock is a [`ManualClock`].
    pub fn is_manual(&self) -> bool {
        matches!(self.source, Source::Manual(_))
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            Source::System => f.write_str("Clock::System"),
            Source::Manual(ms) => write!(f, "Clock::Manual({})", ms.load(Ordering::Relaxed)),
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
pub struct ManualClock(Arc<AtomicU64>);

impl ManualClock {
    /// A clock standing at `start_ms` Unix milliseconds.
    pub fn new(start_ms: Millis) -> Self {
        Self(Arc::new(AtomicU64::new(start_ms)))
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(saturating_ms(by), Ordering::AcqRel);
    }

    /// Sets the clock to `ms` Unix milliseconds.
    pub fn set_ms(&self, ms: Millis) {
        self.0.store(ms, Ordering::Release);
    }

    /// The clock's time, in Unix milliseconds.
    pub fn now_ms(&self) -> Millis {
        self.0.load(Ordering::Acquire)
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
    fn manual_clock_moves_only_when_moved() {
        let m = ManualClock::new(5);
        let c = Clock::manual(&m);
        assert_eq!(c.now_ms(), 5);
        m.advance(Duration::from_secs(2));
        assert_eq!(c.now_ms(), 2_005);
        assert!(c.is_manual());
        assert!(!Clock::system().is_manual());
    }
}
