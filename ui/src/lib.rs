//! No code: the compile-time diagnostics of cachewright's attributes are
//! tested in `tests/ui.rs`, with one case per file under `tests/ui/`.
