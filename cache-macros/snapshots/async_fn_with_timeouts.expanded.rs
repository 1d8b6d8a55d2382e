async fn get_user(id: u64, name: &str) -> Result<User, DbError> {
    #[allow(unused_imports)]
    use ::cachewright::__private::{
        ViaClone as _, ViaNothing as _, ViaOpaque as _, ViaSerde as _,
    };
    static __CACHEWRIGHT_USE_CASE: ::cachewright::__private::UseCaseSlot = ::cachewright::__private::UseCaseSlot::new(::cachewright::__private::UseCaseSpec {
        name: ::core::concat!(
            ::core::module_path!(), "::", ::core::stringify!(get_user)
        ),
        key: ::cachewright::__private::KeyTemplate {
            key_type: "user",
            id: &[::cachewright::__private::Segment::Value(0usize)],
            args: &[("name", 1usize)],
            tags: &[],
        },
        ttl_ms: ::core::option::Option::Some(60000u64),
        ttl_preset: ::core::option::Option::None,
        swr_ms: 0u64,
        negative_ttl_ms: ::core::option::Option::None,
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
        resilience: ::cachewright::__private::Resilience {
            fail_safe_ms: 3600000u64,
            soft_timeout_ms: 100u64,
            hard_timeout_ms: 2000u64,
            lock: true,
            ..::cachewright::__private::Resilience::NONE
        },
    });
    let (__cachewright_uc, __cachewright_miss) = {
        ::cachewright::__private::assert_key_part(&id);
        ::cachewright::__private::assert_key_part(name);
        ::cachewright::__private::assert_value::<User>();
        let __cachewright_q = (&id, name);
        let __cachewright_uc = __CACHEWRIGHT_USE_CASE
            .get::<
                _,
                User,
            >(
                &__cachewright_q,
                ::core::option::Option::None,
                || ::core::clone::Clone::clone(
                    ::cachewright::__private::default_cache(),
                ),
                ::core::option::Option::None,
                (&::cachewright::__private::CodecProbe::<User>::new()).value_codec(),
            );
        let __cachewright_miss = match __cachewright_uc {
            ::core::option::Option::Some(__cachewright_uc) => {
                match __cachewright_uc.lookup(&__cachewright_q) {
                    ::cachewright::__private::Lookup::Hit(__cachewright_v) => {
                        return ::core::result::Result::Ok(__cachewright_v);
                    }
                    ::cachewright::__private::Lookup::Stale(__cachewright_v) => {
                        return ::core::result::Result::Ok(__cachewright_v);
                    }
                    ::cachewright::__private::Lookup::Shadow(__cachewright_v) => {
                        return ::core::result::Result::Ok(__cachewright_v);
                    }
                    ::cachewright::__private::Lookup::Miss(__cachewright_mode) => {
                        ::core::option::Option::Some(
                            __cachewright_uc
                                .miss(
                                    &__cachewright_q,
                                    &[
                                        &&id as &dyn ::core::fmt::Display,
                                        &name as &dyn ::core::fmt::Display,
                                    ],
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
    let __cachewright_run = match (&__cachewright_uc, &__cachewright_miss) {
        (::core::option::Option::Some(_), ::core::option::Option::Some(_)) => {
            ::core::option::Option::Some(
                (|| {
                    let __cachewright_owned_0 = ::std::borrow::ToOwned::to_owned(&id);
                    let __cachewright_owned_1 = ::std::borrow::ToOwned::to_owned(name);
                    ::std::boxed::Box::pin(async move {
                        #[allow(unused_variables, unused_mut)]
                        let id: u64 = __cachewright_owned_0;
                        #[allow(unused_variables)]
                        let name: &str = ::core::borrow::Borrow::borrow(
                            &__cachewright_owned_1,
                        );
                        let __cachewright_r: Result<User, DbError> = async move {
                            db::user(id, name).await
                        }
                            .await;
                        ::core::convert::identity::<
                            Result<User, DbError>,
                        >(__cachewright_r)
                    })
                })(),
            )
        }
        _ => ::core::option::Option::None,
    };
    let __cachewright_load = async move {
        let __cachewright_r: Result<User, DbError> = { db::user(id, name).await };
        __cachewright_r
    };
    match (__cachewright_uc, __cachewright_miss, __cachewright_run) {
        (
            ::core::option::Option::Some(__cachewright_uc),
            ::core::option::Option::Some(__cachewright_miss),
            ::core::option::Option::Some(__cachewright_run),
        ) => {
            let __cachewright_share = (&::cachewright::__private::probe_async(
                &__cachewright_run,
            ))
                .share_error();
            ::core::convert::identity(
                ::std::boxed::Box::pin(
                        __cachewright_uc
                            .load_async_timed(
                                __cachewright_miss,
                                __cachewright_share,
                                __cachewright_run,
                                ::core::option::Option::Some(|
                                    __cachewright_t: ::cachewright::__private::Timeout|
                                ::core::convert::From::from(__cachewright_t)),
                            ),
                    )
                    .await,
            )
        }
        _ => __cachewright_load.await,
    }
}
