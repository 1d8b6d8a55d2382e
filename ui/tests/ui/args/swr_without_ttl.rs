// The stale window starts when the TTL ends, so `swr` needs `ttl`.
#[cachewright::cached(key = "user:<id>", swr = 30)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
