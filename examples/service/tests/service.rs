//! The product service end to end: PostgreSQL on 127.0.0.1:5432 (database
//! `test`, its own table), a redis-server of its own on a free port, and
//! HTTP over loopback. Reads are cached (hits cost no query), missing rows
//! are cached as 404s, a write is seen by the next read, `/metrics` and
//! `/health` report, and Redis dying fails no request (health says
//! degraded, with a 200).

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cachewright_service_example::client::Conn;
use cachewright_service_example::{router, App, Db, Product, Sample};

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A redis-server of this test's own, killed when dropped.
struct Redis(Child);

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_redis(port: u16) -> Redis {
    let bin = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .chain([std::path::PathBuf::from("/usr/bin")])
        .map(|d| d.join("redis-server"))
        .find(|p| p.is_file())
        .expect("this test needs redis-server on the PATH (Debian: apt-get install redis-server)");
    // Owned by the guard at once: killed and reaped on every path.
    let redis = Redis(
        Command::new(bin)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server starts"),
    );
    for _ in 0..500 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return redis;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("redis-server did not listen on {port}");
}

async fn get(c: &mut Conn, path: &str) -> (u16, Vec<u8>) {
    c.send("GET", path, "").await.expect("the service answers")
}

async fn stats(c: &mut Conn) -> Sample {
    let (status, body) = get(c, "/stats").await;
    assert_eq!(status, 200);
    serde_json::from_slice(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_are_cached_writes_invalidate_and_redis_dying_fails_nothing() {
    let redis_port = free_port();
    let mut redis = Some(start_redis(redis_port));
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder of this test binary");
    cachewright::configure()
        .namespace("service-test")
        .redis(&format!("redis://127.0.0.1:{redis_port}"))
        .install()
        .expect("configured once");
    let table = format!("cw_service_test_{}", std::process::id());
    let db = Db::connect(
        "host=127.0.0.1 port=5432 user=postgres dbname=test",
        &table,
        2,
    )
    .await
    .expect("this test needs PostgreSQL on 127.0.0.1:5432 (trust auth, database `test`)");
    db.seed(100).await.expect("the table is seeded");

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let host = listener.local_addr().unwrap().to_string();
    let app = router(App {
        db: db.clone(),
        metrics: Some(prometheus),
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut c = Conn::open(&host).await.unwrap();
    for _ in 0..500 {
        if cachewright::default_cache().bus_connected() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A read, then a hit: one query for both.
    let q0 = db.queries();
    let (status, body) = get(&mut c, "/products/7").await;
    assert_eq!(status, 200);
    let p: Product = serde_json::from_slice(&body).unwrap();
    assert_eq!((p.id, p.version), (7, 1));
    let (status, again) = get(&mut c, "/products/7").await;
    assert_eq!((status, &again), (200, &body));
    assert_eq!(db.queries(), q0 + 1, "the second read was a hit");

    // A missing row: 404, and the second 404 costs no query.
    assert_eq!(get(&mut c, "/products/100000").await.0, 404);
    assert_eq!(get(&mut c, "/products/100000").await.0, 404);
    assert_eq!(db.queries(), q0 + 2, "the absence was cached");

    // A write through #[cache_write]: the next read sees it.
    let (status, body) = c
        .send("PUT", "/products/7", r#"{"price_cents": 4242}"#)
        .await
        .unwrap();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (_, body) = get(&mut c, "/products/7").await;
    let p: Product = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (p.price_cents, p.version),
        (4242, 2),
        "never the invalidated value"
    );
    let s = stats(&mut c).await;
    assert!(s.hits >= 2 && s.misses >= 3, "{s:?}");

    // What an operator sees.
    let (status, metrics) = get(&mut c, "/metrics").await;
    assert_eq!(status, 200);
    let metrics = String::from_utf8(metrics).unwrap();
    for needle in [
        r#"cachewright_requests_total{cache="default",use_case="GetProduct",key_type="product",result="hit"}"#,
        r#"cachewright_requests_total{cache="default",use_case="GetProduct",key_type="product",result="negative"} 1"#,
        r#"cachewright_layer_operations_total{cache="default",layer="redis""#,
        "service_db_queries_total",
    ] {
        assert!(metrics.contains(needle), "{needle} in\n{metrics}");
    }
    let (status, health) = get(&mut c, "/health").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&health));
    let health: serde_json::Value = serde_json::from_slice(&health).unwrap();
    assert_eq!(health["state"], "up");
    assert_eq!(health["layers"][0]["backend"], "redis");

    // Redis dies: every read still answers (from the database), and health
    // says so.
    drop(redis.take());
    for id in 20..40 {
        let (status, body) = get(&mut c, &format!("/products/{id}")).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    let (status, health) = get(&mut c, "/health").await;
    assert_eq!(
        status, 200,
        "a degraded cache still serves: the replica stays in"
    );
    let health: serde_json::Value = serde_json::from_slice(&health).unwrap();
    assert_eq!(health["state"], "degraded", "{health}");
    db.drop_table().await.unwrap();
}
