//! Durable receipts (issue 15): how many durable entries per second one thread
//! submitting with receipts outstanding, and tokio tasks awaiting them, get
//! against blocking threads on the same log, same run; and how soon a
//! `Visibility::Written` follower sees an entry against a `Durable` one.
//!
//! Every driver appends flashlog entries of the same size under
//! `SyncPolicy::Always` into a fresh log: an entry counts once its `append`
//! returned or its receipt resolved `Ok`, that is once an fdatasync covered it.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use flashlog_wal::{Op, Options, Receipt, SyncPolicy, Visibility, Wal};

use crate::stats::{median, RunResult, Summary};
use crate::system::{BenchResult, FRAMING, KEY_LEN};

/// How entries are handed to the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// Threads each calling the blocking `Wal::append` (the baseline of the ratios).
    Blocking {
        /// Appending threads.
        threads: usize,
    },
    /// One thread calling `Wal::submit`, waiting on the oldest receipt whenever
    /// `window` are outstanding.
    Window {
        /// Receipts outstanding at most.
        window: usize,
    },
    /// Tokio tasks on a multi-thread runtime, each submitting and awaiting its receipt.
    Tasks {
        /// Tasks.
        tasks: usize,
        /// Worker threads of the runtime.
        workers: usize,
    },
}

impl Driver {
    /// Name in tables and JSON.
    pub fn name(self) -> String {
        match self {
            Driver::Blocking { threads } => format!("{threads} threads, blocking append"),
            Driver::Window { window } => {
                format!("1 thread, submit, up to {window} receipts outstanding")
            }
            Driver::Tasks { tasks, workers } => {
                format!("{tasks} tokio tasks on {workers} workers, submit + .await")
            }
        }
    }
}

/// The drivers of one invocation, each run `reps` times.
#[derive(Debug, Clone)]
pub struct Receipts {
    /// Bytes of each entry in flashlog's format.
    pub entry_bytes: usize,
    /// The drivers, the blocking baseline first, with each repetition's run.
    pub runs: Vec<(Driver, Vec<RunResult>)>,
}

impl Receipts {
    /// The median and spread of `driver`'s repetitions.
    pub fn summary(&self, driver: Driver) -> Option<Summary> {
        let (_, runs) = self.runs.iter().find(|(d, _)| *d == driver)?;
        Summary::of(runs)
    }

    /// The baseline: the blocking threads.
    pub fn baseline(&self) -> Option<Driver> {
        self.runs
            .iter()
            .map(|(d, _)| *d)
            .find(|d| matches!(d, Driver::Blocking { .. }))
    }

    /// `driver`'s entries/s over the baseline's: the ratio of the medians, and the
    /// lowest and highest ratio of two runs of the same repetition (they ran back
    /// to back, so they saw the same disk).
    pub fn ratio(&self, driver: Driver) -> Option<Ratio> {
        let base = self.baseline()?;
        let (_, base_runs) = self.runs.iter().find(|(d, _)| *d == base)?;
        let (_, runs) = self.runs.iter().find(|(d, _)| *d == driver)?;
        let per_rep: Vec<f64> = runs
            .iter()
            .zip(base_runs)
            .map(|(r, b)| r.ops_per_sec() / b.ops_per_sec())
            .collect();
        let medians = self.summary(driver)?.ops_per_sec / self.summary(base)?.ops_per_sec;
        Some(Ratio {
            of_medians: medians,
            min: per_rep.iter().copied().fold(f64::INFINITY, f64::min),
            max: per_rep.iter().copied().fold(0.0, f64::max),
            median_of_reps: median(per_rep),
        })
    }
}

/// A ratio of entries/s to the blocking baseline.
#[derive(Debug, Clone, Copy)]
pub struct Ratio {
    /// Median entries/s over the baseline's median entries/s.
    pub of_medians: f64,
    /// The median of the per-repetition ratios.
    pub median_of_reps: f64,
    /// The lowest per-repetition ratio.
    pub min: f64,
    /// The highest per-repetition ratio.
    pub max: f64,
}

fn open(dir: &Path) -> BenchResult<Wal> {
    Ok(Wal::open(
        dir,
        Options::default().sync_policy(SyncPolicy::Always),
    )?)
}

/// Key and value of an entry of `entry_bytes` bytes on disk.
fn entry(entry_bytes: usize, tag: usize) -> ([u8; KEY_LEN], Vec<u8>) {
    let key = (tag as u64).to_le_bytes();
    let value = (0..entry_bytes - FRAMING - KEY_LEN)
        .map(|i| (i as u8) ^ (tag as u8))
        .collect();
    (key, value)
}

fn nanos(since: Instant) -> u64 {
    since.elapsed().as_nanos() as u64
}

/// Runs `driver` for `run_time` on a fresh log under `dir`: entries made durable,
/// and for each the time from its `append`/`submit` call until the caller learnt
/// it durable (for the window, when it waited on that receipt, which may be well
/// after it resolved).
pub fn run(
    driver: Driver,
    entry_bytes: usize,
    run_time: Duration,
    dir: &Path,
) -> BenchResult<RunResult> {
    let scratch = tempfile::Builder::new()
        .prefix("flashlog-bench-receipts-")
        .tempdir_in(dir)?;
    let wal = Arc::new(open(scratch.path())?);
    let result = match driver {
        Driver::Blocking { threads } => blocking(&wal, threads, entry_bytes, run_time),
        Driver::Window { window } => window_of(&wal, window, entry_bytes, run_time),
        Driver::Tasks { tasks, workers } => {
            tokio_tasks(&wal, tasks, workers, entry_bytes, run_time)
        }
    }?;
    let wal = Arc::into_inner(wal).ok_or("a driver kept the log")?;
    if wal.durable_seq() != result.ops {
        return Err(format!(
            "{}: {} entries acknowledged, {} durable",
            driver.name(),
            result.ops,
            wal.durable_seq()
        )
        .into());
    }
    wal.close()?;
    Ok(result)
}

fn blocking(
    wal: &Wal,
    threads: usize,
    entry_bytes: usize,
    run_time: Duration,
) -> BenchResult<RunResult> {
    let start = Instant::now();
    let per_thread = std::thread::scope(|scope| -> BenchResult<Vec<Vec<u64>>> {
        let workers: Vec<_> = (0..threads)
            .map(|thread| {
                scope.spawn(move || -> BenchResult<Vec<u64>> {
                    let (key, value) = entry(entry_bytes, thread);
                    let mut latencies = Vec::with_capacity(4096);
                    while start.elapsed() < run_time {
                        let t0 = Instant::now();
                        wal.append(Op::Put, &key, &value)?;
                        latencies.push(nanos(t0));
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
    Ok(RunResult::new(start.elapsed(), per_thread))
}

fn window_of(
    wal: &Wal,
    window: usize,
    entry_bytes: usize,
    run_time: Duration,
) -> BenchResult<RunResult> {
    let (key, value) = entry(entry_bytes, 0);
    let mut outstanding: VecDeque<(Instant, Receipt)> = VecDeque::with_capacity(window);
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut settle = |(t0, receipt): (Instant, Receipt)| -> BenchResult<()> {
        receipt.wait()?;
        latencies.push(nanos(t0));
        Ok(())
    };
    let start = Instant::now();
    while start.elapsed() < run_time {
        if outstanding.len() == window {
            if let Some(oldest) = outstanding.pop_front() {
                settle(oldest)?;
            }
        }
        let t0 = Instant::now();
        outstanding.push_back((t0, wal.submit(Op::Put, &key, &value)?));
    }
    // The run ends when everything submitted is durable.
    for pending in outstanding {
        settle(pending)?;
    }
    Ok(RunResult::new(start.elapsed(), vec![latencies]))
}

fn tokio_tasks(
    wal: &Arc<Wal>,
    tasks: usize,
    workers: usize,
    entry_bytes: usize,
    run_time: Duration,
) -> BenchResult<RunResult> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .build()?;
    let start = Instant::now();
    let per_task = runtime.block_on(async {
        let handles: Vec<_> = (0..tasks)
            .map(|task| {
                let wal = Arc::clone(wal);
                tokio::spawn(async move {
                    let (key, value) = entry(entry_bytes, task);
                    let mut latencies = Vec::with_capacity(4096);
                    while start.elapsed() < run_time {
                        let t0 = Instant::now();
                        wal.submit(Op::Put, &key, &value)?.await?;
                        latencies.push(nanos(t0));
                    }
                    Ok::<_, flashlog_wal::Error>(latencies)
                })
            })
            .collect();
        let mut per_task = Vec::with_capacity(tasks);
        for handle in handles {
            per_task.push(handle.await.map_err(|e| format!("a task failed: {e}"))??);
        }
        Ok::<_, crate::system::BoxError>(per_task)
    })?;
    let elapsed = start.elapsed();
    runtime.shutdown_background();
    Ok(RunResult::new(elapsed, per_task))
}

/// Runs every driver `reps` times, rotating their order each repetition.
pub fn measure(
    drivers: &[Driver],
    entry_bytes: usize,
    run_time: Duration,
    reps: usize,
    dir: &Path,
) -> BenchResult<Receipts> {
    let mut runs: Vec<(Driver, Vec<RunResult>)> =
        drivers.iter().map(|&d| (d, Vec::new())).collect();
    for rep in 0..reps {
        for k in 0..drivers.len() {
            let i = (k + rep) % drivers.len();
            let result = run(drivers[i], entry_bytes, run_time, dir)
                .map_err(|e| format!("receipts, {}: {e}", drivers[i].name()))?;
            runs[i].1.push(result);
        }
    }
    Ok(Receipts { entry_bytes, runs })
}

/// How soon followers see what one durable appender appends.
#[derive(Debug, Clone)]
pub struct Followers {
    /// The appender's latency per durable `append`.
    pub append: RunResult,
    /// From the start of an `append` call until a `Visibility::Written` follower
    /// holds the entry.
    pub written: RunResult,
    /// The same for a `Visibility::Durable` follower.
    pub durable: RunResult,
}

/// One thread appends `entry_bytes` entries under `SyncPolicy::Always` for
/// `run_time`, each stamped with its append's start; a `Written` and a `Durable`
/// follower (`iter_from(1).visibility(..).follow()`) each note when they hold it.
pub fn followers(root: &Path, entry_bytes: usize, run_time: Duration) -> BenchResult<Followers> {
    let dir = tempfile::Builder::new()
        .prefix("flashlog-bench-followers-")
        .tempdir_in(root)?;
    let wal = Arc::new(open(dir.path())?);
    let base = Instant::now();
    let follower = |visibility| -> BenchResult<_> {
        let mut follow = wal.iter_from(1)?.visibility(visibility).follow();
        Ok(std::thread::spawn(move || -> BenchResult<Vec<u64>> {
            let mut latencies = Vec::new();
            for entry in &mut follow {
                let entry = entry?;
                if entry.key() == b"stop" {
                    break;
                }
                let mut stamp = [0u8; 8];
                stamp.copy_from_slice(&entry.value()[..8]);
                latencies.push(nanos(base).saturating_sub(u64::from_le_bytes(stamp)));
            }
            Ok(latencies)
        }))
    };
    let written = follower(Visibility::Written)?;
    let durable = follower(Visibility::Durable)?;
    let (_, mut value) = entry(entry_bytes, 0);
    let mut appends = Vec::new();
    let start = Instant::now();
    let mut i = 0u64;
    while start.elapsed() < run_time {
        let t0 = nanos(base);
        value[..8].copy_from_slice(&t0.to_le_bytes());
        wal.append(Op::Put, &i.to_le_bytes(), &value)?;
        appends.push(nanos(base) - t0);
        i += 1;
    }
    let elapsed = start.elapsed();
    wal.append(Op::Put, b"stop", &value)?;
    let written = written
        .join()
        .map_err(|_| "the Written follower panicked")??;
    let durable = durable
        .join()
        .map_err(|_| "the Durable follower panicked")??;
    if written.len() != appends.len() || durable.len() != appends.len() {
        return Err(format!(
            "{} appended, the Written follower saw {}, the Durable one {}",
            appends.len(),
            written.len(),
            durable.len()
        )
        .into());
    }
    Arc::into_inner(wal)
        .ok_or("a follower kept the log")?
        .close()?;
    Ok(Followers {
        append: RunResult::new(elapsed, vec![appends]),
        written: RunResult::new(elapsed, vec![written]),
        durable: RunResult::new(elapsed, vec![durable]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DRIVERS: [Driver; 3] = [
        Driver::Blocking { threads: 4 },
        Driver::Window { window: 8 },
        Driver::Tasks {
            tasks: 4,
            workers: 2,
        },
    ];

    #[test]
    fn every_driver_makes_what_it_counts_durable_and_ratios_pair_repetitions() {
        let dir = tempfile::tempdir().expect("tempdir");
        let receipts =
            measure(&DRIVERS, 256, Duration::from_millis(30), 2, dir.path()).expect("measure");
        assert_eq!(receipts.baseline(), Some(DRIVERS[0]));
        for driver in DRIVERS {
            let summary = receipts.summary(driver).expect("ran");
            assert_eq!(summary.runs, 2);
            assert!(summary.ops_per_sec > 0.0, "{driver:?}");
            let ratio = receipts.ratio(driver).expect("ratio");
            assert!(ratio.min <= ratio.median_of_reps && ratio.median_of_reps <= ratio.max);
        }
        let base = receipts.ratio(DRIVERS[0]).expect("ratio");
        assert_eq!((base.min, base.max, base.of_medians), (1.0, 1.0, 1.0));
        // The scratch logs are gone.
        assert_eq!(std::fs::read_dir(dir.path()).expect("read").count(), 0);
    }

    #[test]
    fn both_followers_see_every_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let f = followers(dir.path(), 256, Duration::from_millis(50)).expect("followers");
        assert!(f.append.ops > 0);
        assert_eq!(f.written.ops, f.append.ops);
        assert_eq!(f.durable.ops, f.append.ops);
    }

    #[test]
    fn entries_have_the_size_asked() {
        let (key, value) = entry(256, 3);
        assert_eq!(FRAMING + key.len() + value.len(), 256);
    }
}
