//! A worker's part: the cached reads and the writes over a source of truth
//! outside the cache, the tasks that run them, and a bystander on the bus.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use cachewright::backends::redis::RedisBackend;
use cachewright::{cache_write, cached, tag, Cache, LayerConfig};

use crate::checker::Op;
use crate::{env, now_us, GROUPS, IDS, TASKS};

// ---- the worker's functions ---------------------------------------------------------------

static CACHE: OnceLock<Cache> = OnceLock::new();
/// The source of truth: `version:<id>` counters in a Redis the cache never
/// touches.
static DB: OnceLock<redis::aio::MultiplexedConnection> = OnceLock::new();

fn cache() -> Cache {
    CACHE.get().expect("the worker built its cache").clone()
}

fn group_of(id: u32) -> u32 {
    id % GROUPS
}

async fn db_version(id: u32) -> Result<u64, String> {
    let mut c = DB.get().expect("the worker connected").clone();
    redis::cmd("GET")
        .arg(format!("version:{id}"))
        .query_async::<Option<u64>>(&mut c)
        .await
        .map(|v| v.unwrap_or(0))
        .map_err(|e| e.to_string())
}

async fn db_increment(id: u32) -> Result<u64, String> {
    let mut c = DB.get().expect("the worker connected").clone();
    redis::cmd("INCR")
        .arg(format!("version:{id}"))
        .query_async::<u64>(&mut c)
        .await
        .map_err(|e| e.to_string())
}

#[cached(key = "item:<id>", ttl = 300, cache = cache(), name = "Item")]
async fn item(id: u32) -> Result<u64, String> {
    db_version(id).await
}

/// Stale after 20 ms and served stale for a minute while it refreshes in
/// the background: SWR refreshes run all the time.
#[cached(key = "item:<id>:summary", ttl = "20ms", swr = 60, cache = cache(), name = "Summary")]
async fn summary(id: u32) -> Result<u64, String> {
    db_version(id).await
}

#[cached(key = "item:<id>:in_group", ttl = 300, tags = ["group:<group>"], cache = cache(), name = "InGroup")]
async fn in_group(id: u32, group: u32) -> Result<u64, String> {
    db_version(id).await
}

#[cache_write(invalidate = ["item:<id>"], cache = cache())]
async fn write_item(id: u32) -> Result<u64, String> {
    db_increment(id).await
}

#[cache_write(invalidate = ["item:<id>", "group:<group>"], cache = cache())]
async fn write_item_and_group(id: u32, group: u32) -> Result<u64, String> {
    db_increment(id).await
}

/// The reads, by the index an operation records.
pub(crate) const READS: [&str; 3] = ["item", "summary", "in_group"];
/// The ways of writing, by the index an operation records.
pub(crate) const WRITES: [&str; 4] = [
    "cache_write",
    "cache_write+group",
    "invalidate_entity",
    "invalidate_tags",
];

async fn read(how: u8, id: u32) -> Result<u64, String> {
    match how {
        0 => item(id).await,
        1 => summary(id).await,
        _ => in_group(id, group_of(id)).await,
    }
}

async fn write(how: u8, id: u32) -> Result<u64, String> {
    match how {
        0 => write_item(id).await,
        1 => write_item_and_group(id, group_of(id)).await,
        2 => {
            let v = db_increment(id).await?;
            cache().invalidate_entity_async("item", &id).await;
            Ok(v)
        }
        _ => {
            let v = db_increment(id).await?;
            cache()
                .invalidate_tags_async([tag("item", &id), tag("group", &group_of(id))])
                .await;
            Ok(v)
        }
    }
}

/// A small xorshift generator (each task its own seed).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % u64::from(n)) as u32
    }
}

// ---- the worker ----------------------------------------------------------------------------

/// A bystander on the bus in a worker's process: when each invalidation
/// message reached this process (its own connection, subscribed as the
/// cache's is), with the message's text. Only for explaining violations.
fn probe_bus(url: &str, channel: &str, watching: &AtomicBool) -> Vec<(u64, String)> {
    let mut seen = Vec::new();
    let client = redis::Client::open(url).unwrap();
    while watching.load(Relaxed) {
        let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_millis(200)) else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        let mut bus = conn.as_pubsub();
        if bus.subscribe(channel).is_err()
            || bus
                .set_read_timeout(Some(Duration::from_millis(100)))
                .is_err()
        {
            continue;
        }
        while watching.load(Relaxed) {
            match bus.get_message() {
                Ok(msg) => {
                    let text = String::from_utf8_lossy(msg.get_payload_bytes()).into_owned();
                    seen.push((now_us(), text));
                }
                Err(e) if e.is_timeout() => {}
                Err(_) => break,
            }
        }
    }
    seen
}

/// A worker's part, run by the test below in a child process with
/// `CACHEWRIGHT_HISTORY_*` set; on its own it does nothing.
#[test]
fn worker() {
    let Some(process) = env("CACHEWRIGHT_HISTORY_PROCESS") else {
        return;
    };
    let process: u32 = process.parse().unwrap();
    let var = |name: &str| env(name).unwrap_or_else(|| panic!("{name} is set"));
    let cache_url = var("CACHEWRIGHT_HISTORY_CACHE_URL");
    let db_url = var("CACHEWRIGHT_HISTORY_DB_URL");
    let start: u64 = var("CACHEWRIGHT_HISTORY_START_US").parse().unwrap();
    let until: u64 = var("CACHEWRIGHT_HISTORY_UNTIL_US").parse().unwrap();
    let quota: Option<u64> = env("CACHEWRIGHT_HISTORY_QUOTA").map(|q| q.parse().unwrap());
    let out = var("CACHEWRIGHT_HISTORY_OUT");

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (ops, bus, messages) = rt.block_on(async {
        let cache = Cache::builder()
            .namespace("history")
            .layer(
                LayerConfig::new(RedisBackend::from_url(&cache_url).unwrap())
                    .timeout(Duration::from_millis(200))
                    .breaker(2, Duration::from_millis(100)),
            )
            .build();
        CACHE.set(cache.clone()).unwrap();
        let db = redis::Client::open(db_url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("the source of truth answers");
        DB.set(db).unwrap();
        let waited = std::time::Instant::now();
        while !cache.bus_connected() {
            assert!(waited.elapsed() < Duration::from_secs(30), "no bus");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        // The bus as this process sees it: (time, up).
        let watching = Arc::new(AtomicBool::new(true));
        let watcher = {
            let (cache, watching) = (cache.clone(), watching.clone());
            std::thread::spawn(move || {
                let mut seen = vec![(now_us(), true)];
                while watching.load(Relaxed) {
                    let up = cache.bus_connected();
                    if up != seen.last().unwrap().1 {
                        seen.push((now_us(), up));
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                seen
            })
        };
        let probe = {
            let (url, watching) = (cache_url.clone(), watching.clone());
            let channel = format!("cachewright:bus:{}", cache.key_prefix());
            std::thread::spawn(move || probe_bus(&url, &channel, &watching))
        };

        let wait = start.saturating_sub(now_us());
        tokio::time::sleep(Duration::from_micros(wait)).await;
        let tasks: Vec<_> = (0..TASKS)
            .map(|task| {
                tokio::spawn(async move {
                    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ u64::from(process * 16 + task + 1));
                    let mut ops = Vec::new();
                    let done = |n: usize| match quota {
                        Some(q) => n as u64 >= q,
                        None => now_us() >= until,
                    };
                    while !done(ops.len()) {
                        let id = rng.below(IDS);
                        let roll = rng.below(100);
                        let start = now_us();
                        let (is_write, how, version) = if roll < 5 {
                            let how = (roll % 4) as u8;
                            (true, how, write(how, id).await)
                        } else {
                            let how = (roll % 3) as u8;
                            (false, how, read(how, id).await)
                        };
                        let end = now_us();
                        let version = version.unwrap_or_else(|e| {
                            panic!("the source of truth never fails, yet: {e}")
                        });
                        ops.push(Op {
                            process,
                            task,
                            write: is_write,
                            how,
                            id,
                            version,
                            start,
                            end,
                        });
                        if ops.len() % 16 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                    ops
                })
            })
            .collect();
        let mut ops = Vec::new();
        for t in tasks {
            ops.extend(t.await.unwrap());
        }
        watching.store(false, Relaxed);
        (ops, watcher.join().unwrap(), probe.join().unwrap())
    });

    let mut file = std::io::BufWriter::new(std::fs::File::create(&out).unwrap());
    for op in &ops {
        writeln!(file, "{}", op.line()).unwrap();
    }
    for (at, up) in &bus {
        writeln!(
            file,
            "BUS {process} {at} {}",
            if *up { "up" } else { "down" }
        )
        .unwrap();
    }
    for (arrived, text) in &messages {
        writeln!(file, "MSG {process} {arrived} {text}").unwrap();
    }
    file.flush().unwrap();
    let stats = cache().bus_stats();
    // What the cache did, summed over the three reads.
    let uses: Vec<_> = ["Item", "Summary", "InGroup"]
        .iter()
        .map(|n| cache().stats_for(n).expect("the use case ran"))
        .collect();
    let sum = |f: fn(&cachewright::Stats) -> u64| uses.iter().map(f).sum::<u64>();
    println!(
        "WORKER ops={} bus_changes={} confirmed={} unconfirmed={} delivery_failures={} undelivered={} lost={} hits={} remote_hits={} loads={} stale_hits={} refreshes={} discarded={} bus_messages_applied={}",
        ops.len(),
        bus.len() - 1,
        stats.confirmed,
        stats.unconfirmed,
        stats.delivery_failures,
        stats.undelivered,
        stats.lost,
        sum(|s| s.hits),
        sum(|s| s.remote_hits),
        sum(|s| s.loads),
        sum(|s| s.stale_hits),
        sum(|s| s.refreshes),
        sum(|s| s.discarded),
        cache().snapshot().bus_messages,
    );
}
