// `self` cannot be both keyed (a field in the key template) and ignored.
#[derive(Clone)]
struct Repo {
    tenant: String,
}

impl Repo {
    #[cachewright::cached(key = "row:<self.tenant>:<i>", ttl = 60, ignore = [self])]
    fn row(&self, i: u64) -> u64 {
        i + self.tenant.len() as u64
    }
}

fn main() {}
