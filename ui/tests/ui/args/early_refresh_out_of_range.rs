use cachewright::cached;

// A share of the TTL strictly between 0 and 1, or "xfetch".
#[cached(key = "user:<id>", ttl = 60, early_refresh = 1.5)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
