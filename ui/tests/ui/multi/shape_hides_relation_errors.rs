// A function that returns nothing, with `swr` but no `ttl` and a placeholder
// that names no parameter: all three are mistakes.
#[cachewright::cached(key = "user:<idd>", swr = 30)]
fn touch(id: u64) {
    let _ = id;
}

fn main() {}
