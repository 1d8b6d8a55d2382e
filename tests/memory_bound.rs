//! Byte bounds: `#[cached(max_bytes = ...)]` and `Cache::builder().max_bytes(..)`
//! keep what the in-process layer holds within the bound, measured by the
//! heap the entries really take (a counting allocator), not only by the
//! weights the cache adds up.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicI64, Ordering::Relaxed};
use std::sync::{LazyLock, Mutex};

use cachewright::{cached, Cache};

/// Counts the bytes allocated and not yet freed, by every thread.
struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counter only observes sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as i64, Relaxed);
        // SAFETY: the caller's layout contract is passed on as is.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as i64, Relaxed);
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The tests measure the whole process's heap: one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A page of `len(id)` bytes: sizes from 100 bytes to 20 KB, mixed.
fn page_of(id: u64) -> String {
    let len = 100 + (id.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) % 20_000;
    "x".repeat(len as usize)
}

const BOUND: u64 = 4 * 1024 * 1024;

static PAGES: LazyLock<Cache> =
    LazyLock::new(|| Cache::builder().namespace("pages").without_bus().build());

#[cached(key = "page:<id>", max_bytes = "4MiB", cache = PAGES, name = "page")]
fn page(id: u64) -> String {
    page_of(id)
}

#[test]
fn a_use_case_holds_within_its_byte_bound_values_of_mixed_sizes() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _ = page(0);
    let before = LIVE.load(Relaxed);
    let mut demanded = 0u64;
    for id in 1..3_000u64 {
        demanded += page(id).len() as u64;
    }
    let held = (LIVE.load(Relaxed) - before) as f64;
    let stats = PAGES.stats_for("page").expect("the use case's stats");
    assert!(
        demanded > 4 * BOUND,
        "the workload asks for more than the bound"
    );
    assert!(
        stats.bytes <= BOUND,
        "weights {} over the bound {BOUND}",
        stats.bytes
    );
    assert_eq!(stats.max_bytes, Some(BOUND));
    let bound = BOUND as f64;
    eprintln!(
        "use case: {held} heap bytes held ({:.3} of the bound), weights {}, {} entries",
        held / bound,
        stats.bytes,
        stats.size
    );
    assert!(
        held <= bound * 1.05,
        "{held} heap bytes held, bound {bound}: over by more than 5 %"
    );
    assert!(
        held >= bound * 0.85,
        "{held} heap bytes held: the bound is used"
    );
    assert!(
        stats.size > 100 && stats.size < 3_000,
        "{} entries",
        stats.size
    );
}

static BUDGET: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .namespace("budget")
        .max_bytes(BOUND)
        .without_bus()
        .build()
});

#[cached(key = "small:<id>", cache = BUDGET, name = "small")]
fn small(id: u64) -> String {
    page_of(id)[..100].to_string()
}

#[cached(key = "large:<id>", cache = BUDGET, name = "large")]
fn large(id: u64) -> String {
    page_of(id)
}

#[test]
fn a_cache_budget_holds_across_its_use_cases() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let _ = (small(0), large(0));
    let before = LIVE.load(Relaxed);
    for id in 1..3_000u64 {
        let _ = large(id);
        let _ = small(id);
    }
    let held = (LIVE.load(Relaxed) - before) as f64;
    let stats = BUDGET.stats();
    let weights: u64 = stats.iter().map(|s| s.bytes).sum();
    let of = |name: &str| stats.iter().find(|s| s.use_case == name).map(|s| s.size);
    eprintln!(
        "budget: {held} heap bytes held ({:.3} of the budget), weights {weights}",
        held / BOUND as f64
    );
    assert!(
        weights <= BOUND,
        "weights {weights} over the budget {BOUND}"
    );
    assert!(
        held <= BOUND as f64 * 1.05,
        "{held} heap bytes held, budget {BOUND}: over by more than 5 %"
    );
    assert!(
        of("small").unwrap_or(0) > 100,
        "the small use case keeps entries"
    );
    assert!(
        of("large").unwrap_or(0) > 10,
        "the large use case keeps entries"
    );
}

#[test]
fn entries_read_from_a_remote_layer_weigh_what_they_hold() {
    use cachewright::backends::MemoryBackend;
    use cachewright::LayerConfig;
    use std::sync::Arc;

    // Not measured by heap, but its allocations would land in the other
    // tests' measurements (they once read 0.83 of a bound held at 0.98).
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());

    let shared = Arc::new(MemoryBackend::new());
    let over = |budget: Option<u64>| {
        let b = Cache::builder()
            .namespace("remote-weights")
            .layer(LayerConfig::shared(shared.clone()))
            .without_bus();
        match budget {
            Some(max) => b.max_bytes(max),
            None => b,
        }
        .build()
    };
    let (writer, reader) = (over(None), over(Some(64 * 1024)));
    for id in 0..100u32 {
        writer.set(&writer.key("doc", &id), "y".repeat(10_000), None);
    }
    for id in 0..100u32 {
        let got = reader.get::<String>(&reader.key("doc", &id));
        assert_eq!(got.map(|s| s.len()), Some(10_000));
    }
    let held = reader.stats_for("direct").expect("direct stats");
    assert!(held.bytes <= 64 * 1024, "{} bytes held", held.bytes);
    assert!(
        held.size < 10,
        "{} entries of 10 KB held within 64 KiB: weighed as if small",
        held.size
    );
}
