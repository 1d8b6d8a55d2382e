#![doc = include_str!("../README.md")]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![forbid(unsafe_code)]

// The attributes: a cached function, a write that invalidates, a background
// writer.
pub use cachewright_macros::{bg_writer, cache_write, cached};

// Caches: the process-wide ones and their configuration, your own, and the
// direct API on them (`get`, `set`, `get_or_load`, `delete`, `invalidate_*`).
pub use cachewright_runtime::{
    configure, default_cache, AsCache, Cache, CacheBuilder, ConfigError, EnvProblem, LoadOptions,
    NamedCache, Setup, DEFAULT_CAPACITY, DEFAULT_INVALIDATION_LEASE, DEFAULT_MAX_VALUE_BYTES,
};

// Keys, tags, entries and time.
pub use cachewright_runtime::{
    tag, Clock, Entry, Freshness, Key, ManualClock, Millis, Stamp, Tags,
};

// Layers below the in-process one, and how values are encoded there.
pub use cachewright_runtime::{backends, BusStats, Codec, LayerConfig, LayerStats};

// Inside a loader (`set_ttl`, `do_not_cache`, `add_tags`) and around a call (`bypass`,
// `refresh`).
pub use cachewright_runtime::{
    add_tags, bypass, bypass_async, do_not_cache, refresh, refresh_async, set_ttl,
};

// Background writers and readers.
pub use cachewright_runtime::{shutdown, shutdown_async, BgError, BgReader, BgWriter};

// Counters.
pub use cachewright_runtime::{stats, stats_for, Stats};

#[doc(hidden)]
pub use cachewright_runtime::__private;
