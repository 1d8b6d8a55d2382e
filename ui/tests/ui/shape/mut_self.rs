// A method taking `&mut self` changes its receiver; its result cannot be
// served from a cache.
struct Counter {
    n: u64,
}

impl Counter {
    #[cachewright::cached(key = "count:<id>", ttl = 60)]
    fn bump(&mut self, id: u64) -> u64 {
        self.n += id;
        self.n
    }
}

fn main() {}
