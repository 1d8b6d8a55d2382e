use cachewright::cache_write;

#[cache_write(before = true)]
fn rename(id: u64) {
    let _ = id;
}

fn main() {}
