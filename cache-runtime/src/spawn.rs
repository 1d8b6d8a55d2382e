//! Where work runs, and how time limits are kept on any runtime.
//!
//! - User work in the background (async refreshes, recaches, background
//!   writers' schedules and loaders) runs on the caller's tokio runtime
//!   when there is one (so a paused test clock drives it), otherwise on a
//!   small runtime of cachewright's own for user work, started on first
//!   use ([`spawn`], [`block_on`]). Never on the I/O runtime
//!   (`cachewright_backends::io`): a loader that blocks there would stall
//!   every connection.
//! - I/O of the caller's (a coalesced read's flush) runs on the caller's
//!   runtime, or outside one on the I/O runtime ([`spawn_io`]).
//! - Refreshes of sync functions run on a fixed number of threads, with a
//!   bounded queue ([`refresh_slot`]); when it is full a refresh is skipped
//!   (the stale value was served; a later call retries).

use std::cell::Cell;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::time::Duration;

use tokio::runtime::{Handle, Id, Runtime};
use tokio::task::AbortHandle;

/// Threads of cachewright's runtime for user work.
const WORKER_THREADS: usize = 2;
/// Threads that run refreshes of sync functions.
pub(crate) const REFRESH_THREADS: usize = 4;
/// The most refreshes of sync functions queued or running at once.
pub(crate) const REFRESH_QUEUE: usize = 256;

/// Runs `task` on the caller's tokio runtime (when its timers work), or on
/// cachewright's runtime for user work; `None` if neither can run it.
pub(crate) fn spawn<F>(task: F) -> Option<AbortHandle>
where
    F: Future<Output = ()> + Send + 'static,
{
    let handle = current_with_timers().or_else(worker)?;
    Some(handle.spawn(task).abort_handle())
}

/// Runs `fut` on cachewright's runtime for user work and blocks the calling
/// thread until it finishes or `limit` passes. For sync callers of async
/// user code (a loader) only; I/O goes to `cachewright_backends::io::block_on`.
pub(crate) fn block_on<F>(fut: F, limit: Duration) -> Option<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let (tx, rx) = mpsc::sync_channel(1);
    worker()?.spawn(async move {
        if let Ok(out) = tokio::time::timeout(limit, fut).await {
            let _ = tx.send(out);
        }
    });
    // The task applies the limit itself; the margin only covers a runtime
    // too busy to report.
    rx.recv_timeout(limit.saturating_add(Duration::from_millis(250)))
        .ok()
}

/// Runs I/O `task` on the caller's tokio runtime, or outside one on
/// cachewright's I/O runtime (dropped if neither is there).
/// Runs `task` on cachewright's I/O runtime, whatever runtime the caller
/// is on: for the library's own I/O that must outlive the caller's runtime
/// (retries of undelivered invalidations, write announcements).
pub(crate) fn spawn_on_io<F>(task: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Some(h) = cachewright_backends::io::handle() {
        h.spawn(task);
    }
}

pub(crate) fn spawn_io<F>(task: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Some(h) = Handle::try_current()
        .ok()
        .or_else(cachewright_backends::io::handle)
    {
        h.spawn(task);
    }
}

/// cachewright's runtime for user work, started on first use; `None` if
/// the OS refused its threads.
fn worker() -> Option<Handle> {
    static WORKER: OnceLock<Option<Runtime>> = OnceLock::new();
    WORKER
        .get_or_init(|| {
            match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(WORKER_THREADS)
                .thread_name("cachewright-worker")
                .enable_all()
                .build()
            {
                Ok(rt) => Some(rt),
                Err(e) => {
                    tracing::error!(error = %e, "cachewright could not start its runtime for background work; it is skipped");
                    None
                }
            }
        })
        .as_ref()
        .map(|rt| rt.handle().clone())
}

// ---- refreshes of sync functions --------------------------------------------------

type Job = Box<dyn FnOnce() + Send>;

/// The threads that run refreshes of sync functions, and their queue.
struct RefreshPool {
    jobs: mpsc::Sender<Job>,
    /// Refreshes queued or running (slots taken).
    pending: Arc<AtomicUsize>,
}

fn refresh_pool() -> Option<&'static RefreshPool> {
    static POOL: OnceLock<Option<RefreshPool>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        let mut started = 0;
        for i in 0..REFRESH_THREADS {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("cachewright-refresh-{i}"))
                .spawn(move || loop {
                    // The lock is held only while waiting for a job.
                    let job = match rx.lock().unwrap_or_else(|e| e.into_inner()).recv() {
                        Ok(job) => job,
                        Err(_) => return,
                    };
                    // A panicking job must not take its thread with it.
                    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                        tracing::warn!("a background refresh panicked");
                    }
                });
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::warn!(error = %e, "could not start a refresh thread"),
            }
        }
        (started > 0).then(|| RefreshPool {
            jobs: tx,
            pending: Arc::new(AtomicUsize::new(0)),
        })
    })
    .as_ref()
}

/// A place in the queue of refreshes of sync functions: given back when
/// dropped unused, or when its job has run (or panicked).
pub(crate) struct RefreshSlot {
    pool: &'static RefreshPool,
    /// Whether the slot is still held by this value (not handed to a job).
    held: bool,
}

/// Takes a place in the refresh queue; `None` when it is full (or no
/// refresh thread could start): the refresh is to be skipped.
pub(crate) fn refresh_slot() -> Option<RefreshSlot> {
    let pool = refresh_pool()?;
    pool.pending
        .fetch_update(Relaxed, Relaxed, |n| (n < REFRESH_QUEUE).then_some(n + 1))
        .ok()?;
    Some(RefreshSlot { pool, held: true })
}

impl RefreshSlot {
    /// Runs `job` on a refresh thread.
    pub(crate) fn run(mut self, job: impl FnOnce() + Send + 'static) {
        self.held = false;
        let pending = self.pool.pending.clone();
        let job: Job = Box::new(move || {
            let _done = Release(pending);
            job();
        });
        let sent = self.pool.jobs.send(job);
        // Every refresh thread is gone: the job (and its release) drops.
        drop(sent);
    }
}

impl Drop for RefreshSlot {
    fn drop(&mut self) {
        if self.held {
            self.pool.pending.fetch_sub(1, Relaxed);
        }
    }
}

/// Gives a slot back when a job ends, however it ends.
struct Release(Arc<AtomicUsize>);

impl Drop for Release {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

/// Runs `fut` within `limit` (`None` when it ran out): on the caller's
/// runtime when it has a time driver (so that a paused test clock drives
/// the limit), otherwise on cachewright's I/O runtime, whose timers always
/// work, awaiting the result from wherever the caller is.
pub(crate) async fn within<T: Send + 'static>(
    limit: Duration,
    fut: impl Future<Output = T> + Send + 'static,
) -> Option<T> {
    if current_with_timers().is_some() {
        return tokio::time::timeout(limit, fut).await.ok();
    }
    let handle = cachewright_backends::io::handle()?;
    // The timer is made in the task: made here, it would belong to the
    // caller's runtime.
    handle
        .spawn(async move { tokio::time::timeout(limit, fut).await })
        .await
        .ok()?
        .ok()
}

/// The caller's tokio runtime, if it has one and its timers work. A runtime
/// built without `enable_time` (or `enable_all`) panics on the first timer
/// made in it; cachewright's work goes elsewhere instead.
pub(crate) fn current_with_timers() -> Option<Handle> {
    let handle = Handle::try_current().ok()?;
    timers_enabled(&handle).then_some(handle)
}

/// Whether `handle`'s runtime has a time driver; probed once per runtime.
fn timers_enabled(handle: &Handle) -> bool {
    thread_local! {
        static LAST: Cell<Option<(Id, bool)>> = const { Cell::new(None) };
    }
    /// Runtimes probed; a process that makes runtimes without end clears
    /// it now and then (a runtime seen again is probed again).
    static KNOWN: Mutex<Vec<(Id, bool)>> = Mutex::new(Vec::new());
    let id = handle.id();
    if let Some((seen, on)) = LAST.get() {
        if seen == id {
            return on;
        }
    }
    let mut known = KNOWN.lock().unwrap_or_else(|e| e.into_inner());
    let on = match known.iter().find(|(seen, _)| *seen == id) {
        Some(&(_, on)) => on,
        None => {
            let on = probe_timers();
            if known.len() >= 64 {
                known.clear();
            }
            known.push((id, on));
            on
        }
    };
    drop(known);
    LAST.set(Some((id, on)));
    on
}

/// Makes a timer in the current runtime: tokio panics at once if the
/// runtime has no time driver. The panic is caught (its message is printed
/// once per such runtime by the panic hook) and logged.
#[cfg(panic = "unwind")]
fn probe_timers() -> bool {
    let on = std::panic::catch_unwind(|| drop(tokio::time::sleep(Duration::ZERO))).is_ok();
    if !on {
        tracing::warn!(
            "this tokio runtime has no time driver (build it with `enable_time` or `enable_all`); \
             cachewright keeps its time limits on its own runtime instead"
        );
    }
    on
}

/// With `panic = "abort"` a probe cannot be caught: the runtime is taken
/// to have timers, as tokio itself requires of any code that uses them.
#[cfg(not(panic = "unwind"))]
fn probe_timers() -> bool {
    true
}
