// Parameters must be named, so that templates can refer to them.
#[cachewright::cached(key = "pair:<a>", ttl = 60)]
fn pair(a: u64, (b, c): (u64, u64)) -> u64 {
    a + b + c
}

fn main() {}
