// `()` is nothing worth caching; the error points at the return type.
#[cachewright::cached(key = "user:<id>", ttl = 60)]
fn touch(id: u64) -> () {
    let _ = id;
}

fn main() {}
