// Once `adapt` gives a parameter's key form, the template uses `<param>`,
// not a field of it.
struct User {
    id: u64,
}

#[cachewright::cached(key = "user:<user.id>", ttl = 60, adapt(user = user.id))]
fn get_user(user: &User) -> u64 {
    user.id
}

fn main() {}
