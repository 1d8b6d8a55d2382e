// A key value is rendered into the key's URN, so it needs `Display`; the
// error points at the parameter's type.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Query {
    text: String,
}

#[cachewright::cached(key = "search:<q>", ttl = 60)]
fn search(q: Query) -> usize {
    q.text.len()
}

fn main() {}
