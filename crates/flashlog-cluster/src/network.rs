//! Raft's RPCs to the other nodes, over HTTP: `POST /raft/append`, `/raft/vote`
//! (bodies postcard-encoded) and `/raft/snapshot` (the snapshot file streamed as a
//! chunked body, the leader's vote in the `x-flashlog-vote` header).

use std::fs::File;
use std::future::Future;
use std::io::{Seek, SeekFrom};

use openraft::entry::RaftEntry;
use openraft::errors::{NetworkError, RPCError, ReplicationClosed, StreamingError, Unreachable};
use openraft::network::{RPCOption, RaftNetworkFactory, RaftNetworkV2};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, SnapshotResponse, VoteRequest, VoteResponse,
};
use openraft::type_config::alias::SnapshotOf;
use openraft::OptionalSend;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::AsyncReadExt;

use crate::transport::Transport;
use crate::types::{Node, NodeId, TypeConfig, Vote};

/// The header that carries the vote of a snapshot's sender (JSON).
pub const VOTE_HEADER: &str = "x-flashlog-vote";
/// The media type of postcard-encoded bodies.
pub const POSTCARD: &str = "application/x-postcard";
/// The chunk size of a streamed snapshot.
const CHUNK: usize = 256 << 10;

/// Builds a [`Peer`] for each node Raft talks to.
#[derive(Debug, Clone)]
pub struct Network {
    transport: Transport,
}

impl Network {
    /// A network whose requests go through `transport`.
    pub fn new(transport: Transport) -> Network {
        Network { transport }
    }
}

impl RaftNetworkFactory<TypeConfig> for Network {
    type Network = Peer;

    async fn new_client(&mut self, target: NodeId, node: &Node) -> Peer {
        Peer {
            target,
            addr: node.addr.clone(),
            transport: self.transport.clone(),
        }
    }
}

/// The connection to one other node.
#[derive(Debug)]
pub struct Peer {
    target: NodeId,
    addr: String,
    transport: Transport,
}

#[derive(Debug, thiserror::Error)]
#[error("node {target} at {addr}: {what}")]
struct PeerError {
    target: NodeId,
    addr: String,
    what: String,
}

impl Peer {
    fn error(&self, what: impl std::fmt::Display) -> PeerError {
        PeerError {
            target: self.target,
            addr: self.addr.clone(),
            what: what.to_string(),
        }
    }

    async fn call<Req: Serialize, Resp: DeserializeOwned>(
        &self,
        path: &str,
        body: &Req,
        option: &RPCOption,
    ) -> Result<Resp, RPCError<TypeConfig>> {
        let body = postcard::to_stdvec(body).map_err(|e| {
            RPCError::Network(NetworkError::new(&self.error(format!("encode: {e}"))))
        })?;
        let response = self
            .transport
            .request(reqwest::Method::POST, &self.addr, path)
            .header(reqwest::header::CONTENT_TYPE, POSTCARD)
            .timeout(option.hard_ttl())
            .body(body)
            .send()
            .await
            .map_err(|e| {
                RPCError::Unreachable(Unreachable::new(&self.error(crate::error::chain(&e))))
            })?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| RPCError::Network(NetworkError::new(&self.error(e))))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            return Err(RPCError::Network(NetworkError::new(
                &self.error(format!("{status}: {text}")),
            )));
        }
        postcard::from_bytes(&bytes)
            .map_err(|e| RPCError::Network(NetworkError::new(&self.error(format!("decode: {e}")))))
    }
}

impl RaftNetworkV2<TypeConfig> for Peer {
    type SnapshotData = File;

    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<TypeConfig>, RPCError<TypeConfig>> {
        // A request whose entries do not follow its `prev_log_id` would leave a gap
        // in the follower's log: not sent. (openraft builds one when a replication
        // stream it replaced reads entries purged meanwhile; flashlog-raft's
        // `limited_get_log_entries` serves those while they are on disk.) The
        // error ends the stream's session and openraft starts over from its progress.
        let expected = rpc.prev_log_id.as_ref().map_or(0, |id| id.index() + 1);
        if let Some(first) = rpc.entries.first() {
            if first.index() != expected {
                return Err(RPCError::Network(NetworkError::new(&self.error(format!(
                    "not sent: the entries start at index {} but follow {}",
                    first.index(),
                    expected.saturating_sub(1)
                )))));
            }
        }
        self.call("/raft/append", &rpc, &option).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<VoteResponse<TypeConfig>, RPCError<TypeConfig>> {
        self.call("/raft/vote", &rpc, &option).await
    }

    async fn full_snapshot(
        &mut self,
        vote: Vote,
        snapshot: SnapshotOf<TypeConfig, File>,
        cancel: impl Future<Output = ReplicationClosed> + OptionalSend + 'static,
        option: RPCOption,
    ) -> Result<SnapshotResponse<TypeConfig>, StreamingError<TypeConfig>> {
        let network = |e: PeerError| StreamingError::Network(NetworkError::new(&e));
        let vote = serde_json::to_string(&vote).map_err(|e| network(self.error(e)))?;
        let mut file = snapshot.snapshot;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| network(self.error(e)))?;
        let file = tokio::fs::File::from_std(file);
        let chunks = futures_util::stream::unfold(file, |mut file| async move {
            let mut buf = vec![0u8; CHUNK];
            match file.read(&mut buf).await {
                Ok(0) => None,
                Ok(n) => {
                    buf.truncate(n);
                    Some((Ok::<_, std::io::Error>(buf), file))
                }
                Err(e) => Some((Err(e), file)),
            }
        });
        let request = self
            .transport
            .request(reqwest::Method::POST, &self.addr, "/raft/snapshot")
            .header(VOTE_HEADER, vote)
            .timeout(option.hard_ttl())
            .body(reqwest::Body::wrap_stream(chunks))
            .send();
        let response = tokio::select! {
            closed = cancel => return Err(StreamingError::Closed(closed)),
            response = request => response,
        };
        let response =
            response.map_err(|e| StreamingError::Unreachable(Unreachable::new(&self.error(e))))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| network(self.error(e)))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            return Err(network(self.error(format!("{status}: {text}"))));
        }
        postcard::from_bytes(&bytes).map_err(|e| network(self.error(format!("decode: {e}"))))
    }
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::time::Duration;

    use openraft::type_config::alias::{EntryOf, LeaderIdOf};
    use openraft::vote::RaftLeaderId;

    use super::*;
    use crate::types::LogId;

    fn log_id(index: u64) -> LogId {
        LogId::new(LeaderIdOf::<TypeConfig>::new(1, 1).to_committed(), index)
    }

    fn request(prev: u64, first: u64) -> AppendEntriesRequest<TypeConfig> {
        AppendEntriesRequest {
            vote: Vote::new_committed(1, 1),
            prev_log_id: Some(log_id(prev)),
            leader_commit: None,
            entries: vec![EntryOf::<TypeConfig>::new_blank(log_id(first))],
        }
    }

    /// A request with a gap after its `prev_log_id` never leaves the node; one
    /// without a gap does.
    #[tokio::test]
    async fn a_request_with_a_gap_is_not_sent() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let transport = Transport::new(None, Duration::from_millis(300)).unwrap();
        let mut peer = Peer {
            target: 2,
            addr: listener.local_addr().unwrap().to_string(),
            transport,
        };
        let option = RPCOption::new(Duration::from_millis(300));

        let refused = peer.append_entries(request(133, 135), option.clone()).await;
        match refused {
            Err(RPCError::Network(e)) => assert!(e.to_string().contains("not sent"), "{e}"),
            other => panic!("expected a network error, got {other:?}"),
        }
        assert!(listener.accept().is_err(), "nothing reached the peer");

        // Contiguous: sent (the listener never answers, so it times out).
        let sent = peer.append_entries(request(133, 134), option).await;
        assert!(sent.is_err());
        assert!(listener.accept().is_ok(), "the request reached the peer");
    }
}
