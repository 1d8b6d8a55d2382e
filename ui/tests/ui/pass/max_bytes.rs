// A byte bound with units and a weigher of the value type.
fn page_bytes(page: &String) -> usize {
    page.len()
}

#[cachewright::cached(key = "page:<id>", capacity = 1000, max_bytes = "1MiB", weigher = page_bytes)]
fn page(id: u64) -> String {
    "x".repeat(id as usize)
}

#[cachewright::cached(key = "row:<id>", max_bytes = 65_536)]
fn row(id: u64) -> u64 {
    id
}

fn main() {
    assert_eq!(page(3), "xxx");
    assert_eq!(row(4), 4);
    let stats = cachewright::default_cache().stats();
    let of = |name: &str| stats.iter().find(|s| s.use_case.ends_with(name)).unwrap().clone();
    assert_eq!(of("page").max_bytes, Some(1024 * 1024));
    // The weigher's 3 bytes plus the entry's share of the store.
    assert_eq!(of("page").bytes, 128 + 3);
    assert_eq!(of("row").max_bytes, Some(65_536));
}
