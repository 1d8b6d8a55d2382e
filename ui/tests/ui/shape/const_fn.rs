// A const fn runs at compile time, where there is no cache; the error points
// at `const`.
#[cachewright::cached(key = "user:<id>", ttl = 60)]
const fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
