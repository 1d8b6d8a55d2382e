// A lint on the body survives the expansion, at the user's token.
#![deny(unused_variables)]

#[cachewright::cached(key = "user:<id>", ttl = 60)]
fn get_user(id: u64) -> u64 {
    let unused = 3;
    id
}

fn main() {
    let _ = get_user(1);
}
