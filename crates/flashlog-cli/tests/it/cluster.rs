//! `flashlog serve` nodes as subprocesses on loopback ports: a cluster forms,
//! serves through any node, survives SIGKILL of its leader, rejoins a wiped node
//! through a snapshot, refuses requests without the token and bad input.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_flashlog");
pub(crate) const TOKEN: &str = "test-cluster-token";

/// A free loopback port (bound, read, released).
pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One HTTP/1.1 exchange (Connection: close): status, headers (lower-case names), body.
pub(crate) fn http(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> std::io::Result<(u16, BTreeMap<String, String>, Vec<u8>)> {
    http_within(Duration::from_secs(15), addr, method, path, token, body)
}

/// `http`, giving up (an error) when the node is silent for `timeout`.
pub(crate) fn http_within(
    timeout: Duration,
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> std::io::Result<(u16, BTreeMap<String, String>, Vec<u8>)> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    stream.write_all(body)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no header end"))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_lowercase(), v.trim().to_string()))
        .collect();
    Ok((status, headers, raw[end + 4..].to_vec()))
}

/// `http`, following 307s (at most 5).
pub(crate) fn http_follow(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    http_follow_within(Duration::from_secs(15), addr, method, path, token, body)
}

/// `http_within`, following 307s (at most 5), each exchange within `timeout`.
pub(crate) fn http_follow_within(
    timeout: Duration,
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> std::io::Result<(u16, Vec<u8>)> {
    let (mut addr, mut path) = (addr.to_string(), path.to_string());
    for _ in 0..5 {
        let (status, headers, body_out) = http_within(timeout, &addr, method, &path, token, body)?;
        if status != 307 {
            return Ok((status, body_out));
        }
        let location = headers["location"]
            .strip_prefix("http://")
            .unwrap()
            .to_string();
        let slash = location.find('/').unwrap();
        addr = location[..slash].to_string();
        path = location[slash..].to_string();
    }
    Err(std::io::Error::other("too many redirects"))
}

pub(crate) fn json(body: &[u8]) -> serde_json::Value {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

/// Nodes started with `flashlog serve`, killed when dropped.
pub(crate) struct Cluster {
    pub(crate) root: tempfile::TempDir,
    pub(crate) addrs: Vec<String>,
    pub(crate) children: Vec<Option<Child>>,
    pub(crate) extra: Vec<String>,
    pub(crate) token: bool,
}

impl Cluster {
    pub(crate) fn new(n: usize, token: bool, extra: &[&str]) -> Cluster {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("token"), format!("{TOKEN}\n")).unwrap();
        let mut cluster = Cluster {
            addrs: (0..n)
                .map(|_| format!("127.0.0.1:{}", free_port()))
                .collect(),
            children: (0..n).map(|_| None).collect(),
            root,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            token,
        };
        for i in 0..n {
            cluster.start(i);
        }
        cluster
    }

    pub(crate) fn dir(&self, i: usize) -> PathBuf {
        self.root.path().join(format!("node{}", i + 1))
    }

    pub(crate) fn token_path(&self) -> PathBuf {
        self.root.path().join("token")
    }

    pub(crate) fn token(&self) -> Option<&'static str> {
        self.token.then_some(TOKEN)
    }

    pub(crate) fn start(&mut self, i: usize) {
        let mut command = Command::new(BIN);
        command
            .args([
                "serve",
                "--id",
                &(i + 1).to_string(),
                "--listen",
                &self.addrs[i],
                "--dir",
            ])
            .arg(self.dir(i))
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if self.token {
            command.arg("--token-file").arg(self.token_path());
        }
        self.children[i] = Some(command.spawn().unwrap());
        wait_until(Duration::from_secs(10), || {
            http(&self.addrs[i], "GET", "/health", None, b"").is_ok_and(|r| r.0 == 200)
        });
    }

    pub(crate) fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    pub(crate) fn cli(&self) -> Command {
        let mut command = Command::new(BIN);
        if self.token {
            command.arg("--token-file").arg(self.token_path());
        }
        command
    }

    pub(crate) fn init(&self) -> std::process::Output {
        let mut command = self.cli();
        command.args(["cluster", "init"]);
        for (i, addr) in self.addrs.iter().enumerate() {
            command.args(["--node", &format!("{}={addr}", i + 1)]);
        }
        command.output().unwrap()
    }

    pub(crate) fn view(&self, i: usize) -> serde_json::Value {
        let (status, _, body) = http(&self.addrs[i], "GET", "/cluster", None, b"").unwrap();
        assert_eq!(status, 200);
        json(&body)
    }

    /// The index of the leader once one is known to node `i`.
    pub(crate) fn leader(&self, i: usize) -> usize {
        let mut leader = None;
        wait_until(Duration::from_secs(10), || {
            leader = self.view(i)["leader"].as_u64();
            leader.is_some()
        });
        leader.unwrap() as usize - 1
    }

    /// Node `i`'s whole contents, read locally.
    pub(crate) fn contents(&self, i: usize) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let (status, body) = http_follow(
            &self.addrs[i],
            "GET",
            "/kv?limit=100000&consistency=local",
            self.token(),
            b"",
        )
        .unwrap();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let hex = |v: &serde_json::Value| -> Vec<u8> {
            let s = v.as_str().unwrap();
            (0..s.len())
                .step_by(2)
                .map(|j| u8::from_str_radix(&s[j..j + 2], 16).unwrap())
                .collect()
        };
        json(&body)["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|it| (hex(&it["key_hex"]), hex(&it["value_hex"])))
            .collect()
    }

    /// Waits until the running nodes applied the same index and hold the same contents.
    pub(crate) fn converged(&self, running: &[usize]) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let start = Instant::now();
        loop {
            let applied: BTreeSet<u64> = running
                .iter()
                .map(|&i| self.view(i)["last_applied_index"].as_u64().unwrap())
                .collect();
            if applied.len() == 1 {
                let all: Vec<_> = running.iter().map(|&i| self.contents(i)).collect();
                if all.windows(2).all(|w| w[0] == w[1]) {
                    return all.into_iter().next().unwrap();
                }
            }
            if start.elapsed() > Duration::from_secs(20) {
                let views: Vec<String> =
                    running.iter().map(|&i| self.view(i).to_string()).collect();
                panic!("not converged after 20 s:\n{}", views.join("\n"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
    }
}

pub(crate) fn wait_until(timeout: Duration, mut ready: impl FnMut() -> bool) {
    let start = Instant::now();
    while !ready() {
        assert!(start.elapsed() < timeout, "not ready after {timeout:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub(crate) fn put(addr: &str, key: &str, value: &[u8], token: Option<&str>) -> (u16, Vec<u8>) {
    retried(addr, "PUT", &format!("/kv/{key}"), token, value)
}

/// `http_follow`, retried while the cluster is between leaders (503, or a node
/// not answering), for up to 10 s.
pub(crate) fn retried(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, Vec<u8>) {
    let start = Instant::now();
    loop {
        match http_follow(addr, method, path, token, body) {
            Ok((503, _)) | Err(_) if start.elapsed() < Duration::from_secs(10) => {
                std::thread::sleep(Duration::from_millis(50));
            }
            Ok(answer) => return answer,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn cluster_forms_serves_through_any_node_and_refuses_a_second_init() {
    let cluster = Cluster::new(3, false, &[]);
    let out = cluster.init();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let leader = cluster.leader(0);

    // A second init: a clear error, nothing changed.
    let before = cluster.view(leader);
    let out = cluster.init();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already belongs to a cluster"));
    assert_eq!(cluster.view(leader)["voters"], before["voters"]);

    // A write to a follower is redirected to the leader, same path and query.
    let follower = (leader + 1) % 3;
    let (status, headers, _) =
        http(&cluster.addrs[follower], "PUT", "/kv/k?x=1", None, b"v").unwrap();
    assert_eq!(status, 307);
    assert_eq!(
        headers["location"],
        format!("http://{}/kv/k?x=1", cluster.addrs[leader])
    );

    // Puts through every node, binary keys too; each readable on all nodes.
    for (i, addr) in cluster.addrs.iter().enumerate() {
        let (status, body) = put(
            addr,
            &format!("key-{i}"),
            format!("value-{i}").as_bytes(),
            None,
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        assert!(json(&body)["index"].as_u64().unwrap() > 0);
    }
    let (status, _) = put(&cluster.addrs[1], "%00%FF%2Fbin", b"\x00\x01", None);
    assert_eq!(status, 200);
    for addr in &cluster.addrs {
        let (status, body) = retried(addr, "GET", "/kv/key-2", None, b"");
        assert_eq!((status, body), (200, b"value-2".to_vec()));
    }
    let contents = cluster.converged(&[0, 1, 2]);
    assert_eq!(
        contents.get(&b"\x00\xff/bin"[..]),
        Some(&b"\x00\x01".to_vec())
    );
    assert_eq!(contents.len(), 4);

    // Delete, then a 404 everywhere; the CLI reads through the cluster.
    let (status, body) = retried(&cluster.addrs[2], "DELETE", "/kv/key-0", None, b"");
    assert_eq!(status, 200);
    assert_eq!(json(&body)["removed"], true);
    let (status, _) = retried(&cluster.addrs[0], "GET", "/kv/key-0", None, b"");
    assert_eq!(status, 404);
    let out = cluster
        .cli()
        .args(["--cluster", &cluster.addrs[follower], "get", "key-1"])
        .output()
        .unwrap();
    assert_eq!(out.stdout, b"value-1\n");
    let out = cluster
        .cli()
        .args(["cluster", "status", "--json", "--node", &cluster.addrs[0]])
        .output()
        .unwrap();
    let status = json(&out.stdout);
    assert_eq!(status["voters"], serde_json::json!([1, 2, 3]));
    assert_eq!(status["nodes"].as_array().unwrap().len(), 3);
}

#[test]
fn leader_killed_mid_stream_acknowledged_writes_survive_and_nodes_converge() {
    let mut cluster = Cluster::new(3, false, &[]);
    assert!(cluster.init().status.success());
    let leader = cluster.leader(0);
    let addrs = Arc::new(cluster.addrs.clone());
    let stop = Arc::new(AtomicBool::new(false));
    // Every key a writer tried, and those acknowledged.
    let tried = Arc::new(Mutex::new(BTreeSet::new()));
    let acked = Arc::new(Mutex::new(BTreeSet::new()));
    let writers: Vec<_> = (0..3)
        .map(|w| {
            let (addrs, stop, tried, acked) = (
                Arc::clone(&addrs),
                Arc::clone(&stop),
                Arc::clone(&tried),
                Arc::clone(&acked),
            );
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let key = format!("w{w}-{n}");
                    n += 1;
                    tried.lock().unwrap().insert(key.clone());
                    let addr = &addrs[n % addrs.len()];
                    if let Ok((200, _)) =
                        http_follow(addr, "PUT", &format!("/kv/{key}"), None, key.as_bytes())
                    {
                        acked.lock().unwrap().insert(key);
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    let before_kill = acked.lock().unwrap().len();
    cluster.kill(leader);
    // Writes continue through the new leader.
    wait_until(Duration::from_secs(10), || {
        acked.lock().unwrap().len() > before_kill + 20
    });
    cluster.start(leader);
    std::thread::sleep(Duration::from_millis(500));
    stop.store(true, Ordering::Relaxed);
    for writer in writers {
        writer.join().unwrap();
    }
    let contents = cluster.converged(&[0, 1, 2]);
    let acked = acked.lock().unwrap();
    let tried = tried.lock().unwrap();
    assert!(
        acked.len() > before_kill + 20,
        "{} acknowledged",
        acked.len()
    );
    for key in acked.iter() {
        assert_eq!(
            contents.get(key.as_bytes()).map(Vec::as_slice),
            Some(key.as_bytes()),
            "acknowledged {key} lost"
        );
    }
    for (key, value) in &contents {
        let key = String::from_utf8(key.clone()).unwrap();
        assert!(tried.contains(&key), "{key} was never written");
        assert_eq!(value, key.as_bytes());
    }
}

#[test]
fn a_wiped_node_rejoins_through_a_snapshot() {
    let mut cluster = Cluster::new(
        3,
        false,
        &["--snapshot-every", "20", "--keep-behind-snapshot", "5"],
    );
    assert!(cluster.init().status.success());
    let leader = cluster.leader(0);
    let wiped = (leader + 1) % 3;
    for n in 0..120 {
        assert_eq!(
            put(
                &cluster.addrs[leader],
                &format!("k{n:03}"),
                format!("v{n}").as_bytes(),
                None
            )
            .0,
            200
        );
    }
    cluster.converged(&[0, 1, 2]);
    cluster.kill(wiped);
    std::fs::remove_dir_all(cluster.dir(wiped)).unwrap();
    for n in 120..150 {
        assert_eq!(
            put(
                &cluster.addrs[leader],
                &format!("k{n:03}"),
                format!("v{n}").as_bytes(),
                None
            )
            .0,
            200
        );
    }
    assert!(cluster.view(leader)["purged_index"].as_u64().unwrap() > 5);
    cluster.start(wiped);
    let contents = cluster.converged(&[0, 1, 2]);
    assert_eq!(contents.len(), 150);
    let (_, _, metrics) = http(&cluster.addrs[wiped], "GET", "/metrics", None, b"").unwrap();
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(
        metrics.contains("flashlog_raft_snapshots_installed_total 1"),
        "{metrics}"
    );
    // The Raft log's fsync latency is a Prometheus histogram, and the node synced.
    assert!(
        metrics.contains("# TYPE flashlog_log_fsync_seconds histogram"),
        "{metrics}"
    );
    let fsyncs: u64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("flashlog_log_fsync_seconds_bucket{le=\"+Inf\"} "))
        .expect("the +Inf bucket")
        .parse()
        .unwrap();
    assert!(fsyncs > 0, "{metrics}");
    // The leader reports each follower's replication lag (none once converged) and
    // the elections it saw.
    let (_, _, metrics) = http(&cluster.addrs[leader], "GET", "/metrics", None, b"").unwrap();
    let metrics = String::from_utf8(metrics).unwrap();
    for follower in (0..3).filter(|&i| i != leader) {
        let line = format!(
            "flashlog_raft_replication_lag_entries{{follower=\"{}\"}} 0",
            follower + 1
        );
        assert!(metrics.lines().any(|l| l == line), "{line}\n{metrics}");
    }
    assert!(
        metrics.contains("# TYPE flashlog_raft_elections_total counter"),
        "{metrics}"
    );
}

#[test]
fn requests_without_or_with_a_wrong_token_are_refused_and_change_nothing() {
    let cluster = Cluster::new(
        1,
        true,
        &["--clients-need-token", "--leader-wait-ms", "300"],
    );
    let addr = &cluster.addrs[0];
    let init = format!("{{\"nodes\": {{\"1\": \"{addr}\"}}}}");
    for (token, expected) in [(None, 401), (Some("wrong"), 403)] {
        assert_eq!(
            http(addr, "POST", "/admin/init", token, init.as_bytes())
                .unwrap()
                .0,
            expected
        );
        assert_eq!(
            http(addr, "POST", "/raft/vote", token, b"\x00").unwrap().0,
            expected
        );
        assert_eq!(
            http(addr, "POST", "/raft/append", token, b"\x00")
                .unwrap()
                .0,
            expected
        );
        assert_eq!(http(addr, "PUT", "/kv/a", token, b"x").unwrap().0, expected);
        assert_eq!(http(addr, "GET", "/kv/a", token, b"").unwrap().0, expected);
    }
    // Nothing changed: the node is still not part of a cluster.
    let view = cluster.view(0);
    assert_eq!(view["voters"], serde_json::json!([]));
    assert_eq!(view["leader"], serde_json::Value::Null);
    // With the token: no leader yet, so 503 with a JSON error; then init works.
    let (status, _, body) = http(addr, "PUT", "/kv/a", Some(TOKEN), b"x").unwrap();
    assert_eq!(status, 503);
    assert!(json(&body)["error"].as_str().unwrap().contains("no leader"));
    assert_eq!(
        http(addr, "POST", "/admin/init", Some(TOKEN), init.as_bytes())
            .unwrap()
            .0,
        200
    );
    cluster.leader(0);
    assert_eq!(put(addr, "a", b"x", Some(TOKEN)).0, 200);
}

#[test]
fn bad_input_gets_a_clear_4xx_and_the_node_keeps_serving() {
    let cluster = Cluster::new(
        1,
        false,
        &[
            "--request-timeout-ms",
            "1000",
            "--header-timeout-ms",
            "1500",
        ],
    );
    assert!(cluster.init().status.success());
    cluster.leader(0);
    let addr = &cluster.addrs[0];
    assert_eq!(put(addr, "ok", b"1", None).0, 200);
    // Oversized body (the limit is 4 MiB).
    let (status, _) = put(addr, "big", &vec![7u8; (4 << 20) + 1], None);
    assert_eq!(status, 413);
    // Malformed percent-encoding, bad parameters, unknown routes.
    let (status, _, body) = http(addr, "PUT", "/kv/bad%zz", None, b"v").unwrap();
    assert_eq!(status, 400);
    assert!(json(&body)["error"]
        .as_str()
        .unwrap()
        .contains("percent-encoding"));
    assert_eq!(http(addr, "GET", "/kv?limit=0", None, b"").unwrap().0, 400);
    assert_eq!(
        http(addr, "GET", "/kv/ok?consistency=maybe", None, b"")
            .unwrap()
            .0,
        400
    );
    let (status, _, body) = http(addr, "GET", "/nope", None, b"").unwrap();
    assert_eq!(status, 404);
    assert!(json(&body)["error"]
        .as_str()
        .unwrap()
        .contains("no such route"));
    assert_eq!(http(addr, "POST", "/kv/ok", None, b"").unwrap().0, 405);
    assert_eq!(
        http(addr, "POST", "/raft/append", None, b"garbage")
            .unwrap()
            .0,
        400
    );
    // A client that disconnects mid-request.
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .write_all(b"PUT /kv/half HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly a part")
        .unwrap();
    drop(stream);
    // A client (PUT) or a peer (Raft, admin) that stalls mid-body: 408 once the
    // request timeout passed.
    for head in [
        "PUT /kv/slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nonly a part",
        "POST /raft/append HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npart",
        "POST /raft/vote HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\npart",
        "POST /admin/add HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"id\"",
        "POST /raft/snapshot HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
         x-flashlog-vote: {\"leader_id\":{\"term\":9,\"node_id\":2},\"committed\":true}\r\n\r\n\
         4\r\npart\r\n",
    ] {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        let mut answer = [0u8; 12];
        stream.read_exact(&mut answer).unwrap();
        assert_eq!(
            &answer,
            b"HTTP/1.1 408",
            "{head}: {}",
            String::from_utf8_lossy(&answer)
        );
    }
    assert_eq!(http(addr, "GET", "/kv/slow", None, b"").unwrap().0, 404);
    // A client that never finishes its headers: disconnected after the header
    // deadline (it held the connection, nothing more).
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    let started = Instant::now();
    let mut rest = Vec::new();
    let closed = stream.read_to_end(&mut rest);
    assert!(
        closed.is_ok() && started.elapsed() < Duration::from_secs(8),
        "{closed:?} after {:?}",
        started.elapsed()
    );
    // Still serving, nothing half-written, nothing lost.
    assert_eq!(http(addr, "GET", "/health", None, b"").unwrap().0, 200);
    assert_eq!(http(addr, "GET", "/kv/half", None, b"").unwrap().0, 404);
    assert_eq!(http(addr, "GET", "/kv/big", None, b"").unwrap().0, 404);
    assert_eq!(
        http_follow(addr, "GET", "/kv/ok", None, b"").unwrap(),
        (200, b"1".to_vec())
    );
}

#[test]
fn a_directory_of_another_node_or_cluster_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let token = root.path().join("token");
    std::fs::write(&token, "one\n").unwrap();
    let other = root.path().join("other");
    std::fs::write(&other, "two\n").unwrap();
    let dir = root.path().join("node");
    let port = free_port().to_string();
    let serve = |id: &str, token: &Path| {
        let mut child = Command::new(BIN)
            .args([
                "serve",
                "--id",
                id,
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--dir",
            ])
            .arg(&dir)
            .arg("--token-file")
            .arg(token)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                return Some((status.code(), err));
            }
            if start.elapsed() > Duration::from_secs(2) {
                child.kill().unwrap();
                child.wait().unwrap();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert!(serve("1", &token).is_none(), "the first start serves");
    let (code, err) = serve("2", &token).unwrap();
    assert_eq!(code, Some(2));
    assert!(err.contains("belongs to node 1, not node 2"), "{err}");
    let (code, err) = serve("1", &other).unwrap();
    assert_eq!(code, Some(2));
    assert!(err.contains("another token"), "{err}");
}

#[test]
fn all_nodes_killed_and_restarted_come_back_with_exactly_the_committed_writes() {
    let mut cluster = Cluster::new(3, false, &[]);
    assert!(cluster.init().status.success());
    let leader = cluster.leader(0);
    let mut expected = BTreeMap::new();
    for n in 0..200u32 {
        let key = format!("k{:03}", n % 150);
        if n % 7 == 3 {
            let (status, _) = retried(
                &cluster.addrs[leader],
                "DELETE",
                &format!("/kv/{key}"),
                None,
                b"",
            );
            assert_eq!(status, 200);
            expected.remove(key.as_bytes());
        } else {
            let value = format!("v{n}");
            assert_eq!(
                put(&cluster.addrs[leader], &key, value.as_bytes(), None).0,
                200
            );
            expected.insert(key.into_bytes(), value.into_bytes());
        }
    }
    // SIGKILL right after the last acknowledgement: the state machines'
    // checkpoints lag; the restart re-applies the committed log after them.
    for i in 0..3 {
        cluster.kill(i);
    }
    for i in 0..3 {
        cluster.start(i);
    }
    cluster.leader(0);
    assert_eq!(cluster.converged(&[0, 1, 2]), expected);
}

#[test]
fn a_node_is_added_as_a_voter_then_removed_and_sigterm_stops_a_node_cleanly() {
    let mut cluster = Cluster::new(4, false, &[]);
    // Form a cluster of the first three only.
    let mut init = cluster.cli();
    init.args(["cluster", "init"]);
    for i in 0..3 {
        init.args(["--node", &format!("{}={}", i + 1, cluster.addrs[i])]);
    }
    assert!(init.output().unwrap().status.success());
    let leader = cluster.leader(0);
    for n in 0..20 {
        assert_eq!(
            put(&cluster.addrs[leader], &format!("k{n}"), b"v", None).0,
            200
        );
    }
    let out = cluster
        .cli()
        .args([
            "--cluster",
            &cluster.addrs[1],
            "cluster",
            "add",
            "--node",
            &format!("4={}", cluster.addrs[3]),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        cluster.view(leader)["voters"],
        serde_json::json!([1, 2, 3, 4])
    );
    let contents = cluster.converged(&[0, 1, 2, 3]);
    assert_eq!(contents.len(), 20);

    let out = cluster
        .cli()
        .args([
            "--cluster",
            &cluster.addrs[0],
            "cluster",
            "remove",
            "--id",
            "4",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let leader = cluster.leader(0);
    assert_eq!(cluster.view(leader)["voters"], serde_json::json!([1, 2, 3]));
    assert_eq!(cluster.view(leader)["nodes"].as_object().unwrap().len(), 3);

    // SIGTERM: a clean shutdown, exit code 0; restarted, the node has its data.
    let follower = (leader + 1) % 3;
    let mut child = cluster.children[follower].take().unwrap();
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert_eq!(child.wait().unwrap().code(), Some(0));
    cluster.start(follower);
    assert_eq!(cluster.converged(&[0, 1, 2]).len(), 20);
}
