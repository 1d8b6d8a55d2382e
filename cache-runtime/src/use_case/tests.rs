//! Per-thread fronts seen from a use case: when a hit is served from this
//! thread's copy (counted by `front::SERVED`), and when it must not be.

use std::convert::Infallible;

use super::*;
use crate::flight::ShareError;

/// A spec with a one-minute TTL.
const fn spec(name: &'static str) -> UseCaseSpec {
    let mut spec = UseCaseSpec::for_tests(name);
    spec.ttl_ms = Some(60_000);
    spec
}

fn served() -> u64 {
    front::SERVED.with(|n| n.get())
}

/// Looks `id` up, loading `value` on a miss; returns what was served and
/// whether it was a hit.
fn call(uc: &'static UseCase<(u64,), u64>, id: u64, value: u64) -> (u64, bool) {
    let q = (&id,);
    match uc.lookup(&q) {
        Lookup::Hit(v) | Lookup::Stale(v) | Lookup::Shadow(v) => (v, true),
        Lookup::Miss(mode) => {
            let miss = uc.miss(&q, &[&id as &dyn Display], mode);
            let v = uc
                .load_sync(miss, ShareError::none(), || Ok::<_, Infallible>(value))
                .unwrap_or_else(|e| match e {});
            (v, false)
        }
    }
}

fn use_case(slot: &'static UseCaseSlot, cache: &str) -> &'static UseCase<(u64,), u64> {
    let cache = Cache::builder().name(cache).build();
    slot.get::<(&u64,), u64>(&(&0,), None, || cache, None, None)
        .expect("a use case")
}

#[test]
fn a_hot_entry_is_served_from_the_copy_while_nothing_changed() {
    static SLOT: UseCaseSlot = UseCaseSlot::new(spec("front_hot"));
    let uc = use_case(&SLOT, "front-unit-hot");
    assert!(uc.front.is_some(), "plain keys and values are copied");
    assert_eq!(call(uc, 1, 10), (10, false));
    let before = served();
    // Three hits earn the entry its second chances; the fourth copies it.
    for _ in 0..4 {
        assert_eq!(call(uc, 1, 99), (10, true));
    }
    assert_eq!(served(), before, "the shard path until copied");
    for _ in 0..10 {
        assert_eq!(call(uc, 1, 99), (10, true));
    }
    assert_eq!(served(), before + 10, "then every hit from the copy");
}

#[test]
fn a_lapsed_lease_sends_hits_to_the_shard_path() {
    static SLOT: UseCaseSlot = UseCaseSlot::new(spec("front_lease"));
    let uc = use_case(&SLOT, "front-unit-lease");
    call(uc, 1, 10);
    for _ in 0..5 {
        call(uc, 1, 99);
    }
    let before = served();
    call(uc, 1, 99);
    assert_eq!(served(), before + 1, "copied");
    uc.marks.set_lease(1);
    assert_eq!(call(uc, 1, 99), (99, false), "L1 not trusted: loaded");
    assert_eq!(served(), before + 1, "not from the copy: the lease lapsed");
    uc.marks.set_lease(u64::MAX);
    // The load was not kept (L1 untrusted), so the entry and its copy stand.
    assert_eq!(call(uc, 1, 99), (10, true));
    assert_eq!(served(), before + 2, "from the copy again");
}

#[test]
fn a_copy_does_not_outlive_a_clear_or_a_removal() {
    static SLOT: UseCaseSlot = UseCaseSlot::new(spec("front_clear"));
    let uc = use_case(&SLOT, "front-unit-clear");
    call(uc, 1, 10);
    for _ in 0..5 {
        call(uc, 1, 99);
    }
    // A clear of the store alone (no watermark raised), then a new value.
    UseCaseInfo::clear(uc);
    assert_eq!(call(uc, 1, 11), (11, false), "cleared: loaded");
    assert_eq!(call(uc, 1, 99), (11, true), "the new value, not the copy");
    for _ in 0..5 {
        call(uc, 1, 99);
    }
    assert!(uc.invalidate(&(&1,)), "removed");
    assert_eq!(call(uc, 1, 12), (12, false), "removed: loaded");
}
