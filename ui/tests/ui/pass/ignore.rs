// Parameters that are not key values (a handle, a trace id) are left out
// with `ignore`; they need none of the key bounds.
struct Db {
    scale: u64,
}

#[cachewright::cached(key = "user:<id>", ttl = 60, ignore = [db, trace_id])]
fn get_user(db: &Db, id: u64, trace_id: f64) -> u64 {
    let _ = trace_id;
    id * db.scale
}

fn main() {
    let db = Db { scale: 3 };
    assert_eq!(get_user(&db, 2, 0.5), 6);
    assert_eq!(get_user(&db, 2, 1.5), 6);
}
