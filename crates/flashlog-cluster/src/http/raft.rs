//! Raft's RPCs between nodes: `POST /raft/append`, `/raft/vote` (postcard
//! bodies both ways) and `/raft/snapshot` (the snapshot file as the body, the
//! sender's vote in the `x-flashlog-vote` header). Behind the token check.

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use openraft::type_config::alias::SnapshotOf;
use serde::de::DeserializeOwned;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use super::{ApiError, Shared};
use crate::network::{POSTCARD, VOTE_HEADER};
use crate::types::{TypeConfig, Vote};

fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    postcard::from_bytes(body)
        .map_err(|e| ApiError::bad_request(format!("cannot decode the request: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Result<Response, ApiError> {
    let bytes = postcard::to_stdvec(value).map_err(ApiError::internal)?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, POSTCARD)], bytes).into_response())
}

/// `POST /raft/append`.
pub async fn append(State(state): State<Shared>, body: Body) -> Result<Response, ApiError> {
    let body = super::read_body(&state, body, super::MAX_RPC_BODY).await?;
    let request = decode(&body)?;
    let response = state
        .raft
        .append_entries(request)
        .await
        .map_err(ApiError::internal)?;
    encode(&response)
}

/// `POST /raft/vote`. A node that has not joined a cluster (no log, no
/// membership: a new node, or one whose directory was wiped) does not vote: it
/// may have voted in an earlier life and forgotten it, and its vote could elect
/// a leader that misses committed entries. It votes once a leader's entries or
/// snapshot reached it. (`flashlog cluster init` initializes every node before
/// the first election needs their votes.)
pub async fn vote(State(state): State<Shared>, body: Body) -> Result<Response, ApiError> {
    let body = super::read_body(&state, body, super::MAX_ADMIN_BODY).await?;
    let request = decode(&body)?;
    let initialized = state
        .raft
        .is_initialized()
        .await
        .map_err(ApiError::internal)?;
    if !initialized {
        return Err(ApiError::unavailable(
            "this node has not joined a cluster: it does not vote",
        ));
    }
    let response = state.raft.vote(request).await.map_err(ApiError::internal)?;
    encode(&response)
}

/// `POST /raft/snapshot`: receives the snapshot into a file, then installs it.
pub async fn snapshot(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let vote: Vote = headers
        .get(VOTE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| serde_json::from_str(v).ok())
        .ok_or_else(|| {
            ApiError::bad_request(format!("missing or malformed {VOTE_HEADER} header"))
        })?;
    let path = state.sm.receive_path();
    let result = receive_and_install(&state, vote, body, &path).await;
    let _ = tokio::fs::remove_file(&path).await;
    result
}

async fn receive_and_install(
    state: &Shared,
    vote: Vote,
    body: Body,
    path: &std::path::Path,
) -> Result<Response, ApiError> {
    let failed = |what: &str, e: &dyn std::fmt::Display| {
        ApiError::internal(format!("cannot {what} {}: {e}", path.display()))
    };
    // Read and write: the state machine reads it back to install it.
    let mut file = tokio::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
        .await
        .map_err(|e| failed("create", &e))?;
    let mut stream = body.into_data_stream();
    loop {
        // A sender silent for the request timeout between chunks: given up.
        let next = tokio::time::timeout(state.request_timeout, stream.next())
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    format!(
                        "no snapshot data for {} ms",
                        state.request_timeout.as_millis()
                    ),
                )
            })?;
        let Some(chunk) = next else {
            break;
        };
        // A sender that went away mid-stream: nothing is installed.
        let chunk =
            chunk.map_err(|e| ApiError::bad_request(format!("the snapshot stream broke: {e}")))?;
        file.write_all(&chunk)
            .await
            .map_err(|e| failed("write", &e))?;
    }
    file.flush().await.map_err(|e| failed("write", &e))?;
    file.sync_all().await.map_err(|e| failed("fsync", &e))?;
    let mut file = file.into_std().await;
    use std::io::Seek;
    file.seek(std::io::SeekFrom::Start(0))
        .map_err(|e| failed("seek", &e))?;
    let meta = crate::snapshot::read_meta_from(&mut file, path)
        .map_err(|e| ApiError::bad_request(crate::error::chain(&e)))?;
    let snapshot = SnapshotOf::<TypeConfig, std::fs::File> {
        meta,
        snapshot: file,
    };
    let response = state
        .raft
        .install_full_snapshot(vote, snapshot)
        .await
        .map_err(ApiError::internal)?;
    encode(&response)
}
