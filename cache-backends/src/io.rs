//! cachewright's own small runtime for background I/O.
//!
//! Connections are created here (so their driver tasks live independently of
//! any user runtime), and sync callers run backend operations here, waiting
//! on a channel, since a sync function cannot `.await`. Backends whose
//! connections are bound to the runtime that opened them (sockets register
//! with one runtime's reactor) run every operation here with [`run`], so
//! that any number of user runtimes can share them.

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use tokio::runtime::{Builder, Handle, Runtime};

static IO: OnceLock<Option<Runtime>> = OnceLock::new();

/// The handle of cachewright's I/O runtime (one worker thread, started on first
/// use), or `None` if the OS refused to start it.
///
/// # Examples
///
/// ```
/// use cachewright::backends::io;
///
/// let handle = io::handle().expect("the i/o runtime started");
/// let answer = handle.block_on(async { 40 + 2 });
/// assert_eq!(answer, 42);
/// ```
pub fn handle() -> Option<Handle> {
    IO.get_or_init(|| {
        match Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cachewright-io")
            .enable_all()
            .build()
        {
            Ok(rt) => Some(rt),
            Err(e) => {
                tracing::error!(error = %e, "cachewright could not start its i/o runtime; remote layers are skipped by sync callers");
                None
            }
        }
    })
    .as_ref()
    .map(|rt| rt.handle().clone())
}

static BUS: OnceLock<Option<Runtime>> = OnceLock::new();

/// The handle of the runtime that listens to invalidation buses (one thread
/// of its own, `cachewright-bus`, started on first use), or `None` if the OS
/// refused to start it. Apart from the I/O runtime so that a message is
/// applied as soon as it arrives, not after the layer reads and writes
/// queued before it: the shorter that wait, the shorter another process
/// serves a copy invalidated elsewhere.
///
/// # Examples
///
/// ```
/// let bus = cachewright::backends::io::bus_handle().expect("the OS starts a thread");
/// let io = cachewright::backends::io::handle().expect("the OS starts a thread");
/// assert_ne!(bus.id(), io.id(), "two runtimes");
/// ```
pub fn bus_handle() -> Option<Handle> {
    BUS.get_or_init(|| {
        match Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cachewright-bus")
            .enable_all()
            .build()
        {
            Ok(rt) => Some(rt),
            Err(e) => {
                tracing::error!(error = %e, "cachewright could not start its bus runtime; buses listen on the i/o runtime");
                None
            }
        }
    })
    .as_ref()
    .map(|rt| rt.handle().clone())
}

/// Why [`block_on`] returned no output.
///
/// # Examples
///
/// ```
/// use cachewright::backends::io::{block_on, Blocked};
/// use std::time::Duration;
///
/// let slow = async { tokio::time::sleep(Duration::from_secs(5)).await };
/// assert_eq!(block_on(slow, Duration::from_millis(10)), Err(Blocked::TimedOut));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Blocked {
    /// The operation did not finish within its time limit.
    TimedOut,
    /// The I/O runtime is not available, or the task was lost.
    Unavailable,
}

/// Runs `fut` on the I/O runtime and blocks the calling thread until it
/// finishes or `limit` passes. For sync callers only: async code awaits.
///
/// # Errors
///
/// [`Blocked::TimedOut`] when `limit` passes first (the task is dropped);
/// [`Blocked::Unavailable`] when the I/O runtime is not available or the
/// task was lost.
///
/// # Blocking
///
/// Blocks the calling thread for at most `limit` (and a short margin).
/// Do not call it from async code.
///
/// # Examples
///
/// ```
/// use cachewright::backends::io::block_on;
/// use std::time::Duration;
///
/// let n = block_on(async { 6 * 7 }, Duration::from_secs(1));
/// assert_eq!(n, Ok(42));
/// ```
pub fn block_on<F>(fut: F, limit: Duration) -> Result<F::Output, Blocked>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handle = handle().ok_or(Blocked::Unavailable)?;
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let out = tokio::time::timeout(limit, fut).await;
        let _ = tx.send(out);
    });
    // The task applies the limit itself; the margin here only covers a
    // runtime too busy to report.
    match rx.recv_timeout(limit.saturating_add(Duration::from_millis(250))) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(_)) | Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(Blocked::TimedOut),
        Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err(Blocked::Unavailable),
    }
}

/// Runs `fut` on the I/O runtime and awaits its output from wherever the
/// caller is (any tokio runtime, or none). Dropping the returned future
/// aborts the task. Already on the I/O runtime, `fut` is simply awaited.
///
/// # Errors
///
/// [`Blocked::Unavailable`] when the I/O runtime is not available, or the
/// task was lost (it panicked, or the runtime shut down).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use cachewright::backends::io;
///
/// // The future runs on the i/o runtime's thread, not on this one.
/// let name = io::run(async { std::thread::current().name().map(str::to_owned) }).await;
/// assert_eq!(name.unwrap().as_deref(), Some("cachewright-io"));
/// # }
/// ```
pub async fn run<F>(fut: F) -> Result<F::Output, Blocked>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handle = handle().ok_or(Blocked::Unavailable)?;
    if Handle::try_current().is_ok_and(|h| h.id() == handle.id()) {
        return Ok(fut.await);
    }
    let task = handle.spawn(fut);
    let abort = AbortOnDrop(task.abort_handle());
    let out = task.await.map_err(|_| Blocked::Unavailable);
    drop(abort);
    out
}

/// Aborts a task whose output nobody waits for any more.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
