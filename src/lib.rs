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
    NamedCache, Setup, TtlPreset, DEFAULT_CAPACITY, DEFAULT_INVALIDATION_LEASE,
    DEFAULT_MAX_VALUE_BYTES,
};

// Keys, tags, entries and time.
pub use cachewright_runtime::{
    tag, Clock, Entry, Freshness, Key, ManualClock, Millis, Stamp, Tags,
};

// Layers below the in-process one, and how values are encoded there.
pub use cachewright_runtime::{
    backends, BusStats, Codec, Health, HealthState, Inspect, Inspection, KeyInfo, LayerConfig,
    LayerHealth, LayerKeys, LayerState, LayerStats,
};

// Inside a loader (`set_ttl`, `do_not_cache`, `add_tags`, `mark_failed`) and around a
// call (`bypass`, `refresh`); the error of a call past its `hard_timeout`.
pub use cachewright_runtime::{
    add_tags, bypass, bypass_async, do_not_cache, mark_failed, refresh, refresh_async, set_ttl,
    Timeout,
};

// Whether calls use the cache: scopes for a block of code, and a
// process-wide switch (`configure().enabled_by_default(false)` for
// off-by-default).
pub use cachewright_runtime::{
    caching_enabled, disabled, disabled_sync, enabled, enabled_sync, set_caching_enabled, Scoped,
};

// Per-use-case settings at run time: a provider asked per use case and on
// `Cache::reload`, with a TTL, an on/off switch and a ramp per layer.
pub use cachewright_runtime::{ConfigFor, ConfigProvider, LayerTuning, UseCaseConfig};

// Background writers and readers.
pub use cachewright_runtime::{
    shutdown, shutdown_async, BgError, BgReader, BgWriter, WriterHealth,
};

// Counters.
pub use cachewright_runtime::{stats, stats_for, CacheStats, Stats, METRICS};

#[doc(hidden)]
pub use cachewright_runtime::__private;
