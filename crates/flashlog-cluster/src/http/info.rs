//! `GET /cluster` (this node's view, JSON), `GET /metrics` (Prometheus text) and
//! `GET /health`. Open to anyone who can reach the node: they change nothing.

use openraft::async_runtime::WatchReceiver;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::Shared;

/// `GET /cluster`: `id`, `leader` (id or null), `term`, `state`,
/// `last_log_index`, `committed_index`, `last_applied_index`, `snapshot_index`,
/// `purged_index`, `voters`, `learners` and `nodes` (id to address).
pub async fn cluster(State(state): State<Shared>) -> Response {
    let m = state.raft.metrics().borrow_watched().clone();
    let membership = m.membership_config.membership();
    let voters: Vec<u64> = membership.voter_ids().collect();
    let learners: Vec<u64> = membership.learner_ids().collect();
    let nodes: BTreeMap<String, String> = membership
        .nodes()
        .map(|(id, node)| (id.to_string(), node.addr.clone()))
        .collect();
    axum::Json(json!({
        "id": state.id,
        "leader": m.current_leader,
        "term": m.current_term,
        "state": format!("{:?}", m.state),
        "last_log_index": m.last_log_index.unwrap_or(0),
        "committed_index": m.cluster_committed.or(m.local_committed).map_or(0, |id| id.index),
        "last_applied_index": m.last_applied.map_or(0, |id| id.index),
        "snapshot_index": m.snapshot.map(|id| id.index),
        "purged_index": m.purged.map(|id| id.index),
        "voters": voters,
        "learners": learners,
        "nodes": nodes,
    }))
    .into_response()
}

/// `GET /metrics`: Prometheus text format (see [`crate::metrics`]).
pub async fn metrics(State(state): State<Shared>) -> Response {
    let m = state.raft.metrics().borrow_watched().clone();
    let text = crate::metrics::render(&crate::metrics::Figures {
        raft: &m,
        log: state.log.wal().metrics(),
        store: state.sm.db().stats(),
        elections: state.elections.load(Ordering::Relaxed),
        leader_changes: state.leader_changes.load(Ordering::Relaxed),
        snapshots: state.sm.snapshot_counts(),
    });
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// `GET /health`: 200 while the node serves.
pub async fn health(State(state): State<Shared>) -> Response {
    axum::Json(json!({ "status": "ok", "id": state.id })).into_response()
}
