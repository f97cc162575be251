//! One client handle over either system: put, linearizable get, and who leads.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use crate::etcd::EtcdClient;
use crate::flashlog::FlashlogClient;
use crate::System;

/// A connected client of one system (cheap to clone; clones share connections).
#[derive(Clone)]
pub enum Client {
    /// etcd through gRPC.
    Etcd(Box<EtcdClient>),
    /// flashlog through HTTP.
    Flashlog(FlashlogClient),
}

impl Client {
    /// Connects to `endpoints` (HOST:PORT). For etcd, `conns` separate gRPC
    /// channels are opened and handed out by [`Client::handle`].
    pub async fn connect(
        system: System,
        endpoints: &[String],
        conns: usize,
        timeout: Duration,
    ) -> Result<Client> {
        Ok(match system {
            System::Etcd => Client::Etcd(Box::new(
                EtcdClient::connect(endpoints, conns, timeout).await?,
            )),
            System::Flashlog => Client::Flashlog(FlashlogClient::new(endpoints, timeout)?),
        })
    }

    /// The handle client number `n` uses (for etcd, one of the gRPC channels).
    pub fn handle(&self, n: usize) -> Client {
        match self {
            Client::Etcd(c) => Client::Etcd(Box::new(c.handle(n))),
            Client::Flashlog(c) => Client::Flashlog(c.clone()),
        }
    }

    /// Writes `value` at `key`; returns once the system acknowledged it.
    pub async fn put(&mut self, key: &str, value: &[u8]) -> Result<()> {
        match self {
            Client::Etcd(c) => c.put(key, value).await,
            Client::Flashlog(c) => c.put(key, value).await,
        }
    }

    /// Reads `key` linearizably.
    pub async fn get(&mut self, key: &str) -> Result<Option<Vec<u8>>> {
        match self {
            Client::Etcd(c) => c.get(key).await,
            Client::Flashlog(c) => c.get(key).await,
        }
    }

    /// The leader, as a 1-based position in the endpoints, if every node that
    /// answers agrees on one.
    pub async fn leader(&self) -> Result<Option<usize>> {
        match self {
            Client::Etcd(c) => c.leader().await,
            Client::Flashlog(c) => c.leader().await,
        }
    }

    /// Aims writes at the leader where the protocol lets the client choose
    /// (flashlog); etcd's client balances over its endpoints and followers forward.
    pub async fn follow_leader(&mut self) -> Result<()> {
        if let Client::Flashlog(c) = self {
            c.follow_leader().await?;
        }
        Ok(())
    }
}

/// Waits until all of `endpoints` answer, agree on a leader, and a write
/// succeeds; returns how long that took.
pub async fn wait_ready(
    system: System,
    endpoints: &[String],
    timeout: Duration,
) -> Result<Duration> {
    let start = Instant::now();
    let mut last_error = String::from("no attempt");
    while start.elapsed() < timeout {
        match try_ready(system, endpoints).await {
            Ok(()) => return Ok(start.elapsed()),
            Err(err) => last_error = format!("{err:#}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!(
        "{} cluster at {} not ready after {:?}: {last_error}",
        system.name(),
        endpoints.join(","),
        timeout
    )
}

async fn try_ready(system: System, endpoints: &[String]) -> Result<()> {
    let mut client = Client::connect(system, endpoints, 1, Duration::from_secs(2)).await?;
    if client.leader().await?.is_none() {
        bail!("no leader every node agrees on");
    }
    client.follow_leader().await?;
    client.put("bench/ready", b"ready").await
}
