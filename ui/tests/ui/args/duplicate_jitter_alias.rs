// `smooth_expiry` is another spelling of `jitter`; giving both is a repeat.
#[cachewright::cached(key = "user:<id>", ttl = 60, jitter = 0.2, smooth_expiry = true)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
