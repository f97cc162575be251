//! `flashlog serve`: runs one node of a replicated cluster until SIGINT/SIGTERM.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use flashlog_cluster::tls::{ClientTls, NodeTls, ServerTls};
use flashlog_cluster::NodeConfig;

/// Arguments of `flashlog serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// This node's id (recorded in DIR; later starts must give the same)
    #[arg(long)]
    id: u64,
    /// Where to listen, HOST:PORT (other nodes and clients reach it there)
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:7001")]
    listen: String,
    /// Serve HTTPS only, with this certificate chain (PEM, the node's first); needs
    /// --tls-key and --tls-ca (the authority the other nodes' certificates are
    /// signed by)
    #[arg(long, value_name = "PATH", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM)
    #[arg(long, value_name = "PATH", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Client requests (/kv) need the cluster token too
    #[arg(long, requires = "token_file")]
    clients_need_token: bool,
    /// Build a snapshot once this many entries were applied since the last (0: never)
    #[arg(long, value_name = "N", default_value_t = 100_000)]
    snapshot_every: u64,
    /// Entries kept in the log behind a snapshot, for followers that lag a little
    #[arg(long, value_name = "N", default_value_t = 1_000)]
    keep_behind_snapshot: u64,
    /// Raft heartbeat interval
    #[arg(long, value_name = "MS", default_value_t = 100)]
    heartbeat_ms: u64,
    /// Smallest election timeout (the largest is 1.2 times it; a new leader
    /// takes about twice it after the old one dies)
    #[arg(long, value_name = "MS", default_value_t = 500)]
    election_timeout_ms: u64,
    /// How long a request waits for a leader to be known before 503
    #[arg(long, value_name = "MS", default_value_t = 2_000)]
    leader_wait_ms: u64,
    /// How long a write or linearizable read may take before 503
    #[arg(long, value_name = "MS", default_value_t = 5_000)]
    request_timeout_ms: u64,
    /// How long a connection may take to send a request's headers (also how long
    /// an idle connection stays open)
    #[arg(long, value_name = "MS", default_value_t = 30_000)]
    header_timeout_ms: u64,
    /// How long `cluster add` waits for the new node to catch up before it fails
    /// (the node then stays a learner)
    #[arg(long, value_name = "MS", default_value_t = 20_000)]
    catch_up_timeout_ms: u64,
    /// The most detailed events printed on standard error: error, warn, info, debug, trace
    #[arg(long, value_name = "LEVEL", default_value = "warn")]
    log_level: tracing::Level,
}

/// Reads the cluster token from `path`: its contents without the final newline.
pub fn read_token(path: &Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the token file {}", path.display()))?;
    let token = text.trim_end_matches(['\n', '\r']).to_string();
    anyhow::ensure!(
        !token.is_empty(),
        "the token file {} is empty",
        path.display()
    );
    anyhow::ensure!(
        token.bytes().all(|b| (0x21..0x7f).contains(&b)),
        "the token in {} must be printable ASCII without spaces",
        path.display()
    );
    Ok(token)
}

/// `flashlog serve`: prints `serving on ADDR` once it listens; exits 0 after a
/// clean shutdown.
pub fn run(
    dir: &Path,
    args: &Args,
    token_file: Option<&PathBuf>,
    tls_ca: Option<&Path>,
) -> anyhow::Result<ExitCode> {
    let mut config = NodeConfig::new(args.id, args.listen.clone(), dir);
    config.token = token_file.map(|p| read_token(p)).transpose()?;
    config.clients_need_token = args.clients_need_token;
    config.tls = match (&args.tls_cert, &args.tls_key, tls_ca) {
        (Some(cert), Some(key), Some(ca)) => Some(NodeTls {
            server: ServerTls::from_files(cert, key)?,
            peers: ClientTls::from_ca_file(ca)?,
        }),
        (Some(_), _, None) => anyhow::bail!(
            "--tls-cert needs --tls-ca: the authority the other nodes' certificates are signed by"
        ),
        (None, None, Some(_)) => anyhow::bail!(
            "--tls-ca without --tls-cert and --tls-key: a node serving plain HTTP would reach its peers over HTTPS"
        ),
        _ => None,
    };
    config.snapshot_every = args.snapshot_every;
    config.keep_behind_snapshot = args.keep_behind_snapshot;
    config.heartbeat = Duration::from_millis(args.heartbeat_ms);
    config.election_timeout = Duration::from_millis(args.election_timeout_ms);
    config.leader_wait = Duration::from_millis(args.leader_wait_ms);
    config.request_timeout = Duration::from_millis(args.request_timeout_ms);
    config.header_timeout = Duration::from_millis(args.header_timeout_ms);
    config.catch_up_timeout = Duration::from_millis(args.catch_up_timeout_ms);
    anyhow::ensure!(
        args.election_timeout_ms > args.heartbeat_ms,
        "--election-timeout-ms must be above --heartbeat-ms"
    );
    let id = args.id;
    tracing_subscriber::fmt()
        .with_max_level(args.log_level)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    flashlog_cluster::serve_until_signal(config, |addr| {
        errln!("node {id} serving on {addr}");
    })
    .with_context(|| format!("node {id} ({})", dir.display()))?;
    Ok(ExitCode::SUCCESS)
}
