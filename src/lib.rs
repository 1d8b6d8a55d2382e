#![doc = include_str!("../README.md")]
#![warn(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![forbid(unsafe_code)]

pub use cachewright_macros::{bg_writer, cache_write, cached};
pub use cachewright_runtime::*;

#[doc(hidden)]
pub use cachewright_runtime::__private;
