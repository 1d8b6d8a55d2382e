use std::sync::atomic::{AtomicU32, Ordering};

static LOADS: AtomicU32 = AtomicU32::new(0);

/// A sync writer that can fail: `on_error` sees the error.
#[cachewright::bg_writer(key = "pass_config", interval = 0, on_error = |e: &String| eprintln!("{e}"))]
fn pass_config() -> Result<u32, String> {
    Ok(LOADS.fetch_add(1, Ordering::SeqCst) + 10)
}

fn main() {
    assert_eq!(*pass_config.get().unwrap(), 10);
    assert_eq!(*pass_config.get().unwrap(), 10, "kept in memory");
    assert_eq!(LOADS.load(Ordering::SeqCst), 1);
}
