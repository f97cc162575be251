//! Starting and stopping a node: its directory (identity, Raft log, state
//! machine), openraft, the HTTP listener, and a clean shutdown.
//!
//! Under DIR: `flashlog.node` (node id, token hash), `raft/` (the Raft log, a
//! `flashlog_raft::LogStore` with `SyncPolicy::Always`), `sm/` (the state
//! machine and its snapshots, see [`crate::state_machine`]).

use openraft::async_runtime::WatchReceiver;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::{Config, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::error::{io, Error, Result};
use crate::http::{self, AppState};
use crate::network::Network;
use crate::state_machine::StateMachine;
use crate::tls::NodeTls;
use crate::transport::Transport;
use crate::types::{LogStore, NodeId, Raft};

/// How a node runs. Build with [`NodeConfig::new`] and set fields.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct NodeConfig {
    /// The node's id (recorded in DIR the first time; later starts must match).
    pub id: NodeId,
    /// Where it listens (`127.0.0.1:PORT` unless told otherwise).
    pub listen: String,
    /// Its directory.
    pub dir: PathBuf,
    /// The cluster token (`--token-file`): required on Raft and admin requests.
    pub token: Option<String>,
    /// Whether client requests need the token too. Default false.
    pub clients_need_token: bool,
    /// TLS for client and peer traffic: the node serves HTTPS only and reaches
    /// the other nodes over HTTPS. Default none (plain HTTP).
    pub tls: Option<NodeTls>,
    /// A snapshot is built once this many entries were applied since the last
    /// (0: never). Default 100,000 (etcd's `--snapshot-count`): a snapshot scans
    /// the whole store, so building one every 10,000 entries cost a fifth of the
    /// leader's CPU under load.
    pub snapshot_every: u64,
    /// Entries kept in the log behind a snapshot (for lagging followers).
    /// Default 1,000.
    pub keep_behind_snapshot: u64,
    /// Raft heartbeat interval. Default 100 ms.
    pub heartbeat: Duration,
    /// Smallest election timeout (the largest is twice it). Default 500 ms.
    pub election_timeout: Duration,
    /// How long a request waits for a leader to be known before 503. Default 2 s.
    pub leader_wait: Duration,
    /// How long a write or linearizable read may take before 503. Default 5 s.
    pub request_timeout: Duration,
    /// How long a connection may take to send a request's headers, and stay idle
    /// between requests (see [`crate::serve`]).
    pub header_timeout: Duration,
    /// How long `POST /admin/add` waits for the new node to catch up before it
    /// answers 503 and leaves the node a learner. Default 20 s.
    pub catch_up_timeout: Duration,
}

impl NodeConfig {
    /// The defaults for node `id` listening on `listen` with directory `dir`.
    pub fn new(id: NodeId, listen: impl Into<String>, dir: impl Into<PathBuf>) -> NodeConfig {
        NodeConfig {
            id,
            listen: listen.into(),
            dir: dir.into(),
            token: None,
            clients_need_token: false,
            tls: None,
            snapshot_every: 100_000,
            keep_behind_snapshot: 1_000,
            heartbeat: Duration::from_millis(100),
            election_timeout: Duration::from_millis(500),
            leader_wait: Duration::from_secs(2),
            request_timeout: Duration::from_secs(5),
            header_timeout: crate::serve::HEADER_READ_TIMEOUT,
            catch_up_timeout: Duration::from_secs(20),
        }
    }

    fn raft_config(&self) -> Result<Config> {
        let ms = |d: Duration| d.as_millis() as u64;
        let config = Config {
            cluster_name: "flashlog".into(),
            heartbeat_interval: ms(self.heartbeat).max(1),
            election_timeout_min: ms(self.election_timeout),
            // The spread is narrow on purpose. openraft's leader lease is
            // `election_timeout_max`: a follower neither starts an election nor grants
            // a vote until that long after the leader's last heartbeat, so the first
            // timeout after a leader dies (before the lease ends) is always skipped and
            // the election comes one timeout later: about 2 x min + a little. With 2 x
            // min as the max, failover took 1.6-1.9 s; with 1.2 x min, 1.07-1.14 s
            // (500 ms, 2026-12-07). The 100 ms spread still separates candidates.
            election_timeout_max: (ms(self.election_timeout) * 6 / 5)
                .max(ms(self.election_timeout) + 1),
            install_snapshot_timeout: 60_000,
            snapshot_policy: if self.snapshot_every == 0 {
                SnapshotPolicy::Never
            } else {
                SnapshotPolicy::LogsSinceLast(self.snapshot_every)
            },
            max_in_snapshot_log_to_keep: self.keep_behind_snapshot,
            // A follower whose directory was wiped comes back with an empty log:
            // the leader resets its progress and sends it a snapshot instead of
            // stopping. (Such a node does not vote until it holds the leader's
            // state again: see `http::raft::vote`.)
            allow_log_reversion: Some(true),
            ..Config::default()
        };
        config
            .validate()
            .map_err(|e| Error::Invalid(format!("raft configuration: {e}")))
    }
}

/// A running node.
#[derive(Debug)]
pub struct RunningNode {
    state: http::Shared,
    addr: SocketAddr,
    server: JoinHandle<std::io::Result<()>>,
    stop_server: oneshot::Sender<()>,
    watcher: JoinHandle<()>,
}

/// Starts a node: checks or records DIR's identity, opens the log and the state
/// machine, starts Raft and the HTTP server.
///
/// # Errors
/// [`Error::WrongNodeId`] / [`Error::WrongCluster`] for a directory of another
/// node or cluster; I/O errors of the directory; a listener that cannot bind;
/// openraft refusing the stored state.
pub async fn start(config: NodeConfig) -> Result<RunningNode> {
    // First the port: a node that cannot serve does not start Raft.
    let listener = TcpListener::bind(&config.listen)
        .await
        .map_err(|e| Error::Http {
            what: format!("cannot listen on {}", config.listen),
            source: Box::new(e),
        })?;
    let addr = listener.local_addr().map_err(|e| Error::Http {
        what: "cannot read the listener's address".into(),
        source: Box::new(e),
    })?;
    std::fs::create_dir_all(&config.dir).map_err(io("create", &config.dir))?;
    crate::identity::check_or_record(&config.dir, config.id, config.token.as_deref())?;
    let raft_dir = config.dir.join("raft");
    // The log synced at every append (the default `SyncPolicy::Always`); the commit
    // point lazily, as etcd's raft keeps its commit index: Raft's safety rests on
    // the log and the vote, and a restarted node learns the commit from the leader.
    // That takes an fdatasync per commit off openraft's core path.
    let log = LogStore::open_with(
        &raft_dir,
        flashlog_wal::Options::default(),
        flashlog_raft::CommitPoint::Lazy,
    )
    .map_err(io("open the Raft log in", &raft_dir))?;
    let sm = StateMachine::open(&config.dir.join("sm"))?;
    let transport = Transport::with_tls(
        config.token.as_deref(),
        config.request_timeout.max(Duration::from_secs(10)),
        config.tls.as_ref().map(|tls| &tls.peers),
    )?;
    let raft = Raft::new(
        config.id,
        Arc::new(config.raft_config()?),
        Network::new(transport.clone()),
        log.clone(),
        sm.clone(),
    )
    .await
    .map_err(|e| Error::Raft(e.to_string()))?;
    let state = Arc::new(AppState {
        id: config.id,
        raft: raft.clone(),
        sm,
        log,
        token: config.token.clone(),
        clients_need_token: config.clients_need_token,
        leader_wait: config.leader_wait,
        request_timeout: config.request_timeout,
        catch_up_timeout: config.catch_up_timeout,
        elections: AtomicU64::new(0),
        leader_changes: AtomicU64::new(0),
        transport,
    });
    let watcher = tokio::spawn(watch_elections(Arc::clone(&state)));
    let (stop_server, stopped) = oneshot::channel::<()>();
    let app = http::router(Arc::clone(&state));
    let stopped = async move {
        let _ = stopped.await;
    };
    let header_timeout = config.header_timeout;
    let server = match &config.tls {
        Some(tls) => {
            let listener = tls.server.listen(listener).map_err(|e| Error::Http {
                what: format!("cannot serve TLS on {addr}"),
                source: Box::new(e),
            })?;
            tokio::spawn(crate::serve::serve(listener, app, header_timeout, stopped))
        }
        None => tokio::spawn(crate::serve::serve(listener, app, header_timeout, stopped)),
    };
    tracing::info!(id = config.id, %addr, "node serving");
    Ok(RunningNode {
        state,
        addr,
        server,
        stop_server,
        watcher,
    })
}

/// Counts term increases and leader changes from openraft's metrics.
async fn watch_elections(state: http::Shared) {
    let mut rx = state.raft.metrics();
    let (mut term, mut leader) = {
        let m = rx.borrow_watched();
        (m.current_term, m.current_leader)
    };
    while rx.changed().await.is_ok() {
        let m = rx.borrow_watched().clone();
        if m.current_term > term {
            state
                .elections
                .fetch_add(m.current_term - term, Ordering::Relaxed);
            term = m.current_term;
        }
        if m.current_leader != leader {
            if m.current_leader.is_some() {
                state.leader_changes.fetch_add(1, Ordering::Relaxed);
            }
            leader = m.current_leader;
        }
    }
}

/// Returns once Raft stopped by itself (a storage error, a panic in its core).
async fn stopped(raft: Raft) -> String {
    let mut rx = raft.metrics();
    loop {
        if let Err(fatal) = &rx.borrow_watched().running_state {
            return fatal.to_string();
        }
        if rx.changed().await.is_err() {
            return "its core task ended".to_string();
        }
    }
}

impl RunningNode {
    /// The address the node listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Raft handle.
    pub fn raft(&self) -> &Raft {
        &self.state.raft
    }

    /// Stops the node cleanly: the HTTP server (requests under way finish),
    /// Raft, then a final checkpoint of the state machine and the logs' close.
    ///
    /// # Errors
    /// The first error of the steps; the later steps still run.
    pub async fn shutdown(self) -> Result<()> {
        let _ = self.stop_server.send(());
        let server = tokio::time::timeout(Duration::from_secs(5), self.server).await;
        let raft = self
            .state
            .raft
            .shutdown()
            .await
            .map_err(|e| Error::Raft(format!("shutdown: {e}")));
        self.watcher.abort();
        let sm = self.state.sm.close().await;
        let log = self
            .state
            .log
            .wal()
            .close()
            .map_err(|e| Error::Raft(format!("closing the Raft log: {e}")));
        if let Ok(Ok(Err(e))) = server {
            tracing::warn!(error = %e, "the HTTP server ended with an error");
        }
        raft.and(sm).and(log)
    }
}

/// Runs a node until SIGINT or SIGTERM, then shuts it down cleanly. Builds its
/// own multi-thread tokio runtime; `ready` is called with the listening address
/// once the node serves.
///
/// # Errors
/// What [`start`] and [`RunningNode::shutdown`] return.
pub fn serve_until_signal(config: NodeConfig, ready: impl FnOnce(SocketAddr)) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(io("start the runtime of", &config.dir))?;
    runtime.block_on(async move {
        let node = start(config).await?;
        ready(node.addr());
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| Error::Http {
                what: "cannot handle SIGTERM".into(),
                source: Box::new(e),
            })?;
        let fatal = tokio::select! {
            _ = tokio::signal::ctrl_c() => None,
            _ = term.recv() => None,
            why = stopped(node.raft().clone()) => Some(why),
        };
        match fatal {
            None => {
                tracing::info!("signal received: shutting down");
                node.shutdown().await
            }
            Some(why) => {
                tracing::error!(%why, "raft stopped: shutting down");
                let _ = node.shutdown().await;
                Err(Error::Raft(why))
            }
        }
    })
}
