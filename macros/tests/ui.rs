//! Compile tests of `#[derive(IntoStatus)]` (trybuild): `ui/pass` must build and
//! run, `ui/fail` must fail with exactly the `.stderr` beside each file.
//!
//! The expected messages are rustc's, so they are tied to the toolchain CI uses;
//! after an intended change (or a new toolchain), bless them with
//! `TRYBUILD=overwrite cargo test -p steadfast-macros --test ui` and review the diff.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.pass("tests/ui/pass/*.rs");
    cases.compile_fail("tests/ui/fail/*.rs");
}
