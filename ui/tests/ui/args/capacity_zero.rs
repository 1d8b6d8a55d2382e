// A cache of zero entries holds nothing.
#[cachewright::cached(key = "user:<id>", ttl = 60, capacity = 0)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
