// TTL presets, resolved at run time; `swr` and `jitter` accept them as a TTL.
#[cachewright::cached(key = "user:<id>", ttl = "short", swr = 10, jitter = 0.1)]
fn get_user(id: u64) -> u64 {
    id
}

#[cachewright::cached(key = "org:<id>", ttl = "long")]
async fn get_org(id: u64) -> u64 {
    id
}

fn main() {
    assert_eq!(get_user(1), 1);
    let _ = get_org(2);
}
