//! The benchmark's ceiling: a bare axum handler answering a small JSON body,
//! served the same way as Roster (tokio multi-thread runtime, axum::serve).
//!
//!     cargo run --release --example bare_axum -- 127.0.0.1:8302

use axum::Router;
use axum::routing::get;

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8302".into());
    let app = Router::new().fallback(get(|| async {
        axum::Json(serde_json::json!({"id": 1, "email": "bench@example.com", "first_name": "Bench", "last_name": "Mark", "role": "Admin"}))
    }));
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    axum::serve(listener, app).await
}
