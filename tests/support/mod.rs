//! Test support: a real `redis-server` per test (or per binary), started on a
//! free loopback port and stopped by its PID. When `redis-server` is missing,
//! it is installed from Debian's packages (as CI runs as root); when that is
//! impossible the test fails loudly, it never skips.
#![allow(dead_code)]

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub mod child;
pub mod cluster;

/// One `redis-server` process owned by a test.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    _dir: tempfile::TempDir,
    tls: Option<Tls>,
    /// `requirepass`: clients must authenticate (the URL carries it).
    password: Option<String>,
}

/// TLS material made for one test server: a CA, a server certificate for
/// 127.0.0.1 signed by it, and a client certificate signed by it (PEM).
pub struct Tls {
    pub ca: String,
    pub client_cert: String,
    pub client_key: String,
    server_cert: String,
    server_key: String,
    /// Whether the server asks clients for a certificate.
    pub auth_clients: bool,
}

impl Tls {
    /// A fresh CA and certificates, made in process.
    pub fn generate(auth_clients: bool) -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "cachewright test CA");
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let leaf = |names: Vec<String>| {
            let key = KeyPair::generate().unwrap();
            let cert = CertificateParams::new(names)
                .unwrap()
                .signed_by(&key, &ca)
                .unwrap();
            (cert.pem(), key.serialize_pem())
        };
        let (server_cert, server_key) = leaf(vec!["127.0.0.1".into()]);
        let (client_cert, client_key) = leaf(vec!["cachewright-test-client".into()]);
        Tls {
            ca: ca.pem(),
            client_cert,
            client_key,
            server_cert,
            server_key,
            auth_clients,
        }
    }

    /// A client for `url` that trusts the CA (and, with the server asking
    /// for one, shows the client certificate).
    fn client(&self, url: &str) -> redis::Client {
        redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: self.auth_clients.then(|| redis::ClientTlsConfig {
                    client_cert: self.client_cert.clone().into_bytes(),
                    client_key: self.client_key.clone().into_bytes(),
                }),
                root_cert: Some(self.ca.clone().into_bytes()),
            },
        )
        .expect("a TLS client")
    }
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// How every test server runs: on loopback, in the foreground, keeping
/// nothing on disk.
pub const EPHEMERAL: &[&str] = &[
    "--bind",
    "127.0.0.1",
    "--save",
    "",
    "--appendonly",
    "no",
    "--daemonize",
    "no",
    "--protected-mode",
    "no",
];

/// The `redis-server` binary, installing it once if needed.
pub fn redis_server_binary() -> PathBuf {
    static INSTALL: Mutex<()> = Mutex::new(());
    if let Some(p) = find_in_path("redis-server") {
        return p;
    }
    let _g = INSTALL.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = find_in_path("redis-server") {
        return p;
    }
    eprintln!("redis-server not found; installing Debian's package redis-server");
    // Several test binaries may race for dpkg's lock: retry a few times.
    for attempt in 0..10 {
        let _ = Command::new("apt-get").arg("update").arg("-qq").status();
        let ok = Command::new("apt-get")
            .args([
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "redis-server",
            ])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if let Some(p) = find_in_path("redis-server") {
            return p;
        }
        if !ok {
            std::thread::sleep(Duration::from_secs(2 + attempt));
        }
    }
    panic!(
        "these tests need a real redis-server: it is not installed and `apt-get install redis-server` failed; install it and run again"
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl RedisServer {
    /// Starts a fresh server on a free port and waits until it answers.
    pub fn start() -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut s = RedisServer {
            child: None,
            port: free_port(),
            _dir: dir,
            tls: None,
            password: None,
        };
        s.spawn();
        s
    }

    /// Starts a server that requires `password` (`requirepass`); its
    /// [`url`](Self::url) carries it, as a deployment's URL would.
    pub fn start_with_password(password: &str) -> Self {
        let mut s = RedisServer::reserved();
        s.password = Some(password.to_string());
        s.spawn();
        s
    }

    /// Starts a server that speaks TLS only, with `tls`'s certificates.
    pub fn start_tls(tls: Tls) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let mut s = RedisServer {
            child: None,
            port: free_port(),
            _dir: dir,
            tls: Some(tls),
            password: None,
        };
        s.spawn();
        s
    }

    /// The TLS material of a server started with [`RedisServer::start_tls`].
    pub fn tls(&self) -> &Tls {
        self.tls.as_ref().expect("a TLS server")
    }

    /// A server that is not running yet (for "down at startup" tests).
    pub fn reserved() -> Self {
        RedisServer {
            child: None,
            port: free_port(),
            _dir: tempfile::tempdir().expect("a temp dir"),
            tls: None,
            password: None,
        }
    }

    fn spawn(&mut self) {
        let bin = redis_server_binary();
        let mut cmd = Command::new(bin);
        if let Some(tls) = &self.tls {
            let write = |name: &str, pem: &str| {
                let p = self._dir.path().join(name);
                std::fs::write(&p, pem).expect("certificate written");
                p
            };
            cmd.args(["--port", "0", "--tls-port", &self.port.to_string()])
                .arg("--tls-cert-file")
                .arg(write("server.pem", &tls.server_cert))
                .arg("--tls-key-file")
                .arg(write("server.key", &tls.server_key))
                .arg("--tls-ca-cert-file")
                .arg(write("ca.pem", &tls.ca))
                .args([
                    "--tls-auth-clients",
                    if tls.auth_clients { "yes" } else { "no" },
                ]);
        } else {
            cmd.args(["--port", &self.port.to_string()]);
        }
        if let Some(pw) = &self.password {
            cmd.args(["--requirepass", pw]);
        }
        let child = cmd
            .args(EPHEMERAL)
            .arg("--dir")
            .arg(self._dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "redis-server on port {} did not answer within 20 s",
            self.port
        );
    }

    fn client(&self) -> redis::Client {
        match &self.tls {
            Some(tls) => tls.client(&self.url()),
            None => redis::Client::open(self.url()).expect("url"),
        }
    }

    fn ping(&self) -> bool {
        self.client()
            .get_connection_with_timeout(Duration::from_millis(200))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_ok()
    }

    /// The server's URL (`rediss://` for a TLS server).
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        let auth = self
            .password
            .as_ref()
            .map_or(String::new(), |pw| format!(":{pw}@"));
        format!("{scheme}://{auth}127.0.0.1:{}/", self.port)
    }

    /// A connection for raw commands (what `redis-cli` would send).
    pub fn conn(&self) -> redis::Connection {
        self.client()
            .get_connection_with_timeout(Duration::from_secs(2))
            .expect("redis answers")
    }

    /// Kills the server (SIGKILL) and reaps it, so no zombie lingers.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Freezes the server (SIGSTOP): its sockets stay open and take
    /// bytes, nothing answers; a connection to it dies silently.
    pub fn pause(&self) {
        if let Some(c) = &self.child {
            signal(c.id(), "STOP");
        }
    }

    /// Lets a [`pause`](Self::pause)d server run again (SIGCONT).
    pub fn resume(&self) {
        if let Some(c) = &self.child {
            signal(c.id(), "CONT");
        }
    }

    /// Starts the server again on the same port (empty: it saves nothing).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts a server reserved with [`RedisServer::reserved`].
    pub fn start_now(&mut self) {
        self.spawn();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Sends `SIG<name>` to the process `pid` (with `kill`, no FFI).
pub fn signal(pid: u32, name: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{name} {pid} failed");
}

/// Waits until `cond` holds (background work on other threads or
/// processes). Fails after a generous bound; asserts nothing about time.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{what}: not reached within 30 s");
}
