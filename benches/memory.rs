//! Resident memory per entry of in-process caches holding 1,000,000 entries.
//!
//! Every contender is filled with 1,000,000 distinct `u64` keys, each with a
//! 32-byte plain-data value ([`Plain`], built by [`plain`] for every
//! contender alike):
//!
//! * `HashMap`: `std::collections::HashMap<u64, Plain>` (the floor);
//! * `quick_cache`: `quick_cache::sync::Cache<u64, Plain>`, capacity
//!   1,000,000 (its capacity is split over shards: it holds slightly fewer);
//! * `moka`: `moka::sync::Cache<u64, Plain>`, max capacity 1,000,000
//!   (`run_pending_tasks` after the fill, so every insert is applied);
//! * `moka_ttl`: the same with `time_to_live(300 s)`, as the `hot_hit` bench
//!   builds it (a TTL costs moka one more node per entry);
//! * `cachewright_exact`: `#[cachewright::cached(key = "k:<id>", capacity =
//!   1_000_000)] fn e(id: u64) -> Plain`, called once per id. Its capacity
//!   is split exactly across L1's 64 shards, so keys hashing unevenly evict
//!   a few entries before it is full: it holds slightly fewer than
//!   1,000,000 (shown, not asserted);
//! * `cachewright`: the same with `capacity = 1_100_000` ([`f`]), room
//!   enough that every entry is held (asserted);
//! * `cachewright_tags`: as `cachewright` with `tags = ["org:<id>"]` ([`g`]),
//!   a second tag besides the entity tag `k:<id>`.
//!
//! The three functions have names of one length, so their URNs
//! (`urn:cachewright:v1:k:<id>#memory::f`) are of one length. They store into
//! their own cache, built with no remote layer, so L1 is the only layer
//! whatever the environment says (checked). The fill of `cachewright` and
//! `cachewright_tags` is verified: the use case's stats must report
//! 1,000,000 entries held, no eviction and one loader run per id, and
//! (after the measurement) a second call of every id must run no loader.
//!
//! Method: one OS process per contender and run, so that allocator state
//! left by one contender does not colour another. The bench re-executes
//! itself (`std::env::current_exe()`) with `CACHEWRIGHT_MEMORY_CONTENDER`
//! naming the contender; the child reads its resident set size (`VmRSS` of
//! `/proc/self/status`, Linux only) before building the cache, fills it,
//! reads it again, and reports `(after - before) / 1,000,000` bytes per
//! entry. With glibc it also reports heap bytes in use per entry
//! (`mallinfo2`: `uordblks + hblkhd`, malloc chunks with their headers,
//! whether or not their pages were touched), which separates what the cache
//! allocates from how much of it is resident. The parent runs every
//! contender [`RUNS`] times and prints a markdown table of medians and
//! ranges.
//!
//! `-- --sizes` instead runs each contender once with allocations counted
//! (a wrapper around the system allocator, inert in the measured runs) and
//! prints the live allocations the fill left, per entry, by glibc chunk size
//! (request + 8-byte header, rounded up to 16, at least 32): the
//! per-allocation account of the figures. Any other argument picks
//! contenders by substring.
//!
//! Run: `cargo bench --bench memory` (`cargo bench --bench memory --
//! --sizes cachewright` for the allocation account).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::LazyLock;

use cachewright::Cache;

/// How many entries each contender holds.
const N: u64 = 1_000_000;

/// How many times each contender runs (each in its own process).
const RUNS: usize = 3;

/// The variable naming the contender a child process measures.
const CONTENDER_VAR: &str = "CACHEWRIGHT_MEMORY_CONTENDER";

/// Set in a child: count its live allocations by size (`--sizes`).
const SIZES_VAR: &str = "CACHEWRIGHT_MEMORY_SIZES";

const CONTENDERS: [&str; 7] = [
    "HashMap",
    "quick_cache",
    "moka",
    "moka_ttl",
    "cachewright_exact",
    "cachewright",
    "cachewright_tags",
];

/// The value every cache holds: 32 bytes of plain data.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Plain {
    id: u64,
    score: u64,
    flags: [u32; 4],
}

const _: () = assert!(std::mem::size_of::<Plain>() == 32);

/// The value of `id`, the same for every contender.
#[inline(never)]
fn plain(id: u64) -> Plain {
    Plain {
        id,
        score: id.wrapping_mul(0x9E37_79B9_7F4A_7C15),
        flags: [id as u32, (id >> 8) as u32, 7, 0],
    }
}

/// The cachewright functions' cache: no remote layer, so in process only.
static CACHE: LazyLock<Cache> = LazyLock::new(|| Cache::builder().name("memory").build());

/// Loader runs of [`e`], [`f`] and [`g`].
static LOADS: AtomicU64 = AtomicU64::new(0);

#[cachewright::cached(key = "k:<id>", capacity = 1_000_000, cache = CACHE)]
fn e(id: u64) -> Plain {
    LOADS.fetch_add(1, Ordering::Relaxed);
    plain(id)
}

#[cachewright::cached(key = "k:<id>", capacity = 1_100_000, cache = CACHE)]
fn f(id: u64) -> Plain {
    LOADS.fetch_add(1, Ordering::Relaxed);
    plain(id)
}

#[cachewright::cached(
    key = "k:<id>",
    tags = ["org:<id>"],
    capacity = 1_100_000,
    cache = CACHE
)]
fn g(id: u64) -> Plain {
    LOADS.fetch_add(1, Ordering::Relaxed);
    plain(id)
}

/// The system allocator, counting live allocations by glibc chunk size while
/// [`COUNTING`] is set (the `--sizes` mode; off for the measured runs, where
/// it costs one relaxed load per call and changes no allocation).
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);

/// Chunk sizes up to this are counted one by one; larger ones together.
const SMALL: usize = 1024;

/// Live allocations per chunk size / 16 (up to [`SMALL`]).
static LIVE: [AtomicI64; SMALL / 16 + 1] = [const { AtomicI64::new(0) }; SMALL / 16 + 1];
/// Live bytes of larger allocations (requested sizes).
static LIVE_LARGE: AtomicI64 = AtomicI64::new(0);

/// The size of the glibc chunk serving a request of `size` bytes on 64-bit
/// Linux: the request plus an 8-byte header, rounded up to 16, at least 32.
const fn chunk(size: usize) -> usize {
    let c = (size + 8 + 15) & !15;
    if c < 32 {
        32
    } else {
        c
    }
}

impl Counting {
    fn count(size: usize, by: i64) {
        if !COUNTING.load(Ordering::Relaxed) {
            return;
        }
        let c = chunk(size);
        if c <= SMALL {
            LIVE[c / 16].fetch_add(by, Ordering::Relaxed);
        } else {
            LIVE_LARGE.fetch_add(by * size as i64, Ordering::Relaxed);
        }
    }
}

// SAFETY: every call is forwarded to `System` unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::count(layout.size(), 1);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::count(layout.size(), 1);
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        Self::count(layout.size(), -1);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        Self::count(layout.size(), -1);
        Self::count(new_size, 1);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Prints the live allocations made since counting began, per entry.
fn print_sizes() {
    let n = N as f64;
    let mut total = 0.0;
    for (i, live) in LIVE.iter().enumerate() {
        let count = live.load(Ordering::Relaxed);
        if count.unsigned_abs() >= N / 100 {
            let bytes = (count * 16 * i as i64) as f64 / n;
            total += bytes;
            println!(
                "  {:>4}-byte chunks: {:.3} per entry = {bytes:.1} B/entry",
                i * 16,
                count as f64 / n
            );
        }
    }
    let large = LIVE_LARGE.load(Ordering::Relaxed) as f64 / n;
    total += large;
    println!("  large (> {SMALL} B, requested sizes): {large:.1} B/entry");
    println!("  total: {total:.1} B/entry");
}

/// The resident set size of this process, in bytes (`VmRSS`).
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status")
        .expect("/proc/self/status (this bench needs Linux)");
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .expect("a VmRSS line");
    let kb: u64 = line
        .trim_start_matches("VmRSS:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .expect("VmRSS in kB");
    kb * 1024
}

/// Heap bytes in use (malloc chunks, headers included), where glibc says.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn heap() -> Option<u64> {
    #[repr(C)]
    struct MallInfo2 {
        arena: usize,
        ordblks: usize,
        smblks: usize,
        hblks: usize,
        hblkhd: usize,
        usmblks: usize,
        fsmblks: usize,
        uordblks: usize,
        fordblks: usize,
        keepcost: usize,
    }
    extern "C" {
        fn mallinfo2() -> MallInfo2;
    }
    // SAFETY: mallinfo2 (glibc 2.33+) takes nothing and returns a plain struct.
    let m = unsafe { mallinfo2() };
    Some((m.uordblks + m.hblkhd) as u64)
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn heap() -> Option<u64> {
    None
}

/// Fills the contender's cache with [`N`] entries between two readings, and
/// prints `bytes/entry resident`, `bytes/entry heap` and the entries held.
fn child(contender: &str) {
    let sizes = std::env::var_os(SIZES_VAR).is_some();
    COUNTING.store(sizes, Ordering::Relaxed);
    let (rss0, heap0) = (rss(), heap());
    // Each arm returns the cache (kept alive until after the second
    // reading) and how many entries it holds.
    // The cachewright function whose entries are all called again after the
    // second reading: each call must be a hit.
    let mut recheck: Option<fn(u64) -> Plain> = None;
    let (keep, held): (Box<dyn std::any::Any>, u64) = match contender {
        "HashMap" => {
            let mut m = HashMap::new();
            for id in 0..N {
                m.insert(id, plain(id));
            }
            let held = m.len() as u64;
            (Box::new(m), held)
        }
        "quick_cache" => {
            let c = quick_cache::sync::Cache::<u64, Plain>::new(N as usize);
            for id in 0..N {
                c.insert(id, plain(id));
            }
            let held = c.len() as u64;
            (Box::new(c), held)
        }
        "moka" => {
            let c = moka::sync::Cache::<u64, Plain>::new(N);
            for id in 0..N {
                c.insert(id, plain(id));
            }
            c.run_pending_tasks();
            let held = c.entry_count();
            (Box::new(c), held)
        }
        "moka_ttl" => {
            let c = moka::sync::Cache::<u64, Plain>::builder()
                .max_capacity(N)
                .time_to_live(std::time::Duration::from_secs(300))
                .build();
            for id in 0..N {
                c.insert(id, plain(id));
            }
            c.run_pending_tasks();
            let held = c.entry_count();
            (Box::new(c), held)
        }
        "cachewright_exact" | "cachewright" | "cachewright_tags" => {
            let call: fn(u64) -> Plain = match contender {
                "cachewright_exact" => e,
                "cachewright" => f,
                _ => g,
            };
            for id in 0..N {
                std::hint::black_box(call(id));
            }
            let must_hold_all = contender != "cachewright_exact";
            if must_hold_all {
                recheck = Some(call);
            }
            (Box::new(()), cachewright_held(must_hold_all))
        }
        other => panic!("unknown contender {other:?}"),
    };
    let (rss1, heap1) = (rss(), heap());
    COUNTING.store(false, Ordering::Relaxed);
    if sizes {
        print_sizes();
    }
    if let Some(call) = recheck {
        for id in 0..N {
            assert_eq!(call(id), plain(id));
        }
        assert_eq!(LOADS.load(Ordering::Relaxed), N, "a second call is a hit");
    }
    drop(keep);
    let per = |a: u64, b: u64| (b as f64 - a as f64) / N as f64;
    let heap_per = match (heap0, heap1) {
        (Some(a), Some(b)) => format!("{:.1}", per(a, b)),
        _ => "-".into(),
    };
    println!("{:.1} {heap_per} {held}", per(rss0, rss1));
}

/// How many entries the cachewright use case holds; with `must_hold_all`,
/// checks that it holds every one.
fn cachewright_held(must_hold_all: bool) -> u64 {
    assert!(
        CACHE.layer_stats().is_empty(),
        "the bench cache has a remote layer; L1 must be the only one"
    );
    let stats = CACHE
        .stats()
        .into_iter()
        .find(|s| s.use_case != "direct")
        .expect("the use case's stats");
    assert_eq!(LOADS.load(Ordering::Relaxed), N, "one load per id");
    if !must_hold_all {
        eprintln!(
            "{}: {} entries held, {} evicted",
            stats.use_case, stats.size, stats.evictions
        );
        return stats.size as u64;
    }
    assert_eq!(stats.evictions, 0, "nothing evicted: {stats:?}");
    assert_eq!(stats.size as u64, N, "every entry held: {stats:?}");
    stats.size as u64
}

/// One contender's runs: resident and heap bytes per entry, entries held.
struct Runs {
    rss: Vec<f64>,
    heap: Vec<Option<f64>>,
    held: Vec<u64>,
}

fn run_child(contender: &str, sizes: bool) -> (f64, Option<f64>, u64) {
    let exe = std::env::current_exe().expect("the bench's own path");
    let mut cmd = Command::new(exe);
    cmd.env(CONTENDER_VAR, contender).env_remove(SIZES_VAR);
    if sizes {
        cmd.env(SIZES_VAR, "1");
    }
    let out = cmd.output().expect("re-executing the bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{contender} failed: {}\n{stdout}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    if sizes {
        println!("{contender}: live allocations after the fill");
        for l in stdout.lines().filter(|l| l.starts_with("  ")) {
            println!("{l}");
        }
    }
    let line = stdout.lines().last().unwrap_or_default();
    let mut fields = line.split_whitespace();
    let mut next = || fields.next().unwrap_or_default().to_string();
    let rss = next().parse().expect("bytes per entry");
    let heap = next().parse().ok();
    let held = next().parse().expect("entries held");
    (rss, heap, held)
}

fn median_range(mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!("{:.1} ({:.1}-{:.1})", v[v.len() / 2], v[0], v[v.len() - 1])
}

fn main() {
    if let Ok(contender) = std::env::var(CONTENDER_VAR) {
        child(&contender);
        return;
    }
    // `cargo bench` passes `--bench`; a filter (any other argument) picks
    // contenders by substring.
    let args: Vec<String> = std::env::args().skip(1).collect();
    let sizes = args.iter().any(|a| a == "--sizes");
    let filters: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let chosen: Vec<&str> = CONTENDERS
        .into_iter()
        .filter(|c| filters.is_empty() || filters.iter().any(|f| c.contains(f.as_str())))
        .collect();
    if sizes {
        for c in &chosen {
            run_child(c, true);
        }
        return;
    }
    let mut results = Vec::new();
    for c in &chosen {
        let mut runs = Runs {
            rss: Vec::new(),
            heap: Vec::new(),
            held: Vec::new(),
        };
        for i in 0..RUNS {
            let (rss, heap, held) = run_child(c, false);
            eprintln!(
                "{c} run {}: {rss:.1} B/entry resident, heap {heap:?}, {held} held",
                i + 1
            );
            runs.rss.push(rss);
            runs.heap.push(heap);
            runs.held.push(held);
        }
        results.push((c, runs));
    }
    println!();
    println!(
        "Bytes per entry, {N} entries (`u64` key, 32-byte value), median (range) of {RUNS} processes:"
    );
    println!();
    println!("| cache | resident bytes/entry | heap bytes/entry | entries held |");
    println!("|---|---:|---:|---:|");
    for (c, runs) in results {
        let heap = match runs.heap.iter().copied().collect::<Option<Vec<_>>>() {
            Some(h) => median_range(h),
            None => "-".into(),
        };
        let (lo, hi) = (
            runs.held.iter().min().copied().unwrap_or_default(),
            runs.held.iter().max().copied().unwrap_or_default(),
        );
        let held = if lo == hi {
            lo.to_string()
        } else {
            format!("{lo}-{hi}")
        };
        println!("| {c} | {} | {heap} | {held} |", median_range(runs.rss));
    }
}
