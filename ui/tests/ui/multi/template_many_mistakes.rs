// Several mistakes inside one template are each reported.
#[cachewright::cached(key = "pair:<a><b>:<c", ttl = 60)]
fn pair(a: u64, b: u64) -> u64 {
    a + b
}

fn main() {}
