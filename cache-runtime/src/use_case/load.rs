//! A missed call's load: through the single-flight loop, the remote
//! layers, the loader, and back into every layer.

use super::*;
use crate::entry::with_tags;

impl<K, V> UseCase<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Loads a missed call through single-flight and stores the result.
    /// The sync adapter of [`load_async`](Self::load_async): the same loop,
    /// with waiters blocking and the remote layers read on cachewright's
    /// I/O runtime.
    pub fn load_sync<E>(
        &'static self,
        miss: Miss<K>,
        share: ShareError<E>,
        loader: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        flight::block_here(self.load(&miss, share, SyncLoader(loader), Wait::Block))
    }

    /// Loads a missed call through single-flight and stores the result;
    /// waiting does not block the executor, and a cancelled leader hands the
    /// load on.
    pub async fn load_async<E, F>(
        &'static self,
        miss: Miss<K>,
        share: ShareError<E>,
        loader: F,
    ) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        self.load(&miss, share, AsyncLoader(loader), Wait::Yield)
            .await
    }

    pub(super) async fn load<E>(
        &'static self,
        miss: &Miss<K>,
        share: ShareError<E>,
        loader: impl Loader<V, E>,
        wait: Wait,
    ) -> Result<V, E> {
        match miss.mode {
            Mode::Bypass => {
                self.counters.bypass();
                loader.run().await.0
            }
            Mode::Refresh => self.call(miss, loader, wait).load().await.map(|l| l.value),
            Mode::Normal => {
                flight::run(
                    &self.flights,
                    &miss.key,
                    wait,
                    share,
                    self.call(miss, loader, wait),
                )
                .await
            }
        }
    }

    pub(super) fn call<'m, E, L: Loader<V, E>>(
        &'static self,
        miss: &'m Miss<K>,
        loader: L,
        wait: Wait,
    ) -> Call<'m, K, V, E, L> {
        Call {
            uc: self,
            miss,
            loader,
            blocking: wait == Wait::Block,
            failed: LayerSet::NONE,
            fallback: None,
            refresh: false,
            error: std::marker::PhantomData,
        }
    }

    pub(super) fn peek_fresh(&self, miss: &Miss<K>) -> Option<Stamped<V>> {
        if !miss.local {
            return None;
        }
        // Before the check: a reconnect after it makes the value suspect.
        let since = self.clock.stamp();
        self.with_fresh(miss, self.clock.now_ms(), |h| Stamped {
            value: h.value().clone(),
            stamp: h.stamp(),
            tags: h.view(miss.urn.entity()).tags(),
            since,
        })
    }

    /// `f` of the call's entry in L1 if it is fresh at `now` and no
    /// invalidation covers it.
    pub(super) fn with_fresh<R>(
        &self,
        miss: &Miss<K>,
        now: Millis,
        f: impl FnOnce(&Held<V>) -> R,
    ) -> Option<R> {
        let marks = &*self.marks;
        self.store
            .with(
                miss.hash,
                |k| *k == miss.key,
                |h| (h.freshness(now) == Freshness::Fresh && h.valid(marks)).then(|| f(h)),
            )
            .flatten()
    }

    /// The entry to store for a loaded value (its tags all it is to be
    /// stored with), or `None` to keep it out: a result not to cache, or one
    /// an invalidation made while it loaded already covers (it could never
    /// be served).
    pub(super) fn entry(
        &self,
        miss: &Miss<K>,
        loaded: Stamped<V>,
        directive: Directive,
    ) -> Option<Entry<V>> {
        let Stamped {
            value, stamp, tags, ..
        } = loaded;
        let negative = self.negative.is_some_and(|f| f(&value));
        let Some(life) = self.policy.lifetime(negative, directive) else {
            tracing::debug!(
                use_case = self.name,
                key = miss.urn.as_str(),
                "result not cached"
            );
            return None;
        };
        let mut entry = Entry::loaded(value, stamp, self.clock.now_ms(), life.ttl, life.swr);
        entry.negative = life.negative;
        entry.tags = tags;
        if !self.cache.current(stamp, &entry.tags, miss.urn.as_str()) {
            self.counters.discarded();
            tracing::debug!(
                use_case = self.name,
                key = miss.urn.as_str(),
                "an invalidation came while the value loaded; not stored"
            );
            return None;
        }
        Some(entry)
    }

    /// Puts `entry` in L1, its lifetime capped by the local TTL cap, unless
    /// an invalidation already covers it (a future buffer), L1 is not
    /// trusted (bus down), or the bus reconnected since this process got the
    /// value (at `since`: the start of its load or read).
    pub(super) fn fill_local(&self, miss: &Miss<K>, entry: &Entry<V>, since: Stamp, how: Admit) {
        let (hash, key, urn) = (miss.hash, &miss.key, &miss.urn);
        if !miss.local {
            return;
        }
        let weight = self.weight(&entry.value);
        match self.store.admit(
            hash,
            key.clone(),
            urn,
            entry.clone(),
            weight,
            since,
            self.local_cap(),
            &self.marks,
            &self.clock,
            how,
        ) {
            Admitted::Stored { evicted_live } => {
                if evicted_live > 0 {
                    self.counters.evicted(evicted_live as u64);
                }
            }
            Admitted::Occupied => {}
            Admitted::Refused => tracing::debug!(
                use_case = self.name,
                key = urn.as_str(),
                "not kept in process: invalidated already, or the bus is down"
            ),
            Admitted::TooHeavy => tracing::debug!(
                use_case = self.name,
                key = urn.as_str(),
                weight,
                "not kept in process: heavier than a shard's share of max_bytes"
            ),
        }
        self.cache.enforce_budget();
    }

    /// What an entry of `value` weighs against a byte bound (see
    /// [`Stats::bytes`](crate::Stats::bytes)).
    pub(super) fn weight(&self, value: &V) -> u64 {
        let value = match &self.weigh {
            Some(super::Weigh::Given(f)) => f(value as &dyn std::any::Any),
            Some(super::Weigh::Encoded(f)) => f(value),
            None => std::mem::size_of::<V>() as u64,
        };
        crate::local::ENTRY_OVERHEAD + value
    }

    /// The in-process layer's cap on an entry's life: the provider's TTL
    /// for the layer, else the attribute's `local_ttl`; within the cache's
    /// own cap either way.
    pub(super) fn local_cap(&self) -> Option<Duration> {
        match self.tuning.local_ttl() {
            Some(t) => Some(self.cache.local_ttl().map_or(t, |c| c.min(t))),
            None => self.local_cap,
        }
    }

    /// How long remote layer `i` keeps an entry with `remaining` to live:
    /// capped by the provider's TTL for the layer, else by the attribute's
    /// `remote_ttl` (and by the layer's own cap, when written).
    /// With `fail_safe`, an entry is kept that much longer, for fail-safe
    /// to find, within the cap (how long the layer may keep the key at
    /// all).
    pub(super) fn remote_remaining(&self, i: usize, remaining: Duration) -> Duration {
        let kept = remaining.saturating_add(Duration::from_millis(self.fail_safe_ms()));
        match self.tuning.remote_ttl(i).or(self.remote_cap) {
            Some(cap) => kept.min(cap),
            None => kept,
        }
    }

    /// What to write to remote layers: the encoded entry and how long it
    /// lives from now (before each layer's caps).
    pub(super) fn encoded(&self, urn: &str, entry: &Entry<V>) -> Option<(Vec<u8>, Duration)> {
        let codec = self.remote?;
        // Deadlines are counted and judged on the coarse monotonic clock.
        let now = self.clock.now_ms();
        let remaining = Duration::from_millis(entry.stale_until_ms.saturating_sub(now));
        if remaining.is_zero() {
            return None;
        }
        match (codec.encode)(urn, entry, self.cache.format(self.spec.schema)) {
            Ok(bytes) if self.cache.fits(bytes.len(), &self.counters, urn) => {
                Some((bytes, remaining))
            }
            Ok(_) => None,
            Err(e) => {
                tracing::warn!(use_case = self.name, key = %crate::key::Shown(urn), "value does not encode; kept in process only");
                tracing::debug!(use_case = self.name, key = urn, error = %e, "value does not encode");
                None
            }
        }
    }

    /// The in-process half of storing a loaded value: its entry, put in L1;
    /// `None` when it is not to be cached at all.
    fn keep_local(
        &self,
        miss: &Miss<K>,
        loaded: Stamped<V>,
        directive: Directive,
    ) -> Option<Entry<V>> {
        let since = loaded.since;
        let entry = self.entry(miss, loaded, directive)?;
        self.fill_local(miss, &entry, since, Admit::Replace);
        Some(entry)
    }

    pub(super) async fn store_async(
        &self,
        miss: &Miss<K>,
        loaded: Stamped<V>,
        directive: Directive,
        (to, owed): (LayerSet, LayerSet),
    ) {
        let Some(entry) = self.keep_local(miss, loaded, directive) else {
            return;
        };
        if to == LayerSet::NONE && owed == LayerSet::NONE {
            // No remote layer to write (ramped out or off): nothing to
            // encode, and nothing for other processes to drop.
            return;
        }
        if let Some((bytes, remaining)) = self.encoded(miss.urn.as_str(), &entry) {
            self.cache
                .write_or_owe(
                    miss.urn.as_str(),
                    bytes,
                    &|i| self.remote_remaining(i, remaining),
                    to,
                    owed,
                    (entry.stamp, &entry.tags),
                )
                .await;
            // Other processes drop their older copies of this key.
            self.cache.announce_write(miss.urn.as_str(), entry.stamp);
        }
    }

    pub(super) fn store_blocking(
        &'static self,
        miss: &Miss<K>,
        loaded: Stamped<V>,
        directive: Directive,
        (to, owed): (LayerSet, LayerSet),
    ) {
        let Some(entry) = self.keep_local(miss, loaded, directive) else {
            return;
        };
        if to == LayerSet::NONE && owed == LayerSet::NONE {
            return;
        }
        if let Some((bytes, remaining)) = self.encoded(miss.urn.as_str(), &entry) {
            let urn = miss.urn.as_str().to_owned();
            let budget = self.remote_budget();
            let created = entry.stamp;
            let tags = entry.tags.clone();
            let _ = cachewright_backends::io::block_on(
                async move {
                    let remaining = &|i| self.remote_remaining(i, remaining);
                    self.cache
                        .write_or_owe(&urn, bytes, remaining, to, owed, (created, &tags))
                        .await
                },
                budget,
            );
            self.cache.announce_write(miss.urn.as_str(), created);
        }
    }

    pub(super) fn remote_budget(&self) -> Duration {
        crate::layer::budget_of(self.cache.layers())
    }

    /// Looks the call up in the remote layers (the cache's one read path);
    /// a hit fills L1. Also says which layers failed, and, with fail-safe
    /// and no live entry, the expired one fail-safe may serve.
    /// `count`: whether a hit is counted (a call's read; not a refresh's or
    /// a locked load's look for another process's value).
    pub(super) async fn read_remote(&self, miss: &Miss<K>, count: bool) -> RemoteRead<V> {
        let Some(codec) = self.remote else {
            return (None, LayerSet::NONE, None);
        };
        let (urn, tags, format) = (
            miss.urn.as_str(),
            &miss.tags,
            self.cache.format(self.spec.schema),
        );
        // Before the read: a reconnect during it makes what it found suspect.
        let since = self.clock.stamp();
        let (hit, failed) = self
            .cache
            .read_layers(
                urn,
                miss.remote,
                &|i, r| self.remote_remaining(i, r),
                self.fail_safe_ms(),
                |b| (codec.decode)(b, format, urn, tags),
            )
            .await;
        let Some(hit) = hit else {
            return (None, failed, None);
        };
        if hit.freshness == Freshness::Expired {
            // Kept in L1 as it is (expired): a caller past its soft timeout,
            // and the next failing loads, find it there.
            self.fill_local(miss, &hit.entry, since, Admit::FromRemote);
            let horizon_ms = hit.entry.stale_until_ms.saturating_add(self.fail_safe_ms());
            let fallback = super::fail_safe::Fallback {
                negative: hit.entry.negative,
                horizon_ms,
                found: Stamped {
                    value: hit.entry.value,
                    stamp: hit.entry.stamp,
                    tags: hit.entry.tags,
                    since,
                },
            };
            return (None, failed, Some(fallback));
        }
        if count {
            self.counters.remote_hit();
            if hit.freshness == Freshness::Stale {
                self.counters.stale_hit();
            }
        }
        self.fill_local(miss, &hit.entry, since, Admit::FromRemote);
        let found = Stamped {
            value: hit.entry.value,
            stamp: hit.entry.stamp,
            tags: hit.entry.tags,
            since,
        };
        (Some(found), failed, None)
    }

    /// The sync adapter of [`read_remote`](Self::read_remote), on the I/O
    /// runtime within the layers' time budget (all layers count as failed
    /// when it cannot run at all).
    pub(super) fn read_remote_blocking(
        &'static self,
        miss: &Miss<K>,
        count: bool,
    ) -> RemoteRead<V> {
        if self.remote.is_none() {
            return (None, LayerSet::NONE, None);
        }
        let miss = miss.clone();
        let budget = self.remote_budget();
        cachewright_backends::io::block_on(
            async move { self.read_remote(&miss, count).await },
            budget,
        )
        .unwrap_or((None, LayerSet::ALL, None))
    }
}

/// What a remote read found: a live value, the layers that failed, and an
/// expired value fail-safe may serve.
pub(super) type RemoteRead<V> = (
    Option<Stamped<V>>,
    LayerSet,
    Option<super::fail_safe::Fallback<V>>,
);

/// One load of one `#[cached]` call, as the single-flight loop drives it.
pub(super) struct Call<'m, K: 'static, V: 'static, E, L> {
    uc: &'static UseCase<K, V>,
    miss: &'m Miss<K>,
    loader: L,
    /// Sync callers read and write the remote layers on the I/O runtime.
    blocking: bool,
    /// The layers that failed the read: the store after the load skips
    /// them, so a slow layer costs one timeout per call, not two.
    failed: LayerSet,
    /// An expired value a remote layer holds that fail-safe may serve.
    fallback: Option<super::fail_safe::Fallback<V>>,
    /// A background refresh: a value another process loaded after the one
    /// held here, found in a remote layer, is taken instead of loading.
    refresh: bool,
    error: std::marker::PhantomData<fn() -> E>,
}

impl<K, V, E, L> Call<'_, K, V, E, L> {
    /// Marks the call a background refresh (see `refresh`).
    pub(super) fn refreshing(mut self) -> Self {
        self.refresh = true;
        self
    }
}

impl<K, V, E, L> Load for Call<'_, K, V, E, L>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    L: Loader<V, E>,
{
    type Value = V;
    type Error = E;

    fn peek(&self) -> Option<Stamped<V>> {
        self.uc.peek_fresh(self.miss)
    }

    fn current(&self, value: &Stamped<V>) -> bool {
        self.uc.cache.shareable(value, self.miss.urn.as_str())
    }

    async fn remote(&mut self) -> Option<Stamped<V>> {
        let (found, failed, fallback) = if self.blocking {
            self.uc.read_remote_blocking(self.miss, true)
        } else {
            self.uc.read_remote(self.miss, true).await
        };
        self.failed = failed;
        self.fallback = fallback;
        found
    }

    async fn load(self) -> Result<Stamped<V>, E> {
        let (uc, miss) = (self.uc, self.miss);
        if self.refresh {
            // Another replica may have refreshed the key already.
            let floor = uc.held_stamp(miss);
            if let Some(found) = uc.newer(miss, floor, self.blocking).await {
                return Ok(found);
            }
        }
        let lease = match uc.gate(miss, self.blocking).await {
            super::lock::Gate::Found(found) => return Ok(found),
            super::lock::Gate::Load(lease) => lease,
        };
        let blocking = self.blocking;
        let r = self.load_unlocked().await;
        if let Some(lease) = lease {
            uc.release(lease, blocking).await;
        }
        r
    }
}

impl<K, V, E, L> Call<'_, K, V, E, L>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    L: Loader<V, E>,
{
    /// Runs the loader and stores its value.
    async fn load_unlocked(self) -> Result<Stamped<V>, E> {
        let (uc, miss) = (self.uc, self.miss);
        // Stamped before the loader reads the source: an invalidation after
        // this moment covers what it returns.
        let stamp = uc.clock.stamp();
        let start = Instant::now();
        // The loader's own spans and events nest under this one.
        let span = tracing::debug_span!(
            "cachewright.load",
            use_case = uc.name,
            key = miss.urn.as_str()
        );
        let (r, said) = tracing::Instrument::instrument(self.loader.run(), span).await;
        let took = start.elapsed();
        let ok = r.is_ok() && !said.failed;
        uc.counters.load(took, ok);
        if let (Some(e), true) = (&uc.early, ok) {
            e.loaded(took);
        }
        crate::metrics::load_took(uc.cache.name(), uc.name, took);
        tracing::debug!(
            use_case = uc.name,
            key = miss.urn.as_str(),
            took_ms = took.as_secs_f64() * 1e3,
            ok,
            "loaded"
        );
        if !ok {
            let why = if r.is_ok() {
                "marked its result failed"
            } else {
                "failed"
            };
            if let Some(fb) = uc.fallback(miss, self.fallback) {
                return Ok(uc.serve_fallback(miss, fb, why, !self.refresh));
            }
            if let Ok(value) = r {
                // Marked failed, nothing to serve instead: returned, not
                // stored.
                return Ok(Stamped {
                    value,
                    stamp,
                    tags: with_tags(&miss.tags, said.tags),
                    since: stamp,
                });
            }
        }
        // Layers that failed the read are not tried again now: the entry is
        // owed to them, written when they answer again.
        let to = (
            miss.remote.without(self.failed),
            miss.remote.and(self.failed),
        );
        let loaded = match r {
            Ok(value) => Stamped {
                value,
                stamp,
                tags: with_tags(&miss.tags, said.tags),
                since: stamp,
            },
            Err(e) => return Err(e),
        };
        if self.blocking {
            uc.store_blocking(miss, loaded.clone(), said.directive, to);
        } else {
            uc.store_async(miss, loaded.clone(), said.directive, to)
                .await;
        }
        Ok(loaded)
    }
}
