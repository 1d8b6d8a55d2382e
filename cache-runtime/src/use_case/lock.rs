//! One load per key across processes (`lock = true`): on a miss, the
//! process that takes the key's lease in the first remote layer loads; the
//! others poll that layer for its value, with back-off, and take the lease
//! themselves if it is let go (the holder's load failed) or runs out (the
//! holder died: a lease lasts half of `lock_wait`, so a load slower than
//! that may be made twice). After `lock_wait` a waiter loads without it.
//! This saves loads; it guards nothing: a call never fails or waits without
//! bound for it, and the lease's faults (Redis down, a timeout) mean
//! loading at once.

use super::*;
use crate::layer::RemoteLayer;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// The first pause between two looks for the holder's value.
const FIRST_PAUSE: Duration = Duration::from_millis(5);
/// The longest pause between two looks.
const MAX_PAUSE: Duration = Duration::from_millis(100);

/// The load leases this process holds, by lease key: a load of a key whose
/// lease this process holds (a loader calling its own key, a call loading
/// apart) does not wait on it.
#[derive(Default)]
pub(super) struct Held(Mutex<HashMap<String, usize>>);

impl Held {
    fn holds(&self, key: &str) -> bool {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(key)
    }

    fn take(&self, key: &str) {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.to_owned())
            .or_default() += 1;
    }

    fn give_back(&self, key: &str) {
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = held.get_mut(key) {
            *n -= 1;
            if *n == 0 {
                held.remove(key);
            }
        }
    }
}

/// What a locked load does before its loader runs.
pub(super) enum Gate<V> {
    /// Load: holding the key's lease (let go once stored, or when dropped),
    /// or without one (no lock, no layer to lock in, a layer fault, this
    /// process's own lease, or the wait ran out).
    Load(Option<Lease>),
    /// Another process loaded the key meanwhile: its value.
    Found(Stamped<V>),
}

/// A load lease this process holds. Dropped without [`UseCase::release`]
/// (a cancelled load), it is let go in the background.
pub(super) struct Lease {
    layer: Arc<RemoteLayer>,
    key: String,
    token: Vec<u8>,
    held: &'static Held,
    released: bool,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.held.give_back(&self.key);
        if !self.released {
            let (layer, key, token) = (
                self.layer.clone(),
                std::mem::take(&mut self.key),
                std::mem::take(&mut self.token),
            );
            crate::spawn::spawn_io(async move {
                let _ = layer.delete_if(&key, token).await;
            });
        }
    }
}

impl<K, V> UseCase<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Takes the key's load lease, or waits for the process holding it
    /// (see the module's documentation). `blocking`: a sync caller, whose
    /// layer operations run on the I/O runtime and whose pauses sleep the
    /// thread.
    pub(super) async fn gate(&'static self, miss: &Miss<K>, blocking: bool) -> Gate<V> {
        let r = self.spec.resilience;
        if !r.lock || miss.mode != Mode::Normal || self.remote.is_none() {
            return Gate::Load(None);
        }
        let Some(i) = (0..self.cache.layers().len()).find(|&i| miss.remote.contains(i)) else {
            return Gate::Load(None);
        };
        let layer = self.cache.layers()[i].clone();
        let key = crate::key::lock_key(&self.cache.key_prefix(), miss.urn.as_str());
        if self.locks.holds(&key) {
            return Gate::Load(None);
        }
        let token = fastrand::u128(..).to_le_bytes().to_vec();
        // A value found counts only if loaded after the one held here: a
        // refresh is not done by finding the value it refreshes.
        let floor = self.held_stamp(miss);
        // A caller with a hard timeout waits at most half of it: its own
        // load must still have time to run.
        let wait = match r.hard_timeout_ms {
            0 => r.lock_wait_ms,
            hard => r.lock_wait_ms.min(hard / 2),
        };
        let wait = Duration::from_millis(wait);
        // The lease runs out halfway through a waiter's wait: a holder that
        // died is taken over by a waiter before any waiter gives up.
        let lease_ttl = (wait / 2).max(Duration::from_millis(1));
        let started = Instant::now();
        let (mut paused, mut pause) = (Duration::ZERO, FIRST_PAUSE);
        let mut waited = false;
        loop {
            match self
                .take_lease(&layer, &key, &token, lease_ttl, blocking)
                .await
            {
                Some(true) => {
                    self.locks.take(&key);
                    let lease = Lease {
                        layer,
                        key,
                        token,
                        held: &self.locks,
                        released: false,
                    };
                    // A holder that stored and let go just before this
                    // process looked: its value is there, and no load is
                    // needed.
                    if let Some(found) = self.newer(miss, floor, blocking).await {
                        self.release(lease, blocking).await;
                        if waited {
                            self.counters.lock_waited(false);
                        }
                        return Gate::Found(found);
                    }
                    if waited {
                        // The holder let go, or died: this process loads.
                        self.counters.lock_waited(true);
                    }
                    return Gate::Load(Some(lease));
                }
                Some(false) => {}
                // Not known: load rather than wait on a layer in trouble.
                None => return Gate::Load(None),
            }
            waited = true;
            // Real time and the pauses both count: a slow layer's round
            // trips, or a paused test clock, cannot stretch the wait.
            if started.elapsed().max(paused) >= wait {
                self.counters.lock_waited(true);
                tracing::debug!(
                    use_case = self.name,
                    key = miss.urn.as_str(),
                    "another process's locked load did not finish within lock_wait; loading"
                );
                return Gate::Load(None);
            }
            self.pause(pause, blocking).await;
            paused += pause;
            pause = (pause * 2).min(MAX_PAUSE);
            if let Some(found) = self.newer(miss, floor, blocking).await {
                self.counters.lock_waited(false);
                tracing::debug!(
                    use_case = self.name,
                    key = miss.urn.as_str(),
                    "another process loaded the key"
                );
                return Gate::Found(found);
            }
        }
    }

    /// Lets go of a lease once the value is stored (or the load failed), so
    /// that a waiting process need not wait for it to run out.
    pub(super) async fn release(&'static self, mut lease: Lease, blocking: bool) {
        lease.released = true;
        let (layer, key, token) = (
            lease.layer.clone(),
            lease.key.clone(),
            std::mem::take(&mut lease.token),
        );
        drop(lease);
        let op = async move {
            let _ = layer.delete_if(&key, token).await;
        };
        self.on_layer(op, blocking).await;
    }

    /// Runs a lease operation: in place, or for a sync caller on the I/O
    /// runtime within the layers' budget (`None` when it could not finish).
    async fn on_layer<T: Send + 'static>(
        &self,
        op: impl Future<Output = T> + Send + 'static,
        blocking: bool,
    ) -> Option<T> {
        if blocking {
            cachewright_backends::io::block_on(op, self.remote_budget()).ok()
        } else {
            Some(op.await)
        }
    }

    /// `SET NX` of the lease; `None` when the layer could not say.
    async fn take_lease(
        &'static self,
        layer: &Arc<RemoteLayer>,
        key: &str,
        token: &[u8],
        ttl: Duration,
        blocking: bool,
    ) -> Option<bool> {
        let (l, key, token) = (layer.clone(), key.to_owned(), token.to_vec());
        let op = async move { l.set_if_absent(&key, token, ttl).await.ok() };
        self.on_layer(op, blocking).await.flatten()
    }

    /// The key's live value in the remote layers, if one holds one loaded
    /// after `floor` (the stamp of what this process holds: a refresh is
    /// not done by finding the value it refreshes).
    pub(super) async fn newer(
        &'static self,
        miss: &Miss<K>,
        floor: Stamp,
        blocking: bool,
    ) -> Option<Stamped<V>> {
        let found = if blocking {
            self.read_remote_blocking(miss, false).0
        } else {
            self.read_remote(miss, false).await.0
        };
        found.filter(|f| f.stamp > floor)
    }

    /// The stamp of the entry L1 holds for the key, whatever its state (0:
    /// none).
    pub(super) fn held_stamp(&self, miss: &Miss<K>) -> Stamp {
        self.store
            .with(miss.hash, |k| *k == miss.key, |h| h.stamp())
            .unwrap_or(0)
    }

    async fn pause(&self, d: Duration, blocking: bool) {
        if blocking {
            std::thread::sleep(d);
        } else {
            crate::spawn::within(d, std::future::pending::<()>()).await;
        }
    }
}
