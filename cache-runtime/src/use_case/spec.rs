//! What generated code hands the runtime: a function's spec, and the
//! probes that pick how its values are encoded and its errors shared.

use super::*;

/// What the macros know about a cached function at compile time.
#[derive(Debug)]
#[doc(hidden)]
pub struct UseCaseSpec {
    /// The use case's name.
    pub name: &'static str,
    /// The key and tag templates.
    pub key: KeyTemplate,
    /// Fresh lifetime in milliseconds; `None` keeps entries until evicted.
    pub ttl_ms: Option<u64>,
    /// A TTL preset (`ttl = "short"`), resolved when the use case is built
    /// (then `ttl_ms` is only its default).
    pub ttl_preset: Option<crate::TtlPreset>,
    /// Stale-while-revalidate window in milliseconds.
    pub swr_ms: u64,
    /// Lifetime of a cached `None`; `None` does not cache absences.
    pub negative_ttl_ms: Option<u64>,
    /// Spread of each entry's TTL, as a fraction (0.1 = ±10 %).
    pub jitter: f64,
    /// The L1 bound for this use case; the cache's default when `None`.
    pub capacity: Option<usize>,
    /// The schema version of the value type (`schema = N`): with the
    /// cache's, part of the type's fingerprint in remote layers.
    pub schema: u32,
    /// Which layers the use case keeps its values in.
    pub layers: LayerChoice,
    /// Cap of this use case's TTL in the in-process layer.
    pub local_ttl_ms: Option<u64>,
    /// Cap of this use case's TTL in remote layers.
    pub remote_ttl_ms: Option<u64>,
    /// The L1 bound in bytes of entry weight (`max_bytes`), if any.
    pub max_bytes: Option<u64>,
    /// Weighs a value (`weigher = path`, a `fn(&V) -> usize`, called
    /// through `Any`); the encoded size when `None` (see
    /// [`Stats::bytes`](crate::Stats::bytes)).
    pub weigher: Option<fn(&dyn std::any::Any) -> u64>,
    /// Per mille of fresh hits shadow-read (`shadow = ...`, in percent);
    /// `None` when the function has no shadow reads compiled in.
    pub shadow_per_mille: Option<u32>,
    /// Early refresh at a fixed share of the TTL (`early_refresh = 0.8`:
    /// 800), or 0.
    pub early_refresh_per_mille: u32,
    /// Early refresh by XFetch (`early_refresh = "xfetch"`): its β in
    /// thousandths, or 0.
    pub xfetch_beta_milli: u32,
    /// What the use case does when its loader fails or is slow, and
    /// whether its loads are locked across processes.
    pub resilience: Resilience,
}

/// A `#[cached]` function's fail-safe, timeouts and cross-process lock
/// (`fail_safe`, `fail_safe_throttle`, `soft_timeout`, `hard_timeout`,
/// `lock`, `lock_wait`), in milliseconds; 0 is "not set".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[doc(hidden)]
pub struct Resilience {
    /// How long past its expiry an entry may still be served when the
    /// loader fails (kept that much longer in every layer).
    pub fail_safe_ms: u64,
    /// After serving a fail-safe value, how long it is served before the
    /// loader is tried again.
    pub fail_safe_throttle_ms: u64,
    /// With a fail-safe value at hand, how long a caller waits for the
    /// loader before it is served that value (the load goes on).
    pub soft_timeout_ms: u64,
    /// How long a caller waits for the loader at all: then the fail-safe
    /// value, or a timeout error.
    pub hard_timeout_ms: u64,
    /// One load per key across processes, by a lease in the first remote
    /// layer that can hold one.
    pub lock: bool,
    /// How long a process waits for another's locked load before it loads
    /// itself.
    pub lock_wait_ms: u64,
}

impl Resilience {
    /// No fail-safe, no timeouts, no lock.
    pub const NONE: Resilience = Resilience {
        fail_safe_ms: 0,
        fail_safe_throttle_ms: DEFAULT_THROTTLE_MS,
        soft_timeout_ms: 0,
        hard_timeout_ms: 0,
        lock: false,
        lock_wait_ms: DEFAULT_LOCK_WAIT_MS,
    };
}

/// `fail_safe_throttle`'s default: 30 s.
pub(crate) const DEFAULT_THROTTLE_MS: u64 = 30_000;
/// `lock_wait`'s default: 5 s.
pub(crate) const DEFAULT_LOCK_WAIT_MS: u64 = 5_000;

impl UseCaseSpec {
    /// The use case's name: `name`, or, given the type a method is defined
    /// on (`type_name::<Self>()`), `name`'s module path, the type's own name
    /// (its last path segment, without generic arguments) and the method:
    /// `module::Svc::get` for `module::get` on `module::Svc<D>`. Two methods
    /// of one name in two impl blocks of one module are then two use cases.
    /// Called once per use case; a method's name is leaked (one small string
    /// per cached method, for the life of the process).
    pub fn name_with(&self, self_type: Option<&str>) -> &'static str {
        let Some(ty) = self_type.map(type_segment).filter(|t| !t.is_empty()) else {
            return self.name;
        };
        let name = match self.name.rsplit_once("::") {
            Some((module, method)) => format!("{module}::{ty}::{method}"),
            None => format!("{ty}::{}", self.name),
        };
        Box::leak(name.into_boxed_str())
    }
}

/// `Svc` of `app::db::Svc<app::Pg>`, `&app::Svc` or `dyn app::Svc`.
fn type_segment(type_name: &str) -> &str {
    let path = type_name.split('<').next().unwrap_or(type_name);
    let last = path.rsplit("::").next().unwrap_or(path);
    last.trim_matches(|c: char| !(c.is_alphanumeric() || c == '_'))
}

/// Which layers a use case keeps its values in (`layers = ...`).
#[doc(hidden)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerChoice {
    /// The in-process layer only.
    Local,
    /// The cache's remote layers only (Redis, file, ...).
    Remote,
    /// Both (the default).
    All,
}

impl LayerChoice {
    pub(crate) fn local(self) -> bool {
        self != LayerChoice::Remote
    }

    pub(crate) fn remote(self) -> bool {
        self != LayerChoice::Local
    }
}

/// How a use case's values are encoded for remote layers; `None` when its
/// value type is not `Serialize + DeserializeOwned` (it then stays in
/// process). Generated code picks it with [`CodecProbe`].
#[doc(hidden)]
pub struct ValueCodec<V> {
    pub(super) encode: EncodeFn<V>,
    pub(super) decode: DecodeFn<V>,
    /// The value's encoded size in bytes (JSON), counted without
    /// allocating: the default weight of an entry under a byte bound.
    pub(super) size: fn(&V) -> u64,
}

/// Encodes an entry stored under a key (see `envelope::encode`).
type EncodeFn<V> = fn(&str, &Entry<V>, Format) -> Result<Vec<u8>, String>;
/// Decodes an entry read under a key, given the tags expected of it.
type DecodeFn<V> = fn(&[u8], Format, &str, &Tags) -> Result<Entry<V>, DecodeError>;

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
            size: envelope::encoded_size::<V>,
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
    /// Serve it and start its background refresh: a value past its TTL,
    /// inside its SWR window, or a fresh one due for its early refresh.
    Stale(V),
    /// A fresh value, sampled for a shadow read: serve it and run the
    /// function in the background to compare.
    Shadow(V),
    /// Nothing servable; load, by this route.
    Miss(Route),
}

/// How a missed call loads: its mode, and whether it uses the in-process
/// layer (a ramp may leave it out).
#[doc(hidden)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Route {
    pub(crate) mode: Mode,
    pub(crate) local: bool,
}

impl Route {
    pub(crate) const NORMAL: Route = Route {
        mode: Mode::Normal,
        local: true,
    };
    pub(crate) const BYPASS: Route = Route {
        mode: Mode::Bypass,
        local: true,
    };
}

/// A miss, with everything needed to load and store the value.
#[doc(hidden)]
#[derive(Clone)]
pub struct Miss<K> {
    pub(super) hash: u64,
    pub(super) key: K,
    pub(super) urn: Key,
    pub(super) tags: Tags,
    pub(super) mode: Mode,
    /// Whether this call reads and fills the in-process layer.
    pub(super) local: bool,
    /// The remote layers this call reads and fills.
    pub(super) remote: crate::layer::LayerSet,
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

impl UseCaseSpec {
    /// A spec for tests: key type `t`, the first value as id, no TTL.
    #[cfg(test)]
    pub(crate) const fn for_tests(name: &'static str) -> UseCaseSpec {
        UseCaseSpec {
            name,
            key: KeyTemplate {
                key_type: "t",
                id: &[crate::key::Segment::Value(0)],
                args: &[],
                tags: &[],
            },
            ttl_ms: None,
            ttl_preset: None,
            swr_ms: 0,
            negative_ttl_ms: None,
            jitter: 0.0,
            capacity: None,
            schema: 0,
            layers: LayerChoice::All,
            local_ttl_ms: None,
            remote_ttl_ms: None,
            max_bytes: None,
            weigher: None,
            shadow_per_mille: None,
            early_refresh_per_mille: 0,
            xfetch_beta_milli: 0,
            resilience: Resilience::NONE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &'static str) -> UseCaseSpec {
        UseCaseSpec::for_tests(name)
    }

    #[test]
    fn a_method_is_named_after_its_type() {
        let s = spec("app::db::get");
        assert_eq!(s.name_with(None), "app::db::get");
        assert_eq!(s.name_with(Some("app::db::Svc")), "app::db::Svc::get");
        assert_eq!(
            s.name_with(Some("app::db::Svc<app::Pg, alloc::vec::Vec<u8>>")),
            "app::db::Svc::get"
        );
        assert_eq!(s.name_with(Some("&app::db::Svc")), "app::db::Svc::get");
        assert_eq!(s.name_with(Some("dyn app::db::Repo")), "app::db::Repo::get");
        assert_eq!(spec("get").name_with(Some("Svc")), "Svc::get");
        assert_eq!(
            s.name_with(Some("<>")),
            "app::db::get",
            "no name: the spec's"
        );
    }
}
