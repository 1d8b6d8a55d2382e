//! A thundering herd, simulated: 1,000 replicas (tasks, each with its own
//! `Cache` and so its own in-process layer) read one
//! hot key through one Redis while it expires again and again; the
//! "database" counts its queries. Printed: database queries per second
//! (the key lives a TTL, about once a second by default, so without early
//! refresh this is about the queries per expiry) with and without `lock`,
//! with and without early refresh, and the fewest and most in one TTL
//! window.
//!
//! `cargo bench --bench herd` (starts its own redis-server, found on the
//! PATH or in /usr/bin; or set `REDIS_URL`). Options by environment:
//! `HERD_REPLICAS` (1000), `HERD_WINDOWS` (5 TTL windows per row),
//! `HERD_TTL_MS` (1000), `HERD_QUERY_MS` (50, the query's time),
//! `HERD_EVERY_MS` (10, each replica's pause between two reads).
//!
//! One `#[cached]` function is one use case bound to one cache; to give
//! each simulated replica its own cache, this drives the runtime's use-case
//! API the way the generated code does (`lookup`, `miss`, `load_async`,
//! `refresh_async`), with the settings `#[cached]` would give it.

use std::fmt::Display;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachewright::__private::{
    AsyncJob, CodecProbe, KeyTemplate, LayerChoice, Lookup, RefreshFailed, Resilience, Segment,
    ShareError, UseCaseSlot, UseCaseSpec, ViaSerde as _,
};
use cachewright::backends::redis::RedisBackend;
use cachewright::backends::{async_trait, Backend, BackendError};
use cachewright::{Cache, LayerConfig};

/// The shared Redis, without its invalidation bus: 1,000 pub/sub
/// subscriptions are more than this 2-core machine sets up in a minute, and
/// nothing is invalidated here. Each replica trusts its in-process layer.
#[derive(Debug)]
struct NoBus(Arc<RedisBackend>);

#[async_trait]
impl Backend for NoBus {
    fn name(&self) -> &str {
        "redis"
    }
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        self.0.get(key).await
    }
    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), BackendError> {
        self.0.set(key, value, ttl).await
    }
    async fn delete(&self, key: &str) -> Result<bool, BackendError> {
        self.0.delete(key).await
    }
    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, BackendError> {
        self.0.get_many(keys).await
    }
    fn native_get_many(&self) -> bool {
        true
    }
    async fn set_if_absent(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, BackendError> {
        self.0.set_if_absent(key, value, ttl).await
    }
    async fn delete_if(&self, key: &str, token: &[u8]) -> Result<bool, BackendError> {
        self.0.delete_if(key, token).await
    }
    async fn raise_many(&self, items: Vec<(String, u64, Duration)>) -> Result<(), BackendError> {
        self.0.raise_many(items).await
    }
}

static QUERIES: AtomicU64 = AtomicU64::new(0);

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One row of the table: a use case's settings.
struct Row {
    label: &'static str,
    name: &'static str,
    lock: bool,
    early_per_mille: u32,
    xfetch_beta_milli: u32,
}

const ROWS: &[Row] = &[
    Row {
        label: "neither",
        name: "Plain",
        lock: false,
        early_per_mille: 0,
        xfetch_beta_milli: 0,
    },
    Row {
        label: "`lock = true`",
        name: "Locked",
        lock: true,
        early_per_mille: 0,
        xfetch_beta_milli: 0,
    },
    Row {
        label: "`early_refresh = 0.8`",
        name: "Early",
        lock: false,
        early_per_mille: 800,
        xfetch_beta_milli: 0,
    },
    Row {
        label: "`early_refresh = \"xfetch\"`",
        name: "XFetch",
        lock: false,
        early_per_mille: 0,
        xfetch_beta_milli: 1000,
    },
    Row {
        label: "`lock` + `early_refresh = 0.8`",
        name: "LockedEarly",
        lock: true,
        early_per_mille: 800,
        xfetch_beta_milli: 0,
    },
    Row {
        label: "`lock` + `\"xfetch\"`",
        name: "LockedXFetch",
        lock: true,
        early_per_mille: 0,
        xfetch_beta_milli: 1000,
    },
];

fn slot(row: &Row, ttl_ms: u64) -> &'static UseCaseSlot {
    Box::leak(Box::new(UseCaseSlot::new(UseCaseSpec {
        name: row.name,
        key: KeyTemplate {
            key_type: "hot",
            id: &[Segment::Value(0)],
            args: &[],
            tags: &[],
        },
        ttl_ms: Some(ttl_ms),
        ttl_preset: None,
        swr_ms: 0,
        negative_ttl_ms: None,
        jitter: 0.0,
        capacity: Some(16),
        schema: 0,
        layers: LayerChoice::All,
        local_ttl_ms: None,
        remote_ttl_ms: None,
        max_bytes: None,
        weigher: None,
        shadow_per_mille: None,
        early_refresh_per_mille: row.early_per_mille,
        xfetch_beta_milli: row.xfetch_beta_milli,
        resilience: Resilience {
            lock: row.lock,
            lock_wait_ms: 2_000,
            ..Resilience::NONE
        },
    })))
}

/// The database: one query of `query` per load.
async fn query(id: u64, took: Duration) -> Result<u64, String> {
    QUERIES.fetch_add(1, Relaxed);
    tokio::time::sleep(took).await;
    Ok(id * 7)
}

/// One call of the hot key on one replica, as `#[cached]` makes it.
async fn call(slot: &'static UseCaseSlot, cache: &Cache, id: u64, took: Duration) -> u64 {
    let q = (&id,);
    let codec = CodecProbe::<u64>::new().value_codec();
    let uc = slot
        .get::<_, u64>(&q, None, || cache.clone(), None, codec)
        .expect("one use case per replica");
    let miss = {
        let shown: [&dyn Display; 1] = [&id];
        match uc.lookup(&q) {
            Lookup::Hit(v) | Lookup::Shadow(v) => return v,
            Lookup::Stale(v) => {
                uc.refresh_async(&q, &shown, move || -> AsyncJob<u64> {
                    Box::pin(async move { query(id, took).await.map_err(|_| RefreshFailed) })
                });
                return v;
            }
            Lookup::Miss(route) => uc.miss(&q, &shown, route),
        }
    };
    uc.load_async(miss, ShareError::none(), query(id, took))
        .await
        .expect("the query never fails here")
}

fn redis_server() -> (String, Option<Child>) {
    if let Ok(url) = std::env::var("REDIS_URL") {
        return (url, None);
    }
    let bin = [
        "redis-server",
        "/usr/bin/redis-server",
        "/usr/local/bin/redis-server",
    ]
    .into_iter()
    .find(|b| Command::new(b).arg("--version").output().is_ok())
    .expect("redis-server on the PATH or in /usr/bin (apt-get install redis-server), or REDIS_URL");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(bin)
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .args(["--maxclients", "10000"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server starts");
    let url = format!("redis://127.0.0.1:{port}");
    for _ in 0..200 {
        if redis::Client::open(url.as_str())
            .and_then(|c| c.get_connection())
            .is_ok()
        {
            return (url, Some(child));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let mut child = child;
    let _ = child.kill();
    let _ = child.wait();
    panic!("redis-server did not answer on {url}");
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is read from the command line.
    let replicas = env("HERD_REPLICAS", 1000) as usize;
    let windows = env("HERD_WINDOWS", 5);
    let ttl_ms = env("HERD_TTL_MS", 1000);
    let took = Duration::from_millis(env("HERD_QUERY_MS", 50));
    let every = Duration::from_millis(env("HERD_EVERY_MS", 10));
    let (url, mut server) = redis_server();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let redis = Arc::new(RedisBackend::from_url(&url).expect("a redis url"));
    let backend: Arc<NoBus> = Arc::new(NoBus(redis));
    let caches: Vec<Cache> = (0..replicas)
        .map(|i| {
            Cache::builder()
                .name(format!("replica-{i}"))
                .namespace("herd")
                .layer(LayerConfig::shared(backend.clone()).timeout(Duration::from_secs(1)))
                .build()
        })
        .collect();
    println!(
        "{replicas} replicas, TTL {ttl_ms} ms, a query takes {} ms, each replica reads every {} ms; {windows} TTL windows per row\n",
        took.as_millis(),
        every.as_millis()
    );
    println!("| settings | database queries per second | in one TTL window: fewest | most | reads per second |");
    println!("|---|---|---|---|---|");
    for row in ROWS {
        let slots: Vec<&'static UseCaseSlot> = (0..replicas).map(|_| slot(row, ttl_ms)).collect();
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicU64::new(0));
        // Warm: every replica holds the key.
        rt.block_on(async {
            for (s, c) in slots.iter().zip(&caches) {
                call(s, c, 1, took).await;
            }
        });
        let tasks: Vec<_> = slots
            .iter()
            .zip(&caches)
            .enumerate()
            .map(|(i, (&s, c))| {
                let (c, stop, reads) = (c.clone(), stop.clone(), reads.clone());
                let offset = every.mul_f64(i as f64 / replicas as f64);
                rt.spawn(async move {
                    // Spread the replicas' reads over the pause.
                    tokio::time::sleep(offset).await;
                    while !stop.load(Relaxed) {
                        call(s, &c, 1, took).await;
                        reads.fetch_add(1, Relaxed);
                        tokio::time::sleep(every).await;
                    }
                })
            })
            .collect();
        let mut per_window = Vec::new();
        let start = Instant::now();
        for _ in 0..windows {
            let before = QUERIES.load(Relaxed);
            std::thread::sleep(Duration::from_millis(ttl_ms));
            per_window.push(QUERIES.load(Relaxed) - before);
        }
        let secs = start.elapsed().as_secs_f64();
        stop.store(true, Relaxed);
        rt.block_on(async {
            for t in tasks {
                let _ = t.await;
            }
        });
        let total = per_window.iter().sum::<u64>() as f64;
        println!(
            "| {} | {:.1} | {} | {} | {:.0} |",
            row.label,
            total / secs,
            per_window.iter().min().unwrap(),
            per_window.iter().max().unwrap(),
            reads.load(Relaxed) as f64 / secs
        );
    }
    if let Some(s) = server.as_mut() {
        let _ = s.kill();
        let _ = s.wait();
    }
}
