//! Leader failover: SIGKILL the leader, time until a write succeeds through the
//! two survivors, restart the killed node, let it catch up; several times.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::{Deserialize, Serialize};

use crate::client::{wait_ready, Client};
use crate::state::Cluster;
use crate::stats::median;
use crate::System;

/// The failover measurement: a JSON line of the results file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FailoverResult {
    /// Always "failover".
    pub kind: String,
    /// The system.
    pub system: System,
    /// Milliseconds from the SIGKILL to the first acknowledged write, per kill.
    pub samples_ms: Vec<f64>,
    /// Their median.
    pub median_ms: f64,
}

/// How long one write attempt may take while no leader serves.
const ATTEMPT: Duration = Duration::from_millis(500);
/// Pause between attempts.
const PAUSE: Duration = Duration::from_millis(5);
/// The most a failover may take before the measurement gives up.
const GIVE_UP: Duration = Duration::from_secs(60);

/// Runs `kills` leader kills on the cluster in `dir`.
pub async fn run(dir: &Path, kills: usize, settle: Duration, out: Option<&Path>) -> Result<()> {
    let cluster = Cluster::open(dir)?;
    let mut samples = Vec::with_capacity(kills);
    for round in 1..=kills {
        wait_ready(cluster.system, &cluster.endpoints, Duration::from_secs(60)).await?;
        let client = Client::connect(
            cluster.system,
            &cluster.endpoints,
            1,
            Duration::from_secs(2),
        )
        .await?;
        let leader = find_leader(&client).await?;
        let survivors: Vec<String> = cluster
            .endpoints
            .iter()
            .enumerate()
            .filter(|&(i, _)| i + 1 != leader)
            .map(|(_, e)| e.clone())
            .collect();
        // Connected before the kill, so the measurement holds no connection setup
        // to the survivors (a flashlog client re-resolves the leader each attempt).
        let mut probe = Client::connect(cluster.system, &survivors, 1, ATTEMPT).await?;
        let killed_at = Instant::now();
        cluster.kill(leader)?;
        let elapsed = loop {
            let attempt = probe_write(&mut probe, round).await;
            if attempt.is_ok() {
                break killed_at.elapsed();
            }
            if killed_at.elapsed() > GIVE_UP {
                bail!("no write succeeded within {GIVE_UP:?} of killing leader node {leader}");
            }
            tokio::time::sleep(PAUSE).await;
        };
        let ms = elapsed.as_secs_f64() * 1000.0;
        println!(
            "{} kill {round}: leader node {leader} killed, a write succeeded after {ms:.0} ms",
            cluster.system.name()
        );
        samples.push(ms);
        cluster.restart(leader)?;
        wait_ready(cluster.system, &cluster.endpoints, Duration::from_secs(60)).await?;
        tokio::time::sleep(settle).await;
    }
    let result = FailoverResult {
        kind: "failover".into(),
        system: cluster.system,
        median_ms: median(&samples).unwrap_or(0.0),
        samples_ms: samples,
    };
    println!(
        "{} failover: median {:.0} ms over {} kills",
        result.system.name(),
        result.median_ms,
        result.samples_ms.len()
    );
    if let Some(path) = out {
        crate::report::append_result(path, &result)?;
    }
    Ok(())
}

async fn find_leader(client: &Client) -> Result<usize> {
    let start = Instant::now();
    loop {
        if let Ok(Some(leader)) = client.leader().await {
            return Ok(leader);
        }
        if start.elapsed() > Duration::from_secs(30) {
            bail!("the nodes did not agree on a leader within 30 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One write through the survivors, bounded by [`ATTEMPT`].
async fn probe_write(probe: &mut Client, round: usize) -> Result<()> {
    let attempt = async {
        // flashlog: ask the survivors who leads now (none may yet); a 307 to the
        // dead leader fails to connect and is retried.
        let _ = probe.follow_leader().await;
        probe
            .put(&format!("failover-{round}"), b"after the kill")
            .await
    };
    match tokio::time::timeout(ATTEMPT, attempt).await {
        Ok(result) => result,
        Err(_) => bail!("attempt timed out"),
    }
}
