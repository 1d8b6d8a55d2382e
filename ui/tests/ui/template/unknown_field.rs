// A field that does not exist is left to the type checker, whose error must
// point at the template string literal.
struct User {
    id: u64,
}

#[cachewright::cached(key = "user:<user.idd>", ttl = 60)]
fn get_user(user: &User) -> u64 {
    user.id
}

fn main() {}
