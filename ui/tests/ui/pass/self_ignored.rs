// A method whose result does not depend on its receiver says so with
// `ignore = [self]`: every receiver then shares the entries.
use std::sync::atomic::{AtomicU32, Ordering};

static CALLS: AtomicU32 = AtomicU32::new(0);

#[derive(Clone)]
struct Client {
    #[allow(dead_code)]
    connection: u32,
}

impl Client {
    #[cachewright::cached(key = "ignored_self_square:<i>", ttl = 60, ignore = [self])]
    fn square(&self, i: u64) -> u64 {
        CALLS.fetch_add(1, Ordering::SeqCst);
        i * i
    }

    #[cachewright::cached(key = "ignored_self_cube:<i>", ttl = 60, swr = 5, ignore = [self])]
    async fn cube(&self, i: u64) -> u64 {
        i * i * i
    }
}

trait Lookup {
    async fn look(&self, i: u64) -> u64;
}

impl Lookup for Client {
    #[cachewright::cached(key = "ignored_self_look:<i>", ttl = 60, ignore = [self])]
    async fn look(&self, i: u64) -> u64 {
        i + 1
    }
}

#[tokio::main]
async fn main() {
    let a = Client { connection: 1 };
    let b = Client { connection: 2 };
    assert_eq!(a.square(3), 9);
    assert_eq!(b.square(3), 9);
    // The second receiver was served the first one's entry.
    assert_eq!(CALLS.load(Ordering::SeqCst), 1);
    assert_eq!(a.cube(2).await, 8);
    assert_eq!(b.look(2).await, 3);
}
