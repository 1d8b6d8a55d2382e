// `tags` is an array of string literals, even for a single tag.
#[cachewright::cached(key = "user:<id>", ttl = 60, tags = "org:<org_id>")]
fn get_user(id: u64, org_id: u64) -> u64 {
    id + org_id
}

fn main() {}
