// `negative_ttl` caches `None`; a function returning a plain `u64` has none.
#[cachewright::cached(key = "user:<id>", ttl = 60, negative_ttl = 5)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
