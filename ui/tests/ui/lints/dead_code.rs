// Lints see the user's function through the expansion: an unused cached
// function is still dead code.
#![deny(dead_code)]

#[cachewright::cached(key = "user:<id>", ttl = 60)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
