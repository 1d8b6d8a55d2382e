// The key is a string literal template.
#[cachewright::cached(key = user, ttl = 60)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
