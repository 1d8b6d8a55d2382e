// User types named `Result` and `Option` in scope do not disturb the
// expansion; the cached function returns a plain `u32`.
#![allow(dead_code)]

struct Result;
struct Option;
enum Ok {}
enum Some {}
enum None {}
mod core {}
mod std {}

#[cachewright::cached(key = "n:<n>", ttl = 60)]
fn double(n: u32) -> u32 {
    n * 2
}

#[cachewright::cached(key = "s:<s>", ttl = 60, swr = 5)]
async fn len(s: &str) -> u32 {
    s.len() as u32
}

fn main() {
    assert_eq!(double(2), 4);
    assert_eq!(double(2), 4);
    let _ = len("abc");
    let _ = (Result, Option);
}
