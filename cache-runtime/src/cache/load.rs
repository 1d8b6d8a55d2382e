//! The direct API's `get_or_load`: the value under a key, or a loader's,
//! through the same single-flight loop as `#[cached]`.

use super::*;
use crate::cache::direct::direct_tags;

impl Cache {
    /// The value under `key`, or the loader's, stored in every layer as
    /// `options` say: a TTL (`None`, `Some(ttl)`), or [`LoadOptions`] with a
    /// stale-while-revalidate window, a TTL for absences, jitter and tags,
    /// the policy `#[cached]` takes.
    ///
    /// Concurrent calls for one absent key run `loader` once; the others
    /// wait for its value. An error is returned to the caller that ran the
    /// loader and is not cached; waiters then try in turn. Past its TTL,
    /// inside its stale window, a value is returned at once to every caller
    /// but one, whose loader refreshes it (this caller waits for its own
    /// load; the direct API runs no loader in the background).
    ///
    /// # Errors
    ///
    /// Returns the loader's error when this call ran the loader and it
    /// failed; nothing is stored then.
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
        options: impl Into<LoadOptions<T>>,
        loader: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, E>
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    {
        let options = options.into();
        flight::block_here(self.load(key, options, SyncLoader(loader), Wait::Block))
    }

    /// The async twin of [`get_or_load`](Self::get_or_load).
    ///
    /// # Errors
    ///
    /// As [`get_or_load`](Self::get_or_load): the loader's error, when this
    /// call ran the loader and it failed.
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
        options: impl Into<LoadOptions<T>>,
        loader: F,
    ) -> Result<T, E>
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
        F: Future<Output = Result<T, E>>,
    {
        self.load(key, options.into(), AsyncLoader(loader), Wait::Yield)
            .await
    }

    /// The value under `key`, or `loader`'s through the single-flight loop.
    pub(super) async fn load<T, E>(
        &self,
        key: &Key,
        options: LoadOptions<T>,
        loader: impl Loader<T, E>,
        wait: Wait,
    ) -> Result<T, E>
    where
        T: Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    {
        let flights = self.flights::<T>();
        let flight_key = key.as_str().to_owned();
        let call = DirectLoad {
            cache: self,
            key,
            options,
            loader,
            blocking: wait == Wait::Block,
            types: std::marker::PhantomData,
        };
        match self.read::<T>(key) {
            Some((Freshness::Fresh, v)) => {
                self.count(true);
                return Ok(v);
            }
            Some((_, stale)) => {
                self.count(true);
                // Stale: the first caller refreshes (for its own call), every
                // other caller meanwhile gets the stale value.
                return match flights.join(&flight_key) {
                    flight::Role::Leader(lead) => {
                        lead.claim(wait);
                        self.inner.counters.refresh();
                        match lead.running(call.load()).await {
                            Ok(loaded) => {
                                lead.finish(|| flight::Outcome::Done(loaded.clone()));
                                Ok(loaded.value)
                            }
                            Err(e) => {
                                lead.finish(|| flight::Outcome::Failed(None));
                                tracing::debug!(
                                    key = key.as_str(),
                                    "refresh failed; the stale value stays"
                                );
                                let _ = e;
                                Ok(stale)
                            }
                        }
                    }
                    flight::Role::Waiter(_) => Ok(stale),
                };
            }
            None => {}
        }
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
}

/// One `get_or_load` of the direct API, as the single-flight loop drives it.
/// Values travel between callers as `Arc<T>` behind `dyn Any`.
pub(super) struct DirectLoad<'a, T, E, L> {
    cache: &'a Cache,
    key: &'a Key,
    options: LoadOptions<T>,
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

    fn peek(&self) -> Option<Stamped<T>> {
        match self.cache.read_stamped::<T>(self.key) {
            Some((Freshness::Fresh, found)) => Some(found),
            _ => None,
        }
    }

    fn current(&self, value: &Stamped<T>) -> bool {
        self.cache.shareable(value, self.key.as_str())
    }

    async fn remote(&mut self) -> Option<Stamped<T>> {
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

    async fn load(self) -> Result<Stamped<T>, E> {
        // Stamped before the loader reads the source: an invalidation after
        // this moment covers what it returns.
        let stamp = self.cache.inner.clock.stamp();
        let start = Instant::now();
        let (r, said) = self.loader.run().await;
        let took = start.elapsed();
        self.cache
            .inner
            .counters
            .load(took, r.is_ok() && !said.failed);
        crate::metrics::load_took(self.cache.name(), "direct", took);
        let value = r?;
        let mut extra = self.options.tags;
        extra.extend(said.tags);
        let loaded = Stamped {
            value,
            stamp,
            tags: crate::entry::with_tags(&direct_tags(self.key), extra),
            since: stamp,
        };
        let negative = self.options.is_negative.is_some_and(|f| f(&loaded.value));
        // A result marked failed is returned, not stored.
        let life = (!said.failed)
            .then(|| self.options.policy.lifetime(negative, said.directive))
            .flatten();
        if let Some(life) = life {
            let now = self.cache.inner.clock.now_ms();
            let mut entry = Entry::loaded(loaded.value.clone(), stamp, now, life.ttl, life.swr);
            entry.negative = life.negative;
            entry.tags = loaded.tags.clone();
            if !self.cache.current(stamp, &entry.tags, self.key.as_str()) {
                tracing::debug!(
                    key = self.key.as_str(),
                    "an invalidation came while the value loaded; not stored"
                );
            } else if self.blocking {
                self.cache.store_entry(self.key, entry, stamp);
            } else {
                self.cache.store_entry_async(self.key, entry, stamp).await;
            }
        }
        Ok(loaded)
    }
}
