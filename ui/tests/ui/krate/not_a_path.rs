#[cachewright::cached(key = "user:<id>", ttl = 60, crate = "not a path!")]
fn get_user(id: u64) -> u64 {
    id
}

#[cachewright::cached(key = "user:<id>", ttl = 60, crate = cachewright)]
fn get_other(id: u64) -> u64 {
    id
}

fn main() {}
