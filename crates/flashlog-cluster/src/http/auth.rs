//! The cluster token: `Authorization: Bearer TOKEN`. Missing: 401; wrong: 403.
//! Required on Raft RPCs and admin requests whenever the node has a token; on
//! client requests when the node was told so.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::{ApiError, Shared};

/// Whether `a` equals `b`, in time independent of where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Checks the request's token against `token`.
///
/// # Errors
/// 401 without an `Authorization: Bearer` header, 403 with a wrong token.
pub fn check(headers: &HeaderMap, token: &str) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "this request needs the cluster token (Authorization: Bearer TOKEN)",
        ));
    };
    let given = value.as_bytes().strip_prefix(b"Bearer ").unwrap_or(b"");
    if same(given, token.as_bytes()) {
        Ok(())
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "wrong cluster token"))
    }
}

/// Middleware of Raft and admin routes.
pub async fn peers(State(state): State<Shared>, request: Request, next: Next) -> Response {
    if let Some(token) = &state.token {
        if let Err(e) = check(request.headers(), token) {
            return e.into_response();
        }
    }
    next.run(request).await
}

/// Middleware of client routes.
pub async fn clients(State(state): State<Shared>, request: Request, next: Next) -> Response {
    if state.clients_need_token {
        if let Some(token) = &state.token {
            if let Err(e) = check(request.headers(), token) {
                return e.into_response();
            }
        }
    }
    next.run(request).await
}
