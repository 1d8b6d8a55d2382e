// `<self.field>` needs a `&self` method.
#[cachewright::cached(key = "t:<self.tenant>:<id>", ttl = 60)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
