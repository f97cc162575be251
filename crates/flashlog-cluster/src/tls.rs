//! TLS for client and peer traffic, on rustls with the ring provider: the server
//! side of a node's listener ([`TlsListener`]) and what a client trusts
//! ([`ClientTls`]), both from PEM files (`--tls-cert`, `--tls-key`, `--tls-ca`).
//!
//! A node with a certificate serves HTTPS only: a plain HTTP request to it fails
//! its handshake and is dropped, and the node keeps serving. It reaches the other
//! nodes over HTTPS too, trusting the certificate authority given as `--tls-ca`
//! (the cluster token, not a client certificate, says who may vote and append).
//!
//! ```
//! use flashlog_cluster::tls::{ClientTls, ServerTls};
//!
//! let dir = tempfile::tempdir()?;
//! let ca = dir.path().join("ca.pem");
//! std::fs::write(&ca, "not a certificate")?;
//! // A file without a single certificate is refused, naming the file.
//! let err = ClientTls::from_ca_file(&ca).unwrap_err();
//! assert!(err.to_string().contains("ca.pem"));
//! let err = ServerTls::from_files(&ca, &dir.path().join("absent.pem")).unwrap_err();
//! assert!(err.to_string().contains("ca.pem"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

use crate::error::{Error, Result};

/// How long a client may take to finish its TLS handshake before the node drops
/// the connection.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// At most this many handshakes run at once; further connections wait in the
/// kernel's accept queue.
const MAX_HANDSHAKES: usize = 256;

/// The crypto provider: ring, chosen explicitly (rustls would otherwise need one
/// installed process-wide). rustls 0.23.48 deprecates ring's provider for lacking
/// post-quantum key exchange; it is the one reqwest's rustls is built with here,
/// and aws-lc-rs (which has it) needs a C/cmake build: a choice to revisit when
/// reqwest moves.
#[allow(deprecated)]
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_error(path: &Path, what: impl Into<String>) -> Error {
    Error::Tls {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

/// Every certificate in the PEM file at `path` (at least one).
fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| tls_error(path, format!("cannot read certificates: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(path, format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(tls_error(path, "holds no PEM certificate"));
    }
    Ok(certs)
}

/// A node's certificate chain and key, ready to serve HTTPS.
#[derive(Clone)]
pub struct ServerTls {
    acceptor: TlsAcceptor,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads the certificate chain at `cert` (PEM, the node's certificate first)
    /// and the private key at `key` (PEM: PKCS#8, PKCS#1 or SEC1).
    ///
    /// # Errors
    /// [`Error::Tls`] naming the file that cannot be read or parsed, or the pair
    /// when the key does not match the certificate.
    pub fn from_files(cert: &Path, key: &Path) -> Result<ServerTls> {
        let chain = read_certs(cert)?;
        let key_der = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| tls_error(key, format!("cannot read a PEM private key: {e}")))?;
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(cert, e.to_string()))?
            .with_no_client_auth()
            .with_single_cert(chain, key_der)
            .map_err(|e| {
                tls_error(
                    cert,
                    format!("does not go with the key {}: {e}", key.display()),
                )
            })?;
        Ok(ServerTls {
            acceptor: TlsAcceptor::from(Arc::new(config)),
        })
    }

    /// Serves TLS on `listener`: handshakes run in the background, each bounded by
    /// [`HANDSHAKE_TIMEOUT`], so a client that connects and says nothing (or
    /// speaks plain HTTP) never holds up the others.
    pub fn listen(&self, listener: TcpListener) -> io::Result<TlsListener> {
        let local_addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(MAX_HANDSHAKES);
        let task = tokio::spawn(accept_loop(listener, self.acceptor.clone(), tx));
        Ok(TlsListener {
            rx,
            local_addr,
            task,
        })
    }
}

/// Accepts connections and hands the ones whose handshake succeeds to `tx`.
async fn accept_loop(
    listener: TcpListener,
    acceptor: TlsAcceptor,
    tx: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = Arc::clone(&handshakes).acquire_owned().await else {
            return;
        };
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %e, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let (acceptor, tx) = (acceptor.clone(), tx.clone());
        tokio::spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => {
                    let _ = tx.send((tls, peer)).await;
                }
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        });
    }
}

/// A listener whose connections have finished their TLS handshake: what
/// `axum::serve` takes in place of a `TcpListener`.
#[derive(Debug)]
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local_addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        // The accept loop owns the socket: stop it so the port is released.
        self.task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(accepted) => accepted,
            // The accept loop only ends when aborted by our own drop.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local_addr)
    }
}

/// A node's TLS: what it serves with and what it trusts when it reaches the other
/// nodes (which serve certificates signed by the same authority).
#[derive(Debug, Clone)]
pub struct NodeTls {
    /// The node's certificate and key (`--tls-cert`, `--tls-key`).
    pub server: ServerTls,
    /// The authority the other nodes' certificates are signed by (`--tls-ca`).
    pub peers: ClientTls,
}

/// What a client (another node, the CLI) trusts when it talks HTTPS to a node: the
/// certificate authority that signed the nodes' certificates.
#[derive(Debug, Clone)]
pub struct ClientTls {
    roots: Vec<reqwest::Certificate>,
    path: PathBuf,
}

impl ClientTls {
    /// Trusts the certificates in the PEM file at `ca`.
    ///
    /// # Errors
    /// [`Error::Tls`] if it cannot be read or holds no certificate.
    pub fn from_ca_file(ca: &Path) -> Result<ClientTls> {
        let roots = read_certs(ca)?
            .iter()
            .map(|der| reqwest::Certificate::from_der(der))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| tls_error(ca, format!("unusable certificate: {e}")))?;
        Ok(ClientTls {
            roots,
            path: ca.to_path_buf(),
        })
    }

    /// The file the roots came from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `builder`, trusting only these roots and speaking HTTPS only.
    pub(crate) fn configure(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        self.roots
            .iter()
            .fold(
                builder.tls_built_in_root_certs(false).https_only(true),
                |builder, root| builder.add_root_certificate(root.clone()),
            )
            .use_rustls_tls()
    }
}
