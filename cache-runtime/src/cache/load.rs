//! The direct API's `get_or_load`: the value under a key, or a loader's,
//! through the same single-flight loop as `#[cached]`.

use super::*;
use crate::cache::direct::direct_tags;

impl Cache {
    /// The value under `key`, or the loader's, stored for `ttl` in every
    /// layer.
    ///
    /// Concurrent calls for one absent key run `loader` once; the others
    /// wait for its value. An error is returned to the caller that ran the
    /// loader and is not cached; waiters then try in turn.
    ///
    /// # Blocking
    ///
    /// Runs `loader` on the calling thread; waits for a concurrent load of the
    /// same key (without limit, as the loader takes), and for the remote
    /// layers at most their timeouts.
    ///
    /// # Concurrency
    ///
    /// Concurrent calls for one key (of one value type) run one loader; the
    /// others wait and get its value. A failed or panicking leader hands the
    /// load to the next waiter, which runs its own loader.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::Cache;
    ///
    /// let cache = Cache::builder().build();
    /// let key = cache.key("answer", &"life");
    /// let v: Result<u32, String> = cache.get_or_load(&key, None, || Ok(42));
    /// assert_eq!(v, Ok(42));
    /// let again: Result<u32, String> = cache.get_or_load(&key, None, || Ok(0));
    /// assert_eq!(again, Ok(42));
    /// ```
    pub fn get_or_load<T, E>(
        &self,
        key: &Key,
        ttl: Option<Duration>,
        loader: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E>
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    {
        flight::block_here(self.load(key, ttl, SyncLoader(loader), Wait::Block))
    }

    /// The async twin of [`get_or_load`](Self::get_or_load).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use cachewright::Cache;
    ///
    /// let cache = Cache::builder().build();
    /// let key = cache.key("answer", &1);
    /// let v: Result<u32, ()> = cache.get_or_load_async(&key, None, async { Ok(7) }).await;
    /// assert_eq!(v, Ok(7));
    /// # }
    /// ```
    pub async fn get_or_load_async<T, E, F>(
        &self,
        key: &Key,
        ttl: Option<Duration>,
        loader: F,
    ) -> Result<T, E>
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
        F: Future<Output = Result<T, E>>,
    {
        self.load(key, ttl, AsyncLoader(loader), Wait::Yield).await
    }

    /// The value under `key`, or `loader`'s through the single-flight loop.
    pub(super) async fn load<T, E>(
        &self,
        key: &Key,
        ttl: Option<Duration>,
        loader: impl Loader<T, E>,
        wait: Wait,
    ) -> Result<T, E>
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    {
        if let Some((_, v)) = self.read::<T>(key) {
            self.count(true);
            return Ok(v);
        }
        let call = DirectLoad {
            cache: self,
            key,
            ttl,
            loader,
            blocking: wait == Wait::Block,
            types: std::marker::PhantomData,
        };
        let flights = self.flights::<T>();
        let flight_key = key.as_str().to_owned();
        flight::run(&flights, &flight_key, wait, ShareError::none(), call).await
    }

    /// The loads in flight of values of type `T`.
    pub(super) fn flights<T: Clone + Send + Sync + 'static>(&self) -> Arc<Flights<String, T>> {
        let mut all = self.inner.flights.lock().unwrap_or_else(|e| e.into_inner());
        let any = all
            .entry(TypeId::of::<T>())
            .or_insert_with(|| Arc::new(Flights::<String, T>::new()))
            .clone();
        // The map is keyed by the type, so this always succeeds; were it
        // not to, loads of this call would run apart, not fail.
        any.downcast().unwrap_or_else(|_| Arc::new(Flights::new()))
    }

    /// The TTL to store a loaded value with, or `None` not to store it.
    pub(super) fn ttl_said(said: Directive, ttl: Option<Duration>) -> Option<Option<Duration>> {
        match said {
            Directive::Skip => None,
            Directive::Ttl(d) => Some(Some(d)),
            Directive::Default => Some(ttl),
        }
    }
}

/// One `get_or_load` of the direct API, as the single-flight loop drives it.
/// Values travel between callers as `Arc<T>` behind `dyn Any`.
pub(super) struct DirectLoad<'a, T, E, L> {
    cache: &'a Cache,
    key: &'a Key,
    ttl: Option<Duration>,
    loader: L,
    blocking: bool,
    types: std::marker::PhantomData<fn() -> (T, E)>,
}

impl<T, E, L> Load for DirectLoad<'_, T, E, L>
where
    T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    L: Loader<T, E>,
{
    type Value = T;
    type Error = E;

    fn peek(&self) -> Option<(T, Stamp)> {
        match self.cache.read_stamped::<T>(self.key) {
            Some((Freshness::Fresh, v, s)) => Some((v, s)),
            _ => None,
        }
    }

    fn current(&self, stamp: Stamp) -> bool {
        let urn = self.key.as_str();
        self.cache.current(stamp, &direct_tags(self.key), urn)
    }

    async fn remote(&mut self) -> Option<(T, Stamp)> {
        let found = if self.blocking {
            let key = self.key.clone();
            self.cache
                .remote_blocking(|c| async move { c.get_remote_stamped::<T>(&key).await })
                .flatten()
        } else {
            self.cache.get_remote_stamped::<T>(self.key).await
        };
        self.cache.count(found.is_some());
        found
    }

    async fn load(self) -> Result<(T, Stamp), E> {
        // Stamped before the loader reads the source: an invalidation after
        // this moment covers what it returns.
        let stamp = self.cache.inner.clock.stamp();
        let start = Instant::now();
        let (r, said) = self.loader.run().await;
        self.cache.inner.counters.load(start.elapsed(), r.is_ok());
        if let (Ok(v), Some(ttl)) = (&r, Cache::ttl_said(said.directive, self.ttl)) {
            let mut entry = Entry::loaded(v.clone(), stamp, ttl, Duration::ZERO);
            entry.tags = crate::entry::with_tags(&direct_tags(self.key), said.tags);
            if !self.cache.current(stamp, &entry.tags, self.key.as_str()) {
                tracing::debug!(
                    key = self.key.as_str(),
                    "an invalidation came while the value loaded; not stored"
                );
            } else if self.blocking {
                self.cache.set_entry(self.key, entry);
            } else {
                self.cache.set_entry_async(self.key, entry).await;
            }
        }
        r.map(|v| (v, stamp))
    }
}
