//! Liveness and readiness probes.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::api::{Api, Dialect, doc, r};
use crate::app::AppState;

pub fn api() -> Api {
    Api::new("Health", Dialect::Plain)
        .get(
            "/healthz",
            alive,
            doc("The process is alive").public().ok(200, r("Health")),
        )
        .get(
            "/readyz",
            ready,
            doc("The database answers and the process is not shutting down (else 503 with Retry-After)")
                .public()
                .ok(200, r("Health")),
        )
}

/// The process is up.
async fn alive() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// The database answers and shutdown has not begun; otherwise 503 with
/// `Retry-After`.
async fn ready(State(state): State<AppState>) -> Response {
    if state.is_draining() {
        return not_ready(&state, "draining");
    }
    match state.db.ping().await {
        Ok(()) => {
            axum::Json(json!({"status": "ok", "database": state.db.backend()})).into_response()
        }
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            not_ready(&state, "unavailable")
        }
    }
}

fn not_ready(state: &AppState, status: &str) -> Response {
    let body = json!({"status": status, "database": state.db.backend()});
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
}
