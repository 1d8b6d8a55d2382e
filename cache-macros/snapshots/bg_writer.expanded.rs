#[doc(hidden)]
async fn __cachewright_bg_config() -> Result<Config, Error> {
    { load().await }
}
#[allow(non_upper_case_globals)]
static config: ::cachewright::BgWriter<Config> = ::cachewright::BgWriter::new(
    ::cachewright::__private::BgSpec {
        key: "config",
        interval_ms: 30000u64,
        ttl_ms: ::core::option::Option::None,
        run_immediately: true,
        name: ::core::concat!(::core::module_path!(), "::", ::core::stringify!(config)),
    },
    ::cachewright::__private::BgLoader::Async(|| ::std::boxed::Box::pin(async {
        let __cachewright_r = __cachewright_bg_config().await;
        match __cachewright_r {
            ::core::result::Result::Ok(v) => ::core::result::Result::Ok(v),
            ::core::result::Result::Err(__cachewright_e) => {
                ::core::result::Result::Err(
                    ::cachewright::__private::BgFailure::new(&__cachewright_e),
                )
            }
        }
    })),
    || ::core::clone::Clone::clone(::cachewright::__private::default_cache()),
);
