// A duration must be a literal; a constant is not read by the macro.
const FIVE_MINUTES: u64 = 300;

#[cachewright::cached(key = "user:<id>", ttl = FIVE_MINUTES)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
