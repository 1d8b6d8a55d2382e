fn get_user(id: u64, org: u64) -> Result<User, DbError> {
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
            args: &[("org", 1usize)],
            tags: &[
                &[
                    ::cachewright::__private::Segment::Text("org:"),
                    ::cachewright::__private::Segment::Value(1usize),
                ],
            ],
        },
        ttl_ms: ::core::option::Option::Some(300000u64),
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
        resilience: ::cachewright::__private::Resilience::NONE,
    });
    let (__cachewright_uc, __cachewright_miss) = {
        ::cachewright::__private::assert_key_part(&id);
        ::cachewright::__private::assert_key_part(&org);
        ::cachewright::__private::assert_value::<User>();
        let __cachewright_q = (&id, &org);
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
                                        &&org as &dyn ::core::fmt::Display,
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
    let __cachewright_load = move || -> Result<User, DbError> { db::user(id) };
    match (__cachewright_uc, __cachewright_miss) {
        (
            ::core::option::Option::Some(__cachewright_uc),
            ::core::option::Option::Some(__cachewright_miss),
        ) => {
            let __cachewright_into = move || ::core::convert::identity::<
                Result<User, DbError>,
            >(__cachewright_load());
            let __cachewright_share = (&::cachewright::__private::probe_sync(
                &__cachewright_into,
            ))
                .share_error();
            ::core::convert::identity(
                __cachewright_uc
                    .load_sync(
                        __cachewright_miss,
                        __cachewright_share,
                        __cachewright_into,
                    ),
            )
        }
        _ => __cachewright_load(),
    }
}
