#![doc = include_str!("../README.md")]

mod cmd;

use flashlog_cli::text;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Where commands find the log when `--dir` is not given.
const DEFAULT_DIR: &str = "./flashlog-data";

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  `get`: the key is absent; `verify`: damage was found
  2  error (printed on standard error as one line)";

/// flashlog: a durable key-value store on a Go-compatible write-ahead log, and the
/// tools its operators need.
#[derive(Debug, Parser)]
#[command(name = "flashlog", version, after_help = EXIT_CODES)]
struct Cli {
    /// The log directory [default: ./flashlog-data]
    #[arg(long, global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// An interactive key-value shell (put, get, delete, scan, stats, help, exit);
    /// reads commands from standard input, so scripts can pipe them in
    Shell,
    /// Sets KEY to VALUE
    Put {
        /// The key
        key: String,
        /// The value
        value: String,
    },
    /// Prints the value of KEY (exit code 1 and nothing printed if absent)
    Get {
        /// The key
        key: String,
    },
    /// Removes KEY
    Delete {
        /// The key
        key: String,
    },
    /// Prints every key (starting with PREFIX) and its value, in key order
    Scan {
        /// Only keys that start with this
        prefix: Option<String>,
    },
    /// Prints every entry in log order (read-only; any flashlog or Go-written log)
    Dump(cmd::dump::Args),
    /// Checks every entry of every segment without changing anything; exit code 1
    /// if anything is damaged
    Verify,
    /// Cuts a torn or corrupt tail, keeping a copy of what it cuts; rewrites a
    /// damaged copy of the side file; rebuilds a lost one with --first-seq N
    Repair(cmd::repair::Args),
    /// Segments, entries, bytes, sequence numbers, live keys and dead bytes
    Stats,
    /// Compacts the store: rewrites live values, removes dead segments
    Compact,
    /// Measures durable appends on this disk against a plain write+fdatasync loop
    Bench(cmd::bench::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let dir = cli
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    let result = match cli.command {
        Command::Shell => cmd::shell::run(&dir),
        Command::Put { key, value } => cmd::kv::put(&dir, &key, &value),
        Command::Get { key } => cmd::kv::get(&dir, &key),
        Command::Delete { key } => cmd::kv::delete(&dir, &key),
        Command::Scan { prefix } => cmd::kv::scan(&dir, prefix.as_deref().unwrap_or("")),
        Command::Dump(args) => cmd::dump::run(&dir, &args),
        Command::Verify => cmd::verify::run(&dir),
        Command::Repair(args) => cmd::repair::run(&dir, &args),
        Command::Stats => cmd::stats::run(&dir),
        Command::Compact => cmd::compact::run(&dir),
        Command::Bench(args) => cmd::bench::run(cli.dir.as_deref(), &args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            // `{:#}` joins the cause chain with ": ", on one line.
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}
