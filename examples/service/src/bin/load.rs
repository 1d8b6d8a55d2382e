//! A load driver for the product service: `WORKERS` connections (keep-alive
//! HTTP/1.1 over loopback) send a mix of reads and writes for `DURATION`
//! seconds, ids drawn from a Zipf-like distribution (a few hot products, a long
//! tail, and some ids that do not exist). Every second it samples the
//! service's `/stats`; it writes one CSV line per second to `OUT` and a
//! summary line to standard output.
//!
//! Settings (environment): `URL` (default `127.0.0.1:3000`), `DURATION` (seconds,
//! default 20), `WORKERS` (32), `ROWS` (10000, as seeded), `WRITES` (percent of
//! requests that are writes, default 2), `MISSING` (percent of reads for
//! ids that do not exist, default 2), `OUT` (default `load.csv`), `LABEL`.

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cachewright_service_example::client::Conn;
use cachewright_service_example::Sample;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small xorshift generator: each worker its own.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The cumulative weights of ids 1..=rows under Zipf(s = 1).
fn zipf_cdf(rows: usize) -> Vec<f64> {
    let mut acc = 0.0;
    let mut cdf: Vec<f64> = (1..=rows)
        .map(|i| {
            acc += 1.0 / i as f64;
            acc
        })
        .collect();
    for c in &mut cdf {
        *c /= acc;
    }
    cdf
}

/// What one second of the run saw.
#[derive(Default)]
struct Second {
    latencies_us: Vec<u32>,
    errors: u64,
    not_found: u64,
}

fn percentile(sorted: &[u32], p: f64) -> u32 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn sample(host: &str) -> Option<Sample> {
    let mut c = Conn::open(host).await.ok()?;
    let (status, body) = c.send("GET", "/stats", "").await.ok()?;
    (status == 200).then(|| serde_json::from_slice(&body).ok())?
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let host: String = env("URL", "127.0.0.1:3000".to_owned());
    let seconds: u64 = env("DURATION", 20);
    let workers: usize = env("WORKERS", 32);
    let rows: usize = env("ROWS", 10_000);
    let writes: f64 = env("WRITES", 2.0) / 100.0;
    let missing: f64 = env("MISSING", 2.0) / 100.0;
    let out: String = env("OUT", "load.csv".to_owned());
    let label: String = env("LABEL", "run".to_owned());

    let cdf = Arc::new(zipf_cdf(rows));
    let stop = Arc::new(AtomicBool::new(false));
    let current = Arc::new(Mutex::new(Second::default()));
    let start_stats = sample(&host)
        .await
        .ok_or("the service does not answer /stats")?;
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (host, cdf, stop, current) = (host.clone(), cdf.clone(), stop.clone(), current.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng =
                Rng(0x9E37_79B9_7F4A_7C15 ^ (w as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
            let mut conn = Conn::open(&host).await?;
            while !stop.load(Ordering::Relaxed) {
                let u = rng.unit();
                let id = if rng.unit() < missing {
                    rows as u64 + 1 + rng.next() % 1000
                } else {
                    cdf.partition_point(|&c| c < u) as u64 + 1
                };
                let path = format!("/products/{id}");
                let t = Instant::now();
                let r = if rng.unit() < writes {
                    let body = format!("{{\"price_cents\":{}}}", 100 + rng.next() % 9900);
                    conn.send("PUT", &path, &body).await
                } else {
                    conn.send("GET", &path, "").await
                };
                let us = t.elapsed().as_micros().min(u32::MAX as u128) as u32;
                let broken = {
                    let mut s = current.lock().unwrap();
                    s.latencies_us.push(us);
                    match r {
                        Ok((200, _)) => false,
                        Ok((404, _)) => {
                            s.not_found += 1;
                            false
                        }
                        Ok(_) => {
                            s.errors += 1;
                            false
                        }
                        Err(_) => {
                            s.errors += 1;
                            true
                        }
                    }
                };
                if broken {
                    conn = Conn::open(&host).await?;
                }
            }
            Ok::<(), std::io::Error>(())
        }));
    }

    let mut csv = std::fs::File::create(&out)?;
    writeln!(
        csv,
        "label,second,requests,p50_us,p99_us,db_queries,errors,not_found,l1_hits,l1_misses,redis_hits"
    )?;
    let mut all: Vec<u32> = Vec::new();
    let (mut errors, mut last) = (0u64, start_stats);
    let begun = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    for second in 1..=seconds {
        tick.tick().await;
        let mut s = std::mem::take(&mut *current.lock().unwrap());
        s.latencies_us.sort_unstable();
        let now = sample(&host).await.unwrap_or(last);
        writeln!(
            csv,
            "{label},{second},{},{},{},{},{},{},{},{},{}",
            s.latencies_us.len(),
            percentile(&s.latencies_us, 0.5),
            percentile(&s.latencies_us, 0.99),
            now.db_queries - last.db_queries,
            s.errors,
            s.not_found,
            now.hits - last.hits,
            now.misses - last.misses,
            now.remote_hits - last.remote_hits,
        )?;
        last = now;
        errors += s.errors;
        all.extend_from_slice(&s.latencies_us);
    }
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    let elapsed = begun.elapsed().as_secs_f64();
    let end = sample(&host).await.ok_or("the service stopped answering")?;
    all.sort_unstable();
    let (hits, misses) = (end.hits - start_stats.hits, end.misses - start_stats.misses);
    let lookups = hits + misses;
    let hit_rate = if lookups == 0 {
        0.0
    } else {
        hits as f64 / lookups as f64
    };
    let queries = end.db_queries - start_stats.db_queries;
    println!(
        "| {label} | {:.0} | {:.1} % | {:.0} | {:.2} ms | {:.2} ms | {errors} |",
        all.len() as f64 / elapsed,
        hit_rate * 100.0,
        queries as f64 / elapsed,
        percentile(&all, 0.5) as f64 / 1000.0,
        percentile(&all, 0.99) as f64 / 1000.0,
    );
    Ok(())
}
