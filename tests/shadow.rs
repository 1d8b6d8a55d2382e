//! Shadow reads: a sampled share of fresh hits also runs the function in
//! the background and compares; matches, mismatches and failures are
//! counted, mismatches logged (use case and key type, never the value), and
//! nothing is stored.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use cachewright::{cached, Cache, ConfigFor, UseCaseConfig};

static CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .name("shadow")
        .config_provider(|uc: &ConfigFor<'_>| {
            (uc.use_case == "ByProvider").then(|| UseCaseConfig::new().shadow(100.0))
        })
        .build()
});

/// What the source of truth says now; tests change it under the cache.
static SOURCE: AtomicU32 = AtomicU32::new(1);
static RUNS: AtomicU32 = AtomicU32::new(0);

/// Waits (no timing assertion) for background work to be counted.
fn eventually(mut cond: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    panic!("condition not reached");
}

fn stats(name: &str) -> cachewright::Stats {
    CACHE.stats_for(name).expect("use case registered")
}

static SERIAL: Mutex<()> = Mutex::new(());

#[cached(key = "s:<id>", ttl = 600, cache = CACHE, name = "Sync", shadow = 100)]
fn sync_read(id: u32) -> u32 {
    RUNS.fetch_add(1, SeqCst);
    id * 1000 + SOURCE.load(SeqCst)
}

#[test]
fn every_sampled_hit_counts_a_match_then_a_mismatch_once_the_source_changed() {
    let _s = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    SOURCE.store(1, SeqCst);
    assert_eq!(sync_read(1), 1001);
    let runs = RUNS.load(SeqCst);
    assert_eq!(sync_read(1), 1001, "a hit");
    eventually(|| stats("Sync").shadow_matches == 1);
    assert_eq!(RUNS.load(SeqCst), runs + 1, "the function ran once more");
    // The source changes behind the cache's back: the hit is now wrong.
    SOURCE.store(2, SeqCst);
    assert_eq!(sync_read(1), 1001, "still served from the cache");
    eventually(|| stats("Sync").shadow_mismatches == 1);
    assert_eq!(sync_read(1), 1001, "a shadow read stores nothing");
    eventually(|| stats("Sync").shadow_mismatches == 2);
    let s = stats("Sync");
    assert_eq!((s.shadow_matches, s.shadow_errors, s.loads), (1, 0, 1));
    // Off: hits run nothing more.
    assert!(CACHE.set_shadow("Sync", 0.0));
    let runs = RUNS.load(SeqCst);
    for _ in 0..100 {
        sync_read(1);
    }
    assert_eq!(RUNS.load(SeqCst), runs);
}

static ASYNC_RUNS: AtomicU32 = AtomicU32::new(0);
static FAIL: AtomicU32 = AtomicU32::new(0);

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Profile {
    id: u32,
    version: u32,
}

#[cached(key = "a:<id>", ttl = 600, cache = CACHE, name = "Async", shadow = 100)]
async fn async_read(id: u32) -> Result<Profile, String> {
    ASYNC_RUNS.fetch_add(1, SeqCst);
    tokio::task::yield_now().await;
    if FAIL.load(SeqCst) == 1 {
        return Err("database down".into());
    }
    Ok(Profile {
        id,
        version: SOURCE.load(SeqCst),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_shadow_reads_compare_by_partial_eq_and_count_failures() {
    let first = async_read(7).await.unwrap();
    assert_eq!(async_read(7).await.unwrap(), first, "a hit");
    let wait = |f: fn(&cachewright::Stats) -> bool| async move {
        for _ in 0..10_000 {
            if f(&stats("Async")) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("condition not reached");
    };
    wait(|s| s.shadow_matches + s.shadow_mismatches == 1).await;
    FAIL.store(1, SeqCst);
    assert_eq!(async_read(7).await.unwrap(), first, "served from the cache");
    wait(|s| s.shadow_errors == 1).await;
    FAIL.store(0, SeqCst);
    let s = stats("Async");
    assert_eq!(s.loads, 1, "shadow runs are not loads");
}

static PROVIDER_RUNS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "p:<id>", ttl = 600, cache = CACHE, name = "ByProvider", shadow = 0)]
fn by_provider(id: u32) -> u32 {
    PROVIDER_RUNS.fetch_add(1, SeqCst);
    id
}

#[cached(key = "n:<id>", ttl = 600, cache = CACHE, name = "NoShadow")]
fn no_shadow(id: u32) -> u32 {
    id
}

#[test]
fn the_provider_turns_shadow_reads_on_and_functions_without_them_refuse() {
    by_provider(1);
    by_provider(1);
    eventually(|| stats("ByProvider").shadow_matches == 1);
    assert_eq!(CACHE.shadow("ByProvider"), Some(100.0));
    no_shadow(1);
    assert!(!CACHE.set_shadow("NoShadow", 50.0), "not compiled in");
    assert_eq!(CACHE.shadow("NoShadow"), None);
}

/// `Serialize` but not `PartialEq`: compared by its encoded JSON.
#[derive(Clone, Debug, serde::Serialize)]
struct Doc {
    version: u32,
}

static DOC_VERSION: AtomicU32 = AtomicU32::new(1);

#[cached(key = "doc:<id>", ttl = 600, cache = CACHE, name = "Doc", shadow = 100)]
fn doc(id: u32) -> Doc {
    let _ = id;
    Doc {
        version: DOC_VERSION.load(SeqCst),
    }
}

#[test]
fn a_value_without_partial_eq_is_compared_by_its_encoded_bytes() {
    doc(1);
    doc(1);
    eventually(|| stats("Doc").shadow_matches == 1);
    DOC_VERSION.store(2, SeqCst);
    doc(1);
    eventually(|| stats("Doc").shadow_mismatches == 1);
    assert_eq!(stats("Doc").shadow_matches, 1);
}

/// Captures warn lines.
#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize)]
struct Secret(String);

static SECRET_VERSION: AtomicU32 = AtomicU32::new(0);

#[cached(key = "secret:<id>", ttl = 600, cache = CACHE, name = "Secret", shadow = 100)]
fn secret(id: u32) -> Secret {
    Secret(format!(
        "token-{id}-v{}",
        SECRET_VERSION.fetch_add(1, SeqCst)
    ))
}

#[test]
fn a_mismatch_is_logged_with_use_case_and_key_type_never_the_value_or_key() {
    let lines = Lines::default();
    let sub = tracing_subscriber::fmt()
        .with_writer({
            let l = lines.clone();
            move || l.clone()
        })
        .with_max_level(tracing::Level::WARN)
        .with_ansi(false)
        .finish();
    let _g = tracing::subscriber::set_default(sub);
    // The shadow run happens on a refresh thread: capture there too.
    let _global = tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_writer({
                let l = lines.clone();
                move || l.clone()
            })
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .finish(),
    );
    secret(4242);
    secret(4242);
    eventually(|| stats("Secret").shadow_mismatches == 1);
    let text = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
    let line = text
        .lines()
        // Other tests of this binary log mismatches too (the subscriber is
        // global): this use case's line.
        .find(|l| l.contains("shadow read mismatch") && l.contains("use_case=\"Secret\""))
        .expect("a warn line");
    assert!(
        line.contains("Secret") && line.contains("key_type=\"secret\""),
        "{line}"
    );
    assert!(!line.contains("token-") && !line.contains("4242"), "{line}");
}
