//! Liveness and readiness probes.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::app::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(alive))
        .route("/readyz", get(ready))
}

/// The process is up.
async fn alive() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// The database answers; otherwise 503 with `Retry-After`.
async fn ready(State(state): State<AppState>) -> Response {
    match state.db.ping().await {
        Ok(()) => {
            axum::Json(json!({"status": "ok", "database": state.db.backend()})).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"status": "unavailable", "database": state.db.backend()})),
            )
                .into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
            response
        }
    }
}
