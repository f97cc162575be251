//! etcd through its native gRPC API (the `etcd-client` crate): puts, linearizable
//! range reads (`serializable = false`, etcd's default), and the leader from each
//! member's `Status`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use etcd_client::{ConnectOptions, KvClient};

/// A client over one of a few gRPC channels, each balanced over all endpoints.
#[derive(Clone)]
pub struct EtcdClient {
    channels: Arc<Vec<KvClient>>,
    kv: KvClient,
    endpoints: Arc<Vec<String>>,
    timeout: Duration,
}

fn options(timeout: Duration) -> ConnectOptions {
    ConnectOptions::new()
        .with_timeout(timeout)
        .with_connect_timeout(Duration::from_secs(2))
}

fn urls(endpoints: &[String]) -> Vec<String> {
    endpoints.iter().map(|e| format!("http://{e}")).collect()
}

impl EtcdClient {
    /// Opens `conns` channels to `endpoints`; requests time out after `timeout`.
    pub async fn connect(
        endpoints: &[String],
        conns: usize,
        timeout: Duration,
    ) -> Result<EtcdClient> {
        let mut channels = Vec::with_capacity(conns);
        for _ in 0..conns.max(1) {
            let client = etcd_client::Client::connect(urls(endpoints), Some(options(timeout)))
                .await
                .with_context(|| format!("connecting to etcd at {}", endpoints.join(",")))?;
            channels.push(client.kv_client());
        }
        let kv = channels[0].clone();
        Ok(EtcdClient {
            channels: Arc::new(channels),
            kv,
            endpoints: Arc::new(endpoints.to_vec()),
            timeout,
        })
    }

    /// A handle on channel `n` (modulo their number).
    pub fn handle(&self, n: usize) -> EtcdClient {
        let mut handle = self.clone();
        handle.kv = self.channels[n % self.channels.len()].clone();
        handle
    }

    /// A put, acknowledged once committed (etcd fsyncs its WAL before that).
    pub async fn put(&mut self, key: &str, value: &[u8]) -> Result<()> {
        self.kv
            .put(key, value, None)
            .await
            .with_context(|| format!("etcd put {key}"))?;
        Ok(())
    }

    /// A linearizable read (a range request with etcd's default consistency).
    pub async fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        let response = self
            .kv
            .get(key, None)
            .await
            .with_context(|| format!("etcd get {key}"))?;
        Ok(response.kvs().first().map(|kv| kv.value().to_vec()))
    }

    /// The leader's 1-based position in the endpoints, if all members answer
    /// `Status` and name the same leader.
    pub async fn leader(&self) -> Result<Option<usize>> {
        let mut members = Vec::new();
        for endpoint in self.endpoints.iter() {
            let mut client = etcd_client::Client::connect(
                [format!("http://{endpoint}")],
                Some(options(self.timeout)),
            )
            .await
            .with_context(|| format!("connecting to etcd member {endpoint}"))?;
            let status = client
                .status()
                .await
                .with_context(|| format!("status of etcd member {endpoint}"))?;
            let Some(header) = status.header() else {
                bail!("status of etcd member {endpoint} has no header");
            };
            members.push((header.member_id(), status.leader()));
        }
        let leader = members[0].1;
        if leader == 0 || members.iter().any(|&(_, l)| l != leader) {
            return Ok(None);
        }
        Ok(members
            .iter()
            .position(|&(id, _)| id == leader)
            .map(|i| i + 1))
    }
}
