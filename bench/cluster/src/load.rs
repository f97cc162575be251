//! Closed-loop load: N clients, each sending its next request as soon as the last
//! one returned, for a warm-up and then a measured duration.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::client::Client;
use crate::stats::Latencies;
use crate::{OpKind, System};

/// What to run.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The system.
    pub system: System,
    /// Its client endpoints.
    pub endpoints: Vec<String>,
    /// Writes or reads.
    pub op: OpKind,
    /// Measured time per client count.
    pub duration: Duration,
    /// Unmeasured time before it.
    pub warmup: Duration,
    /// Value size in bytes.
    pub value_size: usize,
    /// Keys written before reads, and read from.
    pub read_keys: usize,
    /// gRPC channels the etcd clients share.
    pub etcd_conns: usize,
}

/// One measured load: a JSON line of the results file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LoadResult {
    /// Always "load".
    pub kind: String,
    /// The system.
    pub system: System,
    /// Writes or reads.
    pub op: OpKind,
    /// Concurrent clients.
    pub clients: usize,
    /// gRPC channels (etcd) or 0 (flashlog: one HTTP connection per client in flight).
    pub conns: usize,
    /// Value size in bytes.
    pub value_size: usize,
    /// Measured seconds.
    pub seconds: f64,
    /// Operations completed in them.
    pub ops: u64,
    /// Operations that failed in them.
    pub errors: u64,
    /// Operations per second.
    pub ops_per_s: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Highest latency, ms.
    pub max_ms: f64,
    /// Mean latency, ms.
    pub mean_ms: f64,
}

/// A value of `size` bytes (printable, different per key).
pub fn value(size: usize, seed: usize) -> Vec<u8> {
    (0..size).map(|i| b'a' + ((i + seed) % 26) as u8).collect()
}

fn read_key(i: usize) -> String {
    format!("read-{i}")
}

/// Runs the load at each client count, printing a table row and appending a JSON
/// line to `out` for each.
pub async fn run_all(spec: &Spec, clients: &[usize], out: Option<&Path>) -> Result<()> {
    let client = Client::connect(
        spec.system,
        &spec.endpoints,
        spec.etcd_conns,
        Duration::from_secs(10),
    )
    .await?;
    let mut client = client;
    client.follow_leader().await?;
    if spec.op == OpKind::Read {
        populate(&client, spec).await?;
    }
    println!(
        "{:<9} {:<5} {:>7} {:>10} {:>9} {:>9} {:>9} {:>7}",
        "system", "op", "clients", "ops/s", "p50 ms", "p99 ms", "max ms", "errors"
    );
    for &n in clients {
        let result = run_one(&client, spec, n).await?;
        println!(
            "{:<9} {:<5} {:>7} {:>10.0} {:>9.2} {:>9.2} {:>9.1} {:>7}",
            result.system.name(),
            op_name(result.op),
            result.clients,
            result.ops_per_s,
            result.p50_ms,
            result.p99_ms,
            result.max_ms,
            result.errors
        );
        if let Some(path) = out {
            crate::report::append_result(path, &result)?;
        }
    }
    Ok(())
}

/// "write" or "read".
pub fn op_name(op: OpKind) -> &'static str {
    match op {
        OpKind::Write => "write",
        OpKind::Read => "read",
    }
}

/// Writes the keys a read load reads, 32 at a time.
async fn populate(client: &Client, spec: &Spec) -> Result<()> {
    let workers = 32.min(spec.read_keys.max(1));
    let mut tasks = Vec::new();
    for w in 0..workers {
        let mut c = client.handle(w);
        let (keys, size) = (spec.read_keys, spec.value_size);
        tasks.push(tokio::spawn(async move {
            let mut i = w;
            while i < keys {
                c.put(&read_key(i), &value(size, i)).await?;
                i += workers;
            }
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await.context("populating task")??;
    }
    Ok(())
}

struct TaskResult {
    latencies: Latencies,
    errors: u64,
    first_error: Option<String>,
}

async fn run_one(client: &Client, spec: &Spec, clients: usize) -> Result<LoadResult> {
    let start = Instant::now();
    let measure_from = start + spec.warmup;
    let until = measure_from + spec.duration;
    let mut tasks = Vec::with_capacity(clients);
    for t in 0..clients {
        let mut c = client.handle(t);
        let (op, size, keys) = (spec.op, spec.value_size, spec.read_keys);
        tasks.push(tokio::spawn(async move {
            let mut result = TaskResult {
                latencies: Latencies::default(),
                errors: 0,
                first_error: None,
            };
            let write_value = value(size, t);
            let mut seq = 0usize;
            loop {
                let began = Instant::now();
                if began >= until {
                    break;
                }
                let outcome = match op {
                    OpKind::Write => c.put(&format!("w-{clients}-{t}-{seq}"), &write_value).await,
                    OpKind::Read => {
                        let i = (t * 7919 + seq * 104_729) % keys.max(1);
                        match c.get(&read_key(i)).await {
                            Ok(Some(v)) if v == value(size, i) => Ok(()),
                            Ok(other) => Err(anyhow::anyhow!(
                                "read {} returned {:?} bytes, not the value written",
                                read_key(i),
                                other.map(|v| v.len())
                            )),
                            Err(err) => Err(err),
                        }
                    }
                };
                seq += 1;
                let ended = Instant::now();
                let measured = began >= measure_from && ended <= until;
                match outcome {
                    Ok(()) if measured => result.latencies.record(ended - began),
                    Ok(()) => {}
                    Err(err) => {
                        if measured {
                            result.errors += 1;
                        }
                        result.first_error.get_or_insert_with(|| format!("{err:#}"));
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                }
            }
            result
        }));
    }
    let mut latencies = Latencies::default();
    let mut errors = 0;
    let mut first_error = None;
    for task in tasks {
        let r = task.await.context("load task")?;
        latencies.merge(r.latencies);
        errors += r.errors;
        if first_error.is_none() {
            first_error = r.first_error;
        }
    }
    if let Some(err) = &first_error {
        eprintln!(
            "{} {} x{clients}: first error: {err}",
            spec.system.name(),
            op_name(spec.op)
        );
    }
    let seconds = spec.duration.as_secs_f64();
    let ops = latencies.len() as u64;
    if ops == 0 {
        bail!(
            "{} {} with {clients} clients: no operation succeeded ({})",
            spec.system.name(),
            op_name(spec.op),
            first_error.unwrap_or_default()
        );
    }
    Ok(LoadResult {
        kind: "load".into(),
        system: spec.system,
        op: spec.op,
        clients,
        conns: match spec.system {
            System::Etcd => spec.etcd_conns,
            System::Flashlog => 0,
        },
        value_size: spec.value_size,
        seconds,
        ops,
        errors,
        ops_per_s: ops as f64 / seconds,
        p50_ms: latencies.percentile_ms(50.0),
        p99_ms: latencies.percentile_ms(99.0),
        max_ms: latencies.percentile_ms(100.0),
        mean_ms: latencies.mean_ms(),
    })
}
