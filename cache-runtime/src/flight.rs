//! Single-flight: concurrent misses of one key run one load.
//!
//! [`run`] is the one leader/waiter loop of the crate: `#[cached]` calls,
//! their background refreshes and the direct API's `get_or_load` all go
//! through it, sync and async alike. What differs between them (where a
//! fresh value may already be, how the remote layers are read, how the
//! loader runs and its value is stored) is a [`Load`]; how a waiter waits
//! is a [`Wait`]. Sync callers drive the same future with [`block_here`].
//!
//! A caller never waits on a flight whose load it is itself part of (a
//! loader that calls itself for its own key): while a leader's load runs on
//! a thread (each poll of its future, a sync loader from start to end), the
//! flight is marked in a thread-local, and a caller that finds its flight
//! marked loads apart. Two calls of one key in one task (`join!`) are not
//! inside each other's load: they share it.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll, Wake, Waker};

use hashbrown::HashMap;
use tokio::sync::Notify;

use crate::clock::Stamp;
use crate::entry::Tags;

/// A type-erased copy of a loader's error, kept for the waiters.
pub type SharedError = Box<dyn Any + Send>;

/// A value as a flight hands it on, with what an invalidation is judged by:
/// the stamp of the start of its load, every tag it is stored with (its
/// key's, and those its loader or its options added), and since when this
/// process holds it (the start of its load, or of the read that found it):
/// a bus reconnect after that moment means an invalidation may have been
/// missed meanwhile.
#[derive(Clone)]
pub(crate) struct Stamped<V> {
    pub(crate) value: V,
    pub(crate) stamp: Stamp,
    pub(crate) tags: Tags,
    pub(crate) since: Stamp,
}

pub(crate) enum Outcome<V> {
    Running,
    /// The leader's value.
    Done(Stamped<V>),
    /// The load failed; waiters get a copy of the error when it could be
    /// copied, and otherwise run the load themselves, one at a time.
    Failed(Option<SharedError>),
    /// The leader went away (panic, cancelled future) without an outcome.
    Abandoned,
}

pub(crate) struct Flight<V> {
    /// Names the flight in the thread-local marks of the loads running.
    id: u64,
    /// How its leader runs, when it leads from a caller (not set for
    /// background refreshes).
    leader: std::sync::OnceLock<Leader>,
    outcome: Mutex<Outcome<V>>,
    cv: Condvar,
    /// Sync callers blocked on `cv` (counted under the `outcome` lock), so
    /// a flight nobody waits on finishes without a futex call.
    blocked: std::sync::atomic::AtomicU32,
    notify: Notify,
}

impl<V: Clone> Flight<V> {
    fn new() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        Flight {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            leader: std::sync::OnceLock::new(),
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

/// Who runs a call: its tokio task, or outside a task its thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Task(tokio::task::Id),
    Thread(std::thread::ThreadId),
}

impl Who {
    fn current() -> Who {
        tokio::task::try_id().map_or_else(|| Who::Thread(std::thread::current().id()), Who::Task)
    }
}

/// How a flight's leader runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leader {
    /// Blocking its thread until the load is done.
    Sync,
    /// As async code, in this task (or outside any task, on this thread).
    Async(Who),
}

thread_local! {
    /// The flights whose loads run on this thread now (a leader's load
    /// future being polled, a sync loader running), innermost last.
    static RUNNING_HERE: RefCell<Vec<u64>> = const { RefCell::new(Vec::new()) };
}

/// Marks a flight's load as running on this thread until dropped.
struct RunningHere;

impl RunningHere {
    fn enter(id: u64) -> Self {
        RUNNING_HERE.with(|r| r.borrow_mut().push(id));
        RunningHere
    }
}

impl Drop for RunningHere {
    fn drop(&mut self) {
        // Marks nest (a poll inside a poll): the last one is this one's.
        let _ = RUNNING_HERE.try_with(|r| r.borrow_mut().pop());
    }
}

/// Whether waiting on `flight` could never end: this call is made from
/// inside that flight's own load (a loader that calls itself for its key,
/// in a call or in a background refresh), or this sync caller would block
/// the thread an async leader needs: the leader's own task (a sync call
/// joined with it in one task), or the only thread of a current-thread
/// runtime (where the leader may be a task that cannot run until this one
/// returns).
fn stuck<V>(flight: &Flight<V>, wait: Wait) -> bool {
    if RUNNING_HERE.with(|r| r.borrow().contains(&flight.id)) {
        return true;
    }
    let Some(&Leader::Async(who)) = flight.leader.get() else {
        return false;
    };
    wait == Wait::Block
        && (who == Who::current()
            || tokio::runtime::Handle::try_current()
                .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::CurrentThread))
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
    /// Records that this call leads the flight (how it waits): a later call
    /// that finds the flight and could never see it finish loads apart.
    pub(crate) fn claim(&self, wait: Wait) {
        let leader = match wait {
            Wait::Block => Leader::Sync,
            Wait::Yield => Leader::Async(Who::current()),
        };
        let _ = self.flight.leader.set(leader);
    }

    /// `load` (the flight's load), its flight marked as running on the
    /// thread that polls it for the length of each poll: a call made from
    /// inside it for the same key does not wait on it.
    pub(crate) fn running<F: Future>(&self, load: F) -> impl Future<Output = F::Output> {
        let id = self.flight.id;
        async move {
            let mut load = pin!(load);
            std::future::poll_fn(move |cx| {
                let _here = RunningHere::enter(id);
                load.as_mut().poll(cx)
            })
            .await
        }
    }

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

/// How a loader's error reaches the callers waiting on the same load: as a
/// copy when the error type is `Clone + Send + 'static`, otherwise not at all
/// (each waiter then runs the load itself, one at a time). Generated code
/// picks the right one with `ErrorProbe`.
#[doc(hidden)]
pub struct ShareError<E> {
    share: fn(&E) -> Option<SharedError>,
    copy: fn(&SharedError) -> Option<SharedError>,
    take: fn(SharedError) -> Option<E>,
}

impl<E> Clone for ShareError<E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E> Copy for ShareError<E> {}

impl<E> fmt::Debug for ShareError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ShareError")
    }
}

impl<E> ShareError<E> {
    /// Errors are not shared.
    pub const fn none() -> Self {
        ShareError {
            share: |_| None,
            copy: |_| None,
            take: |_| None,
        }
    }
}

impl<E: Clone + Send + 'static> ShareError<E> {
    /// Errors are shared as clones.
    pub const fn cloning() -> Self {
        ShareError {
            share: |e| Some(Box::new(e.clone())),
            copy: |p| {
                p.downcast_ref::<E>()
                    .map(|e| Box::new(e.clone()) as SharedError)
            },
            take: |p| p.downcast::<E>().ok().map(|b| *b),
        }
    }
}

/// How a waiter waits for its leader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Blocks the thread (sync callers).
    Block,
    /// Yields to the executor (async callers).
    Yield,
}

/// One caller's load of one key, as [`run`] drives it. Values travel as
/// [`Stamped`]: with the stamp of the start of their load and their tags.
pub(crate) trait Load {
    type Value;
    type Error;

    /// A fresh value already in process memory: checked by a new leader
    /// (the previous one may have just stored it) and by a waiter that got
    /// no copy of its leader's outcome.
    fn peek(&self) -> Option<Stamped<Self::Value>>;

    /// Looks in the remote layers (which fill the layers above on a hit).
    fn remote(&mut self) -> impl Future<Output = Option<Stamped<Self::Value>>>;

    /// Runs the loader and stores what it returned (unless an invalidation
    /// came while it ran); the leader's last step. The value carries every
    /// tag it is stored with, or would be were it cached.
    fn load(self) -> impl Future<Output = Result<Stamped<Self::Value>, Self::Error>>;

    /// Whether `value` (a value of this key) may be handed to a waiter: no
    /// invalidation known now covers it (its stamp against the watermarks of
    /// each of its tags and of the key), and the bus has not reconnected
    /// since this process got it.
    fn current(&self, value: &Stamped<Self::Value>) -> bool;
}

/// How many times a waiter waits for a leader whose value an invalidation
/// covered before it loads itself, outside the flight (bounded, so a key
/// invalidated without pause cannot hold a caller forever).
const WAITS_FOR_CURRENT: u32 = 3;

/// The leader/waiter loop: the first caller of `key` leads (memory, then
/// the remote layers, then the loader; the value is stored before the
/// waiters are told), the others wait for its outcome. A waiter that gets
/// no copy of the outcome (an error that cannot be shared, a leader that
/// panicked or was cancelled) joins again: at most one caller loads at a
/// time, and the key is never wedged. A waiter takes the leader's value only
/// if no invalidation of any of its tags (those the loader added as it ran
/// included) has covered it since its load began, and the bus has not
/// reconnected since (an invalidation may have been missed): an
/// invalidation that returned before the waiter arrived must not hand it an
/// older value; such a waiter waits for (or leads) a newer load.
pub(crate) async fn run<K, V, J>(
    flights: &Flights<K, V>,
    key: &K,
    wait: Wait,
    share: ShareError<J::Error>,
    job: J,
) -> Result<V, J::Error>
where
    K: Hash + Eq + Clone,
    V: Clone,
    J: Load<Value = V>,
{
    let mut job = job;
    let mut superseded = 0;
    loop {
        match flights.join(key) {
            Role::Leader(lead) => {
                lead.claim(wait);
                if let Some(found) = job.peek() {
                    lead.finish(|| Outcome::Done(found.clone()));
                    return Ok(found.value);
                }
                if let Some(found) = job.remote().await {
                    lead.finish(|| Outcome::Done(found.clone()));
                    return Ok(found.value);
                }
                return match lead.running(job.load()).await {
                    Ok(loaded) => {
                        lead.finish(|| Outcome::Done(loaded.clone()));
                        Ok(loaded.value)
                    }
                    Err(e) => {
                        lead.finish(|| Outcome::Failed((share.share)(&e)));
                        Err(e)
                    }
                };
            }
            Role::Waiter(flight) => {
                if stuck(&flight, wait) {
                    // Waiting would never end: this caller loads on its own
                    // (its value is stored as any load's).
                    tracing::debug!(
                        "a load of this key is led where waiting cannot end; loading apart"
                    );
                    return job.load().await.map(|l| l.value);
                }
                let outcome = match wait {
                    Wait::Block => flight.wait(share.copy),
                    Wait::Yield => flight.wait_async(share.copy).await,
                };
                match outcome {
                    Outcome::Done(v) if job.current(&v) => return Ok(v.value),
                    Outcome::Done(_) => {
                        superseded += 1;
                        if superseded >= WAITS_FOR_CURRENT {
                            return job.load().await.map(|l| l.value);
                        }
                    }
                    Outcome::Failed(Some(e)) => {
                        if let Some(e) = (share.take)(e) {
                            return Err(e);
                        }
                    }
                    Outcome::Failed(None) | Outcome::Abandoned | Outcome::Running => {}
                }
                if let Some(found) = job.peek() {
                    return Ok(found.value);
                }
            }
        }
    }
}

/// Wakes the thread that drives a future in [`block_here`].
struct Unpark(std::thread::Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Drives `fut` to completion on this thread. For the sync adapters over the
/// async core: their futures block inside (on the I/O runtime, on a
/// condition variable) instead of returning `Pending`, so this polls once;
/// should one return `Pending`, the thread parks until it is woken.
pub(crate) fn block_here<F: Future>(fut: F) -> F::Output {
    let mut fut = pin!(fut);
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}
