// In a method, the list of valid placeholders mentions `self.<field>`.
#[derive(Clone)]
struct Repo {
    tenant: String,
}

impl Repo {
    #[cachewright::cached(key = "row:<tenant>:<i>", ttl = 60, ignore = [self])]
    fn row(&self, i: u64) -> u64 {
        i + self.tenant.len() as u64
    }
}

fn main() {}
