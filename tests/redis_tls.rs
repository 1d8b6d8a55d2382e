//! `rediss://`: the Redis layer and its invalidation bus over TLS, against a
//! real `redis-server` that speaks TLS only (certificates made in process by
//! the test), with a private CA, with and without client certificates; and
//! TLS trouble (an untrusted server, a plaintext client) is, like any Redis
//! trouble, counted and never the caller's.

mod support;

use std::time::Duration;

use cachewright::backends::redis::RedisBackend;
use cachewright::{Cache, LayerConfig};
use support::{eventually, RedisServer, Tls};

fn cache_over(backend: RedisBackend) -> Cache {
    Cache::builder()
        .namespace("tls")
        .layer(LayerConfig::new(backend).timeout(Duration::from_millis(500)))
        .build()
}

fn trusted(server: &RedisServer) -> RedisBackend {
    let tls = server.tls();
    let mut b = RedisBackend::builder()
        .url(server.url())
        .tls_root_cert(tls.ca.clone());
    if tls.auth_clients {
        b = b.tls_client_identity(tls.client_cert.clone(), tls.client_key.clone());
    }
    b.build().expect("a valid TLS configuration")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_values_and_invalidations_reach_another_cache() {
    let server = RedisServer::start_tls(Tls::generate(false));
    let a = cache_over(trusted(&server));
    let b = cache_over(trusted(&server));
    eventually("both buses subscribe over TLS", || {
        a.bus_connected() && b.bus_connected()
    });
    let key = a.key("user", &7);
    a.set_async(&key, "ada".to_string(), None).await;
    assert_eq!(
        b.get_async::<String>(&key).await.as_deref(),
        Some("ada"),
        "B reads A's value from Redis, over TLS"
    );
    let raw: Option<Vec<u8>> = redis::cmd("GET")
        .arg(key.as_str())
        .query(&mut server.conn())
        .unwrap();
    assert!(raw.unwrap().starts_with(b"cachewright:4j"));
    a.invalidate_entity_async("user", &7).await;
    let mut gone = false;
    for _ in 0..3000 {
        if b.get_async::<String>(&key).await.is_none() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(gone, "A's invalidation reached B over the TLS bus");
    let l = &b.layer_stats()[0];
    assert_eq!((l.errors, l.decode_errors), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_needs_the_client_certificate() {
    let server = RedisServer::start_tls(Tls::generate(true));
    let with_identity = cache_over(trusted(&server));
    let key = with_identity.key("k", &1);
    with_identity.set_async(&key, 1u32, None).await;
    assert_eq!(with_identity.layer_stats()[0].writes, 1);

    let without = cache_over(
        RedisBackend::builder()
            .url(server.url())
            .tls_root_cert(server.tls().ca.clone())
            .build()
            .unwrap(),
    );
    let loaded = without
        .get_or_load_async(&key, None, async { Ok::<_, String>(2u32) })
        .await;
    assert_eq!(
        loaded,
        Ok(2),
        "refused by the server: the loader answers, no error reaches the caller"
    );
    assert!(without.layer_stats()[0].errors > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_server_or_a_plaintext_client_is_a_counted_layer_failure() {
    let server = RedisServer::start_tls(Tls::generate(false));
    // The system's roots do not know the test CA.
    let untrusted = cache_over(RedisBackend::from_url(&server.url()).unwrap());
    // Plain TCP to the TLS port.
    let plaintext =
        cache_over(RedisBackend::from_url(&server.url().replace("rediss://", "redis://")).unwrap());
    for cache in [&untrusted, &plaintext] {
        let key = cache.key("k", &1);
        let v = cache
            .get_or_load_async(&key, None, async { Ok::<_, String>(5u32) })
            .await;
        assert_eq!(v, Ok(5));
        let l = &cache.layer_stats()[0];
        assert!(l.errors > 0 && l.hits == 0, "{l:?}");
    }
    // Nothing was written by either.
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("urn:tls:*")
        .query(&mut server.conn())
        .unwrap();
    assert!(keys.is_empty(), "{keys:?}");
}

#[test]
fn tls_settings_must_go_with_a_rediss_url() {
    let err = RedisBackend::builder()
        .url("redis://127.0.0.1:6379")
        .tls_root_cert(b"pem".to_vec())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("not a `rediss://` URL"), "{err}");
    let client = redis::Client::open("redis://127.0.0.1:6379").unwrap();
    let err = RedisBackend::builder()
        .client(client)
        .tls_root_cert(b"pem".to_vec())
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("client you pass"), "{err}");
}
