//! The Rails dialect of the worker-profile API (seed 001): `Bearer` JWTs,
//! `{"profile": {...}}` JSON or `profile[field]` form bodies, Rails' error
//! bodies (`{"errors": {...}}` on 422, `{"error": "..."}` otherwise), and
//! ETags.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::body::{self, BodyError};
use crate::app::AppState;
use crate::domain::auth::{Principal, principal_from_access_token};
use crate::domain::uploads::IncomingFile;
use crate::domain::{AuthError, Error};

/// An error answered in Rails' format.
#[derive(Debug)]
pub enum RailsError {
    Domain(Error),
    Raw(StatusCode, String),
}

impl From<Error> for RailsError {
    fn from(e: Error) -> Self {
        RailsError::Domain(e)
    }
}

impl From<AuthError> for RailsError {
    fn from(e: AuthError) -> Self {
        RailsError::Domain(Error::Unauthenticated(e))
    }
}

impl From<BodyError> for RailsError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge => RailsError::Raw(
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body is too large".into(),
            ),
            BodyError::Malformed(message) => RailsError::Raw(StatusCode::BAD_REQUEST, message),
            BodyError::TimedOut => RailsError::Raw(
                StatusCode::REQUEST_TIMEOUT,
                "The request body did not arrive in time".into(),
            ),
        }
    }
}

pub type RailsResult<T = Response> = Result<T, RailsError>;

pub const NOT_FOUND: &str = "Not found";

impl IntoResponse for RailsError {
    fn into_response(self) -> Response {
        let mut extra: Vec<(header::HeaderName, HeaderValue)> = Vec::new();
        let (status, body) = match self {
            RailsError::Raw(status, message) => (status, json!({ "error": message })),
            RailsError::Domain(e) => match e {
                Error::Validation(errors) => {
                    let mut map = Map::new();
                    for (field, messages) in &errors.0 {
                        map.insert(field.clone(), json!(messages));
                    }
                    (StatusCode::UNPROCESSABLE_ENTITY, json!({ "errors": map }))
                }
                Error::NotFound | Error::InvalidPage => {
                    (StatusCode::NOT_FOUND, json!({ "error": NOT_FOUND }))
                }
                Error::Forbidden(_) => (
                    StatusCode::FORBIDDEN,
                    json!({"error": "You are not authorized to perform this action."}),
                ),
                Error::Unauthenticated(_) => {
                    extra.push((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
                    (
                        StatusCode::UNAUTHORIZED,
                        json!({"error": "You need to sign in or sign up before continuing."}),
                    )
                }
                Error::Throttled { retry_after } => {
                    extra.push((header::RETRY_AFTER, HeaderValue::from(retry_after)));
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        json!({"error": "Too many requests"}),
                    )
                }
                Error::BadRequest(message) => {
                    (StatusCode::BAD_REQUEST, json!({ "error": message }))
                }
                Error::PreconditionFailed => (
                    StatusCode::PRECONDITION_FAILED,
                    json!({"error": "The profile has changed since it was read (If-Match does not match)"}),
                ),
                Error::Unavailable(reason) => {
                    tracing::warn!(error = %reason, "unavailable");
                    extra.push((header::RETRY_AFTER, HeaderValue::from_static("5")));
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        json!({"error": "Service temporarily unavailable"}),
                    )
                }
                Error::Internal(reason) => {
                    tracing::error!(error = %reason, "internal error");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        json!({"error": "Internal Server Error"}),
                    )
                }
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        for (name, value) in extra {
            response.headers_mut().insert(name, value);
        }
        response
    }
}

/// The caller: `Authorization: Bearer <access>` (or `JWT`). API keys are
/// for the organisation API only.
pub struct RailsAuth(pub Principal);

impl FromRequestParts<AppState> for RailsAuth {
    type Rejection = RailsError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = super::drf::bearer_token(parts)?.ok_or(AuthError::NotProvided)?;
        Ok(RailsAuth(principal_from_access_token(state, &token).await?))
    }
}

/// Request parameters as Rails reads them: a JSON object, or form fields
/// with nested names (`profile[first_name]`, `profile[licenses][]`).
pub struct Params(pub Map<String, Value>);

impl FromRequest<AppState> for Params {
    type Rejection = RailsError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let media = body::media_type(req.headers());
        let bytes = body::read_limited(req, state.config.max_body_bytes).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Params(Map::new()));
        }
        if media == "application/x-www-form-urlencoded" {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_bytes(&bytes).map_err(|_| {
                    RailsError::Raw(StatusCode::BAD_REQUEST, "Malformed form body".into())
                })?;
            return Ok(Params(nest(pairs)));
        }
        if !(media.is_empty() || media == "application/json" || media.ends_with("+json")) {
            return Err(RailsError::Raw(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("Unsupported media type {media:?}: send JSON or a form"),
            ));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(Params(map)),
            Ok(_) => Err(RailsError::Raw(
                StatusCode::BAD_REQUEST,
                "The request body must be a JSON object".into(),
            )),
            Err(e) => Err(RailsError::Raw(
                StatusCode::BAD_REQUEST,
                format!("Error occurred while parsing request parameters: {e}"),
            )),
        }
    }
}

impl Params {
    /// `params.require(key)`: the nested object, or Rails' 400.
    pub fn require(&self, key: &str) -> Result<&Map<String, Value>, RailsError> {
        match self.0.get(key) {
            Some(Value::Object(map)) if !map.is_empty() => Ok(map),
            _ => Err(RailsError::Raw(
                StatusCode::BAD_REQUEST,
                format!("param is missing or the value is empty: {key}"),
            )),
        }
    }
}

/// Rack's nested parameter names: `a[b]=1` is `{"a": {"b": "1"}}` and
/// `a[b][]=1&a[b][]=2` is `{"a": {"b": ["1", "2"]}}`.
pub fn nest(pairs: Vec<(String, String)>) -> Map<String, Value> {
    let mut root = Map::new();
    for (key, value) in pairs {
        let (head, rest) = match key.find('[') {
            Some(i) => (&key[..i], &key[i..]),
            None => (key.as_str(), ""),
        };
        let mut path = vec![head.to_string()];
        let mut rest = rest;
        while let Some(stripped) = rest.strip_prefix('[') {
            let Some(end) = stripped.find(']') else {
                break;
            };
            path.push(stripped[..end].to_string());
            rest = &stripped[end + 1..];
        }
        insert(&mut root, &path, Value::String(value));
    }
    root
}

fn insert(map: &mut Map<String, Value>, path: &[String], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    match rest {
        [] => {
            map.insert(first.clone(), value);
        }
        [last] if last.is_empty() => {
            let entry = map
                .entry(first.clone())
                .or_insert_with(|| Value::Array(Vec::new()));
            if !entry.is_array() {
                *entry = Value::Array(Vec::new());
            }
            if let Value::Array(items) = entry {
                items.push(value);
            }
        }
        _ => {
            let entry = map
                .entry(first.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            if !entry.is_object() {
                *entry = Value::Object(Map::new());
            }
            if let Value::Object(inner) = entry {
                insert(inner, rest, value);
            }
        }
    }
}

/// A multipart upload's `file` part.
pub struct Upload(pub IncomingFile);

impl FromRequest<AppState> for Upload {
    type Rejection = RailsError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if body::media_type(req.headers()) != "multipart/form-data" {
            return Err(
                Error::field("file", "can't be blank (send it as multipart/form-data)").into(),
            );
        }
        let mut form = body::read_multipart(req, state, state.config.max_upload_bytes).await?;
        form.files
            .remove("file")
            .map(Upload)
            .ok_or_else(|| Error::field("file", "can't be blank").into())
    }
}

/// A path id; anything but a positive integer names nothing.
pub fn path_id(raw: &str) -> Result<i64, RailsError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(RailsError::Domain(Error::NotFound))
}

/// Whether `If-None-Match` names `etag` (or is `*`); weak comparison, as
/// RFC 9110 asks for this header.
pub fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim() == "*"
                || v.split(',')
                    .map(|t| t.trim().trim_start_matches("W/"))
                    .any(|t| t == etag)
        })
}

/// The `If-Match` header, if any.
pub fn if_match(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// A JSON response carrying the resource's ETag (and Rails' cache header).
pub fn with_etag(status: StatusCode, body: &impl serde::Serialize, etag: &str) -> Response {
    let mut response = super::json_response(status, body);
    tag(&mut response, etag);
    response
}

/// 304 for a client whose copy is current.
pub fn not_modified(etag: &str) -> Response {
    let mut response = StatusCode::NOT_MODIFIED.into_response();
    tag(&mut response, etag);
    response
}

fn tag(response: &mut Response, etag: &str) {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(etag) {
        headers.insert(header::ETAG, value);
    }
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("max-age=0, private, must-revalidate"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_form_names() {
        let pairs = vec![
            ("profile[first_name]".to_string(), "Ann".to_string()),
            ("profile[licenses][]".to_string(), "b".to_string()),
            ("profile[licenses][]".to_string(), "c".to_string()),
            ("plain".to_string(), "x".to_string()),
        ];
        assert_eq!(
            Value::Object(nest(pairs)),
            json!({"profile": {"first_name": "Ann", "licenses": ["b", "c"]}, "plain": "x"})
        );
    }
}
