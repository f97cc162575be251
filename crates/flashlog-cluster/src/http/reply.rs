//! Error replies: a status and a JSON body `{"error": "...", ...}`.

use axum::http::{header, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An error answer of the HTTP API.
#[derive(Debug)]
pub struct ApiError {
    /// The status.
    pub status: StatusCode,
    /// The JSON body.
    pub body: serde_json::Value,
}

impl ApiError {
    /// `status` with `{"error": message}`.
    pub fn new(status: StatusCode, message: impl std::fmt::Display) -> ApiError {
        ApiError {
            status,
            body: json!({ "error": message.to_string() }),
        }
    }

    /// 400 Bad Request.
    pub fn bad_request(message: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 503: no leader known, or the cluster did not answer in time.
    pub fn unavailable(message: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// 500: this node failed.
    pub fn internal(message: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(self.body)).into_response()
    }
}

/// `307 Temporary Redirect` to the same path and query on `addr`.
pub fn redirect(addr: &str, uri: &Uri) -> Response {
    let path = uri.path_and_query().map_or("/", |pq| pq.as_str());
    let location = format!("http://{addr}{path}");
    (
        StatusCode::TEMPORARY_REDIRECT,
        [(header::LOCATION, location.clone())],
        axum::Json(json!({ "error": "not the leader", "leader": location })),
    )
        .into_response()
}

/// 404 for a route the API does not have.
pub async fn unknown_route(uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no such route: {}", uri.path()),
    )
}
