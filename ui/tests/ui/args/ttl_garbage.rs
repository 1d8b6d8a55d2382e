// A duration string with an unknown unit is rejected, and the message shows
// the accepted forms.
#[cachewright::cached(key = "user:<id>", ttl = "5 minutes")]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
