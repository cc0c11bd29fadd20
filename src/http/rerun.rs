//! Running a request again when it failed because its PostgreSQL
//! connection was lost while it ran (a terminated backend; see
//! `store::rerun` for when that is safe), at most three times in all. The
//! client then sees the answer of the run that kept its connection instead
//! of a 503.
//!
//! Installed only on PostgreSQL: SQLite's connections are files in this
//! process and are never lost. What the first run read of the request's
//! body is kept, up to the JSON body limit, and what it left unread is
//! handed back; a request that read more than that (an upload) is not run
//! again.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::Response;
use http_body::Body as _;

use crate::app::AppState;
use crate::store::rerun;

/// How many times a request may run in all: a second run can meet another
/// backend of the same wave (a failover ends them all), on a connection
/// opened after the first loss was seen.
const RUNS: u32 = 3;

/// The middleware: see the module's comment.
pub async fn after_lost_connection(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let (response, runs) = run_again_if_lost(req, next, state.config.max_body_bytes).await;
    state.metrics.reran(u64::from(runs - 1));
    response
}

/// Runs the request, and again while it fails on a lost connection and may,
/// at most [`RUNS`] times in all; returns the last answer and the number of
/// runs. Each run reads the body the run before read (kept when at most
/// `cap` bytes), then whatever that one left unread.
async fn run_again_if_lost(mut req: Request, next: Next, cap: usize) -> (Response, u32) {
    let mut run = 1;
    loop {
        let (parts, body) = req.into_parts();
        let again = copy_of(&parts);
        let kept = (!body.is_end_stream()).then(|| Arc::new(Mutex::new(Kept::new())));
        let body = match &kept {
            Some(kept) => Body::new(KeepingBody {
                inner: Some(body),
                kept: kept.clone(),
                cap,
            }),
            None => body,
        };
        let (response, record) =
            rerun::recorded(next.clone().run(Request::from_parts(parts, body))).await;
        if run == RUNS
            || response.status() != StatusCode::SERVICE_UNAVAILABLE
            || !record.may_run_again()
        {
            return (response, run);
        }
        let body = match kept {
            None => Body::empty(),
            Some(kept) => match kept.lock().unwrap_or_else(PoisonError::into_inner).replay() {
                Some(body) => body,
                None => return (response, run),
            },
        };
        tracing::info!(
            method = %again.method,
            path = %again.uri.path(),
            "running a request again: its database connection was lost"
        );
        drop(response);
        req = Request::from_parts(again, body);
        run += 1;
    }
}

/// The request line, headers and extensions (route parameters, the peer's
/// address) for a second run. `Parts` itself cannot be cloned.
fn copy_of(parts: &Parts) -> Parts {
    let mut copy = Request::new(());
    *copy.method_mut() = parts.method.clone();
    *copy.uri_mut() = parts.uri.clone();
    *copy.version_mut() = parts.version;
    *copy.headers_mut() = parts.headers.clone();
    *copy.extensions_mut() = parts.extensions.clone();
    copy.into_parts().0
}

/// What a [`KeepingBody`] passed on, and what it did not.
struct Kept {
    /// The pieces read; `None` once they passed the cap (or the body
    /// carried something other than data, or failed).
    pieces: Option<Vec<Bytes>>,
    len: usize,
    ended: bool,
    /// The body's unread rest, handed back when the first run dropped it
    /// (a request that failed before reading its body leaves all of it).
    rest: Option<Body>,
}

impl Kept {
    fn new() -> Self {
        Kept {
            pieces: Some(Vec::new()),
            len: 0,
            ended: false,
            rest: None,
        }
    }

    fn add(&mut self, piece: &Bytes, cap: usize) {
        self.len = self.len.saturating_add(piece.len());
        if self.len > cap {
            self.pieces = None;
        } else if let Some(pieces) = &mut self.pieces {
            // A reference count, not a copy.
            pieces.push(piece.clone());
        }
    }

    /// The body again: the pieces read, then the unread rest; `None` when
    /// the pieces were not kept or the rest did not come back.
    fn replay(&mut self) -> Option<Body> {
        let pieces = self.pieces.take()?;
        let rest = match self.rest.take() {
            Some(rest) => Some(rest),
            None if self.ended => None,
            None => return None,
        };
        Some(Body::new(ReplayedBody {
            pieces: pieces.into(),
            rest,
        }))
    }
}

/// A request body that keeps what it passes on (see [`Kept`]).
struct KeepingBody {
    /// Always there until the body is dropped.
    inner: Option<Body>,
    kept: Arc<Mutex<Kept>>,
    cap: usize,
}

impl http_body::Body for KeepingBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        let Some(inner) = &mut this.inner else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(&mut *inner).poll_frame(cx);
        if let Poll::Ready(frame) = &polled {
            let mut kept = this.kept.lock().unwrap_or_else(PoisonError::into_inner);
            match frame {
                Some(Ok(frame)) => match frame.data_ref() {
                    Some(piece) => kept.add(piece, this.cap),
                    None => kept.pieces = None,
                },
                Some(Err(_)) => kept.pieces = None,
                None => kept.ended = true,
            }
            if inner.is_end_stream() {
                kept.ended = true;
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| http_body::SizeHint::with_exact(0), |b| b.size_hint())
    }
}

impl Drop for KeepingBody {
    fn drop(&mut self) {
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if !kept.ended {
            kept.rest = self.inner.take();
        }
    }
}

/// A body played again: the pieces first read, then the unread rest.
struct ReplayedBody {
    pieces: VecDeque<Bytes>,
    rest: Option<Body>,
}

impl http_body::Body for ReplayedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        if let Some(piece) = self.pieces.pop_front() {
            return Poll::Ready(Some(Ok(http_body::Frame::data(piece))));
        }
        match &mut self.rest {
            Some(rest) => Pin::new(rest).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty() && self.rest.as_ref().is_none_or(|b| b.is_end_stream())
    }

    fn size_hint(&self) -> http_body::SizeHint {
        let kept: u64 = self.pieces.iter().map(|p| p.len() as u64).sum();
        let rest = self
            .rest
            .as_ref()
            .map_or_else(|| http_body::SizeHint::with_exact(0), |b| b.size_hint());
        // Upper first: a lower bound may never exceed the upper one.
        let mut hint = http_body::SizeHint::new();
        if let Some(upper) = rest.upper() {
            hint.set_upper(upper.saturating_add(kept));
        }
        hint.set_lower(rest.lower().saturating_add(kept));
        hint
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use axum::Router;
    use axum::response::IntoResponse;
    use axum::routing::post;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;

    const CAP: usize = 16;

    /// How a route's failing runs end.
    #[derive(Clone, Copy)]
    enum FirstRun {
        /// Its connection lost after it read the body.
        Lost,
        /// Its connection lost before it read the body (in an extractor
        /// that checks credentials, say).
        LostUnread,
        /// A write committed, then its connection lost.
        LostAfterCommit,
        /// A server error, with no connection lost.
        Failed,
    }

    /// A route whose first `failing` runs end as `first` says, and whose
    /// later runs echo the body they read.
    fn flaky(first: FirstRun, failing: usize) -> (Router, Arc<AtomicUsize>) {
        let runs = Arc::new(AtomicUsize::new(0));
        let counter = runs.clone();
        let handler = move |axum::extract::Path(id): axum::extract::Path<u32>, req: Request| {
            let counter = counter.clone();
            async move {
                let read = |req: Request| async {
                    let bytes = req.into_body().collect().await.unwrap().to_bytes();
                    String::from_utf8_lossy(&bytes).into_owned()
                };
                if counter.fetch_add(1, Ordering::SeqCst) >= failing {
                    return (StatusCode::OK, format!("{id}:{}", read(req).await)).into_response();
                }
                let status = match first {
                    FirstRun::Lost => {
                        read(req).await;
                        rerun::note_connection_lost();
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                    FirstRun::LostUnread => {
                        rerun::note_connection_lost();
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                    FirstRun::LostAfterCommit => {
                        read(req).await;
                        rerun::note_write_commit();
                        rerun::note_connection_lost();
                        StatusCode::SERVICE_UNAVAILABLE
                    }
                    FirstRun::Failed => {
                        read(req).await;
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                };
                (status, "lost").into_response()
            }
        };
        let router = Router::new()
            .route("/{id}", post(handler))
            .layer(axum::middleware::from_fn(|req, next| async move {
                run_again_if_lost(req, next, CAP).await.0
            }));
        (router, runs)
    }

    /// The answer to one request on a fresh `flaky(first, failing)` route,
    /// and how many times the route ran.
    async fn answer(first: FirstRun, failing: usize, body: Body) -> (StatusCode, String, usize) {
        let (router, runs) = flaky(first, failing);
        let req = Request::post("/7").body(body).unwrap();
        let response = router.oneshot(req).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        (status, text, runs.load(Ordering::SeqCst))
    }

    /// A body that arrives in two pieces, as a client's might.
    fn in_pieces(pieces: &[&'static [u8]]) -> Body {
        let pieces: Vec<Result<Bytes, std::io::Error>> =
            pieces.iter().map(|p| Ok(Bytes::from_static(p))).collect();
        Body::from_stream(futures_util::stream::iter(pieces))
    }

    #[tokio::test]
    async fn a_lost_connection_runs_the_request_again_with_the_same_body() {
        for first in [FirstRun::Lost, FirstRun::LostUnread] {
            let reply = answer(first, 1, in_pieces(&[b"hello ", b"there"])).await;
            assert_eq!(reply, (StatusCode::OK, "7:hello there".into(), 2));
            let reply = answer(first, 1, Body::empty()).await;
            assert_eq!(reply, (StatusCode::OK, "7:".into(), 2));
            // A second run that loses its connection too runs a third time.
            let reply = answer(first, 2, in_pieces(&[b"hello ", b"there"])).await;
            assert_eq!(reply, (StatusCode::OK, "7:hello there".into(), 3));
        }
        // A body over the cap that the first run never read comes back
        // whole.
        let over_cap = in_pieces(&[b"0123456789", b"0123456789"]);
        let reply = answer(FirstRun::LostUnread, 1, over_cap).await;
        assert_eq!(reply, (StatusCode::OK, "7:01234567890123456789".into(), 2));
    }

    #[tokio::test]
    async fn a_request_is_not_run_again_when_it_may_not_be() {
        let lost = |runs| (StatusCode::SERVICE_UNAVAILABLE, "lost".to_string(), runs);
        // A write's COMMIT was sent before the connection was lost.
        let reply = answer(FirstRun::LostAfterCommit, 1, in_pieces(&[b"x"])).await;
        assert_eq!(reply, lost(1));
        // A body over the cap was read, and not kept.
        let over_cap = in_pieces(&[b"0123456789", b"0123456789"]);
        assert_eq!(answer(FirstRun::Lost, 1, over_cap).await, lost(1));
        // Only a lost connection's 503 is run again.
        let reply = answer(FirstRun::Failed, 1, in_pieces(&[b"x"])).await;
        assert_eq!(reply, (StatusCode::INTERNAL_SERVER_ERROR, "lost".into(), 1));
        // Three runs at most.
        assert_eq!(answer(FirstRun::Lost, 3, in_pieces(&[b"x"])).await, lost(3));
    }
}
