//! Small helpers of generated code: compile-time checks with messages that
//! say what is missing, and shape conversions.

use std::convert::Infallible;
use std::fmt::Display;
use std::future::Future;
use std::hash::Hash;
use std::time::Duration;

use crate::cache::Cache;

use crate::use_case::{ErrorProbe, RefreshFailed};

/// A type that can be part of a cache key.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be part of a cache key",
    label = "a key value needs `Display` (for the URN), `Hash` and `Eq` (for the in-process layer) and an owned form that is `Clone + Send + Sync + 'static`",
    note = "leave it out of the key with `ignore = [param]`, or give its key form with `adapt(param = expr)`"
)]
pub trait KeyPart {}

impl<T> KeyPart for T
where
    T: ?Sized + Display + Hash + Eq + ToOwned,
    T::Owned: Hash + Eq + Clone + Send + Sync + 'static,
{
}

/// A type that can be cached.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be cached",
    label = "cached values must be `Clone + Send + Sync + 'static`",
    note = "wrap values that are not `Clone` (or are large) in `Arc`"
)]
pub trait CacheValue: Clone + Send + Sync + 'static {}

impl<T: Clone + Send + Sync + 'static> CacheValue for T {}

/// A type remote layers can store.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be stored in remote layers",
    label = "`layers` names remote layers, so the value must be `serde::Serialize + serde::de::DeserializeOwned`",
    note = "derive `Serialize` and `Deserialize`, or keep it in process with `layers = local`"
)]
pub trait RemoteValue: serde::Serialize + serde::de::DeserializeOwned {}

impl<T: serde::Serialize + serde::de::DeserializeOwned> RemoteValue for T {}

/// Fails to compile, with a clear message, when `T` cannot go to a remote layer.
#[inline(always)]
pub fn assert_serde<T: RemoteValue>() {}

/// A receiver a background refresh can take a copy of.
#[diagnostic::on_unimplemented(
    message = "a background refresh (`swr`, `early_refresh`, `shadow`) on a method needs `{Self}: Clone + Send + Sync + 'static`",
    label = "the background refresh calls the method on a copy of `self`",
    note = "keep a service's state behind an `Arc` and derive `Clone`"
)]
pub trait Receiver: Clone + Send + Sync + 'static {}

impl<T: Clone + Send + Sync + 'static> Receiver for T {}

/// Fails to compile, with a clear message, when `T` cannot be a key part.
#[inline(always)]
pub fn assert_key_part<T: ?Sized + KeyPart>(_: &T) {}

/// Fails to compile, with a clear message, when `T` cannot be cached.
#[inline(always)]
pub fn assert_value<T: CacheValue>() {}

/// A copy of `self` for a background refresh.
#[inline]
pub fn clone_receiver<T: Receiver>(t: &T) -> T {
    t.clone()
}

/// The value of a result that cannot be an error.
#[inline(always)]
pub fn unwrap_infallible<V>(r: Result<V, Infallible>) -> V {
    match r {
        Ok(v) => v,
        Err(never) => match never {},
    }
}

/// A background result, its error already counted and logged.
#[inline(always)]
pub fn discard_error<V, E>(r: Result<V, E>) -> Result<V, RefreshFailed> {
    r.map_err(|_| RefreshFailed)
}

/// The error probe of a sync loader.
#[inline(always)]
pub const fn probe_sync<V, E, F: FnOnce() -> Result<V, E>>(_: &F) -> ErrorProbe<E> {
    ErrorProbe::new()
}

/// The error probe of an async loader.
#[inline(always)]
pub const fn probe_async<V, E, F: Future<Output = Result<V, E>>>(_: &F) -> ErrorProbe<E> {
    ErrorProbe::new()
}

/// Renders tag templates with a call's values (as keys render them).
pub fn render_tags(templates: &[&[crate::key::Segment]], values: &[&dyn Display]) -> Vec<String> {
    crate::key::render_tags(templates, values)
}

/// What `recache = [...]` produced: a value (a sync cached function already
/// re-ran in refresh mode) or a future (an async one, still to run).
pub struct Recache<T>(std::cell::Cell<Option<T>>);

impl<T> std::fmt::Debug for Recache<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Recache")
    }
}

impl<T> Recache<T> {
    /// Wraps what a recache expression produced.
    pub fn new(t: T) -> Self {
        Recache(std::cell::Cell::new(Some(t)))
    }
}

/// Recaching an async target from an async writer: await it in refresh mode.
pub trait RecacheFuture {
    /// Runs the recache.
    fn recache(&self) -> impl Future<Output = ()>;
}

impl<F: Future> RecacheFuture for Recache<F> {
    fn recache(&self) -> impl Future<Output = ()> {
        let f = self.0.take();
        async move {
            if let Some(f) = f {
                crate::context::refresh_async(f).await;
            }
        }
    }
}

/// Recaching a sync target: it already ran; nothing is left to do.
pub trait RecacheValue {
    /// Runs the recache.
    fn recache(&self) -> impl Future<Output = ()>;
}

impl<T> RecacheValue for &Recache<T> {
    fn recache(&self) -> impl Future<Output = ()> {
        std::future::ready(())
    }
}

/// Recaching an async target from a sync writer: run it in the background.
pub trait RecacheSpawn {
    /// Runs the recache.
    fn recache_now(&self);
}

impl<F: Future + Send + 'static> RecacheSpawn for Recache<F> {
    fn recache_now(&self) {
        if let Some(f) = self.0.take() {
            let spawned = crate::spawn::spawn(async move {
                crate::context::refresh_async(f).await;
            });
            if spawned.is_none() {
                tracing::warn!("no runtime to recache on; recache skipped");
            }
        }
    }
}

/// Recaching a sync target from a sync writer: it already ran.
pub trait RecacheDone {
    /// Runs the recache.
    fn recache_now(&self);
}

impl<T> RecacheDone for &Recache<T> {
    fn recache_now(&self) {}
}

/// What `#[cache_write]` does after its body succeeded: invalidates `tags`
/// at one stamp. Loads begun after it (a recache included) are stamped
/// later, so they count as newer with no wait; `recaches` is kept for the
/// generated code's sake.
pub fn invalidate_for_write(cache: &Cache, tags: Vec<String>, buffer: Duration, recaches: bool) {
    let _ = recaches;
    let at = cache.invalidation_time(buffer);
    cache.invalidate_tags_at(tags, at);
}

/// The async twin of [`invalidate_for_write`].
pub async fn invalidate_for_write_async(
    cache: &Cache,
    tags: Vec<String>,
    buffer: Duration,
    recaches: bool,
) {
    let _ = recaches;
    let at = cache.invalidation_time(buffer);
    cache.invalidate_tags_at_async(tags, at).await;
}
