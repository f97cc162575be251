//! The openraft section (issue 17): three openraft nodes in one process on an
//! in-memory network, each node's log store flashlog-raft, an in-memory store (the
//! upper bound), raft-log, or RocksDB; tokio tasks as clients, each calling
//! `client_write` with 256 bytes on the leader and timing it until the leader has
//! applied it. Ratios are to the in-memory store, measured in the same run.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::openraft_cluster::{Cluster, Store};
use crate::openraft_types::Write;
use crate::receipts::Ratio;
use crate::stats::{median, RunResult, Summary};
use crate::system::BenchResult;

/// Bytes of each client write (the app data of the Raft entry).
pub const WRITE_BYTES: usize = 256;

/// What the section measured: every (store, clients) pair with each repetition's run.
#[derive(Debug, Clone, Default)]
pub struct RaftRuns {
    /// Seconds each run measured (after its warm-up).
    pub run_secs: f64,
    /// (store, concurrent clients, one run per repetition).
    pub runs: Vec<(Store, usize, Vec<RunResult>)>,
}

impl RaftRuns {
    fn of(&self, store: Store, clients: usize) -> Option<&Vec<RunResult>> {
        self.runs
            .iter()
            .find(|(s, c, _)| *s == store && *c == clients)
            .map(|(_, _, runs)| runs)
    }

    /// The client counts measured, ascending.
    pub fn client_counts(&self) -> Vec<usize> {
        let mut counts: Vec<usize> = self.runs.iter().map(|(_, c, _)| *c).collect();
        counts.sort_unstable();
        counts.dedup();
        counts
    }

    /// The stores measured, in the order they were listed.
    pub fn stores(&self) -> Vec<Store> {
        let mut stores = Vec::new();
        for (s, _, _) in &self.runs {
            if !stores.contains(s) {
                stores.push(*s);
            }
        }
        stores
    }

    /// Median writes/s and latencies of `store` at `clients`.
    pub fn summary(&self, store: Store, clients: usize) -> Option<Summary> {
        Summary::of(self.of(store, clients)?)
    }

    /// `store`'s writes/s over `base`'s at `clients`: of the medians, and per
    /// repetition (runs of one repetition ran back to back on the same disk).
    pub fn ratio(&self, store: Store, base: Store, clients: usize) -> Option<Ratio> {
        let runs = self.of(store, clients)?;
        let base_runs = self.of(base, clients)?;
        let per_rep: Vec<f64> = runs
            .iter()
            .zip(base_runs)
            .map(|(r, b)| r.ops_per_sec() / b.ops_per_sec())
            .collect();
        let base_median = self.summary(base, clients)?.ops_per_sec;
        (base_median > 0.0).then(|| Ratio {
            of_medians: self.summary(store, clients).map_or(0.0, |s| s.ops_per_sec) / base_median,
            min: per_rep.iter().copied().fold(f64::INFINITY, f64::min),
            max: per_rep.iter().copied().fold(0.0, f64::max),
            median_of_reps: median(per_rep),
        })
    }
}

/// Runs `clients` client tasks against a fresh three-node cluster on `store` under
/// `dir`: writes started during `warmup` are not counted, the rest of the run lasts
/// `run_time`. Each counted write's latency is from its `client_write` call until
/// it returned (committed by a quorum and applied on the leader).
///
/// # Errors
/// A cluster that does not start, a write that fails, or fewer entries applied on
/// the leader than writes acknowledged.
pub fn run(
    store: Store,
    clients: usize,
    warmup: Duration,
    run_time: Duration,
    dir: &Path,
) -> BenchResult<RunResult> {
    let scratch = tempfile::Builder::new()
        .prefix("flashlog-bench-openraft-")
        .tempdir_in(dir)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let result = runtime.block_on(async {
        let cluster = Cluster::start(store, scratch.path()).await?;
        let counted_from = Instant::now() + warmup;
        let stop = counted_from + run_time;
        let tasks: Vec<_> = (0..clients)
            .map(|client| {
                let leader = cluster.leader.clone();
                tokio::spawn(async move {
                    let payload = Write((0..WRITE_BYTES).map(|i| (i ^ client) as u8).collect());
                    let mut latencies = Vec::with_capacity(4096);
                    loop {
                        let t0 = Instant::now();
                        if t0 >= stop {
                            break;
                        }
                        // A leader whose lease lapsed (no quorum ack within the
                        // lease, as on a loaded machine) refuses writes until the
                        // next ack: the client retries, the wait counts in its latency.
                        loop {
                            match leader.client_write(payload.clone()).await {
                                Ok(_) => break,
                                Err(e)
                                    if e.forward_to_leader()
                                        .is_some_and(|f| f.leader_id.is_none_or(|id| id == 1)) =>
                                {
                                    if t0.elapsed() > Duration::from_secs(10) {
                                        return Err(format!(
                                            "client {client}: refused for 10 s: {e}"
                                        ));
                                    }
                                    tokio::time::sleep(Duration::from_millis(1)).await;
                                }
                                Err(e) => return Err(format!("client {client}: {e}")),
                            }
                        }
                        if t0 >= counted_from {
                            latencies.push(t0.elapsed().as_nanos() as u64);
                        }
                    }
                    Ok::<_, String>(latencies)
                })
            })
            .collect();
        let mut per_client = Vec::with_capacity(clients);
        for task in tasks {
            per_client.push(
                task.await
                    .map_err(|e| format!("a client task failed: {e}"))??,
            );
        }
        let elapsed = counted_from.elapsed();
        let result = RunResult::new(elapsed, per_client);
        let applied = cluster.leader_state.applied();
        cluster.shutdown().await?;
        if applied < result.ops {
            return Err(format!(
                "{}: {} writes acknowledged, {applied} entries applied on the leader",
                store.name(),
                result.ops
            )
            .into());
        }
        Ok::<_, crate::system::BoxError>(result)
    });
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

/// Runs every store at every client count, `reps` times, in ABBA order: the stores
/// in their listed order on even repetitions, reversed on odd ones.
///
/// # Errors
/// The first run that fails, named.
pub fn measure(
    stores: &[Store],
    client_counts: &[usize],
    warmup: Duration,
    run_time: Duration,
    reps: usize,
    dir: &Path,
) -> BenchResult<RaftRuns> {
    let mut out = RaftRuns {
        run_secs: run_time.as_secs_f64(),
        runs: Vec::new(),
    };
    for &clients in client_counts {
        let mut runs: Vec<Vec<RunResult>> = vec![Vec::new(); stores.len()];
        for rep in 0..reps {
            let order: Vec<usize> = if rep % 2 == 0 {
                (0..stores.len()).collect()
            } else {
                (0..stores.len()).rev().collect()
            };
            for i in order {
                let result = run(stores[i], clients, warmup, run_time, dir).map_err(|e| {
                    format!("openraft, {}, {clients} clients: {e}", stores[i].name())
                })?;
                eprintln!(
                    "  openraft {:<28} {clients:>4} clients  {:>9.0} writes/s  p50 {:>7.0} µs  p99 {:>7.0} µs",
                    stores[i].name(),
                    result.ops_per_sec(),
                    result.percentile_us(0.5),
                    result.percentile_us(0.99)
                );
                runs[i].push(result);
            }
        }
        for (i, r) in runs.into_iter().enumerate() {
            out.runs.push((stores[i], clients, r));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_store_takes_writes_through_three_nodes_and_ratios_pair_repetitions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stores = [Store::Memory, Store::Flashlog, Store::RaftLog];
        let runs = measure(
            &stores,
            &[1, 8],
            Duration::from_millis(50),
            Duration::from_millis(150),
            2,
            dir.path(),
        )
        .expect("measure");
        assert_eq!(runs.client_counts(), [1, 8]);
        assert_eq!(runs.stores(), stores);
        for store in stores {
            for clients in [1, 8] {
                let summary = runs.summary(store, clients).expect("ran");
                assert_eq!(summary.runs, 2);
                assert!(summary.ops_per_sec > 0.0, "{store:?} x{clients}");
                let ratio = runs.ratio(store, Store::Memory, clients).expect("ratio");
                assert!(ratio.min <= ratio.median_of_reps && ratio.median_of_reps <= ratio.max);
            }
        }
        let base = runs.ratio(Store::Memory, Store::Memory, 8).expect("ratio");
        assert_eq!((base.min, base.max, base.of_medians), (1.0, 1.0, 1.0));
        // The scratch directories are gone.
        assert_eq!(std::fs::read_dir(dir.path()).expect("read").count(), 0);
    }
}
