// A placeholder must name a parameter; the message lists the real ones.
#[cachewright::cached(key = "user:<idd>", ttl = 60)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
