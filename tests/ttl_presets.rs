//! TTL presets (`ttl = "short" | "default" | "long"`), resolved at run time
//! from `configure()`, else `CACHEWRIGHT_TTL_*`, else 30 s, 5 min, 1 h.
//! The environment is read once per process: each case runs in a child.

mod support;

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::LazyLock;
use std::time::Duration;

use cachewright::{cached, Cache, Clock, ManualClock, TtlPreset};
use support::child::run_test;

static CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .name("presets")
        .clock(Clock::manual(&CLOCK))
        .build()
});

static SHORT_LOADS: AtomicU32 = AtomicU32::new(0);
static LONG_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "short:<id>", ttl = "short", cache = CACHE)]
fn short(id: u32) -> u32 {
    SHORT_LOADS.fetch_add(1, SeqCst);
    id
}

#[cached(key = "long:<id>", ttl = "long", cache = CACHE)]
fn long(id: u32) -> u32 {
    LONG_LOADS.fetch_add(1, SeqCst);
    id
}

/// How long an entry of `f` stays fresh, found on the manual clock: loaded,
/// then hit until `ttl - 1 ms`, then loaded again at `ttl`.
fn observed_ttl(f: fn(u32) -> u32, loads: &AtomicU32, ttl: Duration, id: u32) -> bool {
    let before = loads.load(SeqCst);
    f(id);
    CLOCK.advance(ttl - Duration::from_millis(1));
    f(id);
    let hit_before = loads.load(SeqCst) == before + 1;
    CLOCK.advance(Duration::from_millis(1));
    f(id);
    hit_before && loads.load(SeqCst) == before + 2
}

/// The child's part, by `CACHEWRIGHT_TEST_ROLE`; run alone, it runs the
/// defaults case in a child with no `CACHEWRIGHT_*` variable.
#[test]
fn child() {
    let Ok(role) = std::env::var("CACHEWRIGHT_TEST_ROLE") else {
        let run = run_test("child", &[("CACHEWRIGHT_TEST_ROLE", "defaults")]);
        assert_eq!(run.report("PRESETS"), "ok");
        return;
    };
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::ERROR)
        .with_writer(std::io::stderr)
        .init();
    let (short_ttl, long_ttl) = match role.as_str() {
        "defaults" => (Duration::from_secs(30), Duration::from_secs(3600)),
        "environment" => (Duration::from_secs(2), Duration::from_secs(3600)),
        "configured" => {
            cachewright::configure()
                .ttl_preset(TtlPreset::Short, Duration::from_secs(7))
                .install()
                .expect("configured");
            (Duration::from_secs(7), Duration::from_secs(3600))
        }
        other => panic!("unknown role {other}"),
    };
    assert!(
        observed_ttl(short, &SHORT_LOADS, short_ttl, 1),
        "short: {short_ttl:?}"
    );
    assert!(
        observed_ttl(long, &LONG_LOADS, long_ttl, 1),
        "long: {long_ttl:?}"
    );
    println!("PRESETS ok");
}

#[test]
fn presets_come_from_the_environment_and_a_bad_value_falls_back() {
    let run = run_test(
        "child",
        &[
            ("CACHEWRIGHT_TEST_ROLE", "environment"),
            ("CACHEWRIGHT_TTL_SHORT", "2s"),
            ("CACHEWRIGHT_TTL_LONG", "forever"),
        ],
    );
    assert_eq!(run.report("PRESETS"), "ok");
    assert!(
        run.stderr.contains("CACHEWRIGHT_TTL_LONG") && run.stderr.contains("malformed TTL preset"),
        "the bad value is logged:\n{}",
        run.stderr
    );
}

#[test]
fn configure_wins_over_the_environment() {
    let run = run_test(
        "child",
        &[
            ("CACHEWRIGHT_TEST_ROLE", "configured"),
            ("CACHEWRIGHT_TTL_SHORT", "2s"),
        ],
    );
    assert_eq!(run.report("PRESETS"), "ok");
}

#[test]
fn a_zero_preset_is_a_configuration_error() {
    let err = cachewright::configure()
        .ttl_preset(TtlPreset::Long, Duration::ZERO)
        .install();
    assert_eq!(
        err,
        Err(cachewright::ConfigError::ZeroTtlPreset(TtlPreset::Long))
    );
}
