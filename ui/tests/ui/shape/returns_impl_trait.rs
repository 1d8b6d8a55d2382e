// An opaque type cannot be named in the cache's type.
#[cachewright::cached(key = "user:<id>", ttl = 60)]
fn name(id: u64) -> impl std::fmt::Display {
    id
}

fn main() {}
