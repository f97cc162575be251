//! `flashlog bench`: durable appends per second on this disk, for chosen thread
//! counts and entry sizes, against a plain write+fdatasync loop on the same disk
//! measured in the same run.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use flashlog_wal::codec::encoded_len;
use flashlog_wal::{Op, Options, SyncPolicy, Wal};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::interrupt::Interrupt;
use crate::text::{count, table};

/// Bytes of the key of every benchmark entry.
const KEY_LEN: usize = 16;

/// Arguments of `flashlog bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Thread counts to measure, comma-separated
    #[arg(long, value_delimiter = ',', default_value = "1,4,16")]
    threads: Vec<usize>,
    /// Value sizes in bytes to measure, comma-separated (keys are 16 bytes)
    #[arg(long, value_delimiter = ',', default_value = "256")]
    size: Vec<usize>,
    /// Seconds each measurement runs
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Print one JSON object instead of a table
    #[arg(long)]
    json: bool,
}

/// A progress bar on standard error, hidden when standard error is not a terminal.
pub fn progress_bar(len: u64, template: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    bar
}

/// One measurement.
#[derive(Debug, Clone)]
struct Run {
    /// 0 for the plain write+fdatasync loop.
    threads: usize,
    value_bytes: usize,
    entries: u64,
    seconds: f64,
    /// Latencies in microseconds, sorted.
    latencies: Vec<u32>,
}

impl Run {
    fn entries_per_sec(&self) -> f64 {
        self.entries as f64 / self.seconds
    }
    fn mb_per_sec(&self) -> f64 {
        self.entries as f64 * encoded_len(KEY_LEN, self.value_bytes) as f64 / self.seconds / 1e6
    }
    fn percentile(&self, p: f64) -> u32 {
        if self.latencies.is_empty() {
            return 0;
        }
        let at = ((self.latencies.len() - 1) as f64 * p).round() as usize;
        self.latencies[at]
    }
}

/// Runs the measurements in a scratch folder in the system's temporary directory
/// (`TMPDIR`, else `/tmp`), or under `--dir` when given, to measure another disk;
/// the folder is removed at the end, and on Ctrl-C (exit code 130).
pub fn run(dir: Option<&Path>, args: &Args) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.seconds > 0.0, "--seconds must be above 0");
    anyhow::ensure!(
        !args.threads.is_empty() && args.threads.iter().all(|&t| t > 0),
        "--threads must be above 0"
    );
    let base = match dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            dir.to_path_buf()
        }
        None => std::env::temp_dir(),
    };
    let scratch = tempfile::Builder::new()
        .prefix("flashlog-bench-")
        .tempdir_in(&base)
        .with_context(|| format!("cannot create a temporary folder in {}", base.display()))?;
    let interrupt = Interrupt::catch()?;
    let duration = Duration::from_secs_f64(args.seconds);
    let measurements = args.size.len() * (args.threads.len() + 1);
    let planned = measurements as f64 * args.seconds;
    // The total is the planned time, fixed: the bar does not re-estimate it.
    let bar = progress_bar(
        (planned * 10.0) as u64,
        &format!("{{bar:40}} {{elapsed}} of about {planned:.0}s {{msg}}"),
    );
    let mut runs = Vec::new();
    'measure: for &size in &args.size {
        bar.set_message(format!("write+fdatasync, {size} B"));
        let path = scratch.path().join(format!("baseline-{size}"));
        runs.push(baseline(&path, size, duration, &bar, &interrupt)?);
        for &threads in &args.threads {
            if interrupt.raised() {
                break 'measure;
            }
            bar.set_message(format!(
                "flashlog, {}, {size} B",
                count(threads as u64, "thread", "threads")
            ));
            let dir = scratch.path().join(format!("wal-{size}-{threads}"));
            runs.push(appends(&dir, threads, size, duration, &bar, &interrupt)?);
        }
    }
    bar.finish_and_clear();
    let scratch_path = scratch.path().to_path_buf();
    scratch
        .close()
        .context("cannot remove the benchmark's temporary folder")?;
    if interrupt.raised() {
        errln!("stopped by Ctrl-C; removed {}", scratch_path.display());
        return Ok(ExitCode::from(crate::EXIT_INTERRUPTED));
    }
    if args.json {
        outln!("{}", json(&runs))?;
    } else {
        out!("{}", text(&runs))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn tick(bar: &ProgressBar, start: Instant, done_before: u64) {
    bar.set_position(done_before + (start.elapsed().as_secs_f64() * 10.0) as u64);
}

/// The plain loop: write one entry-sized buffer at the end of a file, fdatasync.
fn baseline(
    path: &Path,
    value_bytes: usize,
    duration: Duration,
    bar: &ProgressBar,
    interrupt: &Interrupt,
) -> anyhow::Result<Run> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let buf = vec![0xabu8; encoded_len(KEY_LEN, value_bytes) as usize];
    let done_before = bar.position();
    let start = Instant::now();
    let mut latencies = Vec::new();
    let mut offset = 0u64;
    while start.elapsed() < duration && !interrupt.raised() {
        let t = Instant::now();
        file.write_all_at(&buf, offset)
            .and_then(|()| file.sync_data())
            .with_context(|| format!("cannot write {}", path.display()))?;
        offset += buf.len() as u64;
        latencies.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
        if latencies.len() % 64 == 0 {
            tick(bar, start, done_before);
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    Ok(Run {
        threads: 0,
        value_bytes,
        entries: latencies.len() as u64,
        seconds,
        latencies,
    })
}

/// `threads` threads appending durable entries to one log for `duration`.
fn appends(
    dir: &Path,
    threads: usize,
    value_bytes: usize,
    duration: Duration,
    bar: &ProgressBar,
    interrupt: &Interrupt,
) -> anyhow::Result<Run> {
    let wal = Arc::new(
        Wal::open(dir, Options::default().sync_policy(SyncPolicy::Always))
            .with_context(|| format!("cannot open a log in {}", dir.display()))?,
    );
    let done_before = bar.position();
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|t| {
            let wal = Arc::clone(&wal);
            let interrupt = interrupt.clone();
            std::thread::spawn(move || -> flashlog_wal::Result<Vec<u32>> {
                let value = vec![t as u8; value_bytes];
                let mut latencies = Vec::new();
                let mut i = 0u64;
                while start.elapsed() < duration && !interrupt.raised() {
                    let mut key = [0u8; KEY_LEN];
                    key[..8].copy_from_slice(&(t as u64).to_le_bytes());
                    key[8..].copy_from_slice(&i.to_le_bytes());
                    let begin = Instant::now();
                    wal.append(Op::Put, &key, &value)?;
                    latencies.push(begin.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    i += 1;
                }
                Ok(latencies)
            })
        })
        .collect();
    while start.elapsed() < duration && !interrupt.raised() {
        tick(bar, start, done_before);
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut latencies = Vec::new();
    for worker in workers {
        let result = worker
            .join()
            .map_err(|_| anyhow::anyhow!("a benchmark thread panicked"))?;
        latencies.extend(result.context("an append failed")?);
    }
    let seconds = start.elapsed().as_secs_f64();
    wal.close().context("cannot close the benchmark log")?;
    latencies.sort_unstable();
    Ok(Run {
        threads,
        value_bytes,
        entries: latencies.len() as u64,
        seconds,
        latencies,
    })
}

fn baseline_of(runs: &[Run], value_bytes: usize) -> Option<&Run> {
    runs.iter()
        .find(|r| r.threads == 0 && r.value_bytes == value_bytes)
}

fn text(runs: &[Run]) -> String {
    let mut rows = vec![[
        "what",
        "threads",
        "value B",
        "entries/s",
        "MB/s",
        "p50 us",
        "p99 us",
        "vs baseline",
    ]
    .map(str::to_owned)
    .to_vec()];
    for run in runs {
        let ratio = baseline_of(runs, run.value_bytes)
            .map(|b| run.entries_per_sec() / b.entries_per_sec().max(1e-9))
            .unwrap_or(0.0);
        rows.push(vec![
            if run.threads == 0 {
                "write+fdatasync".into()
            } else {
                "flashlog append".into()
            },
            if run.threads == 0 {
                "1".into()
            } else {
                run.threads.to_string()
            },
            run.value_bytes.to_string(),
            format!("{:.0}", run.entries_per_sec()),
            format!("{:.2}", run.mb_per_sec()),
            run.percentile(0.50).to_string(),
            run.percentile(0.99).to_string(),
            format!("{ratio:.2}x"),
        ]);
    }
    let mut out = table(&rows);
    out.push_str("durable appends (SyncPolicy::Always, group commit); baseline: one thread writing the same entry size and fdatasyncing each write, same disk, same run\n");
    out
}

fn json(runs: &[Run]) -> String {
    let rows: Vec<serde_json::Value> = runs
        .iter()
        .map(|run| {
            let ratio = baseline_of(runs, run.value_bytes)
                .map(|b| run.entries_per_sec() / b.entries_per_sec().max(1e-9));
            serde_json::json!({
                "kind": if run.threads == 0 { "baseline" } else { "flashlog" },
                "threads": run.threads.max(1),
                "value_bytes": run.value_bytes,
                "entry_bytes": encoded_len(KEY_LEN, run.value_bytes),
                "entries": run.entries,
                "seconds": run.seconds,
                "entries_per_sec": run.entries_per_sec(),
                "mb_per_sec": run.mb_per_sec(),
                "p50_us": run.percentile(0.50),
                "p99_us": run.percentile(0.99),
                "vs_baseline": ratio,
            })
        })
        .collect();
    serde_json::json!({ "runs": rows }).to_string()
}
