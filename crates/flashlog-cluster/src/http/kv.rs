//! The client API: `PUT`, `DELETE`, `GET /kv/{key}` and `GET /kv?prefix=P&limit=N`.
//!
//! Writes and linearizable reads run on the leader; a follower answers `307`
//! with `Location` naming the same path and query on the leader. While no leader
//! is known the node waits up to its leader wait (`--leader-wait-ms`, default
//! 2 s), then answers `503`. A write or read that the cluster does not complete
//! within the request timeout (`--request-timeout-ms`, default 5 s) gets `503`
//! too (a write may still be applied later: it was not acknowledged).

use openraft::async_runtime::WatchReceiver;
use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use openraft::raft::ReadPolicy;
use serde_json::json;

use super::reply::redirect;
use super::{ApiError, Shared};
use crate::types::Command;

/// The largest key accepted, in bytes.
pub const MAX_KEY: usize = 64 << 10;
/// Scan's default and largest `limit`.
pub const DEFAULT_SCAN_LIMIT: usize = 1000;
/// Scan's largest `limit`.
pub const MAX_SCAN_LIMIT: usize = 100_000;

/// Where a request that must run on the leader runs.
pub(crate) enum Route {
    /// Here: this node is the leader.
    Here,
    /// Elsewhere: the answer is this redirect.
    Leader(Response),
}

/// Finds the leader (waiting up to the leader wait while none is known).
pub(crate) async fn leader_route(state: &Shared, uri: &Uri) -> Result<Route, ApiError> {
    // The common case, this node leads, reads one field under the watch's lock:
    // cloning the whole metrics (membership, replication maps) on every request
    // was measurable under load.
    let leader = state.raft.metrics().borrow_watched().current_leader;
    if leader == Some(state.id) {
        return Ok(Route::Here);
    }
    let mut metrics = state.raft.metrics().borrow_watched().clone();
    if metrics.current_leader.is_none() {
        metrics = state
            .raft
            .wait(Some(state.leader_wait))
            .metrics(|m| m.current_leader.is_some(), "a leader is known")
            .await
            .map_err(|_| {
                ApiError::unavailable(format!(
                    "no leader known after {} ms: the cluster may have lost its majority or not be initialized",
                    state.leader_wait.as_millis()
                ))
            })?;
    }
    match metrics.current_leader {
        Some(leader) if leader == state.id => Ok(Route::Here),
        Some(leader) => match metrics.membership_config.membership().get_node(&leader) {
            Some(node) => Ok(Route::Leader(redirect(&state.transport, &node.addr, uri))),
            None => Err(ApiError::unavailable(format!(
                "leader {leader} has no known address"
            ))),
        },
        None => Err(ApiError::unavailable("no leader known")),
    }
}

/// The key of a `/kv/{key}` request, from the raw (still encoded) path.
fn key_of(uri: &Uri) -> Result<Vec<u8>, ApiError> {
    let raw = uri.path().strip_prefix("/kv/").unwrap_or("");
    if !crate::keys::is_well_formed(raw) {
        return Err(ApiError::bad_request(format!(
            "malformed percent-encoding in the key: {raw}"
        )));
    }
    let key = crate::keys::decode(raw);
    if key.is_empty() {
        return Err(ApiError::bad_request("the key is empty"));
    }
    if key.len() > MAX_KEY {
        return Err(ApiError::bad_request(format!(
            "the key has {} bytes, more than {MAX_KEY}",
            key.len()
        )));
    }
    Ok(key)
}

/// The query's parameters, decoded (values as bytes).
fn query_of(uri: &Uri) -> Result<BTreeMap<String, Vec<u8>>, ApiError> {
    let mut out = BTreeMap::new();
    for pair in uri
        .query()
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
    {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        if !crate::keys::is_well_formed(value) {
            return Err(ApiError::bad_request(format!(
                "malformed percent-encoding in {name}"
            )));
        }
        out.insert(name.to_string(), crate::keys::decode(value));
    }
    Ok(out)
}

/// Whether the query asks for `consistency=local`.
fn local(query: &BTreeMap<String, Vec<u8>>) -> Result<bool, ApiError> {
    match query.get("consistency").map(Vec::as_slice) {
        None | Some(b"linearizable") => Ok(false),
        Some(b"local") => Ok(true),
        Some(other) => Err(ApiError::bad_request(format!(
            "consistency must be local or linearizable, not {}",
            String::from_utf8_lossy(other)
        ))),
    }
}

/// Proposes `command` and waits for it to be applied on this node (the leader).
async fn write(state: &Shared, uri: &Uri, command: Command) -> Result<Response, ApiError> {
    if let Route::Leader(redirect) = leader_route(state, uri).await? {
        return Ok(redirect);
    }
    let is_delete = matches!(command, Command::Delete { .. });
    let result =
        tokio::time::timeout(state.request_timeout, state.raft.client_write(command)).await;
    let response = match result {
        Err(_) => {
            return Err(ApiError::unavailable(format!(
                "the write was not committed within {} ms (not acknowledged: it may or may not be applied later)",
                state.request_timeout.as_millis()
            )))
        }
        Ok(Err(e)) => {
            if let Some(forward) = e.forward_to_leader() {
                if let Some(node) = &forward.leader_node {
                    return Ok(redirect(&state.transport, &node.addr, uri));
                }
                return Err(ApiError::unavailable("leadership changed and no new leader is known yet"));
            }
            return Err(ApiError::unavailable(format!("the write failed: {e}")));
        }
        Ok(Ok(response)) => response.data,
    };
    if let Some(refused) = response.refused {
        return Err(ApiError::bad_request(refused));
    }
    let body = if is_delete {
        json!({ "index": response.index, "removed": response.removed.unwrap_or(false) })
    } else {
        json!({ "index": response.index })
    };
    Ok((StatusCode::OK, axum::Json(body)).into_response())
}

/// Confirms leadership (openraft's `ensure_linearizable`, read index) and waits
/// until this node applied what it had committed; `Ok(Some(redirect))` if
/// another node leads.
async fn linearize(state: &Shared, uri: &Uri) -> Result<Option<Response>, ApiError> {
    if let Route::Leader(redirect) = leader_route(state, uri).await? {
        return Ok(Some(redirect));
    }
    let result = tokio::time::timeout(
        state.request_timeout,
        state.raft.ensure_linearizable(ReadPolicy::ReadIndex),
    )
    .await;
    match result {
        Err(_) => Err(ApiError::unavailable(format!(
            "leadership was not confirmed within {} ms",
            state.request_timeout.as_millis()
        ))),
        Ok(Err(e)) => match e.forward_to_leader() {
            Some(forward) => match &forward.leader_node {
                Some(node) => Ok(Some(redirect(&state.transport, &node.addr, uri))),
                None => Err(ApiError::unavailable(
                    "leadership changed and no new leader is known yet",
                )),
            },
            None => Err(ApiError::unavailable(format!(
                "cannot confirm leadership: {e}"
            ))),
        },
        Ok(Ok(_)) => Ok(None),
    }
}

/// `PUT /kv/{key}`: the body is the value; `{"index": N}` once committed and applied.
pub async fn put(State(state): State<Shared>, uri: Uri, body: Body) -> Result<Response, ApiError> {
    let key = key_of(&uri)?;
    let body = super::read_body(&state, body, super::MAX_VALUE_BODY).await?;
    write(
        &state,
        &uri,
        Command::Put {
            key,
            value: body.to_vec(),
        },
    )
    .await
}

/// `DELETE /kv/{key}`: `{"index": N, "removed": bool}` once committed and applied.
pub async fn delete(State(state): State<Shared>, uri: Uri) -> Result<Response, ApiError> {
    let key = key_of(&uri)?;
    write(&state, &uri, Command::Delete { key }).await
}

/// `GET /kv/{key}[?consistency=local]`: the raw value, or 404.
pub async fn get(State(state): State<Shared>, uri: Uri) -> Result<Response, ApiError> {
    let key = key_of(&uri)?;
    let query = query_of(&uri)?;
    if !local(&query)? {
        if let Some(redirect) = linearize(&state, &uri).await? {
            return Ok(redirect);
        }
    }
    let db = state.sm.db();
    let value = tokio::task::spawn_blocking(move || db.get(&key))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| ApiError::internal(format!("cannot read the store: {e}")))?;
    match value {
        Some(value) => Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/octet-stream")],
            value,
        )
            .into_response()),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "no such key")),
    }
}

/// `GET /kv?prefix=P&limit=N[&consistency=local]`: `{"items": [...], "more": bool}`,
/// each item `{"key", "value", "key_hex", "value_hex"}` (text or null if not UTF-8;
/// hex always exact), in key order.
pub async fn scan(State(state): State<Shared>, uri: Uri) -> Result<Response, ApiError> {
    let query = query_of(&uri)?;
    let prefix = query.get("prefix").cloned().unwrap_or_default();
    let limit = match query.get("limit") {
        None => DEFAULT_SCAN_LIMIT,
        Some(text) => std::str::from_utf8(text)
            .ok()
            .and_then(|t| t.parse::<usize>().ok())
            .filter(|n| (1..=MAX_SCAN_LIMIT).contains(n))
            .ok_or_else(|| {
                ApiError::bad_request(format!("limit must be a number from 1 to {MAX_SCAN_LIMIT}"))
            })?,
    };
    if !local(&query)? {
        if let Some(redirect) = linearize(&state, &uri).await? {
            return Ok(redirect);
        }
    }
    let db = state.sm.db();
    let (items, more) = tokio::task::spawn_blocking(move || {
        let mut items = Vec::new();
        let mut more = false;
        for pair in db.scan_prefix(&prefix) {
            let (key, value) = pair?;
            if items.len() == limit {
                more = true;
                break;
            }
            items.push(crate::keys::pair_json(&key, &value));
        }
        Ok::<_, flashlog_kv::Error>((items, more))
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(|e| ApiError::internal(format!("cannot read the store: {e}")))?;
    Ok(axum::Json(json!({ "items": items, "more": more })).into_response())
}
