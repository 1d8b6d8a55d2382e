// A parameter whose type is not a key value gives its key form with `adapt`.
struct User {
    id: u64,
    name: String,
}

struct Page {
    number: u32,
}

#[cachewright::cached(key = "posts:<user>:<page>", ttl = 60, adapt(user = user.id, page = page.number))]
fn posts(user: &User, page: Page) -> Vec<String> {
    vec![format!("{}:{}", user.name, page.number)]
}

fn main() {
    let u = User { id: 7, name: "ann".into() };
    assert_eq!(posts(&u, Page { number: 2 }), ["ann:2"]);
    assert_eq!(posts(&u, Page { number: 2 }), ["ann:2"]);
}
