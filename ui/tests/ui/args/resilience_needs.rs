use cachewright::cached;

// A throttle and a soft timeout without fail-safe; a lock wait without a lock.
#[cached(key = "a:<id>", ttl = 60, fail_safe_throttle = "10s", lock_wait = "1s")]
fn a(id: u64) -> u64 {
    id
}

#[cached(key = "b:<id>", ttl = 60, soft_timeout = "100ms")]
async fn b(id: u64) -> Result<u64, String> {
    Ok(id)
}

// A lock with no remote layer to take it in.
#[cached(key = "c:<id>", ttl = 60, lock = true, layers = local)]
fn c(id: u64) -> u64 {
    id
}

fn main() {}
