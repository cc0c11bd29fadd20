//! Serving: the accept loop (with a header-read timeout against slowloris),
//! graceful shutdown that drains in-flight requests, and the background
//! tasks (outbox delivery, housekeeping) that run beside it.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tower::{Layer, ServiceExt};
use tower_http::normalize_path::NormalizePathLayer;

use crate::app::AppState;
use crate::domain::email::{self, Mailer};

/// The most bytes of request line and headers a client may send (beyond
/// it: 431). Real clients send a few KiB; hyper's default is about 400 KiB.
const MAX_HEAD_BYTES: usize = 32 * 1024;

/// Serves `state` on `listener` until `shutdown` turns true. Then: `/readyz`
/// answers 503 for `shutdown_delay` while requests are still served (so a
/// load balancer stops sending new ones), the listener closes, in-flight
/// requests get `drain_timeout` to finish, and the background tasks stop
/// last (mail queued by the last requests is still delivered).
pub async fn run(
    listener: TcpListener,
    state: AppState,
    mut shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let mailer = Mailer::from_state(&state)?;
    let (stop_background, background_stop) = watch::channel(false);
    let worker = tokio::spawn(email::run_worker(
        state.clone(),
        mailer,
        background_stop.clone(),
    ));
    let housekeeping = tokio::spawn(housekeeping(state.clone(), background_stop.clone()));
    let snapshots = tokio::spawn(end_stale_snapshots(state.clone(), background_stop));

    // Paths work with and without their trailing slash: strip it before routing.
    let app = NormalizePathLayer::trim_trailing_slash().layer(crate::http::router(state.clone()));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(
            state.config.header_read_timeout_secs.max(1),
        ))
        .max_buf_size(MAX_HEAD_BYTES);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();

    let mut stop_at: Option<tokio::time::Instant> = None;
    loop {
        let stop = async {
            match stop_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(conn) => conn,
                    Err(e) => {
                        // Out of file descriptors and the like: back off briefly.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let app = app.clone();
                let service = tower::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let mut req = req.map(axum::body::Body::new);
                    req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                    // The path as the client sent it (before the trailing slash
                    // is stripped), for links such as DRF's `next`.
                    let original = axum::extract::OriginalUri(req.uri().clone());
                    req.extensions_mut().insert(original);
                    app.clone().oneshot(req)
                });
                let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service));
                let conn = graceful.watch(conn.into_owned());
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                });
            }
            _ = shutdown.changed(), if stop_at.is_none() => {
                state.start_draining();
                let delay = Duration::from_secs(state.config.shutdown_delay_secs);
                tracing::info!(delay_secs = delay.as_secs(), "shutting down: readiness is now 503");
                stop_at = Some(tokio::time::Instant::now() + delay);
            }
            _ = stop => break,
        }
    }
    drop(listener);
    let drain = Duration::from_secs(state.config.drain_timeout_secs);
    tracing::info!(drain_secs = drain.as_secs(), "draining in-flight requests");
    if tokio::time::timeout(drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some connections did not finish within the drain timeout");
    }
    let _ = stop_background.send(true);
    let _ = worker.await;
    let _ = housekeeping.await;
    let _ = snapshots.await;
    Ok(())
}

/// Hourly: prunes expired refresh tokens and old rate-limit windows, and
/// removes stored files that no row names (left by failed requests,
/// crashes, or replaced files) once they are an hour old.
async fn housekeeping(state: AppState, mut shutdown: watch::Receiver<bool>) {
    loop {
        if let Err(e) = crate::domain::accounts::prune(&state).await {
            tracing::warn!(error = %e, "housekeeping failed");
        }
        if let Err(e) = state.db.optimize().await {
            tracing::warn!(error = %e, "planner statistics refresh failed");
        }
        let grace = Duration::from_secs(3_600);
        if let Err(e) = crate::domain::uploads::sweep_orphans(&state, grace).await {
            tracing::warn!(error = %e, "orphan file sweep failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3_600)) => {}
            _ = shutdown.changed() => return,
        }
    }
}

/// Every second: ends the read transactions that idle SQLite reader
/// connections keep past their time. Requests end them as they come; on a
/// server without requests, this keeps them from holding back another
/// process's checkpoint (a backup, litestream).
async fn end_stale_snapshots(state: AppState, mut shutdown: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => state.db.end_stale_snapshots(),
            _ = shutdown.changed() => return,
        }
    }
}

/// Turns SIGTERM or Ctrl-C into a shutdown signal.
pub fn shutdown_on_signals() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        {
            let mut term =
                match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(error = %e, "cannot listen for SIGTERM");
                        let _ = ctrl_c.await;
                        let _ = tx.send(true);
                        return;
                    }
                };
            tokio::select! {
                _ = ctrl_c => {}
                _ = term.recv() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = ctrl_c.await;
        tracing::info!("shutdown signal received");
        let _ = tx.send(true);
    });
    rx
}
