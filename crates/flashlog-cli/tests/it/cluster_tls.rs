//! A cluster serving TLS (`--tls-cert`, `--tls-key`, `--tls-ca`) with certificates
//! the test makes up: it forms and serves over HTTPS through any node; plain HTTP
//! to a node and a client that does not trust the authority fail cleanly, and the
//! nodes keep serving.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use flashlog_testkit::pki::{TestCa, TlsFiles};

use crate::cluster::{free_port, http, wait_until, BIN};

/// Three TLS nodes, killed when dropped.
struct TlsCluster {
    root: tempfile::TempDir,
    addrs: Vec<String>,
    files: Vec<TlsFiles>,
    children: Vec<Child>,
}

impl TlsCluster {
    fn start() -> TlsCluster {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("token"), "tls-test-token\n").unwrap();
        let ca = TestCa::new().unwrap();
        let addrs: Vec<String> = (0..3)
            .map(|_| format!("127.0.0.1:{}", free_port()))
            .collect();
        let files: Vec<TlsFiles> = (1..=3)
            .map(|id| {
                ca.issue(root.path(), &format!("node{id}"), &["127.0.0.1"])
                    .unwrap()
            })
            .collect();
        let mut cluster = TlsCluster {
            root,
            addrs,
            files,
            children: Vec::new(),
        };
        for i in 0..3 {
            let child = Command::new(BIN)
                .args(["serve", "--id", &(i + 1).to_string()])
                .args(["--listen", &cluster.addrs[i]])
                .arg("--dir")
                .arg(cluster.root.path().join(format!("node{}", i + 1)))
                .arg("--token-file")
                .arg(cluster.token())
                .arg("--tls-cert")
                .arg(&cluster.files[i].cert)
                .arg("--tls-key")
                .arg(&cluster.files[i].key)
                .arg("--tls-ca")
                .arg(&cluster.files[i].ca)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            cluster.children.push(child);
        }
        for addr in &cluster.addrs {
            wait_until(Duration::from_secs(10), || {
                cluster
                    .cli(true)
                    .args(["cluster", "status", "--json", "--node", addr])
                    .output()
                    .unwrap()
                    .status
                    .success()
            });
        }
        cluster
    }

    fn token(&self) -> PathBuf {
        self.root.path().join("token")
    }

    fn ca(&self) -> &Path {
        &self.files[0].ca
    }

    /// `flashlog --token-file T [--tls-ca CA]`.
    fn cli(&self, trust: bool) -> Command {
        let mut command = Command::new(BIN);
        command.arg("--token-file").arg(self.token());
        if trust {
            command.arg("--tls-ca").arg(self.ca());
        }
        command
    }

    fn kv(&self, node: usize, args: &[&str]) -> Output {
        self.cli(true)
            .args(["--cluster", &self.addrs[node]])
            .args(args)
            .output()
            .unwrap()
    }
}

impl Drop for TlsCluster {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_tls_cluster_serves_over_https_and_refuses_plain_http_and_strangers() {
    let cluster = TlsCluster::start();
    let mut init = cluster.cli(true);
    init.args(["cluster", "init"]);
    for (i, addr) in cluster.addrs.iter().enumerate() {
        init.args(["--node", &format!("{}={addr}", i + 1)]);
    }
    assert_ok(&init.output().unwrap());

    // Writes through every node (followers redirect to the leader, over HTTPS),
    // reads through every other.
    for i in 0..3 {
        let key = format!("key{i}");
        assert_ok(&cluster.kv(i, &["put", &key, &format!("value{i}")]));
        let out = cluster.kv((i + 1) % 3, &["get", &key]);
        assert_ok(&out);
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            format!("value{i}")
        );
    }

    // Plain HTTP to a TLS node: no HTTP answer, and the node keeps serving.
    for addr in &cluster.addrs {
        let plain = http(addr, "GET", "/health", None, b"");
        assert!(
            plain.is_err(),
            "plain HTTP to {addr} was answered: {plain:?}"
        );
    }
    // A client that does not trust the authority is refused, with a clear error.
    let out = cluster
        .cli(false)
        .args(["--cluster", &cluster.addrs[0], "get", "key0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.starts_with("error:"), "{stderr}");

    let out = cluster.kv(2, &["get", "key0"]);
    assert_ok(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "value0");
}

#[test]
fn serve_refuses_half_a_tls_configuration() {
    let dir = tempfile::tempdir().unwrap();
    let files = TestCa::new()
        .unwrap()
        .issue(dir.path(), "node", &["127.0.0.1"])
        .unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let serve = |extra: &[&std::ffi::OsStr]| {
        Command::new(BIN)
            .args(["serve", "--id", "1", "--listen", &listen, "--dir"])
            .arg(dir.path().join("node"))
            .args(extra)
            .output()
            .unwrap()
    };
    let (cert, key, ca) = (
        files.cert.as_os_str(),
        files.key.as_os_str(),
        files.ca.as_os_str(),
    );
    // A certificate without the authority of the peers.
    let out = serve(&["--tls-cert".as_ref(), cert, "--tls-key".as_ref(), key]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-ca"));
    // An authority without a certificate.
    let out = serve(&["--tls-ca".as_ref(), ca]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-cert"));
    // A key that is not the certificate's.
    let other = TestCa::new()
        .unwrap()
        .issue(dir.path(), "other", &["127.0.0.1"])
        .unwrap();
    let out = serve(&[
        "--tls-cert".as_ref(),
        cert,
        "--tls-key".as_ref(),
        other.key.as_os_str(),
        "--tls-ca".as_ref(),
        ca,
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("other.key"));
}
