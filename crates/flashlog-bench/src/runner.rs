//! Append workloads: durable appends, durable batches and buffered appends, each run
//! the same way against every system.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::baselines::{PlainLoop, PreallocPool};
use crate::group_commit::{IdealGroupCommit, SyncerGroupCommit};
use crate::libraries::{FlashlogLog, OkaywalLog, RaftEngineLog};
use crate::stats::RunResult;
use crate::system::{BenchResult, Durability, Log, System, FRAMING};

/// One append configuration.
#[derive(Debug, Clone, Copy)]
pub struct Workload {
    /// Bytes of each entry in flashlog's on-disk format.
    pub entry_bytes: usize,
    /// Appending threads.
    pub threads: usize,
    /// Entries per append call (1: single appends).
    pub batch: usize,
    /// Durable before each call returns, or buffered with one sync at the end.
    pub durability: Durability,
}

impl Workload {
    /// Payload handed to libraries; baselines write the whole entry.
    pub fn payload(&self, system: System, thread: usize) -> Vec<u8> {
        let len = if system.is_baseline() {
            self.entry_bytes
        } else {
            self.entry_bytes - FRAMING
        };
        (0..len).map(|i| (i as u8) ^ (thread as u8)).collect()
    }
}

/// Opens `system` in `dir` for `threads` appending threads.
pub fn open(
    system: System,
    dir: &Path,
    threads: usize,
    durability: Durability,
    pool: &PreallocPool,
) -> BenchResult<Box<dyn Log>> {
    Ok(match system {
        System::Flashlog => Box::new(FlashlogLog::open(dir, durability)?),
        System::Okaywal => Box::new(OkaywalLog::open(dir)?),
        System::RaftEngine => Box::new(RaftEngineLog::open(dir, threads, durability)?),
        System::PlainLoop => Box::new(PlainLoop::appending(dir, threads, durability)?),
        System::PlainPrealloc => Box::new(PlainLoop::preallocated(pool, threads, durability)?),
        System::IdealGroupCommit => Box::new(IdealGroupCommit::open(pool)?),
        System::SyncerGroupCommit => Box::new(SyncerGroupCommit::open(dir)?),
    })
}

/// Opens `system`'s log for `workload` in a fresh scratch folder under `dir`, which
/// goes when the returned guard is dropped (after the log).
fn open_in_scratch(
    system: System,
    dir: &Path,
    workload: Workload,
    pool: &PreallocPool,
) -> BenchResult<(tempfile::TempDir, Box<dyn Log>)> {
    let scratch = tempfile::Builder::new()
        .prefix("flashlog-bench-run-")
        .tempdir_in(dir)?;
    let log = open(
        system,
        scratch.path(),
        workload.threads,
        workload.durability,
        pool,
    )?;
    Ok((scratch, log))
}

/// Runs `workload` against `system` for `run_time` (durable) and returns the
/// latency of every call; ops count calls, so entries are `ops * batch`.
pub fn timed(
    system: System,
    workload: Workload,
    run_time: Duration,
    dir: &Path,
    pool: &PreallocPool,
) -> BenchResult<RunResult> {
    let (_scratch, log) = open_in_scratch(system, dir, workload, pool)?;
    let log = &*log;
    let start = Instant::now();
    let per_thread = std::thread::scope(|scope| -> BenchResult<Vec<Vec<u64>>> {
        let workers: Vec<_> = (0..workload.threads)
            .map(|thread| {
                scope.spawn(move || -> BenchResult<Vec<u64>> {
                    let payload = workload.payload(system, thread);
                    let payloads: Vec<&[u8]> = vec![&payload[..]; workload.batch];
                    let mut latencies = Vec::with_capacity(4096);
                    while start.elapsed() < run_time {
                        let t0 = Instant::now();
                        if workload.batch == 1 {
                            log.append(thread, &payload)?;
                        } else {
                            log.append_batch(thread, &payloads)?;
                        }
                        latencies.push(t0.elapsed().as_nanos() as u64);
                    }
                    Ok(latencies)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().map_err(|_| "an append thread panicked")?)
            .collect()
    })?;
    if workload.durability == Durability::Buffered {
        log.sync()?;
    }
    let elapsed = start.elapsed();
    Ok(RunResult::new(elapsed, per_thread))
}

/// Appends `entries` entries from one thread without waiting for durability, then
/// syncs once; the time includes that sync.
pub fn buffered_count(
    system: System,
    entry_bytes: usize,
    entries: u64,
    dir: &Path,
    pool: &PreallocPool,
) -> BenchResult<RunResult> {
    let workload = Workload {
        entry_bytes,
        threads: 1,
        batch: 1,
        durability: Durability::Buffered,
    };
    let (_scratch, log) = open_in_scratch(system, dir, workload, pool)?;
    let payload = workload.payload(system, 0);
    let mut latencies = Vec::with_capacity(entries as usize);
    let start = Instant::now();
    for _ in 0..entries {
        let t0 = Instant::now();
        log.append(0, &payload)?;
        latencies.push(t0.elapsed().as_nanos() as u64);
    }
    log.sync()?;
    let elapsed = start.elapsed();
    drop(log);
    Ok(RunResult::new(elapsed, vec![latencies]))
}
