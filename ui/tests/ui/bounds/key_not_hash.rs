// A key value is looked up in the in-process layer, so it needs `Hash`; the
// error points at the parameter's type.
use std::fmt;

#[derive(Clone, PartialEq, Eq)]
struct Query {
    text: String,
}

impl fmt::Display for Query {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cachewright::cached(key = "search:<q>", ttl = 60)]
fn search(q: Query) -> usize {
    q.text.len()
}

fn main() {}
