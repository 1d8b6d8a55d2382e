// A key starts with its key type (`user:`), not with a value.
#[cachewright::cached(key = "<id>", ttl = 60)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
