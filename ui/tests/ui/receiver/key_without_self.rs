// A cached method's key must say how `self` is keyed: without a field of
// `self` in the key (or `ignore = [self]`), `a.row(1)` and `b.row(1)` would
// share one entry. Tags do not count; neither does the default key.
#[derive(Clone)]
struct Repo {
    tenant: String,
}

impl Repo {
    #[cachewright::cached(key = "row:<i>", ttl = 60, tags = ["tenant:<self.tenant>"])]
    fn row(&self, i: u64) -> u64 {
        i + self.tenant.len() as u64
    }

    #[cachewright::cached(ttl = 60)]
    async fn count(&self) -> usize {
        self.tenant.len()
    }
}

fn main() {}
