// `ignore = [self]` is for methods taking `&self`.
#[cachewright::cached(key = "row:<i>", ttl = 60, ignore = [self])]
fn row(i: u64) -> u64 {
    i
}

struct Repo;

impl Repo {
    #[cachewright::cached(key = "new_repo:<i>", ttl = 60, ignore = [self])]
    fn make(i: u64) -> u64 {
        i
    }
}

fn main() {}
