//! The openraft section's in-memory network: each RPC calls the target node's
//! `Raft` handle directly (append entries, vote, full snapshot), in the same process.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, RwLock};

use openraft::errors::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::impls::BasicNode;
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse};
use openraft::raft::{VoteRequest, VoteResponse};
use openraft::type_config::alias::SnapshotOf;
use openraft::{AnyError, Raft};

use crate::openraft_machine::Counter;
use crate::openraft_types::{Bench, Vote};

/// The nodes of one cluster by id; every node's network reaches the others through it.
#[derive(Clone, Default)]
pub struct Router {
    nodes: Arc<RwLock<BTreeMap<u64, Raft<Bench, Counter>>>>,
}

impl Router {
    /// Adds `raft` as node `id`.
    pub fn add(&self, id: u64, raft: Raft<Bench, Counter>) {
        self.nodes
            .write()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(id, raft);
    }

    /// The handle of node `id`, if it was added.
    pub fn node(&self, id: u64) -> Option<Raft<Bench, Counter>> {
        self.nodes
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(&id)
            .cloned()
    }

    /// Every node's handle, by id.
    pub fn nodes(&self) -> Vec<(u64, Raft<Bench, Counter>)> {
        self.nodes
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .iter()
            .map(|(id, raft)| (*id, raft.clone()))
            .collect()
    }
}

/// One node's view of the network: a connection to a target id through the router.
pub struct Connection {
    target: u64,
    router: Router,
}

impl Connection {
    fn target(&self) -> Result<Raft<Bench, Counter>, Unreachable<Bench>> {
        self.router.node(self.target).ok_or_else(|| {
            Unreachable::new(&AnyError::error(format!(
                "node {} is not in the cluster",
                self.target
            )))
        })
    }
}

impl RaftNetworkFactory<Bench> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: u64, _node: &BasicNode) -> Connection {
        Connection {
            target,
            router: self.clone(),
        }
    }
}

impl RaftNetworkV2<Bench> for Connection {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<Bench>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<Bench>, RPCError<Bench>> {
        let target = self.target()?;
        target
            .append_entries(rpc)
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<Bench>,
        _option: RPCOption,
    ) -> Result<VoteResponse<Bench>, RPCError<Bench>> {
        let target = self.target()?;
        target
            .vote(rpc)
            .await
            .map_err(|e| RPCError::Unreachable(Unreachable::new(&e)))
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: SnapshotOf<Bench, Vec<u8>>,
        _cancel: impl Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<Bench>, StreamingError<Bench>> {
        let target = self.target()?;
        target
            .install_full_snapshot(vote, snapshot)
            .await
            .map_err(|e| StreamingError::Unreachable(Unreachable::new(&e)))
    }
}
