//! Redis (standalone) over one auto-reconnecting multiplexed connection.

use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError, Script};

use crate::{Backend, BackendError, Bus, BusEvent, BusSink, Dedupe, Written};

const NAME: &str = "redis";

/// Renews header and TTL when the stored content hash equals the new one,
/// otherwise writes the value. ARGV: value, ttl ms, hash start, hash end
/// (inclusive), hash bytes, header bytes.
/// ARGV: token, ttl ms. Renews the lease if we hold it.
pub(crate) const RENEW_IF: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

/// KEYS: a watermark. ARGV: the new stamp, its TTL in ms. Raises the
/// watermark only if the new stamp is larger (a watermark never moves back,
/// whatever the order two hosts' raises arrive in), and never shortens its
/// life. Stamps (microseconds since 1970) are below 2^53: exact in Lua.
pub(crate) const RAISE: &str = r#"
local cur = tonumber(redis.call('GET', KEYS[1]) or '')
if cur == nil or tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[2]) then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 0
"#;

/// ARGV: token. Releases the lease if we hold it.
pub(crate) const DELETE_IF: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;

pub(crate) const DEDUPE: &str = r#"
local cur = redis.call('GETRANGE', KEYS[1], ARGV[3], ARGV[4])
if cur ~= '' and cur == ARGV[5] then
  redis.call('SETRANGE', KEYS[1], 0, ARGV[6])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"#;

/// A Redis layer: one `ConnectionManager` (a multiplexed connection that
/// reconnects by itself with bounded exponential back-off), created lazily,
/// so a Redis that is down at startup delays nothing. Every operation runs
/// on cachewright's I/O runtime, so one backend serves any number of tokio
/// runtimes (and sync callers) at once.
///
/// # Examples
///
/// ```
/// use cachewright::backends::redis::RedisBackend;
/// use cachewright::{Cache, LayerConfig};
/// use std::time::Duration;
///
/// // Building does not connect: this runs without a server.
/// let redis = RedisBackend::builder()
///     .url("redis://:secret@127.0.0.1:6379/2")
///     .build()
///     .expect("a valid configuration");
/// assert!(!format!("{redis:?}").contains("secret"));
/// let cache = Cache::builder()
///     .namespace("shop")
///     .layer(LayerConfig::new(redis).ttl_cap(Duration::from_secs(300)))
///     .build();
/// assert_eq!(cache.layer_stats()[0].backend, "redis");
/// ```
#[derive(Clone)]
pub struct RedisBackend {
    conn: ConnectionManager,
    dedupe: Script,
    target: String,
    client: Client,
    credentials: Option<CredentialsSource>,
}

impl std::fmt::Debug for RedisBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackend")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

/// Configures a [`RedisBackend`].
///
/// Its `Debug` output masks the URL's password and shows only whether TLS
/// material was given, never the material.
///
/// # Examples
///
/// ```
/// use cachewright::backends::redis::RedisBackend;
/// use std::time::Duration;
///
/// let builder = RedisBackend::builder()
///     .url("redis://app:s3cret@10.0.0.5:6379/0")
///     .connection_timeout(Duration::from_millis(500));
/// let shown = format!("{builder:?}");
/// assert!(shown.contains("app:***@10.0.0.5") && !shown.contains("s3cret"));
/// assert!(builder.build().is_ok());
/// ```
#[derive(Default)]
#[must_use]
pub struct RedisBuilder {
    url: Option<String>,
    client: Option<Client>,
    connection_timeout: Option<Duration>,
    response_timeout: Option<Duration>,
    max_reconnect_delay: Option<Duration>,
    /// PEM: a CA to trust (`tls_root_cert`).
    tls_root: Option<Vec<u8>>,
    /// PEM: a client certificate and its key (`tls_client_identity`).
    tls_identity: Option<(Vec<u8>, Vec<u8>)>,
    credentials: Option<CredentialsSource>,
}

impl std::fmt::Debug for RedisBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBuilder")
            .field("url", &self.url.as_deref().map(crate::redact_url))
            .field("client", &self.client.is_some())
            .field("connection_timeout", &self.connection_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("max_reconnect_delay", &self.max_reconnect_delay)
            .field("tls_root_cert", &self.tls_root.is_some())
            .field("tls_client_identity", &self.tls_identity.is_some())
            .field("credentials", &self.credentials.is_some())
            .finish()
    }
}

impl RedisBuilder {
    /// Connect with a URL: `redis://[user][:password@]host[:port][/db]`, or
    /// `rediss://...` for TLS (with the `redis-tls` feature; the server's
    /// certificate is checked against the system's roots, or against
    /// [`tls_root_cert`](Self::tls_root_cert)).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{redis::RedisBackend, BackendError};
    ///
    /// assert!(RedisBackend::builder().url("redis://127.0.0.1:6379/0").build().is_ok());
    /// let err = RedisBackend::builder().url("http://:pw@host").build().unwrap_err();
    /// assert!(matches!(&err, BackendError::Config(m) if !m.contains("pw")));
    /// ```
    pub fn url(mut self, url: impl Into<String>) -> Self {
        self.url = Some(url.into());
        self
    }

    /// Use a client you built (custom credentials, TLS settings, ...).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::redis::RedisBackend;
    ///
    /// let client = redis::Client::open("redis://127.0.0.1:6379/0").unwrap();
    /// let backend = RedisBackend::builder().client(client).build();
    /// assert!(backend.is_ok(), "not connected yet");
    /// ```
    pub fn client(mut self, client: Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Trust the CA in `pem` (PEM-encoded) for a `rediss://` URL, instead of
    /// the system's roots: for servers with certificates of a private CA.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "redis-tls")] {
    /// use cachewright::backends::redis::RedisBackend;
    ///
    /// let ca = b"-----BEGIN CERTIFICATE-----\n...".to_vec(); // read from a file
    /// let redis = RedisBackend::builder()
    ///     .url("rediss://cache.internal:6380")
    ///     .tls_root_cert(ca);
    /// # let _ = redis;
    /// # }
    /// ```
    #[cfg(feature = "redis-tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-tls")))]
    pub fn tls_root_cert(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls_root = Some(pem.into());
        self
    }

    /// Present this client certificate and key (both PEM) to a server that
    /// asks for one (mutual TLS, `tls-auth-clients yes`).
    ///
    /// # Examples
    ///
    /// ```
    /// # #[cfg(feature = "redis-tls")] {
    /// use cachewright::backends::redis::RedisBackend;
    ///
    /// let (cert, key) = (b"-----BEGIN CERTIFICATE-----\n...".to_vec(), b"-----BEGIN PRIVATE KEY-----\n...".to_vec());
    /// let mutual = RedisBackend::builder()
    ///     .url("rediss://cache.internal:6380")
    ///     .tls_client_identity(cert, key);
    /// assert!(format!("{mutual:?}").contains("tls_client_identity: true"));
    /// // TLS material is for `rediss://` URLs only.
    /// let plain = RedisBackend::builder().url("redis://cache.internal").tls_client_identity(b"c".to_vec(), b"k".to_vec());
    /// assert!(plain.build().is_err());
    /// # }
    /// ```
    #[cfg(feature = "redis-tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis-tls")))]
    pub fn tls_client_identity(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls_identity = Some((cert_pem.into(), key_pem.into()));
        self
    }

    /// How long one connection attempt may take (default 1 s).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::redis::RedisBackend;
    /// use std::time::Duration;
    ///
    /// let redis = RedisBackend::builder()
    ///     .url("redis://127.0.0.1:6379")
    ///     .connection_timeout(Duration::from_millis(250))
    ///     .build();
    /// assert!(redis.is_ok());
    /// ```
    pub fn connection_timeout(mut self, d: Duration) -> Self {
        self.connection_timeout = Some(d);
        self
    }

    /// How long the connection waits for a reply before failing a request
    /// (default 1 s; the cache applies its own, smaller layer timeout).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::redis::RedisBackend;
    /// use std::time::Duration;
    ///
    /// let builder = RedisBackend::builder()
    ///     .url("redis://127.0.0.1:6379")
    ///     .response_timeout(Duration::from_millis(300));
    /// assert!(format!("{builder:?}").contains("response_timeout: Some(300ms)"));
    /// ```
    pub fn response_timeout(mut self, d: Duration) -> Self {
        self.response_timeout = Some(d);
        self
    }

    /// The longest pause between reconnection attempts (default 500 ms).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::redis::RedisBackend;
    /// use std::time::Duration;
    ///
    /// let builder = RedisBackend::builder()
    ///     .url("redis://127.0.0.1:6379")
    ///     .max_reconnect_delay(Duration::from_secs(2));
    /// assert!(format!("{builder:?}").contains("max_reconnect_delay: Some(2s)"));
    /// ```
    pub fn max_reconnect_delay(mut self, d: Duration) -> Self {
        self.max_reconnect_delay = Some(d);
        self
    }

    /// Ask `provider` for the user and password (or token) at every
    /// connect and reconnect, instead of taking them from the URL: for
    /// credentials that rotate (cloud IAM tokens, a vault lease). The
    /// invalidation bus's own connection asks it too.
    ///
    /// See [`Credentials`] for what it returns and how often it is asked.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::redis::{Credentials, RedisBackend};
    ///
    /// let redis = RedisBackend::builder()
    ///     .url("redis://127.0.0.1:6379/0")
    ///     .credentials(|| async {
    ///         // Read the current token from wherever it is rotated to.
    ///         let token = std::env::var("REDIS_TOKEN").unwrap_or_default();
    ///         Ok(Credentials::new("app", token))
    ///     });
    /// assert!(format!("{redis:?}").contains("credentials: true"));
    /// assert!(redis.build().is_ok(), "not asked before the first connect");
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
    /// [`BackendError::Config`] when both or neither of a URL and a client
    /// are given, the URL is not a Redis URL, a `rediss://` URL is given
    /// without the `redis-tls` feature, or TLS settings come with a client
    /// (configure TLS on the client you build, then).
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{redis::RedisBackend, BackendError};
    ///
    /// assert!(RedisBackend::builder().url("redis://127.0.0.1").build().is_ok());
    /// // A URL or a client is required.
    /// assert!(matches!(RedisBackend::builder().build(), Err(BackendError::Config(_))));
    /// ```
    pub fn build(self) -> Result<RedisBackend, BackendError> {
        let tls_settings = self.tls_root.is_some() || self.tls_identity.is_some();
        if tls_settings && self.client.is_some() {
            return Err(BackendError::Config(
                "TLS settings apply to a URL; set them on the client you pass instead".into(),
            ));
        }
        if let Some(url) = &self.url {
            if url.starts_with("rediss://") && !cfg!(feature = "redis-tls") {
                return Err(BackendError::Config(format!(
                    "`{}` asks for TLS: enable cachewright's `redis-tls` feature",
                    crate::redact_url(url)
                )));
            }
            if tls_settings && !url.starts_with("rediss://") {
                return Err(BackendError::Config(format!(
                    "TLS settings given for `{}`, which is not a `rediss://` URL",
                    crate::redact_url(url)
                )));
            }
        }
        #[cfg(feature = "redis-tls")]
        {
            // The redis crate's rustls needs a process-wide crypto provider;
            // one installed by the application already stays.
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let client = match (self.url, self.client) {
            (Some(_), Some(_)) => {
                return Err(BackendError::Config(
                    "give the Redis backend a URL or a client, not both".into(),
                ))
            }
            (None, None) => {
                return Err(BackendError::Config(
                    "the Redis backend needs a URL (`.url(..)`) or a client (`.client(..)`)".into(),
                ))
            }
            #[cfg(feature = "redis-tls")]
            (Some(url), None) if tls_settings => Client::build_with_tls(
                url.as_str(),
                redis::TlsCertificates {
                    client_tls: self.tls_identity.map(|(client_cert, client_key)| {
                        redis::ClientTlsConfig {
                            client_cert,
                            client_key,
                        }
                    }),
                    root_cert: self.tls_root,
                },
            )
            .map_err(|e| bad_url(&url, e))?,
            (Some(url), None) => Client::open(url.as_str()).map_err(|e| bad_url(&url, e))?,
            (None, Some(c)) => c,
        };
        let target = format!("{:?}", client.get_connection_info().addr());
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(
                self.connection_timeout.unwrap_or(Duration::from_secs(1)),
            ))
            .set_response_timeout(Some(
                self.response_timeout.unwrap_or(Duration::from_secs(1)),
            ))
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(
                self.max_reconnect_delay
                    .unwrap_or(Duration::from_millis(500)),
            )
            .set_number_of_retries(6);
        let config = match &self.credentials {
            Some(source) => config.set_credentials_provider(source.clone()),
            None => config,
        };
        let handle = crate::io::handle().ok_or_else(|| {
            BackendError::Config("cachewright's i/o runtime could not be started".into())
        })?;
        // The connection's driver task lives on cachewright's runtime, so it works
        // from sync code and from any user runtime alike.
        let _entered = handle.enter();
        let conn =
            ConnectionManager::new_lazy_with_config(client.clone(), config).map_err(|e| {
                BackendError::Config(format!("could not set up the Redis connection: {e}"))
            })?;
        Ok(RedisBackend {
            conn,
            dedupe: Script::new(DEDUPE),
            target,
            client,
            credentials: self.credentials,
        })
    }
}

/// A URL that does not parse, as a configuration error. The URL is not
/// repeated: where its parts begin and end, and so where its password is,
/// is unknown.
pub(crate) fn bad_url(url: &str, e: RedisError) -> BackendError {
    let scheme = url.split_once("://").map_or("", |(s, _)| s);
    BackendError::Config(crate::url::scrub(
        &format!("the `{scheme}://` URL given is not a usable Redis URL: {e}"),
        url,
    ))
}

fn err(e: RedisError) -> BackendError {
    classify(NAME, e)
}

/// A failed command of `backend`: the connection's fault, or the server's
/// answer.
pub(crate) fn classify(backend: &str, e: RedisError) -> BackendError {
    if e.is_io_error() || e.is_connection_dropped() || e.is_timeout() {
        BackendError::Connection {
            backend: backend.into(),
            source: Box::new(e),
        }
    } else {
        BackendError::Refused {
            backend: backend.into(),
            message: e.to_string(),
        }
    }
}

/// The longest expiry given to Redis: a century, as good as forever.
/// Redis refuses (an error, not a cap) an expiry whose time overflows its
/// 64-bit millisecond clock, which `Duration::MAX` does.
const MAX_PX: u64 = 100 * 365 * 86_400 * 1_000;

pub(crate) fn px(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_PX)
}

/// Escapes glob characters for `SCAN MATCH`.
pub(crate) fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 1);
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

impl RedisBackend {
    /// A builder; give it a URL or a client.
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::redis::RedisBackend;
    ///
    /// let redis = RedisBackend::builder().url("redis://127.0.0.1:6379/1").build().unwrap();
    /// assert!(format!("{redis:?}").contains("RedisBackend"));
    /// ```
    pub fn builder() -> RedisBuilder {
        RedisBuilder::default()
    }

    /// A backend for `url`, with the default settings.
    ///
    /// # Errors
    ///
    /// As [`RedisBuilder::build`].
    ///
    /// # Examples
    ///
    /// ```
    /// use cachewright::backends::{redis::RedisBackend, Backend};
    ///
    /// let redis = RedisBackend::from_url("redis://:pw@127.0.0.1:6379/0").unwrap();
    /// assert_eq!(redis.name(), "redis");
    /// assert!(redis.native_get_many(), "MGET");
    /// assert!(RedisBackend::from_url("not a url").is_err());
    /// ```
    pub fn from_url(url: &str) -> Result<Self, BackendError> {
        Self::builder().url(url).build()
    }

    /// The connection, for commands of your own (it is cheap to clone).
    ///
    /// The backend runs its own commands on cachewright's I/O runtime, where
    /// the connection is opened and reopened; a command of yours that opens
    /// it (the first command of all, made before the cache's) binds its
    /// socket to your runtime instead. Run yours there too if several
    /// runtimes share the backend:
    /// `cachewright::backends::io::run(async move { cmd.query_async(&mut conn).await })`.
    ///
    /// # Examples
    ///
    /// Needs a server, so it is only compiled:
    ///
    /// ```no_run
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use cachewright::backends::{io, redis::RedisBackend};
    ///
    /// let backend = RedisBackend::from_url("redis://127.0.0.1:6379/0").unwrap();
    /// let mut conn = backend.connection();
    /// let pong: String = io::run(async move { redis::cmd("PING").query_async(&mut conn).await })
    ///     .await
    ///     .unwrap()
    ///     .unwrap();
    /// assert_eq!(pong, "PONG");
    /// # }
    /// ```
    pub fn connection(&self) -> ConnectionManager {
        self.conn.clone()
    }
}

/// Runs one operation on `conn` on cachewright's I/O runtime, awaited from
/// wherever the caller is. The connection's socket is registered with the
/// reactor of the runtime that opened it, and its driver task lives there:
/// opened from a caller's runtime (the connection is made lazily, by the
/// first operation), it would serve other runtimes only while that one is
/// driven, and die with it. On the I/O runtime, every runtime (and sync
/// callers) share one connection.
async fn on_io<T, Fut>(
    conn: &ConnectionManager,
    op: impl FnOnce(ConnectionManager) -> Fut,
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

/// One step of a `SCAN ... MATCH pattern COUNT 500` walk: the next cursor
/// (0: done) and the keys of this step.
async fn scan_step(
    c: &mut ConnectionManager,
    cursor: u64,
    pattern: &str,
) -> Result<(u64, Vec<String>), RedisError> {
    redis::cmd("SCAN")
        .arg(cursor)
        .arg("MATCH")
        .arg(pattern)
        .arg("COUNT")
        .arg(500)
        .query_async(c)
        .await
}

#[async_trait]
impl Backend for RedisBackend {
    fn name(&self) -> &str {
        NAME
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, BackendError> {
        let cmd = redis::cmd("GET").arg(key).to_owned();
        on_io(
            &self.conn,
            |mut c| async move { cmd.query_async(&mut c).await },
        )
        .await
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), BackendError> {
        let cmd = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("PX")
            .arg(px(ttl))
            .to_owned();
        on_io(&self.conn, |mut c| async move {
            cmd.query_async::<()>(&mut c).await
        })
        .await
    }

    async fn delete(&self, key: &str) -> Result<bool, BackendError> {
        let cmd = redis::cmd("DEL").arg(key).to_owned();
        let n: i64 = on_io(
            &self.conn,
            |mut c| async move { cmd.query_async(&mut c).await },
        )
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
        let cmd = redis::cmd("MGET").arg(keys).to_owned();
        on_io(
            &self.conn,
            |mut c| async move { cmd.query_async(&mut c).await },
        )
        .await
    }

    async fn set_many(&self, items: Vec<(String, Vec<u8>, Duration)>) -> Result<(), BackendError> {
        if items.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for (k, v, ttl) in items {
            pipe.cmd("SET")
                .arg(k)
                .arg(v)
                .arg("PX")
                .arg(px(ttl))
                .ignore();
        }
        on_io(&self.conn, |mut c| async move {
            pipe.query_async::<()>(&mut c).await
        })
        .await
    }

    async fn raise_many(&self, items: Vec<(String, u64, Duration)>) -> Result<(), BackendError> {
        if items.is_empty() {
            return Ok(());
        }
        // On the I/O runtime, as every operation: a connection opened here
        // must not belong to the caller's runtime.
        on_io(&self.conn, |mut c| async move {
            let script = Script::new(RAISE);
            // Each raise runs by the script's hash (EVALSHA), falling back
            // to the full script if the server lost it.
            for (k, stamp, ttl) in items {
                script
                    .key(k)
                    .arg(stamp)
                    .arg(px(ttl))
                    .invoke_async::<i64>(&mut c)
                    .await?;
            }
            Ok(())
        })
        .await
    }

    async fn set_if_absent(
        &self,
        key: &str,
        value: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, BackendError> {
        let cmd = redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("NX")
            .arg("PX")
            .arg(px(ttl))
            .to_owned();
        let r: Option<String> = on_io(
            &self.conn,
            |mut c| async move { cmd.query_async(&mut c).await },
        )
        .await?;
        Ok(r.is_some())
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
        let (script, key, range) = (self.dedupe.clone(), key.to_owned(), dedupe.hash.clone());
        let wrote: i64 = on_io(&self.conn, |mut c| async move {
            script
                .key(key)
                .arg(value)
                .arg(px(ttl))
                .arg(range.start)
                .arg(range.end - 1)
                .arg(hash)
                .arg(header)
                .invoke_async(&mut c)
                .await
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
        let n: i64 = on_io(&self.conn, |mut c| async move {
            Script::new(RENEW_IF)
                .key(key)
                .arg(token)
                .arg(px(ttl))
                .invoke_async(&mut c)
                .await
        })
        .await?;
        Ok(n == 1)
    }

    async fn delete_if(&self, key: &str, token: &[u8]) -> Result<bool, BackendError> {
        let (key, token) = (key.to_owned(), token.to_vec());
        let n: i64 = on_io(&self.conn, |mut c| async move {
            Script::new(DELETE_IF)
                .key(key)
                .arg(token)
                .invoke_async(&mut c)
                .await
        })
        .await?;
        Ok(n == 1)
    }

    fn bus(&self) -> Option<std::sync::Arc<dyn Bus>> {
        Some(std::sync::Arc::new(RedisBus {
            client: self.client.clone(),
            conn: self.conn.clone(),
            credentials: self.credentials.clone(),
        }))
    }

    async fn scan(
        &self,
        prefix: &str,
        suffix: &str,
        limit: usize,
    ) -> Result<Vec<crate::ScannedKey>, BackendError> {
        // `[^~]`: not cachewright's watermarks and leases (`prefix~...`).
        let pattern = format!("{}[^~]*{}", glob_escape(prefix), glob_escape(suffix));
        on_io(&self.conn, |mut c| async move {
            let mut cursor: u64 = 0;
            let mut keys: Vec<String> = Vec::new();
            loop {
                let (next, found) = scan_step(&mut c, cursor, &pattern).await?;
                keys.extend(found);
                if next == 0 || keys.len() >= limit {
                    break;
                }
                cursor = next;
            }
            // SCAN may return a key twice across a rehash.
            keys.sort_unstable();
            keys.dedup();
            keys.truncate(limit);
            let mut pipe = redis::pipe();
            for k in &keys {
                pipe.cmd("PTTL").arg(k);
            }
            let ttls: Vec<i64> = if keys.is_empty() {
                Vec::new()
            } else {
                pipe.query_async(&mut c).await?
            };
            // -2: gone since the scan; -1: no expiry.
            Ok(keys
                .into_iter()
                .zip(ttls)
                .filter(|&(_, t)| t != -2)
                .map(|(k, t)| {
                    let ttl = u64::try_from(t).ok().map(Duration::from_millis);
                    crate::ScannedKey::new(k, ttl)
                })
                .collect())
        })
        .await
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, BackendError> {
        let pattern = format!("{}*", glob_escape(prefix));
        on_io(&self.conn, |mut c| async move {
            let mut cursor: u64 = 0;
            let mut deleted = 0u64;
            loop {
                let (next, keys) = scan_step(&mut c, cursor, &pattern).await?;
                if !keys.is_empty() {
                    let n: u64 = redis::cmd("UNLINK").arg(&keys).query_async(&mut c).await?;
                    deleted += n;
                }
                if next == 0 {
                    return Ok(deleted);
                }
                cursor = next;
            }
        })
        .await
    }
}

/// Redis pub/sub as an invalidation bus: publishes on the backend's
/// multiplexed connection, listens on a dedicated connection of its own that
/// is re-established (and reported `Disconnected`/`Connected`) whenever it
/// breaks or stops answering the `PING` it is sent every second (a
/// connection that died silently: TCP keepalive is off by default).
///
/// # Examples
///
/// ```
/// use cachewright::backends::{redis::RedisBackend, Backend};
/// use cachewright::{Cache, LayerConfig};
///
/// let redis = RedisBackend::from_url("redis://127.0.0.1:6379/0").unwrap();
/// let bus = redis.bus().expect("Redis brings its pub/sub");
/// assert!(format!("{bus:?}").starts_with("RedisBus"));
/// // A cache over this layer uses it for invalidations by default.
/// let cache = Cache::builder().layer(LayerConfig::new(redis)).build();
/// assert!(cache.bus_stats().configured);
/// ```
pub struct RedisBus {
    client: Client,
    conn: ConnectionManager,
    credentials: Option<CredentialsSource>,
}

impl std::fmt::Debug for RedisBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBus").finish_non_exhaustive()
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, channel: &str, payload: Vec<u8>) -> Result<(), BackendError> {
        let cmd = redis::cmd("PUBLISH").arg(channel).arg(payload).to_owned();
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
        let (client, credentials) = (self.client.clone(), self.credentials.clone());
        let channels = channels.to_vec();
        let label = channels.first().cloned().unwrap_or_default();
        listen(label, sink, CONNECT_BUDGET, move || {
            let (client, credentials, channels) =
                (client.clone(), credentials.clone(), channels.clone());
            async move {
                let client = match &credentials {
                    Some(source) => {
                        let info = client.get_connection_info().clone();
                        Client::open(source.apply(info).await?)?
                    }
                    None => client,
                };
                let mut ps = client.get_async_pubsub().await?;
                ps.subscribe(&channels).await?;
                let (sink, stream) = ps.split();
                // A subscription that died silently (a NAT or firewall that
                // dropped the connection, a frozen server) sends nothing:
                // the periodic PING notices it.
                Ok(watched(
                    stream.map(|msg| msg.get_payload_bytes().to_vec()),
                    move || {
                        let mut sink = sink.clone();
                        async move { sink.ping::<redis::Value>().await.map(|_| ()) }
                    },
                ))
            }
        });
    }
}

/// The messages of one subscription, until its connection breaks.
pub(crate) type Messages = futures_util::stream::BoxStream<'static, Vec<u8>>;

/// How long one standalone subscription attempt may take.
const CONNECT_BUDGET: Duration = Duration::from_secs(2);

/// How often a subscription's connection is checked (a `PING` on it).
pub(crate) const HEALTH_EVERY: Duration = Duration::from_secs(1);

/// How long a check may take before the subscription is taken for dead:
/// well above a busy server's answer, well below a lease's worth of
/// silence going unnoticed for good.
pub(crate) const HEALTH_TIMEOUT: Duration = Duration::from_secs(3);

/// `messages`, ended (so that the bus reports `Disconnected` and subscribes
/// again) when `check` fails or does not answer within [`HEALTH_TIMEOUT`];
/// it runs every [`HEALTH_EVERY`]. Without it, a subscription whose
/// connection died silently (no FIN, no RST: a dropped NAT entry, a frozen
/// server; TCP keepalive is off by default) would wait for messages forever
/// and never be made again. Messages that arrive during a check wait in the
/// connection's queue, in order.
pub(crate) fn watched<S, C, CF>(messages: S, check: C) -> Messages
where
    S: futures_util::Stream<Item = Vec<u8>> + Send + 'static,
    C: FnMut() -> CF + Send + 'static,
    CF: std::future::Future<Output = Result<(), RedisError>> + Send + 'static,
{
    let mut every =
        tokio::time::interval_at(tokio::time::Instant::now() + HEALTH_EVERY, HEALTH_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    futures_util::stream::unfold(
        (Box::pin(messages), check, every),
        |(mut messages, mut check, mut every)| async move {
            loop {
                tokio::select! {
                    m = messages.next() => return m.map(|p| (p, (messages, check, every))),
                    _ = every.tick() => {
                        match tokio::time::timeout(HEALTH_TIMEOUT, check()).await {
                            Ok(Ok(())) => {}
                            Ok(Err(e)) => {
                                tracing::debug!(error = %e, "the invalidation bus's subscription failed its check");
                                return None;
                            }
                            Err(_) => {
                                tracing::debug!("the invalidation bus's subscription did not answer its check");
                                return None;
                            }
                        }
                    }
                }
            }
        },
    )
    .boxed()
}

/// Listens in the background (on the bus runtime) through subscriptions
/// that `connect` makes, one after another: each `Connected`, its messages,
/// then `Disconnected` when it breaks, and after a short pause (doubling up
/// to 500 ms) the next. A failed attempt is reported as `Unreachable`, with
/// the server's error code or the error's kind (never an address or a
/// secret), and warned about on the first and every hundredth failure.
/// Stops as soon as `sink` returns `false`. Both Redis buses (standalone
/// and cluster) listen through this one loop; `budget` bounds one attempt
/// (a cluster's covers trying several nodes in turn).
pub(crate) fn listen<C, Fut>(label: String, sink: BusSink, budget: Duration, connect: C)
where
    C: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<Messages, RedisError>> + Send + 'static,
{
    let Some(handle) = crate::io::bus_handle().or_else(crate::io::handle) else {
        tracing::error!("no i/o runtime: the invalidation bus cannot listen");
        let _ = sink(BusEvent::Disconnected);
        return;
    };
    let channel = label;
    handle.spawn(async move {
        let mut pause = Duration::from_millis(50);
        let mut failures = 0u64;
        loop {
            let why = match tokio::time::timeout(budget, connect()).await {
                Ok(Ok(mut messages)) => {
                    failures = 0;
                    pause = Duration::from_millis(50);
                    if !sink(BusEvent::Connected) {
                        return;
                    }
                    while let Some(payload) = messages.next().await {
                        if !sink(BusEvent::Message(payload)) {
                            return;
                        }
                    }
                    tracing::warn!(channel, "invalidation bus disconnected; the in-process layer is not trusted until it is back");
                    if !sink(BusEvent::Disconnected) {
                        return;
                    }
                    None
                }
                // The server's error code (NOPERM for an ACL that denies
                // pub/sub) or the kind: never the URL.
                Ok(Err(e)) => Some(
                    e.code()
                        .map_or_else(|| format!("{:?}", e.kind()), str::to_owned),
                ),
                Err(_) => Some("connecting timed out".to_owned()),
            };
            if let Some(why) = why {
                failures += 1;
                if !sink(BusEvent::Unreachable(why)) {
                    return;
                }
                if failures == 1 || failures % 100 == 0 {
                    tracing::warn!(channel, failures, "the invalidation bus cannot connect; the in-process layer is not trusted until it does");
                }
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    });
}

/// A user and a password (or a token in the password's place) for Redis,
/// as a credentials provider returns them
/// ([`RedisBuilder::credentials`], and the cluster builder's).
///
/// The provider is asked when a connection is made: the first, every
/// reconnection after a broken connection or a restarted server, a cluster
/// node's connection (one per node, and again after a failover), and the
/// invalidation bus's own connection. It is asked by one connect at a
/// time: connects made while it answers, and within 250 ms after (a cluster
/// connects to all its nodes at once), share its answer, a failure
/// included, so it is asked once per burst, and again at the next connect
/// after that. The `redis` crate also re-sends the answer on the fresh
/// connection once (a second `AUTH`, harmless).
///
/// It runs on a small runtime of its own (one thread, started when a
/// provider is first asked), never on cachewright's I/O runtime; an answer
/// that takes longer than 10 s, an error, or a panic fails that connect
/// (retried like any failed connect), never the process. It must not
/// block: read files with `tokio::fs`, and wrap blocking SDK calls in
/// `tokio::task::spawn_blocking`, or a slow answer delays every connect.
///
/// Its `Debug` output shows the user, never the password.
///
/// # Examples
///
/// ```
/// use cachewright::backends::redis::Credentials;
///
/// let c = Credentials::new("app", "s3cret");
/// assert_eq!(c.username(), Some("app"));
/// assert!(!format!("{c:?}").contains("s3cret"));
/// // `requirepass` servers (no ACL users): the `default` user.
/// assert_eq!(Credentials::password_only("s3cret").username(), None);
/// ```
#[derive(Clone)]
pub struct Credentials {
    username: Option<String>,
    password: String,
}

impl Credentials {
    /// `username` with `password` (or a token): `AUTH username password`.
    ///
    /// # Examples
    ///
    /// ```
    /// let c = cachewright::backends::redis::Credentials::new("app", "token-123");
    /// assert_eq!(c.username(), Some("app"));
    /// ```
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: Some(username.into()),
            password: password.into(),
        }
    }

    /// A password for the `default` user (`requirepass`).
    ///
    /// # Examples
    ///
    /// ```
    /// let c = cachewright::backends::redis::Credentials::password_only("pw");
    /// assert_eq!(c.username(), None);
    /// ```
    pub fn password_only(password: impl Into<String>) -> Self {
        Credentials {
            username: None,
            password: password.into(),
        }
    }

    /// The user, if one was given (`None`: `default`).
    ///
    /// # Examples
    ///
    /// ```
    /// let c = cachewright::backends::redis::Credentials::new("app", "pw");
    /// assert_eq!(c.username(), Some("app"));
    /// ```
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"***")
            .finish()
    }
}

/// Why a credentials provider gave no credentials (your error, boxed).
pub type CredentialsError = Box<dyn std::error::Error + Send + Sync>;

type ProvideFn = dyn Fn() -> futures_util::future::BoxFuture<'static, Result<Credentials, CredentialsError>>
    + Send
    + Sync;

/// A credentials provider, as the `redis` crate asks it (a stream whose
/// first item is used by each new connection), with the answer of the last
/// 250 ms shared.
#[derive(Clone)]
pub(crate) struct CredentialsSource {
    provide: std::sync::Arc<ProvideFn>,
    /// The last answer (a failure too) and when it came. An async lock, held
    /// while the provider is asked: connects that arrive meanwhile wait for
    /// that one answer instead of asking again (single flight).
    recent: std::sync::Arc<tokio::sync::Mutex<Option<(std::time::Instant, Answer)>>>,
}

/// A provider's answer, shareable (its error as text).
type Answer = Result<Credentials, String>;

/// How long one answer of a provider serves further connects.
const SHARED_FOR: Duration = Duration::from_millis(250);

/// How long a provider may take to answer.
const PROVIDER_LIMIT: Duration = Duration::from_secs(10);

/// Where providers run: user code never runs on the I/O runtime (a provider
/// that blocks would stall every connection), and a provider that panics
/// fails its connect rather than a runtime's task. One thread, started the
/// first time a provider is asked.
fn provider_runtime() -> Option<tokio::runtime::Handle> {
    static RT: std::sync::OnceLock<Option<tokio::runtime::Runtime>> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cachewright-credentials")
            .enable_all()
            .build()
            .map_err(|e| {
                tracing::error!(error = %e, "cachewright could not start the runtime for credentials providers");
            })
            .ok()
    })
    .as_ref()
    .map(|rt| rt.handle().clone())
}

impl CredentialsSource {
    pub(crate) fn new<F, Fut>(provider: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Credentials, CredentialsError>> + Send + 'static,
    {
        CredentialsSource {
            provide: std::sync::Arc::new(move || Box::pin(provider())),
            recent: Default::default(),
        }
    }

    /// Asks the provider once, on its own runtime, within [`PROVIDER_LIMIT`]:
    /// a panic or a hang is an error like any other.
    async fn ask(&self) -> Answer {
        let Some(rt) = provider_runtime() else {
            return Err("no runtime to ask the credentials provider on".into());
        };
        let provide = self.provide.clone();
        let task = rt.spawn(async move {
            match tokio::time::timeout(PROVIDER_LIMIT, async move { provide().await }).await {
                Ok(Ok(c)) => Ok(c),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!(
                    "it did not answer within {}s",
                    PROVIDER_LIMIT.as_secs()
                )),
            }
        });
        match task.await {
            Ok(answer) => answer,
            Err(e) if e.is_panic() => Err("it panicked".into()),
            Err(_) => Err("it was cancelled".into()),
        }
    }

    /// The current credentials: the last answer (or failure) if it is
    /// recent, else the provider's new one; one question at a time.
    pub(crate) async fn current(&self) -> Result<Credentials, RedisError> {
        let mut recent = self.recent.lock().await;
        let answer = match recent.as_ref() {
            Some((at, answer)) if at.elapsed() < SHARED_FOR => answer.clone(),
            _ => {
                let answer = self.ask().await;
                *recent = Some((std::time::Instant::now(), answer.clone()));
                answer
            }
        };
        drop(recent);
        answer.map_err(|why| {
            RedisError::from((
                redis::ErrorKind::AuthenticationFailed,
                "the credentials provider failed",
                why,
            ))
        })
    }

    /// `info` with the current credentials in place of its own.
    pub(crate) async fn apply(
        &self,
        info: redis::ConnectionInfo,
    ) -> Result<redis::ConnectionInfo, RedisError> {
        let c = self.current().await?;
        let settings = info
            .redis_settings()
            .clone()
            .set_username(c.username.as_deref().unwrap_or("default"))
            .set_password(&c.password);
        Ok(info.set_redis_settings(settings))
    }
}

impl redis::StreamingCredentialsProvider for CredentialsSource {
    fn subscribe(
        &self,
    ) -> std::pin::Pin<
        Box<dyn futures_util::Stream<Item = redis::RedisResult<redis::BasicAuth>> + Send + 'static>,
    > {
        let source = self.clone();
        // One answer per connection; the stream then stays open (the
        // crate warns when a credentials stream ends).
        let first = futures_util::stream::once(async move {
            source.current().await.map(|c| {
                redis::BasicAuth::new(c.username.unwrap_or_else(|| "default".into()), c.password)
            })
        });
        Box::pin(first.chain(futures_util::stream::pending()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_and_client_together_is_a_configuration_error() {
        let client = Client::open("redis://127.0.0.1:1").unwrap();
        let e = RedisBackend::builder()
            .url("redis://127.0.0.1:1")
            .client(client)
            .build()
            .unwrap_err();
        assert!(matches!(e, BackendError::Config(m) if m.contains("not both")));
        assert!(matches!(
            RedisBackend::builder().build(),
            Err(BackendError::Config(_))
        ));
        assert!(matches!(
            RedisBackend::from_url("http://x"),
            Err(BackendError::Config(_))
        ));
    }

    #[test]
    fn passwords_stay_out_of_messages() {
        let b = RedisBackend::builder().url("redis://app:hunter2@127.0.0.1:1/0");
        let shown = format!("{b:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("app:***@"),
            "{shown}"
        );
        let e = RedisBackend::from_url("redis://:hunter2@127.0.0.1:notaport").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(!format!("{e:?}").contains("hunter2"), "{e:?}");
        assert_eq!(glob_escape("a*b?[c]"), "a\\*b\\?\\[c\\]");
    }

    #[test]
    fn credentials_are_shared_for_a_moment_then_asked_again() {
        let asked = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
        let count = asked.clone();
        let source = CredentialsSource::new(move || {
            let n = count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            async move { Ok(Credentials::new("app", format!("token-{n}"))) }
        });
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let info =
                redis::IntoConnectionInfo::into_connection_info("redis://127.0.0.1:1").unwrap();
            let first = source.apply(info.clone()).await.unwrap();
            let again = source.apply(info.clone()).await.unwrap();
            assert_eq!(first.redis_settings().username(), Some("app"));
            assert_eq!(first.redis_settings().password(), Some("token-0"));
            assert_eq!(again.redis_settings().password(), Some("token-0"), "shared");
            tokio::time::sleep(SHARED_FOR + Duration::from_millis(50)).await;
            let later = source.apply(info).await.unwrap();
            assert_eq!(
                later.redis_settings().password(),
                Some("token-1"),
                "asked again"
            );
        });
        assert_eq!(asked.load(std::sync::atomic::Ordering::SeqCst), 2);
        let failing = CredentialsSource::new(|| async { Err("vault sealed".into()) });
        let e = rt.block_on(failing.current()).unwrap_err();
        assert!(e.to_string().contains("vault sealed"), "{e}");
        let shown = format!("{:?}", Credentials::password_only("hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }

    #[test]
    fn credentials_are_asked_once_by_concurrent_connects_and_a_panic_is_an_error() {
        use std::sync::atomic::{AtomicU32, Ordering::SeqCst};
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        // Twenty connects at once while the provider takes its time: one
        // question, one answer for all.
        let asked = std::sync::Arc::new(AtomicU32::new(0));
        let count = asked.clone();
        let source = CredentialsSource::new(move || {
            count.fetch_add(1, SeqCst);
            async {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok(Credentials::new("app", "pw"))
            }
        });
        let answers = rt.block_on(futures_util::future::join_all((0..20).map(|_| {
            let s = source.clone();
            async move { s.current().await }
        })));
        assert!(answers
            .iter()
            .all(|a| a.as_ref().is_ok_and(|c| c.password == "pw")));
        assert_eq!(asked.load(SeqCst), 1, "single flight");

        // A failure is shared too: a burst of connects asks once.
        let asked = std::sync::Arc::new(AtomicU32::new(0));
        let count = asked.clone();
        let failing = CredentialsSource::new(move || {
            count.fetch_add(1, SeqCst);
            async { Err::<Credentials, _>("vault sealed".into()) }
        });
        let answers = rt.block_on(futures_util::future::join_all((0..5).map(|_| {
            let s = failing.clone();
            async move { s.current().await }
        })));
        assert!(answers.iter().all(Result::is_err));
        assert_eq!(asked.load(SeqCst), 1, "the failure was shared");

        // A provider that panics fails the connect, not the caller.
        let panicking = CredentialsSource::new(|| async {
            if true {
                panic!("provider bug");
            }
            Ok(Credentials::password_only("never"))
        });
        let e = rt.block_on(panicking.current()).unwrap_err();
        assert!(e.to_string().contains("panicked"), "{e}");
        // The provider ran off the caller's runtime and off the I/O runtime.
        let on = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        let seen = on.clone();
        let naming = CredentialsSource::new(move || {
            *seen.lock().unwrap() = std::thread::current().name().unwrap_or("").to_owned();
            async { Ok(Credentials::password_only("pw")) }
        });
        rt.block_on(naming.current()).unwrap();
        assert_eq!(on.lock().unwrap().as_str(), "cachewright-credentials");
    }

    #[test]
    fn builds_without_a_server() {
        // Nothing listens on port 1: building must still succeed (lazy).
        assert!(RedisBackend::from_url("redis://127.0.0.1:1").is_ok());
    }

    #[test]
    fn rediss_is_tls_with_the_feature_and_a_clear_error_without() {
        let r = RedisBackend::from_url("rediss://:secret@127.0.0.1:1");
        if cfg!(feature = "redis-tls") {
            assert!(r.is_ok());
        } else {
            let e = r.unwrap_err().to_string();
            assert!(e.contains("`redis-tls` feature"), "{e}");
            assert!(!e.contains("secret"), "the password is not logged: {e}");
        }
    }
}
