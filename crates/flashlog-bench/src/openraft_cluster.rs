//! Three openraft nodes in one process, each on its own log store in its own
//! directory, joined by the in-memory network; node 1 leads.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use openraft::impls::BasicNode;
use openraft::{Config, Raft, ServerState};

use crate::openraft_machine::Counter;
use crate::openraft_memstore::MemStore;
use crate::openraft_network::Router;
use crate::openraft_rafts_log::RaftLogStore;
use crate::openraft_types::Bench;
use crate::system::BenchResult;

/// The log store every node of a cluster runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Store {
    /// `flashlog_raft::LogStore` under `SyncPolicy::Always`.
    Flashlog,
    /// The same with `CommitPoint::Lazy` (the commit point not synced, as
    /// raft-log's adapter and etcd keep theirs): what `flashlog serve` runs.
    FlashlogLazy,
    /// A `BTreeMap` in memory, callback inline: no durability, the upper bound.
    Memory,
    /// The `raft-log` crate behind a minimal adapter.
    RaftLog,
    /// RocksDB in the style of openraft's rocksstore example (feature `rocksdb`).
    RocksDb,
}

impl Store {
    /// The stores this build can run: RocksDB only with the `rocksdb` feature.
    pub fn available() -> Vec<Store> {
        let mut stores = vec![
            Store::Flashlog,
            Store::FlashlogLazy,
            Store::Memory,
            Store::RaftLog,
        ];
        if cfg!(feature = "rocksdb") {
            stores.push(Store::RocksDb);
        }
        stores
    }

    /// The store `--stores` names `id`.
    pub fn from_id(id: &str) -> Option<Store> {
        [
            Store::Flashlog,
            Store::FlashlogLazy,
            Store::Memory,
            Store::RaftLog,
            Store::RocksDb,
        ]
        .into_iter()
        .find(|s| s.id() == id)
    }

    /// Name on the command line.
    pub fn id(self) -> &'static str {
        match self {
            Store::Flashlog => "flashlog",
            Store::FlashlogLazy => "flashlog-lazy",
            Store::Memory => "memory",
            Store::RaftLog => "raft-log",
            Store::RocksDb => "rocksdb",
        }
    }

    /// Name in tables and JSON.
    pub fn name(self) -> &'static str {
        match self {
            Store::Flashlog => "flashlog-raft",
            Store::FlashlogLazy => "flashlog-raft, lazy commit point",
            Store::Memory => "in-memory (not durable)",
            Store::RaftLog => "raft-log 0.4.6",
            Store::RocksDb => "RocksDB (rocksstore style)",
        }
    }

    /// Whether the store is a durable peer flashlog-raft must beat (not the
    /// in-memory bound, not flashlog-raft's own lazy variant).
    pub fn durable(self) -> bool {
        !matches!(self, Store::Memory | Store::FlashlogLazy)
    }
}

/// The configuration every node of every cluster gets: tuned for loopback.
pub fn config() -> BenchResult<Arc<Config>> {
    let config = Config {
        cluster_name: "flashlog-bench".into(),
        // Loopback, but 2 cores shared by three nodes and up to 256 clients: at
        // 150–300 ms the leader's lease lapsed under load and it refused writes.
        heartbeat_interval: 50,
        election_timeout_min: 1000,
        election_timeout_max: 2000,
        ..Config::default()
    };
    Ok(Arc::new(config.validate()?))
}

/// A running cluster: the router holds every node's handle.
pub struct Cluster {
    /// The nodes, by id.
    pub router: Router,
    /// Node 1, the leader.
    pub leader: Raft<Bench, Counter>,
    /// The leader's state machine.
    pub leader_state: Counter,
}

async fn node(
    store: Store,
    id: u64,
    dir: &Path,
    config: Arc<Config>,
    router: &Router,
    machine: Counter,
) -> BenchResult<Raft<Bench, Counter>> {
    let network = router.clone();
    Ok(match store {
        Store::Flashlog => {
            let log =
                flashlog_raft::LogStore::<Bench>::open(dir, flashlog_wal::Options::default())?;
            Raft::new(id, config, network, log, machine).await?
        }
        Store::FlashlogLazy => {
            let log = flashlog_raft::LogStore::<Bench>::open_with(
                dir,
                flashlog_wal::Options::default(),
                flashlog_raft::CommitPoint::Lazy,
            )?;
            Raft::new(id, config, network, log, machine).await?
        }
        Store::Memory => Raft::new(id, config, network, MemStore::default(), machine).await?,
        Store::RaftLog => {
            std::fs::create_dir_all(dir)?;
            Raft::new(id, config, network, RaftLogStore::open(dir)?, machine).await?
        }
        Store::RocksDb => rocks(id, dir, config, network, machine).await?,
    })
}

#[cfg(feature = "rocksdb")]
async fn rocks(
    id: u64,
    dir: &Path,
    config: Arc<Config>,
    network: Router,
    machine: Counter,
) -> BenchResult<Raft<Bench, Counter>> {
    let log = crate::openraft_rocks::RocksStore::open(dir)?;
    Ok(Raft::new(id, config, network, log, machine).await?)
}

#[cfg(not(feature = "rocksdb"))]
async fn rocks(
    _id: u64,
    _dir: &Path,
    _config: Arc<Config>,
    _network: Router,
    _machine: Counter,
) -> BenchResult<Raft<Bench, Counter>> {
    Err("the RocksDB store needs `--features rocksdb`".into())
}

impl Cluster {
    /// Starts nodes 1, 2 and 3 on `store`, each in `dir/node-<id>`, initializes the
    /// cluster from node 1 and waits until node 1 leads and has applied an entry.
    ///
    /// # Errors
    /// A store that does not open, a node that does not start, no leader within 10 s.
    pub async fn start(store: Store, dir: &Path) -> BenchResult<Cluster> {
        let config = config()?;
        let router = Router::default();
        let mut leader_state = Counter::default();
        for id in 1..=3u64 {
            let machine = Counter::default();
            if id == 1 {
                leader_state = machine.clone();
            }
            let raft = node(
                store,
                id,
                &dir.join(format!("node-{id}")),
                Arc::clone(&config),
                &router,
                machine,
            )
            .await?;
            router.add(id, raft);
        }
        let leader = router.node(1).ok_or("node 1 missing")?;
        let members: BTreeMap<u64, BasicNode> =
            (1..=3).map(|id| (id, BasicNode::default())).collect();
        leader.initialize(members).await?;
        // Leading, and its first entry (the blank one of its term) applied: the
        // cluster commits.
        leader
            .wait(Some(Duration::from_secs(10)))
            .state(ServerState::Leader, "node 1 leads")
            .await?;
        leader
            .wait(Some(Duration::from_secs(10)))
            .applied_index_at_least(Some(1), "node 1 applied its blank entry")
            .await?;
        Ok(Cluster {
            router,
            leader,
            leader_state,
        })
    }

    /// Shuts every node down.
    ///
    /// # Errors
    /// A node's core task that failed.
    pub async fn shutdown(self) -> BenchResult<()> {
        for (id, raft) in self.router.nodes() {
            raft.shutdown()
                .await
                .map_err(|e| format!("node {id} shutdown: {e}"))?;
        }
        Ok(())
    }
}
