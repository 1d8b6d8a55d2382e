// `jitter` is a fraction strictly between 0 and 1.
#[cachewright::cached(key = "user:<id>", ttl = 60, jitter = 1.5)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
