//! L1 + Redis (+ file) against real `redis-server` processes started by the
//! tests: sharing across processes, faults (down at startup, killed mid-run,
//! slow, garbage), TTL caps, dedupe, codecs, batch reads.

mod support;

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::OnceLock;
use std::time::Duration;

use cachewright::backends::file::FileBackend;
use cachewright::backends::redis::RedisBackend;
use cachewright::{cached, Cache, Clock, Codec, LayerConfig, ManualClock};
use support::{eventually, RedisServer};

fn redis_layer(url: &str) -> LayerConfig {
    LayerConfig::new(RedisBackend::from_url(url).expect("valid url"))
        .ttl_cap(Duration::from_secs(300))
        .timeout(Duration::from_millis(200))
}

fn redis_cache(url: &str, version: &str) -> Cache {
    Cache::builder()
        .namespace("t")
        .version(version)
        .layer(redis_layer(url))
        .build()
}

/// Waits until the cache's invalidation bus is subscribed: until then its
/// in-process layer is (rightly) not used.
fn wait_bus(cache: &Cache) {
    eventually("the invalidation bus connects", || cache.bus_connected());
}

fn raw_get(server: &RedisServer, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET")
        .arg(key)
        .query(&mut server.conn())
        .unwrap()
}

// ---- two processes, one Redis ------------------------------------------------------

static PEER_CACHE: OnceLock<Cache> = OnceLock::new();
static PEER_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "profile:<id>", ttl = 300, cache = PEER_CACHE.get().expect("set first").clone(), name = "PeerProfile")]
fn peer_profile(id: u64) -> Result<String, String> {
    PEER_LOADS.fetch_add(1, SeqCst);
    Ok(format!("profile {id} loaded by pid {}", std::process::id()))
}

/// Run by `two_processes_share_one_redis` in child processes (with
/// `CACHEWRIGHT_PEER_URL` set); on its own, two caches with separate in-process
/// layers share a value through one Redis.
#[test]
fn peer() {
    if let Ok(url) = std::env::var("CACHEWRIGHT_PEER_URL") {
        PEER_CACHE.set(redis_cache(&url, "peer")).unwrap();
        let v = peer_profile(7).unwrap();
        println!("PEER loads={} value={v}", PEER_LOADS.load(SeqCst));
        return;
    }
    let server = RedisServer::start();
    let a = redis_cache(&server.url(), "peer-inproc");
    let b = redis_cache(&server.url(), "peer-inproc");
    let key = a.key("user", &1);
    a.set(&key, "ada".to_string(), Some(Duration::from_secs(60)));
    assert_eq!(b.get::<String>(&key).as_deref(), Some("ada"));
    assert_eq!(b.stats_for("direct").unwrap().hits, 1);
}

fn run_peer(url: &str) -> (u32, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "peer", "--nocapture", "--test-threads=1"])
        .env("CACHEWRIGHT_PEER_URL", url)
        .output()
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "peer failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The harness may print `test peer ... ` on the same line first.
    let line = stdout
        .lines()
        .find_map(|l| l.find("PEER ").map(|i| &l[i..]))
        .unwrap_or_else(|| panic!("peer reports: {stdout}"));
    let loads = line["PEER loads=".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let value = line.split_once("value=").unwrap().1.to_string();
    (loads, value)
}

#[test]
fn two_processes_share_one_redis() {
    let server = RedisServer::start();
    let (a_loads, a_value) = run_peer(&server.url());
    let (b_loads, b_value) = run_peer(&server.url());
    assert_eq!(a_loads, 1, "process A loaded");
    assert_eq!(b_loads, 0, "process B's loader did not run");
    assert_eq!(b_value, a_value, "B got A's value, through Redis");
}

// ---- faults ---------------------------------------------------------------------------

static KILL_CACHE: OnceLock<Cache> = OnceLock::new();
static KILL_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "k:<id>", ttl = 300, layers = remote, cache = KILL_CACHE.get().unwrap().clone(), name = "Kill")]
async fn through_redis(id: u32) -> Result<u32, String> {
    KILL_LOADS.fetch_add(1, SeqCst);
    Ok(id * 2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_fails_no_call_and_comes_back() {
    let mut server = RedisServer::start();
    KILL_CACHE
        .set(
            Cache::builder()
                .namespace("t")
                .version("kill")
                .layer(redis_layer(&server.url()).breaker(3, Duration::from_millis(200)))
                .build(),
        )
        .unwrap();
    let cache = KILL_CACHE.get().unwrap();
    let mut failed = 0;
    let mut hits_at_restart = 0;
    for i in 0..10_000u32 {
        if i == 3_000 {
            server.kill();
        }
        if i == 6_000 {
            server.restart();
            hits_at_restart = cache.layer_stats()[0].hits;
        }
        match through_redis(i % 100).await {
            Ok(v) if v == (i % 100) * 2 => {}
            _ => failed += 1,
        }
    }
    assert_eq!(failed, 0, "no call failed");
    let layer = &cache.layer_stats()[0];
    assert!(layer.errors > 0, "Redis errors were counted: {layer:?}");
    assert!(
        layer.skipped > 0,
        "the breaker skipped the dead Redis: {layer:?}"
    );
    let loads = KILL_LOADS.load(SeqCst);
    assert!(
        loads > 100,
        "the loader served while Redis was down ({loads} loads)"
    );
    assert_eq!(cache.stats_for("Kill").unwrap().loads, u64::from(loads));
    // After the restart Redis serves hits again.
    eventually("Redis hits resume after the restart", || {
        let _ = futures_lite_block(through_redis(1));
        cache.layer_stats()[0].hits > hits_at_restart
    });
}

/// Runs a future to completion from inside `eventually`'s closure.
fn futures_lite_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(f))
}

static DOWN_CACHE: OnceLock<Cache> = OnceLock::new();

#[cached(key = "d:<id>", ttl = 300, layers = remote, cache = DOWN_CACHE.get().unwrap().clone(), name = "Down")]
fn down_at_start(id: u32) -> u32 {
    id + 1
}

#[test]
fn redis_down_at_startup_then_up() {
    let mut server = RedisServer::reserved();
    DOWN_CACHE
        .set(
            Cache::builder()
                .namespace("t")
                .version("down")
                .layer(redis_layer(&server.url()).breaker(2, Duration::from_millis(100)))
                .build(),
        )
        .unwrap();
    let cache = DOWN_CACHE.get().unwrap();
    for i in 0..20 {
        assert_eq!(down_at_start(i), i + 1);
    }
    assert!(cache.layer_stats()[0].errors > 0);
    server.start_now();
    eventually("Redis is used once it is up", || {
        down_at_start(1);
        cache.layer_stats()[0].hits > 0
    });
}

static GARBAGE_CACHE: OnceLock<Cache> = OnceLock::new();
static GARBAGE_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "item:<id>", ttl = 300, layers = remote, cache = GARBAGE_CACHE.get().unwrap().clone(), name = "Garbage")]
fn item(id: u32) -> Vec<u32> {
    GARBAGE_LOADS.fetch_add(1, SeqCst);
    vec![id; 3]
}

#[test]
fn garbage_under_a_live_key_is_a_miss_then_overwritten() {
    let server = RedisServer::start();
    GARBAGE_CACHE
        .set(redis_cache(&server.url(), "garbage"))
        .unwrap();
    let urn = "urn:t:garbage:item:5#Garbage";
    assert_eq!(item(5), vec![5, 5, 5]);
    assert!(
        raw_get(&server, urn)
            .unwrap()
            .starts_with(b"cachewright:4j"),
        "keys are the URNs"
    );
    for junk in [&b"garbage"[..], b"cachewright:4j c=123", b"\xff\xfe\x00"] {
        let _: () = redis::cmd("SET")
            .arg(urn)
            .arg(junk)
            .query(&mut server.conn())
            .unwrap();
        let before = GARBAGE_LOADS.load(SeqCst);
        assert_eq!(item(5), vec![5, 5, 5], "garbage is never returned");
        assert_eq!(
            GARBAGE_LOADS.load(SeqCst),
            before + 1,
            "garbage reads as a miss"
        );
        assert!(
            raw_get(&server, urn)
                .unwrap()
                .starts_with(b"cachewright:4j"),
            "and is overwritten"
        );
    }
    // A value of another type under the key is garbage too.
    let other = GARBAGE_CACHE.get().unwrap();
    let k = other.key("item", &5).use_case("Garbage");
    other.set(&k, "not a Vec<u32>".to_string(), None);
    assert_eq!(item(5), vec![5, 5, 5]);
    assert_eq!(other.layer_stats()[0].decode_errors, 4);
}

static SLOW_CACHE: OnceLock<Cache> = OnceLock::new();

#[cached(key = "s:<id>", ttl = 300, layers = remote, cache = SLOW_CACHE.get().unwrap().clone(), name = "Slow")]
async fn slow_redis(id: u32) -> Result<u32, String> {
    Ok(id)
}

#[tokio::test]
async fn a_slow_redis_costs_one_timeout_then_is_skipped() {
    let server = RedisServer::start();
    SLOW_CACHE
        .set(
            Cache::builder()
                .namespace("t")
                .version("slow")
                .layer(
                    redis_layer(&server.url())
                        .timeout(Duration::from_millis(100))
                        .breaker(2, Duration::from_secs(60)),
                )
                .build(),
        )
        .unwrap();
    let cache = SLOW_CACHE.get().unwrap();
    assert_eq!(slow_redis(0).await, Ok(0));
    // Every client but this one waits 3 s for an answer.
    let _: () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(3_000)
        .arg("ALL")
        .query(&mut server.conn())
        .unwrap();
    let start = std::time::Instant::now();
    assert_eq!(slow_redis(1).await, Ok(1));
    let first = start.elapsed();
    let l = &cache.layer_stats()[0];
    assert_eq!(
        (l.timeouts, l.errors),
        (1, 1),
        "the read timed out; the write was not tried: {l:?}"
    );
    assert_eq!(slow_redis(2).await, Ok(2));
    assert_eq!(slow_redis(3).await, Ok(3));
    let l = &cache.layer_stats()[0];
    assert!(
        l.skipped >= 1,
        "after two timeouts the breaker skips Redis: {l:?}"
    );
    println!("first call against a paused Redis took {first:?} (layer timeout 100 ms)");
}

#[test]
fn ttls_in_redis_are_capped_and_keys_readable() {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .namespace("shop")
        .version("v9")
        .layer(
            LayerConfig::new(RedisBackend::from_url(&server.url()).unwrap())
                .ttl_cap(Duration::from_secs(300)),
        )
        .build();
    let long = cache.key("user", &"a b");
    let short = cache.key("user", &"c");
    cache.set(&long, 1u8, Some(Duration::from_secs(3_600)));
    cache.set(&short, 2u8, Some(Duration::from_secs(60)));
    let pttl = |k: &str| -> i64 { redis::cmd("PTTL").arg(k).query(&mut server.conn()).unwrap() };
    let p = pttl("urn:shop:v9:user:a%20b");
    assert!(p > 0 && p <= 300_000, "capped at 300 s: {p}");
    let p = pttl("urn:shop:v9:user:c");
    assert!(p > 0 && p <= 60_000, "its own 60 s: {p}");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("urn:shop:*")
        .query(&mut server.conn())
        .unwrap();
    assert!(
        keys.contains(&"urn:shop:v9:user:a%20b".to_string()),
        "{keys:?}"
    );
    let text = String::from_utf8(raw_get(&server, "urn:shop:v9:user:c").unwrap()).unwrap();
    assert!(
        text.starts_with("cachewright:4j ") && text.ends_with("\n6:user:c\n2"),
        "{text}"
    );
}

/// A cap and TTLs as large as `Duration::MAX`: Redis takes the longest
/// expiry it can hold, and the layer reports no error.
#[test]
fn ttls_as_large_as_duration_max_are_stored_not_refused() {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .namespace("huge")
        .layer(
            LayerConfig::new(RedisBackend::from_url(&server.url()).unwrap())
                .ttl_cap(Duration::MAX)
                .timeout(Duration::MAX),
        )
        .without_bus()
        .build();
    cache.set(&cache.key("k", &1), 1u8, Some(Duration::MAX));
    cache.set(&cache.key("k", &2), 2u8, None);
    let pttl = |k: &str| -> i64 { redis::cmd("PTTL").arg(k).query(&mut server.conn()).unwrap() };
    for k in ["urn:huge:v1:k:1", "urn:huge:v1:k:2"] {
        assert!(pttl(k) > 86_400_000, "{k} kept for long: {}", pttl(k));
    }
    let l = &cache.layer_stats()[0];
    assert_eq!((l.writes, l.errors), (2, 0), "{l:?}");
}

#[test]
fn url_selects_the_database_and_a_password_is_used() {
    let server = RedisServer::start();
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("requirepass")
        .arg("s3cret")
        .query(&mut server.conn())
        .unwrap();
    let url = server.url().replace("redis://", "redis://:s3cret@") + "3";
    let cache = Cache::builder()
        .namespace("db")
        .layer(LayerConfig::new(RedisBackend::from_url(&url).unwrap()))
        .build();
    let k = cache.key("x", &1);
    cache.set(&k, 1u8, None);
    let mut c = redis::Client::open(url.as_str())
        .unwrap()
        .get_connection()
        .unwrap();
    assert!(
        redis::cmd("EXISTS")
            .arg(k.as_str())
            .query::<bool>(&mut c)
            .unwrap(),
        "in db 3"
    );
    let _: () = redis::cmd("SELECT").arg(0).query(&mut c).unwrap();
    assert!(
        !redis::cmd("EXISTS")
            .arg(k.as_str())
            .query::<bool>(&mut c)
            .unwrap(),
        "not in db 0"
    );
    // A wrong password: every call still works, errors are counted.
    let wrong = Cache::builder()
        .layer(LayerConfig::new(
            RedisBackend::from_url(&server.url().replace("redis://", "redis://:nope@")).unwrap(),
        ))
        .build();
    let k2 = wrong.key("x", &2);
    let v: Result<u8, ()> = wrong.get_or_load(&k2, None, || Ok(7));
    assert_eq!(v, Ok(7));
    assert!(wrong.layer_stats()[0].errors > 0);
}

// ---- layering ---------------------------------------------------------------------------

static CAP_CLOCK: OnceLock<ManualClock> = OnceLock::new();
static CAP_CACHE: OnceLock<Cache> = OnceLock::new();
static CAP_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "c:<id>", ttl = 300, cache = CAP_CACHE.get().unwrap().clone(), name = "Capped")]
fn capped(id: u32) -> u32 {
    CAP_LOADS.fetch_add(1, SeqCst);
    id
}

#[test]
fn l1_ttl_cap_falls_back_to_redis_which_refills_l1() {
    let server = RedisServer::start();
    let clock = CAP_CLOCK.get_or_init(|| ManualClock::new(1_700_000_000_000));
    CAP_CACHE
        .set(
            Cache::builder()
                .namespace("t")
                .version("cap")
                .clock(Clock::manual(clock))
                .local_ttl(Duration::from_secs(10))
                .layer(redis_layer(&server.url()))
                .build(),
        )
        .unwrap();
    let cache = CAP_CACHE.get().unwrap();
    wait_bus(cache);
    capped(1);
    capped(1);
    clock.advance(Duration::from_secs(11)); // past L1's cap, well inside the 300 s TTL
    capped(1);
    capped(1);
    let s = cache.stats_for("Capped").unwrap();
    assert_eq!(CAP_LOADS.load(SeqCst), 1, "one load in all");
    assert_eq!((s.hits, s.misses, s.remote_hits), (2, 2, 1), "{s:?}");
}

static LOCAL_ONLY_CACHE: OnceLock<Cache> = OnceLock::new();

#[cached(key = "lo:<id>", ttl = 60, layers = local, cache = LOCAL_ONLY_CACHE.get().unwrap().clone())]
fn local_only(id: u32) -> u32 {
    id
}

#[cached(key = "ro:<id>", ttl = 60, layers = remote, cache = LOCAL_ONLY_CACHE.get().unwrap().clone(), name = "RemoteOnly")]
fn remote_only(id: u32) -> u32 {
    id
}

#[test]
fn per_use_case_layer_choice() {
    let server = RedisServer::start();
    LOCAL_ONLY_CACHE
        .set(redis_cache(&server.url(), "choice"))
        .unwrap();
    let cache = LOCAL_ONLY_CACHE.get().unwrap();
    local_only(1);
    local_only(1);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut server.conn())
        .unwrap();
    assert!(
        keys.is_empty(),
        "a local use case never writes Redis: {keys:?}"
    );
    remote_only(1);
    remote_only(1);
    remote_only(1);
    let s = cache.stats_for("RemoteOnly").unwrap();
    assert_eq!(
        (s.hits, s.remote_hits, s.loads),
        (0, 2, 1),
        "a remote use case keeps nothing in process: {s:?}"
    );
}

#[test]
fn file_tier_below_redis_fills_the_layers_above() {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let chain = || {
        Cache::builder()
            .namespace("t")
            .version("chain")
            .local_ttl(Duration::from_secs(30))
            .layer(redis_layer(&server.url()))
            .layer(
                LayerConfig::new(FileBackend::new(dir.path()).unwrap())
                    .ttl_cap(Duration::from_secs(3_600)),
            )
            .build()
    };
    let a = chain();
    let key = a.key("config", &"daily");
    a.set(&key, vec![1u8, 2, 3], Some(Duration::from_secs(600)));
    let _: () = redis::cmd("DEL")
        .arg(key.as_str())
        .query(&mut server.conn())
        .unwrap();
    let b = chain(); // another process on the host: empty L1
    assert_eq!(
        b.get::<Vec<u8>>(&key),
        Some(vec![1, 2, 3]),
        "found in the file tier"
    );
    assert!(
        raw_get(&server, key.as_str()).is_some(),
        "and written back to Redis"
    );
    let files = &b.layer_stats()[1];
    assert_eq!(files.hits, 1);
}

#[test]
fn dedupe_writes_renews_instead_of_rewriting() {
    let server = RedisServer::start();
    let clock = ManualClock::new(1_700_000_000_000);
    let cache = Cache::builder()
        .clock(Clock::manual(&clock))
        .layer(redis_layer(&server.url()).dedupe_writes(true))
        .build();
    let k = cache.key("flags", &"all");
    cache.set(&k, vec!["a".to_string()], Some(Duration::from_secs(100)));
    let first = raw_get(&server, k.as_str()).unwrap();
    clock.advance(Duration::from_secs(50));
    cache.set(&k, vec!["a".to_string()], Some(Duration::from_secs(100)));
    let second = raw_get(&server, k.as_str()).unwrap();
    let l = &cache.layer_stats()[0];
    assert_eq!((l.writes, l.renewals), (1, 1), "{l:?}");
    let split = |b: &[u8]| {
        let nl = b.iter().position(|&c| c == b'\n').unwrap() + 1;
        (b[..nl].to_vec(), b[nl..].to_vec())
    };
    let ((h1, b1), (h2, b2)) = (split(&first), split(&second));
    assert_ne!(h1, h2, "header (times) renewed");
    assert_eq!(b1, b2, "body kept");
    let pttl: i64 = redis::cmd("PTTL")
        .arg(k.as_str())
        .query(&mut server.conn())
        .unwrap();
    assert!(pttl > 0, "TTL renewed");
    cache.set(&k, vec!["b".to_string()], Some(Duration::from_secs(100)));
    assert_eq!(cache.layer_stats()[0].writes, 2, "a new value is written");
}

#[test]
fn messagepack_codec_round_trips() {
    let server = RedisServer::start();
    let cache = Cache::builder()
        .codec(Codec::MessagePack)
        .layer(redis_layer(&server.url()))
        .build();
    let k = cache.key("m", &1);
    cache.set(&k, (1u32, "x".to_string()), None);
    assert!(raw_get(&server, k.as_str())
        .unwrap()
        .starts_with(b"cachewright:4m"));
    let other = Cache::builder()
        .codec(Codec::MessagePack)
        .layer(redis_layer(&server.url()))
        .build();
    assert_eq!(other.get::<(u32, String)>(&k), Some((1, "x".to_string())));
    let json = Cache::builder().layer(redis_layer(&server.url())).build();
    assert_eq!(
        json.get::<(u32, String)>(&k),
        None,
        "a JSON reader sees another codec as a miss"
    );
}

#[tokio::test]
async fn batch_reads_use_one_round_trip_per_layer() {
    let server = RedisServer::start();
    let writer = redis_cache(&server.url(), "batch");
    let keys: Vec<_> = (0..4).map(|i| writer.key("b", &i)).collect();
    for (i, k) in keys.iter().enumerate().take(3) {
        writer.set_async(k, i as u32, None).await;
    }
    let reader = redis_cache(&server.url(), "batch");
    wait_bus(&reader);
    let got = reader.get_many_async::<u32>(&keys).await;
    assert_eq!(got, vec![Some(0), Some(1), Some(2), None]);
    let l = &reader.layer_stats()[0];
    assert_eq!((l.hits, l.misses), (3, 1));
    assert_eq!(
        reader.get_many::<u32>(&keys[..3]),
        vec![Some(0), Some(1), Some(2)],
        "now from process memory"
    );
}

static COALESCED_CACHE: OnceLock<Cache> = OnceLock::new();
static COALESCED_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "c:<id>", ttl = 300, layers = remote, cache = COALESCED_CACHE.get().expect("set first").clone(), name = "Coalesced")]
async fn coalesced(id: u32) -> Result<String, String> {
    COALESCED_LOADS.fetch_add(1, SeqCst);
    Ok(format!("value of {id}"))
}

/// Calls of `command` (lower case) since the server started.
fn command_calls(server: &RedisServer, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut server.conn())
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:")))
        .and_then(|rest| rest.split(',').find_map(|kv| kv.strip_prefix("calls=")))
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_reads_are_coalesced_into_mget_each_task_its_own_value() {
    let server = RedisServer::start();
    COALESCED_CACHE
        .set(redis_cache(&server.url(), "coalesce"))
        .unwrap();
    wait_bus(COALESCED_CACHE.get().unwrap());
    for id in 0..256 {
        coalesced(id).await.unwrap(); // loaded and stored
        coalesced(id).await.unwrap(); // a hit: its tags' watermarks are read once
    }
    let (gets, mgets) = (
        command_calls(&server, "get"),
        command_calls(&server, "mget"),
    );
    let tasks: Vec<_> = (0..64u32)
        .map(|t| {
            tokio::spawn(async move {
                for i in 0..4 {
                    let id = 4 * t + i;
                    assert_eq!(coalesced(id).await.unwrap(), format!("value of {id}"));
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        COALESCED_LOADS.load(SeqCst),
        256,
        "every read was a Redis hit"
    );
    let gets = command_calls(&server, "get") - gets;
    let mgets = command_calls(&server, "mget") - mgets;
    assert!(
        mgets > 0 && gets + mgets < 256,
        "256 reads by 64 tasks went out as {gets} GETs and {mgets} MGETs"
    );
    let l = &COALESCED_CACHE.get().unwrap().layer_stats()[0];
    assert_eq!((l.hits, l.errors, l.decode_errors), (512, 0, 0));
}

#[tokio::test]
async fn clear_removes_the_namespace_from_redis_only() {
    let server = RedisServer::start();
    let a = redis_cache(&server.url(), "v1");
    let b = redis_cache(&server.url(), "v2");
    a.set_async(&a.key("x", &1), 1u8, None).await;
    b.set_async(&b.key("x", &1), 1u8, None).await;
    a.clear_async().await;
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*")
        .query(&mut server.conn())
        .unwrap();
    assert_eq!(keys, vec!["urn:t:v2:x:1".to_string()]);
}

#[test]
fn set_if_not_exists_is_a_lock_across_processes() {
    let server = RedisServer::start();
    let a = redis_cache(&server.url(), "lock");
    let b = redis_cache(&server.url(), "lock");
    let k = a.key("lock", &"job");
    assert!(a.set_if_not_exists(&k, "a".to_string(), Some(Duration::from_secs(30))));
    assert!(
        !b.set_if_not_exists(&k, "b".to_string(), Some(Duration::from_secs(30))),
        "b's L1 is empty, Redis decides"
    );
    assert!(b.delete(&k));
    assert!(b.set_if_not_exists(&k, "b".to_string(), Some(Duration::from_secs(30))));
}
