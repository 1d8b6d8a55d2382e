//! Invalidation across processes on a real Redis: the bus, watermarks in
//! Redis, and what happens when the bus drops.

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use cachewright::backends::redis::RedisBackend;
use cachewright::{cached, Cache, LayerConfig};
use support::{eventually, RedisServer};

fn cache_on(url: &str) -> Cache {
    Cache::builder()
        .namespace("inv")
        .layer(
            LayerConfig::new(RedisBackend::from_url(url).unwrap())
                .ttl_cap(Duration::from_secs(300))
                .timeout(Duration::from_millis(200))
                .breaker(2, Duration::from_millis(100)),
        )
        .build()
}

fn wait_bus(cache: &Cache) {
    eventually("the invalidation bus connects", || cache.bus_connected());
}

fn unix_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
}

// ---- process A caches, process B invalidates --------------------------------------------

static A_CACHE: OnceLock<Cache> = OnceLock::new();
static A_URL: OnceLock<String> = OnceLock::new();
static A_LOADS: AtomicU32 = AtomicU32::new(0);

/// Reads the "database" (a plain Redis key both processes see).
#[cached(key = "user:<id>", ttl = 3600, cache = A_CACHE.get().unwrap().clone(), name = "Profile")]
fn profile(id: u32) -> String {
    A_LOADS.fetch_add(1, SeqCst);
    let mut c = redis::Client::open(A_URL.get().unwrap().as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    redis::cmd("GET")
        .arg(format!("db:user:{id}"))
        .query::<Option<String>>(&mut c)
        .unwrap()
        .unwrap_or_default()
}

/// Process B (run by `an_invalidation_in_one_process_reaches_another`):
/// updates the database and invalidates the user, then reports when.
#[test]
fn invalidator() {
    let Ok(url) = std::env::var("CACHEWRIGHT_INVALIDATOR_URL") else {
        // On its own: an invalidation made before a process starts still
        // stops it from serving the old value from Redis.
        let server = RedisServer::start();
        let a = cache_on(&server.url());
        let key = a.key("user", &7);
        a.set(&key, "v1".to_string(), None);
        let b = cache_on(&server.url());
        b.invalidate_entity("user", &7);
        let late = cache_on(&server.url()); // never heard B's message
        assert_eq!(
            late.get::<String>(&key),
            None,
            "the watermark in Redis rules the stored v1 out"
        );
        return;
    };
    let b = cache_on(&url);
    let mut c = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    let _: () = redis::cmd("SET")
        .arg("db:user:1")
        .arg("v2")
        .query(&mut c)
        .unwrap();
    match std::env::var("CACHEWRIGHT_DELETE_URN") {
        // The URN of one `#[cached]` call, deleted through the direct API.
        Ok(urn) => {
            let key = b.key("account", &2).use_case(&urn);
            assert!(b.delete(&key), "Redis held the call's entry");
        }
        Err(_) => b.invalidate_entity("user", &1),
    }
    println!("INVALIDATED at={}", unix_ms());
}

#[test]
fn an_invalidation_in_one_process_reaches_another() {
    let server = RedisServer::start();
    A_URL.set(server.url()).unwrap();
    A_CACHE.set(cache_on(&server.url())).unwrap();
    let cache = A_CACHE.get().unwrap();
    wait_bus(cache);
    let mut c = server.conn();
    let _: () = redis::cmd("SET")
        .arg("db:user:1")
        .arg("v1")
        .query(&mut c)
        .unwrap();
    assert_eq!(profile(1), "v1");
    assert_eq!(profile(1), "v1");
    assert_eq!(
        cache.stats_for("Profile").unwrap().hits,
        1,
        "served from process memory"
    );

    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "invalidator", "--nocapture", "--test-threads=1"])
        .env("CACHEWRIGHT_INVALIDATOR_URL", server.url())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let at: u128 = stdout
        .lines()
        .find_map(|l| {
            l.split_once("INVALIDATED at=")
                .map(|(_, t)| t.trim().parse().unwrap())
        })
        .expect("B reports");
    eventually("A serves the new value", || profile(1) == "v2");
    let seen = unix_ms();
    println!(
        "invalidation propagated from process B to process A in about {} ms (includes polling)",
        seen.saturating_sub(at)
    );
    assert_eq!(A_LOADS.load(SeqCst), 2, "A loaded again exactly once");
}

// ---- the bus drops ------------------------------------------------------------------------

static OUT_CACHE: OnceLock<Cache> = OnceLock::new();
static OUT_DB: Mutex<&str> = Mutex::new("v1");

#[cached(key = "acct:<id>", ttl = 3600, cache = OUT_CACHE.get().unwrap().clone(), name = "Outage")]
fn account(id: u32) -> String {
    let _ = id;
    OUT_DB.lock().unwrap().to_string()
}

#[test]
fn while_the_bus_is_down_nothing_is_served_from_process_memory() {
    let mut server = RedisServer::start();
    OUT_CACHE.set(cache_on(&server.url())).unwrap();
    let cache = OUT_CACHE.get().unwrap();
    wait_bus(cache);
    assert_eq!(account(1), "v1");
    assert_eq!(account(1), "v1");
    let hits = cache.stats_for("Outage").unwrap().hits;
    assert_eq!(hits, 1);

    server.kill();
    eventually("the bus notices", || !cache.bus_connected());
    // A write elsewhere whose invalidation this process cannot hear.
    *OUT_DB.lock().unwrap() = "v2";
    assert_eq!(
        account(1),
        "v2",
        "process memory is not trusted while the bus is down"
    );
    assert_eq!(account(1), "v2");
    assert_eq!(
        cache.stats_for("Outage").unwrap().hits,
        hits,
        "no hit from process memory meanwhile"
    );
    // Invalidating with Redis down neither fails nor hangs.
    cache.invalidate_entity("acct", &1);

    server.restart();
    eventually("the bus is back", || cache.bus_connected());
    *OUT_DB.lock().unwrap() = "v3";
    let other = cache_on(&server.url());
    wait_bus(&other);
    other.invalidate_entity("acct", &1);
    eventually("the invalidation after the restart arrives", || {
        account(1) == "v3"
    });
    eventually("process memory is used again", || {
        assert_eq!(account(1), "v3", "never the value from before the outage");
        cache.stats_for("Outage").unwrap().hits > hits
    });
}

// ---- a write of a new value drops the old copies elsewhere ---------------------------------

#[test]
fn writing_a_new_value_drops_other_processes_copies() {
    let server = RedisServer::start();
    // Writes are ordered by their millisecond stamps; a shared manual clock
    // keeps the two writes in different milliseconds whatever the machine's
    // speed (two writes within one millisecond are equally fresh).
    let clock = cachewright::ManualClock::new(unix_ms() as u64);
    let on_clock = || {
        Cache::builder()
            .namespace("inv")
            .clock(cachewright::Clock::manual(&clock))
            .layer(LayerConfig::new(
                RedisBackend::from_url(&server.url()).unwrap(),
            ))
            .build()
    };
    let a = on_clock();
    let b = on_clock();
    wait_bus(&a);
    wait_bus(&b);
    let key = a.key("config", &"flags");
    let v: Result<String, ()> = a.get_or_load(&key, None, || Ok("old".into()));
    assert_eq!(v.unwrap(), "old");
    assert_eq!(
        a.get::<String>(&key).as_deref(),
        Some("old"),
        "in A's memory"
    );
    clock.advance(Duration::from_millis(1));
    b.set(&key, "new".to_string(), None);
    eventually("A drops its copy and reads the new value", || {
        a.get::<String>(&key).as_deref() == Some("new")
    });
    // Each wrote once; each applied only the other's announcement.
    assert_eq!(a.snapshot().bus_messages, 1);
    assert_eq!(b.snapshot().bus_messages, 1, "not its own");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tags_invalidate_every_layer_and_process_async() {
    let server = RedisServer::start();
    let a = cache_on(&server.url());
    let b = cache_on(&server.url());
    wait_bus(&a);
    wait_bus(&b);
    let k1 = a.key("order", &1);
    let k2 = a.key("order", &2);
    a.set_async(&k1, 1u32, None).await;
    a.set_async(&k2, 2u32, None).await;
    assert_eq!(
        b.get_async::<u32>(&k1).await,
        Some(1),
        "B holds it now, in memory too"
    );
    b.invalidate_tags_async([cachewright::tag("order", &1)])
        .await;
    assert_eq!(b.get_async::<u32>(&k1).await, None, "gone for B at once");
    let a2 = a.clone();
    let k1b = k1.clone();
    tokio::task::spawn_blocking(move || eventually("gone for A", || a2.get::<u32>(&k1b).is_none()))
        .await
        .unwrap();
    assert_eq!(
        a.get_async::<u32>(&k2).await,
        Some(2),
        "another tag is untouched"
    );
    // Clearing the namespace clears every process's memory and Redis.
    a.clear_async().await;
    let b2 = b.clone();
    let k2b = k2.clone();
    tokio::task::spawn_blocking(move || eventually("B cleared", || b2.get::<u32>(&k2b).is_none()))
        .await
        .unwrap();
}

// ---- process B deletes one #[cached] call's entry by its URN ------------------------------

static D_CACHE: OnceLock<Cache> = OnceLock::new();
static D_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "account:<id>", ttl = 3600, cache = D_CACHE.get().unwrap().clone(), name = "Account")]
fn balance(id: u32) -> u32 {
    D_LOADS.fetch_add(1, SeqCst)
}

#[test]
fn a_delete_in_one_process_makes_another_load_again() {
    let server = RedisServer::start();
    D_CACHE.set(cache_on(&server.url())).unwrap();
    let cache = D_CACHE.get().unwrap();
    wait_bus(cache);
    assert_eq!(balance(2), 0);
    assert_eq!(balance(2), 0, "from process memory");
    assert_eq!(D_LOADS.load(SeqCst), 1);

    support::child::run_test(
        "invalidator",
        &[
            ("CACHEWRIGHT_INVALIDATOR_URL", &server.url()),
            ("CACHEWRIGHT_DELETE_URN", "Account"),
        ],
    );
    eventually("A loads the deleted call again", || balance(2) == 1);
    assert_eq!(D_LOADS.load(SeqCst), 2, "A loaded again exactly once");
}

// ---- watermarks only move forward -----------------------------------------------------------

/// A later invalidation with a smaller buffer (or from a host whose clock is
/// behind) never lowers a watermark in Redis: it is raised by a
/// compare-and-raise script, not overwritten (with `SET`, the second write
/// lowered it and entries in the first's buffer were served again).
#[test]
fn a_watermark_in_redis_is_never_lowered() {
    let server = RedisServer::start();
    let a = cache_on(&server.url());
    let b = cache_on(&server.url());
    a.invalidate_tags_buffered(["stock:9"], Duration::from_secs(30));
    let mut c = server.conn();
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*~tag:stock:9")
        .query(&mut c)
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let read = |c: &mut redis::Connection| -> u64 {
        redis::cmd("GET")
            .arg(&keys[0])
            .query::<String>(c)
            .unwrap()
            .parse()
            .unwrap()
    };
    let high = read(&mut c);
    assert!(
        high as u128 > (unix_ms() + 20_000) * 1_000,
        "30 s ahead, in microseconds"
    );
    b.invalidate_tags(["stock:9"]);
    assert_eq!(
        read(&mut c),
        high,
        "the later, lower invalidation did not lower it"
    );
    let ttl: i64 = redis::cmd("PTTL").arg(&keys[0]).query(&mut c).unwrap();
    assert!(ttl > 300_000, "it outlives the entries it covers: {ttl} ms");
}

/// A bus the server refuses (an ACL without pub/sub) is visible: counted,
/// with the server's reason, and in-process entries are not trusted.
#[test]
fn a_bus_that_cannot_connect_is_reported() {
    let server = RedisServer::start();
    let mut c = server.conn();
    redis::cmd("ACL")
        .arg("SETUSER")
        .arg("default")
        .arg("-@pubsub")
        .query::<()>(&mut c)
        .unwrap();
    let cache = cache_on(&server.url());
    eventually("the failed subscriptions are counted", || {
        cache.bus_stats().connect_failures >= 2
    });
    let s = cache.bus_stats();
    assert!(s.configured && !s.connected, "{s:?}");
    assert_eq!(s.last_error.as_deref(), Some("NOPERM"), "{s:?}");
    assert!(!cache.bus_connected());
}

// ---- applications side by side on one Redis --------------------------------------------------

/// Two applications (another namespace, or the same namespace at another
/// version) on one Redis never see each other's entries, tags or bus
/// messages.
#[test]
fn namespaces_and_versions_never_meet() {
    let server = RedisServer::start();
    let build = |ns: &str, version: &str| {
        Cache::builder()
            .namespace(ns)
            .version(version)
            .layer(LayerConfig::new(
                RedisBackend::from_url(&server.url()).unwrap(),
            ))
            .build()
    };
    let shop = build("shop", "v1");
    let blog = build("blog", "v1");
    let shop2 = build("shop", "v2");
    for c in [&shop, &blog, &shop2] {
        wait_bus(c);
    }
    let write = |c: &Cache, v: u32| {
        let key = c.key("user", &1);
        c.set(&key, v, None);
        key
    };
    let (ks, kb, k2) = (write(&shop, 1), write(&blog, 2), write(&shop2, 3));
    let fresh = |c: &Cache| {
        Cache::builder()
            .namespace(c.namespace())
            .version(c.version())
            .layer(LayerConfig::new(
                RedisBackend::from_url(&server.url()).unwrap(),
            ))
            .build()
    };
    assert_eq!(fresh(&shop).get::<u32>(&ks), Some(1));
    assert_eq!(fresh(&blog).get::<u32>(&kb), Some(2));
    assert_eq!(fresh(&shop2).get::<u32>(&k2), Some(3), "each reads its own");
    shop.invalidate_entity("user", &1);
    shop.delete(&ks);
    shop.clear();
    // A message of each application's own, sent after shop's: once it has
    // arrived, anything shop sent before it would have too (Redis delivers
    // in the order it executes publishes).
    let (blog_peer, shop2_peer) = (fresh(&blog), fresh(&shop2));
    wait_bus(&blog_peer);
    wait_bus(&shop2_peer);
    blog_peer.invalidate_tags(["sentinel"]);
    shop2_peer.invalidate_tags(["sentinel"]);
    eventually("the sentinels arrive", || {
        [&blog, &shop2]
            .iter()
            .all(|c| c.snapshot().bus_messages >= 1)
    });
    assert_eq!(
        blog.get::<u32>(&kb),
        Some(2),
        "blog's entry survives shop's invalidations"
    );
    assert_eq!(shop2.get::<u32>(&k2), Some(3), "and so does shop v2's");
    assert_eq!(fresh(&blog).get::<u32>(&kb), Some(2), "in Redis too");
    for c in [&blog, &shop2] {
        assert_eq!(
            c.snapshot().bus_messages,
            1,
            "only its own sentinel: no message of another namespace or version"
        );
    }
}
