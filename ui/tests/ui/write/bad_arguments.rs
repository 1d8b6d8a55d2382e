use cachewright::cache_write;

// Every mistake is reported at once: an unknown argument, a tag that is not
// a string literal, a buffer that is not a duration, `before` not a bool.
#[cache_write(invalidate = ["user:<id>", org], buffer = "soon", before = 1, evict = true)]
fn rename(id: u64, org: u64) -> Result<(), String> {
    let _ = (id, org);
    Ok(())
}

fn main() {}
