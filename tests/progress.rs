//! No caller waits on a leader that cannot make progress: a loader that
//! calls itself for the same key (in a call or in a background refresh),
//! and a sync caller blocking the thread an async leader needs. Callers
//! that can wait do: two calls of one key joined in one task share a load.
//! Each case runs on a thread of its own and the test fails (instead of
//! hanging) if it has not finished in a minute.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::{mpsc, LazyLock};
use std::time::Duration;

use cachewright::{cached, Cache, Clock, ManualClock};

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

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

static JOINED_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "joined:<id>")]
async fn joined(id: u32) -> u32 {
    JOINED_LOADS.fetch_add(1, SeqCst);
    tokio::task::yield_now().await; // the other call arrives meanwhile
    id
}

/// Two calls of one key in one task are not inside each other's load: the
/// second waits for the first's. (Before, "the leader is this very call"
/// was told by task, and each loaded.)
#[test]
fn two_calls_of_one_key_joined_in_one_task_share_one_load() {
    let v = finishes("join!", || {
        current_thread().block_on(async {
            let in_a_task = tokio::spawn(async { tokio::join!(joined(1), joined(1)) });
            let outside_any_task = tokio::join!(joined(2), joined(2));
            (in_a_task.await.unwrap(), outside_any_task)
        })
    });
    assert_eq!(v, ((1, 1), (2, 2)));
    assert_eq!(JOINED_LOADS.load(SeqCst), 2, "one load per key");

    let cache = Cache::builder().build();
    let key = cache.key("joined", &3);
    let loads = AtomicU32::new(0);
    let load = || async {
        loads.fetch_add(1, SeqCst);
        tokio::task::yield_now().await;
        Ok::<u32, ()>(3)
    };
    let v = current_thread().block_on(async {
        tokio::join!(
            cache.get_or_load_async(&key, None, load()),
            cache.get_or_load_async(&key, None, load())
        )
    });
    assert_eq!(v, (Ok(3), Ok(3)));
    assert_eq!(loads.load(SeqCst), 1, "the direct API too");
}

/// Waiting across tasks, on a runtime of several threads: one load.
#[test]
fn calls_of_one_key_in_many_tasks_share_one_load() {
    let cache = Cache::builder().build();
    let key = cache.key("tasks", &1);
    let loads = std::sync::Arc::new(AtomicU32::new(0));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let got = rt.block_on(async {
        let calls: Vec<_> = (0..8)
            .map(|_| {
                let (c, k, n) = (cache.clone(), key.clone(), loads.clone());
                tokio::spawn(async move {
                    c.get_or_load_async(&k, None, async move {
                        n.fetch_add(1, SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<u32, ()>(1)
                    })
                    .await
                })
            })
            .collect();
        let mut got = Vec::new();
        for c in calls {
            got.push(c.await.unwrap());
        }
        got
    });
    assert!(got.iter().all(|v| *v == Ok(1)));
    assert_eq!(loads.load(SeqCst), 1);
}

/// A sync call joined in one task with an async leader of its key would
/// block the very task that leader needs: it loads apart.
#[test]
fn a_sync_caller_in_the_task_of_an_async_leader_never_waits_for_it() {
    let v = finishes("sync caller in the leader's task", || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::spawn(async {
                let cache = Cache::builder().build();
                let key = cache.key("same_task", &1);
                let leader = cache.get_or_load_async(&key, None, async {
                    tokio::task::yield_now().await;
                    Ok::<u32, ()>(1)
                });
                let sync = async { cache.get_or_load(&key, None, || Ok::<u32, ()>(2)) };
                tokio::join!(leader, sync)
            })
            .await
            .unwrap()
        })
    });
    assert_eq!(v, (Ok(1), Ok(2)), "each got its own load");
}

// ---- a loader calling itself during a background refresh of its key ----------------------

/// A clock and a cache per test: one test's clock must not make the other's
/// values stale.
static ECHO_CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static ECHO_CACHE: LazyLock<Cache> =
    LazyLock::new(|| Cache::builder().clock(Clock::manual(&ECHO_CLOCK)).build());
static CHIRP_CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static CHIRP_CACHE: LazyLock<Cache> =
    LazyLock::new(|| Cache::builder().clock(Clock::manual(&CHIRP_CLOCK)).build());
static ECHO_LOADS: AtomicU32 = AtomicU32::new(0);
static ECHO_REENTERS: AtomicBool = AtomicBool::new(false);

/// When told to, drops its own key (as a write would) and calls itself: the
/// inner call misses while the outer load, a background refresh, runs.
#[cached(key = "echo:<id>", ttl = 1, swr = 600, cache = ECHO_CACHE, ignore = [depth])]
async fn echo(id: u32, depth: u32) -> u32 {
    let n = ECHO_LOADS.fetch_add(1, SeqCst) + 1;
    if depth == 0 && ECHO_REENTERS.swap(false, SeqCst) {
        ECHO_CACHE
            .invalidate_tags_async([cachewright::tag("echo", &id)])
            .await;
        return echo_again(id).await + 100;
    }
    n
}

/// The inner call, boxed: a recursive async fn's future must say it is
/// `Send` for the background refresh to spawn it.
fn echo_again(id: u32) -> std::pin::Pin<Box<dyn std::future::Future<Output = u32> + Send>> {
    Box::pin(echo(id, 1))
}

static CHIRP_LOADS: AtomicU32 = AtomicU32::new(0);
static CHIRP_REENTERS: AtomicBool = AtomicBool::new(false);

#[cached(key = "chirp:<id>", ttl = 1, swr = 600, cache = CHIRP_CACHE, ignore = [depth])]
fn chirp(id: u32, depth: u32) -> u32 {
    let n = CHIRP_LOADS.fetch_add(1, SeqCst) + 1;
    if depth == 0 && CHIRP_REENTERS.swap(false, SeqCst) {
        CHIRP_CACHE.invalidate_tags([cachewright::tag("chirp", &id)]);
        return chirp(id, 1) + 100;
    }
    n
}

/// The refresh of a stale value runs the loader in the background, with no
/// caller; the loader's call for its own key finds the refresh's flight and
/// loads apart instead of waiting on itself. (Before, the refresh's flight
/// had no caller to compare with, and the refresh waited on itself for
/// ever, with every later call of the key behind it.)
#[test]
fn an_async_loader_calling_itself_during_its_background_refresh_does_not_deadlock() {
    let v = finishes("async refresh recursion", || {
        current_thread().block_on(async {
            assert_eq!(echo(1, 0).await, 1);
            ECHO_CLOCK.advance(Duration::from_secs(2)); // stale
            ECHO_REENTERS.store(true, SeqCst);
            assert_eq!(echo(1, 0).await, 1, "stale, refreshed in the background");
            loop {
                let v = echo(1, 0).await;
                if v != 1 {
                    return v;
                }
                tokio::task::yield_now().await;
            }
        })
    });
    assert_eq!(
        v, 3,
        "the inner call's load (the third), begun after the invalidation"
    );
    assert_eq!(ECHO_LOADS.load(SeqCst), 3);
}

#[test]
fn a_sync_loader_calling_itself_during_its_background_refresh_does_not_deadlock() {
    let v = finishes("sync refresh recursion", || {
        assert_eq!(chirp(1, 0), 1);
        CHIRP_CLOCK.advance(Duration::from_secs(2));
        CHIRP_REENTERS.store(true, SeqCst);
        assert_eq!(chirp(1, 0), 1, "stale, refreshed in the background");
        loop {
            let v = chirp(1, 0);
            if v != 1 {
                return v;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    });
    assert_eq!(v, 3, "the inner call's load");
    assert_eq!(CHIRP_LOADS.load(SeqCst), 3);
}
