//! The cluster client the `flashlog` CLI uses: the key-value operations against
//! any node (following `307` to the leader, trying the next address when one is
//! unreachable, retrying `503` until a deadline) and the admin operations.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::error::{Error, Result};
use crate::keys;
use crate::transport::Transport;

/// How many redirects one operation follows.
const MAX_REDIRECTS: usize = 5;

/// A client of one cluster.
#[derive(Debug, Clone)]
pub struct ClusterClient {
    transport: Transport,
    addrs: Vec<String>,
    /// How long an operation keeps retrying (unreachable nodes, 503).
    pub deadline: Duration,
}

/// What a scan returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanPage {
    /// Keys and values in key order.
    pub items: Vec<(Vec<u8>, Vec<u8>)>,
    /// Whether more keys matched than the limit.
    pub more: bool,
}

/// Runs `future` to completion on a fresh current-thread runtime (for callers
/// without one, like the CLI).
///
/// # Errors
/// The future's error, or `Error::Io` if the runtime cannot start.
pub fn block_on<T>(future: impl Future<Output = Result<T>>) -> Result<T> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(crate::error::io(
            "start a runtime for",
            "the cluster client",
        ))?;
    runtime.block_on(future)
}

fn http_error(what: String, e: reqwest::Error) -> Error {
    Error::Http {
        what,
        source: Box::new(e),
    }
}

impl ClusterClient {
    /// A client of the nodes at `addrs` (`HOST:PORT` each), sending `token` if given.
    ///
    /// # Errors
    /// `Error::Invalid` for no address; the HTTP client's build error.
    pub fn new(addrs: Vec<String>, token: Option<&str>) -> Result<ClusterClient> {
        if addrs.is_empty() {
            return Err(Error::Invalid("no node address given".into()));
        }
        Ok(ClusterClient {
            transport: Transport::new(token, Duration::from_secs(30))?,
            addrs,
            deadline: Duration::from_secs(10),
        })
    }

    /// Sends `method path` with `body` to the cluster; follows redirects, moves on
    /// from unreachable nodes, retries 503 until the deadline. Returns the final
    /// status and body (any status but 307 and 503).
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Vec<u8>)> {
        let start = Instant::now();
        let mut next = 0usize;
        let mut last_error: Option<Error> = None;
        loop {
            if start.elapsed() > self.deadline {
                return Err(last_error.unwrap_or_else(|| Error::Invalid("no node answered".into())));
            }
            let addr = &self.addrs[next % self.addrs.len()];
            next += 1;
            let mut url = self.transport.url(addr, path);
            let mut redirects = 0;
            let outcome = loop {
                let mut request = self.transport.request_url(method.clone(), &url);
                if let Some(body) = &body {
                    request = request.body(body.clone());
                }
                let response = match request.send().await {
                    Ok(response) => response,
                    Err(e) => break Err(http_error(format!("cannot reach {url}"), e)),
                };
                let status = response.status();
                if status == StatusCode::TEMPORARY_REDIRECT && redirects < MAX_REDIRECTS {
                    if let Some(location) = response
                        .headers()
                        .get(reqwest::header::LOCATION)
                        .and_then(|l| l.to_str().ok())
                    {
                        url = location.to_string();
                        redirects += 1;
                        continue;
                    }
                }
                let bytes = response
                    .bytes()
                    .await
                    .map_err(|e| http_error(format!("cannot read the answer of {url}"), e));
                break bytes.map(|b| (status, b.to_vec(), url.clone()));
            };
            match outcome {
                Ok((StatusCode::SERVICE_UNAVAILABLE, bytes, url)) => {
                    last_error = Some(refused(&url, StatusCode::SERVICE_UNAVAILABLE, &bytes));
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Ok((status, bytes, _)) => return Ok((status, bytes)),
                Err(e) => {
                    last_error = Some(e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    async fn send_ok(&self, method: Method, path: &str, body: Option<Vec<u8>>) -> Result<Value> {
        let (status, bytes) = self.send(method, path, body).await?;
        if !status.is_success() {
            return Err(refused(path, status, &bytes));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Invalid(format!("{path}: the answer is not JSON: {e}")))
    }

    /// Sets `key` to `value`; returns the Raft index of the write.
    ///
    /// # Errors
    /// [`Error::Refused`] with the node's message, or the last connection error.
    pub async fn put(&self, key: &[u8], value: &[u8]) -> Result<u64> {
        let answer = self
            .send_ok(
                Method::PUT,
                &format!("/kv/{}", keys::encode(key)),
                Some(value.to_vec()),
            )
            .await?;
        Ok(answer["index"].as_u64().unwrap_or(0))
    }

    /// Removes `key`; returns whether it was there.
    ///
    /// # Errors
    /// As [`ClusterClient::put`].
    pub async fn delete(&self, key: &[u8]) -> Result<bool> {
        let answer = self
            .send_ok(Method::DELETE, &format!("/kv/{}", keys::encode(key)), None)
            .await?;
        Ok(answer["removed"].as_bool().unwrap_or(false))
    }

    /// The value of `key` (linearizable unless `local`), `None` if absent.
    ///
    /// # Errors
    /// As [`ClusterClient::put`].
    pub async fn get(&self, key: &[u8], local: bool) -> Result<Option<Vec<u8>>> {
        let query = if local { "?consistency=local" } else { "" };
        let path = format!("/kv/{}{query}", keys::encode(key));
        let (status, bytes) = self.send(Method::GET, &path, None).await?;
        match status {
            StatusCode::OK => Ok(Some(bytes)),
            StatusCode::NOT_FOUND => Ok(None),
            other => Err(refused(&path, other, &bytes)),
        }
    }

    /// Up to `limit` keys starting with `prefix`, with their values.
    ///
    /// # Errors
    /// As [`ClusterClient::put`].
    pub async fn scan(&self, prefix: &[u8], limit: usize, local: bool) -> Result<ScanPage> {
        let mut path = format!("/kv?prefix={}&limit={limit}", keys::encode(prefix));
        if local {
            path.push_str("&consistency=local");
        }
        let answer = self.send_ok(Method::GET, &path, None).await?;
        let mut items = Vec::new();
        for item in answer["items"].as_array().into_iter().flatten() {
            let field = |name: &str| item[name].as_str().and_then(keys::parse_hex);
            match (field("key_hex"), field("value_hex")) {
                (Some(key), Some(value)) => items.push((key, value)),
                _ => return Err(Error::Invalid(format!("{path}: malformed item {item}"))),
            }
        }
        Ok(ScanPage {
            items,
            more: answer["more"].as_bool().unwrap_or(false),
        })
    }

    /// Forms a cluster of `nodes` (id to address): checks that none of them
    /// belongs to a cluster yet, then initializes each with the same voters.
    ///
    /// # Errors
    /// [`Error::Refused`] with status 409, nothing changed, if one already belongs
    /// to a cluster; the connection error of a node that cannot be reached
    /// (before anything changed). Nodes that fail after the check are named in
    /// the error; the others are initialized (a majority of them forms the cluster).
    pub async fn init(&self, nodes: &BTreeMap<u64, String>) -> Result<()> {
        if nodes.is_empty() {
            return Err(Error::Invalid("no node given".into()));
        }
        for (id, addr) in nodes {
            let view = self.node_status(addr).await?;
            if view["id"].as_u64() != Some(*id) {
                return Err(Error::Invalid(format!(
                    "{addr} is node {}, not node {id}",
                    view["id"]
                )));
            }
            if view["voters"].as_array().is_some_and(|v| !v.is_empty()) {
                return Err(Error::Refused {
                    node: addr.clone(),
                    status: 409,
                    message: format!("node {id} already belongs to a cluster: nothing changed"),
                });
            }
        }
        let body = json!({ "nodes": nodes }).to_string().into_bytes();
        // Every node gets its init, even after one failed: a majority forms the cluster.
        let mut failed = Vec::new();
        for (id, addr) in nodes {
            let answer = self
                .transport
                .request(Method::POST, addr, "/admin/init")
                .body(body.clone())
                .send()
                .await;
            let failure = match answer {
                Err(e) => Some(crate::error::chain(&e)),
                Ok(response) if response.status().is_success() => None,
                Ok(response) => {
                    let status = response.status();
                    let bytes = response.bytes().await.unwrap_or_default();
                    Some(refused(addr, status, &bytes).to_string())
                }
            };
            if let Some(failure) = failure {
                failed.push(format!("node {id} at {addr}: {failure}"));
            }
        }
        if !failed.is_empty() {
            return Err(Error::Invalid(format!(
                "{} of {} nodes were not initialized ({}); the others were",
                failed.len(),
                nodes.len(),
                failed.join("; ")
            )));
        }
        Ok(())
    }

    /// Adds node `id` at `addr`: a learner that catches up, then a voter.
    ///
    /// # Errors
    /// As [`ClusterClient::put`].
    pub async fn add(&self, id: u64, addr: &str) -> Result<()> {
        let body = json!({ "id": id, "addr": addr }).to_string().into_bytes();
        self.send_ok(Method::POST, "/admin/add", Some(body))
            .await
            .map(drop)
    }

    /// Removes node `id` from the cluster.
    ///
    /// # Errors
    /// As [`ClusterClient::put`].
    pub async fn remove(&self, id: u64) -> Result<()> {
        let body = json!({ "id": id }).to_string().into_bytes();
        self.send_ok(Method::POST, "/admin/remove", Some(body))
            .await
            .map(drop)
    }

    /// `GET /cluster` of the node at `addr` (no redirect, no retry).
    ///
    /// # Errors
    /// The connection error, or [`Error::Refused`].
    pub async fn node_status(&self, addr: &str) -> Result<Value> {
        let response = self
            .transport
            .request(Method::GET, addr, "/cluster")
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .map_err(|e| http_error(format!("cannot reach {addr}"), e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| http_error(format!("cannot read the answer of {addr}"), e))?;
        if !status.is_success() {
            return Err(refused(addr, status, &bytes));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| Error::Invalid(format!("{addr}: /cluster is not JSON: {e}")))
    }
}

/// [`Error::Refused`] from a non-success answer.
fn refused(node: &str, status: StatusCode, body: &[u8]) -> Error {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v["error"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    Error::Refused {
        node: node.to_string(),
        status: status.as_u16(),
        message,
    }
}
