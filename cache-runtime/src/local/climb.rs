//! The window's hill climber (see [`Climb`]).

use std::sync::atomic::{AtomicU64, Ordering};

/// Caffeine's hill climber, one per store: every sample of requests (ten
/// per entry of capacity), compare the hit ratio with the previous sample's
/// and move the window's share a step the same way if it improved, the
/// other way if not. Recency-skewed traffic grows the window towards LRU;
/// frequency-skewed traffic shrinks it towards LFU. Steps shrink as it
/// settles and start over when the hit ratio moves a lot (the workload
/// changed). Shards read the share when they admit.
pub(super) struct Climb {
    /// Hits this sample, counted one in [`HIT_SAMPLE`] by the reading
    /// thread's countdown, so a hit writes a shared line rarely.
    pub(super) hits: AtomicU64,
    misses: AtomicU64,
    /// Whether a shard has been full (the climb has begun).
    warm: std::sync::atomic::AtomicBool,
    sample: u64,
    /// The window's share of each shard, per mille.
    pub(super) window: std::sync::atomic::AtomicU32,
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
    pub(super) fn new(capacity: usize) -> Self {
        Climb {
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            warm: std::sync::atomic::AtomicBool::new(false),
            sample: (capacity as u64).saturating_mul(10).max(1000),
            window: std::sync::atomic::AtomicU32::new(super::shard::INITIAL_WINDOW),
            state: std::sync::Mutex::new(ClimbState {
                previous: 0.0,
                step: INITIAL_STEP,
            }),
        }
    }

    /// Counts a hit, one in [`HIT_SAMPLE`].
    #[inline]
    pub(super) fn hit(&self) {
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
            // The same sample keeps the clock ticker honest (see
            // `clock::audit`), so that a hit pays for one count, not two.
            crate::clock::audit();
        }
    }

    /// The window's share of a shard of `capacity` entries.
    pub(super) fn window_cap(&self, capacity: usize) -> usize {
        let permille = self.window.load(Ordering::Relaxed) as usize;
        (capacity * permille / 1000).clamp(1, capacity.max(1))
    }

    /// A miss in a shard still filling: the sample starts after it.
    /// Only until some shard first fills: after that, one shard with room
    /// (after removals, or under a byte bound) must not stall the climb.
    pub(super) fn filling(&self) {
        if self.warm.load(Ordering::Relaxed) {
            return;
        }
        self.hits.store(0, Ordering::Relaxed);
        self.misses.store(0, Ordering::Relaxed);
    }

    /// Counts a miss; at the end of a sample, moves the window's share.
    pub(super) fn miss(&self) {
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
