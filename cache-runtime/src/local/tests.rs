use super::shard::INITIAL_WINDOW;
use super::*;

fn get(s: &Store<String, u32>, k: &str) -> Option<u32> {
    let h = s.hash(k);
    s.with(h, |o| o == k, |v| *v)
}

fn put(s: &Store<String, u32>, k: &str, v: u32) {
    let h = s.hash(k);
    s.insert(h, k.to_string(), v, 1, |_| false);
}

/// Requests `k`, storing it on a miss; whether it was a hit.
fn request(s: &Store<String, u32>, k: &str) -> bool {
    if get(s, k).is_some() {
        return true;
    }
    put(s, k, 0);
    false
}

#[test]
fn insert_get_replace_remove() {
    let s = Store::new(100, None, None);
    put(&s, "a", 1);
    put(&s, "b", 2);
    assert_eq!(get(&s, "a"), Some(1));
    put(&s, "a", 3);
    assert_eq!(get(&s, "a"), Some(3));
    assert_eq!(s.len(), 2);
    let h = s.hash("a");
    assert_eq!(s.remove(h, |k| k == "a"), Some(3));
    assert_eq!(get(&s, "a"), None);
    assert_eq!(get(&s, "b"), Some(2));
}

#[test]
fn never_exceeds_capacity_and_keeps_a_hot_entry() {
    let s = Store::new(50, None, None);
    assert_eq!(s.capacity(), 50);
    for i in 0..1000u32 {
        put(&s, &i.to_string(), i);
        // "0" is read after every insert: the sketch rates it above
        // every newcomer, and its hits give it second chances.
        let _ = get(&s, "0");
        assert!(s.len() <= 50);
    }
    assert_eq!(get(&s, "0"), Some(0));
    assert_eq!(s.len(), 50);
}

#[test]
fn dead_entries_go_first() {
    let s: Store<String, u32> = Store::new(2, None, None);
    put(&s, "dead", 0);
    put(&s, "live", 1);
    for _ in 0..5 {
        let _ = get(&s, "dead");
        let _ = get(&s, "live");
    }
    let h = s.hash("new");
    let (put, _, evicted) = s.insert(h, "new".into(), 2, 1, |v| *v == 0);
    assert_eq!(put, Put::Stored);
    assert_eq!(evicted.keys(), vec!["dead".to_string()]);
    assert_eq!(get(&s, "live"), Some(1));
    assert_eq!(get(&s, "new"), Some(2));
}

#[test]
fn insert_if_vacant_respects_live_entries() {
    let s: Store<String, u32> = Store::new(10, None, None);
    let h = s.hash("k");
    assert_eq!(
        s.insert_if_vacant(h, "k".into(), 1, 1, |_| false).0,
        Put::Stored
    );
    assert_eq!(
        s.insert_if_vacant(h, "k".into(), 2, 1, |_| false).0,
        Put::Kept
    );
    assert_eq!(get(&s, "k"), Some(1));
    // A dead holder does not block.
    assert_eq!(
        s.insert_if_vacant(h, "k".into(), 3, 1, |v| *v == 1).0,
        Put::Stored
    );
    assert_eq!(get(&s, "k"), Some(3));
}

#[test]
fn remove_where_and_clear() {
    let s = Store::new(100, None, None);
    for i in 0..10u32 {
        put(&s, &i.to_string(), i);
    }
    assert_eq!(s.remove_where(|_, v| v % 2 == 0), 5);
    assert_eq!(s.len(), 5);
    assert_eq!(get(&s, "3"), Some(3));
    s.clear();
    assert_eq!(s.len(), 0);
    assert_eq!(s.bytes(), 0);
    put(&s, "x", 9);
    assert_eq!(get(&s, "x"), Some(9));
}

#[test]
fn a_loop_slightly_larger_than_the_store_keeps_most_of_it() {
    // Under LRU or CLOCK every request of such a loop misses: each key
    // is evicted just before it comes round again.
    let s = Store::new(1_000, None, None);
    let keys: Vec<String> = (0..1_200).map(|i| format!("k{i}")).collect();
    let mut hits = 0;
    for round in 0..20 {
        for k in &keys {
            let hit = request(&s, k);
            if round >= 10 {
                hits += usize::from(hit);
            }
        }
    }
    let ratio = hits as f64 / (10 * keys.len()) as f64;
    assert!(ratio > 0.6, "hit ratio {ratio:.3} on the loop");
}

#[test]
fn a_scan_does_not_flush_the_hot_set() {
    let s = Store::new(1_000, None, None);
    let hot: Vec<String> = (0..500).map(|i| format!("hot{i}")).collect();
    for _ in 0..5 {
        for k in &hot {
            request(&s, k);
        }
    }
    for i in 0..10_000 {
        request(&s, &format!("scan{i}"));
    }
    let kept = hot.iter().filter(|k| get(&s, k).is_some()).count();
    assert!(
        kept >= 450,
        "{kept} of 500 hot keys survived a scan of 10 000"
    );
}

#[test]
fn the_byte_bound_holds_with_mixed_weights() {
    let max = 1_000_000;
    let s: Store<String, u32> = Store::new(1_000_000, Some(max), None);
    let mut rng = fastrand::Rng::with_seed(7);
    for i in 0..20_000u32 {
        let k = i.to_string();
        let h = s.hash(&k);
        let w = rng.u64(100..5_000);
        s.insert(h, k, i, w, |_| false);
        assert!(s.bytes() <= max, "{} bytes held, bound {max}", s.bytes());
    }
    assert!(s.bytes() > max * 9 / 10, "filled to {} of {max}", s.bytes());
    // Too heavy for a shard: refused, and the entry it would replace
    // (now out of date) is dropped.
    let h = s.hash("19999");
    let (put, old, _) = s.insert(h, "19999".into(), 0, max, |_| false);
    assert_eq!(put, Put::TooHeavy);
    assert!(old.is_some());
    assert_eq!(get(&s, "19999"), None);
}

#[test]
fn a_shared_budget_counts_every_store_and_gets_bytes_back() {
    let budget = std::sync::Arc::new(Budget::new(10_000));
    let a: Store<String, u32> = Store::new(1_000, None, Some(budget.clone()));
    let b: Store<String, u32> = Store::new(1_000, None, Some(budget.clone()));
    for i in 0..100u32 {
        let k = i.to_string();
        a.insert(a.hash(&k), k.clone(), i, 100, |_| false);
        b.insert(b.hash(&k), k, i, 50, |_| false);
    }
    assert_eq!(budget.excess(), 5_000);
    let freed = a.give_back(5_000, |_| false);
    assert!(freed >= 5_000);
    assert_eq!(a.bytes(), 10_000 - freed);
    assert_eq!(budget.excess(), 0);
    let h = a.hash("5");
    assert!(a.remove(h, |k| k == "5").is_none() || a.bytes() < 5_000);
}

#[test]
fn the_window_grows_for_recency_and_shrinks_for_frequency() {
    let s: Store<u64, u32> = Store::new(1_000, None, None);
    let request = |k: u64| {
        let h = s.hash(&k);
        if s.with(h, |o| *o == k, |_| ()).is_none() {
            s.insert(h, k, 0, 1, |_| false);
        }
    };
    // Each new key is asked for again 100 requests later, then never:
    // only a window of more than 100 entries catches the second asks.
    for i in 0..200_000u64 {
        request(i);
        request(i.saturating_sub(50));
    }
    let grown = s.climb.window.load(Ordering::Relaxed);
    assert!(grown > INITIAL_WINDOW, "window {grown}‰ after recency");
    // A fixed hot set larger than the window, asked for in turn.
    let mut rng = fastrand::Rng::with_seed(3);
    for _ in 0..400_000 {
        request(rng.u64(0..900));
        request(2_000_000 + rng.u64(..));
    }
    let shrunk = s.climb.window.load(Ordering::Relaxed);
    assert!(
        shrunk < grown,
        "window {shrunk}‰ after frequency, {grown}‰ before"
    );
}

#[test]
fn a_large_capacity_spreads_over_more_shards_within_the_index() {
    let s: Store<u64, u32> = Store::new(10_000_000, None, None);
    assert_eq!(s.capacity(), 10_000_000);
    assert_eq!(s.shards.len(), 256, "10M / 65 534 rounds up to 256 shards");
    let huge: Store<u64, u32> = Store::new(usize::MAX, None, None);
    assert_eq!(
        huge.capacity(),
        MAX_SHARDS * MAX_SHARD,
        "capped, never an index overflow"
    );
}

#[test]
fn a_replaced_value_that_grows_evicts_others_to_stay_within_the_bound() {
    let s: Store<String, u32> = Store::new(3, Some(1_000), None);
    for k in ["a", "b", "c"] {
        s.insert(s.hash(k), k.into(), 0, 100, |_| false);
    }
    for _ in 0..3 {
        let _ = get(&s, "a");
    }
    let h = s.hash("c");
    let _ = s.remove(h, |k| k == "c");
    let h = s.hash("b");
    s.insert(h, "b".into(), 1, 950, |_| false);
    assert!(s.bytes() <= 1_000, "{} bytes held, bound 1000", s.bytes());
    assert_eq!(get(&s, "b"), Some(1));
}

#[test]
fn two_stores_hit_in_turn_each_count_their_hits() {
    let a: Store<u64, u32> = Store::new(100, None, None);
    let b: Store<u64, u32> = Store::new(100, None, None);
    for s in [&a, &b] {
        s.insert(s.hash(&1), 1, 0, 1, |_| false);
    }
    for _ in 0..12_800 {
        for s in [&a, &b] {
            let h = s.hash(&1);
            assert!(s.with(h, |k| *k == 1, |_| ()).is_some());
        }
    }
    let (ha, hb) = (
        a.climb.hits.load(Ordering::Relaxed),
        b.climb.hits.load(Ordering::Relaxed),
    );
    // 12 800 hits each, sampled one in 61: about 12 800 counted.
    assert!(ha > 6_400 && hb > 6_400, "hits counted {ha} and {hb}");
}
