//! A use case: one cached function (or one direct-API caller), its typed L1,
//! its loads in flight and its counters.

use std::any::Any;
use std::fmt::{self, Display};
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::cache::{Cache, UseCaseInfo};
use crate::clock::{Clock, Millis, Stamp};
use crate::context::{self, AsyncLoader, Directive, Loader, Mode, SyncLoader};
use crate::entry::{Entry, Freshness, Held, Tags};
use crate::envelope::{self, DecodeError, Format};
use crate::flight::{self, Flights, Load, Outcome, Role, ShareError, Stamped, Wait};
use crate::key::{Key, KeyRef, KeyTemplate};
use crate::layer::LayerSet;
use crate::lifetime::Policy;
use crate::local::front::{self, FrontId};
use crate::local::{Admit, Admitted, Store};
use crate::stats::{Counters, Stats};
use crate::tuning::{self, ConfigFor, Tuning};
use crate::watermark::Watermarks;

mod early;
mod fail_safe;
mod load;
mod lock;
mod refresh;
mod shadow;
mod spec;
#[cfg(test)]
mod tests;
mod timeout;

pub(crate) use shadow::Shadowed;
pub use shadow::{EqFn, EqProbe, ViaEncodedEq, ViaEq, ViaNoEq};
pub use spec::*;
pub use timeout::Timeout;

/// A cached function's runtime state. Built once, on first call, and kept for
/// the life of the process.
pub struct UseCase<K, V> {
    spec: &'static UseCaseSpec,
    /// The spec's name, or a method's default name with its type.
    name: &'static str,
    cache: Cache,
    clock: Clock,
    store: Store<K, Held<V>>,
    marks: std::sync::Arc<Watermarks>,
    flights: Flights<K, V>,
    counters: Counters,
    negative: Option<fn(&V) -> bool>,
    /// Its ramp, and each layer's ramp and TTL (the configuration
    /// provider's).
    tuning: Tuning,
    /// Shadow reads' bookkeeping: mismatches logged, runs in flight.
    warned: shadow::Warned,
    /// The load leases (`lock`) this process holds.
    locks: lock::Held,
    /// Whether values live in the in-process layer.
    local: bool,
    /// Per-thread copies of hot entries, when keys and values are plain
    /// data.
    front: Option<FrontId>,
    /// How values are encoded for the remote layers, if they use them.
    remote: Option<ValueCodec<V>>,
    local_cap: Option<Duration>,
    remote_cap: Option<Duration>,
    /// How long loaded values live.
    policy: Policy,
    /// Refreshing hot entries before they expire (`early_refresh`).
    early: Option<early::Early>,
    /// How values are weighed against a byte bound (`None`: by their
    /// inline size, when no byte bound counts them).
    weigh: Option<Weigh<V>>,
}

/// How a use case weighs its values.
enum Weigh<V> {
    /// The use case's `weigher`.
    Given(fn(&dyn Any) -> u64),
    /// The value's encoded size.
    Encoded(fn(&V) -> u64),
}

impl<K, V> fmt::Debug for UseCase<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UseCase")
            .field("name", &self.name)
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
    /// from the borrowed key `_q`. A method named by default passes
    /// `type_name::<Self>` as `self_type`, which names it
    /// `module::Type::method` (see [`UseCaseSpec::name_with`]). `None` (the
    /// call then runs uncached) when another use case of the cache had the
    /// name first (logged once, at error level, when this one is built), or
    /// if one slot were used with two value types, which generated code
    /// never does.
    #[inline]
    pub fn get<Q, V>(
        &'static self,
        _q: &Q,
        self_type: Option<fn() -> &'static str>,
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
        self.init(self_type, cache, negative, codec)
    }

    #[cold]
    fn init<K, V>(
        &'static self,
        self_type: Option<fn() -> &'static str>,
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
            let name = self.spec.name_with(self_type.map(|f| f()));
            if !cache.claim_name(name) {
                tracing::error!(
                    use_case = name,
                    cache = cache.name(),
                    "another use case of this cache has this name already; this one runs uncached (its function runs on every call): give one of them its own `name = \"...\"`"
                );
                return Box::new(Rejected);
            }
            Box::new(UseCase::<K, V>::new(
                &self.spec, name, cache, negative, codec,
            ))
        });
        let uc = b.downcast_ref::<UseCase<K, V>>()?;
        if built {
            uc.cache.register(uc);
        }
        Some(uc)
    }
}

/// What a slot holds when its name was taken in its cache: no use case, so
/// [`UseCaseSlot::get`] returns `None` and every call runs uncached. Two use
/// cases of one name would share URNs in remote layers, stats and controls.
struct Rejected;

impl<K, V> UseCaseInfo for UseCase<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn name(&self) -> &'static str {
        self.name
    }
    fn stats(&self) -> Stats {
        self.counters.snapshot(
            self.name,
            crate::stats::Occupancy {
                size: self.store.len(),
                capacity: self.store.capacity(),
                bytes: self.store.bytes(),
                max_bytes: self.spec.max_bytes,
                key_type: self.spec.key.key_type,
            },
        )
    }
    fn local_bytes(&self) -> u64 {
        self.store.bytes()
    }
    fn give_back(&self, bytes: u64) -> u64 {
        let now = self.clock.now_ms();
        self.store.give_back(bytes, |h| h.is_expired(now))
    }
    fn reset_stats(&self) {
        self.counters.reset();
    }
    fn clear(&self) {
        self.store.clear();
    }
    fn cleanup_expired(&self) -> usize {
        let now = self.clock.now_ms();
        // Fail-safe keeps expired entries until their window ends.
        let fs = self.fail_safe_ms();
        self.store
            .remove_where(|_, e| e.is_expired(now) && now >= e.fail_safe_until_ms(fs))
    }
    fn set_ramp(&self, per_mille: u32) {
        self.tuning.set_ramp(per_mille);
    }
    fn ramp(&self) -> u32 {
        self.tuning.ramp()
    }
    fn reconfigure(&self) {
        self.configure();
    }
    fn set_shadow(&self, per_mille: u32) -> bool {
        self.tuning.set_shadow(per_mille)
    }
    fn shadow(&self) -> Option<u32> {
        self.tuning.shadow()
    }
    fn local_entry(&self, urn: &str, entity: &str) -> Option<Entry<crate::cache::AnyValue>> {
        if !self.local {
            return None;
        }
        let now = self.clock.now_ms();
        let urn_hash = crate::watermark::tag_hash(urn);
        let marks = &*self.marks;
        // L1 is keyed by the arguments, not the URN: an entry is known by
        // the hashes of its URN and of its entity tag (both must match).
        let entity_hash = crate::watermark::tag_hash(entity);
        self.store.find_map(|held| {
            (held.stored_under(urn_hash)
                && held.of_entity(entity_hash)
                && !held.is_expired(now)
                && held.valid(marks))
            .then(|| {
                held.view(entity)
                    .to_entry()
                    .map(|v| std::sync::Arc::new(v) as crate::cache::AnyValue)
            })
        })
    }
}

impl<K, V> UseCase<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn new(
        spec: &'static UseCaseSpec,
        name: &'static str,
        cache: Cache,
        negative: Option<fn(&V) -> bool>,
        codec: Option<ValueCodec<V>>,
    ) -> Self {
        let capacity = spec.capacity.unwrap_or_else(|| cache.default_capacity());
        let wants_remote = spec.layers.remote() && !cache.layers().is_empty();
        if wants_remote && codec.is_none() {
            tracing::warn!(
                use_case = name,
                "the value type is not Serialize + DeserializeOwned: cached in process only"
            );
        }
        let remote = if wants_remote { codec } else { None };
        let weigh = spec
            .weigher
            .map(Weigh::Given)
            .or_else(|| codec.map(|c| Weigh::Encoded(c.size)));
        // Values are weighed in full only where a byte bound counts them.
        let weigh = if spec.max_bytes.is_some() || cache.budget().is_some() {
            weigh
        } else {
            None
        };
        // With no layer to keep values in, keep them in process after all.
        let local = spec.layers.local() || remote.is_none();
        let ms = |v: Option<u64>| v.map(Duration::from_millis);
        let local_cap = match (ms(spec.local_ttl_ms), cache.local_ttl()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let ttl = match spec.ttl_preset {
            Some(p) => Some(p.resolve()),
            None => ms(spec.ttl_ms),
        };
        let early = early::Early::new(
            spec.early_refresh_per_mille,
            spec.xfetch_beta_milli,
            ttl.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
        );
        let uc = UseCase {
            spec,
            name,
            early,
            clock: cache.clock().clone(),
            store: Store::new(capacity, spec.max_bytes, cache.budget().cloned()),
            weigh,
            marks: cache.marks().clone(),
            flights: Flights::new(),
            counters: Counters::default(),
            negative,
            tuning: Tuning::new(cache.layers().len()),
            warned: Default::default(),
            locks: Default::default(),
            local,
            front: (local && front::copies::<K, V>()).then(FrontId::new),
            remote,
            local_cap,
            remote_cap: ms(spec.remote_ttl_ms),
            policy: Policy {
                ttl,
                swr: Duration::from_millis(spec.swr_ms),
                negative_ttl: ms(spec.negative_ttl_ms),
                jitter: spec.jitter,
            },
            cache,
        };
        uc.configure();
        uc
    }

    /// Asks the cache's configuration provider about this use case and
    /// applies what it says (the attribute's settings if it says nothing).
    fn configure(&self) {
        let shadow = self.spec.shadow_per_mille;
        // Every layer is set, asked or not: a provider removed since the
        // last time leaves nothing of its settings behind.
        let names: Vec<&str> = self
            .cache
            .layers()
            .iter()
            .map(|l| l.backend.name())
            .collect();
        let config = self.cache.provider().and_then(|p| {
            p.ask(&ConfigFor {
                use_case: self.name,
                key_type: self.spec.key.key_type,
                cache: self.cache.name(),
            })
        });
        if let Some(c) = &config {
            for unknown in c.named().filter(|n| !names.contains(n)) {
                tracing::warn!(
                    use_case = self.name,
                    layer = unknown,
                    "the configuration provider names a layer this cache does not have; ignored"
                );
            }
        }
        self.tuning.apply(config.as_ref(), &names, shadow);
        if config.is_some() {
            tracing::debug!(use_case = self.name, "configured by the provider");
        }
    }

    /// The use case's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The cache this use case stores into.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Looks a call up in L1. The hot path: no allocation, no key built, the
    /// time read from the clock thread's atomic, and either this thread's
    /// copy of a hot entry (no lock; see `local/front.rs`) or one shard read
    /// lock.
    #[inline]
    pub fn lookup<Q: KeyRef<Owned = K>>(&self, q: &Q) -> Lookup<V> {
        let mode = context::take_mode();
        let on = crate::scope::caching_enabled();
        let gate = self.tuning.gate();
        // A ramped remote layer matters on a miss only (`miss` draws it).
        if mode != Mode::Normal || !on || gate & !tuning::REMOTE_RAMPED != tuning::FULL {
            if let Some(route) = self.gated(mode, on, gate) {
                return Lookup::Miss(route);
            }
            if self.tuning.shadow_due(gate) {
                return match self.find_cold(q) {
                    Lookup::Hit(v) => Lookup::Shadow(v),
                    other => other,
                };
            }
        }
        self.find(q)
    }

    /// [`find`](Self::find) out of line, for calls off the hot path.
    #[inline(never)]
    fn find_cold<Q: KeyRef<Owned = K>>(&self, q: &Q) -> Lookup<V> {
        self.find(q)
    }

    /// The L1 half of [`lookup`](Self::lookup): this thread's copy, or the
    /// shard.
    #[inline]
    fn find<Q: KeyRef<Owned = K>>(&self, q: &Q) -> Lookup<V> {
        let hash = self.store.hash(q);
        let now = self.clock.now_ms();
        let Some(front) = &self.front else {
            return self.lookup_shard(q, hash, now, None);
        };
        // The lease before the epoch, as `Held::valid` reads them; a copy is
        // kept only of an entry found valid in this epoch.
        let live = self.marks.lease_live();
        let epoch = self.marks.epoch();
        if live {
            let mut negative = false;
            let copied = front.get::<K, V, _>(hash, |c| {
                negative = c.negative;
                (c.epoch == epoch
                    && now < c.fresh_until_ms
                    && self.store.unchanged(c.ticket)
                    && q.matches(&c.key))
                .then(|| c.value.clone())
            });
            if let Some(v) = copied {
                #[cfg(test)]
                front::SERVED.with(|n| n.set(n.get() + 1));
                self.store.count_hit();
                return self.hit(true, negative, v);
            }
        }
        self.lookup_shard_after_front(q, hash, now, (front, live, epoch))
    }

    /// [`lookup_shard`](Self::lookup_shard) out of line, for use cases
    /// with a front: their hot hits' path stays small.
    #[inline(never)]
    fn lookup_shard_after_front<Q: KeyRef<Owned = K>>(
        &self,
        q: &Q,
        hash: u64,
        now: Millis,
        seen: (&FrontId, bool, u64),
    ) -> Lookup<V> {
        self.lookup_shard(q, hash, now, Some(seen))
    }

    /// The shard path of [`lookup`](Self::lookup), copying a hot entry into
    /// this thread's front when `seen` (the front, whether the lease was
    /// live and the epoch, read before) allows.
    #[inline]
    fn lookup_shard<Q: KeyRef<Owned = K>>(
        &self,
        q: &Q,
        hash: u64,
        now: Millis,
        seen: Option<(&FrontId, bool, u64)>,
    ) -> Lookup<V> {
        let marks = &*self.marks;
        let found = self.store.with_ticket(
            hash,
            |k| q.matches(k),
            |h, ticket| {
                let fresh = match h.freshness(now) {
                    Freshness::Fresh => true,
                    Freshness::Stale => false,
                    Freshness::Expired => return None,
                };
                // Invalidated (by tag, entity or key), or L1 not trusted.
                if !h.valid(marks) {
                    return None;
                }
                let until = h.fresh_until_ms();
                // Early refresh: a copy serves only up to where a hit may
                // be due, and a due hit starts the refresh.
                let (due, copy_until) = match &self.early {
                    Some(e) if !h.is_throttled() => {
                        let loaded = h.loaded_ms();
                        (
                            fresh && e.due(now, loaded, until),
                            e.window_from(loaded, until),
                        )
                    }
                    _ => (false, until),
                };
                let copy = ticket
                    .filter(|_| fresh && !due && now < copy_until)
                    .map(|t| (t, copy_until));
                Some((fresh, due, h.negative(), h.value().clone(), copy))
            },
        );
        let Some((fresh, due, negative, v, copy)) = found.flatten() else {
            return Lookup::Miss(Route::NORMAL);
        };
        if let (Some((front, true, epoch)), Some((ticket, fresh_until_ms))) = (seen, copy) {
            front.put(
                hash,
                |old: &front::Copied<K, V>| {
                    old.epoch == epoch
                        && now < old.fresh_until_ms
                        && self.store.unchanged(old.ticket)
                },
                || front::Copied {
                    hash,
                    key: q.to_owned_key(),
                    value: v.clone(),
                    fresh_until_ms,
                    negative,
                    epoch,
                    ticket,
                },
            );
        }
        if due {
            return self.hit_early(negative, v);
        }
        self.hit(fresh, negative, v)
    }

    /// A fresh hit due for its early refresh: counted as a hit, served, and
    /// handed back as `Stale` so that the caller starts the refresh.
    #[cold]
    fn hit_early(&self, negative: bool, v: V) -> Lookup<V> {
        self.counters.hit();
        if negative {
            self.counters.negative_hit();
        }
        tracing::debug!(use_case = self.name, "cache hit, due for early refresh");
        Lookup::Stale(v)
    }

    #[inline]
    fn hit(&self, fresh: bool, negative: bool, v: V) -> Lookup<V> {
        self.counters.hit();
        if negative {
            self.counters.negative_hit();
        }
        if fresh {
            tracing::debug!(use_case = self.name, "cache hit");
            Lookup::Hit(v)
        } else {
            self.counters.stale_hit();
            tracing::debug!(use_case = self.name, "cache stale hit");
            Lookup::Stale(v)
        }
    }

    /// The route of a call that is not a plain read-through with every
    /// layer (`None`: it is, after the draws): off in this scope (not even
    /// a refresh stores), a `bypass` or `refresh`, or ramped out of the use
    /// case or of its in-process layer.
    #[cold]
    #[inline(never)]
    fn gated(&self, mode: Mode, on: bool, gate: u64) -> Option<Route> {
        if !on {
            return Some(Route::BYPASS);
        }
        if mode != Mode::Normal {
            return Some(Route { mode, local: true });
        }
        match self.tuning.draw_call(gate) {
            (false, _) => Some(Route::BYPASS),
            (true, false) => Some(Route {
                mode: Mode::Normal,
                local: false,
            }),
            (true, true) => None,
        }
    }

    /// Builds what a load needs (owned key, URN, tags) from the call's key
    /// values. Runs on a miss only.
    pub fn miss<Q: KeyRef<Owned = K>>(
        &self,
        q: &Q,
        values: &[&dyn Display],
        route: Route,
    ) -> Miss<K> {
        let (mut mode, local) = (route.mode, route.local && self.local);
        let remote = match mode {
            Mode::Normal if self.remote.is_some() => self.tuning.draw_remote(),
            Mode::Refresh if self.remote.is_some() => self.tuning.enabled().remote,
            _ => LayerSet::NONE,
        };
        let local = match mode {
            Mode::Refresh => self.local && self.tuning.enabled().local,
            _ => local,
        };
        if mode == Mode::Normal && !local && remote == LayerSet::NONE {
            // Ramped out of every layer it has: as if uncached.
            mode = Mode::Bypass;
        }
        let (urn, tags) = self.render(values);
        if mode == Mode::Normal {
            crate::clock::audit();
            self.counters.miss();
            tracing::debug!(use_case = self.name, key = urn.as_str(), "cache miss");
        }
        Miss {
            hash: self.store.hash(q),
            key: q.to_owned_key(),
            urn,
            tags,
            mode,
            local,
            remote,
        }
    }

    fn render(&self, values: &[&dyn Display]) -> (Key, Tags) {
        self.spec.key.render(
            self.cache.namespace(),
            self.cache.version(),
            self.name,
            values,
        )
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
