//! Durable 256-byte appends from 1, 8 and 64 threads, beside the baselines.

use std::sync::Arc;
use std::thread;
use std::time::Instant;

use flashlog_wal::{Op, Options, SyncPolicy, Wal};

use crate::legacy::{plain_loop, syncer_thread_group_commit as ideal_group_commit};
use crate::stats::RunResult;
use crate::Config;

/// Bytes of each entry on disk: 17 bytes of framing, an 8-byte key, 231 bytes of value.
pub const ENTRY_LEN: usize = 256;
const KEY_LEN: usize = 8;
const VALUE_LEN: usize = ENTRY_LEN - 17 - KEY_LEN;

fn flashlog_run(config: &Config, threads: usize) -> Result<RunResult, Box<dyn std::error::Error>> {
    let dir = tempfile::Builder::new()
        .prefix("flashlog-bench-")
        .tempdir_in(&config.dir)?;
    let wal = Arc::new(Wal::open(
        dir.path(),
        Options::default().sync_policy(SyncPolicy::Always),
    )?);
    let start = Instant::now();
    let run_time = config.run_time;
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let wal = Arc::clone(&wal);
            thread::spawn(move || -> flashlog_wal::Result<Vec<u64>> {
                let value = vec![t as u8; VALUE_LEN];
                let mut latencies = Vec::new();
                let mut i = 0u64;
                while start.elapsed() < run_time {
                    let key = (i << 8 | t as u64).to_le_bytes();
                    debug_assert_eq!(key.len(), KEY_LEN);
                    let t0 = Instant::now();
                    wal.append(Op::Put, &key, &value)?;
                    latencies.push(t0.elapsed().as_nanos() as u64);
                    i += 1;
                }
                Ok(latencies)
            })
        })
        .collect();
    let mut per_thread = Vec::new();
    for worker in workers {
        per_thread.push(worker.join().map_err(|_| "an append thread panicked")??);
    }
    let elapsed = start.elapsed();
    wal.close()?;
    Ok(RunResult::new(elapsed, per_thread))
}

fn row(name: &str, threads: usize, result: &RunResult, ratios: &[(&str, f64)]) {
    let mb_per_sec = result.ops_per_sec() * ENTRY_LEN as f64 / 1e6;
    let ratios: Vec<String> = ratios
        .iter()
        .map(|(name, r)| format!("{r:.2}x {name}"))
        .collect();
    println!(
        "| {name:<28} | {threads:>3} | {:>9.0} | {mb_per_sec:>6.2} | {:>8.1} | {:>8.1} | {} |",
        result.ops_per_sec(),
        result.percentile_us(0.5),
        result.percentile_us(0.99),
        ratios.join(", ")
    );
}

/// Runs every append configuration and prints the table.
pub fn run(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    let scratch = tempfile::Builder::new()
        .prefix("flashlog-bench-")
        .tempdir_in(&config.dir)?;
    println!(
        "| system                       | thr | entries/s |   MB/s |  p50 µs |  p99 µs | ratio |"
    );
    println!(
        "|------------------------------|-----|-----------|--------|---------|---------|-------|"
    );
    let plain = plain_loop(scratch.path(), ENTRY_LEN, config.run_time, false)?;
    row("plain write+fdatasync", 1, &plain, &[]);
    let prealloc = plain_loop(scratch.path(), ENTRY_LEN, config.run_time, true)?;
    row(
        "plain loop, preallocated",
        1,
        &prealloc,
        &[("plain", prealloc.ops_per_sec() / plain.ops_per_sec())],
    );
    for &threads in &config.threads {
        let ideal = ideal_group_commit(scratch.path(), threads, ENTRY_LEN, config.run_time)?;
        row(
            "group commit, syncer thread",
            threads,
            &ideal,
            &[("plain", ideal.ops_per_sec() / plain.ops_per_sec())],
        );
        let ours = flashlog_run(config, threads)?;
        row(
            "flashlog (SyncPolicy::Always)",
            threads,
            &ours,
            &[
                ("plain", ours.ops_per_sec() / plain.ops_per_sec()),
                ("syncer-thread gc", ours.ops_per_sec() / ideal.ops_per_sec()),
            ],
        );
    }
    Ok(())
}
