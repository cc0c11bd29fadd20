//! Issued refresh tokens: what makes logout, rotation and reuse detection
//! work across instances (nothing is kept in memory).

use super::{StoreResult, Tx, on_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct RefreshTokenRow {
    pub jti: String,
    pub user_id: i64,
    pub family: String,
    pub rotated_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

pub struct NewRefreshToken<'a> {
    pub jti: &'a str,
    pub user_id: i64,
    pub family: &'a str,
    pub parent: Option<&'a str>,
    pub now: i64,
    pub expires_at: i64,
}

pub async fn insert(tx: &mut Tx, t: &NewRefreshToken<'_>) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO refresh_tokens (jti, user_id, family, parent, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(t.jti)
        .bind(t.user_id)
        .bind(t.family)
        .bind(t.parent)
        .bind(t.now)
        .bind(t.expires_at)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

pub async fn find(tx: &mut Tx, jti: &str) -> StoreResult<Option<RefreshTokenRow>> {
    const SQL: &str =
        "SELECT jti, user_id, family, rotated_at, revoked_at FROM refresh_tokens WHERE jti = $1";
    Ok(on_tx!(tx, |c| sqlx::query_as(SQL)
        .bind(jti)
        .fetch_optional(c)
        .await?))
}

/// Marks a token as exchanged; false if another request exchanged it first.
pub async fn mark_rotated(tx: &mut Tx, jti: &str, now: i64) -> StoreResult<bool> {
    const SQL: &str =
        "UPDATE refresh_tokens SET rotated_at = $2 WHERE jti = $1 AND rotated_at IS NULL";
    let done = on_tx!(tx, |c| sqlx::query(SQL)
        .bind(jti)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(done == 1)
}

pub async fn revoke(tx: &mut Tx, jti: &str, now: i64) -> StoreResult<()> {
    const SQL: &str =
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE jti = $1 AND revoked_at IS NULL";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(jti)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

pub async fn revoke_family(tx: &mut Tx, family: &str, now: i64) -> StoreResult<()> {
    const SQL: &str =
        "UPDATE refresh_tokens SET revoked_at = $2 WHERE family = $1 AND revoked_at IS NULL";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(family)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

/// Forgets tokens that expired before `now` (they fail on `exp` anyway).
pub async fn delete_expired(tx: &mut Tx, now: i64) -> StoreResult<u64> {
    const SQL: &str = "DELETE FROM refresh_tokens WHERE expires_at < $1";
    let done = on_tx!(tx, |c| sqlx::query(SQL)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(done)
}
