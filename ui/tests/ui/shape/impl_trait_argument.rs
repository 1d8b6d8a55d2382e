// An `impl Trait` argument makes the function generic; the error points at
// the argument's type.
#[cachewright::cached(key = "user:<id>", ttl = 60)]
fn get_user(id: impl std::fmt::Display) -> String {
    id.to_string()
}

fn main() {}
