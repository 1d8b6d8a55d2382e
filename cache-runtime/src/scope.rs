//! Whether cached calls use the cache: scopes that turn it off (or on) for
//! a block of code, a process-wide switch, and an off-by-default mode.
//!
//! A scope lives in a thread-local set around a closure, or around each
//! poll of a future, so it follows an async block across `.await` and
//! threads, and a task or thread it starts is outside it. Whatever runs on
//! the thread meanwhile is inside it, though: tasks a `block_on` of a
//! current-thread runtime or a `LocalSet` runs within the scope, or jobs a
//! thread pool's worker steals there. And a future is in the scope only
//! while polled in it: `enabled_sync(|| f(x))` for an `async fn f` builds
//! the future in the scope and polls it outside (use `enabled(f(x))`).
//! One exception: a sync `#[cache_write]` recaching an async function
//! spawns the recache, which runs outside the scope. A call outside the
//! cache runs its function, reading and storing nothing (counted as a
//! bypass); invalidations (`#[cache_write]`, `invalidate_*`) always run,
//! since a write made with the cache off must still be seen by calls
//! made with it on. The direct API (`Cache::get`, `set`, ...) is explicit
//! and is not affected.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    /// No scope: the process-wide default decides.
    Default,
    Off,
    On,
}

thread_local! {
    static SCOPE: Cell<Scope> = const { Cell::new(Scope::Default) };
}

/// Set: outside an [`enabled`] scope, calls do not use the cache.
const OFF_BY_DEFAULT: u8 = 1;
/// Set: no call uses the cache, scopes or not.
const SWITCHED_OFF: u8 = 2;

static GLOBAL: AtomicU8 = AtomicU8::new(0);

/// Whether a cached call made here uses the cache.
///
/// # Examples
///
/// ```
/// assert!(cachewright::caching_enabled());
/// assert!(!cachewright::disabled_sync(cachewright::caching_enabled));
/// ```
#[inline]
pub fn caching_enabled() -> bool {
    let global = GLOBAL.load(Ordering::Relaxed);
    if global & SWITCHED_OFF != 0 {
        return false;
    }
    match SCOPE.with(Cell::get) {
        Scope::Default => global & OFF_BY_DEFAULT == 0,
        Scope::Off => false,
        Scope::On => true,
    }
}

/// Turns the cache off (or back on) for every cached call in the process,
/// whatever the scopes say: a kill switch for operators. Invalidations
/// still run while it is off.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// static LOADS: AtomicU32 = AtomicU32::new(0);
///
/// #[cachewright::cached(key = "switch_doc:<x>")]
/// fn f(x: u32) -> u32 { LOADS.fetch_add(1, Ordering::SeqCst); x }
///
/// f(1);
/// cachewright::set_caching_enabled(false);
/// f(1);
/// assert!(!cachewright::enabled_sync(cachewright::caching_enabled), "over scopes too");
/// cachewright::set_caching_enabled(true);
/// f(1);
/// assert_eq!(LOADS.load(Ordering::SeqCst), 2, "the call made while off loaded");
/// ```
pub fn set_caching_enabled(on: bool) {
    if on {
        GLOBAL.fetch_and(!SWITCHED_OFF, Ordering::Relaxed);
    } else {
        GLOBAL.fetch_or(SWITCHED_OFF, Ordering::Relaxed);
    }
}

/// Off-by-default mode (see [`Setup::enabled_by_default`](crate::Setup::enabled_by_default)).
pub(crate) fn set_enabled_by_default(on: bool) {
    if on {
        GLOBAL.fetch_and(!OFF_BY_DEFAULT, Ordering::Relaxed);
    } else {
        GLOBAL.fetch_or(OFF_BY_DEFAULT, Ordering::Relaxed);
    }
}

fn within<R>(scope: Scope, f: impl FnOnce() -> R) -> R {
    crate::context::with_set(&SCOPE, scope, f)
}

/// Calls `f` with the cache off: its cached calls (and those of the
/// functions they call on this thread) run their functions and store
/// nothing. A thread `f` starts is not in the scope (see the module's
/// documentation for what runs on this thread meanwhile).
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// static LOADS: AtomicU32 = AtomicU32::new(0);
///
/// #[cachewright::cached(key = "off_doc:<x>")]
/// fn f(x: u32) -> u32 { LOADS.fetch_add(1, Ordering::SeqCst); x }
///
/// cachewright::disabled_sync(|| { f(1); f(1); });
/// assert_eq!(LOADS.load(Ordering::SeqCst), 2, "both ran");
/// f(1);
/// assert_eq!(LOADS.load(Ordering::SeqCst), 3, "nothing was stored");
/// ```
pub fn disabled_sync<R>(f: impl FnOnce() -> R) -> R {
    within(Scope::Off, f)
}

/// Calls `f` with the cache on, even in off-by-default mode or inside a
/// [`disabled_sync`] scope (not when [`set_caching_enabled`] switched it
/// off).
///
/// # Examples
///
/// ```
/// let on = cachewright::disabled_sync(|| cachewright::enabled_sync(cachewright::caching_enabled));
/// assert!(on, "the innermost scope decides");
/// ```
pub fn enabled_sync<R>(f: impl FnOnce() -> R) -> R {
    within(Scope::On, f)
}

/// Awaits `fut` with the cache off for its cached calls, across `.await`
/// and whichever threads poll it; tasks it spawns are not in the scope.
/// Allocates once (the future is boxed).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use std::sync::atomic::{AtomicU32, Ordering};
/// static LOADS: AtomicU32 = AtomicU32::new(0);
///
/// #[cachewright::cached(key = "off_async_doc:<x>")]
/// async fn f(x: u32) -> u32 { LOADS.fetch_add(1, Ordering::SeqCst); x }
///
/// cachewright::disabled(async {
///     f(1).await;
///     tokio::task::yield_now().await;
///     f(1).await;
/// })
/// .await;
/// assert_eq!(LOADS.load(Ordering::SeqCst), 2);
/// # }
/// ```
pub fn disabled<F: Future>(fut: F) -> Scoped<F> {
    Scoped::new(Scope::Off, fut)
}

/// Awaits `fut` with the cache on (see [`enabled_sync`]).
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let on = cachewright::disabled(cachewright::enabled(async { cachewright::caching_enabled() })).await;
/// assert!(on);
/// # }
/// ```
pub fn enabled<F: Future>(fut: F) -> Scoped<F> {
    Scoped::new(Scope::On, fut)
}

/// A future run in a [`disabled`] or [`enabled`] scope.
#[must_use = "futures do nothing unless awaited"]
pub struct Scoped<F> {
    scope: Scope,
    fut: Pin<Box<F>>,
}

impl<F> std::fmt::Debug for Scoped<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scoped")
            .field("scope", &self.scope)
            .finish_non_exhaustive()
    }
}

impl<F> Scoped<F> {
    fn new(scope: Scope, fut: F) -> Self {
        Scoped {
            scope,
            fut: Box::pin(fut),
        }
    }
}

impl<F: Future> Future for Scoped<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let scope = self.scope;
        within(scope, || self.fut.as_mut().poll(cx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_innermost_scope_decides_and_scopes_end() {
        assert!(caching_enabled());
        disabled_sync(|| {
            assert!(!caching_enabled());
            enabled_sync(|| assert!(caching_enabled()));
            assert!(!caching_enabled(), "back to the outer scope");
        });
        assert!(caching_enabled());
        let r = std::panic::catch_unwind(|| disabled_sync(|| panic!("in scope")));
        assert!(r.is_err());
        assert!(caching_enabled(), "a panic ends the scope too");
    }
}
