// A reference cannot be stored in a cache.
#[cachewright::cached(key = "user:<id>", ttl = 60)]
fn name(id: u64) -> &'static str {
    if id == 0 { "root" } else { "user" }
}

fn main() {}
