//! Hit ratios of cachewright's in-process layer against other caches, on
//! deterministic traces, each cache holding 10,000 entries.
//!
//! Every trace is replayed through every contender, each starting empty; a
//! contender's hit ratio is hits / requests (compulsory misses included).
//! The bench prints two markdown tables: hit ratios (one row per trace, one
//! column per contender, 3 decimals) and each contender's time per request
//! (the bench thread's CPU time, see `common/cpu_time.rs`, so that other
//! processes on a shared machine do not land in it; every contender here
//! does all its work on the calling thread).
//!
//! Traces (2,000,000 requests each, keys `u64`, drawn from a seeded
//! splitmix64, so every run replays the same requests; Zipf keys are sampled
//! by inverse CDF, a binary search over precomputed cumulative weights
//! `1 / rank^s`; key = rank, 0 the most popular):
//!
//! 1. `Zipf 0.99`: Zipf, s = 0.99, over 1,000,000 keys.
//! 2. `Zipf 0.8`: Zipf, s = 0.8, over 1,000,000 keys.
//! 3. `Zipf 0.99 + scans`: blocks of 100,000 Zipf 0.99 requests, each
//!    followed by a scan of 20,000 keys never seen before (fresh ids from
//!    10^9 up, each requested once), up to 2,000,000 requests in all (so
//!    about 1/6 of the requests are one-off scan keys). Scan resistance.
//! 4. `loop 12k`: 0, 1, ..., 11,999, 0, 1, ... — a loop 20 % larger than
//!    the cache, where LRU (and CLOCK) get nothing.
//! 5. `recency`: temporal locality without long-term popularity, as in a
//!    feed or a session store. With probability 0.6 a request re-requests
//!    the key of the request `d` steps back, `d` geometric with mean 10,000
//!    (so recently requested keys are likely, and a key requested often
//!    lately more likely still); otherwise (and when `d` reaches before the
//!    trace's start) a brand-new key (ids from 10^9 up). About 40 % of the
//!    requests are first requests, so no cache gets above ~0.6. Recency
//!    (LRU) does well here; frequency-based admission, which turns away
//!    new keys, is at a disadvantage.
//! 6. `Zipf 1.2`: Zipf, s = 1.2, over 1,000,000 keys.
//!
//! Contenders:
//!
//! * `optimum`: Belady's offline MIN, knowing the future: each request's
//!   next use is precomputed; on a miss with a full cache, the key needed
//!   farthest in the future, the requested key included, is left out (so a
//!   key needed later than every resident is not admitted: the bound for
//!   caches that may refuse admission, as moka's and quick_cache's do).
//!   Its time is not shown.
//! * `cachewright`: a sync `#[cachewright::cached(key = "k:<id>", capacity =
//!   10_000, cache = ...)]` function per trace (one use case, so one empty
//!   in-process layer, per trace), no TTL, in an explicit in-process-only
//!   `Cache` (no layers, whatever `CACHEWRIGHT_*` says); its loader counts
//!   its runs, and hits = requests - loader runs. It measures whatever
//!   eviction the library's L1 does (sharded: its capacity is split across
//!   shards).
//! * `moka`: `moka::sync::Cache` with `max_capacity` 10,000 (TinyLFU
//!   admission, LRU eviction): `get`, and `insert` on a miss.
//!   `run_pending_tasks()` is never called: moka 0.12 runs its maintenance
//!   (applying the recorded reads and writes to its frequency sketch and
//!   queues, admission, eviction) itself, on the calling thread, once 64
//!   reads or 64 writes are pending (or 300 ms have passed), which is how it
//!   runs in an application. Its key hasher (and so its sketch's collisions)
//!   is seeded at random per process, so its ratios vary a little from run to
//!   run: within ~0.001 on the Zipf traces, but 0.71–0.79 on `loop 12k`
//!   (cachewright's and quick_cache's vary by ~0.001 for the same reason).
//! * `moka (eager)`, only with `-- --moka-eager`: the same, calling
//!   `run_pending_tasks()` after every request, so that every admission
//!   decision sees every earlier request (moka at its most accurate, at a
//!   cost in time: it adds ~20 s of CPU). It differs from `moka` by
//!   under 0.01 except on `loop 12k` (0.826: with exact frequencies it keeps
//!   one fixed set of keys, close to the optimum).
//! * `quick_cache`: `quick_cache::sync::Cache` of capacity 10,000 (a
//!   modified CLOCK-Pro, close to S3-FIFO, with ghost entries): `get`, and
//!   `insert` on a miss.
//! * `LRU`: the `lru` crate's `LruCache` of 10,000: `get`, `put` on a miss.
//!
//! Run: `cargo bench --bench hit_ratio` (about 45 s of CPU, most of it in
//! cachewright's and moka's runs; add `-- --moka-eager` for the column
//! above).

use std::collections::{BinaryHeap, HashMap};
use std::hint::black_box;
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use cachewright::{cached, Cache};

#[path = "common/cpu_time.rs"]
#[allow(dead_code)] // only `now` is used here
mod cpu_time;

/// Entries every contender holds.
const CAPACITY: usize = 10_000;
/// Requests per trace.
const REQUESTS: usize = 2_000_000;
/// Keys of the Zipf traces.
const ZIPF_KEYS: usize = 1_000_000;
/// The first id of keys that are never drawn from a Zipf distribution
/// (scan keys, the recency trace's new keys).
const FRESH_IDS: u64 = 1_000_000_000;

// ---------------------------------------------------------------- traces --

/// splitmix64: a small, seeded, deterministic generator.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1), 53 bits.
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// Zipf over ranks `0..n` with exponent `s`, sampled by inverse CDF.
struct Zipf {
    /// `cdf[i]`: probability of a rank `<= i`; the last is exactly 1.
    cdf: Vec<f64>,
}

impl Zipf {
    fn new(n: usize, s: f64) -> Self {
        let mut cdf = Vec::with_capacity(n);
        let mut sum = 0.0;
        for rank in 1..=n {
            sum += (rank as f64).powf(-s);
            cdf.push(sum);
        }
        for c in &mut cdf {
            *c /= sum;
        }
        cdf[n - 1] = 1.0;
        Zipf { cdf }
    }

    fn sample(&self, rng: &mut SplitMix64) -> u64 {
        let u = rng.next_f64();
        // The first rank whose cumulative weight exceeds `u`.
        self.cdf.partition_point(|&c| c <= u) as u64
    }
}

fn zipf_trace(s: f64, seed: u64) -> Vec<u64> {
    let zipf = Zipf::new(ZIPF_KEYS, s);
    let mut rng = SplitMix64(seed);
    (0..REQUESTS).map(|_| zipf.sample(&mut rng)).collect()
}

/// Zipf 0.99 in blocks of [`SCAN_EVERY`] requests, each followed by a scan
/// of [`SCAN_LEN`] fresh keys.
fn zipf_scans_trace(seed: u64) -> Vec<u64> {
    const SCAN_EVERY: usize = 100_000;
    const SCAN_LEN: usize = 20_000;
    let zipf = Zipf::new(ZIPF_KEYS, 0.99);
    let mut rng = SplitMix64(seed);
    let mut fresh = FRESH_IDS;
    (0..REQUESTS)
        .map(|i| {
            if i % (SCAN_EVERY + SCAN_LEN) < SCAN_EVERY {
                zipf.sample(&mut rng)
            } else {
                fresh += 1;
                fresh
            }
        })
        .collect()
}

fn loop_trace(len: u64) -> Vec<u64> {
    (0..REQUESTS as u64).map(|i| i % len).collect()
}

/// See the file's doc, trace 5.
fn recency_trace(seed: u64) -> Vec<u64> {
    const REUSE: f64 = 0.6;
    const MEAN_DISTANCE: f64 = 10_000.0;
    let mut rng = SplitMix64(seed);
    let mut fresh = FRESH_IDS;
    let log_q = (1.0 - 1.0 / MEAN_DISTANCE).ln();
    let mut trace = Vec::with_capacity(REQUESTS);
    for t in 0..REQUESTS {
        let key = if rng.next_f64() < REUSE {
            // Geometric on 1, 2, ... with mean MEAN_DISTANCE.
            let d = 1 + ((1.0 - rng.next_f64()).ln() / log_q) as usize;
            (d <= t).then(|| trace[t - d])
        } else {
            None
        };
        trace.push(key.unwrap_or_else(|| {
            fresh += 1;
            fresh
        }));
    }
    trace
}

struct Trace {
    name: &'static str,
    keys: Vec<u64>,
}

fn traces() -> Vec<Trace> {
    vec![
        Trace {
            name: "Zipf 0.99",
            keys: zipf_trace(0.99, 1),
        },
        Trace {
            name: "Zipf 0.8",
            keys: zipf_trace(0.8, 2),
        },
        Trace {
            name: "Zipf 0.99 + scans",
            keys: zipf_scans_trace(3),
        },
        Trace {
            name: "loop 12k",
            keys: loop_trace(12_000),
        },
        Trace {
            name: "recency",
            keys: recency_trace(5),
        },
        Trace {
            name: "Zipf 1.2",
            keys: zipf_trace(1.2, 6),
        },
    ]
}

// ----------------------------------------------------------- contenders --

/// Belady's MIN (with bypass): the hits of an offline optimal cache.
fn optimum(trace: &[u64]) -> u64 {
    const NEVER: usize = usize::MAX;
    // next[i]: the index of the next request of trace[i]'s key.
    let mut next = vec![NEVER; trace.len()];
    let mut seen: HashMap<u64, usize> = HashMap::new();
    for (i, &key) in trace.iter().enumerate().rev() {
        if let Some(j) = seen.insert(key, i) {
            next[i] = j;
        }
    }
    drop(seen);

    // Residents and their next use; a max-heap of (next use, key) whose
    // entries are stale when the resident's next use moved on.
    let mut resident: HashMap<u64, usize> = HashMap::with_capacity(CAPACITY + 1);
    let mut heap: BinaryHeap<(usize, u64)> = BinaryHeap::new();
    let mut hits = 0;
    for (&key, &nx) in trace.iter().zip(&next) {
        if let Some(slot) = resident.get_mut(&key) {
            hits += 1;
            *slot = nx;
            heap.push((nx, key));
            continue;
        }
        if resident.len() < CAPACITY {
            resident.insert(key, nx);
            heap.push((nx, key));
            continue;
        }
        let (far, victim) = loop {
            let top = *heap.peek().expect("a full cache has heap entries");
            if resident.get(&top.1) == Some(&top.0) {
                break top;
            }
            heap.pop();
        };
        if nx >= far {
            // Needed no sooner than any resident: not admitted.
            continue;
        }
        heap.pop();
        resident.remove(&victim);
        resident.insert(key, nx);
        heap.push((nx, key));
    }
    hits
}

/// A cache under test: the hits it scores on a trace.
type Run = fn(usize, &[u64]) -> u64;

/// Loader runs of every cachewright function (the traces run one at a time).
static LOADS: AtomicU64 = AtomicU64::new(0);

/// In process only: a cache with no layers, whatever the environment says.
static CW: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .name("hit-ratio")
        .capacity(CAPACITY)
        .build()
});

/// One cached function per trace, so each trace starts on an empty use case.
macro_rules! cachewright_fns {
    ($($name:ident),* $(,)?) => {
        $(
            #[cached(key = "k:<id>", capacity = 10_000, cache = CW)]
            fn $name(id: u64) -> u64 {
                LOADS.fetch_add(1, Relaxed);
                id
            }
        )*
        const CW_FNS: &[fn(u64) -> u64] = &[$($name),*];
    };
}

cachewright_fns!(cw_0, cw_1, cw_2, cw_3, cw_4, cw_5);

fn cachewright(trace_no: usize, trace: &[u64]) -> u64 {
    let f = CW_FNS[trace_no];
    let before = LOADS.load(Relaxed);
    for &key in trace {
        black_box(f(key));
    }
    trace.len() as u64 - (LOADS.load(Relaxed) - before)
}

fn moka(_: usize, trace: &[u64]) -> u64 {
    moka_run(trace, false)
}

fn moka_eager(_: usize, trace: &[u64]) -> u64 {
    moka_run(trace, true)
}

/// Requests each key of `trace`: a hit when `get` finds it, else `insert`
/// it. Returns the hits.
fn replay(
    trace: &[u64],
    mut get: impl FnMut(u64) -> Option<u64>,
    mut insert: impl FnMut(u64),
) -> u64 {
    let mut hits = 0;
    for &key in trace {
        match get(key) {
            Some(v) => {
                hits += 1;
                black_box(v);
            }
            None => insert(key),
        }
    }
    hits
}

/// moka's hits; with `eager`, its maintenance runs after every request.
fn moka_run(trace: &[u64], eager: bool) -> u64 {
    let cache = moka::sync::Cache::<u64, u64>::new(CAPACITY as u64);
    replay(
        trace,
        |key| {
            let found = cache.get(&key);
            if eager && found.is_some() {
                cache.run_pending_tasks();
            }
            found
        },
        |key| {
            cache.insert(key, key);
            if eager {
                cache.run_pending_tasks();
            }
        },
    )
}

fn quick_cache(_: usize, trace: &[u64]) -> u64 {
    let cache = quick_cache::sync::Cache::<u64, u64>::new(CAPACITY);
    replay(trace, |key| cache.get(&key), |key| cache.insert(key, key))
}

fn lru(_: usize, trace: &[u64]) -> u64 {
    let cache = std::cell::RefCell::new(lru::LruCache::<u64, u64>::new(
        NonZeroUsize::new(CAPACITY).unwrap(),
    ));
    replay(
        trace,
        |key| cache.borrow_mut().get(&key).copied(),
        |key| {
            cache.borrow_mut().put(key, key);
        },
    )
}

const CONTENDERS: &[(&str, Run)] = &[
    ("cachewright", cachewright),
    ("moka", moka),
    ("quick_cache", quick_cache),
    ("LRU", lru),
];

// ------------------------------------------------------------------ main --

fn main() {
    let start = Instant::now();
    let traces = traces();
    assert!(traces.len() <= CW_FNS.len(), "one cachewright fn per trace");
    let mut contenders = CONTENDERS.to_vec();
    if std::env::args().any(|arg| arg == "--moka-eager") {
        contenders.push(("moka (eager)", moka_eager as Run));
    }

    // ratios[t][c] (c = 0: optimum) and ns_per_request[t][c - 1].
    let mut ratios = Vec::new();
    let mut times = Vec::new();
    for (t, trace) in traces.iter().enumerate() {
        let n = trace.keys.len() as f64;
        let mut row = vec![optimum(&trace.keys) as f64 / n];
        let mut time_row = Vec::new();
        for (_, run) in &contenders {
            let t0 = cpu_time::now();
            let hits = run(t, &trace.keys);
            let took: Duration = cpu_time::now().saturating_sub(t0);
            row.push(hits as f64 / n);
            time_row.push(took.as_nanos() as f64 / n);
        }
        ratios.push(row);
        times.push(time_row);
    }

    let names: Vec<&str> = contenders.iter().map(|(name, _)| *name).collect();
    println!("Hit ratio (hits / requests), {CAPACITY} entries, {REQUESTS} requests per trace\n");
    print_header(std::iter::once("optimum").chain(names.iter().copied()));
    for (trace, row) in traces.iter().zip(&ratios) {
        let cells: Vec<String> = row.iter().map(|r| format!("{r:.3}")).collect();
        println!("| {} | {} |", trace.name, cells.join(" | "));
    }

    println!("\nTime per request (ns, bench thread CPU time)\n");
    print_header(names.iter().copied());
    for (trace, row) in traces.iter().zip(&times) {
        let cells: Vec<String> = row.iter().map(|ns| format!("{ns:.0}")).collect();
        println!("| {} | {} |", trace.name, cells.join(" | "));
    }
    println!("\nTotal: {:.1} s", start.elapsed().as_secs_f64());
}

fn print_header<'a>(columns: impl Iterator<Item = &'a str>) {
    let columns: Vec<&str> = columns.collect();
    println!("| trace | {} |", columns.join(" | "));
    println!("|---|{}", "---:|".repeat(columns.len()));
}
