//! Runs the product service. Settings come from the environment:
//!
//! - `DATABASE_URL` (default `host=127.0.0.1 port=5432 user=postgres dbname=test`)
//! - `TABLE` (default `cw_products`), `ROWS` (default 10000; the table is
//!   dropped and seeded at start unless `SEED=0`)
//! - `PORT` (default 3000, on 127.0.0.1)
//! - `CACHEWRIGHT_REDIS_URL` for a Redis layer and bus (default: in process
//!   only), and the other `CACHEWRIGHT_*` settings
//! - `CACHE=off` runs every call uncached (the baseline of the README's
//!   figures)
//! - `RUST_LOG` (default `info`; `cachewright=debug` shows every hit and miss)

use std::net::SocketAddr;

use cachewright_service_example::{router, App, Db};

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()?;
    cachewright::configure()
        .namespace("service")
        .from_env()?
        .install()?;
    if env("CACHE", "on") == "off" {
        cachewright::set_caching_enabled(false);
        tracing::info!("caching is off (CACHE=off): every read goes to the database");
    }
    let url = env(
        "DATABASE_URL",
        "host=127.0.0.1 port=5432 user=postgres dbname=test",
    );
    let db = Db::connect(&url, &env("TABLE", "cw_products"), 8).await?;
    if env("SEED", "1") != "0" {
        let rows: i64 = env("ROWS", "10000").parse()?;
        db.seed(rows).await?;
        tracing::info!(rows, "table seeded");
    }
    let port: u16 = env("PORT", "3000").parse()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr).await?;
    tracing::info!(%addr, "listening");
    let app = router(App {
        db,
        metrics: Some(metrics),
    });
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    // Deliver what is still owed to Redis and the bus, release leases and
    // leave the bus before exiting.
    let delivered = cachewright::default_cache()
        .close_async(std::time::Duration::from_secs(2))
        .await;
    tracing::info!(delivered, "stopped");
    Ok(())
}
