// Every mistake in one attribute is reported in the same build, each at its
// own token.
#[cachewright::cached(
    key = "user:<id>",
    tll = 60,
    ttl = 0,
    jitter = 2.0,
    name = "",
    capacity = 0,
    tags = ["org:<org_id>", 7],
)]
fn get_user(id: u64, org_id: u64) -> u64 {
    id + org_id
}

fn main() {}
