use cachewright::cached;

// Timeouts on a sync function.
#[cached(key = "a:<id>", ttl = 60, fail_safe = "1h", soft_timeout = "100ms")]
fn a(id: u64) -> u64 {
    id
}

// A hard timeout with no error type to give.
#[cached(key = "b:<id>", ttl = 60, hard_timeout = "1s")]
async fn b(id: u64) -> u64 {
    id
}

// The soft timeout after the hard one.
#[cached(key = "c:<id>", ttl = 60, fail_safe = "1h", soft_timeout = "2s", hard_timeout = "1s")]
async fn c(id: u64) -> Result<u64, cachewright::Timeout> {
    Ok(id)
}

fn main() {}
