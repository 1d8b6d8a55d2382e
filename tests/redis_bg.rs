//! Three OS processes run the same background writer against one real
//! Redis: exactly one of them loads per interval (a lease in Redis), and
//! when the holder is killed another takes over.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cachewright::backends::redis::RedisBackend;
use cachewright::{bg_writer, Cache, LayerConfig};
use support::{eventually, RedisServer};

static CACHE: OnceLock<Cache> = OnceLock::new();
static URL: OnceLock<String> = OnceLock::new();

const INTERVAL_MS: u64 = 200;

/// Counts every load in Redis (who, and how many in all).
#[bg_writer(key = "prices", interval = "200ms", cache = CACHE.get().unwrap().clone())]
fn prices() -> Result<Vec<u32>, String> {
    let mut c = redis::Client::open(URL.get().unwrap().as_str())
        .and_then(|c| c.get_connection())
        .map_err(|e| e.to_string())?;
    let _: i64 = redis::cmd("INCR")
        .arg("loads")
        .query(&mut c)
        .map_err(|e| e.to_string())?;
    let _: i64 = redis::cmd("RPUSH")
        .arg("loaders")
        .arg(std::process::id())
        .query(&mut c)
        .map_err(|e| e.to_string())?;
    Ok(vec![1, 2, 3])
}

/// A replica (run by `one_replica_loads_per_interval_and_another_takes_over`
/// with `CACHEWRIGHT_BG_URL` set): runs the writer until killed or for 6 s. On
/// its own, a writer with a Redis cache loads and releases its lease.
#[test]
fn replica() {
    let standalone = std::env::var("CACHEWRIGHT_BG_URL").is_err();
    let server = standalone.then(RedisServer::start);
    let url =
        std::env::var("CACHEWRIGHT_BG_URL").unwrap_or_else(|_| server.as_ref().unwrap().url());
    URL.set(url.clone()).unwrap();
    CACHE
        .set(
            Cache::builder()
                .namespace("bg")
                .layer(LayerConfig::new(RedisBackend::from_url(&url).unwrap()))
                .build(),
        )
        .unwrap();
    prices.start().unwrap();
    println!("REPLICA pid={}", std::process::id());
    if standalone {
        eventually("the writer loads", || prices.try_get().is_some());
        cachewright::shutdown();
        let mut c = redis::Client::open(url.as_str())
            .unwrap()
            .get_connection()
            .unwrap();
        let keys: Vec<String> = redis::cmd("KEYS").arg("*lease*").query(&mut c).unwrap();
        assert!(keys.is_empty(), "shutdown released the lease: {keys:?}");
        return;
    }
    std::thread::sleep(Duration::from_secs(6));
    cachewright::shutdown();
}

fn loaders(server: &RedisServer) -> Vec<u32> {
    redis::cmd("LRANGE")
        .arg("loaders")
        .arg(0)
        .arg(-1)
        .query(&mut server.conn())
        .unwrap()
}

#[test]
fn one_replica_loads_per_interval_and_another_takes_over() {
    let server = RedisServer::start();
    let start = Instant::now();
    let mut children: Vec<_> = (0..3)
        .map(|_| {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args(["--exact", "replica", "--nocapture", "--test-threads=1"])
                .env("CACHEWRIGHT_BG_URL", server.url())
                .stdout(Stdio::piped())
                .spawn()
                .unwrap();
            let mut out = BufReader::new(child.stdout.take().unwrap());
            let pid = loop {
                let mut line = String::new();
                assert!(out.read_line(&mut line).unwrap() > 0, "replica started");
                if let Some(i) = line.find("REPLICA pid=") {
                    break line[i + "REPLICA pid=".len()..]
                        .trim()
                        .parse::<u32>()
                        .unwrap();
                }
            };
            (child, pid)
        })
        .collect();
    // Several intervals with three replicas running.
    eventually("ten loads", || loaders(&server).len() >= 10);
    let before = loaders(&server);
    let elapsed = start.elapsed();
    let holder = before[0];
    assert!(
        before.iter().all(|&p| p == holder),
        "one replica did every load: {before:?}"
    );
    let intervals = (elapsed.as_millis() as u64 / INTERVAL_MS) as usize + 2;
    assert!(
        before.len() <= intervals,
        "at most one load per interval: {} loads in {elapsed:?}",
        before.len()
    );

    // Kill the holder: no release, the lease runs out, another takes over.
    let (mut dead, _) = children.remove(children.iter().position(|(_, p)| *p == holder).unwrap());
    dead.kill().unwrap();
    dead.wait().unwrap();
    let n = before.len();
    eventually("another replica takes over", || {
        loaders(&server)[n..].iter().any(|&p| p != holder)
    });
    eventually("a few loads by the new holder", || {
        loaders(&server).len() >= n + 5
    });
    let after = loaders(&server)[n..].to_vec();
    let new_holder = *after.iter().find(|&&p| p != holder).unwrap();
    assert!(children.iter().any(|(_, p)| *p == new_holder));
    let by_new: Vec<_> = after.iter().skip_while(|&&p| p != new_holder).collect();
    assert!(
        by_new.iter().all(|&&p| p == new_holder),
        "again exactly one loader: {after:?}"
    );
    for (mut c, _) in children {
        let _ = c.kill();
        let _ = c.wait();
    }
}
