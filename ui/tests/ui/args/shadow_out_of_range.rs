use cachewright::cached;

#[cached(key = "user:<id>", ttl = 60, shadow = 150)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
