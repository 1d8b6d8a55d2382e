//! The debug events a cached call emits (hit, miss, stale serve, load with
//! its duration, invalidation) and the span around each load, under which
//! the loader's own events nest. One global subscriber captures every line.

use std::io::Write;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use cachewright::{cached, Cache, Clock, ManualClock};

static LOG: Mutex<Vec<u8>> = Mutex::new(Vec::new());

struct Capture;
impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        LOG.lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn lines() -> Vec<String> {
    String::from_utf8_lossy(&LOG.lock().unwrap_or_else(|e| e.into_inner()))
        .lines()
        .map(str::to_string)
        .collect()
}

static CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .name("traced")
        .clock(Clock::manual(&CLOCK))
        .build()
});

#[cached(key = "traced:<id>", ttl = 10, swr = 60, cache = CACHE, name = "Traced")]
fn traced(id: u32) -> u32 {
    tracing::info!(id, "inside the loader");
    id
}

#[test]
fn a_call_emits_its_events_and_a_load_span() {
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .with_writer(|| Capture)
        .init();
    traced(1); // miss, load
    traced(1); // hit
    CLOCK.advance(Duration::from_secs(11));
    traced(1); // stale serve (and a background refresh)
    CACHE.invalidate_entity("traced", &1);
    let log = lines();
    let has = |what: &str| log.iter().any(|l| l.contains(what) && l.contains("Traced"));
    assert!(has("cache miss"), "{log:#?}");
    assert!(has("cache hit"), "{log:#?}");
    assert!(has("cache stale hit"), "{log:#?}");
    assert!(
        log.iter()
            .any(|l| l.contains("loaded") && l.contains("took_ms") && l.contains("ok=true")),
        "the load, with its duration: {log:#?}"
    );
    assert!(
        log.iter().any(|l| l.contains("invalidated")),
        "the invalidation: {log:#?}"
    );
    let inside = log
        .iter()
        .find(|l| l.contains("inside the loader"))
        .expect("the loader's event");
    assert!(
        inside.contains("cachewright.load") && inside.contains("use_case=\"Traced\""),
        "the loader's event nests in the load span: {inside}"
    );
}
