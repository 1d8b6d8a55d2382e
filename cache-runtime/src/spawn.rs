//! Where background work runs.

use std::future::Future;

/// Runs `task` on the current tokio runtime, or, outside one, on a thread
/// driving a small runtime of its own.
pub(crate) fn spawn<F>(task: F)
where
    F: Future<Output = ()> + Send + 'static,
{
    if let Ok(handle) = tokio::runtime::Handle::try_current() {
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
