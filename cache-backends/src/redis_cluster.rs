//! Redis Cluster over the `redis` crate's async cluster client.
//!
//! # How each operation meets the cluster's one rule (one slot per command)
//!
//! - Single-key commands and scripts (`GET`, `SET`, the watermark, lease
//!   and dedupe scripts) touch one key each: the client routes them to the
//!   slot's master and follows `MOVED`/`ASK` and failovers by itself.
//!   cachewright never reads or scripts two keys together, so its key scheme
//!   needs no hash tags and is the same as on a standalone server: a cache
//!   can move between the two without a key changing.
//! - Batch reads are one `MGET`, which the client splits into one `MGET` per
//!   slot, sends concurrently and reassembles in order: never a `CROSSSLOT`
//!   error, whatever keys are asked.
//! - Batch writes and watermark raises are one command per key, sent
//!   concurrently on the multiplexed node connections.
//! - Scripts are sent by hash (`EVALSHA`) to the key's master, and whole
//!   (`EVAL`) when that node does not have them (`NOSCRIPT`): never
//!   `SCRIPT LOAD` to every node, which one unreachable replica would fail.
//! - `set_if_absent` (leases, locks, owed writes) is `SET NX PX GET`: a
//!   command the client resends after a lost reply finds its own value and
//!   still counts as stored.
//! - `scan` and `delete_prefix` walk every master with `SCAN` (the list of
//!   masters is read from `CLUSTER SLOTS` at each call, so it follows
//!   failovers; a master is reached through one of its slots, so one
//!   listed without a host works too); deletes are `UNLINK`, split per slot
//!   like `MGET`. A master that fails does not stop `delete_prefix`: every
//!   reachable one is cleared, then the call fails naming how many did not.
//! - Node URLs: TCP only (`redis://host:port`), database 0, one user and
//!   password for every node; anything else is refused at build time.
//!
//! # The invalidation bus: sharded pub/sub
//!
//! Classic `PUBLISH` works on a cluster, but every message is broadcast to
//! every node over the cluster bus, whatever the number of subscribers:
//! its cost grows with the cluster. Sharded pub/sub (`SPUBLISH`,
//! `SSUBSCRIBE`, Redis 7) keeps a channel's messages on the shard (master
//! and replicas) that owns the channel's slot. The bus puts every channel it
//! is given under one hash tag, `{cachewright:bus}`, so a cache's
//! invalidation, ping and acknowledgement channels share one slot: one
//! subscription carries all three, in the order they were published, which
//! the confirmation protocol relies on (as on a standalone server). The
//! subscriber is a dedicated RESP3 connection to a node of that shard: the
//! slot's master as the cluster connection knows it, else the first seed
//! node that accepts, following `MOVED`; when it breaks (its node failed) or the
//! server drops the subscription (the slot moved), the bus reports
//! `Disconnected` and subscribes again wherever the slot is now.
//!
//! The subscription is checked every second with a `PING` on its own
//! connection, and every few seconds the slot's master is looked up again:
//! a connection that died silently (no FIN or RST reached it; TCP keepalive
//! is off by default) or a shard that lost the slot without telling its
//! subscribers ends the subscription, which is then made again.
//!
//! The price of one hash tag: the bus traffic of every cache on the cluster
//! goes through that one shard. Invalidations are small and few next to
//! reads, so one shard carries them easily.
//!
//! # What the cluster does not promise
//!
//! - **Sharded pub/sub needs Redis 7.** On a Redis 6 cluster `SSUBSCRIBE`
//!   is an unknown command: the bus never subscribes (logged once at error
//!   level), reports itself unreachable, and every cache on the cluster
//!   keeps distrusting its in-process layer (every read goes to the
//!   cluster). `set_if_absent`'s `SET NX GET` needs Redis 7 as well.
//! - **Confirmed invalidation is exact only while the bus shard is whole.**
//!   The protocol assumes that one server carries the invalidation and every
//!   member's pings, in one order. If the bus slot's master is cut off from
//!   the majority and a replica is promoted, caches on either side of the
//!   partition hear different servers for up to the cluster's node timeout;
//!   an invalidation confirmed on one side may not have reached a cache on
//!   the other, which then trusts its in-process copies until its lease runs
//!   out (as it would if it could not hear the bus at all).
//! - **An acknowledged watermark raise can be lost.** Replication is
//!   asynchronous: a master that acknowledges a raise and dies before its
//!   replica copied it leaves a promoted replica with the older watermark,
//!   so a remote entry loaded before the invalidation may be served again
//!   (until its TTL), exactly as with a standalone primary and its
//!   replicas. `WAIT` is not used; keep TTLs as short as that risk needs.

use std::collections::VecDeque;
use std::time::Duration;

use async_trait::async_trait;
use redis::cluster::{ClusterClient, ClusterClientBuilder, ClusterConfig};
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
use redis::{RedisError, Script, Value};

use crate::redis::{
    glob_escape, px, CredentialsError, CredentialsSource, Messages, DEDUPE, DELETE_IF, RAISE,
    RENEW_IF,
};
use crate::{Backend, BackendError, Bus, BusSink, Dedupe, ScannedKey, Written};

pub use crate::redis::Credentials;

const NAME: &str = "redis-cluster";

/// How long the bus waits for the cluster connection to name the bus
/// slot's master before trying the seed nodes.
const OWNER_LOOKUP: Duration = Duration::from_millis(500);

/// The hash tag of every bus channel: one slot for all of them.
const BUS_TAG: &str = "{cachewright:bus}";

/// A Redis Cluster layer: one cluster connection (a multiplexed connection
/// per node, routed by slot, following redirects and failovers), created
/// lazily, so a cluster that is down at startup delays nothing. Every
/// operation runs on cachewright's I/O runtime, as [`RedisBackend`]'s do.
///
/// See the [module docs](self) for how each operation stays within one
/// slot and why the bus uses sharded pub/sub.
///
/// [`RedisBackend`]: crate::redis::RedisBackend
///
/// # Examples
///
/// ```
/// use cachewright::backends::redis_cluster::RedisClusterBackend;
/// use cachewright::{Cache, LayerConfig};
///
/// // Building does not connect: this runs without a cluster.
/// let cluster = RedisClusterBackend::from_url("redis://:secret@10.0.0.1:7000,10.0.0.2:7001")
///     .expect("a valid configuration");
/// assert!(!format!("{cluster:?}").contains("secret"));
/// let cache = Cache::builder().namespace("shop").layer(LayerConfig::new(cluster)).build();
/// assert_eq!(cache.layer_stats()[0].backend, "redis-cluster");
/// ```
#[derive(Clone)]
pub struct RedisClusterBackend {
    conn: ClusterConnection,
    nodes: Vec<redis::ConnectionInfo>,
    shown: Vec<String>,
    credentials: Option<CredentialsSource>,
    connection_timeout: Duration,
}

impl std::fmt::Debug for RedisClusterBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClusterBackend")
            .field("nodes", &self.shown)
            .finish_non_exhaustive()
    }
}

/// Configures a [`RedisClusterBackend`]: the seed nodes (any few of the
/// cluster's nodes; the rest are discovered), timeouts, credentials.
///
/// Its `Debug` output masks passwords.
///
/// # Examples
///
/// ```
/// use cachewright::backends::redis_cluster::RedisClusterBackend;
/// use std::time::Duration;
///
/// let builder = RedisClusterBackend::builder()
///     .nodes(["redis://app:s3cret@10.0.0.1:7000", "redis://app:s3cret@10.0.0.2:7001"])
///     .connection_timeout(Duration::from_millis(500));
/// let shown = format!("{builder:?}");
/// assert!(shown.contains("app:***@10.0.0.1:7000") && !shown.contains("s3cret"));
/// assert!(builder.build().is_ok());
/// ```
#[derive(Default)]
#[must_use]
pub struct RedisClusterBuilder {
    nodes: Vec<String>,
    connection_timeout: Option<Duration>,
    response_timeout: Option<Duration>,
    credentials: Option<CredentialsSource>,
}

impl std::fmt::Debug for RedisClusterBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nodes: Vec<String> = self.nodes.iter().map(|u| crate::redact_url(u)).collect();
        f.debug_struct("RedisClusterBuilder")
            .field("nodes", &nodes)
            .field("connection_timeout", &self.connection_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("credentials", &self.credentials.is_some())
            .finish()
    }
}

impl RedisClusterBuilder {
    /// Adds seed nodes, each a URL (`redis://[user][:password@]host:port`),
    /// or a comma list of them as [`node_urls`](crate::node_urls) reads it
    /// (`redis://h1:7000,h2:7001`).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::redis_cluster::RedisClusterBackend;
    ///
    /// let b = RedisClusterBackend::builder()
    ///     .nodes(["redis://127.0.0.1:7000,127.0.0.1:7001"])
    ///     .nodes(["redis://127.0.0.1:7002"]);
    /// assert!(format!("{b:?}").contains("redis://127.0.0.1:7001"));
    /// ```
    pub fn nodes<I, S>(mut self, urls: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for u in urls {
            self.nodes.extend(crate::node_urls(u.as_ref()));
        }
        self
    }

    /// How long one connection attempt to a node may take (default 1 s).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::redis_cluster::RedisClusterBackend;
    /// use std::time::Duration;
    ///
    /// let b = RedisClusterBackend::builder().connection_timeout(Duration::from_millis(250));
    /// assert!(format!("{b:?}").contains("connection_timeout: Some(250ms)"));
    /// ```
    pub fn connection_timeout(mut self, d: Duration) -> Self {
        self.connection_timeout = Some(d);
        self
    }

    /// How long a node connection waits for a reply (default 1 s; the cache
    /// applies its own, smaller layer timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::redis_cluster::RedisClusterBackend;
    /// use std::time::Duration;
    ///
    /// let b = RedisClusterBackend::builder().response_timeout(Duration::from_millis(300));
    /// assert!(format!("{b:?}").contains("response_timeout: Some(300ms)"));
    /// ```
    pub fn response_timeout(mut self, d: Duration) -> Self {
        self.response_timeout = Some(d);
        self
    }

    /// Ask `provider` for the user and password (or token) at every connect
    /// to a node, reconnects and failovers included, and for the bus's
    /// connection, instead of taking them from the URLs. See
    /// [`Credentials`] for how often it is asked.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::redis_cluster::{Credentials, RedisClusterBackend};
    ///
    /// let b = RedisClusterBackend::builder()
    ///     .nodes(["redis://127.0.0.1:7000"])
    ///     .credentials(|| async { Ok(Credentials::new("app", "token")) });
    /// assert!(format!("{b:?}").contains("credentials: true"));
    /// ```
    pub fn credentials<F, Fut>(mut self, provider: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Credentials, CredentialsError>> + Send + 'static,
    {
        self.credentials = Some(CredentialsSource::new(provider));
        self
    }

    /// Builds the backend. Does not connect: the first operation does.
    ///
    /// # Errors
    ///
    /// [`BackendError::Config`] when no node is given, a node URL does not
    /// parse (the message masks its password), asks for TLS (`rediss://`,
    /// not supported for clusters yet), is a Unix socket, names a database
    /// other than 0, or carries another user or password than the first
    /// node's.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{redis_cluster::RedisClusterBackend, BackendError};
    ///
    /// assert!(matches!(RedisClusterBackend::builder().build(), Err(BackendError::Config(_))));
    /// let e = RedisClusterBackend::builder().nodes(["redis://:pw@host:notaport"]).build().unwrap_err();
    /// assert!(!e.to_string().contains("pw"));
    /// ```
    pub fn build(self) -> Result<RedisClusterBackend, BackendError> {
        if self.nodes.is_empty() {
            return Err(BackendError::Config(
                "the Redis Cluster backend needs at least one node URL (`.nodes(..)`)".into(),
            ));
        }
        let mut nodes: Vec<redis::ConnectionInfo> = Vec::with_capacity(self.nodes.len());
        for url in &self.nodes {
            if url.starts_with("rediss://") {
                return Err(BackendError::Config(format!(
                    "`{}`: TLS to a Redis Cluster is not supported yet",
                    crate::redact_url(url)
                )));
            }
            if url.starts_with("unix:") || url.starts_with("redis+unix:") {
                return Err(BackendError::Config(format!(
                    "`{}`: a Redis Cluster's nodes are reached over TCP (`redis://host:port`), not a Unix socket",
                    crate::redact_url(url)
                )));
            }
            let info = redis::IntoConnectionInfo::into_connection_info(url.as_str())
                .map_err(|e| crate::redis::bad_url(url, e))?;
            if !matches!(info.addr(), redis::ConnectionAddr::Tcp(..)) {
                return Err(BackendError::Config(format!(
                    "`{}` is not a TCP node address (`redis://host:port`)",
                    crate::redact_url(url)
                )));
            }
            if info.redis_settings().db() != 0 {
                return Err(BackendError::Config(format!(
                    "`{}` names database {}: a Redis Cluster has database 0 only",
                    crate::redact_url(url),
                    info.redis_settings().db()
                )));
            }
            // One user and password for the whole cluster (the cluster
            // client takes one set for every node, and refuses mixed ones
            // with a message that does not say which URL).
            if let Some(first) = nodes.first() {
                let (a, b) = (first.redis_settings(), info.redis_settings());
                if a.username() != b.username() || a.password() != b.password() {
                    return Err(BackendError::Config(format!(
                        "`{}` does not carry the same user and password as the first node: a Redis \
                         Cluster is reached with one set for every node (give them once, on the \
                         first URL of a comma list, or alike on every URL)",
                        crate::redact_url(url)
                    )));
                }
            }
            nodes.push(info);
        }
        let connection_timeout = self.connection_timeout.unwrap_or(Duration::from_secs(1));
        let mut builder = ClusterClientBuilder::new(nodes.clone())
            .connection_timeout(connection_timeout)
            .response_timeout(self.response_timeout.unwrap_or(Duration::from_secs(1)))
            // A failover takes the cluster's node timeout and an election:
            // requests wait it out in short steps rather than failing early
            // (the cache's own layer timeout still bounds each call).
            .retries(8)
            .min_retry_wait(10)
            .max_retry_wait(500);
        if let Some(source) = &self.credentials {
            builder = builder.set_credentials_provider(source.clone());
        }
        let client: ClusterClient = builder.build().map_err(|e| {
            BackendError::Config(format!(
                "the Redis Cluster nodes are not usable: {}",
                self.nodes
                    .iter()
                    .fold(e.to_string(), |m, u| crate::url::scrub(&m, u))
            ))
        })?;
        let handle = crate::io::handle().ok_or_else(|| {
            BackendError::Config("cachewright's i/o runtime could not be started".into())
        })?;
        // The cluster connection's task lives on cachewright's runtime, so it
        // serves sync code and any user runtime alike.
        let _entered = handle.enter();
        let conn = client.get_pending_async_connection_with_config(
            ClusterConfig::new()
                .set_connection_timeout(connection_timeout)
                .set_response_timeout(self.response_timeout.unwrap_or(Duration::from_secs(1))),
        );
        Ok(RedisClusterBackend {
            conn,
            nodes,
            shown: self.nodes.iter().map(|u| crate::redact_url(u)).collect(),
            credentials: self.credentials,
            connection_timeout,
        })
    }
}

/// Runs the one-key script `src` on `key`'s master: `EVALSHA`, and on
/// `NOSCRIPT` (a node restarted, failed over, or flushed its scripts) the
/// whole script with `EVAL`, which also loads it there. Both go to the
/// key's slot only: the `redis` crate's `Script` sends `SCRIPT LOAD` to
/// every node, replicas included, so one unreachable node would fail every
/// script.
async fn eval<T: redis::FromRedisValue>(
    c: &mut ClusterConnection,
    src: &str,
    key: &str,
    args: &[Vec<u8>],
) -> Result<T, RedisError> {
    let hash = Script::new(src).get_hash().to_owned();
    let by_hash = redis::cmd("EVALSHA")
        .arg(hash)
        .arg(1)
        .arg(key)
        .arg(args)
        .query_async(c)
        .await;
    match by_hash {
        Err(e) if e.code() == Some("NOSCRIPT") => {
            redis::cmd("EVAL")
                .arg(src)
                .arg(1)
                .arg(key)
                .arg(args)
                .query_async(c)
                .await
        }
        r => r,
    }
}

/// The arguments of a script, each as Redis takes it.
macro_rules! script_args {
    ($($a:expr),* $(,)?) => {
        [$(redis::ToRedisArgs::to_redis_args(&$a)),*].concat()
    };
}

/// A failed command: a node that cannot be reached, or a cluster without a
/// master for the slot (mid-failover), is the connection's fault like a
/// broken socket; anything else is the server's answer.
fn err(e: RedisError) -> BackendError {
    let unreachable = e.kind() == redis::ErrorKind::ClusterConnectionNotFound
        || e.is_cluster_error()
        || e.is_unrecoverable_error();
    if unreachable {
        return BackendError::Connection {
            backend: NAME.into(),
            source: Box::new(e),
        };
    }
    crate::redis::classify(NAME, e)
}

impl RedisClusterBackend {
    /// A builder; give it the nodes.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::redis_cluster::RedisClusterBackend;
    ///
    /// let c = RedisClusterBackend::builder().nodes(["redis://127.0.0.1:7000"]).build().unwrap();
    /// assert!(format!("{c:?}").contains("RedisClusterBackend"));
    /// ```
    pub fn builder() -> RedisClusterBuilder {
        RedisClusterBuilder::default()
    }

    /// A backend for a comma list of nodes, `redis://[:password@]h1:7000,h2:7001`
    /// (every host takes the URL's scheme and credentials; see
    /// [`node_urls`](crate::node_urls)), with the default settings.
    ///
    /// # Errors
    ///
    /// As [`RedisClusterBuilder::build`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{redis_cluster::RedisClusterBackend, Backend};
    ///
    /// let c = RedisClusterBackend::from_url("redis://127.0.0.1:7000,127.0.0.1:7001").unwrap();
    /// assert_eq!(c.name(), "redis-cluster");
    /// assert!(c.native_get_many(), "one MGET per slot, concurrently");
    /// ```
    pub fn from_url(url: &str) -> Result<Self, BackendError> {
        Self::builder().nodes([url]).build()
    }

    /// A backend for these node URLs, with the default settings.
    ///
    /// # Errors
    ///
    /// As [`RedisClusterBuilder::build`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::redis_cluster::RedisClusterBackend;
    ///
    /// let c = RedisClusterBackend::from_urls(["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"]);
    /// assert!(c.is_ok());
    /// ```
    pub fn from_urls<I, S>(urls: I) -> Result<Self, BackendError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::builder().nodes(urls).build()
    }

    /// The cluster connection, for commands of your own (cheap to clone).
    /// Run them on cachewright's I/O runtime, as
    /// [`RedisBackend::connection`](crate::redis::RedisBackend::connection)
    /// explains.
    ///
    /// # Examples
    ///
    /// Needs a cluster, so it is only compiled:
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use cachewright::backends::{io, redis_cluster::RedisClusterBackend};
    ///
    /// let backend = RedisClusterBackend::from_url("redis://127.0.0.1:7000").unwrap();
    /// let mut conn = backend.connection();
    /// let n: i64 = io::run(async move { redis::cmd("DBSIZE").query_async(&mut conn).await })
    ///     .await
    ///     .unwrap()
    ///     .unwrap();
    /// println!("{n} keys on all masters");
    /// # }
    /// ```
    pub fn connection(&self) -> ClusterConnection {
        self.conn.clone()
    }

    async fn on_io<T, Fut>(
        &self,
        op: impl FnOnce(ClusterConnection) -> Fut,
    ) -> Result<T, BackendError>
    where
        Fut: std::future::Future<Output = Result<T, RedisError>> + Send + 'static,
        T: Send + 'static,
    {
        on_io(&self.conn, op).await
    }
}

/// Runs one operation on the cluster connection on cachewright's I/O
/// runtime (see `redis::on_io` for why).
async fn on_io<T, Fut>(
    conn: &ClusterConnection,
    op: impl FnOnce(ClusterConnection) -> Fut,
) -> Result<T, BackendError>
where
    Fut: std::future::Future<Output = Result<T, RedisError>> + Send + 'static,
    T: Send + 'static,
{
    match crate::io::run(op(conn.clone())).await {
        Ok(r) => r.map_err(err),
        Err(_) => Err(BackendError::Connection {
            backend: NAME.into(),
            source: "cachewright's i/o runtime is not available".into(),
        }),
    }
}

/// A master as `CLUSTER SLOTS` names it: the first slot of one of its
/// ranges (commands for it are routed by that slot, through the client's
/// own map of the cluster), its address if the answer gave one (a node
/// whose endpoint is unknown is listed with a NULL, empty or `?` host), and
/// its node id.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Master {
    slot: u16,
    addr: Option<(String, u16)>,
    id: Option<String>,
}

/// The slot ranges of `CLUSTER SLOTS`, each with its master (each range:
/// start, end, then its master `[host, port, id, ...]` and its replicas).
async fn slot_masters(c: &mut ClusterConnection) -> Result<Vec<(u16, u16, Master)>, RedisError> {
    let ranges: Vec<Value> = redis::cmd("CLUSTER").arg("SLOTS").query_async(c).await?;
    Ok(parse_slots(ranges))
}

fn parse_slots(ranges: Vec<Value>) -> Vec<(u16, u16, Master)> {
    let mut found = Vec::new();
    for range in ranges {
        let Value::Array(parts) = range else { continue };
        let num = |i: usize| -> Option<u16> { redis::from_redis_value_ref(parts.get(i)?).ok() };
        let (Some(start), Some(end)) = (num(0), num(1)) else {
            continue;
        };
        let Some(Value::Array(master)) = parts.get(2) else {
            continue;
        };
        let text = |i: usize| -> Option<String> {
            master
                .get(i)
                .and_then(|v| redis::from_redis_value_ref::<String>(v).ok())
        };
        let host = text(0).filter(|h| !h.is_empty() && h != "?");
        let port: Option<u16> = master
            .get(1)
            .and_then(|v| redis::from_redis_value_ref(v).ok());
        let addr = host.zip(port);
        found.push((
            start,
            end,
            Master {
                slot: start,
                addr,
                id: text(2),
            },
        ));
    }
    found
}

/// The masters, each once (by node id, else by address, else each range).
async fn masters(c: &mut ClusterConnection) -> Result<Vec<Master>, RedisError> {
    let mut found: Vec<Master> = Vec::new();
    for (_, _, master) in slot_masters(c).await? {
        let known = found.iter().any(|m| match (&m.id, &master.id) {
            (Some(a), Some(b)) => a == b,
            _ => m.addr.is_some() && m.addr == master.addr,
        });
        if !known {
            found.push(master);
        }
    }
    if found.is_empty() {
        return Err(RedisError::from((
            redis::ErrorKind::Client,
            "CLUSTER SLOTS listed no master",
        )));
    }
    Ok(found)
}

/// The master that serves `key`'s slot now, as the cluster connection (which
/// follows the topology) is told.
async fn owner(c: &mut ClusterConnection, key: &str) -> Result<Option<Master>, RedisError> {
    let slot: u16 = redis::cmd("CLUSTER")
        .arg("KEYSLOT")
        .arg(key)
        .query_async(c)
        .await?;
    Ok(slot_masters(c)
        .await?
        .into_iter()
        .find(|(start, end, _)| (*start..=*end).contains(&slot))
        .map(|(_, _, master)| master))
}

/// Deletes the keys that match `pattern` on the master `node`: how many,
/// or how many before it failed and why.
async fn delete_on(
    c: &mut ClusterConnection,
    node: &Master,
    pattern: &str,
) -> Result<u64, (u64, RedisError)> {
    let mut deleted = 0u64;
    let mut cursor = 0u64;
    loop {
        let (next, keys) = scan_step(c, node, cursor, pattern)
            .await
            .map_err(|e| (deleted, e))?;
        if !keys.is_empty() {
            // Split per slot by the client, the counts summed.
            let n: u64 = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(c)
                .await
                .map_err(|e| (deleted, e))?;
            deleted += n;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}

/// One `SCAN ... MATCH pattern COUNT 500` step on the master `node`.
async fn scan_step(
    c: &mut ClusterConnection,
    node: &Master,
    cursor: u64,
    pattern: &str,
) -> Result<(u64, Vec<String>), RedisError> {
    let mut cmd = redis::cmd("SCAN");
    cmd.arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(500);
    let reply = c
        .route_command(
            cmd,
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::new(
                node.slot,
                SlotAddr::Master,
            ))),
        )
        .await?;
    Ok(redis::from_redis_value(reply)?)
}

#[async_trait]
impl Backend for RedisClusterBackend {
    fn name(&self) -> &str {
        NAME
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let cmd = redis::cmd("GET").arg(key).to_owned();
        self.on_io(|mut c| async move { cmd.query_async(&mut c).await })
            .await
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), BackendError> {
        let cmd = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("PX")
            .arg(px(ttl))
            .to_owned();
        self.on_io(|mut c| async move { cmd.query_async::<()>(&mut c).await })
            .await
    }

    async fn delete(&self, key: &str) -> Result<bool, BackendError> {
        let cmd = redis::cmd("DEL").arg(key).to_owned();
        let n: i64 = self
            .on_io(|mut c| async move { cmd.query_async(&mut c).await })
            .await?;
        Ok(n > 0)
    }

    fn native_get_many(&self) -> bool {
        true
    }

    async fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, BackendError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        // The client splits this into one MGET per slot and puts the
        // answers back in the order of `keys`.
        let cmd = redis::cmd("MGET").arg(keys).to_owned();
        self.on_io(|mut c| async move { cmd.query_async(&mut c).await })
            .await
    }

    async fn set_many(&self, items: Vec<(String, Vec<u8>, Duration)>) -> Result<(), BackendError> {
        if items.is_empty() {
            return Ok(());
        }
        self.on_io(|c| async move {
            let writes = items.into_iter().map(|(k, v, ttl)| {
                let mut c = c.clone();
                async move {
                    redis::cmd("SET")
                        .arg(k)
                        .arg(v)
                        .arg("PX")
                        .arg(px(ttl))
                        .query_async::<()>(&mut c)
                        .await
                }
            });
            futures_util::future::try_join_all(writes).await.map(|_| ())
        })
        .await
    }

    async fn raise_many(&self, items: Vec<(String, u64, Duration)>) -> Result<(), BackendError> {
        if items.is_empty() {
            return Ok(());
        }
        self.on_io(|c| async move {
            let raises = items.into_iter().map(|(k, stamp, ttl)| {
                let mut c = c.clone();
                async move { eval::<i64>(&mut c, RAISE, &k, &script_args![stamp, px(ttl)]).await }
            });
            futures_util::future::try_join_all(raises).await.map(|_| ())
        })
        .await
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, BackendError> {
        // `GET`: the value the key held. The cluster client resends a
        // command whose reply was lost (a broken connection, a failover):
        // a resent `SET NX` would find our own value and say "not stored".
        // Finding exactly `value` means it is ours (leases and locks write a
        // token of their own; an entry's bytes carry their load's stamp).
        // `NX` with `GET` needs Redis 7, as the bus does.
        let cmd = redis::cmd("SET")
            .arg(key)
            .arg(&value)
            .arg("NX")
            .arg("PX")
            .arg(px(ttl))
            .arg("GET")
            .to_owned();
        let held: Option<Vec<u8>> = self
            .on_io(|mut c| async move { cmd.query_async(&mut c).await })
            .await?;
        Ok(held.is_none_or(|held| held == value))
    }

    fn dedupes(&self) -> bool {
        true
    }

    async fn set_dedupe(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
        dedupe: &Dedupe,
    ) -> Result<Written, BackendError> {
        let (Some(hash), Some(header)) = (
            value.get(dedupe.hash.clone()),
            value.get(dedupe.header.clone()),
        ) else {
            self.set(key, value, ttl).await?;
            return Ok(Written::Value);
        };
        if dedupe.header.start != 0 || dedupe.hash.is_empty() {
            self.set(key, value, ttl).await?;
            return Ok(Written::Value);
        }
        let (hash, header) = (hash.to_vec(), header.to_vec());
        let (key, range) = (key.to_owned(), dedupe.hash.clone());
        let wrote: i64 = self
            .on_io(|mut c| async move {
                let args = script_args![value, px(ttl), range.start, range.end - 1, hash, header];
                eval(&mut c, DEDUPE, &key, &args).await
            })
            .await?;
        Ok(if wrote == 1 {
            Written::Value
        } else {
            Written::Renewed
        })
    }

    async fn renew_if(&self, key: &str, token: &[u8], ttl: Duration) -> Result<bool, BackendError> {
        let (key, token) = (key.to_owned(), token.to_vec());
        let n: i64 = self
            .on_io(|mut c| async move {
                eval(&mut c, RENEW_IF, &key, &script_args![token, px(ttl)]).await
            })
            .await?;
        Ok(n == 1)
    }

    async fn delete_if(&self, key: &str, token: &[u8]) -> Result<bool, BackendError> {
        let (key, token) = (key.to_owned(), token.to_vec());
        let n: i64 = self
            .on_io(|mut c| async move { eval(&mut c, DELETE_IF, &key, &script_args![token]).await })
            .await?;
        Ok(n == 1)
    }

    fn bus(&self) -> Option<std::sync::Arc<dyn Bus>> {
        Some(std::sync::Arc::new(RedisClusterBus {
            conn: self.conn.clone(),
            nodes: self.nodes.clone(),
            credentials: self.credentials.clone(),
            connection_timeout: self.connection_timeout,
        }))
    }

    async fn scan(
        &self,
        prefix: &str,
        suffix: &str,
        limit: usize,
    ) -> Result<Vec<ScannedKey>, BackendError> {
        // `[^~]`: not cachewright's watermarks and leases (`prefix~...`).
        let pattern = format!("{}[^~]*{}", glob_escape(prefix), glob_escape(suffix));
        self.on_io(|mut c| async move {
            let mut keys: Vec<String> = Vec::new();
            'masters: for node in masters(&mut c).await? {
                let mut cursor = 0u64;
                loop {
                    let (next, found) = scan_step(&mut c, &node, cursor, &pattern).await?;
                    keys.extend(found);
                    if keys.len() >= limit {
                        break 'masters;
                    }
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
            }
            keys.sort_unstable();
            keys.dedup();
            keys.truncate(limit);
            let ttls = futures_util::future::try_join_all(keys.iter().map(|k| {
                let mut c = c.clone();
                async move { redis::cmd("PTTL").arg(k).query_async::<i64>(&mut c).await }
            }))
            .await?;
            // -2: gone since the scan; -1: no expiry.
            Ok(keys
                .into_iter()
                .zip(ttls)
                .filter(|&(_, t)| t != -2)
                .map(|(k, t)| ScannedKey::new(k, u64::try_from(t).ok().map(Duration::from_millis)))
                .collect())
        })
        .await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, BackendError> {
        let pattern = format!("{}*", glob_escape(prefix));
        let (deleted, failed) = self
            .on_io(|mut c| async move {
                let masters = masters(&mut c).await?;
                let (mut deleted, mut failed) = (0u64, Vec::new());
                // A master that fails does not stop the others: every
                // reachable one is cleared, and the failures are told after.
                for node in &masters {
                    match delete_on(&mut c, node, &pattern).await {
                        Ok(n) => deleted += n,
                        Err((n, e)) => {
                            deleted += n;
                            failed.push(e);
                        }
                    }
                }
                Ok((deleted, (failed, masters.len())))
            })
            .await?;
        let (failed, of) = failed;
        let k = failed.len();
        let Some(first) = failed.into_iter().next() else {
            return Ok(deleted);
        };
        let what = format!(
            "delete_prefix deleted {deleted} keys, but failed on {k} of {of} masters (their keys stay)"
        );
        Err(match err(first) {
            BackendError::Connection { backend, source } => BackendError::Connection {
                backend,
                source: format!("{what}: {source}").into(),
            },
            BackendError::Refused { backend, message } => BackendError::Refused {
                backend,
                message: format!("{what}: {message}"),
            },
            other => other,
        })
    }
}

/// Sharded pub/sub on a cluster as an invalidation bus (see the [module
/// docs](self) for why sharded, and the hash tag): publishes with
/// `SPUBLISH` on the backend's cluster connection, listens on a dedicated
/// RESP3 connection to the shard that owns the channels' slot.
///
/// # Examples
///
/// ```
/// use cachewright::backends::{redis_cluster::RedisClusterBackend, Backend};
/// use cachewright::{Cache, LayerConfig};
///
/// let cluster = RedisClusterBackend::from_url("redis://127.0.0.1:7000,127.0.0.1:7001").unwrap();
/// let bus = cluster.bus().expect("a cluster brings its sharded pub/sub");
/// assert!(bus.confirms());
/// let cache = Cache::builder().layer(LayerConfig::new(cluster)).build();
/// assert!(cache.bus_stats().configured);
/// ```
pub struct RedisClusterBus {
    conn: ClusterConnection,
    nodes: Vec<redis::ConnectionInfo>,
    credentials: Option<CredentialsSource>,
    connection_timeout: Duration,
}

impl std::fmt::Debug for RedisClusterBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisClusterBus").finish_non_exhaustive()
    }
}

/// The sharded channel that carries `channel`: under the bus's hash tag.
fn sharded(channel: &str) -> String {
    format!("{BUS_TAG}{channel}")
}

#[async_trait]
impl Bus for RedisClusterBus {
    async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), BackendError> {
        let cmd = redis::cmd("SPUBLISH")
            .arg(sharded(channel))
            .arg(payload)
            .to_owned();
        on_io(&self.conn, |mut c| async move {
            cmd.query_async::<i64>(&mut c).await.map(|_| ())
        })
        .await
    }

    fn confirms(&self) -> bool {
        true
    }

    fn subscribe(&self, channel: &str, sink: BusSink) {
        self.subscribe_all(&[channel.to_owned()], sink);
    }

    fn subscribe_all(&self, channels: &[String], sink: BusSink) {
        let channels: Vec<String> = channels.iter().map(|c| sharded(c)).collect();
        let label = channels.first().cloned().unwrap_or_default();
        let (conn, nodes, credentials, timeout) = (
            self.conn.clone(),
            self.nodes.clone(),
            self.credentials.clone(),
            self.connection_timeout,
        );
        let budget = attempt_budget(nodes.len(), timeout);
        let attempts = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        crate::redis::listen(label, sink, budget, move || {
            let (conn, mut nodes, credentials, channels) = (
                conn.clone(),
                nodes.clone(),
                credentials.clone(),
                channels.clone(),
            );
            // Each attempt starts at the next seed: seeds that time out do
            // not take every attempt's whole budget in the same order.
            let n = attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            if !nodes.is_empty() {
                let len = nodes.len();
                nodes.rotate_left(n % len);
            }
            async move {
                // First the slot's master as the cluster connection knows
                // it (no time lost on seeds that died), then the seeds.
                let first = channels.first().cloned().unwrap_or_default();
                let mut lookup = conn.clone();
                // Bounded: mid-failover the cluster connection retries for
                // longer than one subscription attempt may take.
                let found = crate::io::run(async move {
                    tokio::time::timeout(OWNER_LOOKUP, owner(&mut lookup, &first)).await
                })
                .await;
                if let Ok(Ok(Ok(Some(Master {
                    addr: Some((host, port)),
                    ..
                })))) = found
                {
                    if let Some(seed) = nodes.first() {
                        if let Some(info) = redirected(seed, &format!("{host}:{port}")) {
                            nodes.insert(0, info);
                        }
                    }
                }
                shard_subscription(conn, nodes, credentials, channels, timeout).await
            }
        });
    }
}

/// Redirects followed in one subscription attempt.
const REDIRECTS: usize = 4;

/// How long one subscription attempt may take: the owner's lookup, then
/// the owner, each seed and a few redirects, each given a connect and a
/// reply within `timeout` (several seeds that time out one after another
/// must not use it up before a live one is tried), at least 2 s.
fn attempt_budget(seeds: usize, timeout: Duration) -> Duration {
    let tries = u32::try_from(seeds + 1 + REDIRECTS).unwrap_or(u32::MAX);
    OWNER_LOOKUP
        .saturating_add(timeout.saturating_mul(2).saturating_mul(tries))
        .max(Duration::from_secs(2))
}

/// Subscribes to `channels` (all in one slot) on the shard that owns their
/// slot: tries each node in turn, following `MOVED` to the owner.
async fn shard_subscription(
    conn: ClusterConnection,
    seeds: Vec<redis::ConnectionInfo>,
    credentials: Option<CredentialsSource>,
    channels: Vec<String>,
    timeout: Duration,
) -> Result<Messages, RedisError> {
    let mut candidates: VecDeque<redis::ConnectionInfo> = seeds.iter().cloned().collect();
    let mut last = RedisError::from((redis::ErrorKind::Io, "no cluster node answered"));
    // Each node once, and a few redirects.
    let mut attempts = seeds.len() + REDIRECTS;
    while let Some(info) = candidates.pop_front() {
        if attempts == 0 {
            break;
        }
        attempts -= 1;
        match subscribe_on(&conn, &info, &credentials, &channels, timeout).await {
            Ok(messages) => return Ok(messages),
            Err(e) => {
                if let Some((addr, _slot)) = e.redirect_node() {
                    if let Some(owner) = redirected(&info, addr) {
                        candidates.push_front(owner);
                    }
                }
                last = e;
            }
        }
    }
    Err(last)
}

/// `info` pointed at `addr` (`host:port`, as `MOVED` gives it). A node
/// whose endpoint is unknown answers `MOVED <slot> :<port>` (or a `?`
/// host): the owner is then on the host `info` names, as the `redis` crate
/// reads it too.
fn redirected(info: &redis::ConnectionInfo, addr: &str) -> Option<redis::ConnectionInfo> {
    let (host, port) = addr.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host.trim_matches(['[', ']']);
    let host = match (host, info.addr()) {
        ("" | "?", redis::ConnectionAddr::Tcp(own, _)) => own.clone(),
        ("" | "?", _) => return None,
        (h, _) => h.to_owned(),
    };
    let target = redis::ConnectionAddr::Tcp(host, port);
    let mut moved = redis::IntoConnectionInfo::into_connection_info(target).ok()?;
    moved = moved.set_redis_settings(info.redis_settings().clone());
    Some(moved)
}

/// Every how many health checks of a subscription the bus slot's owner is
/// looked up again (about every 5 s).
const OWNER_EVERY: u32 = 5;

/// `SSUBSCRIBE` is unknown: a Redis 6 cluster (no sharded pub/sub).
fn no_sharded_pubsub(e: &RedisError) -> bool {
    e.to_string()
        .to_ascii_lowercase()
        .contains("unknown command")
}

/// One subscription on the node at `info`: a RESP3 connection whose pushes
/// come through a channel; it ends when the connection breaks, the server
/// drops the subscription (`sunsubscribe`: the slot moved), the connection
/// stops answering its `PING`s (see `redis::watched`), or the cluster
/// names another master for the slot twice in a row (looked up every few
/// checks through `cluster`: a failover the subscribed node was not told
/// of, or that did not close its connections).
async fn subscribe_on(
    cluster: &ClusterConnection,
    info: &redis::ConnectionInfo,
    credentials: &Option<CredentialsSource>,
    channels: &[String],
    timeout: Duration,
) -> Result<Messages, RedisError> {
    let mut info = info.clone();
    if let Some(source) = credentials {
        info = source.apply(info).await?;
    }
    let settings = info
        .redis_settings()
        .clone()
        .set_protocol(redis::ProtocolVersion::RESP3);
    let client = redis::Client::open(info.set_redis_settings(settings))?;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel::<redis::PushInfo>();
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout))
        .set_push_sender(tx);
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await?;
    // One channel per command: each is confirmed by exactly one reply.
    for channel in channels {
        if let Err(e) = redis::cmd("SSUBSCRIBE")
            .arg(channel)
            .query_async::<Value>(&mut conn)
            .await
        {
            if no_sharded_pubsub(&e) {
                static TOLD: std::sync::atomic::AtomicBool =
                    std::sync::atomic::AtomicBool::new(false);
                if !TOLD.swap(true, std::sync::atomic::Ordering::Relaxed) {
                    tracing::error!(
                        "this Redis Cluster has no sharded pub/sub (SSUBSCRIBE is unknown: Redis 6?): \
                         the invalidation bus cannot subscribe, so caches on it never trust their \
                         in-process layer; use Redis 7 or later"
                    );
                }
            }
            return Err(e);
        }
    }
    // Who this node is, to tell whether it still owns the slot.
    let me: Option<String> = redis::cmd("CLUSTER")
        .arg("MYID")
        .query_async(&mut conn)
        .await
        .ok();
    let state = (rx, conn.clone());
    let messages = futures_util::stream::unfold(state, |(mut rx, conn)| async move {
        loop {
            let push = rx.recv().await?;
            match push.kind {
                redis::PushKind::SMessage => {
                    if let Some(Value::BulkString(payload)) = push.data.into_iter().nth(1) {
                        return Some((payload, (rx, conn)));
                    }
                }
                redis::PushKind::SUnsubscribe | redis::PushKind::Disconnection => return None,
                _ => {}
            }
        }
    });
    let (cluster, channel) = (
        cluster.clone(),
        channels.first().cloned().unwrap_or_default(),
    );
    let strikes = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let mut checks = 0u32;
    Ok(crate::redis::watched(messages, move || {
        checks = checks.wrapping_add(1);
        let look = me.is_some() && checks % OWNER_EVERY == 0;
        let (mut conn, mut cluster, channel, me, strikes) = (
            conn.clone(),
            cluster.clone(),
            channel.clone(),
            me.clone(),
            strikes.clone(),
        );
        async move {
            redis::cmd("PING").query_async::<Value>(&mut conn).await?;
            if !look {
                return Ok(());
            }
            let found = crate::io::run(async move {
                tokio::time::timeout(OWNER_LOOKUP, owner(&mut cluster, &channel)).await
            })
            .await;
            // Only a clear answer counts: a lookup that fails says nothing.
            if let Ok(Ok(Ok(Some(Master { id: Some(id), .. })))) = found {
                if Some(&id) != me.as_ref() {
                    if strikes.fetch_add(1, std::sync::atomic::Ordering::Relaxed) >= 1 {
                        return Err(RedisError::from((
                            redis::ErrorKind::Client,
                            "the bus slot has another master now",
                        )));
                    }
                } else {
                    strikes.store(0, std::sync::atomic::Ordering::Relaxed);
                }
            }
            Ok(())
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configuration_errors_name_the_problem_without_the_password() {
        assert!(matches!(
            RedisClusterBackend::builder().build(),
            Err(BackendError::Config(m)) if m.contains("at least one node")
        ));
        let e = RedisClusterBackend::from_url("redis://:hunter2@127.0.0.1:notaport").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = RedisClusterBackend::from_url("rediss://:hunter2@127.0.0.1:7000").unwrap_err();
        assert!(
            e.to_string().contains("TLS") && !e.to_string().contains("hunter2"),
            "{e}"
        );
        let shown = format!(
            "{:?}",
            RedisClusterBackend::from_url("redis://:hunter2@127.0.0.1:1,127.0.0.1:2").unwrap()
        );
        assert!(
            !shown.contains("hunter2") && shown.contains("127.0.0.1:2"),
            "{shown}"
        );
    }

    #[test]
    fn cluster_urls_that_cannot_work_are_refused_at_build() {
        let refused = |url: &str| match RedisClusterBackend::from_url(url) {
            Err(BackendError::Config(m)) => m,
            other => panic!("{url}: {other:?}"),
        };
        let m = refused("redis+unix:///tmp/a.sock");
        assert!(m.contains("Unix socket"), "{m}");
        let m = refused("unix:///tmp/a.sock");
        assert!(m.contains("Unix socket"), "{m}");
        let m = refused("redis://127.0.0.1:7000,127.0.0.1:7001/2");
        assert!(m.contains("database 0 only"), "{m}");
        let m = refused("redis://a:hunter2@127.0.0.1:7000,redis://b:other@127.0.0.1:7001");
        assert!(m.contains("same user and password"), "{m}");
        assert!(!m.contains("hunter2") && !m.contains("other@"), "{m}");
        let m = refused("redis://:hunter2@127.0.0.1:7000,redis://127.0.0.1:7001");
        assert!(m.contains("same user and password"), "{m}");
        // A password on the first URL reaches every host of the list.
        assert!(
            RedisClusterBackend::from_url("redis://:pw@127.0.0.1:7000,127.0.0.1:7001/0").is_ok()
        );
        // With a provider, the URLs' credentials are replaced by its own.
        assert!(RedisClusterBackend::builder()
            .nodes(["redis://127.0.0.1:7000", "redis://127.0.0.1:7001"])
            .credentials(|| async { Ok(Credentials::password_only("pw")) })
            .build()
            .is_ok());
    }

    #[test]
    fn slots_with_unknown_hosts_keep_their_masters() {
        let range = |start: i64, end: i64, host: Value, port: i64, id: &str| {
            Value::Array(vec![
                Value::Int(start),
                Value::Int(end),
                Value::Array(vec![host, Value::Int(port), Value::BulkString(id.into())]),
            ])
        };
        let slots = parse_slots(vec![
            range(0, 100, Value::Nil, 7000, "a"),
            range(101, 200, Value::BulkString(b"?".to_vec()), 7001, "b"),
            range(201, 300, Value::BulkString(Vec::new()), 7002, "c"),
            range(301, 400, Value::BulkString(b"10.0.0.4".to_vec()), 7003, "d"),
        ]);
        assert_eq!(slots.len(), 4, "no master is dropped for its host");
        assert!(slots[..3].iter().all(|(_, _, m)| m.addr.is_none()));
        assert_eq!(slots[3].2.addr, Some(("10.0.0.4".to_owned(), 7003)));
        assert_eq!(slots[1].2.slot, 101, "routed by its slot");
        let info =
            redis::IntoConnectionInfo::into_connection_info("redis://10.0.0.9:7000").unwrap();
        let moved = redirected(&info, ":7005").unwrap();
        assert!(matches!(moved.addr(), redis::ConnectionAddr::Tcp(h, 7005) if h == "10.0.0.9"));
        let moved = redirected(&info, "?:7005").unwrap();
        assert!(matches!(moved.addr(), redis::ConnectionAddr::Tcp(h, 7005) if h == "10.0.0.9"));
    }

    #[test]
    fn the_subscription_budget_covers_every_seed() {
        let t = Duration::from_secs(1);
        assert!(
            attempt_budget(6, t) >= t * 2 * 7,
            "{:?}",
            attempt_budget(6, t)
        );
        assert_eq!(
            attempt_budget(1, Duration::from_millis(10)),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn every_bus_channel_shares_one_slot() {
        let a = sharded("cachewright:bus:urn:a:v1:");
        let b = sharded("cachewright:bus:urn:a:v1::ping");
        assert!(a.starts_with("{cachewright:bus}") && b.starts_with("{cachewright:bus}"));
    }

    #[test]
    fn moved_points_at_the_owner_with_the_same_settings() {
        let info =
            redis::IntoConnectionInfo::into_connection_info("redis://:pw@127.0.0.1:7000").unwrap();
        let owner = redirected(&info, "127.0.0.1:7002").unwrap();
        assert!(matches!(owner.addr(), redis::ConnectionAddr::Tcp(h, 7002) if h == "127.0.0.1"));
        assert_eq!(owner.redis_settings().password(), Some("pw"));
        assert!(redirected(&info, "nonsense").is_none());
    }
}
