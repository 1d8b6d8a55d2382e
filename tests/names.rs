//! One name, one use case per cache: a second use case registering a name
//! already taken in its cache is an error, logged once, and runs uncached
//! instead of sharing the first one's URNs, stats and controls.

use std::io;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{Arc, LazyLock, Mutex};

use cachewright::{cached, Cache};

static CACHE: LazyLock<Cache> = LazyLock::new(|| Cache::builder().name("names").build());

static FIRST: AtomicU32 = AtomicU32::new(0);
static SECOND: AtomicU32 = AtomicU32::new(0);

#[cached(key = "double:<x>", ttl = 60, name = "taken", cache = CACHE)]
fn first(x: u32) -> u32 {
    FIRST.fetch_add(1, SeqCst);
    x * 2
}

#[cached(key = "triple:<x>", ttl = 60, name = "taken", cache = CACHE)]
async fn second(x: u32) -> u32 {
    SECOND.fetch_add(1, SeqCst);
    x * 3
}

/// Log lines, as the fmt subscriber writes them.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl io::Write for Logs {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_second_use_case_of_a_taken_name_runs_uncached() {
    let logs = Logs::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_writer(move || writer.clone())
        .finish();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    tracing::subscriber::with_default(subscriber, || {
        assert_eq!(first(5), 10);
        assert_eq!(first(5), 10);
        assert_eq!(FIRST.load(SeqCst), 1, "the first use case caches");
        for _ in 0..3 {
            assert_eq!(rt.block_on(second(5)), 15);
        }
        assert_eq!(
            SECOND.load(SeqCst),
            3,
            "the second runs its function on every call"
        );
        assert_eq!(first(5), 10);
        assert_eq!(FIRST.load(SeqCst), 1, "the first still caches");
    });
    let stats = CACHE.stats_for("taken").expect("the first is registered");
    assert_eq!((stats.hits, stats.misses), (2, 1), "only the first's calls");
    assert_eq!(
        CACHE
            .stats()
            .iter()
            .filter(|s| s.use_case == "taken")
            .count(),
        1
    );
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    let errors: Vec<&str> = logs.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "logged once:\n{logs}");
    assert!(
        errors[0].contains("taken") && errors[0].contains("uncached"),
        "{}",
        errors[0]
    );
}
