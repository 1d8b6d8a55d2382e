//! Compile-time diagnostics of `#[cached]`: each case under `tests/ui/` is a
//! program that must fail to compile with the error in its `.stderr` (or, in
//! `pass/`, compile and run).
//!
//! Regenerate the expected output with `TRYBUILD=overwrite cargo test --test ui`
//! and read every changed `.stderr` before committing it.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/args/*.rs");
    t.compile_fail("tests/ui/template/*.rs");
    t.compile_fail("tests/ui/shape/*.rs");
    t.compile_fail("tests/ui/bounds/*.rs");
    t.compile_fail("tests/ui/multi/*.rs");
    t.compile_fail("tests/ui/lints/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
