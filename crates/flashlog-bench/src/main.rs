//! `flashlog-bench`: flashlog against other Rust write-ahead logs (okaywal,
//! raft-engine) and against baselines measured in the same run on the same disk
//! (these machines are noisy; only same-run ratios mean anything).
//!
//! ```text
//! cargo run --release -p flashlog-bench                # full run, writes results/ (~14 min)
//! cargo run --release -p flashlog-bench -- --quick     # same rows, shorter (~2 min), results/quick/
//! cargo run --release -p flashlog-bench -- --smoke     # tiny sizes, every code path (~5 s)
//! cargo run --release -p flashlog-bench -- --core      # the first version's table: 256 B appends, replay, RSS
//! ```
//! Options: `--dir PATH` (where temporary logs go; default: the current directory,
//! so the disk under test is the one you run it on), `--out PATH` (results folder),
//! `--seconds N` per timed run, `--reps N` repetitions, `--only a,b` sections
//! (`durable,batched,unsynced,replay,open,tail,memory`), `--systems a,b` (`flashlog,
//! okaywal,raft-engine,plain,prealloc,ideal`; ratios need the baselines), `--sizes
//! 256,4096` and `--threads 1,64` for the durable rows.

mod appends;
mod baselines;
mod legacy;
mod memory;
mod plot;
mod recovery;
mod replay;
mod report;
mod runner;
mod stats;
mod suite;
mod systems;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// What the `core` mode and the memory child measure, from the command line.
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

/// Which preset an invocation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Every row, 3 repetitions, 1 GiB replay, open times up to 10 GiB.
    Full,
    /// Every row, shorter runs and smaller logs.
    Quick,
    /// Tiny sizes: checks that every code path runs (CI).
    Smoke,
    /// The first version's measurements.
    Core,
}

impl Mode {
    /// Name used in the output.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Quick => "quick",
            Mode::Smoke => "smoke",
            Mode::Core => "core",
        }
    }
}

/// Parsed command line.
#[derive(Debug, Clone)]
pub struct Args {
    /// The preset.
    pub mode: Mode,
    /// Scratch directory on the disk under test.
    pub dir: PathBuf,
    /// Results folder (`None`: the mode's default).
    pub out: Option<PathBuf>,
    /// Overrides the preset's seconds per timed run.
    pub seconds: Option<f64>,
    /// Overrides the preset's repetitions.
    pub reps: Option<usize>,
    /// Sections to run (empty: all).
    pub only: Vec<String>,
    /// Overrides the preset's entry sizes of the durable rows.
    pub sizes: Vec<usize>,
    /// Overrides the preset's thread counts of the durable rows.
    pub threads: Vec<usize>,
    /// Systems to run (`--systems` ids; empty: all).
    pub systems: Vec<String>,
    /// Internal: run as the memory child.
    pub memory_child: Option<String>,
    /// Internal: run as the crash child on this log directory.
    pub crash_child: Option<PathBuf>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        mode: Mode::Full,
        dir: PathBuf::from("."),
        out: None,
        seconds: None,
        reps: None,
        only: Vec::new(),
        systems: Vec::new(),
        sizes: Vec::new(),
        threads: Vec::new(),
        memory_child: None,
        crash_child: None,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(arg) = argv.next() {
        let mut value = |what: &str| argv.next().ok_or(format!("{arg} needs {what}"));
        match arg.as_str() {
            "--quick" => args.mode = Mode::Quick,
            "--smoke" => args.mode = Mode::Smoke,
            "--core" => args.mode = Mode::Core,
            "--dir" => args.dir = value("a path")?.into(),
            "--out" => args.out = Some(value("a path")?.into()),
            "--seconds" => {
                let v = value("a number")?;
                args.seconds = Some(v.parse().map_err(|_| format!("bad --seconds {v}"))?);
            }
            "--reps" => {
                let v = value("a number")?;
                args.reps = Some(v.parse().map_err(|_| format!("bad --reps {v}"))?);
            }
            "--only" => {
                args.only = value("a list")?.split(',').map(str::to_owned).collect();
            }
            "--systems" => {
                args.systems = value("a list")?.split(',').map(str::to_owned).collect();
            }
            "--sizes" | "--threads" => {
                let list = value("a list")?;
                let parsed = list
                    .split(',')
                    .map(|n| n.parse::<usize>().map_err(|_| format!("bad {arg} {list}")))
                    .collect::<Result<Vec<_>, _>>()?;
                if arg == "--sizes" {
                    args.sizes = parsed;
                } else {
                    args.threads = parsed;
                }
            }
            "--memory-child" => args.memory_child = Some(value("bytes")?),
            "--crash-child" => args.crash_child = Some(value("a path")?.into()),
            other => {
                return Err(format!(
                    "unknown argument {other} (try --quick, --smoke, --core, --dir, --out, \
                     --seconds, --reps, --only, --systems, --sizes, --threads)"
                ))
            }
        }
    }
    Ok(args)
}

fn core_config(args: &Args) -> Config {
    let quick = args.mode != Mode::Core && args.mode != Mode::Full;
    Config {
        dir: args.dir.clone(),
        run_time: Duration::from_secs_f64(args.seconds.unwrap_or(if quick { 1.0 } else { 3.0 })),
        replay_bytes: if quick { 128 << 20 } else { 1 << 30 },
        memory_bytes: match args.mode {
            Mode::Smoke => 16 << 20,
            Mode::Quick => 256 << 20,
            Mode::Full | Mode::Core => 2 << 30,
        },
        threads: vec![1, 8, 64],
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let config = core_config(&args);
    if let Some(dir) = &args.crash_child {
        if let Err(err) = recovery::crash_child(dir) {
            eprintln!("error: {err}");
        }
        return ExitCode::from(2);
    }
    let result = match (&args.memory_child, args.mode) {
        (Some(bytes), _) => memory::child(&config, bytes),
        (None, Mode::Core) => core(&config),
        (None, _) => suite::run(&args, &config).map_err(|e| -> Box<dyn std::error::Error> { e }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(2)
        }
    }
}

fn core(config: &Config) -> Result<(), Box<dyn std::error::Error>> {
    println!(
        "# flashlog-bench --core: durable appends of 256-byte entries, {:?} per run\n",
        config.run_time
    );
    appends::run(config)?;
    println!();
    replay::run(config)?;
    println!();
    memory::run(config)?;
    Ok(())
}
