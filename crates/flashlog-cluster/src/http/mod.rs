//! The node's HTTP server: one router for the client API ([`kv`]), Raft's RPCs
//! ([`raft`]), administration ([`admin`]) and `/cluster`, `/metrics`, `/health`
//! ([`info`]); [`auth`] guards them.

pub mod admin;
pub mod auth;
pub mod info;
pub mod kv;
pub mod raft;
mod reply;

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

use crate::state_machine::StateMachine;
use crate::transport::Transport;
use crate::types::{LogStore, NodeId, Raft};

pub use reply::ApiError;

/// The largest client request body (a value): 4 MiB.
pub const MAX_VALUE_BODY: usize = 4 << 20;
/// The largest Raft RPC body (a batch of entries): 64 MiB.
pub const MAX_RPC_BODY: usize = 64 << 20;
/// The largest admin request body.
pub const MAX_ADMIN_BODY: usize = 64 << 10;

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    /// This node's id.
    pub id: NodeId,
    /// The Raft handle.
    pub raft: Raft,
    /// The state machine (reads go to its store).
    pub sm: StateMachine,
    /// The log store (for its metrics).
    pub log: LogStore,
    /// The cluster token, if the node has one.
    pub token: Option<String>,
    /// Whether client requests need the token too.
    pub clients_need_token: bool,
    /// How long a request waits for a leader to be known before `503`.
    pub leader_wait: Duration,
    /// How long a write or a linearizable read may take before `503`.
    pub request_timeout: Duration,
    /// How long an added node may take to catch up before `/admin/add` answers `503`.
    pub catch_up_timeout: Duration,
    /// Elections seen (term changes), counted by the node's metrics watcher.
    pub elections: AtomicU64,
    /// Leader changes seen.
    pub leader_changes: AtomicU64,
    /// The client the admin handlers reach other nodes with.
    pub transport: Transport,
}

/// The shared state as handlers take it.
pub type Shared = Arc<AppState>;

/// A request body, read within the request timeout (a client or peer that stalls
/// mid-body gets `408`, and the connection's task ends) and at most `limit` bytes
/// (`413`). Every handler that takes a body reads it through here.
async fn read_body(state: &AppState, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    match tokio::time::timeout(state.request_timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            format!(
                "the body did not arrive within {} ms",
                state.request_timeout.as_millis()
            ),
        )),
        Ok(Err(e)) => Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is larger than {limit} bytes or broke off: {e}"),
        )),
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

/// The node's router.
pub fn router(state: Shared) -> Router {
    let client_auth = axum::middleware::from_fn_with_state(Arc::clone(&state), auth::clients);
    let peer_auth = axum::middleware::from_fn_with_state(Arc::clone(&state), auth::peers);
    // Bodies are read by each handler through `read_body`, with its limit.
    let kv = Router::new()
        .route("/kv", get(kv::scan))
        .route("/kv/{key}", get(kv::get).put(kv::put).delete(kv::delete))
        .layer(client_auth);
    let raft = Router::new()
        .route("/raft/append", post(raft::append))
        .route("/raft/vote", post(raft::vote))
        // Streamed to a file chunk by chunk: no limit on the whole, a deadline
        // between chunks.
        .route("/raft/snapshot", post(raft::snapshot))
        .route("/admin/init", post(admin::init))
        .route("/admin/add", post(admin::add))
        .route("/admin/remove", post(admin::remove))
        .layer(peer_auth);
    let info = Router::new()
        .route("/cluster", get(info::cluster))
        .route("/metrics", get(info::metrics))
        .route("/health", get(info::health));
    Router::new()
        .merge(kv)
        .merge(raft)
        .merge(info)
        .fallback(reply::unknown_route)
        .with_state(state)
}
