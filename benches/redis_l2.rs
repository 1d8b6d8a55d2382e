//! L2 (Redis) costs through cachewright against the raw `redis` crate on the same
//! server, in one run. Starts its own `redis-server` on a free port.
//!
//! - `l2_hit/raw_get`: one GET of the stored envelope bytes over a
//!   multiplexed `ConnectionManager` (the baseline);
//! - `l2_hit/cached_fn`: an async `#[cached(layers = remote)]` hit: key
//!   built, single-flight, GET, envelope decoded, tags checked. The cache's
//!   invalidation bus (Redis pub/sub) is connected before timing, so the
//!   entry's tag (its entity, `user:<id>`) is known locally after its first
//!   check and a hit is one GET (the per-call command counts printed after
//!   the group show it);
//! - `l2_hit/cached_fn_without_bus`: the same through a cache built
//!   `without_bus()`: no tag is ever "known", so every L2 hit also MGETs its
//!   tags' watermarks (`Cache::remote_valid`): two round trips. As it is for
//!   any cache while its bus is down;
//! - `l2_hit/raw_get_then_mget`: the raw cost of those two round trips (a GET
//!   then a one-key MGET);
//! - `l2_throughput_64_tasks/*`: 64 concurrent tasks, 64 hits each, raw vs
//!   cached (criterion reports time per batch of 4096 hits). Keys are
//!   `(task + i) % 100`, so at any moment several tasks want the same key:
//!   cachewright's single-flight lets them share one GET, which the raw client
//!   cannot (see the GET counts printed after the group);
//! - `l2_throughput_64_tasks_distinct/*`: the same, with every task on keys
//!   of its own (`64 * task + i`, 4096 keys): no two requests for one key
//!   at once. The raw side sends 4096 GETs; cachewright coalesces reads made
//!   while others are outstanding into MGETs (`cached_fn`, the default), or
//!   sends 4096 GETs too (`cached_fn_uncoalesced`, a cache built with
//!   `coalesce_reads(false)`);
//! - `l2_batch_100/*`: 100 keys by 100 awaited GETs, one raw MGET, and
//!   `Cache::get_many_async` (which uses MGET), with the bus up and, in
//!   `cache_get_many_without_bus`, through a cache without a bus (each
//!   entry's tag watermarks are then read by a MGET of its own).
//! - `l2_cpu/*` (measured in the bench thread's CPU time, on a
//!   current-thread runtime): cachewright's own work around an L2 hit, without a
//!   network, over an in-memory backend (`MemoryBackend`) as the remote
//!   layer: `raw_get` (the backend's `get`), `cached_fn` (an L2 hit, bus
//!   connected: a stub bus that reports connected at once),
//!   `cached_fn_without_bus` (plus the watermark read), `raw_get_many_100`
//!   and `cache_get_many_100` (the batch path, per 100 keys).
//!
//! After each group of the Redis part the commands the server ran per
//! measured call are printed (from `INFO commandstats`), so that what each
//! bench sends over the network is checked, not assumed.
//!
//! Last, `paired ...` lines: `l2_hit` and both throughput comparisons again,
//! outside criterion, with raw and cached units timed alternately (ABBA) so
//! that both see the same machine load; each prints the median per-round
//! ratio `cached / raw` of times and its quartiles. On a shared 2-core
//! machine the load drifts over seconds, and two criterion benches run one
//! after the other can differ by tens of percent for that reason alone:
//! take the ratios from these lines. (They are skipped under `--test`,
//! `--list` and `--profile-time`.)
//!
//! Run: `cargo bench --bench redis_l2`.

#[path = "../tests/support/mod.rs"]
mod support;

#[path = "common/cpu_time.rs"]
mod cpu_time;

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cachewright::backends::redis::RedisBackend;
use cachewright::backends::{
    async_trait, Backend, BackendError, Bus, BusEvent, BusSink, MemoryBackend,
};
use cachewright::{cached, Cache, LayerConfig};
use cpu_time::OneThreadClock;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

fn make_user(id: u64) -> User {
    User {
        id,
        name: format!("user-{id}"),
    }
}

static CACHE: OnceLock<Cache> = OnceLock::new();
static NO_BUS: OnceLock<Cache> = OnceLock::new();
static UNCOALESCED: OnceLock<Cache> = OnceLock::new();

#[cached(key = "user:<id>", ttl = 3600, layers = remote, cache = CACHE.get().unwrap().clone(), name = "L2Bench")]
async fn user(id: u64) -> Result<User, String> {
    Ok(make_user(id))
}

#[cached(key = "user:<id>", ttl = 3600, layers = remote, cache = UNCOALESCED.get().unwrap().clone(), name = "L2BenchUncoalesced")]
async fn user_uncoalesced(id: u64) -> Result<User, String> {
    Ok(make_user(id))
}

#[cached(key = "user:<id>", ttl = 3600, layers = remote, cache = NO_BUS.get().unwrap().clone(), name = "L2BenchNoBus")]
async fn user_without_bus(id: u64) -> Result<User, String> {
    Ok(make_user(id))
}

/// Calls of each Redis command (lower case) since the server started.
fn command_calls(conn: &mut redis::Connection) -> HashMap<String, u64> {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(conn)
        .expect("INFO commandstats");
    info.lines()
        .filter_map(|l| {
            let (name, rest) = l.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = rest
                .split(',')
                .find_map(|kv| kv.strip_prefix("calls="))?
                .parse()
                .ok()?;
            Some((name.to_owned(), calls))
        })
        .collect()
}

/// Counts the Redis commands run while a bench runs, per call of its routine.
struct Census<'a> {
    conn: &'a mut redis::Connection,
    before: HashMap<String, u64>,
    calls: AtomicU64,
}

impl<'a> Census<'a> {
    fn start(conn: &'a mut redis::Connection) -> Self {
        let before = command_calls(conn);
        Census {
            conn,
            before,
            calls: AtomicU64::new(0),
        }
    }

    /// Counts one call of the routine.
    fn tick(&self) {
        self.calls.fetch_add(1, Ordering::Relaxed);
    }

    /// Prints the commands per call since `start`, and starts again.
    fn report(&mut self, bench: &str) {
        let after = command_calls(self.conn);
        let calls = self.calls.swap(0, Ordering::Relaxed).max(1) as f64;
        let mut per: Vec<String> = after
            .iter()
            .filter(|(cmd, _)| !matches!(cmd.as_str(), "info" | "ping"))
            .filter_map(|(cmd, &n)| {
                let d = n - self.before.get(cmd).copied().unwrap_or(0);
                (d > 0).then(|| format!("{} {:.2}", cmd.to_uppercase(), d as f64 / calls))
            })
            .collect();
        per.sort();
        println!(
            "  redis commands per call of {bench} ({calls} calls): {}",
            per.join(", ")
        );
        // The INFO just sent is counted in the next report; it is filtered.
        self.before = command_calls(self.conn);
    }
}

fn bench(c: &mut Criterion) {
    let server = support::RedisServer::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let backend = RedisBackend::from_url(&server.url()).unwrap();
    let raw = backend.connection();
    let mut admin = server.conn();
    CACHE
        .set(
            Cache::builder()
                .namespace("bench")
                .layer(LayerConfig::new(backend).timeout(Duration::from_secs(1)))
                .build(),
        )
        .unwrap();
    NO_BUS
        .set(
            Cache::builder()
                .namespace("bench")
                .without_bus()
                .layer(
                    LayerConfig::new(RedisBackend::from_url(&server.url()).unwrap())
                        .timeout(Duration::from_secs(1)),
                )
                .build(),
        )
        .unwrap();
    UNCOALESCED
        .set(
            Cache::builder()
                .namespace("bench")
                .layer(
                    LayerConfig::new(RedisBackend::from_url(&server.url()).unwrap())
                        .timeout(Duration::from_secs(1))
                        .coalesce_reads(false),
                )
                .build(),
        )
        .unwrap();
    let cache = CACHE.get().unwrap();
    // Measured with the bus up, as in a healthy deployment.
    support::eventually("the bench cache's bus connects", || cache.bus_connected());
    support::eventually("the uncoalesced cache's bus connects", || {
        UNCOALESCED.get().unwrap().bus_connected()
    });
    rt.block_on(async {
        for id in 0..4096 {
            user(id).await.unwrap();
            user_uncoalesced(id).await.unwrap();
        }
        user_without_bus(1).await.unwrap();
    });
    let urn = "urn:bench:v1:user:1#L2Bench";
    let watermark = "urn:bench:v1:~tag:user:1";

    let mut census = Census::start(&mut admin);
    let mut g = c.benchmark_group("l2_hit");
    g.bench_function("raw_get", |b| {
        b.to_async(&rt).iter(|| {
            census.tick();
            let mut c = raw.clone();
            async move {
                let v: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(urn)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                v.unwrap()
            }
        })
    });
    census.report("l2_hit/raw_get");
    g.bench_function("cached_fn", |b| {
        b.to_async(&rt).iter(|| {
            census.tick();
            async { user(1).await.unwrap() }
        })
    });
    census.report("l2_hit/cached_fn");
    g.bench_function("cached_fn_without_bus", |b| {
        b.to_async(&rt).iter(|| {
            census.tick();
            async { user_without_bus(1).await.unwrap() }
        })
    });
    census.report("l2_hit/cached_fn_without_bus");
    g.bench_function("raw_get_then_mget", |b| {
        b.to_async(&rt).iter(|| {
            census.tick();
            let mut c = raw.clone();
            async move {
                let v: Option<Vec<u8>> = redis::cmd("GET")
                    .arg(urn)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                let w: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                    .arg(watermark)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                (v.unwrap(), w)
            }
        })
    });
    census.report("l2_hit/raw_get_then_mget");
    g.finish();

    for (group, key) in [
        ("l2_throughput_64_tasks", OVERLAPPING),
        ("l2_throughput_64_tasks_distinct", DISTINCT),
    ] {
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(64 * 64));
        g.bench_function("raw_get", |b| {
            b.to_async(&rt).iter(|| {
                census.tick();
                raw_tasks(raw.clone(), key)
            })
        });
        census.report(&format!("{group}/raw_get (per 4096 hits)"));
        g.bench_function("cached_fn", |b| {
            b.to_async(&rt).iter(|| {
                census.tick();
                cached_tasks(key, user)
            })
        });
        census.report(&format!("{group}/cached_fn (per 4096 hits)"));
        if group.ends_with("distinct") {
            g.bench_function("cached_fn_uncoalesced", |b| {
                b.to_async(&rt).iter(|| {
                    census.tick();
                    cached_tasks(key, user_uncoalesced)
                })
            });
            census.report(&format!("{group}/cached_fn_uncoalesced (per 4096 hits)"));
        }
        g.finish();
    }

    let keys: Vec<_> = (0..100u64)
        .map(|i| cache.key("user", &i).use_case("L2Bench"))
        .collect();
    let names: Vec<String> = keys.iter().map(|k| k.as_str().to_owned()).collect();
    let mut g = c.benchmark_group("l2_batch_100");
    g.bench_with_input(
        BenchmarkId::new("raw_get_one_by_one", 100),
        &names,
        |b, names| {
            b.to_async(&rt).iter(|| {
                census.tick();
                let mut c = raw.clone();
                async move {
                    for k in names {
                        let _: Option<Vec<u8>> =
                            redis::cmd("GET").arg(k).query_async(&mut c).await.unwrap();
                    }
                }
            })
        },
    );
    census.report("l2_batch_100/raw_get_one_by_one");
    g.bench_with_input(BenchmarkId::new("raw_mget", 100), &names, |b, names| {
        b.to_async(&rt).iter(|| {
            census.tick();
            let mut c = raw.clone();
            async move {
                let v: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
                    .arg(names)
                    .query_async(&mut c)
                    .await
                    .unwrap();
                v
            }
        })
    });
    census.report("l2_batch_100/raw_mget");
    // A fresh cache per iteration would measure setup; instead read through a
    // cache whose in-process layer never keeps these keys (capacity 1).
    let reader = Cache::builder()
        .namespace("bench")
        .capacity(1)
        .layer(
            LayerConfig::new(RedisBackend::from_url(&server.url()).unwrap())
                .timeout(Duration::from_secs(1)),
        )
        .build();
    support::eventually("the reader's bus connects", || reader.bus_connected());
    g.bench_with_input(BenchmarkId::new("cache_get_many", 100), &keys, |b, keys| {
        b.to_async(&rt).iter(|| {
            census.tick();
            async { reader.get_many_async::<User>(keys).await }
        })
    });
    census.report("l2_batch_100/cache_get_many");
    // Without a bus no tag is ever known: each entry's watermarks are read
    // in a round trip of their own, one entry after the other.
    let reader_without_bus = Cache::builder()
        .namespace("bench")
        .capacity(1)
        .without_bus()
        .layer(
            LayerConfig::new(RedisBackend::from_url(&server.url()).unwrap())
                .timeout(Duration::from_secs(1)),
        )
        .build();
    g.sample_size(20);
    g.bench_with_input(
        BenchmarkId::new("cache_get_many_without_bus", 100),
        &keys,
        |b, keys| {
            b.to_async(&rt).iter(|| {
                census.tick();
                async { reader_without_bus.get_many_async::<User>(keys).await }
            })
        },
    );
    census.report("l2_batch_100/cache_get_many_without_bus");
    g.finish();
    drop(census);

    if paired_wanted() {
        paired_ratios(&rt, &raw);
    }
    drop(server);
}

// ---- paired ratios ------------------------------------------------------------------

/// Whether to print the paired ratios: in a real bench run (not `--test`,
/// `--list` or `--profile-time`).
fn paired_wanted() -> bool {
    let args: Vec<String> = std::env::args().collect();
    args.iter().any(|a| a == "--bench")
        && !args
            .iter()
            .any(|a| matches!(a.as_str(), "--test" | "--list" | "--profile-time"))
}

/// Times `a` and `b` alternately (ABBA order) for `rounds` rounds, each run
/// being one unit of work, and prints the median time of each and the
/// median and quartiles of the per-round ratio `b / a`. On a shared machine
/// whose load drifts over seconds, comparing two criterion benches run one
/// after the other can be off by tens of percent; rounds taken side by side
/// see the same load.
fn paired<FA, FB>(
    rt: &tokio::runtime::Runtime,
    what: &str,
    rounds: usize,
    mut a: impl FnMut() -> FA,
    mut b: impl FnMut() -> FB,
) where
    FA: Future,
    FB: Future,
{
    let timed = |f: &mut dyn FnMut()| {
        let start = Instant::now();
        f();
        start.elapsed()
    };
    let (mut ta, mut tb, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        let mut run_a = || {
            rt.block_on(a());
        };
        let mut run_b = || {
            rt.block_on(b());
        };
        let (da, db) = if round % 2 == 0 {
            let da = timed(&mut run_a);
            (da, timed(&mut run_b))
        } else {
            let db = timed(&mut run_b);
            (timed(&mut run_a), db)
        };
        ta.push(da);
        tb.push(db);
        ratios.push(db.as_secs_f64() / da.as_secs_f64());
    }
    ta.sort();
    tb.sort();
    ratios.sort_by(f64::total_cmp);
    let q = |v: &[f64], p: f64| v[((v.len() - 1) as f64 * p).round() as usize];
    println!(
        "paired {what}: median unit {:?} vs {:?}; ratio median {:.3}x (quartiles {:.3}x..{:.3}x, {rounds} rounds)",
        ta[ta.len() / 2],
        tb[tb.len() / 2],
        q(&ratios, 0.5),
        q(&ratios, 0.25),
        q(&ratios, 0.75),
    );
}

fn paired_ratios(rt: &tokio::runtime::Runtime, raw: &redis::aio::ConnectionManager) {
    const HITS: usize = 200;
    let urn = "urn:bench:v1:user:1#L2Bench";
    paired(
        rt,
        "l2_hit cached_fn / raw_get (unit: 200 sequential hits)",
        60,
        || {
            let mut c = raw.clone();
            async move {
                for _ in 0..HITS {
                    let v: Option<Vec<u8>> = redis::cmd("GET")
                        .arg(urn)
                        .query_async(&mut c)
                        .await
                        .unwrap();
                    assert!(v.is_some());
                }
            }
        },
        || async {
            for _ in 0..HITS {
                user(1).await.unwrap();
            }
        },
    );
    for (name, key, coalesced) in [
        ("l2_throughput_64_tasks cached_fn", OVERLAPPING, true),
        ("l2_throughput_64_tasks_distinct cached_fn", DISTINCT, true),
        (
            "l2_throughput_64_tasks_distinct cached_fn_uncoalesced",
            DISTINCT,
            false,
        ),
    ] {
        paired(
            rt,
            &format!(
                "{name} / raw_get time (unit: 4096 hits by 64 tasks; throughput ratio = 1 / this)"
            ),
            16,
            || raw_tasks(raw.clone(), key),
            || async move {
                if coalesced {
                    cached_tasks(key, user).await;
                } else {
                    cached_tasks(key, user_uncoalesced).await;
                }
            },
        );
    }
}

/// The key task `t` reads on its `i`-th call: several tasks on one key at
/// once (100 keys in all).
const OVERLAPPING: fn(u64, u64) -> u64 = |t, i| (t + i) % 100;
/// Every task on keys of its own (4096 keys in all).
const DISTINCT: fn(u64, u64) -> u64 = |t, i| 64 * t + i;

/// 64 tasks, each reading its 64 keys with raw `GET`s.
async fn raw_tasks(raw: redis::aio::ConnectionManager, key: fn(u64, u64) -> u64) {
    let tasks: Vec<_> = (0..64u64)
        .map(|t| {
            let mut c = raw.clone();
            tokio::spawn(async move {
                for i in 0..64u64 {
                    let k = format!("urn:bench:v1:user:{}#L2Bench", key(t, i));
                    let v: Option<Vec<u8>> =
                        redis::cmd("GET").arg(k).query_async(&mut c).await.unwrap();
                    assert!(v.is_some());
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

/// 64 tasks, each reading its 64 keys through a cached function.
async fn cached_tasks<F, Fut>(key: fn(u64, u64) -> u64, call: F)
where
    F: Fn(u64) -> Fut + Copy + Send + 'static,
    Fut: Future<Output = Result<User, String>> + Send,
{
    let tasks: Vec<_> = (0..64u64)
        .map(|t| {
            tokio::spawn(async move {
                for i in 0..64u64 {
                    call(key(t, i)).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

// ---- l2_cpu: cachewright's own work around an L2 hit, without a network ---------------

/// A bus that reports itself connected at once and carries nothing: the
/// cache then trusts what it learns of watermarks, as with Redis pub/sub up.
#[derive(Debug)]
struct ConnectedBus;

#[async_trait]
impl Bus for ConnectedBus {
    async fn publish(&self, _channel: &str, _payload: Vec<u8>) -> Result<(), BackendError> {
        Ok(())
    }

    fn subscribe(&self, _channel: &str, sink: BusSink) {
        sink(BusEvent::Connected);
    }
}

static MEM: OnceLock<Cache> = OnceLock::new();
static MEM_NO_BUS: OnceLock<Cache> = OnceLock::new();

#[cached(key = "user:<id>", ttl = 3600, layers = remote, cache = MEM.get().unwrap().clone(), name = "MemBench")]
async fn mem_user(id: u64) -> Result<User, String> {
    Ok(make_user(id))
}

#[cached(key = "user:<id>", ttl = 3600, layers = remote, cache = MEM_NO_BUS.get().unwrap().clone(), name = "MemBenchNoBus")]
async fn mem_user_without_bus(id: u64) -> Result<User, String> {
    Ok(make_user(id))
}

fn l2_cpu(c: &mut Criterion<OneThreadClock>) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let backend = Arc::new(MemoryBackend::new());
    let mem = MEM.get_or_init(|| {
        Cache::builder()
            .namespace("bench")
            .bus(Arc::new(ConnectedBus))
            .layer(LayerConfig::shared(backend.clone()))
            .build()
    });
    assert!(mem.bus_connected(), "the stub bus connects at once");
    MEM_NO_BUS.get_or_init(|| {
        Cache::builder()
            .namespace("bench")
            .without_bus()
            .layer(LayerConfig::shared(backend.clone()))
            .build()
    });
    rt.block_on(async {
        for id in 0..100 {
            mem_user(id).await.unwrap();
        }
        mem_user_without_bus(1).await.unwrap();
    });
    let urn = "urn:bench:v1:user:1#MemBench";
    let keys: Vec<_> = (0..100u64)
        .map(|i| mem.key("user", &i).use_case("MemBench"))
        .collect();
    let names: Vec<String> = keys.iter().map(|k| k.as_str().to_owned()).collect();
    let reader = Cache::builder()
        .namespace("bench")
        .capacity(1)
        .bus(Arc::new(ConnectedBus))
        .layer(LayerConfig::shared(backend.clone()))
        .build();

    let mut g = c.benchmark_group("l2_cpu");
    g.bench_function("raw_get", |b| {
        b.to_async(&rt)
            .iter(|| async { backend.get(urn).await.unwrap().unwrap() })
    });
    g.bench_function("cached_fn", |b| {
        b.to_async(&rt)
            .iter(|| async { mem_user(1).await.unwrap() })
    });
    g.bench_function("cached_fn_without_bus", |b| {
        b.to_async(&rt)
            .iter(|| async { mem_user_without_bus(1).await.unwrap() })
    });
    g.bench_function("raw_get_many_100", |b| {
        b.to_async(&rt)
            .iter(|| async { backend.get_many(&names).await.unwrap() })
    });
    g.bench_function("cache_get_many_100", |b| {
        b.to_async(&rt).iter(|| async {
            let v = reader.get_many_async::<User>(&keys).await;
            debug_assert!(v.iter().all(Option::is_some));
            v
        })
    });
    g.finish();
    let hits = rt.block_on(reader.get_many_async::<User>(&keys));
    assert!(
        hits.iter().all(Option::is_some),
        "every batch key is an L2 hit"
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_group! {
    name = cpu;
    config = Criterion::default()
        .with_measurement(OneThreadClock)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .without_plots();
    targets = l2_cpu
}
criterion_main!(benches, cpu);
