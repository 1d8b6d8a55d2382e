// Cached values are shared between threads, so they must be `Send + Sync`.
use std::rc::Rc;

#[cachewright::cached(key = "report:<id>", ttl = 60)]
fn report(id: u64) -> Rc<u64> {
    Rc::new(id)
}

fn main() {}
