// `adapt` may only name parameters of the function.
#[cachewright::cached(key = "user:<id>", ttl = 60, adapt(ids = id + 1))]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
