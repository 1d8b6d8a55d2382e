//! The `CACHEWRIGHT_*` environment: reading, checking, and the default
//! cache's fallback when a variable is malformed.

use super::*;

/// A variable of this process's environment: `Err` when it is set but not
/// UTF-8 (reported as malformed, never taken as unset).
pub(super) fn process_env(name: &str) -> Lookup {
    match std::env::var_os(name) {
        None => Ok(None),
        Some(v) => v.into_string().map(Some).map_err(|_| ()),
    }
}

/// What looking a variable up gives: its value if set, `Err` if not UTF-8.
pub(super) type Lookup = Result<Option<String>, ()>;

/// The default cache's builder as the environment `lookup` describes it,
/// or, when a variable is malformed, the built-in defaults (after logging
/// every malformed variable once).
pub(super) fn from_environment(lookup: &dyn Fn(&str) -> Lookup) -> CacheBuilder {
    match read(Cache::builder(), lookup) {
        Ok(builder) => builder,
        Err(problems) => {
            for p in &problems {
                tracing::error!(
                    target: "cachewright",
                    variable = p.variable,
                    "{p}; the default cache runs in process only, with the built-in defaults"
                );
            }
            Cache::builder()
        }
    }
}

/// One malformed environment variable: which, and what is wrong with it.
///
/// The value of `CACHEWRIGHT_REDIS_URL` is shown with its password masked.
///
/// # Examples
///
/// ```
/// use cachewright::{configure, ConfigError};
///
/// std::env::set_var("CACHEWRIGHT_CAPACITY", "lots");
/// let Err(ConfigError::Environment(problems)) = configure().from_env() else {
///     panic!("a malformed capacity is reported");
/// };
/// assert_eq!(problems[0].variable, "CACHEWRIGHT_CAPACITY");
/// assert!(problems[0].to_string().starts_with("CACHEWRIGHT_CAPACITY is malformed"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvProblem {
    /// The variable's name, such as `CACHEWRIGHT_CAPACITY`.
    pub variable: &'static str,
    /// What is wrong with its value.
    pub reason: String,
}

impl fmt::Display for EnvProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} is malformed: {}", self.variable, self.reason)
    }
}

/// The variables [`Setup::from_env`] reads.
pub(super) const REDIS_URL: &str = "CACHEWRIGHT_REDIS_URL";
pub(super) const NAMESPACE: &str = "CACHEWRIGHT_NAMESPACE";
pub(super) const VERSION: &str = "CACHEWRIGHT_VERSION";
pub(super) const LOCAL_TTL: &str = "CACHEWRIGHT_LOCAL_TTL";
pub(super) const CAPACITY: &str = "CACHEWRIGHT_CAPACITY";

/// A namespace or version: a non-empty word without blanks or control
/// characters (it is escaped in keys, so any other character is safe).
fn word(v: &str) -> Result<(), String> {
    if v.chars().any(|c| c.is_whitespace() || c.is_control()) {
        Err(format!(
            "`{}` holds blanks or control characters",
            v.escape_debug()
        ))
    } else {
        Ok(())
    }
}

/// A Redis layer for `url`: a standalone server, or a Redis Cluster when
/// `url` is a comma list of nodes (`redis://h1:7000,h2:7001`).
pub(super) fn redis_layer(url: &str) -> Result<LayerConfig, String> {
    if cachewright_backends::node_urls(url).len() > 1 {
        return cluster_layer(url);
    }
    standalone_layer(url)
}

#[cfg(feature = "redis")]
fn standalone_layer(url: &str) -> Result<LayerConfig, String> {
    cachewright_backends::redis::RedisBackend::from_url(url)
        .map(LayerConfig::new)
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "redis"))]
fn standalone_layer(url: &str) -> Result<LayerConfig, String> {
    Err(format!(
        "`{}` is set, but cachewright was built without its `redis` feature",
        cachewright_backends::redact_url(url)
    ))
}

#[cfg(feature = "cluster")]
fn cluster_layer(url: &str) -> Result<LayerConfig, String> {
    cachewright_backends::redis_cluster::RedisClusterBackend::from_url(url)
        .map(LayerConfig::new)
        .map_err(|e| e.to_string())
}

#[cfg(not(feature = "cluster"))]
fn cluster_layer(url: &str) -> Result<LayerConfig, String> {
    Err(format!(
        "`{}` lists several Redis nodes (a Redis Cluster), but cachewright was built without its `cluster` feature",
        cachewright_backends::redact_url(url)
    ))
}

/// A duration: whole or fractional seconds (`45`, `1.5`), or numbers with
/// units `ms`, `s`, `m`, `h`, `d`, in any combination (`250ms`, `1h30m`,
/// `1m 30s`). Saturates instead of overflowing.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return t
            .parse::<f64>()
            .map(|secs| Duration::try_from_secs_f64(secs).unwrap_or(Duration::MAX))
            .map_err(|_| "not a number of seconds".into());
    }
    let mut total = Duration::ZERO;
    let mut rest = t;
    if rest.is_empty() {
        return Err("empty".into());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or("a number needs a unit: ms, s, m, h or d")?;
        let (number, tail) = rest.split_at(digits);
        let number: f64 = number
            .parse()
            .map_err(|_| "expected a number followed by ms, s, m, h or d")?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let scale = match unit.trim() {
            "ms" => 0.001,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            other => {
                return Err(format!(
                    "unknown unit `{other}`: use ms, s, m, h or d (as in 250ms, 30s, 1h30m)"
                ))
            }
        };
        let part = Duration::try_from_secs_f64(number * scale).unwrap_or(Duration::MAX);
        total = total.saturating_add(part);
        rest = tail.trim_start();
    }
    Ok(total)
}

/// Applies the variables that `lookup` finds to `builder`.
pub(super) fn read(
    mut builder: CacheBuilder,
    lookup: &dyn Fn(&str) -> Lookup,
) -> Result<CacheBuilder, Vec<EnvProblem>> {
    let mut problems = Vec::new();
    let mut get = |variable: &'static str| match lookup(variable) {
        Ok(v) => v.filter(|v| !v.trim().is_empty()),
        Err(()) => {
            problems.push(EnvProblem {
                variable,
                reason: "not valid UTF-8".into(),
            });
            None
        }
    };
    let ns = get(NAMESPACE);
    let version = get(VERSION);
    let ttl = get(LOCAL_TTL);
    let capacity = get(CAPACITY);
    let url = get(REDIS_URL);
    let mut problem = |variable, reason: String| problems.push(EnvProblem { variable, reason });
    if let Some(ns) = ns {
        match word(&ns) {
            Ok(()) => builder = builder.namespace(ns),
            Err(why) => problem(NAMESPACE, why),
        }
    }
    if let Some(v) = version {
        match word(&v) {
            Ok(()) => builder = builder.version(v),
            Err(why) => problem(VERSION, why),
        }
    }
    if let Some(t) = ttl {
        match parse_duration(&t) {
            Ok(d) if d >= Duration::from_millis(1) => builder = builder.local_ttl(d),
            Ok(_) => problem(
                LOCAL_TTL,
                format!("`{t}` is under 1 ms, which keeps nothing; leave it unset for no cap"),
            ),
            Err(why) => problem(LOCAL_TTL, format!("`{t}`: {why}")),
        }
    }
    if let Some(c) = capacity {
        match c.trim().replace('_', "").parse::<usize>() {
            Ok(n) if n > 0 => builder = builder.capacity(n),
            _ => problem(
                CAPACITY,
                format!("`{c}` is not a whole number of entries of at least 1"),
            ),
        }
    }
    if let Some(url) = url {
        match redis_layer(url.trim()) {
            Ok(layer) => builder = builder.layer(layer),
            Err(why) => problem(REDIS_URL, why),
        }
    }
    if problems.is_empty() {
        Ok(builder)
    } else {
        Err(problems)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &[(&str, &str)]) -> Result<CacheBuilder, Vec<EnvProblem>> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        read(Cache::builder(), &move |name| Ok(map.get(name).cloned()))
    }

    #[test]
    fn durations_as_attributes_write_them() {
        let ok = |t: &str| parse_duration(t).unwrap();
        assert_eq!(ok("30s"), Duration::from_secs(30));
        assert_eq!(ok("45"), Duration::from_secs(45));
        assert_eq!(ok("1.5"), Duration::from_millis(1500));
        assert_eq!(ok("250ms"), Duration::from_millis(250));
        assert_eq!(ok("1h30m"), Duration::from_secs(5400));
        assert_eq!(ok("2d"), Duration::from_secs(172_800));
        assert_eq!(ok("1m 30s"), Duration::from_secs(90));
        assert_eq!(ok("99999999999999999999d"), Duration::MAX);
        for bad in [
            "",
            "30x",
            "s",
            "-5",
            "ten",
            "5 parsecs",
            "NaN",
            "inf",
            "1e3",
            "1..2",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn every_malformed_variable_is_named() {
        let problems = env(&[
            (CAPACITY, "lots"),
            (LOCAL_TTL, "30 parsecs"),
            (NAMESPACE, "my app"),
            (VERSION, "v1"),
        ])
        .unwrap_err();
        let named: Vec<&str> = problems.iter().map(|p| p.variable).collect();
        assert_eq!(named, [NAMESPACE, LOCAL_TTL, CAPACITY]);
        assert!(problems[2]
            .to_string()
            .contains("CACHEWRIGHT_CAPACITY is malformed"));
        for zero in [(CAPACITY, "0"), (LOCAL_TTL, "0s"), (LOCAL_TTL, "0.5ms")] {
            assert_eq!(env(&[zero]).unwrap_err()[0].variable, zero.0);
        }
    }

    #[test]
    fn well_formed_variables_configure_the_default_cache() {
        let cache = env(&[
            (NAMESPACE, "billing"),
            (VERSION, "v9"),
            (CAPACITY, "1_000"),
            (LOCAL_TTL, "30s"),
            (REDIS_URL, "   "),
        ])
        .unwrap()
        .without_bus()
        .build();
        assert_eq!(cache.namespace(), "billing");
        assert_eq!(cache.version(), "v9");
        assert_eq!(cache.default_capacity(), 1_000);
        assert!(cache.layer_stats().is_empty(), "a blank URL is unset");
    }

    #[test]
    fn a_malformed_environment_falls_back_to_in_process_defaults() {
        let vars: HashMap<&str, &str> = [(NAMESPACE, "billing"), (CAPACITY, "-3")].into();
        let cache = from_environment(&|n| Ok(vars.get(n).map(|v| v.to_string()))).build();
        assert_eq!(
            cache.namespace(),
            "cachewright",
            "no half-applied environment"
        );
        assert_eq!(cache.default_capacity(), crate::cache::DEFAULT_CAPACITY);
        assert!(cache.layer_stats().is_empty());
    }

    #[test]
    fn a_value_that_is_not_utf8_is_malformed_not_unset() {
        let problems = read(Cache::builder(), &|name| {
            if name == NAMESPACE {
                Err(())
            } else {
                Ok(None)
            }
        })
        .unwrap_err();
        assert_eq!(problems[0].variable, NAMESPACE);
    }

    #[test]
    fn redis_url_problems_mask_the_password() {
        for url in [
            "http://user:hunter2@example:80",
            "redis://:hunter2/x@127.0.0.1:1/0",
            "redis://:hunter2?x@127.0.0.1:1/0",
            "redis://:hunter2#x@127.0.0.1:notaport/0",
        ] {
            let problems = env(&[(REDIS_URL, url)]).unwrap_err();
            assert_eq!(problems[0].variable, REDIS_URL);
            let e = ConfigError::Environment(problems);
            for text in [e.to_string(), format!("{e:?}")] {
                assert!(!text.contains("hunter2"), "{text}");
                assert!(text.contains(REDIS_URL), "{text}");
            }
        }
    }

    #[test]
    fn a_comma_list_is_a_cluster_or_a_clear_error() {
        let url = "redis://:hunter2@127.0.0.1:1,127.0.0.1:2";
        if cfg!(feature = "cluster") {
            let cache = env(&[(REDIS_URL, url)]).unwrap().without_bus().build();
            assert_eq!(cache.layer_stats()[0].backend, "redis-cluster");
        } else {
            let problems = env(&[(REDIS_URL, url)]).unwrap_err();
            let text = ConfigError::Environment(problems).to_string();
            assert!(text.contains("`cluster` feature"), "{text}");
            assert!(!text.contains("hunter2"), "{text}");
        }
    }

    #[cfg(feature = "redis")]
    #[test]
    fn a_redis_url_adds_a_redis_layer() {
        let cache = env(&[(REDIS_URL, "redis://:pw@127.0.0.1:1/0")])
            .unwrap()
            .without_bus()
            .build();
        assert_eq!(cache.layer_stats()[0].backend, "redis");
    }

    #[cfg(feature = "redis")]
    #[test]
    fn a_bad_redis_url_in_code_fails_install_without_the_password() {
        let err = configure()
            .redis("redis://:hunter2@127.0.0.1:notaport/0")
            .install()
            .unwrap_err();
        assert!(matches!(err, ConfigError::Layer(_)), "{err:?}");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(!format!("{err:?}").contains("hunter2"), "{err:?}");
    }
}
