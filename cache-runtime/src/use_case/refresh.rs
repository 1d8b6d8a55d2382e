//! Background refreshes of stale entries (stale-while-revalidate).

use super::*;

impl<K, V> UseCase<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Starts the one background refresh of a stale key (sync functions), on
    /// cachewright's refresh threads, unless a load of the key is already
    /// running. When their queue is full the refresh is skipped (and
    /// counted): the stale value was served, and a later call tries again.
    pub fn refresh_sync<Q: KeyRef<Owned = K>>(
        &'static self,
        q: &Q,
        values: &[&dyn Display],
        job: impl FnOnce() -> SyncJob<V>,
    ) {
        let Some(slot) = crate::spawn::refresh_slot() else {
            self.counters.refresh_skipped();
            tracing::debug!(
                use_case = self.spec.name,
                "refresh queue full; background refresh skipped"
            );
            return;
        };
        let miss = self.miss_quiet(q, values);
        let Role::Leader(lead) = self.flights.join(&miss.key) else {
            return;
        };
        if self.refreshed_already(&miss) {
            return;
        }
        let job = job();
        self.counters.refresh();
        slot.run(move || {
            let load = self
                .call(&miss, SyncLoader(job), Wait::Block)
                .refreshing()
                .load();
            let r = flight::block_here(lead.running(load));
            self.settle_background(&miss, lead, r);
        });
    }

    /// Starts the one background refresh of a stale key (async functions), as
    /// a task on the current tokio runtime (or, outside one, on cachewright's
    /// runtime for user work).
    pub fn refresh_async<Q: KeyRef<Owned = K>>(
        &'static self,
        q: &Q,
        values: &[&dyn Display],
        job: impl FnOnce() -> AsyncJob<V>,
    ) {
        let miss = self.miss_quiet(q, values);
        let Role::Leader(lead) = self.flights.join(&miss.key) else {
            return;
        };
        if self.refreshed_already(&miss) {
            return;
        }
        let job = job();
        self.counters.refresh();
        let spawned = crate::spawn::spawn(async move {
            let load = self
                .call(&miss, AsyncLoader(job), Wait::Yield)
                .refreshing()
                .load();
            let r = lead.running(load).await;
            self.settle_background(&miss, lead, r);
        });
        if spawned.is_none() {
            tracing::warn!(
                use_case = self.spec.name,
                "no runtime to refresh on; background refresh skipped"
            );
        }
    }

    /// Whether the entry a caller saw stale (or due for its early refresh)
    /// was refreshed between its look and its turn to lead: the key's
    /// flight had ended, and what L1 holds now is fresh and not due. Then
    /// the refresh is not made again.
    fn refreshed_already(&self, miss: &Miss<K>) -> bool {
        let now = self.clock.now_ms();
        self.with_fresh(miss, now, |h| {
            h.is_throttled()
                || self
                    .early
                    .as_ref()
                    .is_none_or(|e| now < e.window_from(h.loaded_ms(), h.fresh_until_ms()))
        })
        .unwrap_or(false)
    }

    pub(super) fn miss_quiet<Q: KeyRef<Owned = K>>(
        &self,
        q: &Q,
        values: &[&dyn Display],
    ) -> Miss<K> {
        let (urn, tags) = self.render(values);
        let layers = self.tuning.enabled();
        Miss {
            hash: self.store.hash(q),
            key: q.to_owned_key(),
            urn,
            tags,
            mode: Mode::Normal,
            local: self.local && layers.local,
            remote: layers.remote,
        }
    }

    pub(super) fn settle_background(
        &self,
        miss: &Miss<K>,
        lead: crate::flight::Lead<'_, K, V>,
        r: Result<Stamped<V>, RefreshFailed>,
    ) {
        match r {
            Ok(refreshed) => lead.finish(|| Outcome::Done(refreshed)),
            Err(RefreshFailed) => {
                tracing::warn!(
                    use_case = self.name,
                    key = %crate::key::Shown(miss.urn.as_str()),
                    "background refresh failed; the stale value stays until its window ends"
                );
                lead.finish(|| Outcome::Failed(None));
            }
        }
    }
}
