// `ignore` may only name parameters of the function.
#[cachewright::cached(key = "user:<id>", ttl = 60, ignore = [trace])]
fn get_user(id: u64, trace_id: u64) -> u64 {
    let _ = trace_id;
    id
}

fn main() {}
