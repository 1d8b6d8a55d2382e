//! A local Redis Cluster: 3 masters with 1 replica each, six
//! `redis-server --cluster-enabled yes` processes on free loopback ports
//! (each with its own directory and cluster bus port), joined with
//! `redis-cli --cluster create`. Stopped by their PIDs on drop.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{find_in_path, redis_server_binary};

/// One node of a [`RedisCluster`].
struct Node {
    child: Option<Child>,
    port: u16,
    bus_port: u16,
    dir: tempfile::TempDir,
}

impl Node {
    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    fn conn(&self, timeout: Duration) -> Option<redis::Connection> {
        redis::Client::open(self.url())
            .ok()?
            .get_connection_with_timeout(timeout)
            .ok()
    }

    fn info(&self, section: &str) -> Option<String> {
        let mut c = self.conn(Duration::from_millis(300))?;
        match section {
            "cluster" => redis::cmd("CLUSTER").arg("INFO").query(&mut c).ok(),
            s => redis::cmd("INFO").arg(s).query(&mut c).ok(),
        }
    }

    fn alive(&self) -> bool {
        self.child.is_some()
    }

    /// Started and not killed by the test, yet no longer running.
    fn exited(&self) -> bool {
        // `try_wait` needs `&mut`; the PID's /proc entry says the same.
        self.child.as_ref().is_some_and(|c| {
            std::fs::read_to_string(format!("/proc/{}/stat", c.id()))
                .map_or(true, |stat| stat.split_whitespace().nth(2) == Some("Z"))
        })
    }
}

/// Every slot served, and a replica's link to its master up.
fn healthy(n: &Node) -> bool {
    let Some(cluster) = n.info("cluster") else {
        return false;
    };
    let Some(repl) = n.info("replication") else {
        return false;
    };
    field(&cluster, "cluster_state") == Some("ok")
        && field(&cluster, "cluster_slots_ok") == Some("16384")
        && (field(&repl, "role") == Some("master")
            || field(&repl, "master_link_status") == Some("up"))
}

/// Six nodes, three of them masters, every slot served.
pub struct RedisCluster {
    nodes: Vec<Node>,
    /// `--cluster-node-timeout` (ms): how long a node may not answer before
    /// it is taken for failed (and a master is replaced by its replica).
    node_timeout: u32,
}

/// The node timeout of [`RedisCluster::start`]: long enough that a busy
/// 2-core machine (a test build, other clusters) causes no failover.
const CALM_NODE_TIMEOUT: u32 = 5_000;

/// How long `redis-cli --cluster create` may take before it is killed and
/// the start retried.
const CREATE_LIMIT: Duration = Duration::from_secs(60);

/// `redis-cli`, which comes with Debian's `redis-server` (its dependency
/// `redis-tools`); installed if missing.
fn redis_cli_binary() -> PathBuf {
    redis_server_binary();
    if let Some(p) = find_in_path("redis-cli") {
        return p;
    }
    let _ = Command::new("apt-get")
        .args([
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "redis-tools",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status();
    find_in_path("redis-cli").unwrap_or_else(|| {
        panic!("the cluster tests need redis-cli: install Debian's redis-tools and run again")
    })
}

/// A field of `INFO`/`CLUSTER INFO` text.
fn field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
        .map(str::trim)
}

impl RedisCluster {
    /// Starts six nodes, creates the cluster, and waits until every node
    /// reports `cluster_state:ok` and every replica is in sync. A start that
    /// fails (a port taken between being picked and being bound, a node that
    /// exits) is retried on new ports, twice at most.
    pub fn start() -> Self {
        Self::start_with(CALM_NODE_TIMEOUT)
    }

    /// As [`start`](Self::start), with a 1 s node timeout: a killed master
    /// is replaced within seconds (failover tests).
    pub fn start_fast_failover() -> Self {
        Self::start_with(1_000)
    }

    fn start_with(node_timeout: u32) -> Self {
        let mut why = String::new();
        for _ in 0..3 {
            let mut cluster = RedisCluster::reserved();
            cluster.node_timeout = node_timeout;
            match cluster.try_start() {
                Ok(()) => return cluster,
                Err(e) => {
                    eprintln!("the local Redis Cluster did not start ({e}); trying new ports");
                    why = e;
                }
            }
        }
        panic!("the local Redis Cluster did not start in 3 attempts: {why}");
    }

    /// Six nodes' ports and directories, nothing started yet (for "down at
    /// startup" tests): [`url`](Self::url) already names them. The twelve
    /// ports (clients and cluster bus) are picked while all are held, so
    /// they differ.
    pub fn reserved() -> Self {
        let held: Vec<std::net::TcpListener> = (0..12)
            .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port"))
            .collect();
        let ports: Vec<u16> = held
            .iter()
            .map(|l| l.local_addr().expect("a bound port").port())
            .collect();
        drop(held);
        let nodes = ports
            .chunks(2)
            .map(|p| Node {
                child: None,
                port: p[0],
                bus_port: p[1],
                dir: tempfile::tempdir().expect("a temp dir"),
            })
            .collect();
        RedisCluster {
            nodes,
            node_timeout: CALM_NODE_TIMEOUT,
        }
    }

    /// Starts a cluster made with [`reserved`](Self::reserved). Its ports
    /// are already in the URL a test gave out, so a start that fails (one
    /// of them taken meanwhile: EADDRINUSE, a node that exits) is retried
    /// on the same ports, with fresh directories, after a pause, twice.
    pub fn start_now(&mut self) {
        let mut why = String::new();
        for attempt in 0..3 {
            if attempt > 0 {
                self.stop_all();
                for n in &mut self.nodes {
                    n.dir = tempfile::tempdir().expect("a temp dir");
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            match self.try_start() {
                Ok(()) => return,
                Err(e) => {
                    eprintln!("the local Redis Cluster did not start ({e}); trying again");
                    why = e;
                }
            }
        }
        panic!("the local Redis Cluster did not start in 3 attempts: {why}");
    }

    fn stop_all(&mut self) {
        for n in &mut self.nodes {
            if let Some(mut c) = n.child.take() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }

    fn try_start(&mut self) -> Result<(), String> {
        let bin = redis_server_binary();
        let cli = redis_cli_binary();
        let node_timeout = self.node_timeout;
        for node in &mut self.nodes {
            node.child = Some(spawn(&bin, node, node_timeout));
        }
        self.wait("every node answers", Duration::from_secs(20), |n| {
            n.conn(Duration::from_millis(200)).is_some()
        })?;
        // Its output goes to a file (a pipe nobody reads could fill up and
        // stall it); it is killed if it hangs (a node that never agrees).
        let log_path = self.nodes[0].dir.path().join("cluster-create.log");
        let log = std::fs::File::create(&log_path).map_err(|e| format!("a log file: {e}"))?;
        let err_log = log.try_clone().map_err(|e| format!("a log file: {e}"))?;
        let mut create = Command::new(cli)
            .arg("--cluster")
            .arg("create")
            .args(self.nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)))
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err_log)
            .spawn()
            .map_err(|e| format!("redis-cli does not run: {e}"))?;
        let deadline = Instant::now() + CREATE_LIMIT;
        let status = loop {
            match create.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Ok(None) | Err(_) => {
                    let _ = create.kill();
                    let _ = create.wait();
                    return Err(format!(
                        "redis-cli --cluster create did not finish within {CREATE_LIMIT:?}"
                    ));
                }
            }
        };
        if !status.success() {
            return Err(format!(
                "redis-cli --cluster create failed: {}",
                std::fs::read_to_string(&log_path).unwrap_or_default()
            ));
        }
        self.wait(
            "cluster_state:ok on every node, replicas in sync",
            Duration::from_secs(30),
            healthy,
        )
    }

    /// Waits until every live node says `cluster_state:ok` with all 16384
    /// slots served, and every live replica's link to its master is up.
    pub fn wait_healthy(&self) {
        if let Err(e) = self.wait(
            "cluster_state:ok on every node, replicas in sync",
            Duration::from_secs(60),
            healthy,
        ) {
            panic!("the local Redis Cluster: {e}");
        }
    }

    /// Waits until `ok` holds on every live node; fails early when a node
    /// that should run has exited, and says what each node reported.
    fn wait(&self, what: &str, limit: Duration, ok: impl Fn(&Node) -> bool) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(dead) = self.nodes.iter().find(|n| n.exited()) {
                return Err(format!("the node on port {} exited", dead.port));
            }
            if self.nodes.iter().filter(|n| n.alive()).all(&ok) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let states: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.alive())
            .map(|n| {
                let c = n.info("cluster").unwrap_or_default();
                let r = n.info("replication").unwrap_or_default();
                format!(
                    "{}: state {:?} slots {:?} role {:?} link {:?}",
                    n.port,
                    field(&c, "cluster_state"),
                    field(&c, "cluster_slots_ok"),
                    field(&r, "role"),
                    field(&r, "master_link_status")
                )
            })
            .collect();
        Err(format!("{what}: not reached within {limit:?}; {states:?}"))
    }

    /// The seed list as `CACHEWRIGHT_REDIS_URL` takes it:
    /// `redis://127.0.0.1:p1,127.0.0.1:p2,...` (every node).
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect();
        format!("redis://{}", hosts.join(","))
    }

    /// Each node's URL.
    pub fn node_urls(&self) -> Vec<String> {
        self.nodes.iter().map(Node::url).collect()
    }

    /// The live masters' ports.
    pub fn master_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.alive())
            .filter(|n| {
                n.info("replication")
                    .is_some_and(|r| field(&r, "role") == Some("master"))
            })
            .map(|n| n.port)
            .collect()
    }

    /// The port of the live master that serves `key`'s slot.
    pub fn master_of(&self, key: &str) -> u16 {
        let port = self.master_ports()[0];
        let mut c = self.conn(port);
        let slot: i64 = redis::cmd("CLUSTER")
            .arg("KEYSLOT")
            .arg(key)
            .query(&mut c)
            .unwrap();
        // Each range: start, end, [host, port, id], replicas...
        let ranges: Vec<(i64, i64, (String, i64))> = redis::cmd("CLUSTER")
            .arg("SLOTS")
            .query::<Vec<redis::Value>>(&mut c)
            .unwrap()
            .into_iter()
            .map(|r| {
                let redis::Value::Array(parts) = r else {
                    panic!("a slot range")
                };
                let num = |v: &redis::Value| redis::from_redis_value_ref::<i64>(v).unwrap();
                let redis::Value::Array(master) = &parts[2] else {
                    panic!("a master")
                };
                let host = redis::from_redis_value_ref::<String>(&master[0]).unwrap();
                (num(&parts[0]), num(&parts[1]), (host, num(&master[1])))
            })
            .collect();
        let (_, _, (_, port)) = ranges
            .into_iter()
            .find(|(start, end, _)| (*start..=*end).contains(&slot))
            .expect("every slot is served");
        u16::try_from(port).unwrap()
    }

    /// A connection to the node on `port`, for raw commands.
    pub fn conn(&self, port: u16) -> redis::Connection {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .and_then(|n| n.conn(Duration::from_secs(2)))
            .expect("the node answers")
    }

    /// Every key on every live master (`KEYS *`: tests only).
    pub fn keys(&self) -> Vec<String> {
        let mut all = Vec::new();
        for port in self.master_ports() {
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg("*")
                .query(&mut self.conn(port))
                .unwrap();
            all.extend(keys);
        }
        all.sort();
        all
    }

    /// The live replicas' ports.
    pub fn replica_ports(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| n.alive())
            .filter(|n| {
                n.info("replication")
                    .is_some_and(|r| field(&r, "role") == Some("slave"))
            })
            .map(|n| n.port)
            .collect()
    }

    /// Freezes the node on `port` (SIGSTOP): its connections stay open and
    /// nothing answers on them, as after a silent network failure.
    pub fn pause(&self, port: u16) {
        super::signal(self.pid(port), "STOP");
    }

    /// Lets a [`pause`](Self::pause)d node run again (SIGCONT).
    pub fn resume(&self, port: u16) {
        super::signal(self.pid(port), "CONT");
    }

    fn pid(&self, port: u16) -> u32 {
        self.nodes
            .iter()
            .find(|n| n.port == port)
            .and_then(|n| n.child.as_ref())
            .map(Child::id)
            .expect("a running node of this cluster")
    }

    /// Kills (SIGKILL) the master on `port` and reaps it; its replica takes
    /// over after the cluster's node timeout.
    pub fn kill(&mut self, port: u16) {
        let node = self
            .nodes
            .iter_mut()
            .find(|n| n.port == port)
            .expect("a node of this cluster");
        if let Some(mut c) = node.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn spawn(bin: &PathBuf, node: &Node, node_timeout: u32) -> Child {
    Command::new(bin)
        .args(["--port", &node.port.to_string()])
        .args(["--cluster-port", &node.bus_port.to_string()])
        .args(["--cluster-enabled", "yes"])
        .args(["--cluster-node-timeout", &node_timeout.to_string()])
        .args(["--cluster-config-file", "nodes.conf"])
        .args(super::EPHEMERAL)
        .arg("--dir")
        .arg(node.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server starts")
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        // A paused node is killed too (SIGKILL needs no SIGCONT).
        self.stop_all();
    }
}
