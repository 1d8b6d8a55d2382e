//! Confirmed invalidations across processes, on a real Redis: an
//! invalidation returns once every subscribed cache applied it, and a cache
//! that stops answering stops trusting its in-process layer before the
//! writer gives up waiting for it. Each "process" is a cache with its own
//! bus subscription; one of them hears the bus late (every message held back
//! by a delay) or not at all (frozen), as a stalled process would.

mod support;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cachewright::backends::redis::RedisBackend;
use cachewright::backends::{async_trait, Backend, BackendError, Bus, BusEvent, BusSink};
use cachewright::{Cache, Entry, LayerConfig};
use support::{eventually, RedisServer};

/// A Redis bus whose listener hears every event `delay` late, in order, or
/// (while `frozen`) not at all: a process whose subscriber is stuck (it
/// does not even notice its connection being killed).
#[derive(Debug)]
struct Late {
    inner: Arc<dyn Bus>,
    delay: Duration,
    frozen: Arc<AtomicBool>,
}

#[async_trait]
impl Bus for Late {
    async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), BackendError> {
        self.inner.publish(channel, payload).await
    }
    fn confirms(&self) -> bool {
        self.inner.confirms()
    }
    fn subscribe(&self, channel: &str, sink: BusSink) {
        self.subscribe_all(&[channel.to_owned()], sink);
    }
    fn subscribe_all(&self, channels: &[String], sink: BusSink) {
        let (tx, rx) = mpsc::channel::<(Instant, BusEvent)>();
        let (delay, frozen) = (self.delay, self.frozen.clone());
        std::thread::spawn(move || {
            for (at, event) in rx {
                if frozen.load(SeqCst) {
                    continue; // heard by nobody: a stuck subscriber
                }
                if let Some(wait) = (at + delay).checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                if !sink(event) {
                    return;
                }
            }
        });
        self.inner.subscribe_all(
            channels,
            Arc::new(move |e| tx.send((Instant::now(), e)).is_ok()),
        );
    }
}

fn redis(url: &str) -> RedisBackend {
    RedisBackend::from_url(url).unwrap()
}

fn layer(url: &str) -> LayerConfig {
    LayerConfig::new(redis(url))
        .ttl_cap(Duration::from_secs(300))
        .timeout(Duration::from_millis(500))
}

/// A cache over `url` whose bus is `Late` (delay, frozen switch).
fn late_cache(url: &str, delay: Duration, lease: Duration) -> (Cache, Arc<AtomicBool>) {
    let frozen = Arc::new(AtomicBool::new(false));
    let bus = Late {
        inner: redis(url).bus().unwrap(),
        delay,
        frozen: frozen.clone(),
    };
    let cache = Cache::builder()
        .namespace("confirm")
        .layer(layer(url))
        .bus(Arc::new(bus))
        .invalidation_lease(lease)
        .build();
    (cache, frozen)
}

fn cache(url: &str, lease: Duration) -> Cache {
    Cache::builder()
        .namespace("confirm")
        .layer(layer(url))
        .invalidation_lease(lease)
        .build()
}

/// Loads `v` into `reader` (in process and in Redis) and checks it is
/// served from there.
fn hold(reader: &Cache, id: u32, v: &str) {
    let key = reader.key("user", &id);
    let got: Result<String, ()> = reader.get_or_load(&key, None, || Ok(v.to_owned()));
    assert_eq!(got.unwrap(), v);
    assert_eq!(reader.get::<String>(&key).as_deref(), Some(v));
}

#[test]
fn an_invalidation_returns_once_a_slow_process_applied_it() {
    let server = RedisServer::start();
    let url = server.url();
    // The reader hears the bus 300 ms late: without confirmation, the
    // writer's invalidate returns long before the reader drops its copy.
    let (reader, _) = late_cache(&url, Duration::from_millis(300), Duration::from_secs(5));
    let writer = cache(&url, Duration::from_secs(5));
    eventually("both buses connect", || {
        reader.bus_connected() && writer.bus_connected()
    });
    assert!(writer.bus_stats().confirmed_delivery);
    eventually("the writer knows the reader", || {
        writer.bus_stats().members >= 1
    });
    hold(&reader, 7, "v1");

    writer.invalidate_entity("user", &7);
    let key = reader.key("user", &7);
    assert_eq!(
        reader.get::<String>(&key),
        None,
        "a read in another process that begins after invalidate returned never sees the older value"
    );
    let s = writer.bus_stats();
    assert_eq!((s.confirmed, s.unconfirmed), (1, 0), "{s:?}");

    // The same for tags and deletes, sync and async.
    let tagged = reader.key("report", &8);
    let now = reader.clock().precise_ms();
    let mut entry = Entry::new("t1".to_string(), now, None, Duration::ZERO);
    entry.tags = vec![cachewright::tag("team", &"sales").into_boxed_str()].into();
    reader.set_entry(&tagged, entry);
    assert_eq!(reader.get::<String>(&tagged).as_deref(), Some("t1"));
    writer.invalidate_tags([cachewright::tag("team", &"sales")]);
    assert_eq!(reader.get::<String>(&tagged), None);
    hold(&reader, 9, "v1");
    writer.delete(&writer.key("user", &9));
    assert_eq!(reader.get::<String>(&reader.key("user", &9)), None);
    let rt = tokio::runtime::Runtime::new().unwrap();
    hold(&reader, 10, "v1");
    rt.block_on(writer.invalidate_entity_async("user", &10));
    assert_eq!(reader.get::<String>(&reader.key("user", &10)), None);
    assert_eq!(writer.bus_stats().unconfirmed, 0);
}

/// A reader that can be frozen and a writer, both with a 400 ms lease,
/// their buses connected.
fn frozen_reader_and_writer(server: &RedisServer) -> (Cache, Arc<AtomicBool>, Cache) {
    let url = server.url();
    let lease = Duration::from_millis(400);
    let (reader, frozen) = late_cache(&url, Duration::ZERO, lease);
    let writer = cache(&url, lease);
    eventually("both buses connect", || {
        reader.bus_connected() && writer.bus_connected()
    });
    (reader, frozen, writer)
}

#[test]
fn a_process_that_stops_answering_stops_trusting_its_copies() {
    let server = RedisServer::start();
    let (reader, frozen, writer) = frozen_reader_and_writer(&server);
    // The writer has heard the reader's pings: it is a member (until then
    // an invalidation has nobody to wait for, and is confirmed at once).
    eventually("the writer knows the reader", || {
        writer.bus_stats().members >= 1
    });
    hold(&reader, 1, "v1");

    // The reader's subscriber stalls: it neither applies nor acknowledges,
    // and its own pings stop coming back.
    frozen.store(true, SeqCst);
    writer.invalidate_entity("user", &1);
    let s = writer.bus_stats();
    assert_eq!((s.confirmed, s.unconfirmed), (0, 1), "{s:?}");
    // The writer gave up after the lease: by then the reader's lease ran
    // out too, so it reads Redis (where the watermark is) instead of its
    // stale in-process copy.
    assert!(!reader.bus_connected(), "the reader's lease ran out");
    let key = reader.key("user", &1);
    assert_eq!(reader.get::<String>(&key), None, "not served stale");
    let loaded: Result<String, ()> = reader.get_or_load(&key, None, || Ok("v2".into()));
    assert_eq!(loaded.unwrap(), "v2", "loads anew; Redis keeps it");

    // The subscriber recovers: its pings come back and the in-process
    // layer is trusted again.
    frozen.store(false, SeqCst);
    eventually("the reader's lease is renewed", || reader.bus_connected());
    writer.invalidate_entity("user", &2);
    assert_eq!(writer.bus_stats().confirmed, 1);
}

#[test]
fn a_process_whose_subscription_died_unnoticed_is_waited_for() {
    let server = RedisServer::start();
    let (reader, frozen, writer) = frozen_reader_and_writer(&server);
    // The writer has heard the reader's pings: it is a member.
    eventually("the writer knows the reader", || {
        writer.bus_stats().members >= 1
    });
    hold(&reader, 1, "v1");
    frozen.store(true, SeqCst);
    // Every subscription is killed; the writer's comes back, the reader
    // does not notice its own went. PUBLISH no longer counts the reader.
    let _: redis::Value = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query(&mut server.conn())
        .unwrap();
    std::thread::sleep(Duration::from_millis(50));
    eventually("the writer resubscribes", || writer.bus_connected());
    writer.invalidate_entity("user", &1);
    assert_eq!(
        writer.bus_stats().unconfirmed,
        1,
        "a member heard within its lease did not answer"
    );
    let key = reader.key("user", &1);
    assert_eq!(
        reader.get::<String>(&key),
        None,
        "the writer waited until the reader's lease ran out"
    );
}

#[test]
fn without_a_lease_an_invalidation_does_not_wait() {
    let server = RedisServer::start();
    let url = server.url();
    let (reader, frozen) = late_cache(&url, Duration::ZERO, Duration::from_secs(5));
    let writer = cache(&url, Duration::ZERO);
    eventually("both buses connect", || {
        reader.bus_connected() && writer.bus_connected()
    });
    assert!(!writer.bus_stats().confirmed_delivery);
    frozen.store(true, SeqCst);
    // A frozen reader would hold a confirming writer for its whole lease;
    // this one returns once published, and counts nothing either way.
    writer.invalidate_entity("user", &1);
    let s = writer.bus_stats();
    assert_eq!(
        (s.confirmed, s.unconfirmed, s.undelivered),
        (0, 0, 0),
        "{s:?}"
    );
}

/// A bus within one process: every message to every subscriber of its
/// channel, at once.
#[derive(Default)]
struct Local(std::sync::Mutex<Vec<(String, BusSink)>>);

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Local")
    }
}

#[async_trait]
impl Bus for Local {
    async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), BackendError> {
        let subs: Vec<BusSink> = self
            .0
            .lock()
            .unwrap()
            .iter()
            .filter(|(c, _)| c == channel)
            .map(|(_, s)| s.clone())
            .collect();
        for s in subs {
            s(BusEvent::Message(payload.clone()));
        }
        Ok(())
    }
    fn subscribe(&self, channel: &str, sink: BusSink) {
        sink(BusEvent::Connected);
        self.0.lock().unwrap().push((channel.to_owned(), sink));
    }
}

#[test]
fn a_clear_elsewhere_discards_a_load_in_flight_here() {
    let bus = Arc::new(Local::default());
    let on = || Cache::builder().namespace("clear").bus(bus.clone()).build();
    let (here, there) = (on(), on());
    let key = here.key("quote", &1);
    let (started_tx, started_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (h, k) = (here.clone(), key.clone());
    let loader = std::thread::spawn(move || {
        h.get_or_load(&k, Duration::from_secs(600), move || {
            started_tx.send(()).unwrap();
            go_rx.recv().ok();
            Ok::<u32, ()>(1)
        })
    });
    started_rx.recv().unwrap();
    // Another process clears the namespace while this one loads.
    there.clear();
    go_tx.send(()).unwrap();
    assert_eq!(loader.join().unwrap(), Ok(1), "its caller has it");
    assert_eq!(
        here.get::<u32>(&key),
        None,
        "a load that began before another process's clear is not kept"
    );
}
