use cachewright::cached;

#[derive(Debug, Clone)]
enum DbError {
    Timeout,
}

impl From<cachewright::Timeout> for DbError {
    fn from(_: cachewright::Timeout) -> Self {
        DbError::Timeout
    }
}

struct Repo {
    prefix: String,
}

impl Repo {
    // Timeouts on a method: the body runs on a copy of the receiver.
    #[cached(key = "user:<id>", ttl = 60, fail_safe = "1h", fail_safe_throttle = "10s",
             soft_timeout = "100ms", hard_timeout = "1s", lock = true, lock_wait = "2s",
             ignore = [self])]
    async fn user(&self, id: u64, name: &str) -> Result<String, DbError> {
        Ok(format!("{}{id}{name}", self.prefix))
    }
}

impl Clone for Repo {
    fn clone(&self) -> Self {
        Repo { prefix: self.prefix.clone() }
    }
}

#[cached(key = "n:<id>", ttl = 60, fail_safe = 3600)]
fn n(id: u64) -> Option<u64> {
    if id == 0 {
        cachewright::mark_failed();
    }
    Some(id)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let repo = Repo { prefix: "u".into() };
    assert_eq!(repo.user(1, "x").await.unwrap(), "u1x");
    assert_eq!(n(2), Some(2));
    let _ = DbError::Timeout.clone();
}
