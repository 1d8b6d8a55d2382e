// Argument mistakes and function-shape mistakes are reported together.
#[cachewright::cached(key = "item:<id>", ttl = -1, bogus = true)]
const fn get_item<T>(id: u64) -> u64 {
    id
}

fn main() {}
