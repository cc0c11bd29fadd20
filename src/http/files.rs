//! Downloads through signed, expiring links (`/files/{token}/{name}`).
//! The link is the credential: no Authorization header is needed, and a
//! tampered or expired link is a 404, like a file that does not exist.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;

use super::api::{Api, Dialect, doc};
use super::drf::DrfResult;
use crate::app::AppState;
use crate::domain::uploads::{self, percent_encode_segment};

pub fn api() -> Api {
    // Files are served with the type sniffed from their bytes.
    let stored_types = uploads::FileKind::ALL.map(uploads::FileKind::content_type);
    let file = doc("Download a file through a signed, expiring link (no credentials)")
        .public()
        .string_param("token")
        .string_param("name")
        .file()
        .media_types(&stored_types)
        .errors(&[404]);
    Api::new("Files", Dialect::Plain)
        .get("/files/{token}", download_unnamed, file.clone())
        .get("/files/{token}/{name}", download, file)
}

async fn download_unnamed(state: State<AppState>, Path(token): Path<String>) -> DrfResult {
    send(&state, &token).await
}

async fn download(
    state: State<AppState>,
    Path((token, _name)): Path<(String, String)>,
) -> DrfResult {
    send(&state, &token).await
}

async fn send(state: &AppState, token: &str) -> DrfResult {
    let file = uploads::download(state, token).await?;
    let blob = &file.blob;
    let image = blob.content_type.starts_with("image/");
    // Images may show inline; anything else is a download. The name is
    // given twice: plain ASCII for old clients, UTF-8 per RFC 5987.
    let ascii: String = blob
        .filename
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let disposition = format!(
        "{}; filename=\"{ascii}\"; filename*=UTF-8''{}",
        if image { "inline" } else { "attachment" },
        percent_encode_segment(&blob.filename)
    );
    let mut response = Response::new(Body::from(file.bytes));
    let headers = response.headers_mut();
    let value =
        |s: &str| HeaderValue::from_str(s).unwrap_or(HeaderValue::from_static("attachment"));
    headers.insert(header::CONTENT_TYPE, value(&blob.content_type));
    headers.insert(header::CONTENT_DISPOSITION, value(&disposition));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}
