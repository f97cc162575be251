//! Administration, behind the token check: `POST /admin/init` (form a cluster),
//! `/admin/add` (a learner that catches up, then becomes a voter) and
//! `/admin/remove`. Add and remove run on the leader (`307` elsewhere).

use openraft::async_runtime::WatchReceiver;
use std::collections::{BTreeMap, BTreeSet};

use axum::extract::State;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use openraft::ChangeMembers;
use serde::Deserialize;
use serde_json::json;

use super::kv::{leader_route, Route};
use super::{ApiError, Shared};
use crate::types::{Node, NodeId};

/// The body of `POST /admin/init`.
#[derive(Debug, Deserialize)]
pub struct InitRequest {
    /// The voters: id to address.
    pub nodes: BTreeMap<NodeId, String>,
}

/// The body of `POST /admin/add`.
#[derive(Debug, Deserialize)]
pub struct AddRequest {
    /// The new node's id.
    pub id: NodeId,
    /// Its address.
    pub addr: String,
}

/// The body of `POST /admin/remove`.
#[derive(Debug, Deserialize)]
pub struct RemoveRequest {
    /// The id of the node to remove.
    pub id: NodeId,
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::bad_request(format!("malformed JSON: {e}")))
}

/// `POST /admin/init {"nodes": {"1": "H:P", ...}}`: 409 if this node already
/// belongs to another cluster (nothing changed); 200 if it already belongs to
/// exactly this one (the leader's entries reached it before its init did).
pub async fn init(
    State(state): State<Shared>,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let body = super::read_body(&state, body, super::MAX_ADMIN_BODY).await?;
    let request: InitRequest = json_body(&body)?;
    if !request.nodes.contains_key(&state.id) {
        return Err(ApiError::bad_request(format!(
            "the nodes must include this node ({})",
            state.id
        )));
    }
    let initialized = state
        .raft
        .is_initialized()
        .await
        .map_err(ApiError::internal)?;
    if initialized {
        // The same cluster reached this node first (the leader elected by the
        // nodes initialized before it replicated here): the init is done.
        let metrics = state.raft.metrics().borrow_watched().clone();
        let membership = metrics.membership_config.membership();
        let same = membership.voter_ids().collect::<Vec<_>>()
            == request.nodes.keys().copied().collect::<Vec<_>>()
            && membership
                .nodes()
                .all(|(id, node)| request.nodes.get(id) == Some(&node.addr));
        if same {
            return Ok(axum::Json(json!({ "initialized": true })).into_response());
        }
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "this node already belongs to a cluster: nothing changed",
        ));
    }
    let members: BTreeMap<NodeId, Node> = request
        .nodes
        .into_iter()
        .map(|(id, addr)| (id, Node { addr }))
        .collect();
    match state.raft.initialize(members).await {
        Ok(()) => Ok(axum::Json(json!({ "initialized": true })).into_response()),
        Err(e) => Err(ApiError::new(
            StatusCode::CONFLICT,
            format!("cannot initialize: {e}"),
        )),
    }
}

/// `POST /admin/add {"id": N, "addr": "H:P"}`: adds a learner, waits until it
/// caught up, then makes it a voter. A learner that does not catch up within the
/// node's catch-up timeout (unreachable, down, or refusing this cluster's token)
/// stays a learner: `503`, and no voter was added.
pub async fn add(
    State(state): State<Shared>,
    uri: Uri,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let body = super::read_body(&state, body, super::MAX_ADMIN_BODY).await?;
    let request: AddRequest = json_body(&body)?;
    if let Route::Leader(redirect) = leader_route(&state, &uri).await? {
        return Ok(redirect);
    }
    let added = state
        .raft
        .add_learner(request.id, Node { addr: request.addr }, false)
        .await
        .map_err(|e| {
            ApiError::unavailable(format!("cannot add node {} as a learner: {e}", request.id))
        })?;
    // Caught up: the learner acknowledged the entry that made it a learner.
    // (openraft's blocking add_learner counts a learner within 5,000 entries of
    // the leader as up to date even when it never answered, and would let a node
    // that is down or refuses the token become a voter the cluster then waits for.)
    let id = request.id;
    let membership_index = added.log_id.index;
    let caught_up = state
        .raft
        .wait(Some(state.catch_up_timeout))
        .metrics(
            |m| {
                let matched = m.replication.as_ref().and_then(|r| r.get(&id).cloned());
                matched
                    .flatten()
                    .is_some_and(|log_id| log_id.index >= membership_index)
            },
            "the new learner caught up",
        )
        .await;
    if caught_up.is_err() {
        return Err(ApiError::unavailable(format!(
            "node {id} did not catch up within {} ms (is it running, reachable, and given this \
             cluster's token?): it stays a learner, not a voter; `flashlog cluster add` again \
             once it can, or `flashlog cluster remove --id {id}`",
            state.catch_up_timeout.as_millis()
        )));
    }
    let response = state
        .raft
        .change_membership(
            ChangeMembers::AddVoterIds(BTreeSet::from([request.id])),
            false,
        )
        .await
        .map_err(|e| {
            ApiError::unavailable(format!("cannot make node {} a voter: {e}", request.id))
        })?;
    Ok(axum::Json(json!({ "index": response.log_id.index })).into_response())
}

/// `POST /admin/remove {"id": N}`: removes the node (voter or learner).
pub async fn remove(
    State(state): State<Shared>,
    uri: Uri,
    body: axum::body::Body,
) -> Result<Response, ApiError> {
    let body = super::read_body(&state, body, super::MAX_ADMIN_BODY).await?;
    let request: RemoveRequest = json_body(&body)?;
    if let Route::Leader(redirect) = leader_route(&state, &uri).await? {
        return Ok(redirect);
    }
    let ids = BTreeSet::from([request.id]);
    let metrics = state.raft.metrics().borrow_watched().clone();
    let membership = metrics.membership_config.membership();
    if membership.get_node(&request.id).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("node {} is not in the cluster", request.id),
        ));
    }
    if membership.voter_ids().any(|id| id == request.id) {
        state
            .raft
            .change_membership(ChangeMembers::RemoveVoters(ids.clone()), false)
            .await
            .map_err(|e| {
                ApiError::unavailable(format!("cannot remove voter {}: {e}", request.id))
            })?;
    }
    let response = state
        .raft
        .change_membership(ChangeMembers::RemoveNodes(ids), false)
        .await
        .map_err(|e| ApiError::unavailable(format!("cannot remove node {}: {e}", request.id)))?;
    Ok(axum::Json(json!({ "index": response.log_id.index })).into_response())
}
