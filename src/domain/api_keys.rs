//! API keys for the organisation API. A key is shown once, at creation;
//! only its SHA-256 is stored. Only organisation admins manage them.

use rand::RngCore;

use super::auth::Principal;
use super::tokens::sha256_hex;
use super::{Error, Result, now_micros};
use crate::app::AppState;
use crate::store::api_keys::{self, ApiKeyRow, NewApiKey};

/// The visible start of every key, so that leaked keys are easy to spot.
pub const KEY_PREFIX: &str = "rst_";

/// A new key and the only copy of its secret.
pub struct CreatedKey {
    pub row: ApiKeyRow,
    pub key: String,
}

pub async fn create(state: &AppState, me: &Principal, name: &str) -> Result<CreatedKey> {
    let org = me.admin_organization()?;
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let key = format!("{KEY_PREFIX}{}", hex::encode(secret));
    let prefix: String = key.chars().take(KEY_PREFIX.len() + 8).collect();
    let mut tx = state.db.begin_write().await?;
    let row = api_keys::insert(
        &mut tx,
        &NewApiKey {
            organization_id: org,
            user_id: me.id(),
            name,
            prefix: &prefix,
            key_hash: &sha256_hex(&key),
            now: now_micros(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(CreatedKey { row, key })
}

/// The `create-api-key` command: a key for the admin with this email.
pub async fn create_for_email(state: &AppState, email: &str, name: &str) -> Result<CreatedKey> {
    let mut tx = state.db.begin_read().await?;
    let user = crate::store::users::find_by_email_key(&mut tx, &super::email_key(email)).await?;
    tx.commit().await?;
    let user = user
        .filter(|u| u.is_active)
        .ok_or_else(|| Error::field("email", "No active user has this email."))?;
    let role = super::Role::parse(&user.role).unwrap_or(super::Role::Client);
    let me = Principal { user, role };
    if me.admin_organization().is_err() {
        return Err(Error::field(
            "email",
            "API keys belong to organisation admins; this user is not one.",
        ));
    }
    if name.trim().is_empty() || name.chars().count() > 100 {
        return Err(Error::field(
            "name",
            "The name must have 1 to 100 characters.",
        ));
    }
    create(state, &me, name.trim()).await
}

pub async fn list(state: &AppState, me: &Principal) -> Result<Vec<ApiKeyRow>> {
    let org = me.admin_organization()?;
    let mut tx = state.db.begin_read().await?;
    let rows = api_keys::list(&mut tx, org).await?;
    tx.commit().await?;
    Ok(rows)
}

/// Revokes one of the organisation's keys; another organisation's id is
/// not found.
pub async fn revoke(state: &AppState, me: &Principal, id: i64) -> Result<()> {
    let org = me.admin_organization()?;
    let mut tx = state.db.begin_write().await?;
    if !api_keys::revoke(&mut tx, org, id, now_micros()).await? {
        return Err(Error::NotFound);
    }
    tx.commit().await?;
    Ok(())
}
