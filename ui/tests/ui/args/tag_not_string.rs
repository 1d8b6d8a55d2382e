// Each tag is a string literal template; a bare identifier is rejected at
// that element, not at the whole array.
#[cachewright::cached(key = "user:<id>", ttl = 60, tags = ["org:<org_id>", org_id])]
fn get_user(id: u64, org_id: u64) -> u64 {
    id + org_id
}

fn main() {}
