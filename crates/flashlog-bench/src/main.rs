//! `flashlog-bench`: durable-append throughput, replay speed and memory of
//! flashlog, each printed beside a baseline measured in the same run on the same
//! disk (these machines are noisy; only same-run ratios mean anything).
//!
//! ```text
//! cargo run --release -p flashlog-bench            # full run (a few minutes)
//! cargo run --release -p flashlog-bench -- --quick # smaller, under a minute
//! ```
//! Options: `--dir PATH` (where temporary logs go; default: the current
//! directory, so the disk under test is the one you run it on), `--seconds N` per
//! append run.

mod appends;
mod baselines;
mod memory;
mod replay;
mod stats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// What one invocation measures, from the command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where temporary directories go.
    pub dir: PathBuf,
    /// How long each append run lasts.
    pub run_time: Duration,
    /// Bytes of the log replayed.
    pub replay_bytes: u64,
    /// Bytes appended while resident memory is watched.
    pub memory_bytes: u64,
    /// Thread counts of the durable-append runs.
    pub threads: Vec<usize>,
}

fn parse_args() -> Result<(Config, Option<String>), String> {
    let mut config = Config {
        dir: PathBuf::from("."),
        run_time: Duration::from_secs(3),
        replay_bytes: 1 << 30,
        memory_bytes: 2 << 30,
        threads: vec![1, 8, 64],
    };
    let mut child = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => {
                config.run_time = Duration::from_secs(1);
                config.replay_bytes = 128 << 20;
                config.memory_bytes = 256 << 20;
            }
            "--dir" => config.dir = args.next().ok_or("--dir needs a path")?.into(),
            "--seconds" => {
                let value = args.next().ok_or("--seconds needs a number")?;
                let seconds: f64 = value
                    .parse()
                    .map_err(|_| format!("bad --seconds {value}"))?;
                config.run_time = Duration::from_secs_f64(seconds);
            }
            "--memory-child" => child = Some(args.next().ok_or("--memory-child needs bytes")?),
            other => {
                return Err(format!(
                    "unknown argument {other} (try --quick, --dir, --seconds)"
                ))
            }
        }
    }
    Ok((config, child))
}

fn main() -> ExitCode {
    let (config, child) = match parse_args() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let result = match child {
        Some(bytes) => memory::child(&config, &bytes),
        None => run(&config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}

fn run(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "# flashlog-bench: durable appends of 256-byte entries, {:?} per run\n",
        config.run_time
    );
    appends::run(config)?;
    println!();
    replay::run(config)?;
    println!();
    memory::run(config)?;
    Ok(())
}
