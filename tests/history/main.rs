//! A history checker for the invalidation rule, across processes.
//!
//! Two worker processes (children of this test binary), each with four tokio
//! tasks, read and write 50 ids through `#[cached]` and `#[cache_write]`:
//! about 95% reads, 5% writes, so that reads and writes of one id collide all
//! the time. The source of truth is a Redis of its own (`version:<id>`
//! counters, never restarted); the cache's Redis is shared by both workers and
//! is restarted, and its pub/sub clients killed, during the run.
//!
//! Every operation is recorded with its wall-clock start and end (Unix
//! microseconds: both processes read the host's clock) and the version it
//! read or wrote. The parent then checks the whole history:
//!
//! - **violation**: a read of id X that returned version v although a write
//!   of X with version w > v had *ended* before the read *started*. (A write
//!   ends after its invalidation returned, so such a read began after
//!   `invalidate(...)` returned and returned a value whose load began before
//!   it: the rule of DESIGN.md, "Invalidation".) Asserted to be none, in
//!   every process: an invalidation returns once every subscriber
//!   acknowledged it, or once those that did not can no longer trust their
//!   in-process copies (their lease ran out; see
//!   `CacheBuilder::invalidation_lease`). Violations are still printed by
//!   process (writer's own, another's) to tell a regression's kind.
//! - **consistency of the history itself**: no read returns a version that no
//!   write had even started to make before the read ended.
//!
//! It prints the propagation delay too (not asserted): for each write and
//! each *other* process, the time from the write's end to the start of the
//! first read of that id in that process that returned the write's version
//! or later. Reads are samples, so this is an upper bound on how long that
//! process could have served the old copy (it includes the wait for the next
//! read of that id). Writes whose span up to that read comes within 200 ms
//! before or 1 s after a disturbance of the cache Redis (from the parent's
//! restart or kill until every worker saw its bus up again) are left out: the
//! figure is for a bus that is up.
//!
//! Each violation is printed with its write and with the evidence of what
//! the reader's process knew: a bystander subscriber in every worker (a
//! connection of its own on the bus channel) records when each invalidation
//! message reached that process, so a stale read is told apart as "before
//! the message reached the process" or "after it reached the process, before
//! the cache's own subscriber applied it". The same arrivals give the bus
//! delivery time from a write's end (printed, not asserted).
//!
//! `cargo test --test history` runs for a few seconds; for a long run,
//! `CACHEWRIGHT_HISTORY_OPS=100000 cargo test --release --test history -- --nocapture`
//! runs until the workers have made that many operations between them
//! (`CACHEWRIGHT_HISTORY_SHOW=all` prints every violation, not the first 20).

#[path = "../support/mod.rs"]
mod support;

mod checker;
mod workload;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use checker::{bus_delivery, check, explain, percentile, Arrival, Op, Span};
use support::child::run_test;
use support::RedisServer;

/// Ids read and written: few, so that reads and writes collide.
const IDS: u32 = 50;
const GROUPS: u32 = 5;
/// Tokio tasks per worker process.
const TASKS: u32 = 4;
/// Worker processes.
const WORKERS: u32 = 2;
/// How long the short (CI) run's workers run.
const SHORT_RUN: Duration = Duration::from_secs(5);

pub(crate) fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros() as u64
}

pub(crate) fn env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

// ---- the parent ----------------------------------------------------------------------------

/// What the parent did to the cache Redis: (what, from, until it answered).
struct Disturbance {
    what: &'static str,
    span: Span,
}

#[test]
fn no_read_returns_a_version_older_than_a_finished_write() {
    let mut cache_redis = RedisServer::start();
    let db = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let total: Option<u64> = env("CACHEWRIGHT_HISTORY_OPS").map(|n| n.parse().unwrap());
    // Per task; a little more than asked, so that the total is reached.
    let quota = total.map(|n| n.div_ceil(u64::from(WORKERS * TASKS)));
    let began = now_us();
    let start = began + 2_000_000;
    let until = start + SHORT_RUN.as_micros() as u64;

    let workers: Vec<_> = (0..WORKERS)
        .map(|p| {
            let env: Vec<(String, String)> = [
                ("CACHEWRIGHT_HISTORY_PROCESS", p.to_string()),
                ("CACHEWRIGHT_HISTORY_CACHE_URL", cache_redis.url()),
                ("CACHEWRIGHT_HISTORY_DB_URL", db.url()),
                ("CACHEWRIGHT_HISTORY_START_US", start.to_string()),
                ("CACHEWRIGHT_HISTORY_UNTIL_US", until.to_string()),
                (
                    "CACHEWRIGHT_HISTORY_OUT",
                    dir.path()
                        .join(format!("{p}.history"))
                        .display()
                        .to_string(),
                ),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .chain(quota.map(|q| ("CACHEWRIGHT_HISTORY_QUOTA".to_string(), q.to_string())))
            .collect();
            std::thread::spawn(move || {
                let env: Vec<(&str, &str)> =
                    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                run_test("workload::worker", &env)
            })
        })
        .collect();

    // Disturb the cache Redis every 1.5 s of the short run (every second of
    // a long one, however fast it goes), in turn: a restart (empty), then its
    // pub/sub clients killed.
    let every = if total.is_some() {
        1_000_000
    } else {
        1_500_000
    };
    let mut disturbances: Vec<Disturbance> = Vec::new();
    let mut next = start + every;
    while !workers.iter().all(|w| w.is_finished()) {
        if now_us() < next || (total.is_none() && next + 500_000 > until) {
            std::thread::sleep(Duration::from_millis(5));
            continue;
        }
        let from = now_us();
        let what = if disturbances.len() % 2 == 0 {
            cache_redis.restart();
            "restart"
        } else {
            let _: redis::Value = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("TYPE")
                .arg("pubsub")
                .query(&mut cache_redis.conn())
                .unwrap();
            "kill pubsub clients"
        };
        disturbances.push(Disturbance {
            what,
            span: (from, now_us()),
        });
        next += every;
    }
    let runs: Vec<_> = workers.into_iter().map(|w| w.join().unwrap()).collect();

    // The histories, and each worker's bus outages.
    let mut ops = Vec::new();
    let mut arrivals = Vec::new();
    let mut disturbed: Vec<Span> = disturbances.iter().map(|d| d.span).collect();
    for p in 0..WORKERS {
        let text = std::fs::read_to_string(dir.path().join(format!("{p}.history"))).unwrap();
        let mut down_since = None;
        for line in text.lines() {
            if let Some(op) = Op::parse(line) {
                ops.push(op);
            } else if let Some(a) = Arrival::parse(line) {
                arrivals.push(a);
            } else if let Some(bus) = line.strip_prefix("BUS ") {
                let f: Vec<&str> = bus.split(' ').collect();
                let at: u64 = f[1].parse().unwrap();
                match f[2] {
                    "down" => down_since = Some(at),
                    _ => {
                        if let Some(d) = down_since.take() {
                            disturbed.push((d, at));
                        }
                    }
                }
            }
        }
        if let Some(d) = down_since {
            disturbed.push((d, u64::MAX - 2_000_000));
        }
    }
    let elapsed = now_us() - start;
    let c = check(&ops, &disturbed);

    for (w, run) in runs.iter().enumerate() {
        println!("worker {w}: {}", run.report("WORKER"));
    }
    for d in &disturbances {
        println!(
            "{} at +{} ms, answering again {} ms later",
            d.what,
            (d.span.0 - start) / 1000,
            (d.span.1 - d.span.0) / 1000
        );
    }
    println!(
        "HISTORY processes={WORKERS} tasks={} ops={} reads={} writes={} violations={} impossible={} disturbances={} run={} ms",
        WORKERS * TASKS,
        ops.len(),
        c.reads,
        c.writes,
        c.violations.len(),
        c.impossible.len(),
        disturbances.len(),
        elapsed / 1000
    );
    println!(
        "PROPAGATION (write end -> first read of its version or later in another process; reads are samples, so an upper bound) counted={} excluded_near_disturbances={} unobserved={} p50={} us p99={} us max={} us; median time between two reads of one id in one process: {} us",
        c.delays.len(),
        c.excluded,
        c.unobserved,
        percentile(&c.delays, 50),
        percentile(&c.delays, 99),
        c.delays.last().copied().unwrap_or(0),
        c.read_interval_p50
    );
    // How long writes took (each waits for its invalidation to be
    // acknowledged), away from disturbances and in all.
    let near = |o: &Op| {
        disturbed
            .iter()
            .any(|&(a, b)| o.start < b.saturating_add(1_000_000) && o.end + 200_000 > a)
    };
    let mut calm: Vec<u64> = ops
        .iter()
        .filter(|o| o.write && !near(o))
        .map(|o| o.end - o.start)
        .collect();
    let mut all: Vec<u64> = ops
        .iter()
        .filter(|o| o.write)
        .map(|o| o.end - o.start)
        .collect();
    calm.sort_unstable();
    all.sort_unstable();
    println!(
        "WRITE DURATION (database write + confirmed invalidation) away from disturbances: counted={} p50={} us p99={} us max={} us; all: p50={} us p99={} us max={} us",
        calm.len(),
        percentile(&calm, 50),
        percentile(&calm, 99),
        calm.last().copied().unwrap_or(0),
        percentile(&all, 50),
        percentile(&all, 99),
        all.last().copied().unwrap_or(0)
    );
    // The slowest writes and the disturbance nearest each (a write waits
    // out a lease only for a process that stopped answering).
    let mut slow: Vec<&Op> = ops
        .iter()
        .filter(|o| o.write && o.end - o.start >= 100_000)
        .collect();
    slow.sort_by_key(|o| std::cmp::Reverse(o.end - o.start));
    for o in slow.iter().take(5) {
        let nearest = disturbances
            .iter()
            .min_by_key(|d| d.span.0.abs_diff(o.start))
            .map(|d| format!("{} at +{} ms", d.what, (d.span.0 - start) / 1000))
            .unwrap_or_default();
        println!(
            "SLOW WRITE at +{} ms took {} ms ({} slower than 100 ms in all); nearest disturbance: {nearest}",
            (o.start - start) / 1000,
            (o.end - o.start) / 1000,
            slow.len()
        );
    }
    let delivery = bus_delivery(&ops, &arrivals, &disturbed);
    println!(
        "BUS DELIVERY (write end -> its message reaching a bystander subscriber in another process; negative: before the writer heard back) counted={} p50={} us p99={} us max={} us",
        delivery.len(),
        delivery.get(delivery.len() / 2).copied().unwrap_or(0),
        delivery.get(delivery.len() * 99 / 100).copied().unwrap_or(0),
        delivery.last().copied().unwrap_or(0),
    );
    // How many violations to print (all of them: CACHEWRIGHT_HISTORY_SHOW=all).
    let show = match env("CACHEWRIGHT_HISTORY_SHOW").as_deref() {
        Some("all") => usize::MAX,
        Some(n) => n.parse().unwrap(),
        None => 20,
    };
    let mut kinds: HashMap<&str, usize> = HashMap::new();
    for (i, (r, w)) in c.violations.iter().enumerate() {
        let (kind, how) = explain(r, w, &arrivals, &disturbed);
        *kinds.entry(kind).or_default() += 1;
        if i < show {
            println!(
                "VIOLATION at +{} ms: {} began {} us after {} ended; {how}",
                (r.start - start) / 1000,
                r.describe(),
                r.start - w.end,
                w.describe()
            );
        }
    }
    if !kinds.is_empty() {
        println!("VIOLATIONS BY KIND {kinds:?}");
    }
    for r in c.impossible.iter().take(20) {
        println!("IMPOSSIBLE {}", r.describe());
    }

    assert!(
        c.impossible.is_empty(),
        "the history is inconsistent (a recording bug): {} reads of versions not yet written",
        c.impossible.len()
    );
    // The rule, in every process: the writing one and the other.
    let (same, other): (Vec<_>, Vec<_>) = c
        .violations
        .iter()
        .partition(|(r, w)| r.process == w.process);
    let mut lags: Vec<u64> = other.iter().map(|(r, w)| r.start - w.end).collect();
    lags.sort_unstable();
    println!(
        "CROSS-PROCESS reads that served another process's older copy: {} of {} reads; lag after the write ended p50={} us p99={} us max={} us",
        other.len(),
        c.reads,
        percentile(&lags, 50),
        percentile(&lags, 99),
        lags.last().copied().unwrap_or(0)
    );
    assert!(
        same.is_empty(),
        "{} reads in the writing process returned a version older than one whose write had ended before they began (first: {:?})",
        same.len(),
        same.first()
    );
    assert!(
        other.is_empty(),
        "{} reads in another process returned a version older than one whose write had ended before they began (first: {:?})",
        other.len(),
        other.first()
    );
    let expected = total.unwrap_or(2_000);
    assert!(
        ops.len() as u64 >= expected,
        "only {} operations ran (expected at least {expected})",
        ops.len()
    );
    assert!(c.writes >= ops.len() / 50, "too few writes: {}", c.writes);
    assert!(!disturbances.is_empty(), "the cache Redis was disturbed");
}
