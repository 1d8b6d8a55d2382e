//! Background refreshes of stale entries (stale-while-revalidate).

use super::*;

impl<K, V> UseCase<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Starts the one background refresh of a stale key (sync functions), on
    /// a thread of its own, unless a load of the key is already running.
    pub fn refresh_sync<Q: KeyRef<Owned = K>>(
        &'static self,
        q: &Q,
        values: &[&dyn Display],
        job: impl FnOnce() -> SyncJob<V>,
    ) {
        let miss = self.miss_quiet(q, values);
        let Role::Leader(lead) = self.flights.join(&miss.key) else {
            return;
        };
        let job = job();
        self.counters.refresh();
        let spawned = std::thread::Builder::new()
            .name("cachewright-refresh".into())
            .spawn(move || {
                let r = flight::block_here(self.call(&miss, SyncLoader(job), Wait::Block).load());
                self.settle_background(&miss, lead, r);
            });
        if let Err(e) = spawned {
            tracing::warn!(use_case = self.name, error = %e, "could not start a refresh thread");
        }
    }

    /// Starts the one background refresh of a stale key (async functions), as
    /// a task on the current tokio runtime (or, outside one, on a thread).
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
        let job = job();
        self.counters.refresh();
        crate::spawn::spawn(async move {
            let r = self.call(&miss, AsyncLoader(job), Wait::Yield).load().await;
            self.settle_background(&miss, lead, r);
        });
    }

    pub(super) fn miss_quiet<Q: KeyRef<Owned = K>>(
        &self,
        q: &Q,
        values: &[&dyn Display],
    ) -> Miss<K> {
        let (urn, tags) = self.render(values);
        Miss {
            hash: self.store.hash(q),
            key: q.to_owned_key(),
            urn,
            tags,
            mode: Mode::Normal,
        }
    }

    pub(super) fn settle_background(
        &self,
        miss: &Miss<K>,
        lead: crate::flight::Lead<'_, K, V>,
        r: Result<(V, Stamp), RefreshFailed>,
    ) {
        match r {
            Ok((v, s)) => lead.finish(|| Outcome::Done(v, s)),
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
