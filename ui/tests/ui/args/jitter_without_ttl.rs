// `jitter` spreads the TTL, so it needs one.
#[cachewright::cached(key = "user:<id>", jitter = 0.1)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
