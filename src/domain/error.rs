//! The domain's one error type. Each API surface renders it in its own
//! dialect, in one place per surface (`http::<surface>::error`).

use crate::store::StoreError;

/// Field name -> messages, in the order the fields were checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FieldErrors(pub Vec<(String, Vec<String>)>);

/// The key DRF uses for errors that belong to no single field.
pub const NON_FIELD: &str = "non_field_errors";

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn single(field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new();
        e.add(field, message);
        e
    }

    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        let message = message.into();
        match self.0.iter_mut().find(|(f, _)| f == field) {
            Some((_, msgs)) => msgs.push(message),
            None => self.0.push((field.to_string(), vec![message])),
        }
    }

    pub fn extend(&mut self, field: &str, messages: Vec<String>) {
        for m in messages {
            self.add(field, m);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn has(&self, field: &str) -> bool {
        self.0.iter().any(|(f, _)| f == field)
    }

    /// `Ok(())` when empty, else the errors as a validation failure.
    pub fn into_result(self) -> Result<(), Error> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::Validation(self))
        }
    }
}

/// Why a request could not be authenticated. The wording is SimpleJWT's,
/// which the accounts surface reproduces exactly; other surfaces render
/// all of these as their own "unauthenticated" body.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthError {
    /// No credentials, or a scheme this surface does not read.
    NotProvided,
    /// `JWT` with no token, or with more than one.
    BadHeader,
    /// The bearer token failed to verify; the reason is SimpleJWT's message.
    InvalidAccessToken(String),
    UserNotFound,
    UserInactive,
    /// The token predates a password change (or another revocation).
    PasswordChanged,
    /// Login failed: wrong password, unknown or inactive user.
    BadCredentials,
    /// A refresh/verify/blacklist token failed; SimpleJWT's message.
    InvalidToken(String),
    /// The user behind a refresh token is gone or inactive.
    NoActiveAccountForToken,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("validation failed: {0:?}")]
    Validation(FieldErrors),
    #[error("not found")]
    NotFound,
    /// A page number that is not a page of the list.
    #[error("invalid page")]
    InvalidPage,
    /// Authenticated but not allowed; `None` is the framework's default text.
    #[error("forbidden")]
    Forbidden(Option<String>),
    #[error("unauthenticated: {0:?}")]
    Unauthenticated(AuthError),
    #[error("throttled for {retry_after}s")]
    Throttled { retry_after: u64 },
    /// A request that is well-formed but not allowed in the current state
    /// (e.g. submitting an approved profile for vetting).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// A conditional request (`If-Match`) whose condition no longer holds:
    /// someone else changed the resource first.
    #[error("precondition failed")]
    PreconditionFailed,
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        Error::Validation(FieldErrors::single(field, message))
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(msg) => Error::Unavailable(msg),
            // A uniqueness race the domain's own checks could not see (two
            // concurrent writes on PostgreSQL): the loser is told to retry.
            StoreError::Conflict(msg) => {
                tracing::info!(error = %msg, "unique constraint raced");
                Error::BadRequest(
                    "This change conflicts with another one made at the same time; please retry."
                        .into(),
                )
            }
            StoreError::InvalidText(_) => {
                Error::BadRequest("Text may not contain NUL characters.".into())
            }
            StoreError::Other(msg) => Error::Internal(msg),
        }
    }
}

impl From<AuthError> for Error {
    fn from(err: AuthError) -> Self {
        Error::Unauthenticated(err)
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
