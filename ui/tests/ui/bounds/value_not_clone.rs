// A cached value is handed out on every hit, so it must be `Clone`; the error
// points at the return type.
struct Report {
    rows: Vec<u64>,
}

#[cachewright::cached(key = "report:<id>", ttl = 60)]
fn report(id: u64) -> Report {
    Report { rows: vec![id] }
}

fn main() {}
