//! The Laravel dialect of the organisation API (upCoach compatible): JSON
//! or form bodies, `Bearer` API keys (or JWTs), Laravel's error bodies,
//! spatie-style `filter[...]` and `sort`, and `data/links/meta` pagination.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::app::AppState;
use crate::domain::auth::Principal;
use crate::domain::{AuthError, Error, FieldErrors};

/// An error answered in Laravel's format.
#[derive(Debug)]
pub enum LaravelError {
    Domain(Error),
    /// A model that does not exist (or belongs to another organisation):
    /// Laravel's `No query results for model [...]`.
    Missing(&'static str, String),
    /// A dialect-level failure with its own status and message.
    Raw(StatusCode, String),
}

impl From<Error> for LaravelError {
    fn from(e: Error) -> Self {
        LaravelError::Domain(e)
    }
}

impl From<AuthError> for LaravelError {
    fn from(e: AuthError) -> Self {
        LaravelError::Domain(Error::Unauthenticated(e))
    }
}

pub type LaravelResult<T = Response> = Result<T, LaravelError>;

/// Laravel's summary of a validation failure: the first message, and how
/// many more there are.
pub fn summary(errors: &FieldErrors) -> String {
    let total: usize = errors.0.iter().map(|(_, m)| m.len()).sum();
    let first = errors
        .0
        .first()
        .and_then(|(_, m)| m.first())
        .cloned()
        .unwrap_or_default();
    match total {
        0 | 1 => first,
        2 => format!("{first} (and 1 more error)"),
        n => format!("{first} (and {} more errors)", n - 1),
    }
}

impl IntoResponse for LaravelError {
    fn into_response(self) -> Response {
        let mut retry_after = None;
        let (status, body) = match self {
            LaravelError::Raw(status, message) => (status, json!({ "message": message })),
            LaravelError::Missing(model, id) => (
                StatusCode::NOT_FOUND,
                json!({ "message": format!("No query results for model [App\\Models\\{model}] {id}") }),
            ),
            LaravelError::Domain(e) => match e {
                Error::Validation(errors) => {
                    let mut map = Map::new();
                    for (field, messages) in &errors.0 {
                        map.insert(field.clone(), json!(messages));
                    }
                    (
                        StatusCode::UNPROCESSABLE_ENTITY,
                        json!({"message": summary(&errors), "errors": map}),
                    )
                }
                Error::NotFound | Error::InvalidPage => {
                    (StatusCode::NOT_FOUND, json!({"message": "Not Found"}))
                }
                Error::Forbidden(_) => (
                    StatusCode::FORBIDDEN,
                    json!({"message": "This action is unauthorized."}),
                ),
                Error::Unauthenticated(_) => (
                    StatusCode::UNAUTHORIZED,
                    json!({"message": "Unauthenticated."}),
                ),
                Error::Throttled { retry_after: secs } => {
                    retry_after = Some(secs);
                    (
                        StatusCode::TOO_MANY_REQUESTS,
                        json!({"message": "Too Many Attempts."}),
                    )
                }
                Error::BadRequest(message) => {
                    (StatusCode::BAD_REQUEST, json!({ "message": message }))
                }
                Error::PreconditionFailed => (
                    StatusCode::PRECONDITION_FAILED,
                    json!({"message": "Precondition Failed"}),
                ),
                Error::Unavailable(reason) => {
                    tracing::warn!(error = %reason, "unavailable");
                    retry_after = Some(5);
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        json!({"message": "Service Unavailable"}),
                    )
                }
                Error::Internal(reason) => {
                    tracing::error!(error = %reason, "internal error");
                    (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        json!({"message": "Server Error"}),
                    )
                }
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The caller of the organisation API: an API key, or a JWT access token,
/// of an organisation admin. Re-checked on every request.
pub struct OrgAuth(pub Principal);

impl FromRequestParts<AppState> for OrgAuth {
    type Rejection = LaravelError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = super::drf::bearer_token(parts)
            .ok()
            .flatten()
            .ok_or(AuthError::NotProvided)?;
        let principal = crate::domain::auth::principal_from_bearer(state, &token).await?;
        principal.admin_organization()?;
        Ok(OrgAuth(principal))
    }
}

/// A request body: a JSON object or form fields. Malformed JSON is a 400.
pub struct Input(pub Map<String, Value>);

impl FromRequest<AppState> for Input {
    type Rejection = LaravelError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let media_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        let bytes = super::body::read_limited(req, state.config.max_body_bytes)
            .await
            .map_err(|e| match e {
                super::body::BodyError::TooLarge => LaravelError::Raw(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "The request body is too large.".into(),
                ),
                super::body::BodyError::Malformed(_) => LaravelError::Raw(
                    StatusCode::BAD_REQUEST,
                    "The request body could not be read.".into(),
                ),
                super::body::BodyError::TimedOut => LaravelError::Raw(
                    StatusCode::REQUEST_TIMEOUT,
                    "The request body did not arrive in time.".into(),
                ),
            })?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Input(Map::new()));
        }
        if media_type == "application/x-www-form-urlencoded" {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_bytes(&bytes).map_err(|_| {
                    LaravelError::Raw(
                        StatusCode::BAD_REQUEST,
                        "The form body is malformed.".into(),
                    )
                })?;
            return Ok(Input(
                pairs
                    .into_iter()
                    .map(|(k, v)| (k, Value::String(v)))
                    .collect(),
            ));
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(Input(map)),
            Ok(_) => Err(LaravelError::Raw(
                StatusCode::BAD_REQUEST,
                "The request body must be a JSON object.".into(),
            )),
            Err(_) => Err(LaravelError::Raw(
                StatusCode::BAD_REQUEST,
                "The request body is not valid JSON.".into(),
            )),
        }
    }
}

/// Laravel's validation rules over an input, collecting every error.
pub struct Check<'a> {
    input: &'a Map<String, Value>,
    pub errors: FieldErrors,
}

impl<'a> Check<'a> {
    pub fn new(input: &'a Input) -> Self {
        Check {
            input: &input.0,
            errors: FieldErrors::new(),
        }
    }

    pub fn present(&self, name: &str) -> bool {
        self.input
            .get(name)
            .is_some_and(|v| !v.is_null() && v.as_str() != Some(""))
    }

    /// `required|string|max:N` (or `nullable|string|max:N` when optional).
    pub fn string(&mut self, name: &str, required: bool, max: usize) -> Option<String> {
        let label = name.replace('_', " ");
        match self.input.get(name) {
            None | Some(Value::Null) => {
                if required {
                    self.errors
                        .add(name, format!("The {label} field is required."));
                }
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                if required {
                    self.errors
                        .add(name, format!("The {label} field is required."));
                }
                None
            }
            // PostgreSQL text cannot hold NUL, and no name needs one.
            Some(Value::String(s)) if s.contains('\0') => {
                self.errors.add(
                    name,
                    format!("The {label} field must not contain null characters."),
                );
                None
            }
            Some(Value::String(s)) if s.chars().count() > max => {
                self.errors.add(
                    name,
                    format!("The {label} field must not be greater than {max} characters."),
                );
                None
            }
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(_) => {
                self.errors
                    .add(name, format!("The {label} field must be a string."));
                None
            }
        }
    }

    pub fn add(&mut self, name: &str, message: impl Into<String>) {
        self.errors.add(name, message);
    }

    pub fn finish(self) -> Result<(), LaravelError> {
        self.errors.into_result().map_err(LaravelError::Domain)
    }
}

/// Reads `filter[...]`, `sort`, `page` and `per_page`. `filters` and
/// `sorts` are the allowed names in the order the 400 message lists them.
pub struct ListQuery {
    pub filters: Vec<(String, Vec<String>)>,
    pub sort: Vec<(String, bool)>,
    pub page: i64,
    pub per_page: i64,
}

pub const PER_PAGE: i64 = 15;
pub const MAX_PER_PAGE: i64 = 100;

pub fn list_query(
    query: Option<&str>,
    filters: &[&str],
    sorts: &[&str],
) -> Result<ListQuery, LaravelError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.unwrap_or("")).unwrap_or_default();
    let mut chosen = Vec::new();
    let mut unknown = Vec::new();
    let mut sort_raw = None;
    let mut page = 1;
    let mut per_page = PER_PAGE;
    for (key, value) in &pairs {
        if let Some(name) = key
            .strip_prefix("filter[")
            .and_then(|k| k.strip_suffix(']'))
        {
            if !filters.contains(&name) {
                unknown.push(name.to_string());
                continue;
            }
            // An empty value skips the filter; commas mean OR.
            let values: Vec<String> = value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .collect();
            if !values.is_empty() {
                chosen.push((name.to_string(), values));
            }
        } else if key == "sort" {
            sort_raw = Some(value.clone());
        } else if key == "page" {
            // Anything but an integer >= 1 is page 1.
            page = value
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|p| *p >= 1)
                .unwrap_or(1);
        } else if key == "per_page" {
            per_page = value
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|p| *p >= 1)
                .map(|p| p.min(MAX_PER_PAGE))
                .unwrap_or(PER_PAGE);
        }
    }
    if !unknown.is_empty() {
        return Err(LaravelError::Raw(
            StatusCode::BAD_REQUEST,
            format!(
                "Requested filter(s) `{}` are not allowed. Allowed filter(s) are `{}`.",
                unknown.join(", "),
                filters.join(", ")
            ),
        ));
    }
    let mut sort = Vec::new();
    let mut bad_sorts = Vec::new();
    for item in sort_raw
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        let (name, desc) = match item.strip_prefix('-') {
            Some(rest) => (rest, true),
            None => (item, false),
        };
        if sorts.contains(&name) {
            sort.push((name.to_string(), desc));
        } else {
            bad_sorts.push(name.to_string());
        }
    }
    if !bad_sorts.is_empty() {
        return Err(LaravelError::Raw(
            StatusCode::BAD_REQUEST,
            format!(
                "Requested sort(s) `{}` is not allowed. Allowed sort(s) are `{}`.",
                bad_sorts.join(", "),
                sorts.join(", ")
            ),
        ));
    }
    Ok(ListQuery {
        filters: chosen,
        sort,
        page,
        per_page,
    })
}

impl ListQuery {
    pub fn filter(&self, name: &str) -> Option<&[String]> {
        self.filters
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_slice())
    }

    /// Integer values of an id filter; ids that are not numbers match nothing.
    pub fn id_filter(&self, name: &str) -> Option<Vec<i64>> {
        self.filter(name)
            .map(|values| values.iter().filter_map(|v| v.parse().ok()).collect())
    }
}

/// Laravel's paginated resource body: `data`, `links`, `meta` (the seven
/// keys the seed shows, alphabetical as Laravel emits them).
pub fn paginated(
    rows: Vec<Value>,
    total: i64,
    page: i64,
    per_page: i64,
    uri: &Uri,
    headers: &HeaderMap,
    scheme: &str,
) -> Value {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let path = format!("{scheme}://{host}{}", uri.path());
    let last_page = ((total + per_page - 1) / per_page).max(1);
    let link = |n: i64| format!("{path}?page={n}");
    let from = if rows.is_empty() {
        Value::Null
    } else {
        json!((page - 1) * per_page + 1)
    };
    let to = if rows.is_empty() {
        Value::Null
    } else {
        json!((page - 1) * per_page + rows.len() as i64)
    };
    let mut body = json!({
        "data": null,
        "links": {
            "first": link(1),
            "last": link(last_page),
            "prev": if page > 1 { json!(link(page - 1)) } else { Value::Null },
            "next": if page < last_page { json!(link(page + 1)) } else { Value::Null },
        },
        "meta": {
            "current_page": page,
            "from": from,
            "last_page": last_page,
            "path": path,
            "per_page": per_page,
            "to": to,
            "total": total,
        },
    });
    // Moved in, not through `json!`, which would copy every row's Value.
    body["data"] = Value::Array(rows);
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_count_the_other_errors() {
        let mut e = FieldErrors::new();
        e.add("name", "The name field is required.");
        assert_eq!(summary(&e), "The name field is required.");
        e.add("email", "The email field is required.");
        assert_eq!(
            summary(&e),
            "The name field is required. (and 1 more error)"
        );
        e.add("email", "x");
        assert_eq!(
            summary(&e),
            "The name field is required. (and 2 more errors)"
        );
    }

    #[test]
    fn filters_and_sorts_are_whitelisted() {
        let q = list_query(
            Some("filter[email]=a,,b&filter[id]=&sort=-created_at&page=x&per_page=500"),
            &["id", "email"],
            &["created_at", "name"],
        )
        .unwrap();
        assert_eq!(
            q.filters,
            vec![("email".to_string(), vec!["a".to_string(), "b".to_string()])]
        );
        assert_eq!(q.sort, vec![("created_at".to_string(), true)]);
        assert_eq!((q.page, q.per_page), (1, 100));
        let Err(LaravelError::Raw(status, message)) =
            list_query(Some("filter[foo]=1"), &["id", "email"], &[])
        else {
            panic!("an unknown filter must fail")
        };
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            message,
            "Requested filter(s) `foo` are not allowed. Allowed filter(s) are `id, email`."
        );
        let Err(LaravelError::Raw(_, message)) =
            list_query(Some("sort=password"), &[], &["created_at", "name"])
        else {
            panic!("an unknown sort must fail")
        };
        assert_eq!(
            message,
            "Requested sort(s) `password` is not allowed. Allowed sort(s) are `created_at, name`."
        );
    }
}
