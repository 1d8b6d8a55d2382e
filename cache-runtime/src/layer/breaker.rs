//! The circuit breaker of one remote layer, on the cache's clock.

use super::*;

/// Consecutive-failure circuit breaker on the cache's clock.
pub(super) struct Breaker {
    failures: AtomicU32,
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
            open_until_ms: AtomicU64::new(0),
            probing: AtomicBool::new(false),
            threshold,
            retry_after_ms,
        }
    }

    pub(super) fn allow(&self, now: u64) -> bool {
        if self.failures.load(Relaxed) < self.threshold {
            return true;
        }
        // Open: one caller at a time probes once the retry time has come.
        now >= self.open_until_ms.load(Relaxed) && !self.probing.swap(true, Relaxed)
    }

    pub(super) fn success(&self) {
        if self.failures.swap(0, Relaxed) >= self.threshold {
            tracing::info!("remote layer answers again; breaker closed");
        }
        self.probing.store(false, Relaxed);
    }

    pub(super) fn failure(&self, now: u64) {
        let n = self.failures.fetch_add(1, Relaxed).saturating_add(1);
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
        self.probing.store(false, Relaxed);
    }

    pub(super) fn is_open(&self) -> bool {
        self.failures.load(Relaxed) >= self.threshold
    }
}
