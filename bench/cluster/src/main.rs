//! `cluster-bench`: the load generator and failover timer of the side-by-side
//! benchmark of a 3-node flashlog cluster against a 3-node etcd (issue 18 §6).
//!
//! Each system is driven through its native client protocol: etcd through gRPC
//! (the `etcd-client` crate), flashlog through its HTTP API (`reqwest`, a
//! keep-alive connection pool, following `307` redirects to the leader). The
//! clusters are started by `start-etcd.sh` and `start-flashlog.sh`, which leave
//! in a state directory what this program needs (endpoints, pids, and a script
//! that restarts each node). `run.sh` runs the whole comparison.

mod client;
mod etcd;
mod failover;
mod flashlog;
mod load;
mod report;
mod state;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand, ValueEnum};

/// The systems compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum System {
    /// etcd 3.4, through gRPC.
    Etcd,
    /// flashlog, through its HTTP API.
    Flashlog,
}

impl System {
    /// The name used in results and tables.
    pub fn name(self) -> &'static str {
        match self {
            System::Etcd => "etcd",
            System::Flashlog => "flashlog",
        }
    }
}

/// The operation a load runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpKind {
    /// Durable writes of new keys.
    Write,
    /// Linearizable reads of existing keys.
    Read,
}

#[derive(Debug, Parser)]
#[command(
    name = "cluster-bench",
    about = "Load and failover timing for 3-node flashlog and etcd clusters"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Where the cluster is: a state directory from a start script, or endpoints.
#[derive(Debug, clap::Args)]
struct Target {
    /// The state directory a start script wrote (gives the system and endpoints).
    #[arg(long)]
    state: Option<PathBuf>,
    /// The system (needed with --endpoints; read from --state otherwise).
    #[arg(long, value_enum)]
    system: Option<System>,
    /// Client addresses HOST:PORT, comma-separated (read from --state otherwise).
    #[arg(long, value_delimiter = ',')]
    endpoints: Vec<String>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs a load at each client count and prints ops/s, p50 and p99.
    Load {
        #[command(flatten)]
        target: Target,
        /// Write or read.
        #[arg(long, value_enum, default_value = "write")]
        op: OpKind,
        /// Concurrent clients, one load per count.
        #[arg(long, value_delimiter = ',', default_value = "1,16,64,256")]
        clients: Vec<usize>,
        /// Seconds measured per client count (after the warm-up).
        #[arg(long, default_value_t = 10.0)]
        duration: f64,
        /// Seconds of load before measuring, per client count.
        #[arg(long, default_value_t = 1.0)]
        warmup: f64,
        /// Value size in bytes.
        #[arg(long, default_value_t = 256)]
        value_size: usize,
        /// Keys written before a read load, and read from.
        #[arg(long, default_value_t = 1000)]
        read_keys: usize,
        /// gRPC connections the etcd clients share (etcd's own benchmark tool
        /// defaults to 1); ignored for flashlog, whose HTTP/1.1 pool opens one
        /// connection per client in flight.
        #[arg(long, default_value_t = 1)]
        etcd_conns: usize,
        /// Appends one JSON line per client count here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// SIGKILLs the leader several times and times how long until a write
    /// succeeds again (through a new leader), restarting the node in between.
    Failover {
        /// The state directory a start script wrote.
        #[arg(long)]
        state: PathBuf,
        /// Leader kills.
        #[arg(long, default_value_t = 5)]
        kills: usize,
        /// Seconds to let the cluster settle after a killed node restarted.
        #[arg(long, default_value_t = 3.0)]
        settle: f64,
        /// Appends one JSON line here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Waits until the cluster has a leader and accepts a write.
    Wait {
        #[command(flatten)]
        target: Target,
        /// Seconds to wait at most.
        #[arg(long, default_value_t = 30.0)]
        timeout: f64,
    },
    /// Appends a section with tables and SVG plots of result files to a markdown file.
    Report {
        /// JSON-lines result files (from `load --out` and `failover --out`).
        #[arg(required = true)]
        results: Vec<PathBuf>,
        /// The markdown file to append to (created if absent).
        #[arg(long)]
        markdown: PathBuf,
        /// Directory for the SVG plots (linked relative to the markdown file).
        #[arg(long)]
        plots: PathBuf,
        /// A line describing the run (date, machine, versions).
        #[arg(long, default_value = "")]
        note: String,
    },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        match cli.command {
            Command::Load {
                target,
                op,
                clients,
                duration,
                warmup,
                value_size,
                read_keys,
                etcd_conns,
                out,
            } => {
                let (system, endpoints) =
                    state::resolve(target.state, target.system, target.endpoints)?;
                let spec = load::Spec {
                    system,
                    endpoints,
                    op,
                    duration: Duration::from_secs_f64(duration),
                    warmup: Duration::from_secs_f64(warmup),
                    value_size,
                    read_keys,
                    etcd_conns: etcd_conns.max(1),
                };
                load::run_all(&spec, &clients, out.as_deref()).await
            }
            Command::Failover {
                state,
                kills,
                settle,
                out,
            } => {
                failover::run(
                    &state,
                    kills,
                    Duration::from_secs_f64(settle),
                    out.as_deref(),
                )
                .await
            }
            Command::Wait { target, timeout } => {
                let (system, endpoints) =
                    state::resolve(target.state, target.system, target.endpoints)?;
                let waited =
                    client::wait_ready(system, &endpoints, Duration::from_secs_f64(timeout))
                        .await?;
                println!(
                    "{}: ready after {:.2} s",
                    system.name(),
                    waited.as_secs_f64()
                );
                Ok(())
            }
            Command::Report {
                results,
                markdown,
                plots,
                note,
            } => report::write(&results, &markdown, &plots, &note),
        }
    })
}
