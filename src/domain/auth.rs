//! Who is calling: the user behind an access token, re-checked against the
//! database on every request, so that a deactivation, demotion or password
//! change takes effect on the very next request.

use super::tokens::TokenType;
use super::{AuthError, Error, Result, Role};
use crate::app::AppState;
use crate::store::users::{self, UserRow};

/// The authenticated user of a request.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: UserRow,
    pub role: Role,
}

impl Principal {
    pub fn id(&self) -> i64 {
        self.user.id
    }

    /// The organisation of an admin; `Forbidden` for anyone else.
    pub fn admin_organization(&self) -> Result<i64> {
        match (self.role, self.user.organization_id) {
            (Role::Admin, Some(org)) => Ok(org),
            _ => Err(Error::Forbidden(None)),
        }
    }
}

/// Resolves an access token to its user.
pub async fn principal_from_access_token(state: &AppState, token: &str) -> Result<Principal> {
    let claims = state
        .keys
        .verify_jwt(token, Some(TokenType::Access))
        .map_err(AuthError::InvalidAccessToken)?;
    let user = users::find_by_id_for_auth(&state.db, claims.user_id)
        .await?
        .ok_or(AuthError::UserNotFound)?;
    if !user.is_active {
        return Err(AuthError::UserInactive.into());
    }
    if user.token_version != claims.version {
        return Err(AuthError::PasswordChanged.into());
    }
    let role = Role::parse(&user.role)
        .ok_or_else(|| Error::Internal(format!("unknown role {:?}", user.role)))?;
    Ok(Principal { user, role })
}

/// Resolves a bearer credential of the organisation API: an API key
/// (`rst_...`), or else a JWT access token. A key acts as the admin who
/// created it, re-checked like a token: a deactivated or demoted creator,
/// or a revoked key, fails on the next request.
pub async fn principal_from_bearer(state: &AppState, token: &str) -> Result<Principal> {
    if !token.starts_with(super::api_keys::KEY_PREFIX) {
        return principal_from_access_token(state, token).await;
    }
    let hash = super::tokens::sha256_hex(token);
    // The key's user comes with it: a key outlives no user (ON DELETE CASCADE).
    let holder = crate::store::api_keys::find_holder_for_auth(&state.db, &hash)
        .await?
        .ok_or_else(|| AuthError::InvalidAccessToken("Token is invalid".into()))?;
    let (user, key) = (holder.row, holder.related);
    if !user.is_active {
        return Err(AuthError::UserInactive.into());
    }
    if user.organization_id != Some(key.organization_id) {
        return Err(AuthError::InvalidAccessToken("Token is invalid".into()).into());
    }
    // Recording use at most once a minute keeps reads from writing on every call.
    let now = super::now_micros();
    if key
        .last_used_at
        .is_none_or(|t| now - t > 60 * super::MICROS_PER_SEC)
    {
        let mut tx = state.db.begin_write().await?;
        crate::store::api_keys::touch(&mut tx, key.id, now).await?;
        tx.commit().await?;
    }
    let role = Role::parse(&user.role)
        .ok_or_else(|| Error::Internal(format!("unknown role {:?}", user.role)))?;
    Ok(Principal { user, role })
}
