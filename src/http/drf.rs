//! The Django REST Framework dialect: request bodies (JSON, form or
//! multipart) read into a field map, DRF's field checks and messages, the
//! JWT authentication header, and the rendering of every domain error as
//! DRF renders it. Surfaces in this dialect: accounts, company admin, coach.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

use serde_json::{Map, Value, json};

use super::body::{self, BodyError};
use crate::app::AppState;
use crate::domain::auth::{Principal, principal_from_access_token};
use crate::domain::error::NON_FIELD;
use crate::domain::uploads::{self, Accept, CheckedFile, IncomingFile};
use crate::domain::{AuthError, Error, FieldErrors};

/// An error answered in DRF's format.
#[derive(Debug)]
pub enum DrfError {
    Domain(Error),
    /// A DRF-level failure with its own status and body (parse errors,
    /// unsupported media types, oversize bodies).
    Raw(StatusCode, Value),
}

impl From<Error> for DrfError {
    fn from(e: Error) -> Self {
        DrfError::Domain(e)
    }
}

impl From<AuthError> for DrfError {
    fn from(e: AuthError) -> Self {
        DrfError::Domain(Error::Unauthenticated(e))
    }
}

impl From<BodyError> for DrfError {
    fn from(e: BodyError) -> Self {
        match e {
            BodyError::TooLarge => DrfError::Raw(
                StatusCode::PAYLOAD_TOO_LARGE,
                json!({"detail": "Request body is too large."}),
            ),
            BodyError::Malformed(message) => {
                DrfError::Raw(StatusCode::BAD_REQUEST, json!({ "detail": message }))
            }
            BodyError::TimedOut => DrfError::Raw(
                StatusCode::REQUEST_TIMEOUT,
                json!({"detail": "The request body did not arrive in time."}),
            ),
        }
    }
}

impl From<crate::store::StoreError> for DrfError {
    fn from(e: crate::store::StoreError) -> Self {
        DrfError::Domain(e.into())
    }
}

pub type DrfResult<T = Response> = Result<T, DrfError>;

fn detail(status: StatusCode, message: &str) -> (StatusCode, Value) {
    (status, json!({ "detail": message }))
}

/// SimpleJWT's 401 bodies.
fn auth_body(e: &AuthError) -> Value {
    match e {
        AuthError::NotProvided => {
            json!({"detail": "Authentication credentials were not provided."})
        }
        AuthError::BadHeader => json!({
            "detail": "Authorization header must contain two space-delimited values",
            "code": "bad_authorization_header"
        }),
        AuthError::InvalidAccessToken(message) => json!({
            "detail": "Given token not valid for any token type",
            "code": "token_not_valid",
            "messages": [{"token_class": "AccessToken", "token_type": "access", "message": message}]
        }),
        AuthError::UserNotFound => json!({"detail": "User not found", "code": "user_not_found"}),
        AuthError::UserInactive => json!({"detail": "User is inactive", "code": "user_inactive"}),
        AuthError::PasswordChanged => {
            json!({"detail": "The user's password has been changed.", "code": "password_changed"})
        }
        AuthError::BadCredentials => {
            json!({"detail": "No active account found with the given credentials"})
        }
        AuthError::InvalidToken(message) => json!({"detail": message, "code": "token_not_valid"}),
        AuthError::NoActiveAccountForToken => json!({
            "detail": "No active account found for the given token.",
            "code": "no_active_account"
        }),
    }
}

pub fn field_errors_body(errors: &FieldErrors) -> Value {
    let mut map = Map::new();
    for (field, messages) in &errors.0 {
        map.insert(field.clone(), json!(messages));
    }
    Value::Object(map)
}

impl IntoResponse for DrfError {
    fn into_response(self) -> Response {
        let mut extra: Vec<(header::HeaderName, HeaderValue)> = Vec::new();
        let (status, body) = match self {
            DrfError::Raw(status, body) => (status, body),
            DrfError::Domain(e) => match e {
                Error::Validation(errors) => (StatusCode::BAD_REQUEST, field_errors_body(&errors)),
                Error::NotFound => detail(StatusCode::NOT_FOUND, "Not found."),
                Error::InvalidPage => detail(StatusCode::NOT_FOUND, "Invalid page."),
                Error::Forbidden(None) => detail(
                    StatusCode::FORBIDDEN,
                    "You do not have permission to perform this action.",
                ),
                Error::Forbidden(Some(message)) => detail(StatusCode::FORBIDDEN, &message),
                Error::Unauthenticated(a) => {
                    extra.push((
                        header::WWW_AUTHENTICATE,
                        HeaderValue::from_static("JWT realm=\"api\""),
                    ));
                    (StatusCode::UNAUTHORIZED, auth_body(&a))
                }
                Error::Throttled { retry_after } => {
                    extra.push((header::RETRY_AFTER, HeaderValue::from(retry_after)));
                    detail(
                        StatusCode::TOO_MANY_REQUESTS,
                        &format!(
                            "Request was throttled. Expected available in {retry_after} seconds."
                        ),
                    )
                }
                Error::BadRequest(message) => detail(StatusCode::BAD_REQUEST, &message),
                Error::PreconditionFailed => {
                    detail(StatusCode::PRECONDITION_FAILED, "Precondition failed.")
                }
                Error::Unavailable(reason) => {
                    tracing::warn!(error = %reason, "unavailable");
                    extra.push((header::RETRY_AFTER, HeaderValue::from_static("5")));
                    detail(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Service temporarily unavailable, try again later.",
                    )
                }
                Error::Internal(reason) => {
                    tracing::error!(error = %reason, "internal error");
                    detail(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "A server error occurred.",
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

/// A request body as DRF's parsers read it: a JSON object, or the fields
/// of a form. Anything else is refused in DRF's words.
pub struct Data(pub Map<String, Value>);

impl FromRequest<AppState> for Data {
    type Rejection = DrfError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        let media_type = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if media_type == "multipart/form-data" {
            return read_multipart(req, state).await;
        }
        let bytes = body::read_limited(req, state.config.max_body_bytes).await?;
        if bytes.is_empty() || media_type.is_empty() {
            return Ok(Data(Map::new()));
        }
        if media_type == "application/json" || media_type.ends_with("+json") {
            let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
                DrfError::Raw(
                    StatusCode::BAD_REQUEST,
                    json!({"detail": format!("JSON parse error - {e}")}),
                )
            })?;
            return match value {
                Value::Object(map) => Ok(Data(map)),
                Value::Null => Err(non_field("No data provided")),
                other => Err(non_field(&format!(
                    "Invalid data. Expected a dictionary, but got {}.",
                    python_type_name(&other)
                ))),
            };
        }
        if media_type == "application/x-www-form-urlencoded" {
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_bytes(&bytes).map_err(|e| {
                    DrfError::Raw(
                        StatusCode::BAD_REQUEST,
                        json!({"detail": format!("Form parse error - {e}")}),
                    )
                })?;
            return Ok(Data(pairs_to_map(pairs)));
        }
        Err(DrfError::Raw(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            json!({"detail": format!("Unsupported media type \"{content_type}\" in request.")}),
        ))
    }
}

fn non_field(message: &str) -> DrfError {
    DrfError::Domain(Error::field(NON_FIELD, message))
}

fn python_type_name(v: &Value) -> &'static str {
    match v {
        Value::Array(_) => "list",
        Value::String(_) => "str",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::Null => "NoneType",
        Value::Object(_) => "dict",
    }
}

/// Form fields as DRF's `QueryDict` answers a single field: the last value
/// of a repeated name.
fn pairs_to_map(pairs: Vec<(String, String)>) -> Map<String, Value> {
    let mut map = Map::new();
    for (k, v) in pairs {
        map.insert(k, Value::String(v));
    }
    map
}

async fn read_multipart(req: Request, state: &AppState) -> Result<Data, DrfError> {
    let body = body::read_multipart(req, state, state.config.max_body_bytes).await?;
    Ok(Data(pairs_to_map(body.pairs)))
}

/// A body that may carry files (the coach and profile endpoints): JSON, a
/// form, or multipart, with files up to `ROSTER_MAX_UPLOAD_BYTES` each.
pub struct UploadData {
    pub data: Data,
    /// Every value of each repeated form field, in order (JSON bodies:
    /// empty; read arrays from `data`).
    pub lists: HashMap<String, Vec<String>>,
    pub files: HashMap<String, IncomingFile>,
}

impl FromRequest<AppState> for UploadData {
    type Rejection = DrfError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let multipart = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| {
                v.trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/form-data")
            });
        if !multipart {
            let data = Data::from_request(req, state).await?;
            return Ok(UploadData {
                data,
                lists: HashMap::new(),
                files: HashMap::new(),
            });
        }
        let body = body::read_multipart(req, state, state.config.max_upload_bytes).await?;
        let mut lists: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in &body.pairs {
            lists.entry(k.clone()).or_default().push(v.clone());
        }
        Ok(UploadData {
            data: Data(pairs_to_map(body.pairs)),
            lists,
            files: body.files,
        })
    }
}

/// DRF's field checks over a request body, collecting every field's errors
/// before answering (as a serializer does).
pub struct Fields<'a> {
    data: &'a Map<String, Value>,
    pub errors: FieldErrors,
    /// PATCH: absent fields are not required.
    partial: bool,
}

impl<'a> Fields<'a> {
    pub fn new(data: &'a Data) -> Self {
        Fields {
            data: &data.0,
            errors: FieldErrors::new(),
            partial: false,
        }
    }

    pub fn partial(data: &'a Data) -> Self {
        Fields {
            data: &data.0,
            errors: FieldErrors::new(),
            partial: true,
        }
    }

    /// A field's value; `None` when absent (an error if `required`) or
    /// null (always an error).
    fn non_null(&mut self, name: &str, required: bool) -> Option<&'a Value> {
        match self.data.get(name) {
            None => {
                if required {
                    self.errors.add(name, "This field is required.");
                }
                None
            }
            Some(Value::Null) => {
                self.errors.add(name, "This field may not be null.");
                None
            }
            Some(v) => Some(v),
        }
    }

    /// The raw text of a field, or its error. `trim` is DRF's
    /// `trim_whitespace`; passwords are kept exactly as typed.
    fn text(&mut self, name: &str, required: bool, trim: bool) -> Option<String> {
        let text = match self.non_null(name, required && !self.partial)? {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => {
                self.errors.add(name, "Not a valid string.");
                return None;
            }
        };
        let text = if trim { text.trim().to_string() } else { text };
        if text.contains('\0') {
            self.errors.add(name, "Null characters are not allowed.");
            return None;
        }
        if text.is_empty() {
            self.errors.add(name, "This field may not be blank.");
            return None;
        }
        Some(text)
    }

    /// A `CharField(max_length=max)`.
    pub fn char(&mut self, name: &str, required: bool, max: usize) -> Option<String> {
        let text = self.text(name, required, true)?;
        if text.chars().count() > max {
            self.errors.add(
                name,
                format!("Ensure this field has no more than {max} characters."),
            );
            return None;
        }
        Some(text)
    }

    /// A password: required, not trimmed.
    pub fn password(&mut self, name: &str) -> Option<String> {
        let text = self.text(name, true, false)?;
        if text.chars().count() > 4096 {
            self.errors
                .add(name, "Ensure this field has no more than 4096 characters.");
            return None;
        }
        Some(text)
    }

    /// An `EmailField`.
    pub fn email(&mut self, name: &str, required: bool) -> Option<String> {
        let text = self.char(name, required, 255)?;
        if !crate::domain::looks_like_email(&text) {
            self.errors.add(name, "Enter a valid email address.");
            return None;
        }
        Some(text)
    }

    /// A `ChoiceField`; `choices` are compared case-insensitively and the
    /// matching choice is returned.
    pub fn choice(
        &mut self,
        name: &str,
        required: bool,
        choices: &[&'static str],
    ) -> Option<&'static str> {
        let text = self.text(name, required, false)?;
        match choices.iter().find(|c| c.eq_ignore_ascii_case(&text)) {
            Some(c) => Some(c),
            None => {
                self.errors
                    .add(name, format!("\"{text}\" is not a valid choice."));
                None
            }
        }
    }

    /// A nullable `PrimaryKeyRelatedField`: `None` when absent,
    /// `Some(None)` for null (or an empty form value), `Some(Some(id))`.
    pub fn pk(&mut self, name: &str) -> Option<Option<i64>> {
        let value = self.data.get(name)?;
        let wrong = |kind: &str| format!("Incorrect type. Expected pk value, received {kind}.");
        match value {
            Value::Null => Some(None),
            Value::String(s) if s.is_empty() => Some(None),
            Value::String(s) => match s.trim().parse::<i64>() {
                Ok(id) => Some(Some(id)),
                Err(_) => {
                    self.errors.add(name, wrong("str"));
                    None
                }
            },
            Value::Number(n) if n.is_i64() => Some(n.as_i64()),
            other => {
                self.errors.add(name, wrong(python_type_name(other)));
                None
            }
        }
    }

    /// An optional text field that may be blank; null reads as blank.
    pub fn text_blank(&mut self, name: &str, max: usize) -> Option<String> {
        let text = match self.data.get(name)? {
            Value::Null => String::new(),
            Value::String(s) => s.trim().to_string(),
            Value::Number(n) => n.to_string(),
            _ => {
                self.errors.add(name, "Not a valid string.");
                return None;
            }
        };
        if text.contains('\0') {
            self.errors.add(name, "Null characters are not allowed.");
            return None;
        }
        if text.chars().count() > max {
            self.errors.add(
                name,
                format!("Ensure this field has no more than {max} characters."),
            );
            return None;
        }
        Some(text)
    }

    /// An optional `URLField` (http or https), blank allowed.
    pub fn url(&mut self, name: &str, max: usize) -> Option<String> {
        let text = self.text_blank(name, max)?;
        if text.is_empty() || looks_like_url(&text) {
            Some(text)
        } else {
            self.errors.add(name, "Enter a valid URL.");
            None
        }
    }

    /// An optional `SlugField`: letters, digits, `_` and `-`.
    pub fn slug(&mut self, name: &str, max: usize) -> Option<String> {
        let text = self.char(name, false, max)?;
        if text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            Some(text)
        } else {
            self.errors.add(
                name,
                "Enter a valid “slug” consisting of letters, numbers, underscores or hyphens.",
            );
            None
        }
    }

    /// A nullable `DateField` (`YYYY-MM-DD`): `Some(None)` for null or an
    /// empty form value.
    pub fn date(&mut self, name: &str) -> Option<Option<String>> {
        let text = match self.data.get(name)? {
            Value::Null => return Some(None),
            Value::String(s) if s.trim().is_empty() => return Some(None),
            Value::String(s) => s.trim().to_string(),
            _ => {
                self.errors.add(name, DATE_FORMAT);
                return None;
            }
        };
        match parse_date(&text) {
            Some(date) => Some(Some(date)),
            None => {
                self.errors.add(name, DATE_FORMAT);
                None
            }
        }
    }

    /// An `IntegerField`.
    pub fn integer(&mut self, name: &str, required: bool) -> Option<i64> {
        let parsed = match self.non_null(name, required)? {
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            _ => None,
        };
        if parsed.is_none() {
            self.errors.add(name, "A valid integer is required.");
        }
        parsed
    }

    /// A list of primary keys: a JSON array, or in a form the repeated
    /// field or one comma-separated value. At most `max` items.
    pub fn pk_list(
        &mut self,
        name: &str,
        lists: &HashMap<String, Vec<String>>,
        max: usize,
    ) -> Option<Vec<i64>> {
        let items: Vec<Value> = match (lists.get(name), self.data.get(name)?) {
            (Some(values), _) => values
                .iter()
                .flat_map(|v| v.split(','))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(|v| Value::String(v.to_string()))
                .collect(),
            (None, Value::Array(items)) => items.clone(),
            (None, other) => {
                self.errors.add(
                    name,
                    format!(
                        "Expected a list of items but got type \"{}\".",
                        python_type_name(other)
                    ),
                );
                return None;
            }
        };
        if items.len() > max {
            self.errors.add(
                name,
                format!("Ensure this field has no more than {max} elements."),
            );
            return None;
        }
        let mut ids = Vec::with_capacity(items.len());
        for item in &items {
            match item {
                Value::Number(n) if n.is_i64() => ids.push(n.as_i64().unwrap_or_default()),
                Value::String(s) if s.parse::<i64>().is_ok() => {
                    ids.push(s.parse().unwrap_or_default())
                }
                other => {
                    self.errors.add(
                        name,
                        format!(
                            "Incorrect type. Expected pk value, received {}.",
                            python_type_name(other)
                        ),
                    );
                    return None;
                }
            }
        }
        Some(ids)
    }

    /// An optional file field: `Some(None)` clears it (null, or an empty
    /// form value), a file is checked against `accept`.
    pub fn file(
        &mut self,
        state: &AppState,
        name: &str,
        files: &mut HashMap<String, IncomingFile>,
        accept: Accept,
    ) -> Option<Option<CheckedFile>> {
        if let Some(file) = files.remove(name) {
            return match uploads::check(state, file, accept) {
                Ok(file) => Some(Some(file)),
                Err(message) => {
                    self.errors.add(name, message);
                    None
                }
            };
        }
        match self.data.get(name)? {
            Value::Null => Some(None),
            Value::String(s) if s.is_empty() => Some(None),
            _ => {
                self.errors.add(
                    name,
                    "The submitted data was not a file. Check the encoding type on the form.",
                );
                None
            }
        }
    }

    pub fn add(&mut self, name: &str, message: &str) {
        self.errors.add(name, message);
    }

    pub fn has_error(&self, name: &str) -> bool {
        self.errors.has(name)
    }

    /// The collected errors as DRF's 400, or `Ok` when there are none.
    pub fn finish(self) -> DrfResult<()> {
        self.errors.into_result().map_err(DrfError::Domain)
    }
}

pub const DATE_FORMAT: &str =
    "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.";

pub use crate::domain::parse_date;

/// An absolute http(s) URL with a host, as Django's `URLValidator` roughly
/// demands.
fn looks_like_url(text: &str) -> bool {
    let rest = match text.split_once("://") {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
        {
            rest
        }
        _ => return false,
    };
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit('@').next().unwrap_or("");
    let host = host.split(':').next().unwrap_or("");
    !text.chars().any(char::is_whitespace)
        && (host == "localhost"
            || (host.contains('.')
                && !host.starts_with('.')
                && !host.ends_with('.')
                && host
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '-' || c == '.')))
}

/// The authenticated user of a DRF request: `Authorization: JWT <access>`
/// or `Bearer <access>`. API keys are not accepted here.
pub struct Authed(pub Principal);

impl FromRequestParts<AppState> for Authed {
    type Rejection = DrfError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(parts)?.ok_or(AuthError::NotProvided)?;
        Ok(Authed(principal_from_access_token(state, &token).await?))
    }
}

/// The token of an `Authorization: JWT|Bearer <token>` header; `None` when
/// the header is absent or names another scheme (DRF treats that as no
/// credentials).
pub fn bearer_token(parts: &Parts) -> Result<Option<String>, AuthError> {
    let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| AuthError::BadHeader)?;
    // `to_str` admits visible ASCII and tabs only, so ASCII whitespace is
    // all the whitespace there is; splitting on it byte by byte skips
    // decoding the token's few hundred characters as Unicode (2% of `me`).
    let mut words = value.split_ascii_whitespace();
    let scheme = words.next().unwrap_or("");
    if !(scheme.eq_ignore_ascii_case("JWT") || scheme.eq_ignore_ascii_case("Bearer")) {
        return Ok(None);
    }
    match (words.next(), words.next()) {
        (Some(token), None) => Ok(Some(token.to_string())),
        _ => Err(AuthError::BadHeader),
    }
}

/// A path id; anything but a positive integer names nothing (DRF: 404).
pub fn path_id(raw: &str) -> Result<i64, DrfError> {
    raw.parse::<i64>()
        .ok()
        .filter(|id| *id > 0)
        .ok_or(DrfError::Domain(Error::NotFound))
}

/// A 204 with no body.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

pub fn json_status(status: StatusCode, body: impl serde::Serialize) -> Response {
    super::json_response(status, &body)
}

/// A field that `Fields::finish` accepted cannot be missing; answer 500
/// rather than panic if that invariant is ever broken.
pub fn missing() -> DrfError {
    Error::Internal("field check passed with a field missing".into()).into()
}
