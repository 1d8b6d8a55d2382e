// `adapt` takes a parenthesised list, not `adapt = ...`.
#[cachewright::cached(key = "user:<id>", ttl = 60, adapt = id)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
