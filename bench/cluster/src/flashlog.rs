//! flashlog through its HTTP API (issue 18 §2): `PUT /kv/{key}` with the raw value,
//! `GET /kv/{key}` (linearizable by default), `GET /cluster` for the leader.
//! Requests go to the leader; a follower's `307` is followed (reqwest keeps the
//! method and body for 307). One `reqwest::Client`, so one keep-alive pool.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use reqwest::StatusCode;
use serde_json::Value;

/// A client aimed at one node (the leader once [`FlashlogClient::follow_leader`] ran).
#[derive(Clone)]
pub struct FlashlogClient {
    http: reqwest::Client,
    endpoints: Arc<Vec<String>>,
    base: String,
}

/// A key as one percent-encoded path segment.
fn encode(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// What `GET /cluster` says: the node's id, the leader's id, and addresses by id.
struct ClusterView {
    id: Option<u64>,
    leader: Option<u64>,
    nodes: Vec<(u64, String)>,
}

fn parse_cluster(json: &Value) -> ClusterView {
    let id = json.get("id").and_then(Value::as_u64);
    let leader = json.get("leader").and_then(Value::as_u64);
    let address = |v: &Value| -> Option<String> {
        v.as_str()
            .or_else(|| v.get("addr").and_then(Value::as_str))
            .or_else(|| v.get("address").and_then(Value::as_str))
            .map(str::to_owned)
    };
    let mut nodes = Vec::new();
    match json.get("nodes") {
        Some(Value::Object(map)) => {
            for (k, v) in map {
                if let (Ok(id), Some(addr)) = (k.parse(), address(v)) {
                    nodes.push((id, addr));
                }
            }
        }
        Some(Value::Array(list)) => {
            for v in list {
                if let (Some(id), Some(addr)) = (v.get("id").and_then(Value::as_u64), address(v)) {
                    nodes.push((id, addr));
                }
            }
        }
        _ => {}
    }
    ClusterView { id, leader, nodes }
}

impl FlashlogClient {
    /// A client of the nodes at `endpoints`, aimed at the first; requests time out
    /// after `timeout`.
    pub fn new(endpoints: &[String], timeout: Duration) -> Result<FlashlogClient> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(Duration::from_secs(1))
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?;
        let base = endpoints.first().context("no endpoint")?.clone();
        Ok(FlashlogClient {
            http,
            endpoints: Arc::new(endpoints.to_vec()),
            base,
        })
    }

    /// A put, acknowledged once committed by a majority and applied.
    pub async fn put(&mut self, key: &str, value: &[u8]) -> Result<()> {
        let url = format!("http://{}/kv/{}", self.base, encode(key));
        let response = self
            .http
            .put(&url)
            .body(value.to_vec())
            .send()
            .await
            .with_context(|| format!("PUT {url}"))?;
        let status = response.status();
        if status != StatusCode::OK {
            let body = response.text().await.unwrap_or_default();
            bail!("PUT {url}: {status}: {}", body.trim());
        }
        Ok(())
    }

    /// A linearizable read (the default consistency).
    pub async fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        let url = format!("http://{}/kv/{}", self.base, encode(key));
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        match response.status() {
            StatusCode::OK => Ok(Some(
                response
                    .bytes()
                    .await
                    .with_context(|| format!("GET {url}: body"))?
                    .to_vec(),
            )),
            StatusCode::NOT_FOUND => Ok(None),
            status => {
                let body = response.text().await.unwrap_or_default();
                bail!("GET {url}: {status}: {}", body.trim())
            }
        }
    }

    async fn cluster(&self, endpoint: &str) -> Result<ClusterView> {
        let url = format!("http://{endpoint}/cluster");
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        if !response.status().is_success() {
            bail!("GET {url}: {}", response.status());
        }
        let json: Value = response
            .json()
            .await
            .with_context(|| format!("GET {url}: not JSON"))?;
        Ok(parse_cluster(&json))
    }

    /// The leader's 1-based position in the endpoints, if every node answers and
    /// names the same leader.
    pub async fn leader(&self) -> Result<Option<usize>> {
        let mut views = Vec::new();
        for endpoint in self.endpoints.iter() {
            views.push(self.cluster(endpoint).await?);
        }
        let leader = views[0].leader;
        if leader.is_none() || views.iter().any(|v| v.leader != leader) {
            return Ok(None);
        }
        // Which endpoint is it: by each node's own id, else by the address map.
        if let Some(i) = views.iter().position(|v| v.id == leader) {
            return Ok(Some(i + 1));
        }
        let address = views[0]
            .nodes
            .iter()
            .find(|(id, _)| Some(*id) == leader)
            .map(|(_, a)| a.clone());
        Ok(address
            .and_then(|a| self.endpoints.iter().position(|e| *e == a))
            .map(|i| i + 1))
    }

    /// Aims this client at the current leader (asked of any node that answers).
    pub async fn follow_leader(&mut self) -> Result<()> {
        for endpoint in self.endpoints.iter() {
            let Ok(view) = self.cluster(endpoint).await else {
                continue;
            };
            let Some(leader) = view.leader else { continue };
            if view.id == Some(leader) {
                self.base = endpoint.clone();
                return Ok(());
            }
            if let Some((_, addr)) = view.nodes.iter().find(|(id, _)| *id == leader) {
                self.base = addr.clone();
                return Ok(());
            }
        }
        bail!(
            "no flashlog node at {} names a leader",
            self.endpoints.join(",")
        )
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_are_one_path_segment() {
        assert_eq!(encode("bench-1.2_x~"), "bench-1.2_x~");
        assert_eq!(encode("a/b c%"), "a%2Fb%20c%25");
    }

    #[test]
    fn cluster_json_with_nodes_as_a_map_or_a_list() {
        let map = parse_cluster(
            &serde_json::json!({"id": 2, "leader": 1, "nodes": {"1": "127.0.0.1:1", "2": {"addr": "127.0.0.1:2"}}}),
        );
        assert_eq!((map.id, map.leader), (Some(2), Some(1)));
        assert!(
            map.nodes.contains(&(1, "127.0.0.1:1".into()))
                && map.nodes.contains(&(2, "127.0.0.1:2".into()))
        );
        let list = parse_cluster(
            &serde_json::json!({"id": 1, "leader": null, "nodes": [{"id": 3, "address": "h:3"}]}),
        );
        assert_eq!(
            (list.leader, list.nodes),
            (None, vec![(3, "h:3".to_owned())])
        );
    }
}
