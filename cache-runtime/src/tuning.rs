//! Per-use-case configuration at run time: what an application's
//! [`ConfigProvider`] says about each use case's layers (TTL, on or off, a
//! ramp per layer), and the atomics a use case keeps it in.
//!
//! A use case asks its cache's provider once, when it is built, and again on
//! [`Cache::reload`](crate::Cache::reload). What the provider leaves unsaid
//! comes from the attribute.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::layer::LayerSet;

/// How one layer serves one use case: whether it is used, how long it keeps
/// a value, and what share of calls use it.
///
/// # Examples
///
/// ```
/// use cachewright::LayerTuning;
/// use std::time::Duration;
///
/// let l1 = LayerTuning::new().ttl(Duration::from_secs(5)).ramp(30.0);
/// assert_eq!(l1.ttl_of(), Some(Duration::from_secs(5)));
/// assert_eq!(l1.ramp_of(), 30.0);
/// // A TTL of zero means: do not cache in this layer.
/// assert!(!LayerTuning::new().ttl(Duration::ZERO).is_enabled());
/// assert!(!LayerTuning::new().ttl(Duration::from_micros(500)).enabled(true).is_enabled());
/// assert!(!LayerTuning::off().is_enabled());
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LayerTuning {
    enabled: bool,
    ttl: Option<Duration>,
    ramp: f64,
}

impl Default for LayerTuning {
    fn default() -> Self {
        LayerTuning::new()
    }
}

impl LayerTuning {
    /// The layer used by every call, for as long as the attribute says.
    pub const fn new() -> Self {
        LayerTuning {
            enabled: true,
            ttl: None,
            ramp: 100.0,
        }
    }

    /// The layer not used at all: calls neither read nor fill it.
    pub const fn off() -> Self {
        LayerTuning {
            enabled: false,
            ttl: None,
            ramp: 100.0,
        }
    }

    /// Whether the layer is used (default `true`).
    pub const fn enabled(mut self, on: bool) -> Self {
        self.enabled = on;
        self
    }

    /// How long this layer keeps a value of the use case, from when the
    /// layer gets it. It replaces the attribute's `local_ttl` /
    /// `remote_ttl` for the layer; the value's own `ttl` and `swr` still
    /// bound it (a layer never serves a value past them). Zero (or
    /// anything under a millisecond) turns the layer off, whatever
    /// [`enabled`](Self::enabled) says.
    pub const fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The share of calls, in percent, that use this layer, drawn per call
    /// (default 100; 0 is the same as off). Values outside 0–100 are
    /// clamped; NaN counts as 100.
    pub fn ramp(mut self, percent: f64) -> Self {
        self.ramp = if percent.is_nan() {
            100.0
        } else {
            percent.clamp(0.0, 100.0)
        };
        self
    }

    /// Whether the layer is used: enabled, and not given a TTL under a
    /// millisecond.
    pub const fn is_enabled(&self) -> bool {
        self.enabled
            && match self.ttl {
                Some(t) => t.as_millis() > 0,
                None => true,
            }
    }

    /// The layer's TTL for the use case, if set.
    pub const fn ttl_of(&self) -> Option<Duration> {
        self.ttl
    }

    /// The layer's ramp, in percent.
    pub const fn ramp_of(&self) -> f64 {
        self.ramp
    }

    /// Per mille of calls that use the layer.
    fn per_mille(&self) -> u32 {
        if !self.is_enabled() {
            0
        } else {
            (self.ramp * 10.0).round() as u32
        }
    }
}

/// What a [`ConfigProvider`] says about one use case: its in-process layer,
/// its remote layers (all of them, or one by its backend's name: `"redis"`,
/// `"file"`, `"object_store"`, or a custom backend's name).
///
/// # Examples
///
/// ```
/// use cachewright::{LayerTuning, UseCaseConfig};
/// use std::time::Duration;
///
/// // GCache's example: 5 s in process, 10 s in Redis, every call.
/// let config = UseCaseConfig::new()
///     .local(LayerTuning::new().ttl(Duration::from_secs(5)))
///     .remote(LayerTuning::new().ttl(Duration::from_secs(10)))
///     .layer("file", LayerTuning::off());
/// assert_eq!(config.layer_of("redis").ttl_of(), Some(Duration::from_secs(10)));
/// assert!(!config.layer_of("file").is_enabled());
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UseCaseConfig {
    local: LayerTuning,
    remote: LayerTuning,
    layers: BTreeMap<String, LayerTuning>,
    shadow: Option<f64>,
}

impl UseCaseConfig {
    /// Every layer used by every call, for as long as the attribute says.
    pub fn new() -> Self {
        Self::default()
    }

    /// The in-process layer.
    pub fn local(mut self, tuning: LayerTuning) -> Self {
        self.local = tuning;
        self
    }

    /// Every remote layer not named with [`layer`](Self::layer).
    pub fn remote(mut self, tuning: LayerTuning) -> Self {
        self.remote = tuning;
        self
    }

    /// One remote layer, by its backend's name.
    pub fn layer(mut self, name: impl Into<String>, tuning: LayerTuning) -> Self {
        self.layers.insert(name.into(), tuning);
        self
    }

    /// The share of fresh hits, in percent, that also run the function in
    /// the background to compare its result with the cached one (shadow
    /// reads). Only functions with `shadow = ...` in their attribute have
    /// shadow reads compiled in; for the others this is ignored. Clamped
    /// to 0–100; NaN counts as 0.
    pub fn shadow(mut self, percent: f64) -> Self {
        self.shadow = Some(if percent.is_nan() {
            0.0
        } else {
            percent.clamp(0.0, 100.0)
        });
        self
    }

    /// The shadow-read share set here, in percent.
    pub fn shadow_of(&self) -> Option<f64> {
        self.shadow
    }

    /// The in-process layer's tuning.
    pub fn local_of(&self) -> LayerTuning {
        self.local
    }

    /// The remote layers named with [`layer`](Self::layer).
    pub(crate) fn named(&self) -> impl Iterator<Item = &str> {
        self.layers.keys().map(String::as_str)
    }

    /// The tuning of the remote layer named `name`.
    pub fn layer_of(&self, name: &str) -> LayerTuning {
        self.layers.get(name).copied().unwrap_or(self.remote)
    }
}

/// Which use case a [`ConfigProvider`] is asked about.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ConfigFor<'a> {
    /// The use case's name (`name = ...`, or the function's path).
    pub use_case: &'a str,
    /// Its key type (the key template's first segment).
    pub key_type: &'a str,
    /// The name of the cache it stores into.
    pub cache: &'a str,
}

/// The application's source of per-use-case settings (a feature-flag
/// service, a config file): asked once per use case when the use case is
/// built, and again for every use case on
/// [`Cache::reload`](crate::Cache::reload). `None` means: as the attribute
/// says. Any `Fn(&ConfigFor<'_>) -> Option<UseCaseConfig>` is one.
///
/// It is asked on the calling thread, so keep it quick: an application
/// that fetches settings over the network fetches them first, then calls
/// `reload`.
///
/// # Examples
///
/// ```
/// use cachewright::{Cache, ConfigFor, LayerTuning, UseCaseConfig};
///
/// let cache = Cache::builder()
///     .config_provider(|uc: &ConfigFor<'_>| {
///         (uc.use_case == "GetReport")
///             .then(|| UseCaseConfig::new().local(LayerTuning::new().ramp(10.0)))
///     })
///     .build();
/// assert_eq!(cache.reload(), 0); // no use case built yet
/// ```
pub trait ConfigProvider: Send + Sync + 'static {
    /// The settings of `use_case`, or `None` for the attribute's.
    fn config(&self, use_case: &ConfigFor<'_>) -> Option<UseCaseConfig>;
}

impl<F> ConfigProvider for F
where
    F: Fn(&ConfigFor<'_>) -> Option<UseCaseConfig> + Send + Sync + 'static,
{
    fn config(&self, use_case: &ConfigFor<'_>) -> Option<UseCaseConfig> {
        self(use_case)
    }
}

/// A shared provider, as caches keep it.
#[derive(Clone)]
pub(crate) struct Provider(pub(crate) Arc<dyn ConfigProvider>);

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConfigProvider")
    }
}

impl Provider {
    /// Asks the provider about `of`; a provider that panics is logged and
    /// read as `None`.
    pub(crate) fn ask(&self, of: &ConfigFor<'_>) -> Option<UseCaseConfig> {
        let p = &self.0;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.config(of))) {
            Ok(c) => c,
            Err(_) => {
                tracing::error!(
                    use_case = of.use_case,
                    "the configuration provider panicked; the attribute's settings apply"
                );
                None
            }
        }
    }
}

/// No TTL set by the provider.
const UNSET: u64 = u64::MAX;
/// No shadow reads compiled in.
const NO_SHADOW: u32 = u32::MAX;
/// Every call uses the use case and its in-process layer, and no remote
/// layer is ramped: the gate's value on the hot path.
pub(crate) const FULL: u64 = 1000 | (1000 << 32);
/// Set in the gate when some remote layer is ramped below 100 % or off.
pub(crate) const REMOTE_RAMPED: u64 = 1 << 63;
/// Set in the gate when some fresh hits are shadow-read.
const SHADOW: u64 = 1 << 62;

/// A use case's knobs: its ramp, and each layer's ramp and TTL.
#[derive(Debug)]
pub(crate) struct Tuning {
    /// Bits 0–31: per mille of calls that use the cache at all (the use
    /// case's ramp); bits 32–47: per mille that use the in-process layer;
    /// bit 62: some fresh hits are shadow-read; bit 63: some remote layer
    /// is ramped. [`FULL`] (bit 63 aside) when nothing is.
    gate: AtomicU64,
    /// Held by every change of the knobs, so that concurrent changes
    /// (`reload`, `set_shadow`, `set_ramp`) never leave the gate's bits
    /// disagreeing with the knobs they summarise.
    changing: std::sync::Mutex<()>,
    local_ttl_ms: AtomicU64,
    remote: Box<[Knobs]>,
    /// Per mille of fresh hits shadow-read; `u32::MAX` when the function
    /// has none compiled in.
    shadow: AtomicU32,
}

#[derive(Debug)]
struct Knobs {
    ramp: AtomicU32,
    ttl_ms: AtomicU64,
}

/// Which layers one call uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Drawn {
    pub(crate) local: bool,
    pub(crate) remote: LayerSet,
}

fn draw(per_mille: u32) -> bool {
    per_mille >= 1000 || (per_mille > 0 && fastrand::u32(0..1000) < per_mille)
}

impl Tuning {
    pub(crate) fn new(remote_layers: usize) -> Self {
        Tuning {
            gate: AtomicU64::new(FULL),
            local_ttl_ms: AtomicU64::new(UNSET),
            remote: (0..remote_layers)
                .map(|_| Knobs {
                    ramp: AtomicU32::new(1000),
                    ttl_ms: AtomicU64::new(UNSET),
                })
                .collect(),
            shadow: AtomicU32::new(NO_SHADOW),
            changing: std::sync::Mutex::new(()),
        }
    }

    fn changing(&self) -> std::sync::MutexGuard<'_, ()> {
        self.changing.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether this fresh hit is shadow-read (`gate` not [`FULL`]).
    pub(crate) fn shadow_due(&self, gate: u64) -> bool {
        gate & SHADOW != 0 && {
            let pm = self.shadow.load(Ordering::Relaxed);
            pm != NO_SHADOW && draw(pm)
        }
    }

    /// Sets the shadow-read share, per mille; `false` when the function
    /// has no shadow reads compiled in.
    pub(crate) fn set_shadow(&self, per_mille: u32) -> bool {
        let _g = self.changing();
        self.set_shadow_locked(per_mille)
    }

    fn set_shadow_locked(&self, per_mille: u32) -> bool {
        let pm = per_mille.min(1000);
        let ok = self
            .shadow
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                (s != NO_SHADOW).then_some(pm)
            })
            .is_ok();
        if ok {
            let flag = if pm > 0 { SHADOW } else { 0 };
            let _ = self
                .gate
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |g| {
                    Some((g & !SHADOW) | flag)
                });
        }
        ok
    }

    /// The shadow-read share, per mille, if compiled in.
    pub(crate) fn shadow(&self) -> Option<u32> {
        Some(self.shadow.load(Ordering::Relaxed)).filter(|&s| s != NO_SHADOW)
    }

    /// The gate, read once per call; [`FULL`] on the fast path.
    #[inline]
    pub(crate) fn gate(&self) -> u64 {
        self.gate.load(Ordering::Relaxed)
    }

    /// Whether one call uses the cache at all, and its in-process layer,
    /// drawn from `gate`.
    pub(crate) fn draw_call(&self, gate: u64) -> (bool, bool) {
        if gate == FULL {
            return (true, true);
        }
        let cache = draw((gate & 0xffff_ffff) as u32);
        (cache, cache && draw(((gate >> 32) & 0xffff) as u32))
    }

    /// The remote layers one call uses, drawn.
    pub(crate) fn draw_remote(&self) -> LayerSet {
        if self.gate() & REMOTE_RAMPED == 0 {
            return LayerSet::ALL;
        }
        let mut remote = LayerSet::NONE;
        for (i, k) in self.remote.iter().enumerate() {
            if draw(k.ramp.load(Ordering::Relaxed)) {
                remote = remote.with(i);
            }
        }
        remote
    }

    /// The layers a call not drawn for (a refresh) uses: those not off.
    pub(crate) fn enabled(&self) -> Drawn {
        let mut remote = LayerSet::NONE;
        for (i, k) in self.remote.iter().enumerate() {
            if k.ramp.load(Ordering::Relaxed) > 0 {
                remote = remote.with(i);
            }
        }
        Drawn {
            local: (self.gate() >> 32) & 0xffff > 0,
            remote,
        }
    }

    /// The use case's ramp, per mille.
    pub(crate) fn ramp(&self) -> u32 {
        (self.gate() & 0xffff_ffff) as u32
    }

    pub(crate) fn set_ramp(&self, per_mille: u32) {
        let _g = self.changing();
        let _ = self
            .gate
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |g| {
                Some((g & !0xffff_ffff) | u64::from(per_mille.min(1000)))
            });
    }

    /// Applies what the provider said (`None`: back to the attribute's
    /// settings); `names` are the remote layers' names, top down, and
    /// `shadow` the attribute's shadow share per mille (`None`: no shadow
    /// reads compiled in).
    pub(crate) fn apply(
        &self,
        config: Option<&UseCaseConfig>,
        names: &[&str],
        shadow: Option<u32>,
    ) {
        let _g = self.changing();
        let default = UseCaseConfig::default();
        let config = config.unwrap_or(&default);
        let ms = |t: Option<Duration>| {
            t.map_or(UNSET, |d| u64::try_from(d.as_millis()).unwrap_or(UNSET - 1))
        };
        self.local_ttl_ms
            .store(ms(config.local.ttl), Ordering::Relaxed);
        let mut ramped = false;
        for (k, name) in self.remote.iter().zip(names) {
            let t = config.layer_of(name);
            let per_mille = t.per_mille().min(1000);
            ramped |= per_mille < 1000;
            k.ramp.store(per_mille, Ordering::Relaxed);
            k.ttl_ms.store(ms(t.ttl), Ordering::Relaxed);
        }
        let local = u64::from(config.local.per_mille().min(1000));
        let flag = if ramped { REMOTE_RAMPED } else { 0 };
        let _ = self
            .gate
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |g| {
                Some((g & 0xffff_ffff) | (local << 32) | flag)
            });
        if let Some(default) = shadow {
            self.shadow.store(0, Ordering::Relaxed);
            let pm = config.shadow.map_or(default, |p| (p * 10.0).round() as u32);
            self.set_shadow_locked(pm);
        }
    }

    /// The in-process layer's TTL set by the provider.
    pub(crate) fn local_ttl(&self) -> Option<Duration> {
        match self.local_ttl_ms.load(Ordering::Relaxed) {
            UNSET => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// Remote layer `i`'s TTL set by the provider.
    pub(crate) fn remote_ttl(&self, i: usize) -> Option<Duration> {
        match self.remote.get(i)?.ttl_ms.load(Ordering::Relaxed) {
            UNSET => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_is_full_until_something_is_ramped() {
        let t = Tuning::new(2);
        assert_eq!(t.gate(), FULL);
        t.apply(None, &["redis", "file"], None);
        assert_eq!(t.gate(), FULL);
        let c = UseCaseConfig::new().layer("file", LayerTuning::off());
        t.apply(Some(&c), &["redis", "file"], None);
        assert_ne!(t.gate(), FULL);
        assert_eq!(t.draw_call(t.gate()), (true, true));
        let r = t.draw_remote();
        assert!(r.contains(0) && !r.contains(1));
        assert_eq!(t.enabled().remote, r);
        t.set_ramp(0);
        assert_eq!(t.draw_call(t.gate()), (false, false));
        assert_eq!(t.ramp(), 0);
        t.set_ramp(1000);
        t.apply(None, &["redis", "file"], None);
        assert_eq!(t.gate(), FULL);
    }

    #[test]
    fn ttls_round_trip_and_zero_is_off() {
        let t = Tuning::new(1);
        let c = UseCaseConfig::new()
            .local(LayerTuning::new().ttl(Duration::ZERO))
            .remote(LayerTuning::new().ttl(Duration::from_secs(10)));
        t.apply(Some(&c), &["redis"], Some(0));
        assert_eq!(t.shadow(), Some(0));
        assert!(t.set_shadow(50));
        assert_ne!(t.gate() & SHADOW, 0);
        assert!(!Tuning::new(0).set_shadow(50), "not compiled in");
        assert_eq!(t.remote_ttl(0), Some(Duration::from_secs(10)));
        assert_eq!(t.local_ttl(), Some(Duration::ZERO));
        assert_eq!(t.draw_call(t.gate()), (true, false));
        assert!(!t.enabled().local);
        assert!(t.enabled().remote.contains(0));
        assert_eq!(t.remote_ttl(5), None);
    }
}
