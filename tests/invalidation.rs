//! Tags, `#[cache_write]` and invalidation within one process (the Redis
//! tests cover other processes).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
use std::sync::{mpsc, LazyLock, Mutex};
use std::time::Duration;

use cachewright::{cache_write, cached, tag, Cache, Clock, ManualClock};

// ---- the svc-infra README flow: read, read, update, read, delete, read ----------------

static USERS: LazyLock<Mutex<HashMap<u64, String>>> = LazyLock::new(Default::default);
static FETCHES: AtomicU32 = AtomicU32::new(0);
/// Each cache here runs on a manual clock, so TTLs do not depend on timing.
/// (Stamps order loads and invalidations exactly even while it stands still;
/// `tick()` after writes is kept from before they did.)
static CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
fn tick() {
    CLOCK.advance(Duration::from_millis(1));
}
static FLOW: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .name("flow")
        .clock(Clock::manual(&CLOCK))
        .build()
});

#[derive(Clone, Debug, PartialEq)]
struct NotFound(u64);

#[cached(key = "user:<user_id>:profile", ttl = 3600, cache = FLOW, name = "GetUserProfile")]
async fn get_user_profile(user_id: u64) -> Result<String, NotFound> {
    FETCHES.fetch_add(1, SeqCst);
    USERS
        .lock()
        .unwrap()
        .get(&user_id)
        .cloned()
        .ok_or(NotFound(user_id))
}

#[cache_write(invalidate = ["user:<user_id>"], cache = FLOW)]
async fn update_user_profile(user_id: u64, name: &str) -> Result<String, NotFound> {
    let mut users = USERS.lock().unwrap();
    let u = users.get_mut(&user_id).ok_or(NotFound(user_id))?;
    *u = name.to_string();
    Ok(u.clone())
}

#[cache_write(invalidate = ["user:<user_id>"], cache = FLOW)]
async fn delete_user_profile(user_id: u64) -> bool {
    USERS.lock().unwrap().remove(&user_id).is_some()
}

#[tokio::test]
async fn svc_infra_read_update_delete_flow() {
    USERS.lock().unwrap().insert(123, "John Doe".into());
    assert_eq!(
        get_user_profile(123).await,
        Ok("John Doe".into()),
        "miss: fetched"
    );
    assert_eq!(get_user_profile(123).await, Ok("John Doe".into()), "hit");
    assert_eq!(FETCHES.load(SeqCst), 1);
    assert_eq!(
        update_user_profile(123, "New Name").await,
        Ok("New Name".into())
    );
    tick();
    assert_eq!(
        get_user_profile(123).await,
        Ok("New Name".into()),
        "invalidated: fetched again"
    );
    assert_eq!(FETCHES.load(SeqCst), 2);
    assert!(delete_user_profile(123).await);
    tick();
    assert_eq!(
        get_user_profile(123).await,
        Err(NotFound(123)),
        "deleted: the loader's error"
    );
    assert_eq!(FETCHES.load(SeqCst), 3);
    // A failed write does not invalidate.
    USERS.lock().unwrap().insert(5, "Five".into());
    get_user_profile(5).await.unwrap();
    assert_eq!(update_user_profile(6, "x").await, Err(NotFound(6)));
    get_user_profile(5).await.unwrap();
    assert_eq!(FETCHES.load(SeqCst), 4, "user 5 still cached");
    assert!(FLOW.snapshot().invalidations >= 2);
}

// ---- tags, entities, keys ----------------------------------------------------------------

static TAGS: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .name("tags")
        .clock(Clock::manual(&CLOCK))
        .build()
});
static MEMBER_LOADS: AtomicU32 = AtomicU32::new(0);
static BADGE_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "member:<id>", tags = ["org:<org>"], cache = TAGS)]
fn member(id: u32, org: &str) -> String {
    MEMBER_LOADS.fetch_add(1, SeqCst);
    format!("{id}@{org}")
}

#[cached(key = "member:<id>:badges", ttl = 60, cache = TAGS)]
fn badges(id: u32) -> Option<Vec<String>> {
    BADGE_LOADS.fetch_add(1, SeqCst);
    (id != 0).then(|| vec!["gold".to_string()])
}

#[test]
fn tags_entities_and_keys() {
    member(1, "acme:eu");
    member(2, "acme:eu");
    member(3, "globex");
    badges(1);
    assert_eq!(
        (MEMBER_LOADS.load(SeqCst), BADGE_LOADS.load(SeqCst)),
        (3, 1)
    );
    // One tag: every member of that org, whatever the number.
    TAGS.invalidate_tags([tag("org", &"acme:eu")]);
    tick();
    member(1, "acme:eu");
    member(2, "acme:eu");
    member(3, "globex");
    assert_eq!(
        MEMBER_LOADS.load(SeqCst),
        5,
        "acme members reloaded, globex kept"
    );
    // One entity, across use cases: `member:1` and `member:1:badges`.
    TAGS.invalidate_entity("member", &1);
    tick();
    member(1, "acme:eu");
    badges(1);
    member(2, "acme:eu");
    assert_eq!(
        (MEMBER_LOADS.load(SeqCst), BADGE_LOADS.load(SeqCst)),
        (6, 2)
    );
    // One exact key.
    let key = TAGS
        .key("member", &"2")
        .arg("org", &"acme:eu")
        .use_case(&format!("{}::member", module_path!()));
    // Only in-process layers here: the use case's live copy is what the
    // delete finds (and drops).
    assert!(TAGS.delete(&key));
    assert!(!TAGS.delete(&key), "gone");
    tick();
    member(2, "acme:eu");
    member(1, "acme:eu");
    assert_eq!(MEMBER_LOADS.load(SeqCst), 7, "only member 2 reloaded");
}

#[test]
fn negative_entries_are_invalidated_like_others() {
    assert_eq!(missing(9), None);
    assert_eq!(missing(9), None);
    assert_eq!(MISSING_LOADS.load(SeqCst), 1);
    TAGS.invalidate_entity("missing", &9);
    tick();
    assert_eq!(missing(9), None);
    assert_eq!(MISSING_LOADS.load(SeqCst), 2);
}

static MISSING_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "missing:<id>", ttl = 60, negative_ttl = 60, cache = TAGS)]
fn missing(id: u32) -> Option<u32> {
    MISSING_LOADS.fetch_add(1, SeqCst);
    let _ = id;
    None
}

// ---- before, recache ---------------------------------------------------------------------

static ACCOUNTS: LazyLock<Mutex<HashMap<u32, i64>>> = LazyLock::new(Default::default);
static BALANCE_LOADS: AtomicU32 = AtomicU32::new(0);
static BANK: LazyLock<Cache> = LazyLock::new(|| Cache::builder().name("bank").build());

#[cached(key = "account:<id>", ttl = 600, cache = BANK, name = "Balance")]
fn balance(id: u32) -> i64 {
    BALANCE_LOADS.fetch_add(1, SeqCst);
    *ACCOUNTS.lock().unwrap().get(&id).unwrap_or(&0)
}

/// Reads the balance inside the write: with `before`, that read already
/// misses the old cached value.
#[cache_write(invalidate = ["account:<id>"], before = true, recache = [balance(id)], cache = BANK)]
fn deposit(id: u32, amount: i64) -> Result<i64, String> {
    let seen = balance(id);
    let mut a = ACCOUNTS.lock().unwrap();
    let b = a.entry(id).or_insert(0);
    assert_eq!(
        *b, seen,
        "the read inside the write saw the current balance"
    );
    *b += amount;
    Ok(*b)
}

#[test]
fn before_invalidates_first_and_recache_rewarms() {
    ACCOUNTS.lock().unwrap().insert(1, 100);
    assert_eq!(balance(1), 100);
    ACCOUNTS.lock().unwrap().insert(1, 150); // changed behind the cache's back
    assert_eq!(balance(1), 100, "cached");
    let loads = BALANCE_LOADS.load(SeqCst);
    assert_eq!(
        deposit(1, 10),
        Ok(160),
        "before = true: the body read 150, not the cached 100"
    );
    assert_eq!(
        BALANCE_LOADS.load(SeqCst),
        loads + 2,
        "one load inside the write, one recache after"
    );
    assert_eq!(balance(1), 160, "re-warmed with the new balance");
    assert_eq!(
        BALANCE_LOADS.load(SeqCst),
        loads + 2,
        "served by the recache, no load"
    );
}

static ASYNC_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(key = "doc:<id>", ttl = 600, cache = BANK)]
async fn doc(id: u32) -> Result<String, String> {
    let n = ASYNC_LOADS.fetch_add(1, SeqCst);
    Ok(format!("doc {id} v{n}"))
}

#[cache_write(invalidate = ["doc:<id>"], recache = [doc(id)], cache = BANK)]
async fn edit_doc(id: u32, text: String) -> Result<usize, String> {
    Ok(text.len())
}

#[tokio::test]
async fn async_writer_recaches_an_async_reader() {
    assert_eq!(doc(1).await.unwrap(), "doc 1 v0");
    assert_eq!(edit_doc(1, "hello".into()).await, Ok(5));
    assert_eq!(
        ASYNC_LOADS.load(SeqCst),
        2,
        "recached right after the write"
    );
    assert_eq!(
        doc(1).await.unwrap(),
        "doc 1 v1",
        "served from the re-warmed entry"
    );
    assert_eq!(ASYNC_LOADS.load(SeqCst), 2);
}

// ---- the future buffer ---------------------------------------------------------------------

static RACE_CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));
static RACE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .name("race")
        .clock(Clock::manual(&RACE_CLOCK))
        .build()
});
static RACE_DB: Mutex<u32> = Mutex::new(1);
static RACE_GATE: Mutex<Option<mpsc::Receiver<()>>> = Mutex::new(None);
static RACE_SERIAL: Mutex<()> = Mutex::new(());

/// Reads the "database", then (when gated) waits before returning: a slow
/// read that started before a write and finishes after it.
#[cached(key = "stock:<sku>", ttl = 600, cache = RACE, name = "Stock")]
fn stock(sku: u32) -> u32 {
    let v = *RACE_DB.lock().unwrap();
    let gate = RACE_GATE.lock().unwrap().take();
    if let Some(gate) = gate {
        gate.recv().ok();
    }
    let _ = sku;
    v
}

#[cache_write(invalidate = ["stock:<sku>"], cache = RACE)]
fn restock(sku: u32, to: u32) {
    let _ = sku;
    *RACE_DB.lock().unwrap() = to;
}

#[cache_write(invalidate = ["stock:<sku>"], buffer_ms = 5000, cache = RACE)]
fn restock_buffered(sku: u32, to: u32) {
    let _ = sku;
    *RACE_DB.lock().unwrap() = to;
}

/// The slow read stores its old value 10 ms after the write's invalidation.
fn race(sku: u32, write: impl FnOnce()) -> u32 {
    let (tx, rx) = mpsc::channel();
    *RACE_GATE.lock().unwrap() = Some(rx);
    let reader = std::thread::spawn(move || stock(sku));
    while RACE_GATE.lock().unwrap().is_some() {
        std::thread::yield_now(); // the reader has read the old value
    }
    write();
    RACE_CLOCK.advance(Duration::from_millis(10));
    tx.send(()).unwrap();
    reader.join().unwrap();
    stock(sku)
}

#[test]
fn a_buffered_invalidation_discards_a_racing_read() {
    let _g = RACE_SERIAL.lock().unwrap();
    *RACE_DB.lock().unwrap() = 1;
    assert_eq!(
        race(1, || restock_buffered(1, 2)),
        2,
        "the old value stored after the write was discarded"
    );
    RACE_CLOCK.advance(Duration::from_secs(6));
}

/// A read whose load began before the write and stores after its
/// invalidation: entries are stamped with the start of their load, so the
/// old value is never served, with no buffer (before load-start stamps the
/// old value was stored as newer and served until its TTL ended).
#[test]
fn a_racing_read_is_discarded_without_a_buffer() {
    let _g = RACE_SERIAL.lock().unwrap();
    *RACE_DB.lock().unwrap() = 1;
    let discarded = RACE.stats_for("Stock").map_or(0, |s| s.discarded);
    assert_eq!(
        race(2, || restock(2, 2)),
        2,
        "the value loaded before the invalidation was not served"
    );
    assert_eq!(
        RACE.stats_for("Stock").unwrap().discarded,
        discarded + 1,
        "and it was not stored"
    );
}

// ---- a write's recache is served, every time ---------------------------------------------

static NOTE_LOADS: AtomicU32 = AtomicU32::new(0);
static NOTES: LazyLock<Cache> = LazyLock::new(|| Cache::builder().name("notes").build());

#[cached(key = "note:<id>", ttl = 600, cache = NOTES)]
fn note(id: u32) -> u32 {
    let _ = id;
    NOTE_LOADS.fetch_add(1, SeqCst)
}

#[cache_write(invalidate = ["note:<id>"], recache = [note(id)], cache = NOTES)]
fn edit_note(id: u32) {
    let _ = id;
}

/// The watermark a write raises and the time it waits past before
/// recaching are one and the same: a clock tick between two readings of the
/// clock once made the recached value count as invalidated now and then
/// (a load on the next read). Many rounds, so that ticks fall everywhere.
#[test]
fn a_recached_value_is_always_served_after_its_write() {
    note(1);
    for round in 0..300 {
        edit_note(1);
        let recached = NOTE_LOADS.load(SeqCst);
        assert_eq!(
            note(1),
            recached - 1,
            "round {round}: the recache is served"
        );
        assert_eq!(NOTE_LOADS.load(SeqCst), recached, "round {round}: no load");
    }
}

// ---- tags that only the result knows (`add_tags`) ---------------------------------------

mod result_tags {
    use super::*;
    use cachewright::backends::MemoryBackend;
    use cachewright::{Clock, LayerConfig, ManualClock};
    use std::sync::Arc;

    static SHARED: LazyLock<Arc<MemoryBackend>> = LazyLock::new(|| Arc::new(MemoryBackend::new()));
    static CLOCK: LazyLock<ManualClock> = LazyLock::new(|| ManualClock::new(1_000_000));

    fn cache_over_shared() -> Cache {
        Cache::builder()
            .namespace("result-tags")
            .clock(Clock::manual(&CLOCK))
            .layer(LayerConfig::shared(SHARED.clone()))
            .without_bus()
            .build()
    }

    static A: LazyLock<Cache> = LazyLock::new(cache_over_shared);
    static INVOICE_LOADS: AtomicU32 = AtomicU32::new(0);

    /// The customer is known only once the invoice is loaded.
    #[cached(key = "invoice:<id>", ttl = 600, cache = A, name = "Invoice")]
    fn invoice(id: u32) -> u32 {
        INVOICE_LOADS.fetch_add(1, SeqCst);
        let customer = id % 10;
        assert!(cachewright::add_tags([cachewright::tag(
            "customer", &customer
        )]));
        customer
    }

    #[test]
    fn a_tag_added_by_the_loader_invalidates_in_process_and_below() {
        assert_eq!(invoice(13), 3);
        assert_eq!(invoice(13), 3);
        assert_eq!(INVOICE_LOADS.load(SeqCst), 1);
        // Another process's view of the shared layer: the entry is there,
        // stored with the loader's tag.
        let b = cache_over_shared();
        let key = b.key("invoice", &13).use_case("Invoice");
        assert_eq!(b.get::<u32>(&key), Some(3));
        let tags = b
            .get_entry::<u32>(&key)
            .expect("filled from the layer")
            .tags;
        assert!(tags.iter().any(|t| &**t == "customer:3"), "{tags:?}");

        CLOCK.advance(Duration::from_millis(5));
        A.invalidate_tags([cachewright::tag("customer", &3)]);
        CLOCK.advance(Duration::from_millis(5));
        assert_eq!(invoice(13), 3);
        assert_eq!(
            INVOICE_LOADS.load(SeqCst),
            2,
            "dropped in process by the added tag"
        );
        // A third view that never held it: the layer's copy (rewritten by the
        // load above) is current; the one from before the invalidation was
        // not served to the first caller either.
        assert_eq!(invoice(23), 3);
        A.invalidate_tags([cachewright::tag("customer", &3)]);
        CLOCK.advance(Duration::from_millis(5));
        let c = cache_over_shared();
        let key23 = c.key("invoice", &23).use_case("Invoice");
        // The watermark lives in the shared layer: c rules the entry out.
        assert_eq!(
            c.get::<u32>(&key23),
            None,
            "invalidated by its added tag, below L1 too"
        );
    }

    #[test]
    fn get_or_load_keeps_the_loaders_tags() {
        let cache = Cache::builder().name("direct-tags").build();
        let key = cache.key("order", &5);
        let v: Result<u32, ()> = cache.get_or_load(&key, None, || {
            cachewright::add_tags([cachewright::tag("shop", &"eu")]);
            Ok(5)
        });
        assert_eq!(v, Ok(5));
        let tags = cache.get_entry::<u32>(&key).unwrap().tags;
        assert_eq!(
            tags.iter().map(|t| &**t).collect::<Vec<_>>(),
            ["order:5", "shop:eu"]
        );
        std::thread::sleep(Duration::from_millis(2));
        cache.invalidate_tags([cachewright::tag("shop", &"eu")]);
        assert_eq!(cache.get::<u32>(&key), None);
    }
}

// ---- async invalidations run in spawned tasks ------------------------------------------

/// The async invalidations' futures are `Send`, so a task that calls them can
/// be spawned (`invalidate_entity_async` held its `&dyn Display` id across an
/// await, and such a task did not compile).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_invalidations_run_in_spawned_tasks() {
    let cache = Cache::builder().name("spawned").build();
    let (k1, k2) = (cache.key("user", &1), cache.key("org", &2));
    cache.set(&k1, 1u32, None);
    cache.set(&k2, 2u32, None);
    let c = cache.clone();
    tokio::spawn(async move {
        c.invalidate_entity_async("user", &1).await;
        c.invalidate_tags_async([tag("org", &2)]).await;
    })
    .await
    .unwrap();
    assert_eq!(cache.get::<u32>(&k1), None);
    assert_eq!(cache.get::<u32>(&k2), None);
}

// ---- a clear is an invalidation of everything --------------------------------------------

/// A read whose load began before a `clear` (or `flush_all`) and finishes
/// after it: the clear covers it as an invalidation would, so the old value
/// is neither stored nor served (before, it was stored and served until its
/// TTL ended).
#[test]
fn a_clear_discards_a_racing_read() {
    let _g = RACE_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let clears: [(u32, fn()); 2] = [(3, || RACE.clear()), (4, || RACE.flush_all())];
    for (sku, clear) in clears {
        *RACE_DB.lock().unwrap() = 1;
        let served = race(sku, || {
            *RACE_DB.lock().unwrap() = 2;
            clear();
        });
        assert_eq!(
            served, 2,
            "the value loaded before the clear was not served"
        );
    }
}

/// The same for a direct `get_or_load`: its own caller has the value,
/// nobody after the clear does.
#[test]
fn a_clear_discards_a_racing_get_or_load() {
    let _g = RACE_SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let key = RACE.key("quote", &1);
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let k = key.clone();
    let loader = std::thread::spawn(move || {
        RACE.get_or_load(&k, Duration::from_secs(600), move || {
            started_tx.send(()).unwrap();
            go_rx.recv().ok();
            Ok::<u32, ()>(1)
        })
    });
    started_rx.recv().unwrap();
    RACE.clear();
    go_tx.send(()).unwrap();
    assert_eq!(loader.join().unwrap(), Ok(1), "its caller has it");
    assert_eq!(RACE.get::<u32>(&key), None, "nobody after the clear does");
    assert_eq!(
        RACE.get_or_load(&key, Duration::from_secs(600), || Ok::<u32, ()>(2)),
        Ok(2),
        "loaded again"
    );
}

/// A bus that is connected at once and records what it is asked to publish.
#[derive(Debug, Default)]
struct Recorder(Mutex<Vec<String>>);

#[cachewright::backends::async_trait]
impl cachewright::backends::Bus for Recorder {
    async fn publish(
        &self,
        _channel: &str,
        payload: Vec<u8>,
    ) -> Result<(), cachewright::backends::BackendError> {
        self.0
            .lock()
            .unwrap()
            .push(String::from_utf8(payload).unwrap());
        Ok(())
    }
    fn subscribe(&self, _channel: &str, sink: cachewright::backends::BusSink) {
        sink(cachewright::backends::BusEvent::Connected);
    }
}

/// The `at` of the one message of `kind` on `bus`.
fn published_at(bus: &Recorder, kind: &str) -> u64 {
    let sent = bus.0.lock().unwrap();
    let msg = sent
        .iter()
        .find(|m| m.contains(&format!("\"kind\":\"{kind}\"")))
        .unwrap_or_else(|| panic!("no {kind} message in {sent:?}"));
    let at = &msg[msg.find("\"at\":").expect("an at") + 5..];
    at[..at.find(|c: char| !c.is_ascii_digit()).unwrap_or(at.len())]
        .parse()
        .unwrap()
}

/// Every `at` on the bus is a stamp (microseconds), a clear's too: a
/// receiver compares it with its entries' stamps.
#[test]
fn a_clear_travels_with_a_stamp() {
    let clock = ManualClock::new(5_000_000);
    let bus = std::sync::Arc::new(Recorder::default());
    let cache = Cache::builder()
        .name("clear-stamp")
        .clock(Clock::manual(&clock))
        .bus(bus.clone())
        .build();
    cache.invalidate_tags(["user:1"]);
    cache.clear();
    let (tags, clear) = (published_at(&bus, "tags"), published_at(&bus, "clear"));
    assert!(tags >= 5_000_000_000, "a stamp, in µs: {tags}");
    assert!(clear > tags, "a stamp, after the invalidation's: {clear}");
    bus.0.lock().unwrap().clear();
    cache.flush_all();
    assert!(published_at(&bus, "clear") > clear);
}
