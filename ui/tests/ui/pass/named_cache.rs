static SOME_STATIC: cachewright::NamedCache = cachewright::NamedCache::new("x");

#[cachewright::cached(key = "user:<id>", ttl = 60, cache = SOME_STATIC, capacity = 100, name = "GetUser")]
fn get_user(id: u64) -> u64 {
    id + 1
}

fn main() {
    assert_eq!(get_user(1), 2);
    assert_eq!(get_user(1), 2);
}
