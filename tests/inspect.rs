//! Inspection: what each layer holds of a use case or of the namespace,
//! with remaining TTLs, states and tags; Redis walked with SCAN on a real
//! redis-server, the in-process layer listed (direct API) or counted
//! (`#[cached]`).

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use cachewright::backends::redis::RedisBackend;
use cachewright::{cached, Cache, Inspect, KeyInfo, LayerConfig};
use support::{eventually, RedisServer};

static CACHE: OnceLock<Cache> = OnceLock::new();

#[cached(key = "user:<id>", ttl = 300, tags = ["org:<org>"], cache = CACHE.get().expect("set first").clone(), name = "InspUser")]
fn user(id: u32, org: u32) -> String {
    format!("user {id} of {org}")
}

#[cached(key = "page:<n>", ttl = 60, cache = CACHE.get().expect("set first").clone(), name = "InspPage")]
fn page(n: u32) -> Option<String> {
    (n < 100).then(|| format!("page {n}"))
}

fn find<'a>(keys: &'a [KeyInfo], key: &str) -> Option<&'a KeyInfo> {
    keys.iter().find(|k| k.key == key)
}

#[test]
fn every_layer_lists_what_it_holds_with_ttls_states_and_tags() {
    let server = RedisServer::start();
    let cache = CACHE.get_or_init(|| {
        Cache::builder()
            .namespace("insp")
            .layer(
                LayerConfig::new(RedisBackend::from_url(&server.url()).unwrap())
                    .timeout(Duration::from_secs(1)),
            )
            .build()
    });
    eventually("the bus connects", || cache.bus_connected());
    user(1, 7);
    user(2, 7);
    page(3);
    let direct = cache.key("report", &9);
    cache.set(&direct, 42u32, Some(Duration::from_secs(30)));
    cache.invalidate_tags([cachewright::tag("org", &"none")]); // a watermark key in Redis

    let all = cache.inspect(&Inspect::all());
    assert_eq!(all.layers.len(), 2);
    let (local, redis) = (&all.layers[0], &all.layers[1]);
    assert_eq!(
        (local.layer.as_str(), redis.layer.as_str()),
        ("local", "redis")
    );
    // In process: the direct API's entry by key, the cached calls counted.
    let d = find(&local.keys, "urn:insp:v1:report:9").expect("the direct entry");
    assert_eq!((d.use_case.as_str(), d.state), ("direct", "fresh"));
    assert_eq!(d.tags, ["report:9"]);
    assert!(d.remaining_ms.unwrap() <= 30_000);
    assert_eq!(local.unlisted, 3, "three cached calls held in process");
    // In Redis: every entry with its tags; no watermark key among them.
    assert!(redis.error.is_none(), "{:?}", redis.error);
    let u = find(&redis.keys, "urn:insp:v1:user:1?org=7#InspUser")
        .unwrap_or_else(|| panic!("user 1 in Redis: {:?}", redis.keys));
    assert_eq!(u.tags, ["user:1", "org:7"]);
    assert_eq!(
        (u.state, u.negative, u.invalidated),
        ("fresh", false, false)
    );
    let ttl = u.remaining_ms.expect("Redis keys expire");
    assert!(ttl > 0 && ttl <= 300_000, "{ttl}");
    assert!(find(&redis.keys, "urn:insp:v1:page:3#InspPage").is_some());
    assert!(
        find(&redis.keys, "urn:insp:v1:report:9").is_some(),
        "direct writes reach Redis"
    );
    assert!(
        redis.keys.iter().all(|k| !k.key.contains("~tag:")),
        "watermarks are not entries: {:?}",
        redis.keys
    );

    // One use case only.
    let one = cache.inspect(&Inspect::use_case("InspUser"));
    let keys: Vec<&str> = one.layers[1].keys.iter().map(|k| k.key.as_str()).collect();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys.iter().all(|k| k.ends_with("#InspUser")));
    assert_eq!(one.layers[0].unlisted, 2);
    assert!(one.layers[0].keys.is_empty(), "no direct entries asked for");

    // An entity invalidated: still in Redis until it expires or is
    // overwritten, and shown as covered by the invalidation.
    cache.invalidate_entity("user", &1);
    let after = cache.inspect(&Inspect::use_case("InspUser"));
    let u = find(&after.layers[1].keys, "urn:insp:v1:user:1?org=7#InspUser")
        .expect("an entity invalidation writes a watermark; the entry stays");
    assert!(u.invalidated, "{u:?}");
    let u2 = find(&after.layers[1].keys, "urn:insp:v1:user:2?org=7#InspUser").unwrap();
    assert!(!u2.invalidated);
    // The limit holds per layer, and counts entries only: many more
    // watermarks than the limit take none of its room.
    for i in 0..50 {
        cache.invalidate_tags([cachewright::tag("batch", &i)]);
    }
    let few = cache.inspect(&Inspect::all().limit(3));
    assert_eq!(few.layers[1].keys.len(), 3, "{:?}", few.layers[1]);
    // The blocking call lists a large keyspace within its own deadline.
    for i in 0..1500u32 {
        cache.set(&cache.key("bulk", &i), i, Some(Duration::from_secs(60)));
    }
    let many = cache.inspect(&Inspect::all());
    assert!(many.layers[1].error.is_none(), "{:?}", many.layers[1].error);
    assert_eq!(many.layers[1].keys.len(), 1000, "the default limit");
    assert!(many.layers[1].keys.iter().all(|k| k.state != "unknown"));
}
