use cachewright::cached;

#[derive(Debug)]
struct DbError;

// The error type cannot be made from `cachewright::Timeout`.
#[cached(key = "a:<id>", ttl = 60, hard_timeout = "1s")]
async fn a(id: u64) -> Result<u64, DbError> {
    Ok(id)
}

fn main() {}
