use cachewright::cache_write;

#[cache_write(invalidate = ["pair:<a><b>"])]
fn link(a: u32, b: u32) {
    let _ = (a, b);
}

fn main() {}
