#![doc = include_str!("../README.md")]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![forbid(unsafe_code)]

pub use cache_macros::{bg_writer, cache_write, cached};
pub use cache_runtime::*;

#[doc(hidden)]
pub use cache_runtime::__private;
