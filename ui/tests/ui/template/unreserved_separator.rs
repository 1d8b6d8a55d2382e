// Text between two placeholders must contain a separator that values always
// escape; `x` alone could appear inside a value.
#[cachewright::cached(key = "pair:<a>x<b>", ttl = 60)]
fn pair(a: String, b: String) -> usize {
    a.len() + b.len()
}

fn main() {}
