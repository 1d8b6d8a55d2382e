//! The second promise in one process: nothing invalidated is served. A read
//! that begins after `invalidate(...)` returns never returns a value whose
//! load began before it, and a value loaded after it is served from then on,
//! in the same clock tick too. Every clock here stands still unless a test
//! moves it: ordering must not depend on time passing.

use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{mpsc, LazyLock, Mutex};

use cachewright::{cache_write, cached, Cache, Clock, LoadOptions, ManualClock};

static CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static C: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .name("promises")
        .clock(Clock::manual(&CLOCK))
        .build()
});

static DB: AtomicU32 = AtomicU32::new(1);
static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "item:<id>", ttl = 600, cache = C, name = "Item")]
fn item(id: u32) -> u32 {
    let _ = id;
    LOADS.fetch_add(1, SeqCst);
    DB.load(SeqCst)
}

#[cache_write(invalidate = ["item:<id>"], cache = C)]
fn set_item(id: u32, v: u32) {
    let _ = id;
    DB.store(v, SeqCst);
}

/// Write, read, read: one load after the write, with the clock standing
/// still (before stamps were unique, an entry loaded in the invalidation's
/// millisecond counted as older than it, and every read loaded again).
#[test]
fn a_value_loaded_after_a_write_is_served_in_the_same_tick() {
    assert_eq!(item(1), DB.load(SeqCst));
    let before = LOADS.load(SeqCst);
    set_item(1, 20);
    assert_eq!(item(1), 20, "the write is seen");
    assert_eq!(item(1), 20);
    assert_eq!(item(1), 20);
    assert_eq!(
        LOADS.load(SeqCst),
        before + 1,
        "one load after the write, then hits"
    );
}

/// The direct API keeps the same order: a value set right after a delete,
/// in the same tick, is the one served.
#[test]
fn a_value_set_after_a_delete_is_served_in_the_same_tick() {
    let key = C.key("session", &"s1");
    C.set(&key, 1u32, None);
    assert!(C.delete(&key));
    C.set(&key, 2u32, None);
    assert_eq!(C.get::<u32>(&key), Some(2));
}

/// `invalidate = ["x", "x"]`, or the same tag twice by hand: one watermark
/// raised, once.
#[test]
fn a_repeated_tag_is_invalidated_once() {
    let before = C.snapshot().invalidations;
    C.invalidate_tags(["dup:1", "dup:1", "dup:2", "dup:1"]);
    assert_eq!(C.snapshot().invalidations, before + 2);
}

// ---- single-flight waiters ---------------------------------------------------------------

static WCLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(5_000_000));
static W: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .name("waiters")
        .clock(Clock::manual(&WCLOCK))
        .build()
});
static WDB: AtomicU32 = AtomicU32::new(1);
static WLOADS: AtomicU32 = AtomicU32::new(0);
static GATE: Gate = Gate::new();

/// Holds the next load that passes it (after it read the source) until the
/// test opens it.
struct Gate {
    shut: Mutex<Option<tokio::sync::oneshot::Receiver<()>>>,
    reached: tokio::sync::Notify,
}

impl Gate {
    const fn new() -> Self {
        Gate {
            shut: Mutex::new(None),
            reached: tokio::sync::Notify::const_new(),
        }
    }

    /// Shuts the gate for the next load; returns the key that opens it.
    fn shut(&self) -> tokio::sync::oneshot::Sender<()> {
        let (open, shut) = tokio::sync::oneshot::channel();
        *self.shut.lock().unwrap() = Some(shut);
        open
    }

    /// Waits until a load stands at the gate.
    async fn reached(&self) {
        self.reached.notified().await;
    }

    /// Inside a loader: waits here if the gate is shut.
    async fn pass(&self) {
        let shut = self.shut.lock().unwrap().take();
        if let Some(shut) = shut {
            self.reached.notify_one();
            let _ = shut.await;
        }
    }
}

#[cached(key = "doc:<id>", ttl = 600, cache = W, name = "Doc")]
async fn doc(id: u32) -> u32 {
    let _ = id;
    WLOADS.fetch_add(1, SeqCst);
    let v = WDB.load(SeqCst);
    GATE.pass().await;
    v
}

/// A caller that joins a load begun before an invalidation, after that
/// invalidation returned, does not take the older value: it loads anew.
/// (Before, it was handed the leader's value, loaded before the write.)
#[tokio::test(flavor = "current_thread")]
async fn a_waiter_arriving_after_an_invalidation_loads_anew() {
    let open = GATE.shut();
    let leader = tokio::spawn(doc(7));
    GATE.reached().await; // the leader read the old value and waits
    WDB.store(2, SeqCst);
    W.invalidate_tags_async(["doc:7"]).await;
    let waiter = tokio::spawn(doc(7));
    for _ in 0..10 {
        tokio::task::yield_now().await; // the waiter joins the leader's load
    }
    open.send(()).unwrap();
    assert_eq!(
        leader.await.unwrap(),
        1,
        "the leader's own call began before the write"
    );
    assert_eq!(
        waiter.await.unwrap(),
        2,
        "the waiter began after the invalidation returned"
    );
    assert_eq!(WLOADS.load(SeqCst), 2);
    assert_eq!(doc(7).await, 2, "the new value is what stays");
    assert_eq!(WLOADS.load(SeqCst), 2);
    assert_eq!(
        W.stats_for("Doc").unwrap().discarded,
        1,
        "the leader's value was not stored"
    );
}

static SHELF_DB: AtomicU32 = AtomicU32::new(1);
static BOOK_LOADS: AtomicU32 = AtomicU32::new(0);
static BOOK_GATE: Gate = Gate::new();

/// Tagged with its shelf, which only the loaded book knows.
#[cached(key = "book:<id>", ttl = 600, cache = W, name = "Book")]
async fn book(id: u32) -> u32 {
    let _ = id;
    BOOK_LOADS.fetch_add(1, SeqCst);
    let v = SHELF_DB.load(SeqCst);
    cachewright::add_tags([cachewright::tag("shelf", &3)]);
    BOOK_GATE.pass().await;
    v
}

/// As above, the invalidation naming a tag the loader added as it ran
/// (`add_tags`), not the key's: the waiter judges the leader's value by
/// every tag it is stored with. (Before, only by its key's entity and key,
/// and it took the older value.)
#[tokio::test(flavor = "current_thread")]
async fn a_waiter_arriving_after_an_invalidation_of_a_tag_its_loader_added_loads_anew() {
    let open = BOOK_GATE.shut();
    let leader = tokio::spawn(book(5));
    BOOK_GATE.reached().await;
    SHELF_DB.store(2, SeqCst);
    W.invalidate_tags_async([cachewright::tag("shelf", &3)])
        .await;
    let waiter = tokio::spawn(book(5));
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    open.send(()).unwrap();
    assert_eq!(leader.await.unwrap(), 1, "the leader's own call");
    assert_eq!(waiter.await.unwrap(), 2, "not the value loaded before");
    assert_eq!(BOOK_LOADS.load(SeqCst), 2);
    assert_eq!(book(5).await, 2, "the new value is what stays");
    assert_eq!(BOOK_LOADS.load(SeqCst), 2);
}

/// The direct API, the tag given in `LoadOptions::tags`.
#[tokio::test(flavor = "current_thread")]
async fn a_waiter_arriving_after_an_invalidation_of_a_load_options_tag_loads_anew() {
    use std::sync::Arc;
    let key = W.key("aisle_item", &1);
    let options = || LoadOptions::default().tags([cachewright::tag("aisle", &4)]);
    let loads = Arc::new(AtomicU32::new(0));
    let (at_gate, reached) = tokio::sync::oneshot::channel();
    let (open, shut) = tokio::sync::oneshot::channel::<()>();
    let (k, n) = (key.clone(), loads.clone());
    let leader = tokio::spawn(async move {
        W.get_or_load_async(&k, options(), async move {
            n.fetch_add(1, SeqCst);
            let _ = at_gate.send(());
            let _ = shut.await;
            Ok::<u32, ()>(1)
        })
        .await
    });
    reached.await.unwrap(); // the leader read the old value and waits
    W.invalidate_tags_async([cachewright::tag("aisle", &4)])
        .await;
    let (k, n) = (key.clone(), loads.clone());
    let waiter = tokio::spawn(async move {
        W.get_or_load_async(&k, options(), async move {
            n.fetch_add(1, SeqCst);
            Ok::<u32, ()>(2)
        })
        .await
    });
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    open.send(()).unwrap();
    assert_eq!(leader.await.unwrap(), Ok(1), "the leader's own call");
    assert_eq!(waiter.await.unwrap(), Ok(2), "not the value loaded before");
    assert_eq!(loads.load(SeqCst), 2);
    assert_eq!(
        W.get_async::<u32>(&key).await,
        Some(2),
        "the new value stays"
    );
}

// ---- a load across a bus reconnect -------------------------------------------------------

mod reconnect {
    use super::*;
    use cachewright::backends::{async_trait, BackendError, Bus, BusEvent, BusSink};
    use std::sync::Arc;

    /// A bus within this process whose connection the test breaks and
    /// restores.
    #[derive(Default)]
    struct Switch(Mutex<Option<BusSink>>);

    impl std::fmt::Debug for Switch {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Switch")
        }
    }

    #[async_trait]
    impl Bus for Switch {
        async fn publish(&self, _channel: &str, _payload: Vec<u8>) -> Result<(), BackendError> {
            Ok(())
        }
        fn subscribe(&self, _channel: &str, sink: BusSink) {
            sink(BusEvent::Connected);
            *self.0.lock().unwrap() = Some(sink);
        }
    }

    impl Switch {
        /// The subscription breaks and comes back: whatever other processes
        /// published meanwhile was missed.
        fn reconnect(&self) {
            let sink = self.0.lock().unwrap().clone().unwrap();
            sink(BusEvent::Disconnected);
            sink(BusEvent::Connected);
        }
    }

    fn cache_on(bus: &Arc<Switch>) -> Cache {
        Cache::builder().bus(bus.clone()).build()
    }

    static BUS: LazyLock<Arc<Switch>> = LazyLock::new(Default::default);
    static FEEDS: LazyLock<Cache> = LazyLock::new(|| cache_on(&BUS));
    static FEED_DB: AtomicU32 = AtomicU32::new(1);
    static FEED_LOADS: AtomicU32 = AtomicU32::new(0);
    static FEED_GATE: Gate = Gate::new();

    #[cached(key = "feed:<id>", ttl = 600, cache = FEEDS, name = "Feed")]
    async fn feed(id: u32) -> u32 {
        let _ = id;
        FEED_LOADS.fetch_add(1, SeqCst);
        let v = FEED_DB.load(SeqCst);
        FEED_GATE.pass().await;
        v
    }

    /// A load that began before the bus reconnected and ends after it: an
    /// invalidation may have been missed meanwhile (another process's, told
    /// only on the bus), so its value goes back to its own caller but is
    /// neither kept in process nor handed to a caller that came after the
    /// reconnect. (Before, it was judged by the local watermarks alone,
    /// which know nothing of what was missed, and kept.)
    #[tokio::test(flavor = "current_thread")]
    async fn a_load_across_a_bus_reconnect_is_not_kept_in_process() {
        let open = FEED_GATE.shut();
        let leader = tokio::spawn(feed(1));
        FEED_GATE.reached().await; // the leader read the old value and waits
        FEED_DB.store(2, SeqCst); // another process wrote; its message is lost
        BUS.reconnect();
        let waiter = tokio::spawn(feed(1));
        for _ in 0..10 {
            tokio::task::yield_now().await; // the waiter joins the leader's load
        }
        open.send(()).unwrap();
        assert_eq!(leader.await.unwrap(), 1, "the leader's own call");
        assert_eq!(
            waiter.await.unwrap(),
            2,
            "not the value loaded before the reconnect"
        );
        assert_eq!(FEED_LOADS.load(SeqCst), 2);
        assert_eq!(feed(1).await, 2, "the new value is what stays");
        assert_eq!(FEED_LOADS.load(SeqCst), 2);
    }

    static LOG_BUS: LazyLock<Arc<Switch>> = LazyLock::new(Default::default);
    static LOGS: LazyLock<Cache> = LazyLock::new(|| cache_on(&LOG_BUS));
    static LOG_LOADS: AtomicU32 = AtomicU32::new(0);
    static LOG_GATE: Mutex<Option<mpsc::Receiver<()>>> = Mutex::new(None);

    #[cached(key = "log:<id>", ttl = 600, cache = LOGS, name = "Log")]
    fn log(id: u32) -> u32 {
        let _ = id;
        let n = LOG_LOADS.fetch_add(1, SeqCst) + 1;
        let gate = LOG_GATE.lock().unwrap().take();
        if let Some(gate) = gate {
            gate.recv().ok();
        }
        n
    }

    /// A sync function, alone: what its load across the reconnect returned
    /// is not what the next call gets from process memory.
    #[test]
    fn a_sync_load_across_a_bus_reconnect_is_not_kept_in_process() {
        let (open, shut) = mpsc::channel();
        *LOG_GATE.lock().unwrap() = Some(shut);
        let leader = std::thread::spawn(|| log(1));
        while LOG_GATE.lock().unwrap().is_some() {
            std::thread::yield_now(); // the load began
        }
        LOG_BUS.reconnect();
        open.send(()).unwrap();
        assert_eq!(leader.join().unwrap(), 1, "the loading call's own");
        assert_eq!(log(1), 2, "loaded anew");
        assert_eq!(log(1), 2, "and that value is kept");
    }

    /// The direct API: the value is returned to the loading call, and not
    /// kept.
    #[tokio::test(flavor = "current_thread")]
    async fn a_direct_load_across_a_bus_reconnect_is_not_kept_in_process() {
        let bus = Arc::new(Switch::default());
        let cache = cache_on(&bus);
        let key = cache.key("report", &1);
        let (at_gate, reached) = tokio::sync::oneshot::channel();
        let (open, shut) = tokio::sync::oneshot::channel::<()>();
        let (c, k) = (cache.clone(), key.clone());
        let leader = tokio::spawn(async move {
            c.get_or_load_async(&k, None, async move {
                let _ = at_gate.send(());
                let _ = shut.await;
                Ok::<u32, ()>(1)
            })
            .await
        });
        reached.await.unwrap();
        bus.reconnect();
        open.send(()).unwrap();
        assert_eq!(leader.await.unwrap(), Ok(1), "the loading call's own");
        assert_eq!(cache.get_async::<u32>(&key).await, None, "not kept");
        let again = cache.get_or_load_async(&key, None, async { Ok::<u32, ()>(2) });
        assert_eq!(again.await, Ok(2));
    }
}

// ---- an undelivered invalidation is retried, never dropped ---------------------------------

mod outbox {
    use std::collections::HashMap;
    use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use cachewright::backends::{async_trait, Backend, BackendError};
    use cachewright::{Cache, LayerConfig};

    /// A dictionary that can be switched off.
    #[derive(Debug, Default)]
    struct Dict {
        map: Mutex<HashMap<String, Vec<u8>>>,
        down: AtomicBool,
    }

    impl Dict {
        fn check(&self) -> Result<(), BackendError> {
            if self.down.load(SeqCst) {
                return Err(BackendError::Refused {
                    backend: "dict".into(),
                    message: "switched off".into(),
                });
            }
            Ok(())
        }
    }

    #[async_trait]
    impl Backend for Dict {
        fn name(&self) -> &str {
            "dict"
        }
        async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
            self.check()?;
            Ok(self.map.lock().unwrap().get(key).cloned())
        }
        async fn set(&self, key: &str, v: Vec<u8>, _ttl: Duration) -> Result<(), BackendError> {
            self.check()?;
            self.map.lock().unwrap().insert(key.to_owned(), v);
            Ok(())
        }
        async fn delete(&self, key: &str) -> Result<bool, BackendError> {
            self.check()?;
            Ok(self.map.lock().unwrap().remove(key).is_some())
        }
    }

    /// The layer is down when a tag is invalidated: the watermark write is
    /// owed, counted, and lands once the layer is back (before, it was
    /// dropped, and other processes kept serving the tag's old entries).
    /// The retries run on cachewright's own runtime, so they go on after
    /// the runtime of the call that owed them is gone.
    #[test]
    fn a_watermark_the_layer_refused_lands_once_it_is_back() {
        let dict = Arc::new(Dict::default());
        let cache = Cache::builder()
            .name("outbox")
            .layer(LayerConfig::shared(dict.clone()).breaker(1_000, Duration::from_millis(10)))
            .build();
        dict.down.store(true, SeqCst);
        {
            // A runtime that is gone before the layer is back.
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(cache.invalidate_tags_async(["order:5"]));
        }
        let s = cache.bus_stats();
        assert_eq!((s.undelivered, s.delivery_failures), (1, 1), "{s:?}");
        dict.down.store(false, SeqCst);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while cache.bus_stats().undelivered > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "still owed after 30 s: {:?}",
                cache.bus_stats()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let map = dict.map.lock().unwrap();
        let (k, v) = map
            .iter()
            .find(|(k, _)| k.ends_with("~tag:order:5"))
            .expect("the watermark landed");
        let at: u64 = std::str::from_utf8(v).unwrap().parse().unwrap();
        assert!(
            at > 1_000_000_000_000_000,
            "a stamp in microseconds: {k} = {at}"
        );
    }

    /// `Cache::flush`: while the layer is down, a flush says the
    /// invalidation is still owed; once it is back, a flush delivers it.
    #[test]
    fn a_flush_delivers_what_a_failing_layer_was_owed() {
        let dict = Arc::new(Dict::default());
        let cache = Cache::builder()
            .name("flush")
            .without_bus()
            .layer(
                LayerConfig::shared(dict.clone())
                    .timeout(Duration::from_millis(100))
                    .breaker(1_000, Duration::from_millis(10)),
            )
            .build();
        dict.down.store(true, SeqCst);
        cache.invalidate_tags(["org:1"]);
        assert!(
            cache.bus_stats().undelivered > 0,
            "owed while the layer is down"
        );
        assert!(
            !cache.flush(Duration::from_millis(200)),
            "still owed: the layer is down"
        );
        dict.down.store(false, SeqCst);
        assert!(
            cache.flush(Duration::from_secs(30)),
            "delivered once it is back"
        );
        assert_eq!(cache.bus_stats().undelivered, 0);
        assert!(
            !dict.map.lock().unwrap().is_empty(),
            "the watermark reached the layer"
        );
    }
}
