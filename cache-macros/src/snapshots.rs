//! Expansion snapshots: what each attribute generates for a few typical
//! functions, formatted, under `cache-macros/snapshots/`. A change in
//! generated code shows in review as a change of these files.
//!
//! Regenerate after an intended change with
//! `CACHEWRIGHT_SNAPSHOTS=overwrite cargo test -p cachewright-macros snapshots`,
//! then read the diff.

use proc_macro2::TokenStream;
use quote::quote;
use std::path::PathBuf;

fn check(name: &str, expanded: TokenStream) {
    let file: syn::File = syn::parse2(expanded).expect("the expansion parses as items");
    let text = prettyplease::unparse(&file);
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("snapshots")
        .join(format!("{name}.expanded.rs"));
    if std::env::var("CACHEWRIGHT_SNAPSHOTS").as_deref() == Ok("overwrite") {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &text).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|_| {
        panic!(
            "no snapshot {}; write it with CACHEWRIGHT_SNAPSHOTS=overwrite",
            path.display()
        )
    });
    assert!(
        want == text,
        "the expansion of `{name}` changed; review it and regenerate with \
         CACHEWRIGHT_SNAPSHOTS=overwrite:\n{text}"
    );
}

#[test]
fn sync_fn() {
    let out = crate::expand::cached(
        quote!(key = "user:<id>", ttl = 300, tags = ["org:<org>"]),
        quote!(
            fn get_user(id: u64, org: u64) -> Result<User, DbError> {
                db::user(id)
            }
        ),
    );
    check("sync_fn", out);
}

#[test]
fn async_fn_with_swr() {
    let out = crate::expand::cached(
        quote!(key = "user:<id>", ttl = "5m", swr = 30, negative_ttl = 60),
        quote!(
            async fn find_user(id: u64) -> Option<User> {
                db::find(id).await
            }
        ),
    );
    check("async_fn_with_swr", out);
}

#[test]
fn async_method() {
    let out = crate::expand::cached(
        quote!(key = "user:<self.tenant>:<id>", ttl = 60, crate = "my::cw"),
        quote!(
            async fn get(&self, id: u64) -> Result<User, DbError> {
                self.db.user(id).await
            }
        ),
    );
    check("async_method", out);
}

#[test]
fn async_fn_with_timeouts() {
    let out = crate::expand::cached(
        quote!(
            key = "user:<id>",
            ttl = 60,
            fail_safe = "1h",
            soft_timeout = "100ms",
            hard_timeout = "2s",
            lock = true
        ),
        quote!(
            async fn get_user(id: u64, name: &str) -> Result<User, DbError> {
                db::user(id, name).await
            }
        ),
    );
    check("async_fn_with_timeouts", out);
}

#[test]
fn cache_write() {
    let out = crate::expand::cache_write(
        quote!(invalidate = ["user:<id>"], recache = [get_user(id)]),
        quote!(
            async fn rename_user(id: u64, name: String) -> Result<(), DbError> {
                db::rename(id, name).await
            }
        ),
    );
    check("cache_write", out);
}

#[test]
fn bg_writer() {
    let out = crate::expand::bg_writer(
        quote!(key = "config", interval = "30s"),
        quote!(
            async fn config() -> Result<Config, Error> {
                load().await
            }
        ),
    );
    check("bg_writer", out);
}
