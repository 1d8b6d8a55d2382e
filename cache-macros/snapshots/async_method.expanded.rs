async fn get(&self, id: u64) -> Result<User, DbError> {
    #[allow(unused_imports)]
    use my::cw::__private::{
        ViaClone as _, ViaNothing as _, ViaOpaque as _, ViaSerde as _,
    };
    static __CACHEWRIGHT_USE_CASE: my::cw::__private::UseCaseSlot = my::cw::__private::UseCaseSlot::new(my::cw::__private::UseCaseSpec {
        name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(get)),
        key: my::cw::__private::KeyTemplate {
            key_type: "user",
            id: &[
                my::cw::__private::Segment::Value(0usize),
                my::cw::__private::Segment::Text(":"),
                my::cw::__private::Segment::Value(1usize),
            ],
            args: &[],
            tags: &[],
        },
        ttl_ms: ::core::option::Option::Some(60000u64),
        ttl_preset: ::core::option::Option::None,
        swr_ms: 0u64,
        negative_ttl_ms: ::core::option::Option::None,
        jitter: 0f64,
        capacity: ::core::option::Option::None,
        schema: 0u32,
        layers: my::cw::__private::LayerChoice::All,
        local_ttl_ms: ::core::option::Option::None,
        remote_ttl_ms: ::core::option::Option::None,
        max_bytes: ::core::option::Option::None,
        weigher: ::core::option::Option::None,
        shadow_per_mille: ::core::option::Option::None,
        early_refresh_per_mille: 0u32,
        xfetch_beta_milli: 0u32,
        resilience: my::cw::__private::Resilience::NONE,
    });
    let (__cachewright_uc, __cachewright_miss) = {
        my::cw::__private::assert_key_part(&self.tenant);
        my::cw::__private::assert_key_part(&id);
        my::cw::__private::assert_value::<User>();
        let __cachewright_q = (&self.tenant, &id);
        let __cachewright_uc = __CACHEWRIGHT_USE_CASE
            .get::<
                _,
                User,
            >(
                &__cachewright_q,
                ::core::option::Option::Some(
                    ::core::any::type_name::<Self> as fn() -> &'static str,
                ),
                || ::core::clone::Clone::clone(my::cw::__private::default_cache()),
                ::core::option::Option::None,
                (&my::cw::__private::CodecProbe::<User>::new()).value_codec(),
            );
        let __cachewright_miss = match __cachewright_uc {
            ::core::option::Option::Some(__cachewright_uc) => {
                match __cachewright_uc.lookup(&__cachewright_q) {
                    my::cw::__private::Lookup::Hit(__cachewright_v) => {
                        return ::core::result::Result::Ok(__cachewright_v);
                    }
                    my::cw::__private::Lookup::Stale(__cachewright_v) => {
                        return ::core::result::Result::Ok(__cachewright_v);
                    }
                    my::cw::__private::Lookup::Shadow(__cachewright_v) => {
                        return ::core::result::Result::Ok(__cachewright_v);
                    }
                    my::cw::__private::Lookup::Miss(__cachewright_mode) => {
                        ::core::option::Option::Some(
                            __cachewright_uc
                                .miss(
                                    &__cachewright_q,
                                    &[
                                        &&self.tenant as &dyn ::core::fmt::Display,
                                        &&id as &dyn ::core::fmt::Display,
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
    let __cachewright_load = async move {
        let __cachewright_r: Result<User, DbError> = { self.db.user(id).await };
        __cachewright_r
    };
    match (__cachewright_uc, __cachewright_miss) {
        (
            ::core::option::Option::Some(__cachewright_uc),
            ::core::option::Option::Some(__cachewright_miss),
        ) => {
            let __cachewright_into = async move {
                ::core::convert::identity::<
                    Result<User, DbError>,
                >(__cachewright_load.await)
            };
            let __cachewright_share = (&my::cw::__private::probe_async(
                &__cachewright_into,
            ))
                .share_error();
            ::core::convert::identity(
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
