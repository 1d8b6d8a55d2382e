// An argument given twice is reported at its second occurrence.
#[cachewright::cached(key = "user:<id>", ttl = 60, ttl = 30)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
