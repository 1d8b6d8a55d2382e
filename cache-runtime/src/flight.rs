//! Single-flight: concurrent misses of one key run one load.

use std::any::Any;
use std::hash::Hash;
use std::sync::{Arc, Condvar, Mutex};

use hashbrown::HashMap;
use tokio::sync::Notify;

/// A type-erased copy of a loader's error, kept for the waiters.
pub type SharedError = Box<dyn Any + Send>;

pub(crate) enum Outcome<V> {
    Running,
    Done(V),
    /// The load failed; waiters get a copy of the error when it could be
    /// copied, and otherwise run the load themselves, one at a time.
    Failed(Option<SharedError>),
    /// The leader went away (panic, cancelled future) without an outcome.
    Abandoned,
}

pub(crate) struct Flight<V> {
    outcome: Mutex<Outcome<V>>,
    cv: Condvar,
    /// Sync callers blocked on `cv` (counted under the `outcome` lock), so
    /// a flight nobody waits on finishes without a futex call.
    blocked: std::sync::atomic::AtomicU32,
    notify: Notify,
}

impl<V: Clone> Flight<V> {
    fn new() -> Self {
        Flight {
            outcome: Mutex::new(Outcome::Running),
            cv: Condvar::new(),
            blocked: std::sync::atomic::AtomicU32::new(0),
            notify: Notify::new(),
        }
    }

    fn finish(&self, outcome: Outcome<V>) {
        let mut o = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        *o = outcome;
        // Read under the lock: a waiter counts itself under it before waiting.
        let blocked = self.blocked.load(std::sync::atomic::Ordering::Relaxed);
        drop(o);
        if blocked > 0 {
            self.cv.notify_all();
        }
        self.notify.notify_waiters();
    }

    fn snapshot(
        o: &Outcome<V>,
        share: impl Fn(&SharedError) -> Option<SharedError>,
    ) -> Option<Outcome<V>> {
        match o {
            Outcome::Running => None,
            Outcome::Done(v) => Some(Outcome::Done(v.clone())),
            Outcome::Failed(e) => Some(Outcome::Failed(e.as_ref().and_then(share))),
            Outcome::Abandoned => Some(Outcome::Abandoned),
        }
    }

    /// Blocks until the leader is done.
    pub(crate) fn wait(&self, share: impl Fn(&SharedError) -> Option<SharedError>) -> Outcome<V> {
        let mut o = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(done) = Self::snapshot(&o, &share) {
                return done;
            }
            self.blocked
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            o = self.cv.wait(o).unwrap_or_else(|e| e.into_inner());
            self.blocked
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// Waits, without blocking the executor, until the leader is done.
    pub(crate) async fn wait_async(
        &self,
        share: impl Fn(&SharedError) -> Option<SharedError>,
    ) -> Outcome<V> {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            // Registered before the check, so a finish between the check and
            // the await still wakes this waiter.
            notified.as_mut().enable();
            {
                let o = self.outcome.lock().unwrap_or_else(|e| e.into_inner());
                if let Some(done) = Self::snapshot(&o, &share) {
                    return done;
                }
            }
            notified.await;
        }
    }
}

/// The loads in progress of one use case.
pub(crate) struct Flights<K, V> {
    running: Mutex<HashMap<K, Arc<Flight<V>>, foldhash::fast::RandomState>>,
}

pub(crate) enum Role<'a, K: Hash + Eq + Clone, V: Clone> {
    Leader(Lead<'a, K, V>),
    Waiter(Arc<Flight<V>>),
}

impl<K: Hash + Eq + Clone, V: Clone> Flights<K, V> {
    pub(crate) fn new() -> Self {
        Flights {
            running: Mutex::new(HashMap::with_hasher(Default::default())),
        }
    }

    /// Joins the load of `key` in progress, or becomes its leader.
    pub(crate) fn join(&self, key: &K) -> Role<'_, K, V> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(f) = running.get(key) {
            return Role::Waiter(f.clone());
        }
        let flight = Arc::new(Flight::new());
        running.insert(key.clone(), flight.clone());
        Role::Leader(Lead {
            flights: self,
            key: key.clone(),
            flight,
            done: false,
        })
    }
}

/// The leader's duty: finish the flight, or mark it abandoned when dropped.
pub(crate) struct Lead<'a, K: Hash + Eq + Clone, V: Clone> {
    flights: &'a Flights<K, V>,
    key: K,
    flight: Arc<Flight<V>>,
    done: bool,
}

impl<K: Hash + Eq + Clone, V: Clone> Lead<'_, K, V> {
    /// Hands the outcome to every waiter. Call it after the value is stored,
    /// so that callers arriving after the flight is gone find it. The
    /// outcome is only made when somebody waits (a copy of the value costs).
    pub(crate) fn finish(mut self, outcome: impl FnOnce() -> Outcome<V>) {
        self.done = true;
        self.retire();
        // Waiters get the flight from the map, under its lock, and it has
        // just left the map: if this is the only handle now, nobody can
        // wait on it, now or later.
        if Arc::strong_count(&self.flight) > 1 {
            self.flight.finish(outcome());
        }
    }

    fn retire(&self) {
        let mut running = self
            .flights
            .running
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if running
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight))
        {
            running.remove(&self.key);
        }
    }
}

impl<K: Hash + Eq + Clone, V: Clone> Drop for Lead<'_, K, V> {
    fn drop(&mut self) {
        if !self.done {
            self.retire();
            self.flight.finish(Outcome::Abandoned);
        }
    }
}
