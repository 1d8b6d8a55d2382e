// With `swr`, a method's background refresh runs on a copy of `self`, so
// `Self` must be `Clone + Send + Sync + 'static`.
struct Repo {
    tenant: String,
}

impl Repo {
    #[cachewright::cached(key = "row:<self.tenant>:<i>", ttl = 60, swr = 5)]
    fn row(&self, i: u64) -> u64 {
        i + self.tenant.len() as u64
    }
}

fn main() {}
