//! The one place the HTTP client is built: every request a node or the CLI
//! sends goes through a [`Transport`] (scheme, token, timeouts). TLS, when it
//! comes, is configured here and in [`crate::node`]'s listener only.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderValue, AUTHORIZATION};

use crate::error::{Error, Result};

/// How long a connection may take to open.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// An HTTP client with the cluster token (if any) on every request.
#[derive(Debug, Clone)]
pub struct Transport {
    client: reqwest::Client,
    token: Option<Arc<str>>,
}

impl Transport {
    /// A client that sends `token` as `Authorization: Bearer TOKEN`, never follows
    /// redirects by itself (the cluster client follows them, counting), and gives
    /// up on a request after `timeout`.
    ///
    /// # Errors
    /// `Error::Http` if the client cannot be built.
    pub fn new(token: Option<&str>, timeout: Duration) -> Result<Transport> {
        let client = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .build()
            .map_err(|e| Error::Http {
                what: "cannot build the HTTP client".into(),
                source: Box::new(e),
            })?;
        Ok(Transport {
            client,
            token: token.map(Arc::from),
        })
    }

    /// The URL of `path` (with its query) on the node at `addr` (`HOST:PORT`).
    pub fn url(&self, addr: &str, path: &str) -> String {
        format!("http://{addr}{path}")
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
