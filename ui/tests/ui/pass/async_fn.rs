use std::sync::atomic::{AtomicU32, Ordering};

static CALLS: AtomicU32 = AtomicU32::new(0);

#[cachewright::cached(key = "item:<id>:<page>", ttl = 60, swr = "10s", smooth_expiry = true)]
async fn get_item(id: u64, page: u32) -> Result<Vec<u64>, std::io::Error> {
    CALLS.fetch_add(1, Ordering::SeqCst);
    Ok(vec![id; page as usize])
}

#[tokio::main]
async fn main() {
    assert_eq!(get_item(3, 2).await.unwrap(), [3, 3]);
    assert_eq!(get_item(3, 2).await.unwrap(), [3, 3]);
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
}
