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
#[proc_macro_attribute]
pub fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::cached(args.into(), item.into()).into()
}

/// Turns a loader into a background writer `static` of the same name; see
/// the `cachewright` crate for the reference.
#[proc_macro_attribute]
pub fn bg_writer(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::bg_writer(args.into(), item.into()).into()
}

/// Invalidates tags (and re-warms cached functions) after a write; see the
/// `cachewright` crate for the reference.
#[proc_macro_attribute]
pub fn cache_write(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::cache_write(args.into(), item.into()).into()
}
