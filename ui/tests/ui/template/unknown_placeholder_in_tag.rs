// Tag templates are checked like the key template.
#[cachewright::cached(key = "user:<id>", ttl = 60, tags = ["org:<org>"])]
fn get_user(id: u64, org_id: u64) -> u64 {
    id + org_id
}

fn main() {}
