//! The TLS listener and client on their own: HTTPS with the cluster's authority
//! works; plain HTTP, a client trusting another authority, and a connection that
//! never speaks fail cleanly and do not stop the listener.

#![allow(missing_docs, clippy::unwrap_used)]

use std::time::Duration;

use axum::routing::get;
use axum::Router;
use flashlog_cluster::tls::{ClientTls, ServerTls};
use flashlog_cluster::transport::Transport;
use flashlog_cluster::Error;
use flashlog_testkit::pki::TestCa;
use reqwest::Method;

/// Serves `GET /health` → `ok` over TLS with a certificate for 127.0.0.1 signed by
/// `ca`; returns the address.
async fn serve(ca: &TestCa, dir: &std::path::Path) -> String {
    let files = ca.issue(dir, "node", &["127.0.0.1", "localhost"]).unwrap();
    let tls = ServerTls::from_files(&files.cert, &files.key).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let listener = tls.listen(listener).unwrap();
    let app = Router::new().route("/health", get(|| async { "ok" }));
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn health(transport: &Transport, addr: &str) -> reqwest::Result<String> {
    transport
        .request(Method::GET, addr, "/health")
        .send()
        .await?
        .error_for_status()?
        .text()
        .await
}

fn https(ca_file: &std::path::Path) -> Transport {
    let tls = ClientTls::from_ca_file(ca_file).unwrap();
    Transport::with_tls(None, Duration::from_secs(5), Some(&tls)).unwrap()
}

#[tokio::test]
async fn https_with_the_authority_works_and_plain_http_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new().unwrap();
    let addr = serve(&ca, dir.path()).await;
    let transport = https(&dir.path().join("ca.pem"));
    assert_eq!(transport.url(&addr, "/x"), format!("https://{addr}/x"));
    assert_eq!(health(&transport, &addr).await.unwrap(), "ok");

    let plain = Transport::new(None, Duration::from_secs(5)).unwrap();
    assert_eq!(plain.url(&addr, "/x"), format!("http://{addr}/x"));
    let err = health(&plain, &addr).await.unwrap_err();
    assert!(!err.is_status(), "plain HTTP got an HTTP answer: {err}");

    // The listener keeps serving TLS after the failed handshake.
    assert_eq!(health(&transport, &addr).await.unwrap(), "ok");
}

#[tokio::test]
async fn a_client_trusting_another_authority_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let addr = serve(&TestCa::new().unwrap(), dir.path()).await;
    let other = tempfile::tempdir().unwrap();
    TestCa::new()
        .unwrap()
        .issue(other.path(), "x", &["127.0.0.1"])
        .unwrap();
    let stranger = https(&other.path().join("ca.pem"));
    let err = health(&stranger, &addr).await.unwrap_err();
    assert!(err.is_connect() || err.is_request(), "{err}");
    assert_eq!(
        health(&https(&dir.path().join("ca.pem")), &addr)
            .await
            .unwrap(),
        "ok"
    );
}

#[tokio::test]
async fn a_connection_that_never_speaks_does_not_hold_up_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let addr = serve(&TestCa::new().unwrap(), dir.path()).await;
    // Several silent connections, each stuck in its handshake.
    let mut silent = Vec::new();
    for _ in 0..4 {
        silent.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let transport = https(&dir.path().join("ca.pem"));
    let answer = tokio::time::timeout(Duration::from_secs(3), health(&transport, &addr))
        .await
        .expect("a silent connection held up the listener");
    assert_eq!(answer.unwrap(), "ok");
    drop(silent);
}

#[test]
fn a_key_that_does_not_go_with_the_certificate_is_refused_naming_the_files() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new().unwrap();
    let a = ca.issue(dir.path(), "a", &["127.0.0.1"]).unwrap();
    let b = ca.issue(dir.path(), "b", &["127.0.0.1"]).unwrap();
    let err = ServerTls::from_files(&a.cert, &b.key).unwrap_err();
    assert!(matches!(err, Error::Tls { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("a.pem") && text.contains("b.key"), "{text}");

    // A key file given as the certificate: no certificate in it.
    let err = ServerTls::from_files(&a.key, &a.key).unwrap_err();
    assert!(err.to_string().contains("a.key"), "{err}");
    // An absent authority file.
    let err = ClientTls::from_ca_file(&dir.path().join("absent.pem")).unwrap_err();
    assert!(err.to_string().contains("absent.pem"), "{err}");
}
