async fn rename_user(id: u64, name: String) -> Result<(), DbError> {
    #[allow(unused_imports)]
    use ::cachewright::__private::{
        RecacheDone as _, RecacheFuture as _, RecacheSpawn as _, RecacheValue as _,
    };
    let __cachewright_tags: ::std::vec::Vec<::std::string::String> = ::cachewright::__private::render_tags(
        &[
            &[
                ::cachewright::__private::Segment::Text("user:"),
                ::cachewright::__private::Segment::Value(0usize),
            ],
        ],
        &[&&id as &dyn ::core::fmt::Display],
    );
    let __cachewright_keep_id = ::core::clone::Clone::clone(&id);
    let __cachewright_cache: ::cachewright::__private::Cache = ::core::clone::Clone::clone(
        ::cachewright::__private::default_cache(),
    );
    let __cachewright_r: Result<(), DbError> = async move { db::rename(id, name).await }
        .await;
    if ::core::result::Result::is_ok(&__cachewright_r) {
        ::cachewright::__private::invalidate_for_write_async(
                &__cachewright_cache,
                __cachewright_tags,
                ::core::time::Duration::from_millis(0u64),
                true,
            )
            .await;
        (&::cachewright::__private::Recache::new(
            ::cachewright::refresh(|| get_user(__cachewright_keep_id)),
        ))
            .recache()
            .await;
    }
    __cachewright_r
}
