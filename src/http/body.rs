//! Reading request bodies within their limits, for every dialect: whole
//! bodies up to a byte cap, and multipart forms part by part (text fields
//! and files, each bounded). Each dialect renders [`BodyError`] its own way.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{HeaderMap, StatusCode, header};
use tokio::time::Sleep;

use crate::app::AppState;
use crate::domain::uploads::IncomingFile;

#[derive(Debug)]
pub enum BodyError {
    /// Over a limit: 413.
    TooLarge,
    /// Unreadable or malformed: 400, with what is wrong.
    Malformed(String),
    /// The client stopped sending before the body was complete: 408.
    TimedOut,
}

/// A request body that must keep arriving: no pause between its pieces may
/// exceed `idle`, and once `idle` has passed it must average `min_rate`
/// bytes a second. Without this a client could hold a connection and a
/// handler open for ever by sending a byte now and then (slow-body attacks);
/// slow but steady uploads are fine.
pub struct TimedBody {
    inner: axum::body::Body,
    idle: Duration,
    idle_timer: Pin<Box<Sleep>>,
    started: tokio::time::Instant,
    received: u64,
    min_rate: u64,
}

impl TimedBody {
    pub fn new(inner: axum::body::Body, idle: Duration, min_rate: u64) -> Self {
        TimedBody {
            inner,
            idle,
            idle_timer: Box::pin(tokio::time::sleep(idle)),
            started: tokio::time::Instant::now(),
            received: 0,
            min_rate,
        }
    }

    /// True when, past the grace period, the body arrives too slowly.
    fn too_slow(&self, now: tokio::time::Instant) -> bool {
        let elapsed = now.duration_since(self.started);
        elapsed > self.idle && (self.received as f64) < self.min_rate as f64 * elapsed.as_secs_f64()
    }
}

/// The error a [`TimedBody`] ends with when its client stalls.
#[derive(Debug)]
pub struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("request body timed out")
    }
}

impl std::error::Error for BodyTimedOut {}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, axum::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            if let Some(Ok(piece)) = &frame {
                let now = tokio::time::Instant::now();
                this.received += piece.data_ref().map_or(0, |d| d.len() as u64);
                if this.too_slow(now) {
                    return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
                }
                this.idle_timer.as_mut().reset(now + this.idle);
            }
            return Poll::Ready(frame);
        }
        if this.idle_timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// True when `err`, or an error it wraps, is a stalled body.
fn timed_out(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<BodyTimedOut>() || e.to_string().contains("request body timed out") {
            return true;
        }
        current = e.source();
    }
    false
}

/// The media type of the request (`application/json`), lower case, without
/// parameters; empty when there is no `Content-Type`.
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

fn declared_length(req: &Request) -> Option<usize> {
    req.headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
}

/// Reads at most `limit` bytes; a larger body is `TooLarge`, whether or
/// not it declared its length.
pub async fn read_limited(req: Request, limit: usize) -> Result<Bytes, BodyError> {
    if declared_length(&req).is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge);
    }
    axum::body::to_bytes(req.into_body(), limit)
        .await
        .map_err(|e| {
            let over = std::error::Error::source(&e).is_some_and(|s| {
                s.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
            }) || e.to_string().contains("length limit");
            if over {
                BodyError::TooLarge
            } else if timed_out(&e) {
                BodyError::TimedOut
            } else {
                BodyError::Malformed("Could not read the request body.".into())
            }
        })
}

/// A multipart body: its text fields (in order, repeats kept) and its
/// files (the last one of each name).
pub struct MultipartBody {
    pub pairs: Vec<(String, String)>,
    pub files: HashMap<String, IncomingFile>,
}

/// At most this many parts in one form.
const MAX_PARTS: usize = 200;

/// Reads a multipart body part by part: text fields up to
/// `max_body_bytes` in all, each file up to `file_limit` (else `TooLarge`).
pub async fn read_multipart(
    req: Request,
    state: &AppState,
    file_limit: usize,
) -> Result<MultipartBody, BodyError> {
    // Room for the text fields and the multipart framing around the files.
    let body_limit = file_limit.saturating_mul(2) + state.config.max_body_bytes;
    if declared_length(&req).is_some_and(|n| n > body_limit) {
        return Err(BodyError::TooLarge);
    }
    let malformed =
        |text: String| BodyError::Malformed(format!("Multipart form parse error - {text}"));
    let mut multipart = axum::extract::Multipart::from_request(req, state)
        .await
        .map_err(|e| malformed(e.body_text()))?;
    let failed = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            BodyError::TooLarge
        } else if timed_out(&e) {
            BodyError::TimedOut
        } else {
            malformed(e.body_text())
        }
    };
    let mut body = MultipartBody {
        pairs: Vec::new(),
        files: HashMap::new(),
    };
    let (mut text_total, mut file_total, mut parts) = (0usize, 0usize, 0usize);
    loop {
        let mut field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => return Err(failed(e)),
        };
        parts += 1;
        if parts > MAX_PARTS {
            return Err(malformed(format!("more than {MAX_PARTS} parts")));
        }
        let name = field.name().unwrap_or_default().to_string();
        let filename = field.file_name().map(str::to_string);
        let limit = match filename {
            Some(_) => file_limit,
            None => state.config.max_body_bytes.saturating_sub(text_total),
        };
        let mut bytes = Vec::new();
        loop {
            match field.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > limit {
                        return Err(BodyError::TooLarge);
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => break,
                Err(e) => return Err(failed(e)),
            }
        }
        match filename {
            Some(filename) => {
                file_total += bytes.len();
                if file_total > body_limit {
                    return Err(BodyError::TooLarge);
                }
                let file = IncomingFile {
                    filename,
                    bytes: bytes.into(),
                };
                body.files.insert(name, file);
            }
            None => {
                text_total += bytes.len();
                let text = String::from_utf8(bytes)
                    .map_err(|_| malformed(format!("field {name:?} is not UTF-8 text")))?;
                body.pairs.push((name, text));
            }
        }
    }
    Ok(body)
}
