//! Fail-safe (`fail_safe = "1h"`): when a load fails, times out or is
//! marked failed, the last good value of the key, expired up to the
//! fail-safe window ago, is served instead of the error, and kept in L1 for
//! the throttle (`fail_safe_throttle`) so that the loader is tried again no
//! sooner. A value an invalidation covers is never served: candidates are
//! checked against the watermarks when they are served.

use super::*;
use crate::local::Admit;
use std::cell::Cell;
use std::task::{Context, Poll};

thread_local! {
    /// Set while a load whose caller stopped waiting runs on this thread.
    static UNOBSERVED: Cell<bool> = const { Cell::new(false) };
}

/// A load its caller stopped waiting for (a timeout): it goes on, and a
/// fail-safe value it falls back to is kept but served to nobody, so not
/// counted.
pub(super) struct Unobserved<F: ?Sized>(pub(super) Pin<Box<F>>);

impl<F: Future + ?Sized> Future for Unobserved<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let before = UNOBSERVED.with(|u| u.replace(true));
        let out = self.0.as_mut().poll(cx);
        UNOBSERVED.with(|u| u.set(before));
        out
    }
}

/// An expired value fail-safe may serve, and when its window ends.
pub(crate) struct Fallback<V> {
    pub(super) found: Stamped<V>,
    /// The end of its fail-safe window: its first expiry plus `fail_safe`
    /// (a throttled re-serve never moves it).
    pub(super) horizon_ms: Millis,
    pub(super) negative: bool,
}

impl<K, V> UseCase<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// The fail-safe window in milliseconds (0: off).
    #[inline]
    pub(super) fn fail_safe_ms(&self) -> u64 {
        self.spec.resilience.fail_safe_ms
    }

    /// The value fail-safe serves for `miss` now, if any: L1's entry of the
    /// key (stale or expired, within its window) or `remote` (an expired
    /// entry a remote layer held), the newer of the two; either only if no
    /// invalidation known now covers it.
    pub(super) fn fallback(
        &self,
        miss: &Miss<K>,
        remote: Option<Fallback<V>>,
    ) -> Option<Fallback<V>> {
        let fs = self.fail_safe_ms();
        if fs == 0 {
            return None;
        }
        let now = self.clock.now_ms();
        let local = self.fallback_local(miss, fs, now);
        let remote = remote.filter(|r| now < r.horizon_ms);
        let best = match (local, remote) {
            (Some(l), Some(r)) if r.found.stamp > l.found.stamp => Some(r),
            (Some(l), _) => Some(l),
            (None, r) => r,
        }?;
        self.cache
            .shareable(&best.found, miss.urn.as_str())
            .then_some(best)
    }

    fn fallback_local(&self, miss: &Miss<K>, fs: u64, now: Millis) -> Option<Fallback<V>> {
        if !miss.local {
            return None;
        }
        let since = self.clock.stamp();
        let marks = &*self.marks;
        self.store
            .with(
                miss.hash,
                |k| *k == miss.key,
                |h| {
                    let horizon_ms = h.fail_safe_until_ms(fs);
                    (now < horizon_ms && h.valid(marks)).then(|| Fallback {
                        found: Stamped {
                            value: h.value().clone(),
                            stamp: h.stamp(),
                            tags: h.view(miss.urn.entity()).tags(),
                            since,
                        },
                        horizon_ms,
                        negative: h.negative(),
                    })
                },
            )
            .flatten()
    }

    /// Serves `fb` in place of a load that `why` (failed, timed out, ...):
    /// counted and logged when a caller gets it (`served`: not a
    /// background refresh, nor a load its caller stopped waiting for), and
    /// kept in L1 fresh for the throttle (never past its window), so that
    /// calls in the meantime are hits and the loader is tried again no
    /// sooner. Remote layers keep the entry as it was.
    pub(super) fn serve_fallback(
        &self,
        miss: &Miss<K>,
        fb: Fallback<V>,
        why: &str,
        served: bool,
    ) -> Stamped<V> {
        if served && !UNOBSERVED.with(Cell::get) {
            self.counters.fail_safe_served();
            tracing::warn!(
                use_case = self.name,
                key = %crate::key::Shown(miss.urn.as_str()),
                "the loader {why}; served the last good value (fail-safe)"
            );
        } else {
            tracing::debug!(
                use_case = self.name,
                key = %crate::key::Shown(miss.urn.as_str()),
                "a background load {why}; the last good value is kept for the throttle (fail-safe)"
            );
        }
        let now = self.clock.now_ms();
        let throttle = self.spec.resilience.fail_safe_throttle_ms;
        let until = now.saturating_add(throttle).min(fb.horizon_ms);
        if miss.local && until > now {
            let mut entry = Entry::loaded(
                fb.found.value.clone(),
                fb.found.stamp,
                now,
                None,
                Duration::ZERO,
            );
            entry.fresh_until_ms = until;
            // A value still servable stale (a failed refresh) keeps its
            // stale window; its fail-safe window then ends where it did.
            let stale_until = fb.horizon_ms.saturating_sub(self.fail_safe_ms());
            entry.stale_until_ms = until.max(stale_until);
            entry.negative = fb.negative;
            entry.tags = fb.found.tags.clone();
            let weight = self.weight(&entry.value);
            let _ = self.store.admit(
                miss.hash,
                miss.key.clone(),
                &miss.urn,
                entry,
                weight,
                fb.found.since,
                self.local_cap(),
                &self.marks,
                &self.clock,
                Admit::Throttled(fb.horizon_ms),
            );
        }
        fb.found
    }
}
