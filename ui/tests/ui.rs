//! Compile-time diagnostics of `#[cached]`, `#[cache_write]` and `#[bg_writer]`: each case
//! under `tests/ui/` is a program that must fail to compile with the errors
//! in its `.stderr` (or, in `pass/`, compile and run).
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test -p cachewright-ui-tests`
//! and read every changed `.stderr` before committing it: each error must be
//! the intended one, at the offending token. The expected output is that of
//! the toolchain CI uses (the one in `rust-toolchain.toml`).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/args/*.rs");
    t.compile_fail("tests/ui/template/*.rs");
    t.compile_fail("tests/ui/shape/*.rs");
    t.compile_fail("tests/ui/bounds/*.rs");
    t.compile_fail("tests/ui/multi/*.rs");
    // A method says how its receiver is keyed.
    t.compile_fail("tests/ui/receiver/*.rs");
    // Lints still fire on the user's code through the expansion.
    t.compile_fail("tests/ui/lints/*.rs");
    t.compile_fail("tests/ui/write/*.rs");
    t.compile_fail("tests/ui/bg/*.rs");
    // `crate = "..."`: malformed, or naming a path without cachewright.
    t.compile_fail("tests/ui/krate/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
