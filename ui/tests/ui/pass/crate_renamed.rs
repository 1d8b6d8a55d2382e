//! `crate = "..."` for a user who reaches cachewright under another path
//! (a re-export, a renamed dependency): generated code names only it.

mod deps {
    pub use cachewright as caching;
}

use deps::caching;

#[caching::cached(key = "user:<id>", ttl = 60, crate = "crate::deps::caching")]
fn get_user(id: u64) -> u64 {
    id + 1
}

#[caching::cache_write(invalidate = ["user:<id>"], crate = "crate::deps::caching")]
fn rename_user(id: u64) {
    let _ = id;
}

#[caching::bg_writer(key = "renamed_config", interval = 0, crate = "crate::deps::caching")]
fn renamed_config() -> u32 {
    3
}

fn main() {
    assert_eq!(get_user(1), 2);
    rename_user(1);
    assert_eq!(get_user(1), 2);
    assert_eq!(*renamed_config.get().unwrap(), 3);
}
