// Argument mistakes and template mistakes are reported together.
#[cachewright::cached(key = "user:<idd>", swr = 30, negative_ttl = 5, ignore = [nope])]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
