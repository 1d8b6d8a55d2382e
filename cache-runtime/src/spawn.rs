//! Where background work runs, and how time limits are kept on any runtime.

use std::cell::Cell;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use tokio::runtime::{Handle, Id};

/// Runs `task` on the current tokio runtime, or, outside one, on a thread
/// driving a small runtime of its own.
pub(crate) fn spawn<F>(task: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Some(handle) = current_with_timers() {
        handle.spawn(task);
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("cachewright-task".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(task),
                Err(e) => {
                    tracing::warn!(error = %e, "could not build a runtime for background work")
                }
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "could not start a thread for background work");
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
