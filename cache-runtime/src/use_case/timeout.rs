//! Soft and hard timeouts of an async function's loads (`soft_timeout`,
//! `hard_timeout`). The load runs in a task of the caller's runtime, so
//! that a caller who stops waiting does not stop it: it goes on, and its
//! value is stored for the next calls.

use super::*;
use crate::layer::LayerSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The error a call gets when its loader takes longer than `hard_timeout`
/// and no fail-safe value is there to serve instead. A function with a
/// hard timeout returns `Result<_, E>` with `E: From<Timeout>`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// #[derive(Debug)]
/// enum DbError {
///     Timeout(cachewright::Timeout),
/// }
/// impl From<cachewright::Timeout> for DbError {
///     fn from(t: cachewright::Timeout) -> Self {
///         DbError::Timeout(t)
///     }
/// }
///
/// #[cachewright::cached(key = "report:<id>", ttl = 60, hard_timeout = "50ms", name = "Report")]
/// async fn report(id: u32) -> Result<String, DbError> {
///     tokio::time::sleep(Duration::from_secs(3600)).await; // a stuck query
///     Ok(format!("report {id}"))
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let err = report(1).await.unwrap_err();
/// let DbError::Timeout(t) = err;
/// assert_eq!(t.after(), Duration::from_millis(50));
/// assert_eq!(t.use_case(), "Report");
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Timeout {
    use_case: &'static str,
    after: Duration,
}

impl Timeout {
    /// The use case whose loader was too slow.
    pub fn use_case(&self) -> &'static str {
        self.use_case
    }

    /// How long the call waited: the use case's `hard_timeout`.
    pub fn after(&self) -> Duration {
        self.after
    }
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the loader of `{}` took longer than its hard timeout ({:?})",
            self.use_case, self.after
        )
    }
}

impl std::error::Error for Timeout {}

impl<K, V> UseCase<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// [`load_async`](Self::load_async) with the use case's timeouts. The
    /// load (single-flight, remote layers, loader, store) is polled in the
    /// caller's task, as any call's. Past `soft_timeout`, a caller with a
    /// fail-safe value at hand is served it; past `hard_timeout`, it is
    /// served it or gets `timeout`'s error. A caller that stops waiting
    /// while its own loader runs hands that load to a task of its runtime,
    /// which finishes and stores it; a caller that was waiting on another
    /// call's load simply stops waiting. Without a runtime whose timers
    /// work, the call loads as one without timeouts.
    pub async fn load_async_timed<E, F>(
        &'static self,
        miss: Miss<K>,
        share: ShareError<E>,
        loader: F,
        timeout: Option<fn(Timeout) -> E>,
    ) -> Result<V, E>
    where
        E: Send + 'static,
        F: Future<Output = Result<V, E>> + Send + 'static,
    {
        let r = self.spec.resilience;
        let handle = crate::spawn::current_with_timers();
        let (Some(handle), Mode::Normal) = (handle, miss.mode) else {
            return self
                .load(&miss, share, AsyncLoader(loader), Wait::Yield)
                .await;
        };
        let copy = miss.clone();
        let started = Arc::new(AtomicBool::new(false));
        let loader = Started {
            fut: Box::pin(loader),
            started: started.clone(),
        };
        let mut load: Pin<Box<dyn Future<Output = Result<V, E>> + Send>> = Box::pin(async move {
            self.load(&miss, share, AsyncLoader(loader), Wait::Yield)
                .await
        });
        let ms = Duration::from_millis;
        if r.soft_timeout_ms > 0 {
            if let Ok(done) = tokio::time::timeout(ms(r.soft_timeout_ms), &mut load).await {
                return done;
            }
            if let Some(v) = self
                .timeout_fallback(&copy, "took longer than its soft timeout")
                .await
            {
                self.counters.timed_out(false);
                let_go(&handle, load, &started);
                return Ok(v);
            }
        }
        if r.hard_timeout_ms == 0 {
            return load.await;
        }
        let left = r.hard_timeout_ms.saturating_sub(r.soft_timeout_ms);
        if let Ok(done) = tokio::time::timeout(ms(left), &mut load).await {
            return done;
        }
        self.counters.timed_out(true);
        let fallback = self
            .timeout_fallback(&copy, "took longer than its hard timeout")
            .await;
        match (fallback, timeout) {
            (Some(v), _) => {
                let_go(&handle, load, &started);
                Ok(v)
            }
            (None, Some(f)) => {
                let_go(&handle, load, &started);
                Err(f(Timeout {
                    use_case: self.name,
                    after: ms(r.hard_timeout_ms),
                }))
            }
            // No error to give (generated code always has one with a hard
            // timeout): wait on, as the call would uncached.
            (None, None) => load.await,
        }
    }

    /// The value a caller that stopped waiting is served, if any: a live one
    /// loaded meanwhile (by another process), or the fail-safe value, from
    /// L1 or from the remote layers.
    async fn timeout_fallback(&'static self, miss: &Miss<K>, why: &str) -> Option<V> {
        let mut remote = None;
        if self.fail_safe_ms() > 0 && miss.remote != LayerSet::NONE {
            let (live, _, expired) = self.read_remote(miss, true).await;
            if let Some(live) = live {
                return Some(live.value);
            }
            remote = expired;
        }
        let fb = self.fallback(miss, remote)?;
        Some(self.serve_fallback(miss, fb, why, true).value)
    }
}

/// A call that stopped waiting lets its load go: on, in a task of its
/// runtime, when it runs the loader (its value is stored; a fail-safe value
/// it falls back to is served to nobody); dropped when it was waiting on
/// another call's load, or had not reached the loader.
fn let_go<V, E>(
    handle: &tokio::runtime::Handle,
    load: Pin<Box<dyn Future<Output = Result<V, E>> + Send>>,
    started: &AtomicBool,
) where
    V: Send + 'static,
    E: Send + 'static,
{
    if started.load(Ordering::Acquire) {
        let load = super::fail_safe::Unobserved(load);
        handle.spawn(async move {
            let _ = load.await;
        });
    }
}

/// A loader that says when it is first polled: from then on, its call runs
/// the load.
struct Started<F> {
    fut: Pin<Box<F>>,
    started: Arc<AtomicBool>,
}

impl<F: Future> Future for Started<F> {
    type Output = F::Output;
    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        self.started.store(true, Ordering::Release);
        self.fut.as_mut().poll(cx)
    }
}
