mod elsewhere {}

#[cachewright::cached(key = "user:<id>", ttl = 60, crate = "crate::elsewhere")]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
