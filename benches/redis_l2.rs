//! L2 (Redis) costs through cachet against the raw `redis` crate on the same
//! server, in one run. Starts its own `redis-server` on a free port.
//!
//! - `l2_hit/raw_get`: one GET of the stored envelope bytes over a
//!   multiplexed `ConnectionManager` (the baseline);
//! - `l2_hit/cached_fn`: an async `#[cached(layers = remote)]` hit: key
//!   built, single-flight, GET, envelope decoded;
//! - `l2_throughput_64_tasks/*`: 64 concurrent tasks, 64 hits each, raw vs
//!   cached (criterion reports time per batch of 4096 hits);
//! - `l2_batch_100/*`: 100 keys by 100 awaited GETs, one raw MGET, and
//!   `Cache::get_many_async` (which uses MGET).

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::OnceLock;
use std::time::Duration;

use cachet::backends::redis::RedisBackend;
use cachet::{cached, Cache, LayerConfig};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

static CACHE: OnceLock<Cache> = OnceLock::new();

#[cached(key = "user:<id>", ttl = 3600, layers = remote, cache = CACHE.get().unwrap().clone(), name = "L2Bench")]
async fn user(id: u64) -> Result<User, String> {
    Ok(User {
        id,
        name: format!("user-{id}"),
    })
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
    CACHE
        .set(
            Cache::builder()
                .namespace("bench")
                .layer(LayerConfig::new(backend).timeout(Duration::from_secs(1)))
                .build(),
        )
        .unwrap();
    let cache = CACHE.get().unwrap();
    rt.block_on(async {
        for id in 0..100 {
            user(id).await.unwrap();
        }
    });
    let urn = "urn:bench:v1:user:1#L2Bench";

    let mut g = c.benchmark_group("l2_hit");
    g.bench_function("raw_get", |b| {
        b.to_async(&rt).iter(|| {
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
    g.bench_function("cached_fn", |b| {
        b.to_async(&rt).iter(|| async { user(1).await.unwrap() })
    });
    g.finish();

    let mut g = c.benchmark_group("l2_throughput_64_tasks");
    g.throughput(Throughput::Elements(64 * 64));
    g.bench_function("raw_get", |b| {
        b.to_async(&rt).iter(|| {
            let raw = raw.clone();
            async move {
                let tasks: Vec<_> = (0..64)
                    .map(|t| {
                        let mut c = raw.clone();
                        tokio::spawn(async move {
                            for i in 0..64u64 {
                                let k = format!("urn:bench:v1:user:{}#L2Bench", (t + i) % 100);
                                let _: Option<Vec<u8>> =
                                    redis::cmd("GET").arg(k).query_async(&mut c).await.unwrap();
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.unwrap();
                }
            }
        })
    });
    g.bench_function("cached_fn", |b| {
        b.to_async(&rt).iter(|| async {
            let tasks: Vec<_> = (0..64u64)
                .map(|t| {
                    tokio::spawn(async move {
                        for i in 0..64u64 {
                            user((t + i) % 100).await.unwrap();
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        })
    });
    g.finish();

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
    g.bench_with_input(BenchmarkId::new("raw_mget", 100), &names, |b, names| {
        b.to_async(&rt).iter(|| {
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
    g.bench_with_input(BenchmarkId::new("cache_get_many", 100), &keys, |b, keys| {
        b.to_async(&rt)
            .iter(|| async { reader.get_many_async::<User>(keys).await })
    });
    g.finish();
    drop(server);
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3));
    targets = bench
}
criterion_main!(benches);
