//! Certificates made up by a test: a certificate authority and node certificates it
//! signs, written as PEM files, for the TLS tests of the cluster.

use std::io;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};

/// A certificate authority made up for one test.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// The PEM files of one node: its certificate, its key and the authority that
/// signed it.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The node's certificate (`--tls-cert`).
    pub cert: PathBuf,
    /// The node's private key (`--tls-key`).
    pub key: PathBuf,
    /// The authority's certificate (`--tls-ca`).
    pub ca: PathBuf,
}

fn invalid(e: rcgen::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, e)
}

impl TestCa {
    /// A new self-signed authority.
    ///
    /// # Errors
    /// What rcgen returns (as `InvalidInput`).
    pub fn new() -> io::Result<TestCa> {
        let mut params = CertificateParams::new(Vec::<String>::new()).map_err(invalid)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().map_err(invalid)?;
        let cert = params.self_signed(&key).map_err(invalid)?;
        Ok(TestCa { cert, key })
    }

    /// The authority's certificate, PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// Writes into `dir` a certificate for `names` (host names or IP addresses,
    /// e.g. `127.0.0.1`) signed by this authority, its key, and the authority's
    /// certificate, as `{stem}.pem`, `{stem}.key` and `ca.pem`.
    ///
    /// # Errors
    /// What rcgen returns (as `InvalidInput`); I/O errors writing the files.
    pub fn issue(&self, dir: &Path, stem: &str, names: &[&str]) -> io::Result<TlsFiles> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = CertificateParams::new(names).map_err(invalid)?;
        let key = KeyPair::generate().map_err(invalid)?;
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .map_err(invalid)?;
        let files = TlsFiles {
            cert: dir.join(format!("{stem}.pem")),
            key: dir.join(format!("{stem}.key")),
            ca: dir.join("ca.pem"),
        };
        std::fs::write(&files.cert, cert.pem())?;
        std::fs::write(&files.key, key.serialize_pem())?;
        std::fs::write(&files.ca, self.pem())?;
        Ok(files)
    }
}
