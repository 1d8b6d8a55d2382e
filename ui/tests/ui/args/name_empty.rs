// A use case's name shows up in stats and logs; it may not be blank.
#[cachewright::cached(key = "user:<id>", ttl = 60, name = "  ")]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
