//! The HTTP surfaces. Each is a thin dialect over the domain: its paths,
//! parameters, envelopes and error format. This module assembles them into
//! one router and adds what every request gets (request id, log line,
//! `nosniff`, panic safety, the 404 and 405 bodies).

pub mod accounts;
pub mod api;
pub mod body;
pub mod coach;
pub mod company;
pub mod docs;
pub mod drf;
pub mod drf_list;
pub mod files;
pub mod health;
pub mod laravel;
pub mod metrics;
pub mod openapi;
pub mod org_api;
pub mod profiles;
pub mod rails;
pub mod rerun;

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, Request};
use axum::http::request::Parts;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::app::AppState;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Every surface's routes with their descriptions.
fn apis() -> Vec<api::Api> {
    vec![
        health::api(),
        metrics::api(),
        accounts::api(),
        company::api(),
        coach::api(),
        profiles::api(),
        org_api::api(),
        files::api(),
        docs::api(),
    ]
}

/// Every operation, as registered (what the OpenAPI document lists).
pub fn operations() -> Vec<api::Operation> {
    apis().into_iter().flat_map(|a| a.operations).collect()
}

/// The whole API: every surface, with the middleware every request gets.
///
/// The middleware wraps the router, not each route (`Router::layer`): axum
/// clones a route's service for every request, and a route under seven
/// layers was seven boxes to allocate, copy and free, each with a boxed
/// future (callgrind: about a tenth of `healthz`). One layer stays under
/// the routing: it hands the matched route to the log line.
pub fn router(state: AppState) -> Router {
    let mut routes = Router::new();
    for api in apis() {
        routes = routes.merge(api.router);
    }
    let routes = routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn(matched_route_to_response))
        .with_state(state.clone());
    // Only PostgreSQL's connections can be lost under a running request.
    let rerun = (state.db.backend() == "postgres")
        .then(|| middleware::from_fn_with_state(state.clone(), rerun::after_lost_connection));
    // Outermost first.
    let stack = tower::ServiceBuilder::new()
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetRequestIdLayer::new(REQUEST_ID, RandomRequestId))
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(middleware::from_fn(log_request))
        .layer(middleware::from_fn_with_state(state, gate))
        .option_layer(rerun)
        .map_response(IntoResponse::into_response)
        .layer(CatchPanicLayer::custom(|_| {
            tracing::error!("handler panicked");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                axum::Json(json!({"detail": "A server error occurred."})),
            )
                .into_response()
        }))
        .service(routes);
    Router::new().fallback_service(stack)
}

/// The route a request matched, on its response, for [`log_request`]
/// (which runs before routing).
async fn matched_route_to_response(req: Request, next: Next) -> Response {
    let matched = req.extensions().get::<MatchedPath>().cloned();
    let mut response = next.run(req).await;
    if let Some(matched) = matched {
        response.extensions_mut().insert(matched);
    }
    response
}

/// A random (v4) UUID for each request without an `X-Request-Id`, from the
/// thread's generator: the uuid crate's own asks the kernel every time, a
/// system call on every request.
#[derive(Clone, Copy)]
struct RandomRequestId;

impl tower_http::request_id::MakeRequestId for RandomRequestId {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
        let mut text = uuid::Uuid::encode_buffer();
        HeaderValue::from_str(id.hyphenated().encode_lower(&mut text))
            .ok()
            .map(RequestId::new)
    }
}

/// The dialects, for the bodies of 404 and 405 outside any route.
enum Dialect {
    Drf,
    Laravel,
    Rails,
}

/// Which dialect owns a path.
fn dialect_of(path: &str) -> Dialect {
    let under = |p: &str| path == p || path.starts_with(&format!("{p}/"));
    if org_api::PREFIXES.iter().any(|p| under(p)) {
        Dialect::Laravel
    } else if under(profiles::PREFIX) {
        Dialect::Rails
    } else {
        Dialect::Drf
    }
}

async fn not_found(req: Request) -> Response {
    let body = match dialect_of(req.uri().path()) {
        Dialect::Laravel => json!({"message": "Not Found"}),
        Dialect::Rails => json!({"error": rails::NOT_FOUND}),
        Dialect::Drf => json!({"detail": "Not found."}),
    };
    (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
}

async fn method_not_allowed(req: Request) -> Response {
    let method = req.method();
    let body = match dialect_of(req.uri().path()) {
        Dialect::Laravel => {
            json!({"message": format!("The {method} method is not supported for this route.")})
        }
        Dialect::Rails => json!({"error": format!("Method {method} is not allowed here")}),
        Dialect::Drf => json!({"detail": format!("Method \"{method}\" not allowed.")}),
    };
    (StatusCode::METHOD_NOT_ALLOWED, axum::Json(body)).into_response()
}

/// Admits a request when fewer than `max_concurrent_requests` are in
/// flight (else 503 at once: queueing without bound only makes every client
/// wait), holds its body to the body timeouts, and counts it. The probes
/// and metrics are always admitted, so an overloaded instance still says so.
async fn gate(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path();
    let probe = matches!(path, "/healthz" | "/readyz" | "/metrics");
    let _permit = if probe {
        None
    } else {
        match state.admission.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(_) => {
                state.metrics.shed();
                return overloaded(path);
            }
        }
    };
    let req = if axum::body::HttpBody::is_end_stream(req.body()) {
        req
    } else {
        let config = &state.config;
        let idle = std::time::Duration::from_secs(config.body_idle_timeout_secs);
        let min_rate = config.body_min_rate;
        req.map(|b| axum::body::Body::new(body::TimedBody::new(b, idle, min_rate)))
    };
    let in_flight = state.metrics.track();
    let response = next.run(req).await;
    in_flight.finish(response.status().as_u16());
    response
}

/// 503 with `Retry-After`, in the dialect that owns `path`.
fn overloaded(path: &str) -> Response {
    let body = match dialect_of(path) {
        Dialect::Laravel => json!({"message": "Service Unavailable"}),
        Dialect::Rails => json!({"error": "Service temporarily unavailable"}),
        Dialect::Drf => json!({"detail": "Service temporarily unavailable, try again later."}),
    };
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, axum::Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// One structured line per request: method, route, status, latency, id.
async fn log_request(req: Request, next: Next) -> Response {
    // With request lines filtered out (`ROSTER_LOG=warn`), skip gathering
    // their fields: two strings and a clock read per request.
    if !tracing::enabled!(tracing::Level::INFO) {
        return next.run(req).await;
    }
    let started = Instant::now();
    let method = req.method().clone();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let response = next.run(req).await;
    let route = response
        .extensions()
        .get::<MatchedPath>()
        .map_or("(unmatched)", |p| p.as_str());
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    if route == "/healthz" || route == "/readyz" {
        tracing::debug!(%method, %route, status, latency_ms, %request_id, "request");
    } else {
        tracing::info!(%method, %route, status, latency_ms, %request_id, "request");
    }
    response
}

/// A JSON response. The body is written into one buffer sized for a page
/// of rows: axum's `Json` starts at 128 bytes and grows a `BytesMut` write
/// by write, which copied a list page several times over.
pub fn json_response(status: StatusCode, body: &impl serde::Serialize) -> Response {
    let mut buf = Vec::with_capacity(4096);
    match serde_json::to_writer(&mut buf, body) {
        Ok(()) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            buf,
        )
            .into_response(),
        Err(e) => {
            tracing::error!(error = %e, "response body did not serialize");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The client's address: the socket peer, or, when the peer is a trusted
/// proxy, the nearest untrusted address in `X-Forwarded-For`.
pub struct ClientIp(pub String);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::from([127, 0, 0, 1]));
        Ok(ClientIp(
            client_ip(peer, parts, &state.config.trusted_proxies).to_string(),
        ))
    }
}

fn client_ip(peer: IpAddr, parts: &Parts, trusted: &[IpAddr]) -> IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .copied()
        .unwrap_or(peer)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::routing::get;
    use std::sync::{Arc, Mutex};
    use tower::ServiceExt;

    /// Log output, kept in memory.
    #[derive(Clone, Default)]
    struct Output(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Output {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl tracing_subscriber::fmt::MakeWriter<'_> for Output {
        type Writer = Output;
        fn make_writer(&self) -> Output {
            self.clone()
        }
    }

    /// The request log runs before routing (as in [`router`]); the route
    /// reaches it on the response: the matched route for a handled request
    /// and for a method the route does not allow, none for a path no route
    /// has.
    #[tokio::test(flavor = "current_thread")]
    async fn the_request_log_names_the_route_the_router_matched() {
        let output = Output::default();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(output.clone())
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let routes = Router::new()
            .route("/things/{id}", get(|| async { "a thing" }))
            .layer(middleware::from_fn(matched_route_to_response));
        let app = tower::ServiceBuilder::new()
            .layer(middleware::from_fn(log_request))
            .service(routes);
        for (method, path) in [
            ("GET", "/things/7"),
            ("PUT", "/things/7"),
            ("GET", "/other"),
        ] {
            let request = Request::builder()
                .method(method)
                .uri(path)
                .body(Body::empty())
                .unwrap();
            app.clone().oneshot(request).await.unwrap();
        }
        let text = String::from_utf8(output.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        for (line, expected) in lines.iter().zip([
            "method=GET route=/things/{id} status=200",
            "method=PUT route=/things/{id} status=405",
            "method=GET route=(unmatched) status=404",
        ]) {
            assert!(line.contains(expected), "{line:?} lacks {expected:?}");
        }
    }
}
