//! The default cache reaches Redis without `cache = ...` on any attribute:
//! from the `CACHEWRIGHT_*` environment, or from `configure().redis(..)`.
//! Each configuration runs in a child process of this binary (the default
//! cache is built once per process), against a real redis-server that
//! requires a password, so the tests also see that it never shows.

mod support;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};

use cachewright::cached;
use support::child::{run_test, ChildRun};
use support::RedisServer;

const PASSWORD: &str = "hunter2-in-the-url";

static LOADS: AtomicU32 = AtomicU32::new(0);

/// A cached function with no `cache = ...`: the default cache's.
#[cached(key = "profile:<id>", ttl = 300)]
async fn profile(id: u64) -> String {
    LOADS.fetch_add(1, SeqCst);
    format!("profile {id} loaded by pid {}", std::process::id())
}

/// The child's part (run by the tests below with an environment of their
/// choosing). With no `CACHEWRIGHT_TEST_ROLE` it runs itself in a child
/// whose environment holds no `CACHEWRIGHT_*` variable, which checks the
/// built-in defaults: in process only, namespace `cachewright`.
#[test]
fn child() {
    let Ok(role) = std::env::var("CACHEWRIGHT_TEST_ROLE") else {
        let run = run_test("child", &[("CACHEWRIGHT_TEST_ROLE", "defaults")]);
        assert_eq!(run.report("DEFAULTS"), "ok");
        return;
    };
    if role == "defaults" {
        let cache = cachewright::default_cache();
        assert_eq!(cache.namespace(), "cachewright");
        assert_eq!(cache.version(), "v1");
        assert!(cache.layer_stats().is_empty(), "no Redis unless asked");
        println!("DEFAULTS ok");
        return;
    }
    // Every level, so that a password in any log line would show.
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(std::io::stderr)
        .init();
    if role == "configure" {
        let url = std::env::var("CACHEWRIGHT_TEST_URL").unwrap();
        cachewright::configure()
            .redis(&url)
            .namespace("configured")
            .install()
            .expect("a valid configuration");
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let value = rt.block_on(async {
        let first = profile(7).await;
        let second = profile(7).await;
        assert_eq!(first, second);
        first
    });
    let cache = cachewright::default_cache();
    eprintln!("DEBUG {cache:?} {:?}", cache.layer_stats());
    println!(
        "REPORT layers={} namespace={} version={} loads={} value={value}",
        cache.layer_stats().len(),
        cache.namespace(),
        cache.version(),
        LOADS.load(SeqCst),
    );
}

fn redis_env(server: &RedisServer) -> Vec<(&'static str, String)> {
    vec![
        ("CACHEWRIGHT_TEST_ROLE", "call".to_string()),
        ("CACHEWRIGHT_REDIS_URL", server.url()),
        ("CACHEWRIGHT_NAMESPACE", "envapp".to_string()),
    ]
}

fn run(env: &[(&'static str, String)]) -> ChildRun {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let run = run_test("child", &env);
    assert!(
        !run.output().contains(PASSWORD),
        "the password shows in the child's output:\n{}",
        run.output()
    );
    run
}

/// The keys of `namespace` in `server`, as `redis-cli --scan` lists them.
fn keys(server: &RedisServer, namespace: &str) -> Vec<String> {
    let mut conn = server.conn();
    let mut keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("urn:{namespace}:*"))
        .query(&mut conn)
        .unwrap();
    keys.retain(|k| !k.contains(":~"));
    keys
}

#[test]
fn the_environment_gives_every_cached_function_redis() {
    let server = RedisServer::start_with_password(PASSWORD);
    let a = run(&redis_env(&server));
    assert_eq!(a.field("REPORT", "layers"), "1", "a Redis layer");
    assert_eq!(a.field("REPORT", "namespace"), "envapp");
    assert_eq!(a.field("REPORT", "loads"), "1", "process A loaded once");
    let stored = keys(&server, "envapp");
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert!(
        stored[0].starts_with("urn:envapp:v1:profile:7"),
        "{stored:?}"
    );

    let b = run(&redis_env(&server));
    assert_eq!(b.field("REPORT", "loads"), "0", "B's loader did not run");
    assert_eq!(
        b.field("REPORT", "value"),
        a.field("REPORT", "value"),
        "B read A's value from Redis"
    );
}

#[test]
fn configure_redis_gives_every_cached_function_redis_and_wins_over_the_environment() {
    let server = RedisServer::start_with_password(PASSWORD);
    let env = |role: &str| {
        vec![
            ("CACHEWRIGHT_TEST_ROLE", role.to_string()),
            ("CACHEWRIGHT_TEST_URL", server.url()),
            // Ignored: configure() was installed first, so the environment
            // is not read at all (configure() sets no version).
            ("CACHEWRIGHT_NAMESPACE", "from-env".to_string()),
            ("CACHEWRIGHT_VERSION", "v9".to_string()),
            ("CACHEWRIGHT_LOCAL_TTL", "nonsense".to_string()),
        ]
    };
    let a = run(&env("configure"));
    assert_eq!(a.field("REPORT", "namespace"), "configured");
    assert_eq!(
        a.field("REPORT", "version"),
        "v1",
        "the environment was not read"
    );
    assert!(!a.stderr.contains("malformed"), "{}", a.stderr);
    assert_eq!(a.field("REPORT", "loads"), "1");
    assert_eq!(keys(&server, "configured").len(), 1);
    assert!(keys(&server, "from-env").is_empty());

    let b = run(&env("configure"));
    assert_eq!(b.field("REPORT", "loads"), "0", "B's loader did not run");
    assert_eq!(b.field("REPORT", "value"), a.field("REPORT", "value"));
}

/// A malformed variable: logged once at error level, naming the variable;
/// the default cache runs in process only (nothing reaches Redis, though
/// its URL is valid); every call succeeds.
fn falls_back(variable: &str, value: &str, secret: &str) {
    let server = RedisServer::start_with_password(PASSWORD);
    let mut env = redis_env(&server);
    env.retain(|(k, _)| *k != variable);
    env.push((leak(variable), value.to_string()));
    let run = run(&env);
    assert!(!run.output().contains(secret), "{}", run.output());
    assert_eq!(run.field("REPORT", "layers"), "0", "in process only");
    assert_eq!(run.field("REPORT", "namespace"), "cachewright", "defaults");
    assert_eq!(run.field("REPORT", "loads"), "1", "L1 still caches");
    let logged: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains(&format!("{variable} is malformed")))
        .collect();
    assert_eq!(logged.len(), 1, "logged once:\n{}", run.stderr);
    assert!(logged[0].contains("ERROR"), "{}", logged[0]);
    let mut conn = server.conn();
    let size: u64 = redis::cmd("DBSIZE").query(&mut conn).unwrap();
    assert_eq!(size, 0, "nothing reached Redis");
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

#[test]
fn a_malformed_capacity_falls_back_to_in_process() {
    falls_back("CACHEWRIGHT_CAPACITY", "lots", PASSWORD);
}

#[test]
fn a_malformed_local_ttl_falls_back_to_in_process() {
    falls_back("CACHEWRIGHT_LOCAL_TTL", "30 parsecs", PASSWORD);
}

#[test]
fn a_malformed_namespace_falls_back_to_in_process() {
    falls_back("CACHEWRIGHT_NAMESPACE", "two words", PASSWORD);
}

#[test]
fn a_malformed_redis_url_falls_back_to_in_process_without_its_password() {
    for (url, secret) in [
        (format!("http://admin:{PASSWORD}@127.0.0.1:1/"), PASSWORD),
        (
            format!("redis://admin:{PASSWORD}@127.0.0.1:notaport/"),
            PASSWORD,
        ),
        // Unencoded `/`, `?` and `#` in a password: the URL does not parse.
        ("redis://:s3cr/et@127.0.0.1:1/0".into(), "s3cr/et"),
        ("redis://:s3cr?et@127.0.0.1:1/0".into(), "s3cr?et"),
        ("redis://:s3cr#et@127.0.0.1:notaport/0".into(), "s3cr#et"),
    ] {
        falls_back("CACHEWRIGHT_REDIS_URL", &url, secret);
    }
}

#[test]
fn the_url_and_its_password_stay_out_of_debug_output() {
    // In process: the configuration types a service might log.
    let url = format!("redis://app:{PASSWORD}@127.0.0.1:1/0");
    let builder = cachewright::backends::redis::RedisBackend::builder().url(&url);
    let backend = cachewright::backends::redis::RedisBackend::from_url(&url).unwrap();
    let layer = cachewright::LayerConfig::new(backend.clone());
    let setup = cachewright::configure().redis(&url);
    for shown in [
        format!("{builder:?}"),
        format!("{backend:?}"),
        format!("{layer:?}"),
        format!("{setup:?}"),
    ] {
        assert!(!shown.contains(PASSWORD), "{shown}");
    }
    // A URL that does not parse: its error, and a setup holding it.
    let odd = "redis://:s3cr/et@127.0.0.1:1/0";
    let setup = cachewright::configure().redis(odd);
    let shown = format!("{setup:?}");
    assert!(!shown.contains("s3cr/et"), "{shown}");
    let err = setup.install().unwrap_err();
    for shown in [err.to_string(), format!("{err:?}")] {
        assert!(!shown.contains("s3cr/et"), "{shown}");
    }
}
