//! The one place the HTTP client is built: every request a node or the CLI
//! sends goes through a [`Transport`] (scheme, token, timeouts, TLS). The server
//! side of TLS is [`crate::tls::ServerTls`], used by the node's listener only.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION};

use crate::error::{Error, Result};
use crate::tls::ClientTls;

/// How long a connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// How long an idle connection stays in the pool: below the nodes' default header
/// deadline ([`crate::serve::HEADER_READ_TIMEOUT`]), so a client does not pick a connection
/// the server is about to close.
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(20);

/// An HTTP client with the cluster token (if any) on every request.
#[derive(Debug, Clone)]
pub struct Transport {
    client: reqwest::Client,
    token: Option<Arc<str>>,
    /// `https` when the nodes serve TLS.
    scheme: &'static str,
}

impl Transport {
    /// A client that sends `token` as `Authorization: Bearer TOKEN`, never follows
    /// redirects by itself (the cluster client follows them, counting), and gives
    /// up on a request after `timeout`.
    ///
    /// # Errors
    /// `Error::Http` if the client cannot be built.
    pub fn new(token: Option<&str>, timeout: Duration) -> Result<Transport> {
        Transport::with_tls(token, timeout, None)
    }

    /// As [`Transport::new`], speaking HTTPS only and trusting only `tls`'s
    /// certificate authority when `tls` is given.
    ///
    /// # Errors
    /// `Error::Http` if the client cannot be built.
    pub fn with_tls(
        token: Option<&str>,
        timeout: Duration,
        tls: Option<&ClientTls>,
    ) -> Result<Transport> {
        let builder = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .tcp_nodelay(true);
        let builder = match tls {
            Some(tls) => tls.configure(builder),
            None => builder,
        };
        let client = builder.build().map_err(|e| Error::Http {
            what: "cannot build the HTTP client".into(),
            source: Box::new(e),
        })?;
        Ok(Transport {
            client,
            token: token.map(Arc::from),
            scheme: if tls.is_some() { "https" } else { "http" },
        })
    }

    /// The URL of `path` (with its query) on the node at `addr` (`HOST:PORT`).
    pub fn url(&self, addr: &str, path: &str) -> String {
        format!("{}://{addr}{path}", self.scheme)
    }

    /// A request to `path` on the node at `addr`, with the token.
    pub fn request(
        &self,
        method: reqwest::Method,
        addr: &str,
        path: &str,
    ) -> reqwest::RequestBuilder {
        self.request_url(method, &self.url(addr, path))
    }

    /// A request to `url`, with the token.
    pub fn request_url(&self, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let builder = self.client.request(method, url);
        match self
            .token
            .as_deref()
            .and_then(|t| HeaderValue::from_str(&format!("Bearer {t}")).ok())
        {
            Some(value) => builder.header(AUTHORIZATION, value),
            None => builder,
        }
    }
}
