use cachewright::cached;

// `early_refresh` refreshes before the TTL ends: it needs one.
#[cached(key = "user:<id>", early_refresh = 0.8)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
