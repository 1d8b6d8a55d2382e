// A misspelt argument is rejected at its name, and the message lists every
// valid argument.
#[cachewright::cached(key = "user:<id>", tll = 60)]
fn get_user(id: u64) -> u64 {
    id
}

fn main() {}
