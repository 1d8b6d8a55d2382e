//! A criterion measurement of the calling thread's CPU time
//! (`CLOCK_THREAD_CPUTIME_ID`, Linux; wall time elsewhere), for one-thread
//! benches on a shared, oversubscribed machine: the time slices another
//! process takes do not land in the numbers, while everything the bench
//! thread does still does. Included by bench files with
//! `#[path = "common/cpu_time.rs"] mod cpu_time;` (`benches/common/` holds no
//! bench target of its own).

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};

#[cfg(target_os = "linux")]
mod sys {
    use std::time::Duration;

    /// `struct timespec` of 64-bit Linux.
    #[repr(C)]
    struct Timespec {
        tv_sec: i64,
        tv_nsec: i64,
    }

    extern "C" {
        fn clock_gettime(clock_id: i32, tp: *mut Timespec) -> i32;
    }

    const CLOCK_THREAD_CPUTIME_ID: i32 = 3;

    pub(super) fn now() -> Duration {
        let mut ts = Timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable `struct timespec` (two 64-bit
        // fields on 64-bit Linux); `clock_gettime` writes only into it.
        let rc = unsafe { clock_gettime(CLOCK_THREAD_CPUTIME_ID, &mut ts) };
        assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
        Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
    }
}

#[cfg(not(target_os = "linux"))]
mod sys {
    use std::sync::OnceLock;
    use std::time::{Duration, Instant};

    pub(super) fn now() -> Duration {
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed()
    }
}

/// The bench thread's CPU time so far (wall time since first use elsewhere
/// than Linux), for `iter_custom` loops that time only part of an iteration.
pub fn now() -> Duration {
    sys::now()
}

/// CPU time of the thread that runs the benchmark.
pub struct OneThreadClock;

/// Durations print the same whichever clock measured them.
static FORMAT: WallTime = WallTime;

impl Measurement for OneThreadClock {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        now()
    }
    fn end(&self, start: Duration) -> Duration {
        now().saturating_sub(start)
    }
    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }
    fn zero(&self) -> Duration {
        Duration::ZERO
    }
    fn to_f64(&self, d: &Duration) -> f64 {
        d.as_nanos() as f64
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        FORMAT.formatter()
    }
}
