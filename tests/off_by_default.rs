//! Off-by-default mode (GCache's safe default): only calls inside an
//! `enabled` scope use the cache. Process-wide configuration, hence its own
//! test binary.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::Once;

use cachewright::cached;

static SETUP: Once = Once::new();

fn setup() {
    SETUP.call_once(|| {
        cachewright::configure()
            .enabled_by_default(false)
            .install()
            .expect("configured once");
    });
}

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "obd:<id>", ttl = 600)]
fn f(id: u32) -> u32 {
    LOADS.fetch_add(1, SeqCst);
    id
}

#[test]
fn only_enabled_scopes_use_the_cache() {
    setup();
    assert!(!cachewright::caching_enabled());
    let before = LOADS.load(SeqCst);
    f(1);
    f(1);
    assert_eq!(LOADS.load(SeqCst), before + 2, "off outside a scope");
    cachewright::enabled_sync(|| {
        f(1);
        f(1);
    });
    assert_eq!(LOADS.load(SeqCst), before + 3, "on inside: one load");
    f(1);
    assert_eq!(LOADS.load(SeqCst), before + 4, "off again after the scope");
    cachewright::enabled_sync(|| f(1));
    assert_eq!(
        LOADS.load(SeqCst),
        before + 4,
        "stored inside, served inside"
    );
}

static ASYNC_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "obd_async:<id>", ttl = 600)]
async fn g(id: u32) -> u32 {
    ASYNC_LOADS.fetch_add(1, SeqCst);
    tokio::task::yield_now().await;
    id
}

#[tokio::test]
async fn an_enabled_async_scope_uses_the_cache() {
    setup();
    g(1).await;
    g(1).await;
    assert_eq!(ASYNC_LOADS.load(SeqCst), 2, "off by default");
    cachewright::enabled(async {
        g(1).await;
        tokio::task::yield_now().await;
        g(1).await;
    })
    .await;
    assert_eq!(ASYNC_LOADS.load(SeqCst), 3, "one load in the scope");
}
