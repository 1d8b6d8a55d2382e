// A parameter used by the key template cannot also be ignored.
#[cachewright::cached(key = "user:<id>", ttl = 60, ignore = [id])]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
