//! A small product service: PostgreSQL is the source of truth, reads go
//! through cachewright (in process, then Redis when `CACHEWRIGHT_REDIS_URL`
//! is set), writes invalidate through `#[cache_write]`, missing rows are
//! cached as absences (404s that do not reach the database), and `/metrics`
//! and `/health` show what the cache does. See this directory's README.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use cachewright::{cache_write, cached};
use serde::{Deserialize, Serialize};

pub mod client;

/// A product row.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Product {
    /// Its id.
    pub id: i64,
    /// Its name.
    pub name: String,
    /// Its price, in cents.
    pub price_cents: i64,
    /// Bumped by every update.
    pub version: i64,
}

/// A change to a product.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Patch {
    /// A new name.
    pub name: Option<String>,
    /// A new price.
    pub price_cents: Option<i64>,
}

/// A database failure, as the service reports it.
#[derive(Clone, Debug, PartialEq)]
pub struct DbError(pub String);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "database error: {}", self.0)
    }
}

impl std::error::Error for DbError {}

impl From<tokio_postgres::Error> for DbError {
    fn from(e: tokio_postgres::Error) -> Self {
        DbError(e.to_string())
    }
}

/// A few PostgreSQL connections, used in turn, and a count of the queries
/// made (the load the cache takes off the database).
pub struct Db {
    clients: Vec<tokio_postgres::Client>,
    next: AtomicUsize,
    table: String,
    queries: AtomicU64,
}

impl std::fmt::Debug for Db {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Db").field("table", &self.table).finish()
    }
}

impl Db {
    /// Opens `connections` connections to `url` (a libpq-style string such
    /// as `host=127.0.0.1 user=postgres dbname=test`) for the table `table`.
    pub async fn connect(url: &str, table: &str, connections: usize) -> Result<Arc<Db>, DbError> {
        if !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') || table.is_empty() {
            return Err(DbError(format!("not a plain table name: {table:?}")));
        }
        let mut clients = Vec::new();
        for _ in 0..connections.max(1) {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    tracing::error!(error = %e, "database connection ended");
                }
            });
            clients.push(client);
        }
        Ok(Arc::new(Db {
            clients,
            next: AtomicUsize::new(0),
            table: table.to_owned(),
            queries: AtomicU64::new(0),
        }))
    }

    fn client(&self) -> &tokio_postgres::Client {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.clients.len();
        self.queries.fetch_add(1, Ordering::Relaxed);
        &self.clients[i]
    }

    /// Queries made so far.
    pub fn queries(&self) -> u64 {
        self.queries.load(Ordering::Relaxed)
    }

    /// Creates the table (dropping an older one) and seeds `rows` products
    /// with ids 1 to `rows`.
    pub async fn seed(&self, rows: i64) -> Result<(), DbError> {
        let t = &self.table;
        let c = &self.clients[0];
        c.batch_execute(&format!(
            "DROP TABLE IF EXISTS {t};
             CREATE TABLE {t} (id BIGINT PRIMARY KEY, name TEXT NOT NULL, price_cents BIGINT NOT NULL, version BIGINT NOT NULL);
             INSERT INTO {t} SELECT g, 'product ' || g, 100 + g % 9900, 1 FROM generate_series(1, {rows}) AS g;
             ANALYZE {t};"
        ))
        .await?;
        Ok(())
    }

    /// Drops the table.
    pub async fn drop_table(&self) -> Result<(), DbError> {
        let t = &self.table;
        self.clients[0]
            .batch_execute(&format!("DROP TABLE IF EXISTS {t}"))
            .await?;
        Ok(())
    }

    /// The product `id`, if it exists.
    pub async fn find(&self, id: i64) -> Result<Option<Product>, DbError> {
        let sql = format!(
            "SELECT id, name, price_cents, version FROM {} WHERE id = $1",
            self.table
        );
        let row = self.client().query_opt(&sql, &[&id]).await?;
        Ok(row.map(|r| Product {
            id: r.get(0),
            name: r.get(1),
            price_cents: r.get(2),
            version: r.get(3),
        }))
    }

    /// Applies `patch` to product `id`; the row after it, if it exists.
    pub async fn update(&self, id: i64, patch: &Patch) -> Result<Option<Product>, DbError> {
        let sql = format!(
            "UPDATE {} SET name = COALESCE($2, name), price_cents = COALESCE($3, price_cents), version = version + 1
             WHERE id = $1 RETURNING id, name, price_cents, version",
            self.table
        );
        let row = self
            .client()
            .query_opt(&sql, &[&id, &patch.name, &patch.price_cents])
            .await?;
        Ok(row.map(|r| Product {
            id: r.get(0),
            name: r.get(1),
            price_cents: r.get(2),
            version: r.get(3),
        }))
    }
}

/// A product, read through the cache: a minute fresh, then served stale for
/// up to ten seconds while one refresh runs; a missing id is cached as an
/// absence for ten seconds. The pool is not part of the key.
#[cached(
    key = "product:<id>",
    ttl = 60,
    swr = 10,
    negative_ttl = 10,
    ignore = [db],
    name = "GetProduct"
)]
pub async fn get_product(db: Arc<Db>, id: i64) -> Result<Option<Product>, DbError> {
    db.find(id).await
}

/// Updates a product; on `Ok`, every cached entry about it (in process, in
/// Redis, in every replica through the bus) stops being served.
#[cache_write(invalidate = ["product:<id>"])]
pub async fn update_product(
    db: Arc<Db>,
    id: i64,
    patch: Patch,
) -> Result<Option<Product>, DbError> {
    db.update(id, &patch).await
}

/// What the handlers share.
#[derive(Clone)]
pub struct App {
    /// The database.
    pub db: Arc<Db>,
    /// Renders the metrics recorder's contents, if one is installed.
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
}

/// The service's routes.
pub fn router(app: App) -> Router {
    Router::new()
        .route("/products/{id}", get(read).put(write))
        .route("/metrics", get(metrics_text))
        .route("/health", get(health))
        .route("/stats", get(stats))
        .with_state(app)
}

fn db_error(e: DbError) -> Response {
    tracing::warn!(error = %e, "request failed");
    (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
}

async fn read(State(app): State<App>, Path(id): Path<i64>) -> Response {
    match get_product(app.db, id).await {
        Ok(Some(p)) => Json(p).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => db_error(e),
    }
}

async fn write(State(app): State<App>, Path(id): Path<i64>, Json(patch): Json<Patch>) -> Response {
    match update_product(app.db, id, patch).await {
        Ok(Some(p)) => Json(p).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => db_error(e),
    }
}

async fn metrics_text(State(app): State<App>) -> Response {
    let cache = cachewright::default_cache();
    cache.publish_metrics();
    metrics::counter!("service_db_queries_total").absolute(app.db.queries());
    let body = app.metrics.map(|h| h.render()).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

/// Always 200: a degraded cache (Redis down) still serves every request,
/// from memory and the database, so it is no reason to take the replica out
/// of a load balancer. The state is in the body, for dashboards and alerts.
async fn health() -> Response {
    Json(cachewright::default_cache().health()).into_response()
}

/// The numbers the load driver samples every second.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub struct Sample {
    /// Database queries so far.
    pub db_queries: u64,
    /// Cache hits so far (all use cases).
    pub hits: u64,
    /// Cache misses so far.
    pub misses: u64,
    /// Of the misses, those Redis served.
    pub remote_hits: u64,
    /// Calls that ran uncached.
    pub bypasses: u64,
}

async fn stats(State(app): State<App>) -> Json<Sample> {
    let s = cachewright::default_cache().snapshot().overall;
    Json(Sample {
        db_queries: app.db.queries(),
        hits: s.hits,
        misses: s.misses,
        remote_hits: s.remote_hits,
        bypasses: s.bypasses,
    })
}
