// The cached value of a `Result` is its `Ok` type, which may not be a
// reference either; the error points at that type.
#[cachewright::cached(key = "user:<id>", ttl = 60)]
fn name(id: u64) -> Result<&'static str, String> {
    if id == 0 { Ok("root") } else { Err("no".into()) }
}

fn main() {}
