//! The semantics of [cachewright](https://docs.rs/cachewright): key URNs, entries,
//! TTL / stale-while-revalidate / jitter, negative caching, single-flight,
//! the bounded in-process layer, runtime controls and counters.
//!
//! Users depend on `cachewright`, which re-exports this crate; the attribute
//! macros expand to calls into it through `cachewright::__private`.
#![warn(
    missing_docs,
    missing_debug_implementations,
    unreachable_pub,
    rust_2018_idioms
)]
#![forbid(unsafe_code)]

mod bg;
mod cache;
mod clock;
mod context;
mod entry;
mod envelope;
mod flight;
mod global;
mod key;
mod layer;
mod lifetime;
pub use lifetime::LoadOptions;
mod local;
mod metrics;
pub use metrics::METRICS;
mod scope;
pub use scope::{
    caching_enabled, disabled, disabled_sync, enabled, enabled_sync, set_caching_enabled, Scoped,
};
mod spawn;
mod stats;
mod tuning;
pub use tuning::{ConfigFor, ConfigProvider, LayerTuning, UseCaseConfig};
mod use_case;
mod watermark;

pub use bg::{shutdown, shutdown_async, BgError, BgReader, BgWriter, WriterHealth};
pub use cache::{
    BusStats, Cache, CacheBuilder, Health, HealthState, Inspect, Inspection, KeyInfo, LayerKeys,
    DEFAULT_CAPACITY, DEFAULT_INVALIDATION_LEASE, DEFAULT_MAX_VALUE_BYTES,
};
pub use cachewright_backends as backends;
pub use clock::{Clock, ManualClock, Millis, Stamp};
pub use context::{
    add_tags, bypass, bypass_async, do_not_cache, mark_failed, refresh, refresh_async, set_ttl,
};
pub use entry::{Entry, Freshness, Tags};
pub use envelope::Codec;
pub use global::{
    configure, default_cache, stats, stats_for, AsCache, ConfigError, EnvProblem, NamedCache,
    Setup, TtlPreset,
};
pub use key::{tag, Key};
pub use layer::{LayerConfig, LayerHealth, LayerState, LayerStats};
pub use stats::{CacheStats, Stats};
pub use use_case::Timeout;

/// What generated code calls. Not a public API: it changes without notice.
#[doc(hidden)]
pub mod __private {
    pub use crate::bg::{BgFailure, BgLoader, BgSpec};
    pub use crate::cache::Cache;
    pub use crate::checks::*;
    pub use crate::context::{take_mode, Mode};
    pub use crate::envelope::DecodeError;
    pub use crate::flight::{ShareError, SharedError};
    pub use crate::global::{default_cache, AsCache, TtlPreset};
    pub use crate::key::{escape_into, KeyRef, KeyTemplate, Segment};
    pub use crate::use_case::{
        AsyncJob, CodecProbe, EqFn, EqProbe, ErrorProbe, LayerChoice, Lookup, Miss, RefreshFailed,
        Resilience, Route, SyncJob, Timeout, UseCase, UseCaseSlot, UseCaseSpec, ValueCodec,
        ViaClone, ViaEncodedEq, ViaEq, ViaNoEq, ViaNothing, ViaOpaque, ViaSerde,
    };
}

mod checks;
