//! A use case: one cached function (or one direct-API caller), its typed L1,
//! its loads in flight and its counters.

use std::any::Any;
use std::fmt::{self, Display};
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::cache::Cache;
use crate::clock::{Clock, Millis};
use crate::context::{self, AsyncLoader, Directive, Loader, Mode, SyncLoader};
use crate::entry::{Entry, Freshness, Held, Tags};
use crate::envelope::{self, Codec, DecodeError};
use crate::flight::{self, Flights, Load, Outcome, Role, ShareError, Wait};
use crate::key::{self, Key, KeyRef, Segment};
use crate::layer::LayerSet;
use crate::local::{Admit, Admitted, Store};
use crate::stats::{Counters, Stats};
use crate::watermark::Watermarks;

/// What the macros know about a cached function at compile time.
#[derive(Debug)]
#[doc(hidden)]
pub struct UseCaseSpec {
    /// The use case's name.
    pub name: &'static str,
    /// The key type (the template's text before the first placeholder).
    pub key_type: &'static str,
    /// The id template.
    pub id: &'static [Segment],
    /// The arguments outside the template: name and value index.
    pub args: &'static [(&'static str, usize)],
    /// Tag templates.
    pub tags: &'static [&'static [Segment]],
    /// Fresh lifetime in milliseconds; `None` keeps entries until evicted.
    pub ttl_ms: Option<u64>,
    /// Stale-while-revalidate window in milliseconds.
    pub swr_ms: u64,
    /// Lifetime of a cached `None`; `None` does not cache absences.
    pub negative_ttl_ms: Option<u64>,
    /// Spread of each entry's TTL, as a fraction (0.1 = ±10 %).
    pub jitter: f64,
    /// The L1 bound for this use case; the cache's default when `None`.
    pub capacity: Option<usize>,
    /// Which layers: [`LAYER_LOCAL`], [`LAYER_REMOTE`] or both.
    pub layers: u8,
    /// Cap of this use case's TTL in the in-process layer.
    pub local_ttl_ms: Option<u64>,
    /// Cap of this use case's TTL in remote layers.
    pub remote_ttl_ms: Option<u64>,
}

/// The in-process layer.
#[doc(hidden)]
pub const LAYER_LOCAL: u8 = 1;
/// The cache's remote layers (Redis, file, ...).
#[doc(hidden)]
pub const LAYER_REMOTE: u8 = 2;

/// How a use case's values are encoded for remote layers; `None` when its
/// value type is not `Serialize + DeserializeOwned` (it then stays in
/// process). Generated code picks it with [`CodecProbe`].
#[doc(hidden)]
pub struct ValueCodec<V> {
    encode: EncodeFn<V>,
    decode: DecodeFn<V>,
}

/// Encodes an entry stored under a key (see `envelope::encode`).
type EncodeFn<V> = fn(&str, &Entry<V>, Codec) -> Result<Vec<u8>, String>;
/// Decodes an entry read under a key, given the tags expected of it.
type DecodeFn<V> = fn(&[u8], Codec, &str, &Tags) -> Result<Entry<V>, DecodeError>;

impl<V> Clone for ValueCodec<V> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<V> Copy for ValueCodec<V> {}

impl<V> fmt::Debug for ValueCodec<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ValueCodec")
    }
}

/// Picks a [`ValueCodec`] when `V` is serde-capable, by autoref resolution:
/// `(&CodecProbe::<V>::new()).value_codec()` with [`ViaSerde`] and
/// [`ViaOpaque`] in scope.
#[doc(hidden)]
pub struct CodecProbe<V>(std::marker::PhantomData<fn() -> V>);

impl<V> fmt::Debug for CodecProbe<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodecProbe")
    }
}

impl<V> Default for CodecProbe<V> {
    fn default() -> Self {
        Self::new()
    }
}

impl<V> CodecProbe<V> {
    /// A probe.
    pub const fn new() -> Self {
        CodecProbe(std::marker::PhantomData)
    }
}

/// The codec probe's first choice.
#[doc(hidden)]
pub trait ViaSerde<V> {
    /// The codec this value type allows.
    fn value_codec(&self) -> Option<ValueCodec<V>>;
}

impl<V: Serialize + DeserializeOwned> ViaSerde<V> for CodecProbe<V> {
    fn value_codec(&self) -> Option<ValueCodec<V>> {
        Some(ValueCodec {
            encode: envelope::encode::<V>,
            decode: envelope::decode::<V>,
        })
    }
}

/// The codec probe's fallback.
#[doc(hidden)]
pub trait ViaOpaque<V> {
    /// The codec this value type allows.
    fn value_codec(&self) -> Option<ValueCodec<V>>;
}

impl<V> ViaOpaque<V> for &CodecProbe<V> {
    fn value_codec(&self) -> Option<ValueCodec<V>> {
        None
    }
}

/// The result of looking a call up in L1.
#[doc(hidden)]
#[derive(Debug)]
pub enum Lookup<V> {
    /// A fresh value.
    Hit(V),
    /// A value past its TTL, inside its SWR window: serve it and refresh.
    Stale(V),
    /// Nothing servable; load, in this mode.
    Miss(Mode),
}

/// A miss, with everything needed to load and store the value.
#[doc(hidden)]
pub struct Miss<K> {
    hash: u64,
    key: K,
    urn: Key,
    tags: Tags,
    mode: Mode,
}

impl<K> fmt::Debug for Miss<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Miss")
            .field("urn", &self.urn.as_str())
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// A background refresh that failed (its error is the loader's; only the
/// fact is kept, since the caller is long gone).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefreshFailed;

/// A background refresh job of a sync function.
#[doc(hidden)]
pub type SyncJob<V> = Box<dyn FnOnce() -> Result<V, RefreshFailed> + Send>;
/// A background refresh job of an async function.
#[doc(hidden)]
pub type AsyncJob<V> = Pin<Box<dyn Future<Output = Result<V, RefreshFailed>> + Send>>;

/// A cached function's runtime state. Built once, on first call, and kept for
/// the life of the process.
pub struct UseCase<K, V> {
    spec: &'static UseCaseSpec,
    cache: Cache,
    clock: Clock,
    store: Store<K, Held<V>>,
    marks: std::sync::Arc<Watermarks>,
    flights: Flights<K, V>,
    counters: Counters,
    negative: Option<fn(&V) -> bool>,
    /// Per mille of calls that use the cache (1000 = all).
    ramp: AtomicU32,
    /// Whether values live in the in-process layer.
    local: bool,
    /// How values are encoded for the remote layers, if they use them.
    remote: Option<ValueCodec<V>>,
    local_cap: Option<Duration>,
    remote_cap: Option<Duration>,
}

impl<K, V> fmt::Debug for UseCase<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UseCase")
            .field("name", &self.spec.name)
            .field("cache", &self.cache.name())
            .finish_non_exhaustive()
    }
}

/// The static slot a macro emits per cached function.
#[doc(hidden)]
pub struct UseCaseSlot {
    spec: UseCaseSpec,
    cell: OnceLock<Box<dyn Any + Send + Sync>>,
}

impl fmt::Debug for UseCaseSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UseCaseSlot")
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

impl UseCaseSlot {
    /// A slot for `spec`, filled on first use.
    pub const fn new(spec: UseCaseSpec) -> Self {
        UseCaseSlot {
            spec,
            cell: OnceLock::new(),
        }
    }

    /// The use case, built on first call in `cache`. The key type follows
    /// from the borrowed key `_q`. `None` only if one slot were used with two
    /// value types, which generated code never does.
    #[inline]
    pub fn get<Q, V>(
        &'static self,
        _q: &Q,
        cache: impl FnOnce() -> Cache,
        negative: Option<fn(&V) -> bool>,
        codec: Option<ValueCodec<V>>,
    ) -> Option<&'static UseCase<Q::Owned, V>>
    where
        Q: KeyRef,
        Q::Owned: Clone,
        V: Clone + Send + Sync + 'static,
    {
        if let Some(b) = self.cell.get() {
            return b.downcast_ref();
        }
        self.init(cache, negative, codec)
    }

    #[cold]
    fn init<K, V>(
        &'static self,
        cache: impl FnOnce() -> Cache,
        negative: Option<fn(&V) -> bool>,
        codec: Option<ValueCodec<V>>,
    ) -> Option<&'static UseCase<K, V>>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let mut built = false;
        let b = self.cell.get_or_init(|| {
            built = true;
            let cache = cache();
            Box::new(UseCase::<K, V>::new(&self.spec, cache, negative, codec))
        });
        let uc = b.downcast_ref::<UseCase<K, V>>()?;
        if built {
            uc.cache.register(uc);
        }
        Some(uc)
    }
}

/// What a cache needs of each of its use cases, whatever their types.
pub(crate) trait UseCaseInfo: Send + Sync {
    fn name(&self) -> &'static str;
    fn stats(&self) -> Stats;
    fn reset_stats(&self);
    fn clear(&self);
    fn cleanup_expired(&self) -> usize;
    fn set_ramp(&self, per_mille: u32);
    fn ramp(&self) -> u32;
}

impl<K, V> UseCaseInfo for UseCase<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn name(&self) -> &'static str {
        self.spec.name
    }
    fn stats(&self) -> Stats {
        self.counters
            .snapshot(self.spec.name, self.store.len(), self.store.capacity())
    }
    fn reset_stats(&self) {
        self.counters.reset();
    }
    fn clear(&self) {
        self.store.clear();
    }
    fn cleanup_expired(&self) -> usize {
        let now = self.clock.now_ms();
        self.store.remove_where(|_, e| e.entry.is_expired(now))
    }
    fn set_ramp(&self, per_mille: u32) {
        self.ramp.store(per_mille.min(1000), Ordering::Relaxed);
    }
    fn ramp(&self) -> u32 {
        self.ramp.load(Ordering::Relaxed)
    }
}

/// Picks [`ShareError::cloning`] when `E` allows it and
/// [`ShareError::none`] otherwise, by autoref resolution:
/// `(&ErrorProbe::<E>::new()).share_error()` with [`ViaClone`] and
/// [`ViaNothing`] in scope.
#[doc(hidden)]
pub struct ErrorProbe<E>(std::marker::PhantomData<fn() -> E>);

impl<E> fmt::Debug for ErrorProbe<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ErrorProbe")
    }
}

impl<E> Default for ErrorProbe<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> ErrorProbe<E> {
    /// A probe.
    pub const fn new() -> Self {
        ErrorProbe(std::marker::PhantomData)
    }
}

/// The probe's first choice; see [`ErrorProbe`].
#[doc(hidden)]
pub trait ViaClone<E> {
    /// The sharing this error type allows.
    fn share_error(&self) -> ShareError<E>;
}

impl<E: Clone + Send + 'static> ViaClone<E> for ErrorProbe<E> {
    fn share_error(&self) -> ShareError<E> {
        ShareError::cloning()
    }
}

/// The probe's fallback; see [`ErrorProbe`].
#[doc(hidden)]
pub trait ViaNothing<E> {
    /// The sharing this error type allows.
    fn share_error(&self) -> ShareError<E>;
}

impl<E> ViaNothing<E> for &ErrorProbe<E> {
    fn share_error(&self) -> ShareError<E> {
        ShareError::none()
    }
}

impl<K, V> UseCase<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn new(
        spec: &'static UseCaseSpec,
        cache: Cache,
        negative: Option<fn(&V) -> bool>,
        codec: Option<ValueCodec<V>>,
    ) -> Self {
        let capacity = spec.capacity.unwrap_or_else(|| cache.default_capacity());
        let wants_remote = spec.layers & LAYER_REMOTE != 0 && !cache.layers().is_empty();
        if wants_remote && codec.is_none() {
            tracing::warn!(
                use_case = spec.name,
                "the value type is not Serialize + DeserializeOwned: cached in process only"
            );
        }
        let remote = if wants_remote { codec } else { None };
        // With no layer to keep values in, keep them in process after all.
        let local = spec.layers & LAYER_LOCAL != 0 || remote.is_none();
        let ms = |v: Option<u64>| v.map(Duration::from_millis);
        let local_cap = match (ms(spec.local_ttl_ms), cache.local_ttl()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        UseCase {
            spec,
            clock: cache.clock().clone(),
            store: Store::new(capacity),
            marks: cache.marks().clone(),
            flights: Flights::new(),
            counters: Counters::default(),
            negative,
            ramp: AtomicU32::new(1000),
            local,
            remote,
            local_cap,
            remote_cap: ms(spec.remote_ttl_ms),
            cache,
        }
    }

    /// The use case's name.
    pub fn name(&self) -> &'static str {
        self.spec.name
    }

    /// The cache this use case stores into.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Looks a call up in L1. The hot path: no allocation, no key built, one
    /// coarse clock read, one shard read lock.
    #[inline]
    pub fn lookup<Q: KeyRef<Owned = K>>(&self, q: &Q) -> Lookup<V> {
        let mode = context::take_mode();
        if mode != Mode::Normal || !self.ramped_in() {
            return Lookup::Miss(if mode == Mode::Normal {
                Mode::Bypass
            } else {
                mode
            });
        }
        let hash = self.store.hash(q);
        let now = self.clock.now_ms();
        let marks = &*self.marks;
        let found = self.store.with(
            hash,
            |k| q.matches(k),
            |h| {
                let e = &h.entry;
                let fresh = match e.freshness(now) {
                    Freshness::Fresh => true,
                    Freshness::Stale => false,
                    Freshness::Expired => return None,
                };
                // Invalidated (by tag, entity or key), or L1 not trusted.
                if !h.valid(marks) {
                    return None;
                }
                Some((fresh, e.negative, e.value.clone()))
            },
        );
        match found.flatten() {
            Some((fresh, negative, v)) => {
                self.counters.hit();
                if negative {
                    self.counters.negative_hit();
                }
                if fresh {
                    tracing::trace!(use_case = self.spec.name, "cache hit");
                    Lookup::Hit(v)
                } else {
                    self.counters.stale_hit();
                    tracing::debug!(use_case = self.spec.name, "cache stale hit");
                    Lookup::Stale(v)
                }
            }
            None => Lookup::Miss(Mode::Normal),
        }
    }

    #[inline]
    fn ramped_in(&self) -> bool {
        let ramp = self.ramp.load(Ordering::Relaxed);
        ramp >= 1000 || (ramp > 0 && fastrand::u32(0..1000) < ramp)
    }

    /// Builds what a load needs (owned key, URN, tags) from the call's key
    /// values. Runs on a miss only.
    pub fn miss<Q: KeyRef<Owned = K>>(
        &self,
        q: &Q,
        values: &[&dyn Display],
        mode: Mode,
    ) -> Miss<K> {
        let (urn, tags) = self.render(values);
        if mode == Mode::Normal {
            self.counters.miss();
            tracing::debug!(use_case = self.spec.name, key = urn.as_str(), "cache miss");
        }
        Miss {
            hash: self.store.hash(q),
            key: q.to_owned_key(),
            urn,
            tags,
            mode,
        }
    }

    fn render(&self, values: &[&dyn Display]) -> (Key, Tags) {
        let spec = self.spec;
        let mut urn = String::with_capacity(64);
        urn.push_str("urn:");
        key::escape_into(&mut urn, self.cache.namespace());
        urn.push(':');
        key::escape_into(&mut urn, self.cache.version());
        urn.push(':');
        let entity_start = urn.len();
        urn.push_str(spec.key_type);
        if !spec.id.is_empty() {
            urn.push(':');
            key::render(&mut urn, spec.id, values);
        }
        let entity_end = urn.len();
        for (i, (name, idx)) in spec.args.iter().enumerate() {
            urn.push(if i == 0 { '?' } else { '&' });
            urn.push_str(name);
            urn.push('=');
            match values.get(*idx) {
                Some(v) => key::escape_into(&mut urn, *v),
                None => urn.push_str("%00"),
            }
        }
        urn.push('#');
        urn.push_str(spec.name);
        let mut tags = Vec::with_capacity(1 + spec.tags.len());
        // The entity: key type and first value (`user:7` for "user:<id>:posts:<page>").
        let mut entity = String::from(spec.key_type);
        if let Some(first) = spec.id.iter().find_map(|s| match s {
            Segment::Value(i) => Some(*i),
            Segment::Text(_) => None,
        }) {
            entity.push(':');
            if let Some(v) = values.get(first) {
                key::escape_into(&mut entity, *v);
            }
        }
        tags.push(entity.into_boxed_str());
        for t in spec.tags {
            let mut s = String::new();
            key::render(&mut s, t, values);
            if !tags.iter().any(|have| **have == *s) {
                tags.push(s.into_boxed_str());
            }
        }
        (
            Key::from_parts(urn, entity_start, entity_end),
            Tags::from(tags),
        )
    }

    /// Loads a missed call through single-flight and stores the result.
    /// The sync adapter of [`load_async`](Self::load_async): the same loop,
    /// with waiters blocking and the remote layers read on cachewright's
    /// I/O runtime.
    pub fn load_sync<E>(
        &'static self,
        miss: Miss<K>,
        share: ShareError<E>,
        loader: impl FnOnce() -> Result<V, E>,
    ) -> Result<V, E> {
        flight::block_here(self.load(&miss, share, SyncLoader(loader), Wait::Block))
    }

    /// Loads a missed call through single-flight and stores the result;
    /// waiting does not block the executor, and a cancelled leader hands the
    /// load on.
    pub async fn load_async<E, F>(
        &'static self,
        miss: Miss<K>,
        share: ShareError<E>,
        loader: F,
    ) -> Result<V, E>
    where
        F: Future<Output = Result<V, E>>,
    {
        self.load(&miss, share, AsyncLoader(loader), Wait::Yield)
            .await
    }

    async fn load<E>(
        &'static self,
        miss: &Miss<K>,
        share: ShareError<E>,
        loader: impl Loader<V, E>,
        wait: Wait,
    ) -> Result<V, E> {
        match miss.mode {
            Mode::Bypass => {
                self.counters.bypass();
                loader.run().await.0
            }
            Mode::Refresh => self.call(miss, loader, wait).load().await,
            Mode::Normal => {
                flight::run(
                    &self.flights,
                    &miss.key,
                    wait,
                    share,
                    self.call(miss, loader, wait),
                )
                .await
            }
        }
    }

    fn call<'m, E, L: Loader<V, E>>(
        &'static self,
        miss: &'m Miss<K>,
        loader: L,
        wait: Wait,
    ) -> Call<'m, K, V, E, L> {
        Call {
            uc: self,
            miss,
            loader,
            blocking: wait == Wait::Block,
            failed: LayerSet::NONE,
            error: std::marker::PhantomData,
        }
    }

    fn peek_fresh(&self, miss: &Miss<K>) -> Option<V> {
        if !self.local {
            return None;
        }
        let now = self.clock.now_ms();
        let marks = &*self.marks;
        self.store
            .with(
                miss.hash,
                |k| *k == miss.key,
                |h| {
                    (h.entry.freshness(now) == Freshness::Fresh && h.valid(marks))
                        .then(|| h.entry.value.clone())
                },
            )
            .flatten()
    }

    /// How long a result is cached, or `None` to keep it out.
    fn lifetime(&self, v: &V, said: Directive) -> Option<(Option<Duration>, Duration, bool)> {
        let spec = self.spec;
        let negative = self.negative.is_some_and(|f| f(v));
        let ttl = match said {
            Directive::Skip => return None,
            Directive::Ttl(d) if d.is_zero() => return None,
            Directive::Ttl(d) => Some(d),
            Directive::Default if negative => Some(Duration::from_millis(spec.negative_ttl_ms?)),
            Directive::Default => spec.ttl_ms.map(|ms| {
                if spec.jitter > 0.0 {
                    let spread = (fastrand::f64() * 2.0 - 1.0) * spec.jitter;
                    Duration::from_millis(((ms as f64) * (1.0 + spread)).max(1.0) as u64)
                } else {
                    Duration::from_millis(ms)
                }
            }),
        };
        let swr = if negative {
            Duration::ZERO
        } else {
            Duration::from_millis(spec.swr_ms)
        };
        Some((ttl, swr, negative))
    }

    /// The entry to store for a loaded value, or `None` to keep it out.
    fn entry(&self, miss: &Miss<K>, v: V, said: Directive) -> Option<Entry<V>> {
        let Some((ttl, swr, negative)) = self.lifetime(&v, said) else {
            tracing::debug!(
                use_case = self.spec.name,
                key = miss.urn.as_str(),
                "result not cached"
            );
            return None;
        };
        let mut entry = Entry::new(v, self.clock.precise_ms(), ttl, swr);
        entry.negative = negative;
        entry.tags = miss.tags.clone();
        Some(entry)
    }

    /// Puts `entry` in L1, its lifetime capped by the local TTL cap, unless
    /// an invalidation already covers it (a future buffer) or L1 is not
    /// trusted (bus down).
    fn fill_local(&self, hash: u64, key: &K, urn: &str, entry: &Entry<V>) {
        if !self.local {
            return;
        }
        let now = self.clock.now_ms();
        let how = Admit::Replace;
        match self.store.admit(
            hash,
            key.clone(),
            urn,
            entry.clone(),
            self.local_cap,
            &self.marks,
            now,
            how,
        ) {
            Admitted::Stored { evicted_live: true } => self.counters.evicted(1),
            Admitted::Stored { .. } | Admitted::Occupied => {}
            Admitted::Refused => tracing::debug!(
                use_case = self.spec.name,
                key = urn,
                "not kept in process: invalidated already, or the bus is down"
            ),
        }
    }

    /// What to write to remote layers: the encoded entry and how long it
    /// lives from now (before each layer's cap).
    fn encoded(&self, urn: &str, entry: &Entry<V>) -> Option<(Vec<u8>, Duration)> {
        let codec = self.remote?;
        // Entries are stamped with the precise clock: measure with it too.
        let now = self.clock.precise_ms();
        let mut remaining = Duration::from_millis(entry.stale_until_ms.saturating_sub(now));
        if let Some(cap) = self.remote_cap {
            remaining = remaining.min(cap);
        }
        if remaining.is_zero() {
            return None;
        }
        match (codec.encode)(urn, entry, self.cache.codec()) {
            Ok(bytes) => Some((bytes, remaining)),
            Err(e) => {
                tracing::warn!(use_case = self.spec.name, key = urn, error = %e, "value does not encode; kept in process only");
                None
            }
        }
    }

    async fn store_async(&self, miss: &Miss<K>, v: V, said: Directive, to: LayerSet) {
        let Some(entry) = self.entry(miss, v, said) else {
            return;
        };
        self.fill_local(miss.hash, &miss.key, miss.urn.as_str(), &entry);
        if let Some((bytes, remaining)) = self.encoded(miss.urn.as_str(), &entry) {
            self.cache
                .write_layers(miss.urn.as_str(), bytes, remaining, to)
                .await;
            // Other processes drop their older copies of this key.
            self.cache
                .announce_write(miss.urn.as_str(), entry.created_ms);
        }
    }

    fn store_blocking(&'static self, miss: &Miss<K>, v: V, said: Directive, to: LayerSet) {
        let Some(entry) = self.entry(miss, v, said) else {
            return;
        };
        self.fill_local(miss.hash, &miss.key, miss.urn.as_str(), &entry);
        if to == LayerSet::NONE {
            // The remote phase could not even run: do not try again now.
            return;
        }
        if let Some((bytes, remaining)) = self.encoded(miss.urn.as_str(), &entry) {
            let urn = miss.urn.as_str().to_owned();
            let budget = self.remote_budget();
            let created = entry.created_ms;
            let _ = cachewright_backends::io::block_on(
                async move { self.cache.write_layers(&urn, bytes, remaining, to).await },
                budget,
            );
            self.cache.announce_write(miss.urn.as_str(), created);
        }
    }

    fn remote_budget(&self) -> Duration {
        self.cache.layers().iter().map(|l| l.budget()).sum()
    }

    /// Looks the call up in the remote layers (the cache's one read path);
    /// a hit fills L1. Also says which layers failed.
    async fn read_remote(&self, miss: &Miss<K>) -> (Option<V>, LayerSet) {
        let Some(codec) = self.remote else {
            return (None, LayerSet::NONE);
        };
        let (urn, tags, format) = (miss.urn.as_str(), &miss.tags, self.cache.codec());
        let (hit, failed) = self
            .cache
            .read_layers(urn, |b| (codec.decode)(b, format, urn, tags))
            .await;
        let Some(hit) = hit else {
            return (None, failed);
        };
        self.counters.remote_hit();
        if hit.freshness == Freshness::Stale {
            self.counters.stale_hit();
        }
        self.fill_local(miss.hash, &miss.key, urn, &hit.entry);
        (Some(hit.entry.value), failed)
    }

    /// The sync adapter of [`read_remote`](Self::read_remote), on the I/O
    /// runtime within the layers' time budget (all layers count as failed
    /// when it cannot run at all).
    fn read_remote_blocking(&'static self, miss: &Miss<K>) -> (Option<V>, LayerSet) {
        if self.remote.is_none() {
            return (None, LayerSet::NONE);
        }
        let miss = Miss {
            hash: miss.hash,
            key: miss.key.clone(),
            urn: miss.urn.clone(),
            tags: miss.tags.clone(),
            mode: miss.mode,
        };
        let budget = self.remote_budget();
        cachewright_backends::io::block_on(async move { self.read_remote(&miss).await }, budget)
            .unwrap_or((None, LayerSet::ALL))
    }

    /// Starts the one background refresh of a stale key (sync functions), on
    /// a thread of its own, unless a load of the key is already running.
    pub fn refresh_sync<Q: KeyRef<Owned = K>>(
        &'static self,
        q: &Q,
        values: &[&dyn Display],
        job: impl FnOnce() -> SyncJob<V>,
    ) {
        let miss = self.miss_quiet(q, values);
        let Role::Leader(lead) = self.flights.join(&miss.key) else {
            return;
        };
        let job = job();
        self.counters.refresh();
        let spawned = std::thread::Builder::new()
            .name("cachewright-refresh".into())
            .spawn(move || {
                let r = flight::block_here(self.call(&miss, SyncLoader(job), Wait::Block).load());
                self.settle_background(&miss, lead, r);
            });
        if let Err(e) = spawned {
            tracing::warn!(use_case = self.spec.name, error = %e, "could not start a refresh thread");
        }
    }

    /// Starts the one background refresh of a stale key (async functions), as
    /// a task on the current tokio runtime (or, outside one, on a thread).
    pub fn refresh_async<Q: KeyRef<Owned = K>>(
        &'static self,
        q: &Q,
        values: &[&dyn Display],
        job: impl FnOnce() -> AsyncJob<V>,
    ) {
        let miss = self.miss_quiet(q, values);
        let Role::Leader(lead) = self.flights.join(&miss.key) else {
            return;
        };
        let job = job();
        self.counters.refresh();
        crate::spawn::spawn(async move {
            let r = self.call(&miss, AsyncLoader(job), Wait::Yield).load().await;
            self.settle_background(&miss, lead, r);
        });
    }

    fn miss_quiet<Q: KeyRef<Owned = K>>(&self, q: &Q, values: &[&dyn Display]) -> Miss<K> {
        let (urn, tags) = self.render(values);
        Miss {
            hash: self.store.hash(q),
            key: q.to_owned_key(),
            urn,
            tags,
            mode: Mode::Normal,
        }
    }

    fn settle_background(
        &self,
        miss: &Miss<K>,
        lead: crate::flight::Lead<'_, K, V>,
        r: Result<V, RefreshFailed>,
    ) {
        match r {
            Ok(v) => lead.finish(|| Outcome::Done(v)),
            Err(RefreshFailed) => {
                tracing::warn!(
                    use_case = self.spec.name,
                    key = miss.urn.as_str(),
                    "background refresh failed; the stale value stays until its window ends"
                );
                lead.finish(|| Outcome::Failed(None));
            }
        }
    }

    /// Drops the cached value of one call.
    pub fn invalidate<Q: KeyRef<Owned = K>>(&self, q: &Q) -> bool {
        let hash = self.store.hash(q);
        self.store.remove(hash, |k| q.matches(k)).is_some()
    }

    /// A snapshot of this use case's counters.
    pub fn stats(&self) -> Stats {
        UseCaseInfo::stats(self)
    }

    /// Now, by this use case's clock.
    pub fn now_ms(&self) -> Millis {
        self.clock.now_ms()
    }
}

/// One load of one `#[cached]` call, as the single-flight loop drives it.
struct Call<'m, K: 'static, V: 'static, E, L> {
    uc: &'static UseCase<K, V>,
    miss: &'m Miss<K>,
    loader: L,
    /// Sync callers read and write the remote layers on the I/O runtime.
    blocking: bool,
    /// The layers that failed the read: the store after the load skips
    /// them, so a slow layer costs one timeout per call, not two.
    failed: LayerSet,
    error: std::marker::PhantomData<fn() -> E>,
}

impl<K, V, E, L> Load for Call<'_, K, V, E, L>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    L: Loader<V, E>,
{
    type Value = V;
    type Error = E;

    fn peek(&self) -> Option<V> {
        self.uc.peek_fresh(self.miss)
    }

    async fn remote(&mut self) -> Option<V> {
        let (found, failed) = if self.blocking {
            self.uc.read_remote_blocking(self.miss)
        } else {
            self.uc.read_remote(self.miss).await
        };
        self.failed = failed;
        found
    }

    async fn load(self) -> Result<V, E> {
        let (uc, miss) = (self.uc, self.miss);
        let start = Instant::now();
        let (r, said) = self.loader.run().await;
        uc.counters.load(start.elapsed(), r.is_ok());
        match &r {
            Ok(v) if self.blocking => {
                uc.store_blocking(miss, v.clone(), said, LayerSet::ALL.without(self.failed))
            }
            Ok(v) => {
                let to = LayerSet::ALL.without(self.failed);
                uc.store_async(miss, v.clone(), said, to).await
            }
            Err(_) => tracing::debug!(
                use_case = uc.spec.name,
                key = miss.urn.as_str(),
                "loader failed"
            ),
        }
        r
    }
}
