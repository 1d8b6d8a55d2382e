// A negative TTL is rejected at the value.
#[cachewright::cached(key = "user:<id>", ttl = -5)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
