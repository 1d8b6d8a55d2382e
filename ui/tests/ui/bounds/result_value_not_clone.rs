// For a `Result`, the cached value is the `Ok` type; the error points at it.
struct Report {
    rows: Vec<u64>,
}

#[cachewright::cached(key = "report:<id>", ttl = 60)]
fn report(id: u64) -> Result<Report, String> {
    Ok(Report { rows: vec![id] })
}

fn main() {}
