// A function without a return type has nothing to cache; the error points at
// the function's name.
#[cachewright::cached(key = "user:<id>", ttl = 60)]
fn touch(id: u64) {
    let _ = id;
}

fn main() {}
