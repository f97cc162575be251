#![doc = include_str!("../README.md")]

#[macro_use]
mod cmd;

use flashlog_cli::text;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

/// The allocator: glibc's malloc and free were about 16% of a cluster node's CPU
/// under load (2026-12-07).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Where commands find the log when `--dir` is not given.
const DEFAULT_DIR: &str = "./flashlog-data";

/// Exit code of an error.
const EXIT_ERROR: u8 = 2;
/// Exit code of a writer that found the store's lock held for `--lock-timeout`.
const EXIT_BUSY: u8 = 3;
/// Exit code of a command stopped by Ctrl-C (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: u8 = 130;

const EXIT_CODES: &str = "\
Exit codes:
  0    success (also when standard output is closed early, as by `| head`,
       and `tail -f` ended by Ctrl-C)
  1    `get`: the key is absent; `verify`: damage was found
  2    error (one line `error: ...` on standard error; an argument error adds
       clap's usage hint); `shell` with piped input: a command in it failed
  3    busy: another process held the store's lock for --lock-timeout seconds
  130  stopped by Ctrl-C (`compact`, `bench`), after cleaning up";

/// flashlog: a durable key-value store on a Go-compatible write-ahead log, and the
/// tools its operators need.
#[derive(Debug, Parser)]
#[command(name = "flashlog", version, after_help = EXIT_CODES)]
struct Cli {
    /// The log directory [default: ./flashlog-data]
    #[arg(long, global = true, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// How long a writer (put, delete, shell, compact, repair) waits for another
    /// process to release the store's lock before it gives up with exit code 3
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 10.0)]
    lock_timeout: f64,
    /// put, get, delete, scan and cluster add/remove go to this cluster (any of
    /// its nodes; writes and reads follow the leader) instead of a local directory
    #[arg(long, global = true, value_name = "HOST:PORT[,HOST:PORT...]")]
    cluster: Option<String>,
    /// The cluster token: `serve` requires it on Raft and admin requests, the
    /// cluster commands send it
    #[arg(long, global = true, value_name = "PATH")]
    token_file: Option<PathBuf>,
    /// The certificate authority (PEM) the nodes' TLS certificates are signed by:
    /// the cluster commands and `--cluster` speak HTTPS trusting it; `serve`
    /// reaches the other nodes with it
    #[arg(long, global = true, value_name = "PATH")]
    tls_ca: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// An interactive key-value shell (put, get, delete, scan, stats, help, exit);
    /// reads commands from standard input, so scripts can pipe them in. With
    /// piped input it exits with 2 if any command in it failed
    Shell,
    /// Sets KEY to VALUE (`-` as VALUE: the value is standard input, raw bytes)
    Put(cmd::kv::PutArgs),
    /// Prints the value of KEY (exit code 1 and nothing printed if absent)
    Get(cmd::kv::GetArgs),
    /// Removes KEY
    Delete(cmd::kv::DeleteArgs),
    /// Prints every key (starting with PREFIX) and its value, in key order
    Scan(cmd::kv::ScanArgs),
    /// Prints every entry in log order (read-only; any flashlog or Go-written log)
    Dump(cmd::dump::Args),
    /// Prints the last 10 entries (or those from --from SEQ) as dump does; with
    /// -f, also every entry another process appends, until Ctrl-C (read-only)
    Tail(cmd::tail::Args),
    /// Checks every entry of every segment without changing anything; exit code 1
    /// if anything is damaged
    Verify(cmd::verify::Args),
    /// Cuts a torn or corrupt tail, keeping a copy of what it cuts; rewrites a
    /// damaged copy of the side file; rebuilds a lost one with --first-seq N
    Repair(cmd::repair::Args),
    /// Segments, entries, bytes, sequence numbers, live keys and dead bytes, and
    /// the log's cursors with how far behind the last entry each is
    Stats(cmd::stats::Args),
    /// Compacts the store: rewrites live values, removes dead segments (Ctrl-C
    /// stops it cleanly)
    Compact,
    /// Measures durable appends on this disk against a plain write+fdatasync loop,
    /// in a scratch folder in the system's temporary directory (or in --dir when
    /// given), removed at the end and on Ctrl-C
    Bench(cmd::bench::Args),
    /// Runs one node of a replicated cluster (log, state machine and snapshots
    /// under --dir) until SIGINT/SIGTERM
    Serve(cmd::serve::Args),
    /// Forms a cluster, shows its state, adds and removes nodes
    #[command(subcommand)]
    Cluster(cmd::cluster::Command),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let dir = cli
        .dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    let lock_timeout = match Duration::try_from_secs_f64(cli.lock_timeout) {
        Ok(timeout) => timeout,
        Err(_) => {
            errln!("error: --lock-timeout must be a number of seconds, 0 or more");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let result = remote(&cli).and_then(|remote| match cli.command {
        Command::Shell => cmd::shell::run(&dir, lock_timeout),
        Command::Put(args) => cmd::kv::put(&dir, &args, lock_timeout, remote.as_ref()),
        Command::Get(args) => cmd::kv::get(&dir, &args, remote.as_ref()),
        Command::Delete(args) => cmd::kv::delete(&dir, &args, lock_timeout, remote.as_ref()),
        Command::Scan(args) => cmd::kv::scan(&dir, &args, remote.as_ref()),
        Command::Dump(args) => cmd::dump::run(&dir, &args),
        Command::Tail(args) => cmd::tail::run(&dir, &args),
        Command::Verify(args) => cmd::verify::run(&dir, &args),
        Command::Repair(args) => cmd::repair::run(&dir, &args, lock_timeout),
        Command::Stats(args) => cmd::stats::run(&dir, &args),
        Command::Compact => cmd::compact::run(&dir, lock_timeout),
        Command::Bench(args) => cmd::bench::run(cli.dir.as_deref(), &args),
        Command::Serve(args) => {
            cmd::serve::run(&dir, &args, cli.token_file.as_ref(), cli.tls_ca.as_deref())
        }
        Command::Cluster(command) => {
            let access =
                cmd::cluster::Access::from_flags(cli.token_file.as_deref(), cli.tls_ca.as_deref())?;
            cmd::cluster::run(&command, cli.cluster.as_deref(), &access)
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => report(&err),
    }
}

/// The cluster client of `--cluster` for the key-value commands, if given.
fn remote(cli: &Cli) -> anyhow::Result<Option<flashlog_cluster::ClusterClient>> {
    let Some(cluster) = &cli.cluster else {
        return Ok(None);
    };
    if !matches!(
        cli.command,
        Command::Put(_) | Command::Get(_) | Command::Delete(_) | Command::Scan(_)
    ) {
        return Ok(None);
    }
    let access =
        cmd::cluster::Access::from_flags(cli.token_file.as_deref(), cli.tls_ca.as_deref())?;
    Ok(Some(access.client(cmd::cluster::addresses(cluster))?))
}

/// Prints `err` on one line and picks the exit code. A closed standard output
/// ends the command quietly with 0, as `head` expects of the command before it.
fn report(err: &anyhow::Error) -> ExitCode {
    if cmd::is_broken_pipe(err) {
        return ExitCode::SUCCESS;
    }
    // `{:#}` joins the cause chain with ": ", on one line.
    errln!("error: {err:#}{}", damage_hint(err));
    if err.chain().any(cmd::open::is_locked) {
        ExitCode::from(EXIT_BUSY)
    } else {
        ExitCode::from(EXIT_ERROR)
    }
}

/// What to do next, after an error that means the log is damaged.
fn damage_hint(err: &anyhow::Error) -> &'static str {
    use flashlog_wal::Error as WalError;
    let damaged = |wal: &WalError| {
        matches!(
            wal,
            WalError::Corrupt { .. }
                | WalError::UnboundedDamage { .. }
                | WalError::CorruptMeta { .. }
                | WalError::MissingSegment { .. }
                | WalError::SegmentChanged { .. }
                | WalError::DuplicateSegment { .. }
        )
    };
    let found = err.chain().any(|cause| {
        if let Some(wal) = cause.downcast_ref::<WalError>() {
            return damaged(wal);
        }
        match cause.downcast_ref::<flashlog_kv::Error>() {
            Some(flashlog_kv::Error::Wal(wal)) => damaged(wal),
            Some(flashlog_kv::Error::IndexMismatch { .. }) => true,
            _ => false,
        }
    });
    if found {
        "; the log is damaged: run `flashlog verify` to list the damage, then `flashlog repair --dry-run`"
    } else {
        ""
    }
}
