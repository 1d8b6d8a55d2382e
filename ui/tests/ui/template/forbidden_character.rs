// Whitespace (and `?`, `#`, `&`, `=`, `%`) may not appear in template text.
#[cachewright::cached(key = "user: <id>", ttl = 60)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
