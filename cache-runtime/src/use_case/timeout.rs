//! Soft and hard timeouts of an async function's loads (`soft_timeout`,
//! `hard_timeout`). The load runs in a task of the caller's runtime, so
//! that a caller who stops waiting does not stop it: it goes on, and its
//! value is stored for the next calls.

use super::*;

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
    /// [`load_async`](Self::load_async) with the use case's timeouts: the
    /// load (single-flight, remote layers, loader, store) runs as a task
    /// of the caller's runtime. Past `soft_timeout`, a caller with a
    /// fail-safe value at hand is served it; past `hard_timeout`, it is
    /// served it or gets `timeout`'s error. Either way the load goes on and
    /// stores its value. Without a runtime whose timers work, the call
    /// loads as one without timeouts.
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
        let mut task = handle.spawn(async move {
            self.load(&miss, share, AsyncLoader(loader), Wait::Yield)
                .await
        });
        let ms = Duration::from_millis;
        if r.soft_timeout_ms > 0 {
            match tokio::time::timeout(ms(r.soft_timeout_ms), &mut task).await {
                Ok(joined) => return self.joined(joined, &copy, timeout).await,
                Err(_) => {
                    if let Some(fb) = self.fallback(&copy, None) {
                        self.counters.timed_out(false);
                        let why = "took longer than its soft timeout";
                        return Ok(self.serve_fallback(&copy, fb, why).value);
                    }
                }
            }
        }
        if r.hard_timeout_ms == 0 {
            return self.joined(task.await, &copy, timeout).await;
        }
        let left = r.hard_timeout_ms.saturating_sub(r.soft_timeout_ms);
        match tokio::time::timeout(ms(left), &mut task).await {
            Ok(joined) => self.joined(joined, &copy, timeout).await,
            Err(_) => {
                self.counters.timed_out(true);
                self.timed_out(&copy, timeout).await
            }
        }
    }

    /// The call's result from its load task's.
    async fn joined<E>(
        &self,
        joined: Result<Result<V, E>, tokio::task::JoinError>,
        miss: &Miss<K>,
        timeout: Option<fn(Timeout) -> E>,
    ) -> Result<V, E> {
        match joined {
            Ok(r) => r,
            // The loader panicked: so does the call, as it would uncached.
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            // Cancelled: the runtime is shutting down.
            Err(_) => self.timed_out(miss, timeout).await,
        }
    }

    /// What a call that waited its hard timeout gets: the fail-safe value,
    /// or the timeout error. A function with neither waits on (which only
    /// a runtime shutting down makes it do: generated code gives the error
    /// wherever a hard timeout is set).
    async fn timed_out<E>(
        &self,
        miss: &Miss<K>,
        timeout: Option<fn(Timeout) -> E>,
    ) -> Result<V, E> {
        if let Some(fb) = self.fallback(miss, None) {
            let why = "took longer than its hard timeout";
            return Ok(self.serve_fallback(miss, fb, why).value);
        }
        match timeout {
            Some(f) => Err(f(Timeout {
                use_case: self.name,
                after: Duration::from_millis(self.spec.resilience.hard_timeout_ms),
            })),
            None => std::future::pending().await,
        }
    }
}
