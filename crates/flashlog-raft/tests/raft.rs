//! `LogStore` under a real `openraft::Raft`: one node, initialized, client writes
//! applied; the log reopens with them.

#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;

use flashlog_raft::LogStore;
use flashlog_wal::Options;
use openraft::errors::{RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse};
use openraft::raft::{VoteRequest, VoteResponse};
use openraft::storage::RaftLogStorage;
use openraft::type_config::alias::{SnapshotOf, VoteOf};
use openraft::AnyError;
use openraft::{Config, EntryPayload, Raft, RaftLogReader};

mod common;
use common::{StateMachine, C};

/// A node with no peers: every RPC is unreachable.
struct NoPeers;

impl RaftNetworkFactory<C> for NoPeers {
    type Network = NoPeers;

    async fn new_client(&mut self, _target: u64, _node: &openraft::impls::BasicNode) -> NoPeers {
        NoPeers
    }
}

fn unreachable() -> Unreachable<C> {
    Unreachable::new(&AnyError::error("single-node test: no peers"))
}

impl RaftNetworkV2<C> for NoPeers {
    type SnapshotData = Vec<u8>;

    async fn append_entries(
        &mut self,
        _rpc: AppendEntriesRequest<C>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<C>, RPCError<C>> {
        Err(RPCError::Unreachable(unreachable()))
    }

    async fn vote(
        &mut self,
        _rpc: VoteRequest<C>,
        _option: RPCOption,
    ) -> Result<VoteResponse<C>, RPCError<C>> {
        Err(RPCError::Unreachable(unreachable()))
    }

    async fn full_snapshot(
        &mut self,
        _vote: VoteOf<C>,
        _snapshot: SnapshotOf<C, Vec<u8>>,
        _cancel: impl Future<Output = ReplicationClosed> + openraft::OptionalSend + 'static,
        _option: RPCOption,
    ) -> Result<SnapshotResponse<C>, StreamingError<C>> {
        Err(StreamingError::Unreachable(unreachable()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_raft_writes_through_the_log_store() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::<C>::open(dir.path(), Options::default()).unwrap();
    let sm = StateMachine::default();
    let config = Arc::new(Config::default().validate().unwrap());
    let raft = Raft::new(1, config, NoPeers, store.clone(), sm.clone())
        .await
        .unwrap();
    raft.initialize(BTreeMap::from([(
        1u64,
        openraft::impls::BasicNode::default(),
    )]))
    .await
    .unwrap();
    raft.wait(Some(std::time::Duration::from_secs(10)))
        .current_leader(1, "node 1 leads")
        .await
        .unwrap();
    for n in 0..20 {
        raft.client_write(format!("w{n}")).await.unwrap();
    }
    let applied = sm.0.lock().unwrap().applied.clone();
    assert_eq!(
        applied,
        (0..20).map(|n| format!("w{n}")).collect::<Vec<_>>()
    );
    raft.shutdown().await.unwrap();
    drop(raft);
    drop(store);

    // `shutdown` returns before every task of openraft's has dropped its clone of
    // the store (a log reader): the directory stays locked until the last one goes.
    let t0 = std::time::Instant::now();
    let mut store = loop {
        match LogStore::<C>::open(dir.path(), Options::default()) {
            Ok(store) => break store,
            Err(e) if t0.elapsed() < std::time::Duration::from_secs(10) => {
                assert!(e.to_string().contains("lock"), "{e}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    let state = store.get_log_state().await.unwrap();
    let entries = store.try_get_log_entries(..).await.unwrap();
    assert_eq!(
        state.last_log_id.map(|id| id.index),
        entries.last().map(|e| e.log_id.index)
    );
    let written: Vec<String> = entries
        .into_iter()
        .filter_map(|e| match e.payload {
            EntryPayload::Normal(data) => Some(data),
            _ => None,
        })
        .collect();
    assert_eq!(
        written,
        (0..20).map(|n| format!("w{n}")).collect::<Vec<_>>()
    );
    assert!(store.read_vote().await.unwrap().is_some());
}
