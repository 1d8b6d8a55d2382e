// Presets name TTLs only: a stale window is a plain duration.
#[cachewright::cached(key = "user:<id>", ttl = "default", swr = "short")]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
