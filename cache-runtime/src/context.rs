//! What the caller of a cached function asks for (bypass, refresh) and what
//! a loader decides about its own result (its TTL, or not to cache it).
//!
//! Both travel in a thread-local; for async code a small wrapper future puts
//! them in place around each poll, so they follow a task across threads.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// How the next cached call on this thread (or in this future) runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    /// Read through the cache.
    #[default]
    Normal,
    /// Run the loader; neither read nor write the cache.
    Bypass,
    /// Run the loader and store its result, whatever the cache holds.
    Refresh,
}

/// What a loader said about the result it is returning.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) enum Directive {
    /// Use the use case's TTLs.
    #[default]
    Default,
    /// Cache this result for exactly this long.
    Ttl(Duration),
    /// Do not cache this result.
    Skip,
}

thread_local! {
    static MODE: Cell<Mode> = const { Cell::new(Mode::Normal) };
    static DIRECTIVE: Cell<Option<Directive>> = const { Cell::new(None) };
}

/// Reads the mode asked for the current call and resets it, so that cached
/// calls made *inside* the loader run normally.
#[doc(hidden)]
#[inline]
pub fn take_mode() -> Mode {
    MODE.with(|m| {
        let mode = m.get();
        if mode != Mode::Normal {
            m.set(Mode::Normal);
        }
        mode
    })
}

fn with_mode<R>(mode: Mode, f: impl FnOnce() -> R) -> R {
    struct Restore(Mode);
    impl Drop for Restore {
        fn drop(&mut self) {
            MODE.with(|m| m.set(self.0));
        }
    }
    let _restore = Restore(MODE.with(|m| m.replace(mode)));
    f()
}

/// Calls `f`, whose first cached call runs its loader without reading or
/// writing the cache.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// static CALLS: AtomicU32 = AtomicU32::new(0);
///
/// #[cachewright::cached(key = "sq:<x>")]
/// fn square(x: u32) -> u32 {
///     CALLS.fetch_add(1, Ordering::SeqCst);
///     x * x
/// }
///
/// assert_eq!(square(3), 9);
/// assert_eq!(cachewright::bypass(|| square(3)), 9);
/// assert_eq!(CALLS.load(Ordering::SeqCst), 2);
/// ```
pub fn bypass<R>(f: impl FnOnce() -> R) -> R {
    with_mode(Mode::Bypass, f)
}

/// Calls `f`, whose first cached call loads afresh and stores the result.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// static N: AtomicU32 = AtomicU32::new(0);
///
/// #[cachewright::cached(key = "counter")]
/// fn counter() -> u32 {
///     N.fetch_add(1, Ordering::SeqCst) + 1
/// }
///
/// assert_eq!(counter(), 1);
/// assert_eq!(cachewright::refresh(|| counter()), 2);
/// assert_eq!(counter(), 2);
/// ```
pub fn refresh<R>(f: impl FnOnce() -> R) -> R {
    with_mode(Mode::Refresh, f)
}

/// Awaits `fut`, whose first cached call runs its loader without the cache.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #[cachewright::cached(key = "double:<x>")]
/// async fn double(x: u32) -> u32 { x * 2 }
///
/// assert_eq!(cachewright::bypass_async(double(4)).await, 8);
/// # }
/// ```
pub async fn bypass_async<F: Future>(fut: F) -> F::Output {
    WithMode::new(Mode::Bypass, fut).await
}

/// Awaits `fut`, whose first cached call loads afresh and stores the result.
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// #[cachewright::cached(key = "triple:<x>")]
/// async fn triple(x: u32) -> u32 { x * 3 }
///
/// assert_eq!(cachewright::refresh_async(triple(2)).await, 6);
/// # }
/// ```
pub async fn refresh_async<F: Future>(fut: F) -> F::Output {
    WithMode::new(Mode::Refresh, fut).await
}

/// Sets the mode around each poll until a cached call has taken it.
struct WithMode<F> {
    mode: Option<Mode>,
    fut: Pin<Box<F>>,
}

impl<F> WithMode<F> {
    fn new(mode: Mode, fut: F) -> Self {
        WithMode {
            mode: Some(mode),
            fut: Box::pin(fut),
        }
    }
}

impl<F: Future> Future for WithMode<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let Some(mode) = self.mode else {
            return self.fut.as_mut().poll(cx);
        };
        let prev = MODE.with(|m| m.replace(mode));
        let out = self.fut.as_mut().poll(cx);
        let left = MODE.with(|m| m.replace(prev));
        if left == Mode::Normal {
            // A cached call took the mode: it is not to reach later calls.
            self.mode = None;
        }
        out
    }
}

/// Inside a loader, caches the result being produced for `ttl` instead of
/// the use case's TTL (negative TTL for a `None`). Returns whether a loader
/// was running to hear it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// #[cachewright::cached(key = "quote:<sym>", ttl = 300)]
/// fn quote(sym: &str) -> u64 {
///     if sym == "VOLATILE" {
///         cachewright::set_ttl(Duration::from_secs(1));
///     }
///     42
/// }
/// assert_eq!(quote("VOLATILE"), 42);
/// assert!(!cachewright::set_ttl(Duration::from_secs(1)), "not inside a loader");
/// ```
pub fn set_ttl(ttl: Duration) -> bool {
    give(Directive::Ttl(ttl))
}

/// Inside a loader, keeps the result being produced out of the cache: it is
/// returned to the caller (and to callers waiting on the same load) but not
/// stored. Returns whether a loader was running to hear it.
///
/// # Examples
///
/// ```
/// #[cachewright::cached(key = "page:<n>", ttl = 60)]
/// fn page(n: u32) -> String {
///     if n == 0 {
///         cachewright::do_not_cache();
///     }
///     format!("page {n}")
/// }
/// assert_eq!(page(0), "page 0");
/// ```
pub fn do_not_cache() -> bool {
    give(Directive::Skip)
}

fn give(d: Directive) -> bool {
    DIRECTIVE.with(|c| match c.get() {
        Some(_) => {
            c.set(Some(d));
            true
        }
        None => false,
    })
}

/// Runs a sync loader, collecting what it said about its result.
pub(crate) fn directed<R>(f: impl FnOnce() -> R) -> (R, Directive) {
    struct Restore(Option<Directive>);
    impl Drop for Restore {
        fn drop(&mut self) {
            DIRECTIVE.with(|c| c.set(self.0));
        }
    }
    let restore = Restore(DIRECTIVE.with(|c| c.replace(Some(Directive::Default))));
    let r = f();
    let said = DIRECTIVE.with(|c| c.get()).unwrap_or_default();
    drop(restore);
    (r, said)
}

/// Awaits an async loader, collecting what it said about its result.
pub(crate) async fn directed_async<F: Future>(fut: F) -> (F::Output, Directive) {
    let mut d = Directed {
        fut: Box::pin(fut),
        said: Some(Directive::Default),
    };
    let out = (&mut d).await;
    (out, d.said.unwrap_or_default())
}

struct Directed<F> {
    fut: Pin<Box<F>>,
    said: Option<Directive>,
}

impl<F: Future> Future for &mut Directed<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mine = self.said;
        let prev = DIRECTIVE.with(|c| c.replace(mine));
        let out = self.fut.as_mut().poll(cx);
        self.said = DIRECTIVE.with(|c| c.replace(prev));
        out
    }
}

/// A loader as a load runs it: its result and what it said about caching
/// it (`set_ttl`, `do_not_cache`).
pub(crate) trait Loader<V, E> {
    fn run(self) -> impl Future<Output = (Result<V, E>, Directive)>;
}

/// A sync loader (the body of a sync function, a closure).
pub(crate) struct SyncLoader<F>(pub(crate) F);

impl<V, E, F: FnOnce() -> Result<V, E>> Loader<V, E> for SyncLoader<F> {
    async fn run(self) -> (Result<V, E>, Directive) {
        directed(self.0)
    }
}

/// An async loader (the body of an async function, a future).
pub(crate) struct AsyncLoader<F>(pub(crate) F);

impl<V, E, F: Future<Output = Result<V, E>>> Loader<V, E> for AsyncLoader<F> {
    async fn run(self) -> (Result<V, E>, Directive) {
        directed_async(self.0).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directive_is_scoped_to_its_loader() {
        let ((), d) = directed(|| {
            assert!(set_ttl(Duration::from_secs(3)));
            let ((), inner) = directed(|| {
                do_not_cache();
            });
            assert_eq!(inner, Directive::Skip);
        });
        assert_eq!(d, Directive::Ttl(Duration::from_secs(3)));
        assert!(!do_not_cache());
    }

    #[test]
    fn mode_is_taken_once() {
        bypass(|| {
            assert_eq!(take_mode(), Mode::Bypass);
            assert_eq!(take_mode(), Mode::Normal);
        });
        assert_eq!(take_mode(), Mode::Normal);
    }

    #[tokio::test]
    async fn async_mode_reaches_only_the_first_call() {
        let seen = refresh_async(async {
            let first = take_mode();
            tokio::task::yield_now().await;
            (first, take_mode())
        })
        .await;
        assert_eq!(seen, (Mode::Refresh, Mode::Normal));
    }
}
