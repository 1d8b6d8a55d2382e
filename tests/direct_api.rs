//! The direct `Cache` API: typed get/set/delete/exists/set_if_not_exists/
//! clear/get_or_load, sync and async, with the keys the macros use.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use cachewright::{Cache, Clock, ManualClock};

fn cache() -> (Cache, ManualClock) {
    let clock = ManualClock::new(0);
    (
        Cache::builder()
            .namespace("app")
            .version("v2")
            .clock(Clock::manual(&clock))
            .build(),
        clock,
    )
}

#[test]
fn typed_get_set_with_ttl() {
    let (c, clock) = cache();
    let k = c.key("user", &7);
    assert_eq!(k.as_str(), "urn:app:v2:user:7");
    assert_eq!(c.get::<String>(&k), None);
    c.set(&k, "ada".to_string(), Some(Duration::from_secs(5)));
    assert_eq!(c.get::<String>(&k).as_deref(), Some("ada"));
    assert_eq!(c.get::<u32>(&k), None, "another type reads as absent");
    assert!(c.exists(&k));
    clock.advance(Duration::from_secs(5));
    assert_eq!(c.get::<String>(&k), None, "expired");
    assert!(!c.exists(&k));
}

#[test]
fn delete_and_clear() {
    let (c, _) = cache();
    let a = c.key("a", &1);
    let b = c.key("b", &1);
    c.set(&a, 1u8, None);
    c.set(&b, 2u8, None);
    assert!(c.delete(&a));
    assert!(!c.delete(&a), "already gone");
    assert_eq!(c.get::<u8>(&b), Some(2));
    c.clear();
    assert_eq!(c.get::<u8>(&b), None);
}

#[test]
fn set_if_not_exists_is_a_lock_with_a_lease() {
    let (c, clock) = cache();
    let lock = c.key("lock", &"nightly-report");
    let winners = Arc::new(AtomicU32::new(0));
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let (c, lock, winners, barrier) =
                (c.clone(), lock.clone(), winners.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                if c.set_if_not_exists(&lock, i, Some(Duration::from_secs(30))) {
                    winners.fetch_add(1, SeqCst);
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    assert_eq!(winners.load(SeqCst), 1, "exactly one holder");
    clock.advance(Duration::from_secs(31));
    assert!(
        c.set_if_not_exists(&lock, 99, Some(Duration::from_secs(30))),
        "the lease ran out"
    );
    assert_eq!(c.get::<i32>(&lock), Some(99));
}

#[test]
fn get_or_load_runs_one_loader_for_concurrent_callers() {
    let (c, _) = cache();
    let k = c.key("report", &"q3");
    let calls = Arc::new(AtomicU32::new(0));
    let barrier = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (c, k, calls, barrier) = (c.clone(), k.clone(), calls.clone(), barrier.clone());
            std::thread::spawn(move || {
                barrier.wait();
                c.get_or_load(&k, None, || {
                    calls.fetch_add(1, SeqCst);
                    std::thread::sleep(Duration::from_millis(30));
                    Ok::<_, String>(vec![1, 2, 3])
                })
            })
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), Ok(vec![1, 2, 3]));
    }
    assert_eq!(calls.load(SeqCst), 1);
}

#[test]
fn get_or_load_does_not_cache_errors() {
    let (c, _) = cache();
    let k = c.key("flaky", &1);
    let r: Result<u8, &str> = c.get_or_load(&k, None, || Err("down"));
    assert_eq!(r, Err("down"));
    let r: Result<u8, &str> = c.get_or_load(&k, None, || Ok(4));
    assert_eq!(r, Ok(4));
}

#[tokio::test]
async fn async_forms() {
    let (c, _) = cache();
    let k = c.key("x", &1).arg("page", &2).use_case("listing");
    assert_eq!(k.as_str(), "urn:app:v2:x:1?page=2#listing");
    c.set_async(&k, 5u64, None).await;
    assert_eq!(c.get_async::<u64>(&k).await, Some(5));
    assert!(c.exists_async(&k).await);
    assert!(!c.set_if_not_exists_async(&k, 6u64, None).await);
    let v: Result<u64, ()> = c.get_or_load_async(&k, None, async { Ok(7) }).await;
    assert_eq!(v, Ok(5), "present: the loader is not run");
    assert!(c.delete_async(&k).await);
    let v: Result<u64, ()> = c.get_or_load_async(&k, None, async { Ok(7) }).await;
    assert_eq!(v, Ok(7));
    c.clear_async().await;
    assert_eq!(c.get_async::<u64>(&k).await, None);
}

#[test]
fn adaptive_ttl_in_get_or_load() {
    let (c, clock) = cache();
    let k = c.key("adaptive", &1);
    let _: Result<u8, ()> = c.get_or_load(&k, Some(Duration::from_secs(100)), || {
        cachewright::set_ttl(Duration::from_secs(1));
        Ok(1)
    });
    clock.advance(Duration::from_secs(2));
    assert_eq!(c.get::<u8>(&k), None, "the loader's 1 s TTL won over 100 s");
}

#[test]
fn stats_of_the_direct_api() {
    let (c, _) = cache();
    let k = c.key("s", &1);
    c.get::<u8>(&k);
    c.set(&k, 1u8, None);
    c.get::<u8>(&k);
    let s = c.stats_for("direct").unwrap();
    assert_eq!((s.hits, s.misses), (1, 1));
    c.reset_stats();
    assert_eq!(c.stats_for("direct").unwrap().hits, 0);
}

// ---- the direct API on the entries of #[cached] calls ----------------------------------

mod cached_calls {
    use super::*;
    use cachewright::backends::MemoryBackend;
    use cachewright::{cached, LayerConfig};
    use std::sync::LazyLock;

    /// In process, over a shared layer (as Redis would be).
    static LAYERED: LazyLock<Cache> = LazyLock::new(|| {
        Cache::builder()
            .namespace("app")
            .layer(LayerConfig::new(MemoryBackend::new()))
            .without_bus()
            .build()
    });
    /// In process only.
    static LOCAL: LazyLock<Cache> =
        LazyLock::new(|| Cache::builder().namespace("app").without_bus().build());
    static LOADS: AtomicU32 = AtomicU32::new(0);

    #[cached(key = "user:<id>", ttl = 60, cache = LAYERED, name = "User")]
    fn user(id: u64) -> String {
        format!("user {id}, load {}", LOADS.fetch_add(1, SeqCst))
    }

    static LOCAL_LOADS: AtomicU32 = AtomicU32::new(0);

    #[cached(key = "org:<id>", ttl = 60, cache = LOCAL, name = "Org")]
    fn org(id: u64) -> u32 {
        let _ = id;
        LOCAL_LOADS.fetch_add(1, SeqCst)
    }

    #[test]
    fn a_cached_calls_entry_is_read_checked_and_deleted_by_its_urn() {
        let first = user(7);
        let key = LAYERED.key("user", &7).use_case("User");
        assert_eq!(key.as_str(), "urn:app:v1:user:7#User");
        assert_eq!(LAYERED.get::<String>(&key), Some(first.clone()));
        assert!(LAYERED.exists(&key));
        assert!(LAYERED.delete(&key), "the layer held it");
        assert_eq!(LAYERED.get::<String>(&key), None);
        assert!(!LAYERED.exists(&key));
        let second = user(7);
        assert_ne!(second, first, "the call loaded again");
        assert_eq!(user(7), second, "and caches again after the delete");
        assert_eq!(LOADS.load(SeqCst), 2);
    }

    /// A use case that keeps its values in process only: the direct API
    /// finds its entries by URN too (before, only entries in a remote layer
    /// were found).
    #[cached(key = "team:<id>", ttl = 60, cache = LOCAL, name = "Team")]
    fn team(id: u64) -> u64 {
        id * 10
    }

    #[test]
    fn an_in_process_only_entry_is_read_checked_and_deleted_by_its_urn() {
        assert_eq!(team(3), 30);
        let key = LOCAL.key("team", &3).use_case("Team");
        assert_eq!(LOCAL.get::<u64>(&key), Some(30));
        let e = LOCAL.get_entry::<u64>(&key).expect("the call's entry");
        assert_eq!((e.value, &*e.tags[0]), (30, "team:3"));
        assert!(LOCAL.exists(&key));
        assert_eq!(
            LOCAL.get::<String>(&key),
            None,
            "another type reads as absent"
        );
        assert!(!LOCAL.exists(&LOCAL.key("team", &4).use_case("Team")));
        assert!(LOCAL.delete(&key));
        assert_eq!(LOCAL.get::<u32>(&key), None);
        assert!(!LOCAL.exists(&key));
    }

    /// `exists` judges a remote entry as a read would: one invalidated
    /// since it was written does not exist (before, any stored bytes did).
    #[cached(key = "member:<id>", ttl = 60, cache = LAYERED, name = "Member")]
    fn member(id: u64) -> u64 {
        id
    }

    #[test]
    fn an_invalidated_remote_entry_does_not_exist() {
        member(8);
        let key = LAYERED.key("member", &8).use_case("Member");
        assert!(LAYERED.exists(&key));
        LAYERED.invalidate_entity("member", &8);
        assert!(!LAYERED.exists(&key));
        assert_eq!(LAYERED.get::<u64>(&key), None);
    }

    #[test]
    fn delete_reports_a_live_value_on_the_system_clock() {
        // The value was stored milliseconds before the delete: it is live
        // until the delete, which must say so.
        let key = LOCAL.key("session", &"abc");
        LOCAL.set(&key, 7u32, Some(Duration::from_secs(60)));
        std::thread::sleep(Duration::from_millis(3));
        assert!(LOCAL.delete(&key));
        assert!(!LOCAL.delete(&key), "gone");
        LOCAL.set(&key, 8u32, Some(Duration::from_secs(60)));
        assert_eq!(
            LOCAL.get::<u32>(&key),
            Some(8),
            "a value set after a delete is served"
        );
    }

    #[test]
    fn deleting_a_urn_drops_the_calls_in_process_copy() {
        assert_eq!(org(1), 0);
        assert_eq!(org(1), 0, "from process memory");
        LOCAL.delete(&LOCAL.key("org", &1).use_case("Org"));
        assert_eq!(org(1), 1, "the in-process copy was not served");
        assert_eq!(org(1), 1, "cached again");
        assert_eq!(org(2), 2, "other calls untouched");
    }
}

/// A delete leaves a mark of the kind a write leaves: however many keys are
/// deleted, the bounded mark map never forgets them by invalidating every
/// older entry (in the remote layers too), only by dropping older
/// in-process copies, which refill from the layers.
#[tokio::test]
async fn many_deletes_never_invalidate_the_rest_of_the_cache() {
    use cachewright::backends::MemoryBackend;
    use cachewright::LayerConfig;
    let clock = ManualClock::new(1_000_000);
    let cache = Cache::builder()
        .namespace("many-deletes")
        .clock(Clock::manual(&clock))
        .layer(LayerConfig::new(MemoryBackend::new()))
        .without_bus()
        .build();
    let kept = cache.key("kept", &1);
    cache
        .set_async(&kept, 7u32, Some(Duration::from_secs(3600)))
        .await;
    clock.advance(Duration::from_millis(1));
    // More than the mark map holds (200 000), so it trims.
    for i in 0..250_000u32 {
        if i % 1_000 == 0 {
            clock.advance(Duration::from_millis(1));
        }
        cache.delete_async(&cache.key("gone", &i)).await;
    }
    assert_eq!(
        cache.get_async::<u32>(&kept).await,
        Some(7),
        "still valid, if only below L1"
    );
}

/// `invalidate_entity` reaches the keys `cache.key` builds for that entity,
/// whatever characters the key type holds (before, the tag kept the key
/// type unescaped and missed `"user profile"`'s keys).
#[test]
fn invalidating_an_entity_reaches_its_keys_whatever_the_key_type() {
    let cache = Cache::builder().build();
    let key = cache.key("user profile", &1);
    cache.set(&key, 5u32, None);
    cache.invalidate_entity("user profile", &1);
    assert_eq!(cache.get::<u32>(&key), None);
}

/// `get_or_load` takes the attribute's policy: a stale window in which one
/// caller refreshes while the others get the stale value, a TTL for
/// absences, and tags.
mod load_options {
    use super::*;
    use cachewright::LoadOptions;

    #[test]
    fn stale_values_are_served_while_one_caller_refreshes() {
        let clock = ManualClock::new(1_000_000);
        let cache = Cache::builder().clock(Clock::manual(&clock)).build();
        let key = cache.key("price", &1);
        let opts = || LoadOptions::ttl(Duration::from_secs(10)).swr(Duration::from_secs(60));
        let v: Result<u32, ()> = cache.get_or_load(&key, opts(), || Ok(1));
        assert_eq!(v, Ok(1));
        clock.advance(Duration::from_secs(11)); // stale, inside the window
        let refreshed: Result<u32, ()> = cache.get_or_load(&key, opts(), || Ok(2));
        assert_eq!(refreshed, Ok(2), "the first caller past the TTL refreshes");
        assert_eq!(
            cache
                .get_entry::<u32>(&key)
                .unwrap()
                .freshness(cache.clock().now_ms()),
            cachewright::Freshness::Fresh
        );
        clock.advance(Duration::from_secs(75)); // past TTL and window
        let reloaded: Result<u32, ()> = cache.get_or_load(&key, opts(), || Ok(3));
        assert_eq!(reloaded, Ok(3), "an expired value is never served");
        assert_eq!(cache.stats_for("direct").unwrap().refreshes, 1);
    }

    #[test]
    fn a_failed_refresh_keeps_serving_the_stale_value() {
        let clock = ManualClock::new(1_000_000);
        let cache = Cache::builder().clock(Clock::manual(&clock)).build();
        let key = cache.key("price", &2);
        let opts = || LoadOptions::ttl(Duration::from_secs(10)).swr(Duration::from_secs(60));
        let _: Result<u32, String> = cache.get_or_load(&key, opts(), || Ok(1));
        clock.advance(Duration::from_secs(11));
        let v: Result<u32, String> = cache.get_or_load(&key, opts(), || Err("down".into()));
        assert_eq!(v, Ok(1), "the source is down: the stale value is served");
    }

    #[test]
    fn absences_get_their_own_ttl_and_tags_are_kept() {
        let clock = ManualClock::new(1_000_000);
        let cache = Cache::builder().clock(Clock::manual(&clock)).build();
        let key = cache.key("user", &404);
        let loads = AtomicU32::new(0);
        let opts = || {
            LoadOptions::ttl(Duration::from_secs(300))
                .negative(Duration::from_secs(5), Option::is_none)
                .tags([cachewright::tag("org", &9)])
        };
        let load = || -> Result<Option<String>, ()> {
            loads.fetch_add(1, SeqCst);
            Ok(None)
        };
        assert_eq!(cache.get_or_load(&key, opts(), load), Ok(None));
        assert_eq!(cache.get_or_load(&key, opts(), load), Ok(None));
        assert_eq!(loads.load(SeqCst), 1, "the absence is cached");
        let e = cache.get_entry::<Option<String>>(&key).unwrap();
        assert!(e.negative);
        assert!(e.tags.iter().any(|t| &**t == "org:9"), "{:?}", e.tags);
        clock.advance(Duration::from_secs(6));
        assert_eq!(cache.get_or_load(&key, opts(), load), Ok(None));
        assert_eq!(loads.load(SeqCst), 2, "after its 5 s, loaded again");
        cache.invalidate_tags([cachewright::tag("org", &9)]);
        assert_eq!(cache.get_or_load(&key, opts(), load), Ok(None));
        assert_eq!(loads.load(SeqCst), 3, "the tag reached it");
    }
}
