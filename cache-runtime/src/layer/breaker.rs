//! The circuit breaker of one remote layer, on the cache's clock.

use super::*;

/// Consecutive-failure circuit breaker on the cache's clock.
pub(super) struct Breaker {
    failures: AtomicU32,
    /// When the state (up, degraded, open) last changed, by the cache's
    /// clock, plus one; 0 while it never has. Stored apart from `failures`:
    /// a success and a failure racing can leave it a moment off.
    changed_ms: AtomicU64,
    open_until_ms: AtomicU64,
    probing: AtomicBool,
    threshold: u32,
    retry_after_ms: u64,
}

impl Breaker {
    /// Opens after `threshold` consecutive failures; probes every
    /// `retry_after_ms` while open.
    pub(super) fn new(threshold: u32, retry_after_ms: u64) -> Self {
        Breaker {
            failures: AtomicU32::new(0),
            changed_ms: AtomicU64::new(0),
            open_until_ms: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            threshold,
            retry_after_ms,
        }
    }

    /// Whether an operation may go out now: a permit, which is the one
    /// probe of an open breaker when the retry time has come. The probe
    /// ends when its permit is dropped, settled or not (a caller cancelled
    /// mid-probe must not keep the layer closed to everyone after it).
    pub(super) fn allow(&self, now: u64) -> Option<Permit<'_>> {
        if self.failures.load(Relaxed) < self.threshold {
            return Some(Permit {
                breaker: self,
                probe: false,
            });
        }
        // Open: one caller at a time probes once the retry time has come.
        (now >= self.open_until_ms.load(Relaxed) && !self.probing.swap(true, Relaxed)).then_some(
            Permit {
                breaker: self,
                probe: true,
            },
        )
    }

    pub(super) fn success(&self, now: u64) {
        if self.failures.load(Relaxed) == 0 {
            return;
        }
        let was = self.failures.swap(0, Relaxed);
        if was > 0 {
            self.changed_ms.store(now.saturating_add(1), Relaxed);
        }
        if was >= self.threshold {
            tracing::info!("remote layer answers again; breaker closed");
        }
    }

    pub(super) fn failure(&self, now: u64) {
        let n = self.failures.fetch_add(1, Relaxed).saturating_add(1);
        if n == 1 || n == self.threshold {
            self.changed_ms.store(now.saturating_add(1), Relaxed);
        }
        if n >= self.threshold {
            self.open_until_ms
                .store(now.saturating_add(self.retry_after_ms), Relaxed);
            if n == self.threshold {
                tracing::warn!(
                    failures = n,
                    "remote layer failing; breaker open, skipping it"
                );
            }
        }
    }

    pub(super) fn is_open(&self) -> bool {
        self.failures.load(Relaxed) >= self.threshold
    }

    /// The state, since when (`None`: since the layer was built), and the
    /// failures in a row.
    pub(super) fn state(&self) -> (LayerState, Option<u64>, u32) {
        let failures = self.failures.load(Relaxed);
        let state = if failures >= self.threshold {
            LayerState::BreakerOpen
        } else if failures > 0 {
            LayerState::Degraded
        } else {
            LayerState::Up
        };
        // Stored plus one, so that a change at time 0 is not "never".
        let since = self.changed_ms.load(Relaxed).checked_sub(1);
        (state, since, failures)
    }
}

/// Leave to run one operation on a layer; if it is the probe of an open
/// breaker, dropping it (after the outcome was recorded, or because the
/// caller was cancelled) lets the next caller probe.
pub(super) struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.probe {
            self.breaker.probing.store(false, Relaxed);
        }
    }
}
