// A duration string that adds up to zero is rejected like `ttl = 0`.
#[cachewright::cached(key = "user:<id>", ttl = "0ms")]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
