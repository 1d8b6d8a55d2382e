//! Cost of tag invalidation, and what it costs the hits that follow, in
//! process (no remote layer, no bus).
//!
//! Groups:
//!
//! * `invalidate_tag` — one `cache.invalidate_tags([cachewright::tag("group", &g)])`
//!   call on a cache built with `Cache::builder().capacity(200_000)`, whose
//!   `#[cached(key = "item:<id>", tags = ["group:<g>"])]` fn was populated
//!   (once, before timing) with 1 entry under `group:a` and 100,000 under
//!   `group:b`:
//!   * `0_entries`: a tag no entry carries (`group:none`);
//!   * `1_entry`: `group:a`;
//!   * `100000_entries`: `group:b`.
//!
//!   An invalidation is one watermark write (plus the tag's `String`), so the
//!   three should cost the same. After the group, one entry of each
//!   invalidated tag is read again and must reload (the invalidation was
//!   real).
//! * `hit_after_invalidation` — the same cache (100,001 entries), hits on
//!   1,024 other entries of the `item` fn (`group:c`), each key hit once per
//!   timed round:
//!   * `hot_hit`: nothing invalidated between rounds: each hit's tag check is
//!     the epoch compare;
//!   * `first_hit`: an unrelated tag is invalidated before each round (not
//!     timed), which moves the cache's invalidation epoch, so every hit of the
//!     round is the first since an invalidation and re-checks its tags against
//!     the watermarks (the slow check). `first_hit − hot_hit` is its cost.
//!
//!   (The first call after an invalidation of the entry's *own* tag is a
//!   miss and a reload, not a hit.)
//! * `hot_hit_tags` — the hot-hit comparison of `hot_hit.rs` (value
//!   [`User`], hot key [`HOT`]) on tags, in one group on a cache of its own:
//!   * `floor`: `HashMap<u64, User>` `get` + `clone` (every ratio's base);
//!   * `untagged`: `#[cached(key = "user:<id>", ttl = 300)]`;
//!   * `tagged`: `#[cached(key = "user:<id>", ttl = 300, tags = ["org:<org>"])]`;
//!     both hot, nothing invalidated since they were filled;
//!   * `tagged_1024_keys`: `tagged` over 1,024 hot keys, one hit each per
//!     timed round (the control of the next one);
//!   * `tagged_after_unrelated_invalidation`: the same rounds, with an
//!     unrelated tag invalidated before each round (not timed): every hit
//!     pays the revalidation of its tags;
//!   * `per_iteration/tagged` and
//!     `per_iteration/tagged_after_unrelated_invalidation`: the same two, one
//!     hit of [`HOT`] per timed iteration with criterion's `iter_batched`
//!     (`BatchSize::PerIteration`, the invalidation in the setup). Each
//!     iteration then also carries a clock read pair (a syscall for the CPU
//!     clock), so only their difference means something: it is the
//!     revalidation cost, measured without spreading it over many keys.
//!
//! Each cached fn counts its loader runs, and the count is asserted after
//! each bench, so every measured call was a hit.
//!
//! Measurement: the bench thread's CPU time (see `common/cpu_time.rs`), as
//! in `hot_hit.rs`; everything measured runs on that thread.
//!
//! Run: `cargo bench --bench invalidation -- --warm-up-time 1 --measurement-time 3`.

#[path = "common/cpu_time.rs"]
mod cpu_time;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use cachewright::Cache;
use cpu_time::OneThreadClock;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};

/// The value of `hot_hit_tags`, as in `hot_hit.rs`.
#[derive(Clone, Debug, PartialEq)]
struct User {
    id: u64,
    name: String,
}

/// The hot key.
const HOT: u64 = 42;
/// The org of every user.
const ORG: u64 = 7;
/// How many entries carry `group:b`.
const MANY: u64 = 100_000;
/// First id of the `group:c` entries of `hit_after_invalidation`.
const HIT_BASE: u64 = 1_000_000;
/// Keys per timed round in the hit-after-invalidation benches.
const ROUND: usize = 1_024;

fn make_user(id: u64) -> User {
    User {
        id,
        name: format!("user-{id}"),
    }
}

// ---- invalidate_tag / hit_after_invalidation -----------------------------------

static ITEMS: LazyLock<Cache> =
    LazyLock::new(|| Cache::builder().name("items").capacity(200_000).build());
static ITEM_LOADS: AtomicU64 = AtomicU64::new(0);

#[cachewright::cached(key = "item:<id>", tags = ["group:<g>"], cache = ITEMS)]
fn item(id: u64, g: &str) -> u64 {
    ITEM_LOADS.fetch_add(1, Ordering::Relaxed);
    id
}

fn loads(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::SeqCst)
}

/// Fills `item` for `ids` under `group`, each exactly once.
fn populate(ids: impl Iterator<Item = u64>, group: &str) {
    let before = loads(&ITEM_LOADS);
    let mut n = 0;
    for id in ids {
        assert_eq!(item(id, group), id);
        n += 1;
    }
    assert_eq!(loads(&ITEM_LOADS) - before, n, "every fill is one load");
}

/// Asserts that calling `f` ran no loader (every call was a hit).
fn assert_no_loads(what: &str, counter: &AtomicU64, before: u64) {
    let now = loads(counter);
    assert_eq!(
        now,
        before,
        "{what}: the loader ran {} times, so some measured calls were misses",
        now - before
    );
}

/// Times `ROUND`-key rounds of `hit` over `keys` until `iters` hits are done,
/// running `before_round` (not timed) before each round.
fn rounds(
    iters: u64,
    keys: &[u64],
    mut before_round: impl FnMut(),
    mut hit: impl FnMut(u64),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(keys.len() as u64) as usize;
        before_round();
        let start = cpu_time::now();
        for &k in &keys[..n] {
            hit(black_box(k));
        }
        total += cpu_time::now().saturating_sub(start);
        left -= n as u64;
    }
    total
}

fn invalidate_tag(c: &mut Criterion<OneThreadClock>) {
    populate(std::iter::once(0), "a");
    populate(1..=MANY, "b");
    let cache = &*ITEMS;

    let invalidate =
        |group: &'static str| move || cache.invalidate_tags([cachewright::tag("group", &group)]);

    let mut g = c.benchmark_group("invalidate_tag");
    g.bench_function("0_entries", |b| b.iter(invalidate("none")));
    g.bench_function("1_entry", |b| b.iter(invalidate("a")));
    g.bench_function("100000_entries", |b| b.iter(invalidate("b")));
    g.finish();

    // What was timed really invalidates (checked with one more call each,
    // so that this holds when a filter skipped the benches): both reload.
    invalidate("a")();
    invalidate("b")();
    let before = loads(&ITEM_LOADS);
    item(0, "a");
    item(MANY / 2, "b");
    assert_eq!(
        loads(&ITEM_LOADS) - before,
        2,
        "invalidated entries must reload"
    );
}

fn hit_after_invalidation(c: &mut Criterion<OneThreadClock>) {
    let keys: Vec<u64> = (HIT_BASE..HIT_BASE + ROUND as u64).collect();
    populate(keys.iter().copied(), "c");
    let cache = &*ITEMS;
    let before = loads(&ITEM_LOADS);

    let mut g = c.benchmark_group("hit_after_invalidation");
    g.bench_function("hot_hit", |b| {
        b.iter_custom(|iters| {
            rounds(
                iters,
                &keys,
                || {},
                |k| {
                    black_box(item(k, "c"));
                },
            )
        })
    });
    g.bench_function("first_hit", |b| {
        b.iter_custom(|iters| {
            rounds(
                iters,
                &keys,
                || cache.invalidate_tags([cachewright::tag("group", &"unrelated")]),
                |k| {
                    black_box(item(k, "c"));
                },
            )
        })
    });
    g.finish();
    assert_no_loads("hit_after_invalidation", &ITEM_LOADS, before);
}

// ---- hot_hit_tags -----------------------------------------------------------------

static USERS: LazyLock<Cache> = LazyLock::new(|| Cache::builder().name("users").build());
static UNTAGGED_LOADS: AtomicU64 = AtomicU64::new(0);
static TAGGED_LOADS: AtomicU64 = AtomicU64::new(0);

#[cachewright::cached(key = "user:<id>", ttl = 300, cache = USERS)]
fn untagged_user(id: u64) -> User {
    UNTAGGED_LOADS.fetch_add(1, Ordering::Relaxed);
    make_user(id)
}

#[cachewright::cached(key = "user:<id>", ttl = 300, tags = ["org:<org>"], cache = USERS)]
fn tagged_user(id: u64, org: u64) -> User {
    TAGGED_LOADS.fetch_add(1, Ordering::Relaxed);
    make_user(id)
}

/// Invalidates a tag no entry of these benches carries: it only moves the
/// cache's invalidation epoch.
fn invalidate_unrelated() {
    USERS.invalidate_tags([cachewright::tag("org", &"unrelated")]);
}

fn hot_hit_tags(c: &mut Criterion<OneThreadClock>) {
    // A few neighbours, so the map is not a single-entry special case.
    let map: HashMap<u64, User> = (0..64).map(|id| (id, make_user(id))).collect();
    let keys: Vec<u64> = (0..ROUND as u64).collect();
    for &k in &keys {
        assert_eq!(untagged_user(k), make_user(k));
        assert_eq!(tagged_user(k, ORG), make_user(k));
    }
    let untagged_before = loads(&UNTAGGED_LOADS);
    let tagged_before = loads(&TAGGED_LOADS);

    let mut g = c.benchmark_group("hot_hit_tags");
    g.bench_function("floor", |b| {
        b.iter(|| map.get(&black_box(HOT)).expect("hot").clone())
    });
    g.bench_function("untagged", |b| b.iter(|| untagged_user(black_box(HOT))));
    g.bench_function("tagged", |b| {
        b.iter(|| tagged_user(black_box(HOT), black_box(ORG)))
    });
    g.bench_function("tagged_1024_keys", |b| {
        b.iter_custom(|iters| {
            rounds(
                iters,
                &keys,
                || {},
                |k| {
                    black_box(tagged_user(k, black_box(ORG)));
                },
            )
        })
    });
    g.bench_function("tagged_after_unrelated_invalidation", |b| {
        b.iter_custom(|iters| {
            rounds(iters, &keys, invalidate_unrelated, |k| {
                black_box(tagged_user(k, black_box(ORG)));
            })
        })
    });
    g.bench_function("per_iteration/tagged", |b| {
        b.iter_batched(
            || (),
            |()| tagged_user(black_box(HOT), black_box(ORG)),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("per_iteration/tagged_after_unrelated_invalidation", |b| {
        b.iter_batched(
            invalidate_unrelated,
            |()| tagged_user(black_box(HOT), black_box(ORG)),
            BatchSize::PerIteration,
        )
    });
    g.finish();
    assert_no_loads("untagged", &UNTAGGED_LOADS, untagged_before);
    assert_no_loads("tagged", &TAGGED_LOADS, tagged_before);
}

criterion_group! {
    name = benches;
    // No plots: rendering them costs more than some of the benches.
    config = Criterion::default()
        .with_measurement(OneThreadClock)
        .without_plots();
    targets = invalidate_tag, hit_after_invalidation, hot_hit_tags
}
criterion_main!(benches);
