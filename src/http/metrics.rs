//! `GET /metrics` in Prometheus' text format: responses by status class,
//! requests in flight and shed, password hashing, the database pool and the
//! outbox. Counters are plain atomics updated by the request gate.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::api::{Api, Dialect, doc};
use crate::app::AppState;

/// Request counters, shared by every request.
#[derive(Default)]
pub struct Metrics {
    /// Responses by status class: 1xx to 5xx.
    responses: [AtomicU64; 5],
    in_flight: AtomicI64,
    shed: AtomicU64,
    reruns: AtomicU64,
}

impl Metrics {
    /// Counts a request as in flight until the guard is dropped (also when
    /// the client goes away and the request is abandoned).
    pub fn track(self: &Arc<Self>) -> InFlight {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(self))
    }

    /// Runs of a request after its first, each after a lost database
    /// connection.
    pub fn reran(&self, runs: u64) {
        if runs > 0 {
            self.reruns.fetch_add(runs, Ordering::Relaxed);
        }
    }

    pub fn shed(&self) {
        self.shed.fetch_add(1, Ordering::Relaxed);
        self.responses[4].fetch_add(1, Ordering::Relaxed);
    }
}

/// A request being handled; see [`Metrics::track`].
pub struct InFlight(Arc<Metrics>);

impl InFlight {
    pub fn finish(self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.0.responses[class].fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

pub fn api() -> Api {
    Api::new("Health", Dialect::Plain).get(
        "/metrics",
        metrics,
        doc("Prometheus metrics (text exposition format)")
            .public()
            .ok(200, json!({"type": "string"}))
            .media("text/plain"),
    )
}

async fn metrics(State(state): State<AppState>) -> Response {
    let m = &state.metrics;
    let mut out = String::new();
    let mut family = |name: &str, kind: &str, help: &str, samples: &[(&str, String)]| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(out, "{name}{labels} {value}");
        }
    };
    let classes = ["1xx", "2xx", "3xx", "4xx", "5xx"];
    let responses: Vec<(String, String)> = classes
        .iter()
        .zip(&m.responses)
        .map(|(c, n)| {
            (
                format!("{{class=\"{c}\"}}"),
                n.load(Ordering::Relaxed).to_string(),
            )
        })
        .collect();
    let responses: Vec<(&str, String)> = responses
        .iter()
        .map(|(l, v)| (l.as_str(), v.clone()))
        .collect();
    family(
        "roster_http_responses_total",
        "counter",
        "Responses sent, by status class.",
        &responses,
    );
    family(
        "roster_http_requests_in_flight",
        "gauge",
        "Requests being handled now.",
        &[("", m.in_flight.load(Ordering::Relaxed).to_string())],
    );
    family(
        "roster_http_requests_shed_total",
        "counter",
        "Requests refused with 503 because too many were in flight.",
        &[("", m.shed.load(Ordering::Relaxed).to_string())],
    );
    family(
        "roster_http_requests_rerun_total",
        "counter",
        "Runs of requests after their first, each because the run before lost its database connection.",
        &[("", m.reruns.load(Ordering::Relaxed).to_string())],
    );
    let hashing = state.hasher.stats();
    family(
        "roster_password_hashes_total",
        "counter",
        "Password hashes computed or verified.",
        &[("", hashing.total.to_string())],
    );
    family(
        "roster_password_hashes_in_flight",
        "gauge",
        "Password hashes being computed now.",
        &[("", hashing.in_flight.to_string())],
    );
    family(
        "roster_password_hashes_in_flight_max",
        "gauge",
        "The most password hashes ever computed at once.",
        &[("", hashing.max_in_flight.to_string())],
    );
    if let Some(long_reads) = state.db.sqlite_long_reads() {
        family(
            "roster_sqlite_long_reads_total",
            "counter",
            "Statements of a SQLite read snapshot that ran over the reader's step budget and finished on a blocking thread.",
            &[("", long_reads.to_string())],
        );
    }
    let (open, idle) = state.db.pool_size();
    family(
        "roster_db_connections",
        "gauge",
        "Database connections in the pool.",
        &[
            ("{state=\"idle\"}", idle.to_string()),
            (
                "{state=\"busy\"}",
                (open as usize).saturating_sub(idle).to_string(),
            ),
        ],
    );
    family(
        "roster_draining",
        "gauge",
        "1 once shutdown has begun.",
        &[("", u8::from(state.is_draining()).to_string())],
    );
    // The outbox backlog, when the database answers (metrics must not fail
    // because the database is down).
    if let Ok(pending) = crate::domain::email::pending(&state).await {
        family(
            "roster_outbox_pending",
            "gauge",
            "Emails not yet delivered.",
            &[("", pending.to_string())],
        );
    }
    let mut response = out.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}
