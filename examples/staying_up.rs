//! Staying up when the source does not: fail-safe serves the last good value
//! when the loader fails, its throttle keeps a failing source from being
//! asked on every call, and the soft and hard timeouts bound how long a
//! caller waits for a slow one. On the injected clock (expiry) and in real
//! time (timeouts, 100 ms and 1 s). No services needed:
//! `cargo run --example staying_up`.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use cachewright::{cached, Cache, Clock, ManualClock};

static CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(0));
static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .name("staying-up")
        .clock(Clock::manual(&CLOCK))
        .build()
});

/// How the rates service behaves: 0 up, 1 failing, 2 slow (3 s).
static SOURCE: AtomicU32 = AtomicU32::new(0);
static CALLS: AtomicU32 = AtomicU32::new(0);

#[derive(Debug)]
enum RatesError {
    Down,
    Timeout(cachewright::Timeout),
}

impl From<cachewright::Timeout> for RatesError {
    fn from(t: cachewright::Timeout) -> Self {
        RatesError::Timeout(t)
    }
}

#[cached(
    key = "rate:<currency>",
    ttl = 60,
    fail_safe = "1h",
    fail_safe_throttle = "30s",
    soft_timeout = "100ms",
    hard_timeout = "1s",
    cache = CACHE,
    name = "Rate"
)]
async fn rate(currency: &str) -> Result<f64, RatesError> {
    let n = CALLS.fetch_add(1, SeqCst) + 1;
    match SOURCE.load(SeqCst) {
        1 => {
            println!("      rates service call #{n}: fails");
            Err(RatesError::Down)
        }
        2 => {
            println!("      rates service call #{n}: slow (3 s)");
            tokio::time::sleep(Duration::from_secs(3)).await;
            Ok(if currency == "EUR" { 1.10 } else { 1.0 })
        }
        _ => {
            println!("      rates service call #{n}: ok");
            Ok(if currency == "EUR" { 1.08 } else { 1.0 })
        }
    }
}

async fn show(what: &str, currency: &str) {
    let start = Instant::now();
    let r = rate(currency).await;
    let took = start.elapsed().as_millis();
    match r {
        Ok(v) => println!("{what}: {currency} = {v} ({took} ms)"),
        Err(RatesError::Down) => println!("{what}: error, the service is down ({took} ms)"),
        Err(RatesError::Timeout(t)) => println!("{what}: error, {t} ({took} ms)"),
    }
}

#[tokio::main]
async fn main() {
    // Fail-safe serves are logged at warn level (`RUST_LOG=cachewright=debug`
    // shows every step).
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    show("1. first call, loads", "EUR").await;
    CLOCK.advance(Duration::from_secs(61));
    SOURCE.store(1, SeqCst);
    show("2. expired, the service fails: fail-safe", "EUR").await;
    show(
        "3. within the 30 s throttle: served, the service is not asked",
        "EUR",
    )
    .await;
    CLOCK.advance(Duration::from_secs(31));
    show("4. throttle over: asked again, fails, served again", "EUR").await;
    show("5. never loaded, the service fails: the error", "USD").await;

    SOURCE.store(2, SeqCst);
    CLOCK.advance(Duration::from_secs(31));
    show(
        "6. the service is slow: soft timeout, fail-safe value",
        "EUR",
    )
    .await;
    show(
        "7. never loaded, slow: hard timeout, the timeout error",
        "GBP",
    )
    .await;
    println!("   (the slow loads go on in the background and store their values)");
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    SOURCE.store(0, SeqCst);
    show(
        "8. the slow load of EUR finished meanwhile: its value",
        "EUR",
    )
    .await;

    let s = CACHE.stats_for("Rate").unwrap();
    println!(
        "\nstats: {} fail-safe serves, {} soft and {} hard timeouts, {} loads ({} failed), {} calls of the service",
        s.fail_safe_served,
        s.soft_timeouts,
        s.hard_timeouts,
        s.loads,
        s.load_errors,
        CALLS.load(SeqCst)
    );
}
