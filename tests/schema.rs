//! Entries written for another value type, or at another schema version,
//! are misses in a remote layer: never a value that happens to deserialize.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, LazyLock};

use cachewright::backends::MemoryBackend;
use cachewright::{cached, Cache, LayerConfig};

static SHARED: LazyLock<Arc<MemoryBackend>> = LazyLock::new(Default::default);
fn cache() -> Cache {
    Cache::builder()
        .namespace("schema")
        .layer(LayerConfig::shared(SHARED.clone()))
        .build()
}
static OLD: LazyLock<Cache> = LazyLock::new(cache);
static NEW: LazyLock<Cache> = LazyLock::new(cache);
static LOADS: AtomicU32 = AtomicU32::new(0);

/// The build before: amounts in cents, as a number.
#[cached(key = "price:<id>", ttl = 600, cache = OLD, name = "Price")]
fn price_v1(id: u32) -> u64 {
    LOADS.fetch_add(1, SeqCst);
    u64::from(id) * 100
}

/// The next build: the same use case, key and JSON shape (a number), but
/// the amount is now in euros; `schema = 2` says so.
#[cached(key = "price:<id>", ttl = 600, cache = NEW, name = "Price", schema = 2)]
fn price_v2(id: u32) -> u64 {
    LOADS.fetch_add(1, SeqCst);
    u64::from(id)
}

#[test]
fn a_bumped_schema_reads_older_entries_as_misses() {
    assert_eq!(price_v1(3), 300);
    assert_eq!(LOADS.load(SeqCst), 1);
    assert_eq!(price_v2(3), 3, "loaded, not the cents of the build before");
    assert_eq!(LOADS.load(SeqCst), 2);
    assert_eq!(
        NEW.layer_stats()[0].decode_errors,
        1,
        "the old entry was refused"
    );
}

/// `exists` tells an entry of another schema version from one `get` would
/// read, as `get` does (it said the entry existed while `get` read a miss).
#[test]
fn an_entry_of_another_schema_does_not_exist() {
    let shared = Arc::new(MemoryBackend::new());
    let at = |schema| {
        Cache::builder()
            .namespace("schema-exists")
            .schema(schema)
            .layer(LayerConfig::shared(shared.clone()))
            .build()
    };
    let (old, new) = (at(1), at(2));
    let key = old.key("price", &3);
    old.set(&key, 300u64, None);
    assert_eq!(new.get::<u64>(&key), None, "another schema: a miss");
    assert!(!new.exists(&key), "and absent, as get says");
    assert!(at(1).exists(&key), "at its own schema it exists");
}
