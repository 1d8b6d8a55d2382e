async fn find_user(id: u64) -> Option<User> {
    #[allow(unused_imports)]
    use ::cachewright::__private::{
        ViaClone as _, ViaNothing as _, ViaOpaque as _, ViaSerde as _,
    };
    static __CACHEWRIGHT_USE_CASE: ::cachewright::__private::UseCaseSlot = ::cachewright::__private::UseCaseSlot::new(::cachewright::__private::UseCaseSpec {
        name: ::core::concat!(
            ::core::module_path!(), "::", ::core::stringify!(find_user)
        ),
        key: ::cachewright::__private::KeyTemplate {
            key_type: "user",
            id: &[::cachewright::__private::Segment::Value(0usize)],
            args: &[],
            tags: &[],
        },
        ttl_ms: ::core::option::Option::Some(300000u64),
        ttl_preset: ::core::option::Option::None,
        swr_ms: 30000u64,
        negative_ttl_ms: ::core::option::Option::Some(60000u64),
        jitter: 0f64,
        capacity: ::core::option::Option::None,
        schema: 0u32,
        layers: ::cachewright::__private::LayerChoice::All,
        local_ttl_ms: ::core::option::Option::None,
        remote_ttl_ms: ::core::option::Option::None,
        max_bytes: ::core::option::Option::None,
        weigher: ::core::option::Option::None,
        shadow_per_mille: ::core::option::Option::None,
        early_refresh_per_mille: 0u32,
        xfetch_beta_milli: 0u32,
        resilience: ::cachewright::__private::Resilience::NONE,
    });
    let (__cachewright_uc, __cachewright_miss) = {
        ::cachewright::__private::assert_key_part(&id);
        ::cachewright::__private::assert_value::<Option<User>>();
        let __cachewright_q = (&id,);
        let __cachewright_uc = __CACHEWRIGHT_USE_CASE
            .get::<
                _,
                Option<User>,
            >(
                &__cachewright_q,
                ::core::option::Option::None,
                || ::core::clone::Clone::clone(
                    ::cachewright::__private::default_cache(),
                ),
                ::core::option::Option::Some(
                    ::core::option::Option::is_none as fn(&Option<User>) -> bool,
                ),
                (&::cachewright::__private::CodecProbe::<Option<User>>::new())
                    .value_codec(),
            );
        let __cachewright_miss = match __cachewright_uc {
            ::core::option::Option::Some(__cachewright_uc) => {
                match __cachewright_uc.lookup(&__cachewright_q) {
                    ::cachewright::__private::Lookup::Hit(__cachewright_v) => {
                        return __cachewright_v;
                    }
                    ::cachewright::__private::Lookup::Stale(__cachewright_v) => {
                        __cachewright_uc
                            .refresh_async(
                                &__cachewright_q,
                                &[&&id as &dyn ::core::fmt::Display],
                                || {
                                    let __cachewright_owned_0 = ::std::borrow::ToOwned::to_owned(
                                        &id,
                                    );
                                    ::std::boxed::Box::pin(async move {
                                        #[allow(unused_variables, unused_mut)]
                                        let id: u64 = __cachewright_owned_0;
                                        let __cachewright_r: Option<User> = async move {
                                            db::find(id).await
                                        }
                                            .await;
                                        ::cachewright::__private::discard_error(
                                            ::core::result::Result::Ok::<
                                                Option<User>,
                                                ::core::convert::Infallible,
                                            >(__cachewright_r),
                                        )
                                    })
                                },
                            );
                        return __cachewright_v;
                    }
                    ::cachewright::__private::Lookup::Shadow(__cachewright_v) => {
                        return __cachewright_v;
                    }
                    ::cachewright::__private::Lookup::Miss(__cachewright_mode) => {
                        ::core::option::Option::Some(
                            __cachewright_uc
                                .miss(
                                    &__cachewright_q,
                                    &[&&id as &dyn ::core::fmt::Display],
                                    __cachewright_mode,
                                ),
                        )
                    }
                }
            }
            ::core::option::Option::None => ::core::option::Option::None,
        };
        (__cachewright_uc, __cachewright_miss)
    };
    let __cachewright_load = async move {
        let __cachewright_r: Option<User> = { db::find(id).await };
        __cachewright_r
    };
    match (__cachewright_uc, __cachewright_miss) {
        (
            ::core::option::Option::Some(__cachewright_uc),
            ::core::option::Option::Some(__cachewright_miss),
        ) => {
            let __cachewright_into = async move {
                ::core::result::Result::Ok::<
                    Option<User>,
                    ::core::convert::Infallible,
                >(__cachewright_load.await)
            };
            let __cachewright_share = (&::cachewright::__private::probe_async(
                &__cachewright_into,
            ))
                .share_error();
            ::cachewright::__private::unwrap_infallible(
                ::std::boxed::Box::pin(
                        __cachewright_uc
                            .load_async(
                                __cachewright_miss,
                                __cachewright_share,
                                __cachewright_into,
                            ),
                    )
                    .await,
            )
        }
        _ => __cachewright_load.await,
    }
}
