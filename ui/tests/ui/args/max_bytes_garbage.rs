// A size needs a known unit, and a weigher is a function's name.
#[cachewright::cached(key = "page:<id>", max_bytes = "64 parsecs", weigher = 12)]
fn page(id: u64) -> String {
    id.to_string()
}

fn main() {}
