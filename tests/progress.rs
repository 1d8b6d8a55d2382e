//! No caller waits on a leader that cannot make progress: a loader that
//! calls itself for the same key, and a sync caller blocking the only
//! thread of a current-thread runtime while an async task of that runtime
//! leads the load. Each case runs on a thread of its own and the test fails
//! (instead of hanging) if it has not finished in a minute.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::mpsc;
use std::time::Duration;

use cachewright::{cached, Cache};

fn finishes<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{what}: still waiting after a minute (deadlock)"))
}

static SYNC_LOADS: AtomicU32 = AtomicU32::new(0);

/// Calls itself once for the same key (`depth` is not part of it).
#[cached(key = "node:<id>", ignore = [depth])]
fn node(id: u32, depth: u32) -> u32 {
    SYNC_LOADS.fetch_add(1, SeqCst);
    if depth == 0 {
        node(id, 1) + 10
    } else {
        id
    }
}

#[test]
fn a_sync_loader_calling_itself_for_its_key_does_not_deadlock() {
    assert_eq!(finishes("sync recursion", || node(7, 0)), 17);
    assert_eq!(SYNC_LOADS.load(SeqCst), 2, "the inner call loaded apart");
    assert_eq!(node(7, 0), 17, "the outer value is what stays");
}

static ASYNC_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "tree:<id>", ignore = [depth])]
async fn tree(id: u32, depth: u32) -> u32 {
    ASYNC_LOADS.fetch_add(1, SeqCst);
    if depth == 0 {
        Box::pin(tree(id, 1)).await + 10
    } else {
        id
    }
}

#[test]
fn an_async_loader_awaiting_itself_for_its_key_does_not_deadlock() {
    let v = finishes("async recursion", || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(tree(3, 0))
    });
    assert_eq!(v, 13);
    assert_eq!(ASYNC_LOADS.load(SeqCst), 2);
}

/// An async task leads a load of a key and waits; the sync API is then
/// called for the same key on the runtime's only thread. Blocking there
/// would stop the leader forever: the sync caller loads on its own.
#[test]
fn a_sync_caller_on_a_current_thread_runtime_never_waits_for_an_async_leader() {
    let v = finishes("sync caller under an async leader", || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let cache = Cache::builder().build();
            let key = cache.key("report", &1);
            let (c, k) = (cache.clone(), key.clone());
            let (started_tx, started_rx) = tokio::sync::oneshot::channel();
            let (go_tx, go_rx) = tokio::sync::oneshot::channel::<()>();
            let leader = tokio::spawn(async move {
                c.get_or_load_async(&k, None, async move {
                    let _ = started_tx.send(());
                    let _ = go_rx.await;
                    Ok::<u32, ()>(1)
                })
                .await
            });
            started_rx.await.unwrap(); // the leader is inside its loader
            let mine: Result<u32, ()> = cache.get_or_load(&key, None, || Ok(2));
            go_tx.send(()).unwrap();
            let theirs = leader.await.unwrap();
            (mine, theirs)
        })
    });
    assert_eq!(v, (Ok(2), Ok(1)), "each got its own load");
}
