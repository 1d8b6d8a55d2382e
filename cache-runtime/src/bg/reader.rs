//! Background readers: a local copy of a writer's key.

use super::*;

/// A background reader: a local copy of a writer's key, pulled from the
/// writer's cache on its own interval; on a miss it pulls once.
///
/// # Examples
///
/// ```
/// use cachewright::{BgReader, Cache};
/// use std::sync::LazyLock;
///
/// static SHARED: LazyLock<Cache> = LazyLock::new(|| Cache::builder().build());
/// static CONFIG: BgReader<Vec<String>> = BgReader::new("daily_config")
///     .interval_secs(60)
///     .cache(&SHARED);
///
/// // The writer (in this or another process) stores under the same key.
/// SHARED.set(&SHARED.key("bg", &"daily_config"), vec!["on".to_string()], None);
/// assert_eq!(CONFIG.get().unwrap()[0], "on");
/// cachewright::shutdown();
/// ```
pub struct BgReader<T: 'static> {
    key: &'static str,
    interval_ms: u64,
    ttl_ms: Option<u64>,
    run_immediately: bool,
    cache: Option<&'static (dyn AsCache + Sync)>,
    on_error: Option<fn(&BgError)>,
    shared: OnceLock<Arc<Shared<T>>>,
}

impl<T> fmt::Debug for BgReader<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BgReader")
            .field("key", &self.key)
            .field("interval_ms", &self.interval_ms)
            .finish_non_exhaustive()
    }
}

impl<T> BgReader<T>
where
    T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
{
    /// A reader of `key` in the default cache, pulling every minute.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::BgReader;
    ///
    /// static CONFIG: BgReader<u32> = BgReader::new("config");
    /// let cache = cachewright::default_cache();
    /// cache.set(&cache.key("bg", &"config"), 3u32, None);
    /// assert_eq!(*CONFIG.get().unwrap(), 3);
    /// cachewright::shutdown();
    /// ```
    pub const fn new(key: &'static str) -> Self {
        BgReader {
            key,
            interval_ms: 60_000,
            ttl_ms: None,
            run_immediately: true,
            cache: None,
            on_error: None,
            shared: OnceLock::new(),
        }
    }

    /// How often to pull (0: never on a schedule, only on a miss).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::BgReader;
    ///
    /// // Pulled only on a miss.
    /// static ON_MISS: BgReader<u32> = BgReader::new("on_miss").interval_secs(0);
    /// let cache = cachewright::default_cache();
    /// cache.set(&cache.key("bg", &"on_miss"), 1u32, None);
    /// assert_eq!(ON_MISS.try_get(), None);
    /// assert_eq!(*ON_MISS.get().unwrap(), 1);
    /// ```
    pub const fn interval_secs(mut self, secs: u64) -> Self {
        self.interval_ms = secs.saturating_mul(1000);
        self
    }

    /// How often to pull, in milliseconds.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::BgReader;
    ///
    /// static FAST: BgReader<u32> = BgReader::new("fast").interval_ms(50);
    /// let cache = cachewright::default_cache();
    /// cache.set(&cache.key("bg", &"fast"), 1u32, None);
    /// FAST.start();
    /// # for _ in 0..500 { if FAST.try_get().is_some() { break } std::thread::sleep(std::time::Duration::from_millis(10)); }
    /// assert_eq!(FAST.try_get().as_deref(), Some(&1), "pulled by the schedule");
    /// cachewright::shutdown();
    /// ```
    pub const fn interval_ms(mut self, ms: u64) -> Self {
        self.interval_ms = ms;
        self
    }

    /// How long the local copy is served without a successful pull
    /// (default twice the interval).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::BgReader;
    ///
    /// static LONG_LIVED: BgReader<u32> = BgReader::new("long_lived").interval_secs(0).ttl_secs(3_600);
    /// let cache = cachewright::default_cache();
    /// cache.set(&cache.key("bg", &"long_lived"), 1u32, None);
    /// assert_eq!(*LONG_LIVED.get().unwrap(), 1);
    /// assert_eq!(LONG_LIVED.try_get().as_deref(), Some(&1), "served for an hour");
    /// ```
    pub const fn ttl_secs(mut self, secs: u64) -> Self {
        self.ttl_ms = Some(secs.saturating_mul(1000));
        self
    }

    /// Pull at start rather than one interval later (default true).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::BgReader;
    ///
    /// static LATER: BgReader<u32> = BgReader::new("later").interval_secs(60).run_immediately(false);
    /// LATER.start();
    /// assert_eq!(LATER.try_get(), None, "the first pull is a minute away");
    /// cachewright::shutdown();
    /// ```
    pub const fn run_immediately(mut self, on: bool) -> Self {
        self.run_immediately = on;
        self
    }

    /// The writer's cache to pull from (default: the default cache).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{BgReader, NamedCache};
    ///
    /// static SHARED: NamedCache = NamedCache::new("shared");
    /// static PLAN: BgReader<String> = BgReader::new("plan").interval_secs(0).cache(&SHARED);
    /// SHARED.cache().set(&SHARED.cache().key("bg", &"plan"), "pro".to_string(), None);
    /// assert_eq!(*PLAN.get().unwrap(), "pro");
    /// ```
    pub const fn cache(mut self, cache: &'static (dyn AsCache + Sync)) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Called when a scheduled pull finds nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{BgError, BgReader};
    /// use std::sync::atomic::{AtomicBool, Ordering};
    ///
    /// static MISSED: AtomicBool = AtomicBool::new(false);
    /// fn report(e: &BgError) {
    ///     assert!(matches!(e, BgError::NoValue(_)));
    ///     MISSED.store(true, Ordering::SeqCst);
    /// }
    /// static EMPTY: BgReader<u32> = BgReader::new("empty").interval_ms(10).on_error(report);
    /// EMPTY.start();
    /// for _ in 0..500 {
    ///     if MISSED.load(Ordering::SeqCst) { break }
    ///     std::thread::sleep(std::time::Duration::from_millis(10));
    /// }
    /// assert!(MISSED.load(Ordering::SeqCst));
    /// cachewright::shutdown();
    /// ```
    pub const fn on_error(mut self, f: fn(&BgError)) -> Self {
        self.on_error = Some(f);
        self
    }

    fn shared(&'static self) -> &'static Arc<Shared<T>> {
        self.shared.get_or_init(|| {
            let cache = match self.cache {
                Some(c) => c.as_cache(),
                None => crate::global::default_cache().clone(),
            };
            Arc::new(Shared::new(cache, self.key, false))
        })
    }

    fn fresh(&'static self) -> Option<Arc<T>> {
        let s = self.shared();
        let v = s.valid()?;
        let ttl = self.ttl_ms.unwrap_or(self.interval_ms.saturating_mul(2));
        if ttl > 0 {
            let created = s
                .current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .as_ref()?
                .stamp;
            let created = crate::clock::ms_of_stamp(created);
            if s.cache.clock().precise_ms() >= created.saturating_add(ttl) {
                return None;
            }
        }
        Some(v)
    }

    /// Starts the pull schedule (done on first use). Harmless twice.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::BgReader;
    ///
    /// static CONFIG: BgReader<u32> = BgReader::new("config_at_startup").interval_secs(60);
    /// let cache = cachewright::default_cache();
    /// cache.set(&cache.key("bg", &"config_at_startup"), 9u32, None);
    /// CONFIG.start(); // pulls now, in the background
    /// CONFIG.start(); // harmless
    /// assert_eq!(*CONFIG.get().unwrap(), 9);
    /// cachewright::shutdown();
    /// ```
    pub fn start(&'static self) {
        let s = self.shared();
        if s.cache.is_closed() {
            // Its cache was closed: no schedule starts again.
            return;
        }
        s.stopped.store(false, Ordering::Release);
        if self.interval_ms == 0 {
            return;
        }
        let mut task = s.task.lock().unwrap_or_else(|e| e.into_inner());
        if task.is_some() {
            return;
        }
        let period = Duration::from_millis(self.interval_ms);
        let immediately = self.run_immediately;
        let handle = crate::spawn::spawn(every(period, immediately, move || async move {
            let s = self.shared();
            let _g = s.loading.lock().await;
            if s.pull().await.is_none() {
                if let Some(f) = self.on_error {
                    f(&BgError::NoValue(s.key.as_str().to_owned()));
                }
            }
        }));
        *task = handle;
        drop(task);
        register(s);
    }

    /// The local copy, without waiting, if there is one.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::BgReader;
    ///
    /// static SETTINGS: BgReader<u32> = BgReader::new("settings").interval_secs(0);
    /// assert_eq!(SETTINGS.try_get(), None, "nothing pulled yet");
    /// ```
    pub fn try_get(&'static self) -> Option<Arc<T>> {
        self.fresh()
    }

    /// The local copy; on a miss, one pull from the writer's cache (however
    /// many callers ask together).
    ///
    /// # Errors
    ///
    /// [`BgError::NoValue`] when the writer's cache has nothing either.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use cachewright::{BgError, BgReader};
    ///
    /// static LIMITS: BgReader<u32> = BgReader::new("limits").interval_secs(0);
    /// assert!(matches!(LIMITS.get_async().await, Err(BgError::NoValue(_))));
    /// let cache = cachewright::default_cache();
    /// cache.set_async(&cache.key("bg", &"limits"), 100u32, None).await;
    /// assert_eq!(*LIMITS.get_async().await.unwrap(), 100);
    /// # }
    /// ```
    pub async fn get_async(&'static self) -> Result<Arc<T>, BgError> {
        let s = self.shared();
        if !s.stopped.load(Ordering::Acquire) {
            self.start();
        }
        if let Some(v) = self.fresh() {
            return Ok(v);
        }
        let _g = s.loading.lock().await;
        if let Some(v) = self.fresh() {
            return Ok(v);
        }
        match s.pull().await {
            Some(v) => Ok(v),
            // A stale local copy beats nothing when the source is empty.
            None => s
                .any()
                .ok_or_else(|| BgError::NoValue(s.key.as_str().to_owned())),
        }
    }

    /// The sync twin of [`get_async`](Self::get_async).
    ///
    /// # Errors
    ///
    /// As [`get_async`](Self::get_async).
    ///
    /// # Blocking
    ///
    /// Without a fresh local copy, waits for one pull from the writer's cache
    /// (at most a minute; then [`BgError::Unavailable`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::{BgError, BgReader};
    ///
    /// static LIMITS: BgReader<u32> = BgReader::new("limits").interval_secs(0);
    /// assert!(matches!(LIMITS.get(), Err(BgError::NoValue(_))));
    /// let cache = cachewright::default_cache();
    /// cache.set(&cache.key("bg", &"limits"), 100u32, None);
    /// assert_eq!(*LIMITS.get().unwrap(), 100);
    /// ```
    pub fn get(&'static self) -> Result<Arc<T>, BgError> {
        if let Some(v) = self.fresh() {
            return Ok(v);
        }
        cachewright_backends::io::block_on(self.get_async(), Duration::from_secs(60))
            .unwrap_or_else(|_| Err(BgError::Unavailable(self.key.to_owned())))
    }
}
