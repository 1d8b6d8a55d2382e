//! Background writers: one key refreshed on an interval, one writer per
//! key in a process and, across processes, a lease.

use super::*;
use crate::entry::Entry;

/// A background writer: see the module docs and `#[bg_writer]`.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// static VERSION: AtomicU32 = AtomicU32::new(0);
///
/// /// Refreshed every 5 minutes; read from memory everywhere else.
/// #[cachewright::bg_writer(key = "feature_flags", interval = "5m")]
/// fn flags() -> Vec<String> {
///     VERSION.fetch_add(1, Ordering::SeqCst);
///     vec!["new-checkout".to_string()]
/// }
///
/// let current = flags.get().unwrap(); // loads once on first use, then serves from memory
/// assert_eq!(current[0], "new-checkout");
/// assert_eq!(flags.ttl(), Some(std::time::Duration::from_secs(600)), "twice the interval");
/// cachewright::shutdown();
/// ```
pub struct BgWriter<T: 'static> {
    spec: BgSpec,
    loader: BgLoader<T>,
    cache: fn() -> Cache,
    shared: OnceLock<Arc<Shared<T>>>,
}

impl<T> fmt::Debug for BgWriter<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BgWriter")
            .field("spec", &self.spec)
            .field("loader", &self.loader)
            .finish_non_exhaustive()
    }
}

impl<T> BgWriter<T>
where
    T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    /// What `#[bg_writer]` expands to.
    #[doc(hidden)]
    pub const fn new(spec: BgSpec, loader: BgLoader<T>, cache: fn() -> Cache) -> Self {
        BgWriter {
            spec,
            loader,
            cache,
            shared: OnceLock::new(),
        }
    }

    fn shared(&'static self) -> &'static Arc<Shared<T>> {
        self.shared.get_or_init(|| {
            let s = Arc::new(Shared::new((self.cache)(), self.spec.key, true));
            super::report(&s, self.spec.key);
            s
        })
    }

    /// The key this writer owns.
    ///
    /// # Examples
    ///
    /// ```
    /// #[cachewright::bg_writer(key = "rates", interval = "1m")]
    /// fn rates() -> Vec<u32> { vec![1] }
    ///
    /// assert_eq!(rates.key().as_str(), "urn:cachewright:v1:bg:rates");
    /// ```
    pub fn key(&'static self) -> &'static Key {
        &self.shared().key
    }

    /// The refresh interval (`None`: on demand only).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// #[cachewright::bg_writer(key = "rates", interval = "90s")]
    /// fn rates() -> Vec<u32> { vec![1] }
    ///
    /// #[cachewright::bg_writer(key = "on_demand", interval = 0)]
    /// fn on_demand() -> Vec<u32> { vec![1] }
    ///
    /// assert_eq!(rates.interval(), Some(Duration::from_secs(90)));
    /// assert_eq!(on_demand.interval(), None);
    /// ```
    pub fn interval(&self) -> Option<Duration> {
        (self.spec.interval_ms > 0).then(|| Duration::from_millis(self.spec.interval_ms))
    }

    /// How long a written value lives in the cache: `ttl`, or twice the
    /// interval (`None`: until evicted, for on-demand writers without `ttl`).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// #[cachewright::bg_writer(key = "rates", interval = "1m", ttl = "10m")]
    /// fn rates() -> Vec<u32> { vec![1] }
    ///
    /// assert_eq!(rates.ttl(), Some(Duration::from_secs(600)));
    /// ```
    pub fn ttl(&self) -> Option<Duration> {
        match (self.spec.ttl_ms, self.spec.interval_ms) {
            (Some(t), _) => Some(Duration::from_millis(t)),
            (None, 0) => None,
            (None, i) => Some(Duration::from_millis(i.saturating_mul(2))),
        }
    }

    /// How long a lease lasts unrenewed: twice the interval, at least 1 s,
    /// and at least twice the time the cache's layers may take for a read
    /// and a write, so that a write made right after a renewal ends long
    /// before the lease could pass to another replica.
    fn lease_ttl(&'static self) -> Duration {
        let layers = crate::layer::budget_of(self.shared().cache.layers());
        Duration::from_millis(self.spec.interval_ms.saturating_mul(2).max(1_000))
            .max(layers.saturating_mul(2))
    }

    /// How many loads ran (scheduled and on demand), and how many failed.
    ///
    /// # Examples
    ///
    /// ```
    /// #[cachewright::bg_writer(key = "counted", interval = 0)]
    /// fn counted() -> Result<u32, String> { Err("source down".into()) }
    ///
    /// assert!(counted.get().is_err());
    /// assert_eq!(counted.counts(), (1, 1), "one load, one failure");
    /// ```
    pub fn counts(&'static self) -> (u64, u64) {
        let s = self.shared();
        (
            s.loads.load(Ordering::Relaxed),
            s.errors.load(Ordering::Relaxed),
        )
    }

    /// Registers the writer and starts its schedule (unless `interval = 0`).
    /// Called on first use; call it at startup to load before the first
    /// request. Starting twice is harmless.
    ///
    /// # Errors
    ///
    /// [`BgError::Duplicate`] when another writer owns the key in this
    /// process.
    ///
    /// # Examples
    ///
    /// ```
    /// #[cachewright::bg_writer(key = "warm", interval = "1h")]
    /// fn warm() -> u32 { 42 }
    ///
    /// warm.start().unwrap(); // loads now, in the background
    /// warm.start().unwrap(); // harmless
    /// assert_eq!(*warm.get().unwrap(), 42);
    /// cachewright::shutdown();
    /// ```
    pub fn start(&'static self) -> Result<(), BgError> {
        self.start_with(self.spec.run_immediately)
    }

    fn start_with(&'static self, immediately: bool) -> Result<(), BgError> {
        let s = self.shared();
        if s.cache.is_closed() {
            return Err(BgError::Closed(s.key.as_str().to_owned()));
        }
        {
            let mut writers = WRITERS.lock().unwrap_or_else(|e| e.into_inner());
            let me = self as *const Self as usize;
            match writers.get(s.key.as_str()) {
                Some(&other) if other != me => {
                    return Err(BgError::Duplicate(s.key.as_str().to_owned()))
                }
                _ => {
                    writers.insert(s.key.as_str().to_owned(), me);
                }
            }
        }
        s.stopped.store(false, Ordering::Release);
        if self.spec.interval_ms == 0 {
            return Ok(());
        }
        let mut task = s.task.lock().unwrap_or_else(|e| e.into_inner());
        if task.is_some() {
            return Ok(());
        }
        let period = Duration::from_millis(self.spec.interval_ms);
        let Some(handle) = crate::spawn::spawn(every(period, immediately, move || self.tick()))
        else {
            return Err(BgError::Unavailable(s.key.as_str().to_owned()));
        };
        *task = Some(handle);
        drop(task);
        register(s);
        tracing::debug!(
            writer = self.spec.name,
            key = s.key.as_str(),
            "background writer started"
        );
        Ok(())
    }

    /// Stops this writer's schedule and releases its lease, without
    /// touching other writers. Its value is still served from memory;
    /// [`start`](Self::start) resumes the schedule.
    ///
    /// Outside a tokio runtime it waits for the release (at most 2 s);
    /// inside one it never blocks: the release runs in the background
    /// (await [`stop_async`](Self::stop_async) to wait for it).
    ///
    /// # Examples
    ///
    /// ```
    /// #[cachewright::bg_writer(key = "stoppable", interval = "1m")]
    /// fn stoppable() -> u32 { 7 }
    ///
    /// assert_eq!(*stoppable.get().unwrap(), 7);
    /// stoppable.stop();
    /// assert_eq!(stoppable.try_get().as_deref(), Some(&7), "still served from memory");
    /// ```
    pub fn stop(&'static self) {
        let Some(release) = self.halt() else {
            return;
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            crate::spawn::spawn_io(release);
        } else {
            let _ = cachewright_backends::io::block_on(release, Duration::from_secs(2));
        }
    }

    /// The async twin of [`stop`](Self::stop): returns once the lease is
    /// released.
    pub async fn stop_async(&'static self) {
        if let Some(release) = self.halt() {
            release.await;
        }
    }

    fn halt(&'static self) -> Option<Pin<Box<dyn Future<Output = ()> + Send>>> {
        let s = self.shared();
        unregister(s);
        s.halt()
    }

    /// One scheduled tick: load if this replica holds the lease, otherwise
    /// take what the holder wrote.
    async fn tick(&'static self) {
        let s = self.shared();
        if self.hold_lease().await {
            let _g = s.loading.lock().await;
            let _ = self.load_locked(true).await;
        } else {
            let _g = s.loading.lock().await;
            let _ = s.pull().await;
        }
    }

    /// Whether this replica may load this tick: only when the first remote
    /// layer confirmed that it holds the lease. If the lease cannot be
    /// checked (Redis down, a timeout, the breaker open), another replica
    /// may hold it: this tick's load is skipped and the current value
    /// served. Without a remote layer there is no other replica to share
    /// with: it always holds.
    async fn hold_lease(&'static self) -> bool {
        let s = self.shared();
        let (Some(first), Some(lease)) = (s.cache.layers().first(), s.lease.as_ref()) else {
            return true;
        };
        let (key, token) = (&lease.key, lease.token());
        let ttl = self.lease_ttl();
        match first.renew_if(key, token.to_vec(), ttl).await {
            Ok(true) => true,
            Ok(false) => matches!(
                first.set_if_absent(key, token.to_vec(), ttl).await,
                Ok(true)
            ),
            Err(_) => false,
        }
    }

    /// Renews the lease if this replica still holds it; whether it does.
    /// Without a remote layer it always does.
    async fn renew(&'static self) -> bool {
        let s = self.shared();
        let (Some(first), Some(lease)) = (s.cache.layers().first(), s.lease.as_ref()) else {
            return true;
        };
        matches!(
            first
                .renew_if(&lease.key, lease.token().to_vec(), self.lease_ttl())
                .await,
            Ok(true)
        )
    }

    /// Runs the loader (the `loading` lock is held); `holds`: whether this
    /// replica holds the lease, and so may write what it loads.
    ///
    /// While the loader runs, the lease is renewed every third of its TTL,
    /// so that a load longer than the lease keeps it. The value is written
    /// only if the lease is still ours right before the write (a renewal:
    /// check-and-set), and only if no invalidation of the key came after
    /// the load began (its entry is stamped with that start). A replica
    /// without the lease keeps what it loaded in its own memory. On failure
    /// the previous value stays.
    async fn load_locked(&'static self, holds: bool) -> Result<Arc<T>, BgError> {
        let s = self.shared();
        let stamp = s.cache.clock().stamp();
        let r = if holds {
            self.renewing(self.run_loader()).await
        } else {
            self.run_loader().await
        };
        s.loads.fetch_add(1, Ordering::Relaxed);
        match r {
            Ok(v) => {
                s.outcome(None);
                if !s.cache.marks().valid(stamp, &s.hashes) {
                    // Whoever asked may have it; nobody else.
                    tracing::debug!(
                        writer = self.spec.name,
                        key = s.key.as_str(),
                        "the key was invalidated during the load; not stored"
                    );
                    return Ok(Arc::new(v));
                }
                if holds && self.renew().await {
                    let now = s.cache.clock().now_ms();
                    let entry = Entry::loaded(v.clone(), stamp, now, self.ttl(), Duration::ZERO);
                    s.cache.set_entry_async(&s.key, entry).await;
                    tracing::debug!(
                        writer = self.spec.name,
                        key = s.key.as_str(),
                        "background value written"
                    );
                } else {
                    tracing::debug!(
                        writer = self.spec.name,
                        key = s.key.as_str(),
                        "this replica does not hold the lease; the value is kept in memory only"
                    );
                }
                let v = Arc::new(v);
                s.keep(v.clone(), stamp);
                Ok(v)
            }
            Err(BgFailure(message)) => {
                s.errors.fetch_add(1, Ordering::Relaxed);
                s.outcome(Some(&message));
                tracing::warn!(writer = self.spec.name, key = s.key.as_str(), error = %message, "background load failed; the previous value stays");
                s.any().ok_or(BgError::Failed {
                    key: self.spec.key.to_owned(),
                    message,
                })
            }
        }
    }

    /// `load`, with the lease renewed every third of its TTL while it runs
    /// (when there is a lease, and timers to renew it by).
    async fn renewing<F: Future>(&'static self, load: F) -> F::Output {
        let s = self.shared();
        if s.cache.layers().is_empty() || crate::spawn::current_with_timers().is_none() {
            return load.await;
        }
        let every = (self.lease_ttl() / 3).max(Duration::from_millis(1));
        let mut renewals = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        renewals.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(load);
        loop {
            tokio::select! {
                out = &mut load => return out,
                _ = renewals.tick() => {
                    // Lost or unconfirmed: the check before the write decides.
                    let _ = self.renew().await;
                }
            }
        }
    }

    /// The loader's result; a panic in it is a failure like an error.
    async fn run_loader(&'static self) -> Result<T, BgFailure> {
        match self.loader {
            BgLoader::Async(f) => CatchPanic(f())
                .await
                .unwrap_or_else(|p| Err(panicked(self.spec.name, &*p))),
            BgLoader::Sync(f) => match tokio::runtime::Handle::try_current() {
                Ok(h) => h.spawn_blocking(f).await.unwrap_or_else(|e| {
                    Err(match e.try_into_panic() {
                        Ok(p) => panicked(self.spec.name, &*p),
                        Err(_) => BgFailure("the loader was cancelled".into()),
                    })
                }),
                Err(_) => std::panic::catch_unwind(f)
                    .unwrap_or_else(|p| Err(panicked(self.spec.name, &*p))),
            },
        }
    }

    fn ensure_started(&'static self) -> Result<(), BgError> {
        let s = self.shared();
        let started = s.task.lock().unwrap_or_else(|e| e.into_inner()).is_some();
        if started || s.stopped.load(Ordering::Acquire) {
            return Ok(());
        }
        // Started by a read, which loads (or finds) the value itself: the
        // first scheduled load comes one interval later.
        self.start_with(false)
    }

    /// The value, from memory, without waiting; `None` before the first
    /// load or after an invalidation of the key.
    ///
    /// # Examples
    ///
    /// ```
    /// #[cachewright::bg_writer(key = "lazy", interval = 0)]
    /// fn lazy() -> u32 { 7 }
    ///
    /// assert_eq!(lazy.try_get(), None, "not loaded yet");
    /// lazy.get().unwrap();
    /// assert_eq!(lazy.try_get().as_deref(), Some(&7));
    /// ```
    pub fn try_get(&'static self) -> Option<Arc<T>> {
        self.shared().valid()
    }

    /// The value. From memory when there is one; otherwise (before the
    /// first load, or after an invalidation) the key is read from the cache
    /// and, if absent, loaded once, however many callers ask together.
    ///
    /// # Errors
    ///
    /// [`BgError::Failed`] when that load fails and no earlier value exists;
    /// [`BgError::Duplicate`] when another writer owns the key.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// #[cachewright::bg_writer(key = "menu", interval = 0)]
    /// async fn menu() -> Vec<String> { vec!["soup".to_string()] }
    ///
    /// assert_eq!(menu.get_async().await.unwrap()[0], "soup");
    /// # }
    /// ```
    pub async fn get_async(&'static self) -> Result<Arc<T>, BgError> {
        self.ensure_started()?;
        let s = self.shared();
        if let Some(v) = s.valid() {
            return Ok(v);
        }
        let _g = s.loading.lock().await;
        if let Some(v) = s.valid() {
            return Ok(v);
        }
        if let Some(v) = s.pull().await {
            return Ok(v);
        }
        let holds = self.hold_lease().await;
        self.load_locked(holds).await
    }

    /// The sync twin of [`get_async`](Self::get_async): from memory without
    /// waiting when there is a value; otherwise it waits for the one load.
    ///
    /// # Errors
    ///
    /// As [`get_async`](Self::get_async).
    ///
    /// # Blocking
    ///
    /// Without a value in memory, waits for the one load (at most five
    /// minutes; then [`BgError::Unavailable`]).
    ///
    /// # Examples
    ///
    /// ```
    /// #[cachewright::bg_writer(key = "flags", interval = "5m")]
    /// fn flags() -> Vec<String> { vec!["dark-mode".to_string()] }
    ///
    /// assert_eq!(flags.get().unwrap()[0], "dark-mode");
    /// cachewright::shutdown();
    /// ```
    pub fn get(&'static self) -> Result<Arc<T>, BgError> {
        if let Some(v) = self.shared().valid() {
            self.ensure_started()?;
            return Ok(v);
        }
        // The loader is user code: it runs on cachewright's runtime for user
        // work, never on the I/O runtime.
        crate::spawn::block_on(self.get_async(), Duration::from_secs(300))
            .unwrap_or_else(|| Err(BgError::Unavailable(self.spec.key.to_owned())))
    }

    /// Loads now (waiting for a load in progress to finish first), whatever
    /// the schedule. The value is written to the cache only if this replica
    /// holds the lease (always, without a remote layer); otherwise it is
    /// kept in this process's memory.
    ///
    /// # Errors
    ///
    /// As [`get_async`](Self::get_async).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// static N: AtomicU32 = AtomicU32::new(0);
    ///
    /// #[cachewright::bg_writer(key = "counter", interval = 0)]
    /// fn counter() -> u32 { N.fetch_add(1, Ordering::SeqCst) }
    ///
    /// assert_eq!(*counter.get_async().await.unwrap(), 0);
    /// assert_eq!(*counter.refresh().await.unwrap(), 1, "loaded again now");
    /// # }
    /// ```
    pub async fn refresh(&'static self) -> Result<Arc<T>, BgError> {
        let _g = self.shared().loading.lock().await;
        let holds = self.hold_lease().await;
        self.load_locked(holds).await
    }

    /// Invalidates the key everywhere (every layer and process): the next
    /// read loads afresh.
    ///
    /// # Blocking
    ///
    /// As [`Cache::delete`].
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// static N: AtomicU32 = AtomicU32::new(0);
    ///
    /// #[cachewright::bg_writer(key = "prices", interval = 0)]
    /// fn prices() -> u32 { N.fetch_add(1, Ordering::SeqCst) }
    ///
    /// assert_eq!(*prices.get().unwrap(), 0);
    /// prices.invalidate();
    /// assert_eq!(prices.try_get(), None);
    /// assert_eq!(*prices.get().unwrap(), 1, "loaded afresh");
    /// ```
    pub fn invalidate(&'static self) {
        let s = self.shared();
        s.cache.delete(&s.key);
        s.drop_current();
    }
}

/// The failure of a loader that panicked. Its message may carry anything,
/// so it is logged at debug level only.
fn panicked(writer: &str, payload: &(dyn std::any::Any + Send)) -> BgFailure {
    let message = payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("");
    tracing::debug!(writer, panic = message, "background loader panicked");
    BgFailure("the loader panicked".into())
}

/// A loader's future, with a panic while it is polled turned into an
/// `Err` of the panic's payload (the future is not polled again).
struct CatchPanic<F>(F);

impl<F: Future + Unpin> Future for CatchPanic<F> {
    type Output = Result<F::Output, Box<dyn std::any::Any + Send>>;

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let inner = &mut self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| Pin::new(inner).poll(cx))) {
            Ok(std::task::Poll::Ready(v)) => std::task::Poll::Ready(Ok(v)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(p) => std::task::Poll::Ready(Err(p)),
        }
    }
}
