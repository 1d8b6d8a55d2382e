// The key is a string literal template.
#[cachet::cached(key = user, ttl = 60)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
