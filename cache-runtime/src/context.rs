//! What the caller of a cached function asks for (bypass, refresh) and what
//! a loader says about its own result (its TTL, not to cache it, more tags).
//!
//! Both travel in a thread-local; for async code a small wrapper future puts
//! them in place around each poll, so they follow a task across threads.

use std::cell::{Cell, RefCell};
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

/// Everything a loader said about the result it is returning.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Said {
    pub(crate) directive: Directive,
    /// Tags computed from the result (`add_tags`), beside the use case's.
    pub(crate) tags: Vec<String>,
    /// The loader marked its result a failure (`mark_failed`).
    pub(crate) failed: bool,
}

thread_local! {
    static MODE: Cell<Mode> = const { Cell::new(Mode::Normal) };
    /// `Some` while a loader runs on this thread (or is being polled).
    static SAID: RefCell<Option<Said>> = const { RefCell::new(None) };
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
    with_set(&MODE, mode, f)
}

/// Calls `f` with the thread-local `cell` set to `value`, and puts the
/// previous value back afterwards, even if `f` panics.
pub(crate) fn with_set<T: Copy + 'static, R>(
    cell: &'static std::thread::LocalKey<Cell<T>>,
    value: T,
    f: impl FnOnce() -> R,
) -> R {
    struct Restore<T: Copy + 'static>(&'static std::thread::LocalKey<Cell<T>>, T);
    impl<T: Copy + 'static> Drop for Restore<T> {
        fn drop(&mut self) {
            self.0.with(|c| c.set(self.1));
        }
    }
    let _restore = Restore(cell, cell.with(|c| c.replace(value)));
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
        /// Puts the thread's mode back even if the future panics.
        struct Restore(Option<Mode>);
        impl Drop for Restore {
            fn drop(&mut self) {
                if let Some(prev) = self.0.take() {
                    MODE.with(|m| m.set(prev));
                }
            }
        }
        let mut restore = Restore(Some(MODE.with(|m| m.replace(mode))));
        let out = self.fut.as_mut().poll(cx);
        let prev = restore.0.take().unwrap_or_default();
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

/// Inside a loader, adds tags to the result being produced, beside those of
/// the use case's templates: tags that only the result knows (the org a
/// fetched user belongs to, the ids in a list). Build them as templates
/// render them, with [`tag`](crate::tag). Invalidating any of them drops
/// the entry, in every layer. Returns whether a loader was running to hear
/// it.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// static LOADS: AtomicU32 = AtomicU32::new(0);
///
/// #[cachewright::cached(key = "invoice:<id>", ttl = 300)]
/// fn invoice(id: u64) -> (u64, u64) {
///     LOADS.fetch_add(1, Ordering::SeqCst);
///     let customer = id % 10; // known only once loaded
///     cachewright::add_tags([cachewright::tag("customer", &customer)]);
///     (id, customer)
/// }
///
/// invoice(13);
/// invoice(13);
/// cachewright::default_cache().invalidate_tags([cachewright::tag("customer", &3)]);
/// invoice(13);
/// assert_eq!(LOADS.load(Ordering::SeqCst), 2, "the customer's invalidation reached it");
/// ```
pub fn add_tags<I, S>(tags: I) -> bool
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    // Rendered before the borrow: the iterator may itself call cached
    // functions, whose loaders use the same cell.
    let tags: Vec<String> = tags.into_iter().map(Into::into).collect();
    SAID.with(|c| match c.borrow_mut().as_mut() {
        Some(said) => {
            said.tags.extend(tags);
            true
        }
        None => false,
    })
}

/// Inside a loader, marks the result being produced as a failure, for
/// functions whose return type has no error to give (a plain value, an
/// `Option`): the result is not cached, and is counted as a failed load;
/// with `fail_safe`, the last good value is served in its place while it is
/// within its fail-safe window (without one, the result itself is
/// returned). In [`Cache::get_or_load`](crate::Cache::get_or_load) the
/// result is returned and not stored. Returns whether a loader was running
/// to hear it.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::LazyLock;
/// use std::time::Duration;
/// use cachewright::{Cache, Clock, ManualClock};
///
/// static CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(0));
/// static CACHE: LazyLock<Cache> =
///     LazyLock::new(|| Cache::builder().clock(Clock::manual(&CLOCK)).build());
/// static FEED_DOWN: AtomicBool = AtomicBool::new(false);
///
/// #[cachewright::cached(key = "rate:<cur>", ttl = 60, fail_safe = "1h", cache = CACHE, name = "Rate")]
/// fn rate(cur: &str) -> f64 {
///     if FEED_DOWN.load(Ordering::SeqCst) {
///         cachewright::mark_failed();
///         return f64::NAN; // the feed's placeholder for "no quote"
///     }
///     1.08
/// }
///
/// assert_eq!(rate("EUR"), 1.08);
/// FEED_DOWN.store(true, Ordering::SeqCst);
/// CLOCK.advance(Duration::from_secs(120)); // expired a minute ago
/// assert_eq!(rate("EUR"), 1.08, "the last good rate, not the placeholder");
/// assert_eq!(CACHE.stats_for("Rate").unwrap().fail_safe_served, 1);
/// assert!(!cachewright::mark_failed(), "not inside a loader");
/// ```
pub fn mark_failed() -> bool {
    SAID.with(|c| match c.borrow_mut().as_mut() {
        Some(said) => {
            said.failed = true;
            true
        }
        None => false,
    })
}

fn give(d: Directive) -> bool {
    SAID.with(|c| match c.borrow_mut().as_mut() {
        Some(said) => {
            said.directive = d;
            true
        }
        None => false,
    })
}

/// Runs a sync loader, collecting what it said about its result.
pub(crate) fn directed<R>(f: impl FnOnce() -> R) -> (R, Said) {
    struct Restore(Option<Option<Said>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            if let Some(prev) = self.0.take() {
                SAID.with(|c| *c.borrow_mut() = prev);
            }
        }
    }
    let mut restore = Restore(Some(SAID.with(|c| c.replace(Some(Said::default())))));
    let r = f();
    let said = SAID.with(|c| c.replace(restore.0.take().flatten()));
    (r, said.unwrap_or_default())
}

/// Awaits an async loader, collecting what it said about its result.
pub(crate) async fn directed_async<F: Future>(fut: F) -> (F::Output, Said) {
    let mut d = Directed {
        fut: Box::pin(fut),
        said: Some(Said::default()),
    };
    let out = (&mut d).await;
    (out, d.said.take().unwrap_or_default())
}

struct Directed<F> {
    fut: Pin<Box<F>>,
    said: Option<Said>,
}

impl<F: Future> Future for &mut Directed<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        /// Puts the thread's previous state back even if the loader panics
        /// (a runtime that catches task panics reuses the thread).
        struct Restore(Option<Option<Said>>);
        impl Drop for Restore {
            fn drop(&mut self) {
                if let Some(prev) = self.0.take() {
                    SAID.with(|c| *c.borrow_mut() = prev);
                }
            }
        }
        let mine = self.said.take();
        let mut restore = Restore(Some(SAID.with(|c| c.replace(mine))));
        let out = self.fut.as_mut().poll(cx);
        let prev = restore.0.take().flatten();
        self.said = SAID.with(|c| c.replace(prev));
        out
    }
}

/// A loader as a load runs it: its result and what it said about caching
/// it (`set_ttl`, `do_not_cache`, `add_tags`).
pub(crate) trait Loader<V, E> {
    fn run(self) -> impl Future<Output = (Result<V, E>, Said)>;
}

/// A sync loader (the body of a sync function, a closure).
pub(crate) struct SyncLoader<F>(pub(crate) F);

impl<V, E, F: FnOnce() -> Result<V, E>> Loader<V, E> for SyncLoader<F> {
    async fn run(self) -> (Result<V, E>, Said) {
        directed(self.0)
    }
}

/// An async loader (the body of an async function, a future).
pub(crate) struct AsyncLoader<F>(pub(crate) F);

impl<V, E, F: Future<Output = Result<V, E>>> Loader<V, E> for AsyncLoader<F> {
    async fn run(self) -> (Result<V, E>, Said) {
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
                add_tags(["inner"]);
            });
            assert_eq!(inner.directive, Directive::Skip);
            assert_eq!(inner.tags, ["inner"]);
            assert!(add_tags(["outer"]));
        });
        assert_eq!(d.directive, Directive::Ttl(Duration::from_secs(3)));
        assert_eq!(d.tags, ["outer"], "the inner loader's tags stay its own");
        assert!(!do_not_cache());
        assert!(!add_tags(["nobody"]));
    }

    #[test]
    fn add_tags_may_run_cached_calls_while_it_renders() {
        let ((), said) = directed(|| {
            // The iterator runs a nested loader, as a cached call would.
            let tags = std::iter::once_with(|| {
                let ((), inner) = directed(|| {
                    add_tags(["inner"]);
                });
                assert_eq!(inner.tags, ["inner"]);
                "outer".to_string()
            });
            assert!(add_tags(tags));
        });
        assert_eq!(said.tags, ["outer"]);
    }

    #[test]
    fn a_panicking_async_loader_leaves_no_state_on_its_thread() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(directed_async(async {
                add_tags(["x"]);
                panic!("the loader fails");
            }))
        }));
        assert!(caught.is_err());
        assert!(!set_ttl(Duration::from_secs(1)), "no loader runs any more");
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            rt.block_on(bypass_async(async { panic!("the call fails") }))
        }));
        assert!(caught.is_err());
        assert_eq!(
            take_mode(),
            Mode::Normal,
            "the bypass does not reach later calls"
        );
    }

    #[tokio::test]
    async fn tags_follow_an_async_loader_across_awaits() {
        let ((), said) = directed_async(async {
            add_tags(["a"]);
            tokio::task::yield_now().await;
            add_tags(["b"]);
        })
        .await;
        assert_eq!(said.tags, ["a", "b"]);
        assert!(!add_tags(["outside"]));
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
