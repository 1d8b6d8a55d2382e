// A parameter left out of the template is still part of the key, so it needs
// the same bounds; the message suggests `ignore` or `adapt`.
#[derive(Clone, PartialEq, Eq, Hash)]
struct Db;

#[cachewright::cached(key = "user:<id>", ttl = 60)]
fn get_user(db: Db, id: u64) -> u64 {
    let _ = db;
    id
}

fn main() {}
