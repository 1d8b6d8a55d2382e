//! The attribute macros of [cachewright](https://docs.rs/cachewright).
//!
//! Use them through `cachewright` (`#[cachewright::cached]`); this crate holds only
//! parsing, validation and expansion, and its output names nothing but
//! `::cachewright::__private` (or the path given with `crate = "..."`).
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![forbid(unsafe_code)]

mod attr;
mod check;
mod expand;
mod plan;
mod template;

#[cfg(test)]
mod snapshots;

use proc_macro::TokenStream;

/// Caches a function's results; see the `cachewright` crate for the reference.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// static LOADS: AtomicU32 = AtomicU32::new(0);
///
/// #[cachewright::cached(key = "user:<id>", ttl = 300, tags = ["org:<org>"])]
/// fn user_name(id: u64, org: u64) -> Result<String, String> {
///     LOADS.fetch_add(1, Ordering::SeqCst);
///     Ok(format!("user {id} of org {org}"))
/// }
///
/// assert_eq!(user_name(1, 7).unwrap(), "user 1 of org 7");
/// assert_eq!(user_name(1, 7).unwrap(), "user 1 of org 7");
/// assert_eq!(LOADS.load(Ordering::SeqCst), 1, "the second call was a hit");
/// cachewright::default_cache().invalidate_tags([cachewright::tag("org", &7)]);
/// user_name(1, 7).unwrap();
/// assert_eq!(LOADS.load(Ordering::SeqCst), 2, "loaded again after the invalidation");
/// ```
#[proc_macro_attribute]
pub fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::cached(args.into(), item.into()).into()
}

/// Turns a loader into a background writer `static` of the same name; see
/// the `cachewright` crate for the reference.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// /// Loaded once in the background every 5 minutes (and on first use).
/// #[cachewright::bg_writer(key = "exchange_rates", interval = "5m")]
/// fn rates() -> Vec<(String, f64)> {
///     vec![("EUR".to_string(), 1.08)]
/// }
///
/// assert_eq!(rates.get().unwrap()[0].0, "EUR"); // read from memory after the first load
/// assert_eq!(rates.interval(), Some(Duration::from_secs(300)));
/// cachewright::shutdown();
/// ```
#[proc_macro_attribute]
pub fn bg_writer(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::bg_writer(args.into(), item.into()).into()
}

/// Invalidates tags (and re-warms cached functions) after a write; see the
/// `cachewright` crate for the reference.
///
/// # Examples
///
/// ```
/// use cachewright::{cache_write, cached};
/// use std::sync::Mutex;
///
/// static NAMES: Mutex<Vec<String>> = Mutex::new(Vec::new());
///
/// #[cached(key = "user:<id>:name", ttl = 3600)]
/// fn name(id: usize) -> String {
///     NAMES.lock().unwrap()[id].clone()
/// }
///
/// /// On `Ok`, every entry about user `id` stops being served.
/// #[cache_write(invalidate = ["user:<id>"])]
/// fn rename(id: usize, new: &str) -> Result<(), String> {
///     NAMES.lock().unwrap()[id] = new.to_string();
///     Ok(())
/// }
///
/// NAMES.lock().unwrap().push("ada".to_string());
/// assert_eq!(name(0), "ada");
/// rename(0, "Ada Lovelace").unwrap();
/// assert_eq!(name(0), "Ada Lovelace", "not the cached old name");
/// ```
#[proc_macro_attribute]
pub fn cache_write(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::cache_write(args.into(), item.into()).into()
}
