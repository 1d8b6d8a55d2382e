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

/// One `redis-server` process owned by a test.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    _dir: tempfile::TempDir,
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

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
        };
        s.spawn();
        s
    }

    /// A server that is not running yet (for "down at startup" tests).
    pub fn reserved() -> Self {
        RedisServer {
            child: None,
            port: free_port(),
            _dir: tempfile::tempdir().expect("a temp dir"),
        }
    }

    fn spawn(&mut self) {
        let bin = redis_server_binary();
        let child = Command::new(bin)
            .args([
                "--port",
                &self.port.to_string(),
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
                "--dir",
            ])
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

    fn ping(&self) -> bool {
        redis::Client::open(self.url())
            .and_then(|c| c.get_connection_with_timeout(Duration::from_millis(200)))
            .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
            .is_ok()
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// A plain connection for raw commands (what `redis-cli` would send).
    pub fn conn(&self) -> redis::Connection {
        redis::Client::open(self.url())
            .expect("url")
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
