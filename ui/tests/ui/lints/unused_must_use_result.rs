// `#[must_use]` on the cached function is kept.
#![deny(unused_must_use)]

#[must_use]
#[cachewright::cached(key = "user:<id>", ttl = 60)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {
    get_user(1);
}
