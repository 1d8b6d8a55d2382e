// `<param.field>` reaches into a parameter.
#[derive(Clone)]
struct User {
    id: u64,
    org: String,
}

#[cachewright::cached(key = "user:<user.id>", ttl = 60, tags = ["org:<user.org>"])]
fn profile(user: &User) -> String {
    format!("{}@{}", user.id, user.org)
}

fn main() {
    let u = User { id: 1, org: "acme".into() };
    assert_eq!(profile(&u), "1@acme");
}
