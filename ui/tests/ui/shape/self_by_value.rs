// A method consuming `self` cannot be cached.
#[derive(Clone)]
struct Svc {
    n: u64,
}

impl Svc {
    #[cachewright::cached(key = "count:<id>", ttl = 60)]
    fn get(self, id: u64) -> u64 {
        self.n + id
    }
}

fn main() {}
