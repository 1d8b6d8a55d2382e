//! Scopes that turn the cache off (or on) for a block of code, and the
//! process-wide switch. Off-by-default mode is process-wide configuration:
//! it has its own test binary, `tests/off_by_default.rs`.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{LazyLock, Mutex};

use cachewright::{cache_write, cached, Cache};

static CACHE: LazyLock<Cache> = LazyLock::new(|| Cache::builder().name("scopes").build());

/// The switch test turns caching off for the whole process: the others
/// wait for it.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

static SYNC_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "s:<id>", ttl = 600, cache = CACHE)]
fn sync_fn(id: u32) -> u32 {
    SYNC_LOADS.fetch_add(1, SeqCst);
    id
}

#[test]
fn a_disabled_block_runs_every_call_and_stores_nothing() {
    let _g = serial();
    let before = SYNC_LOADS.load(SeqCst);
    cachewright::disabled_sync(|| {
        for _ in 0..3 {
            assert_eq!(sync_fn(1), 1);
        }
    });
    assert_eq!(SYNC_LOADS.load(SeqCst), before + 3, "every call ran");
    sync_fn(1);
    sync_fn(1);
    assert_eq!(
        SYNC_LOADS.load(SeqCst),
        before + 4,
        "nothing stored: one load after"
    );
    let bypassed = CACHE.stats_for("scopes::sync_fn").map(|s| s.bypasses);
    assert!(
        bypassed.is_some_and(|b| b >= 3),
        "counted as bypasses: {bypassed:?}"
    );
}

#[test]
fn an_enabled_block_inside_a_disabled_one_uses_the_cache() {
    let _g = serial();
    let before = SYNC_LOADS.load(SeqCst);
    cachewright::disabled_sync(|| {
        cachewright::enabled_sync(|| {
            sync_fn(2);
            sync_fn(2);
        });
        sync_fn(2);
    });
    assert_eq!(
        SYNC_LOADS.load(SeqCst),
        before + 2,
        "one load inside `enabled`, one after it"
    );
}

#[test]
fn a_thread_started_in_a_disabled_block_uses_the_cache() {
    let _g = serial();
    let before = SYNC_LOADS.load(SeqCst);
    cachewright::disabled_sync(|| {
        std::thread::spawn(|| {
            assert!(cachewright::caching_enabled());
            sync_fn(3);
            sync_fn(3);
        })
        .join()
        .expect("thread");
    });
    assert_eq!(SYNC_LOADS.load(SeqCst), before + 1, "cached on the thread");
}

static WRITES: AtomicU32 = AtomicU32::new(0);

#[cache_write(invalidate = ["s:<id>"], cache = CACHE)]
fn write(id: u32) {
    let _ = id;
    WRITES.fetch_add(1, SeqCst);
}

#[test]
fn a_write_in_a_disabled_block_still_invalidates() {
    let _g = serial();
    sync_fn(4);
    let before = SYNC_LOADS.load(SeqCst);
    sync_fn(4);
    assert_eq!(SYNC_LOADS.load(SeqCst), before, "cached");
    cachewright::disabled_sync(|| write(4));
    sync_fn(4);
    assert_eq!(SYNC_LOADS.load(SeqCst), before + 1, "invalidated: loaded");
}

#[test]
fn refresh_inside_a_disabled_block_stores_nothing() {
    let _g = serial();
    sync_fn(5);
    let before = SYNC_LOADS.load(SeqCst);
    cachewright::disabled_sync(|| cachewright::refresh(|| sync_fn(5)));
    assert_eq!(SYNC_LOADS.load(SeqCst), before + 1, "the refresh ran");
    sync_fn(5);
    assert_eq!(SYNC_LOADS.load(SeqCst), before + 1, "the old entry stands");
}

#[test]
fn the_switch_turns_caching_off_everywhere_and_back_on() {
    let _g = serial();
    sync_fn(6);
    let before = SYNC_LOADS.load(SeqCst);
    cachewright::set_caching_enabled(false);
    let off = std::panic::catch_unwind(|| {
        sync_fn(6);
        cachewright::enabled_sync(|| sync_fn(6));
        std::thread::spawn(|| sync_fn(6)).join().expect("thread");
    });
    cachewright::set_caching_enabled(true);
    assert!(off.is_ok());
    assert_eq!(
        SYNC_LOADS.load(SeqCst),
        before + 3,
        "off in every scope and thread"
    );
    sync_fn(6);
    assert_eq!(
        SYNC_LOADS.load(SeqCst),
        before + 3,
        "back on: the entry stands"
    );
}

static ASYNC_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "a:<id>", ttl = 600, cache = CACHE)]
async fn async_fn(id: u32) -> u32 {
    ASYNC_LOADS.fetch_add(1, SeqCst);
    tokio::task::yield_now().await;
    id
}

static SPAWNED_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "spawned:<id>", ttl = 600, cache = CACHE)]
async fn spawned_fn(id: u32) -> u32 {
    SPAWNED_LOADS.fetch_add(1, SeqCst);
    id
}

/// Two tasks on a multi-thread runtime, interleaving at every `.await`:
/// the disabled one runs its function every time, the other loads once;
/// and a task spawned inside the disabled scope is not in it.
#[test]
fn an_async_scope_follows_its_task_and_no_other() {
    let _g = serial();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let before = ASYNC_LOADS.load(SeqCst);
    let spawned_loads = rt.block_on(async {
        let off = tokio::spawn(cachewright::disabled(async {
            for _ in 0..50 {
                assert_eq!(async_fn(10).await, 10);
                tokio::task::yield_now().await;
            }
            assert!(!cachewright::caching_enabled(), "still off after awaits");
            // A task spawned from the scope is outside it.
            tokio::spawn(async {
                spawned_fn(12).await;
                spawned_fn(12).await;
                SPAWNED_LOADS.load(SeqCst)
            })
            .await
            .expect("spawned task")
        }));
        let on = tokio::spawn(async {
            for _ in 0..50 {
                assert_eq!(async_fn(11).await, 11);
                tokio::task::yield_now().await;
            }
            assert!(cachewright::caching_enabled());
        });
        on.await.expect("task on");
        off.await.expect("task off")
    });
    assert_eq!(spawned_loads, 1, "the spawned task cached");
    assert_eq!(
        ASYNC_LOADS.load(SeqCst),
        before + 50 + 1,
        "50 runs in the disabled task, one load for the other"
    );
}
