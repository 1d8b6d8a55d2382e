// A zero TTL would cache nothing; it is rejected at the value.
#[cachewright::cached(key = "user:<id>", ttl = 0)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
