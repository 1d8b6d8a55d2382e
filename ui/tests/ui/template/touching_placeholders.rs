// Two placeholders with nothing between them would let `(1, 23)` and
// `(12, 3)` render the same key.
#[cachewright::cached(key = "pair:<a><b>", ttl = 60)]
fn pair(a: u64, b: u64) -> u64 {
    a + b
}

fn main() {}
