//! Early refresh: a hot entry is refreshed in the background before it
//! expires, so that callers never wait for it and replicas do not all
//! reload it in the same instant.
//!
//! Two forms (`early_refresh = ...` on `#[cached]`):
//! - a fixed point: `early_refresh = 0.8` refreshes on the first hit once
//!   80 % of the use case's `ttl` has passed;
//! - probabilistic early expiration (XFetch; Vattani, Chierichetti and
//!   Lowenstein, VLDB 2015): `early_refresh = "xfetch"` refreshes a hit at
//!   `now` when `now + δ·β·(−ln u) ≥ expiry`, `u` uniform in (0, 1], δ the
//!   time a load takes and β = 1. Hits far from expiry almost never refresh;
//!   the chance rises as expiry nears, and more steeply for quick loads.
//!   δ is the use case's recent load time (an average of its last loads),
//!   not the entry's own: one number per use case, no memory per entry.
//!
//! Either way a hit that is due is served its (still fresh) value, counted
//! as a hit, and starts the key's one background refresh (a key has at
//! most one load or refresh in flight per process; later due hits join
//! nothing and start nothing).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::Millis;

/// A use case's early refresh.
#[derive(Debug)]
pub(crate) struct Early {
    how: How,
    /// The use case's fresh lifetime, in ms.
    ttl_ms: u64,
    /// An average of recent load times, in µs (XFetch's δ).
    load_us: AtomicU64,
}

#[derive(Debug, Clone, Copy)]
enum How {
    /// Due once this many per mille of the TTL have passed.
    At(u32),
    /// XFetch, with β in thousandths.
    XFetch(u32),
}

/// How far before expiry XFetch may fire at all, in δs: `−ln u` passes 12
/// once in 160 000 draws. Before that point a hit is never due, so per-
/// thread copies of the entry may serve it without a draw.
const XFETCH_REACH: u64 = 12;

impl Early {
    /// From the spec: `per_mille` of the TTL (fixed point), or XFetch with
    /// β = `beta_milli` / 1000; `None` when off or the use case has no TTL.
    pub(crate) fn new(per_mille: u32, beta_milli: u32, ttl_ms: Option<u64>) -> Option<Self> {
        let ttl_ms = ttl_ms.filter(|&t| t > 0)?;
        let how = if beta_milli > 0 {
            How::XFetch(beta_milli)
        } else if per_mille > 0 && per_mille < 1000 {
            How::At(per_mille)
        } else {
            return None;
        };
        Some(Early {
            how,
            ttl_ms,
            load_us: AtomicU64::new(0),
        })
    }

    /// Records one successful load's time (an exponentially weighted
    /// average, 1/4 new); failed loads (timeouts) say nothing of δ.
    pub(crate) fn loaded(&self, took: std::time::Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1);
        let _ = self
            .load_us
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                Some(if old == 0 { us } else { old - old / 4 + us / 4 })
            });
    }

    /// The entry's own fresh lifetime: from its load (`loaded`, ms) to
    /// `fresh_until`, at most the use case's TTL (a per-result `set_ttl`, a
    /// cached absence or a `local_ttl` cap make it shorter).
    fn life(&self, loaded: Millis, fresh_until: Millis) -> u64 {
        fresh_until.saturating_sub(loaded).min(self.ttl_ms)
    }

    /// From when a hit on an entry loaded at `loaded` and fresh until
    /// `fresh_until` may be due: before it, never (copies of the entry may
    /// serve it untouched).
    pub(crate) fn window_from(&self, loaded: Millis, fresh_until: Millis) -> Millis {
        let life = self.life(loaded, fresh_until);
        let early = match self.how {
            How::At(pm) => life.saturating_mul(u64::from(1000 - pm)) / 1000,
            // XFetch's reach, but never before the middle of the entry's
            // life (a load as slow as the TTL would refresh on every hit).
            How::XFetch(beta) => self
                .delta_ms(beta)
                .saturating_mul(XFETCH_REACH)
                .min(life / 2),
        };
        fresh_until.saturating_sub(early)
    }

    /// Whether a hit at `now` on an entry loaded at `loaded` and fresh until
    /// `fresh_until` starts its refresh.
    pub(crate) fn due(&self, now: Millis, loaded: Millis, fresh_until: Millis) -> bool {
        if now < self.window_from(loaded, fresh_until) {
            return false;
        }
        match self.how {
            How::At(_) => true,
            How::XFetch(beta) => {
                // u in (0, 1]: −ln u in [0, ∞).
                let u = 1.0 - fastrand::f64();
                let reach = self.delta_ms(beta) as f64 * -u.ln();
                now as f64 + reach >= fresh_until as f64
            }
        }
    }

    /// δ·β in ms (at least 1 ms). Until this process has loaded the key's
    /// use case once (a replica that only reads what others wrote), δ is a
    /// hundredth of the TTL.
    fn delta_ms(&self, beta_milli: u32) -> u64 {
        let us = match self.load_us.load(Ordering::Relaxed) {
            0 => self.ttl_ms.saturating_mul(10),
            us => us,
        };
        (us.saturating_mul(u64::from(beta_milli)) / 1_000_000).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_fixed_point_is_due_from_its_share_of_the_ttl() {
        let e = Early::new(800, 0, Some(10_000)).unwrap();
        // Loaded at 10 000, fresh until 20 000: due from 18 000.
        assert_eq!(e.window_from(10_000, 20_000), 18_000);
        assert!(!e.due(17_999, 10_000, 20_000));
        assert!(e.due(18_000, 10_000, 20_000));
        // An entry that lives 5 s (set_ttl, an absence): due at 80 % of
        // its own life, never from the start.
        assert_eq!(e.window_from(10_000, 15_000), 14_000);
        assert!(!e.due(10_000, 10_000, 15_000));
        assert!(Early::new(0, 0, Some(10_000)).is_none());
        assert!(Early::new(800, 0, None).is_none());
    }

    #[test]
    fn xfetch_fires_more_often_as_expiry_nears_and_never_far_from_it() {
        let e = Early::new(0, 1000, Some(60_000)).unwrap();
        // Before any load: δ is a hundredth of the TTL (600 ms).
        assert_eq!(e.window_from(0, 60_000), 60_000 - 600 * XFETCH_REACH);
        e.loaded(Duration::from_millis(100));
        let rate =
            |now: u64| (0..20_000).filter(|_| e.due(now, 0, 60_000)).count() as f64 / 20_000.0;
        assert_eq!(
            rate(60_000 - 100 * XFETCH_REACH - 1),
            0.0,
            "outside its reach"
        );
        let (far, near) = (rate(60_000 - 300), rate(60_000 - 50));
        // exp(-3) = 0.05 and exp(-0.5) = 0.61: within a wide margin.
        assert!(far > 0.02 && far < 0.09, "{far}");
        assert!(near > 0.55 && near < 0.67, "{near}");
        assert_eq!(rate(60_000), 1.0, "at expiry, always");
    }
}
