use cachewright::cache_write;

#[cache_write(invalidate = ["user:<idd>"])]
fn rename(id: u64, name: String) -> Result<(), String> {
    let _ = (id, name);
    Ok(())
}

fn main() {}
