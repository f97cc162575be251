//! The comparison suite: every workload against every system in one invocation,
//! then the results folder (markdown, JSON, plots).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::baselines::{sequential_write, PreallocPool};
use crate::cli::{Args, Mode};
use crate::memory;
use crate::openraft_bench;
use crate::openraft_cluster::Store;
use crate::receipts::{self, Driver};
use crate::recovery;
use crate::report;
use crate::results::{summarise, Results, Row};
use crate::runner::{self, Workload};
use crate::stats::RunResult;
use crate::system::{BenchResult, Durability, System};

/// Entries per durable batch in the batched rows.
pub const BATCH: usize = 100;

/// The receipts section's drivers (issue 15), 256 B entries, in every preset: 64
/// blocking threads (the baseline), one thread with up to 1,024 receipts
/// outstanding, 64 tokio tasks on a runtime of 2 workers.
pub const RECEIPT_DRIVERS: [Driver; 3] = [
    Driver::Blocking { threads: 64 },
    Driver::Window { window: 1024 },
    Driver::Tasks {
        tasks: 64,
        workers: 2,
    },
];

/// Sizes and repetitions of one preset.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The preset.
    pub mode: Mode,
    /// Length of each timed run.
    pub run_time: Duration,
    /// Repetitions of each timed configuration.
    pub reps: usize,
    /// Entry sizes of the durable rows, bytes on disk.
    pub sizes: Vec<usize>,
    /// Thread counts of the durable rows.
    pub threads: Vec<usize>,
    /// Thread counts of the batched rows (256-byte entries).
    pub batch_threads: Vec<usize>,
    /// Entries of the unsynced rows (one thread, 256-byte entries).
    pub unsynced_entries: u64,
    /// Bytes of the replayed log.
    pub replay_bytes: u64,
    /// Log sizes whose open time is measured.
    pub open_sizes: Vec<u64>,
    /// Bytes of the sequential-bandwidth measurement.
    pub sequential_bytes: u64,
    /// Length of the tailing run.
    pub tail_time: Duration,
    /// Bytes of each per-thread preallocated file.
    pub pool_per_thread: u64,
    /// Bytes of the ideal group commit's preallocated file.
    pub pool_shared: u64,
    /// Bytes the peak-memory child appends.
    pub memory_bytes: u64,
    /// Concurrent clients of the openraft section's runs.
    pub raft_clients: Vec<usize>,
    /// Measured length of each openraft run (after its warm-up).
    pub raft_run_time: Duration,
    /// Warm-up of each openraft run: writes started in it are not counted.
    pub raft_warmup: Duration,
}

impl Plan {
    /// The preset of `args.mode()`, with its overrides.
    pub fn of(args: &Args) -> Plan {
        const MIB: u64 = 1 << 20;
        let mode = args.mode();
        let mut plan = match mode {
            Mode::Full => Plan {
                mode,
                run_time: Duration::from_secs(2),
                reps: 3,
                sizes: vec![64, 256, 4096, 65536],
                threads: vec![1, 4, 16, 64],
                batch_threads: vec![1, 16],
                unsynced_entries: 1 << 20,
                replay_bytes: 1024 * MIB,
                open_sizes: vec![256 * MIB, 1024 * MIB, 10240 * MIB],
                sequential_bytes: 1024 * MIB,
                tail_time: Duration::from_secs(5),
                pool_per_thread: 4 * MIB,
                pool_shared: 256 * MIB,
                memory_bytes: 2048 * MIB,
                raft_clients: vec![1, 64, 256],
                raft_run_time: Duration::from_secs(3),
                raft_warmup: Duration::from_millis(500),
            },
            Mode::Quick => Plan {
                mode,
                run_time: Duration::from_millis(400),
                reps: 2,
                sizes: vec![64, 256, 4096, 65536],
                threads: vec![1, 4, 16, 64],
                batch_threads: vec![1, 16],
                unsynced_entries: 1 << 18,
                replay_bytes: 256 * MIB,
                open_sizes: vec![64 * MIB, 256 * MIB],
                sequential_bytes: 256 * MIB,
                tail_time: Duration::from_secs(2),
                pool_per_thread: 2 * MIB,
                pool_shared: 128 * MIB,
                memory_bytes: 256 * MIB,
                raft_clients: vec![1, 64, 256],
                raft_run_time: Duration::from_secs(1),
                raft_warmup: Duration::from_millis(300),
            },
            Mode::Smoke => Plan {
                mode,
                run_time: Duration::from_millis(50),
                reps: 1,
                sizes: vec![64, 256, 4096, 65536],
                threads: vec![1, 4],
                batch_threads: vec![1, 4],
                unsynced_entries: 10_000,
                replay_bytes: 8 * MIB,
                open_sizes: vec![2 * MIB, 8 * MIB],
                sequential_bytes: 8 * MIB,
                tail_time: Duration::from_millis(200),
                pool_per_thread: MIB,
                pool_shared: 16 * MIB,
                memory_bytes: 16 * MIB,
                raft_clients: vec![1, 64],
                raft_run_time: Duration::from_millis(500),
                raft_warmup: Duration::from_millis(200),
            },
        };
        if let Some(seconds) = args.seconds {
            plan.run_time = Duration::from_secs_f64(seconds);
            plan.raft_run_time = plan.run_time;
        }
        if !args.clients.is_empty() {
            plan.raft_clients = args.clients.clone();
        }
        if !args.sizes.is_empty() {
            plan.sizes = args.sizes.clone();
        }
        if !args.threads.is_empty() {
            plan.threads = args.threads.clone();
        }
        if let Some(reps) = args.reps {
            plan.reps = reps.max(1);
        }
        plan
    }
}

fn uptime() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn timed_rows(
    section: &'static str,
    systems: &[System],
    workloads: &[Workload],
    plan: &Plan,
    dir: &Path,
    pool: &PreallocPool,
    rows: &mut Vec<Row>,
) -> BenchResult<()> {
    for &workload in workloads {
        let mut runs: Vec<Vec<RunResult>> = vec![Vec::new(); systems.len()];
        for rep in 0..plan.reps {
            // Rotate the order so no system always runs right after the same one.
            for k in 0..systems.len() {
                let i = (k + rep) % systems.len();
                let result = runner::timed(systems[i], workload, plan.run_time, dir, pool)
                    .map_err(|e| format!("{} {section} {workload:?}: {e}", systems[i].name()))?;
                runs[i].push(result);
            }
        }
        for (i, system_runs) in runs.iter().enumerate() {
            if let Some(row) = summarise(section, systems[i], workload, system_runs) {
                eprintln!(
                    "  {section:<8} {:>6} B x{:<3} {:<27} {:>10.0} entries/s  p99 {:>8.1} µs",
                    workload.entry_bytes,
                    workload.threads,
                    row.system.name(),
                    row.entries_per_sec(),
                    row.summary.p99_us
                );
                rows.push(row);
            }
        }
    }
    Ok(())
}

/// Runs the suite and writes the results folder.
pub fn run(args: &Args) -> BenchResult<()> {
    let plan = Plan::of(args);
    let started = Instant::now();
    let out: PathBuf = args.out.clone().unwrap_or_else(|| match plan.mode {
        Mode::Full => PathBuf::from("results"),
        Mode::Quick => PathBuf::from("results/quick"),
        Mode::Smoke => std::env::temp_dir().join("flashlog-bench-smoke"),
    });
    std::fs::create_dir_all(&args.dir)?;
    let mut results = Results {
        mode: plan.mode.name().to_owned(),
        run_time_secs: plan.run_time.as_secs_f64(),
        reps: plan.reps,
        ..Results::default()
    };
    results
        .machine
        .push(("load average before (1, 5, 15 min)".into(), uptime()));
    results.machine.push((
        "cores".into(),
        std::thread::available_parallelism()
            .map(|n| n.get().to_string())
            .unwrap_or_default(),
    ));
    eprintln!("flashlog-bench {}: {plan:?}", plan.mode.name());

    // The preallocated files and the sequential bandwidth serve the append sections only.
    if ["durable", "batched", "unsynced"]
        .iter()
        .any(|s| args.wanted(s))
    {
        let max_threads = plan
            .threads
            .iter()
            .chain(&plan.batch_threads)
            .copied()
            .max()
            .unwrap_or(1);
        eprintln!("preallocating the baselines' files ...");
        let pool = PreallocPool::create(
            &args.dir,
            max_threads,
            plan.pool_per_thread,
            plan.pool_shared,
        )?;
        eprintln!("  in {}", pool.path().display());
        let sequential = sequential_write(&args.dir, &pool, plan.sequential_bytes)?;
        results.sequential_bytes_per_sec = sequential.best();
        results.machine.push((
            "sequential write, 1 MiB writes + one fdatasync (MB/s)".into(),
            format!("{:.0}", sequential.streamed / 1e6),
        ));
        results.machine.push((
            "sequential write, 4 MiB write + fdatasync each, preallocated (MB/s)".into(),
            format!("{:.0}", sequential.durable_chunks / 1e6),
        ));
        eprintln!("sequential write: {sequential:?}");

        if args.wanted("durable") {
            eprintln!("durable appends ...");
            let mut workloads = Vec::new();
            for &entry_bytes in &plan.sizes {
                for &threads in &plan.threads {
                    workloads.push(Workload {
                        entry_bytes,
                        threads,
                        batch: 1,
                        durability: Durability::Durable,
                    });
                }
            }
            timed_rows(
                "durable",
                &args.chosen(&System::ALL),
                &workloads,
                &plan,
                &args.dir,
                &pool,
                &mut results.rows,
            )?;
        }
        if args.wanted("batched") {
            eprintln!("batched appends ...");
            let workloads: Vec<_> = plan
                .batch_threads
                .iter()
                .map(|&threads| Workload {
                    entry_bytes: 256,
                    threads,
                    batch: BATCH,
                    durability: Durability::Durable,
                })
                .collect();
            timed_rows(
                "batched",
                &args.chosen(&System::ALL),
                &workloads,
                &plan,
                &args.dir,
                &pool,
                &mut results.rows,
            )?;
        }
        if args.wanted("unsynced") {
            eprintln!("unsynced appends ...");
            let systems = args.chosen(&[System::Flashlog, System::RaftEngine, System::PlainLoop]);
            let workload = Workload {
                entry_bytes: 256,
                threads: 1,
                batch: 1,
                durability: Durability::Buffered,
            };
            let mut runs: Vec<Vec<RunResult>> = vec![Vec::new(); systems.len()];
            for _ in 0..plan.reps {
                for (i, &system) in systems.iter().enumerate() {
                    runs[i].push(runner::buffered_count(
                        system,
                        256,
                        plan.unsynced_entries,
                        &args.dir,
                        &pool,
                    )?);
                }
            }
            for (i, system_runs) in runs.iter().enumerate() {
                if let Some(row) = summarise("unsynced", systems[i], workload, system_runs) {
                    eprintln!(
                        "  unsynced {:<27} {:>10.0} entries/s",
                        row.system.name(),
                        row.entries_per_sec()
                    );
                    results.rows.push(row);
                }
            }
        }
        drop(pool);
    }
    if args.wanted("receipts") {
        eprintln!("receipts ...");
        let measured =
            receipts::measure(&RECEIPT_DRIVERS, 256, plan.run_time, plan.reps, &args.dir)?;
        for &driver in &RECEIPT_DRIVERS {
            if let (Some(summary), Some(ratio)) = (measured.summary(driver), measured.ratio(driver))
            {
                eprintln!(
                    "  {:<58} {:>10.0} entries/s  {:.2}× blocking (reps {:.2}–{:.2})",
                    driver.name(),
                    summary.ops_per_sec,
                    ratio.of_medians,
                    ratio.min,
                    ratio.max
                );
            }
        }
        results.receipts = Some(measured);
    }
    if args.wanted("replay") {
        eprintln!("replay ...");
        results.replays = recovery::replay_all(
            &args.dir,
            256,
            plan.replay_bytes,
            &args.chosen(&[System::Flashlog, System::Okaywal, System::RaftEngine]),
        )?;
        for r in &results.replays {
            eprintln!(
                "  {:<12} open {:?} s, replay {:.3} s, read files {:.3} s, owned iteration {:?} s",
                r.system.name(),
                r.open_secs,
                r.replay_secs,
                r.read_files_secs,
                r.owned_iter_secs
            );
        }
    }
    if args.wanted("open") {
        eprintln!("open time vs size ...");
        let (open_times, crash) = recovery::open_times(&args.dir, 256, &plan.open_sizes, 3)?;
        results.open_times = open_times;
        results.crash_open = crash;
        for o in &results.open_times {
            eprintln!("  {} bytes: {:.4} s", o.bytes, o.open_secs);
        }
        if let Some(c) = &results.crash_open {
            eprintln!("  after a crash, {} bytes: {:.4} s", c.bytes, c.open_secs);
        }
    }
    if args.wanted("tail") {
        eprintln!("tailing ...");
        results.tail = Some(recovery::tail(&args.dir, 256, plan.tail_time)?);
    }
    if args.wanted("follower") {
        eprintln!("Written and Durable followers ...");
        let f = receipts::followers(&args.dir, 256, plan.tail_time)?;
        eprintln!(
            "  p50 / p99 µs: append {:.0} / {:.0}; Written follower {:.0} / {:.0}; Durable follower {:.0} / {:.0}",
            f.append.percentile_us(0.5),
            f.append.percentile_us(0.99),
            f.written.percentile_us(0.5),
            f.written.percentile_us(0.99),
            f.durable.percentile_us(0.5),
            f.durable.percentile_us(0.99)
        );
        results.followers = Some(f);
    }
    if args.wanted("raft") {
        eprintln!(
            "openraft: three nodes in one process, {} B client writes ...",
            openraft_bench::WRITE_BYTES
        );
        let stores = if args.stores.is_empty() {
            Store::available()
        } else {
            args.stores
                .iter()
                .filter_map(|id| Store::from_id(id))
                .collect()
        };
        results.raft = Some(openraft_bench::measure(
            &stores,
            &plan.raft_clients,
            plan.raft_warmup,
            plan.raft_run_time,
            plan.reps,
            &args.dir,
        )?);
    }
    if args.wanted("memory") {
        eprintln!("peak memory (child process) ...");
        results.memory = Some(memory::measure(&args.dir, plan.memory_bytes)?);
    }
    results
        .machine
        .push(("load average after (1, 5, 15 min)".into(), uptime()));
    results.total_secs = started.elapsed().as_secs_f64();
    report::write(&out, &results)?;
    eprintln!(
        "done in {:.0} s; results in {}",
        results.total_secs,
        out.display()
    );
    Ok(())
}
