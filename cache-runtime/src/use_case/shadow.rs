//! Shadow reads (GCache's way to prove a cache safe before trusting it): a
//! sampled share of a use case's fresh hits also runs the function in the
//! background and compares its result with what the cache served. Nothing
//! is stored; matches, mismatches and failed runs are counted, and the
//! first mismatches logged at warn level with the use case and key type
//! (never the key or the value).

use std::sync::atomic::{AtomicU32, Ordering};

use super::*;

/// How many mismatches of one use case are logged at warn level (the rest
/// are counted, and logged at debug level).
const WARNED: u32 = 10;

/// The outcome of one shadow read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shadowed {
    Match,
    Mismatch,
    Error,
}

/// Compares two values: by `PartialEq` or by their encoded bytes (JSON),
/// as the value type allows; see [`EqProbe`].
#[doc(hidden)]
pub type EqFn<V> = fn(&V, &V) -> bool;

/// Picks how a shadow read compares values, by autoref resolution:
/// `(&&EqProbe::<V>::new()).eq_fn()` with [`ViaEq`], [`ViaEncodedEq`] and
/// [`ViaNoEq`] in scope: `PartialEq` when `V` has it, else its JSON bytes
/// when it is `Serialize`, else `None` (shadow reads are then not made).
#[doc(hidden)]
pub struct EqProbe<V>(std::marker::PhantomData<fn() -> V>);

impl<V> fmt::Debug for EqProbe<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EqProbe")
    }
}

impl<V> Default for EqProbe<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> EqProbe<V> {
    /// A probe.
    pub const fn new() -> Self {
        EqProbe(std::marker::PhantomData)
    }
}

/// The comparison probe's first choice: `PartialEq`.
#[doc(hidden)]
pub trait ViaEq<V> {
    /// How values of this type are compared.
    fn eq_fn(&self) -> Option<EqFn<V>>;
}

impl<V: PartialEq> ViaEq<V> for &EqProbe<V> {
    fn eq_fn(&self) -> Option<EqFn<V>> {
        Some(|a, b| a == b)
    }
}

/// The comparison probe's second choice: the encoded bytes.
#[doc(hidden)]
pub trait ViaEncodedEq<V> {
    /// How values of this type are compared.
    fn eq_fn(&self) -> Option<EqFn<V>>;
}

impl<V: Serialize> ViaEncodedEq<V> for &&EqProbe<V> {
    fn eq_fn(&self) -> Option<EqFn<V>> {
        Some(
            |a, b| match (serde_json::to_vec(a), serde_json::to_vec(b)) {
                (Ok(x), Ok(y)) => x == y,
                _ => false,
            },
        )
    }
}

/// The comparison probe's last choice: none.
#[doc(hidden)]
pub trait ViaNoEq<V> {
    /// How values of this type are compared.
    fn eq_fn(&self) -> Option<EqFn<V>>;
}

impl<V> ViaNoEq<V> for EqProbe<V> {
    fn eq_fn(&self) -> Option<EqFn<V>> {
        None
    }
}

/// How many shadow reads of one use case run at once, at most; a sampled
/// hit beyond them is not shadow-read (logged at debug level), so shadow
/// reads never pile up behind a slow source or crowd out refreshes.
const IN_FLIGHT: u32 = 4;

/// A use case's shadow-read bookkeeping: mismatches logged, runs in
/// flight, and whether "cannot compare" was logged.
#[derive(Debug, Default)]
pub(crate) struct Warned(AtomicU32, AtomicU32, std::sync::atomic::AtomicBool);

/// One shadow run in flight, released when dropped (a panicking run too).
struct Running(&'static AtomicU32);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl<K, V> UseCase<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Runs a sync function's shadow read of a hit that served `served`,
    /// on cachewright's refresh threads (skipped, and not counted, when
    /// their queue is full or the value type cannot be compared).
    pub fn shadow_sync(
        &'static self,
        served: &V,
        eq: Option<EqFn<V>>,
        job: impl FnOnce() -> SyncJob<V>,
    ) {
        let Some((eq, running)) = self.shadow_start(eq) else {
            return;
        };
        let Some(slot) = crate::spawn::refresh_slot() else {
            return;
        };
        let (served, job) = (served.clone(), job());
        slot.run(move || {
            let _running = running;
            let span = self.shadow_span();
            let _in = span.enter();
            let r = job();
            self.compared(&served, r, eq);
        });
    }

    /// Whether a sampled hit is shadow-read: the value type can be
    /// compared (said once if not) and fewer than [`IN_FLIGHT`] runs are
    /// under way.
    fn shadow_start(&'static self, eq: Option<EqFn<V>>) -> Option<(EqFn<V>, Running)> {
        let Some(eq) = eq else {
            if !self.warned.2.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    use_case = self.name,
                    "shadow reads need a value type with PartialEq or Serialize to compare; none are made"
                );
            }
            return None;
        };
        let n = self.warned.1.fetch_add(1, Ordering::AcqRel);
        let running = Running(&self.warned.1);
        if n >= IN_FLIGHT {
            tracing::debug!(
                use_case = self.name,
                "shadow read skipped: {IN_FLIGHT} already running"
            );
            return None;
        }
        Some((eq, running))
    }

    /// Runs an async function's shadow read of a hit that served `served`,
    /// as a task (skipped when the value type cannot be compared or there
    /// is no runtime).
    pub fn shadow_async(
        &'static self,
        served: &V,
        eq: Option<EqFn<V>>,
        job: impl FnOnce() -> AsyncJob<V>,
    ) {
        let Some((eq, running)) = self.shadow_start(eq) else {
            return;
        };
        let (served, job) = (served.clone(), job());
        let span = self.shadow_span();
        crate::spawn::spawn(tracing::Instrument::instrument(
            async move {
                let _running = running;
                let r = job.await;
                self.compared(&served, r, eq);
            },
            span,
        ));
    }

    fn shadow_span(&self) -> tracing::Span {
        tracing::debug_span!("cachewright.shadow", use_case = self.name)
    }

    fn compared(&self, served: &V, r: Result<V, RefreshFailed>, eq: EqFn<V>) {
        let outcome = match r {
            Ok(fresh) if eq(served, &fresh) => Shadowed::Match,
            Ok(_) => Shadowed::Mismatch,
            Err(_) => Shadowed::Error,
        };
        match outcome {
            Shadowed::Match => {
                tracing::debug!(use_case = self.name, "shadow read matches")
            }
            Shadowed::Error => {
                tracing::debug!(use_case = self.name, "shadow read: the function failed")
            }
            Shadowed::Mismatch => {
                let n = self.warned.0.fetch_add(1, Ordering::Relaxed);
                if n < WARNED {
                    tracing::warn!(
                        use_case = self.name,
                        key_type = self.spec.key.key_type,
                        logged = n + 1,
                        "shadow read mismatch: the cache served a value the function no longer returns (only the first {WARNED} are logged; all are counted)"
                    );
                } else {
                    tracing::debug!(use_case = self.name, "shadow read mismatch");
                }
            }
        }
        // Counted after it is logged: whoever waits on the count finds the line.
        self.counters.shadowed(outcome);
    }
}
