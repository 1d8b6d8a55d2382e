use std::sync::atomic::{AtomicU32, Ordering};

static CALLS: AtomicU32 = AtomicU32::new(0);

#[cachewright::cached(key = "user:<id>", ttl = "5m", swr = 30, jitter = 0.1, tags = ["org:<org>"])]
fn get_user(id: u64, org: String) -> String {
    CALLS.fetch_add(1, Ordering::SeqCst);
    format!("{id}@{org}")
}

#[cachewright::cached(ttl = 60)]
fn config() -> Vec<String> {
    vec!["a".to_string()]
}

fn main() {
    assert_eq!(get_user(1, "acme".into()), "1@acme");
    assert_eq!(get_user(1, "acme".into()), "1@acme");
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(config(), ["a"]);
}
