// `<self>` is not a key value; a field of `self` is.
#[derive(Clone)]
struct Repo {
    tenant: String,
}

impl Repo {
    #[cachewright::cached(key = "row:<self>:<i>", ttl = 60)]
    fn row(&self, i: u64) -> u64 {
        i + self.tenant.len() as u64
    }
}

fn main() {}
