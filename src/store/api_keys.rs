//! API keys for the organisation API; only a SHA-256 of each key is kept.

use std::sync::LazyLock;

use serde::Deserialize;

use super::query::{self, Arg, RELATED, Sql, WithRelated, related_column};
use super::users::{COLUMNS as USER_COLUMNS, UserRow};
use super::{Db, StoreResult, Tx, on_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ApiKeyRow {
    pub id: i64,
    pub organization_id: i64,
    pub user_id: i64,
    pub name: String,
    pub prefix: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}
crate::reader_row!(ApiKeyRow {
    id,
    organization_id,
    user_id,
    name,
    prefix,
    created_at,
    last_used_at,
});

const COLUMNS: &str = "id, organization_id, user_id, name, prefix, created_at, last_used_at";

pub struct NewApiKey<'a> {
    pub organization_id: i64,
    pub user_id: i64,
    pub name: &'a str,
    pub prefix: &'a str,
    pub key_hash: &'a str,
    pub now: i64,
}

pub async fn insert(tx: &mut Tx, k: &NewApiKey<'_>) -> StoreResult<ApiKeyRow> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO api_keys (organization_id, user_id, name, prefix, key_hash, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6) RETURNING {COLUMNS}"
    ));
    Ok(on_tx!(tx, |c| sqlx::query_as(sql)
        .bind(k.organization_id)
        .bind(k.user_id)
        .bind(k.name)
        .bind(k.prefix)
        .bind(k.key_hash)
        .bind(k.now)
        .fetch_one(c)
        .await?))
}

/// The organisation's live keys, oldest first.
pub async fn list(tx: &mut Tx, organization_id: i64) -> StoreResult<Vec<ApiKeyRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM api_keys WHERE organization_id = $1 AND revoked_at IS NULL ORDER BY id"
    ));
    Ok(on_tx!(tx, |c| sqlx::query_as(sql)
        .bind(organization_id)
        .fetch_all(c)
        .await?))
}

/// Revokes a live key of the organisation; false when there is none.
pub async fn revoke(tx: &mut Tx, organization_id: i64, id: i64, now: i64) -> StoreResult<bool> {
    const SQL: &str = "UPDATE api_keys SET revoked_at = $3 WHERE id = $2 AND organization_id = $1 \
         AND revoked_at IS NULL";
    let done = on_tx!(tx, |c| sqlx::query(SQL)
        .bind(organization_id)
        .bind(id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(done == 1)
}

/// What the credential check needs of a key, read with its user.
#[derive(Debug, Clone, Deserialize)]
pub struct KeyUse {
    pub id: i64,
    pub organization_id: i64,
    pub last_used_at: Option<i64>,
}

/// The user who made the live key with this hash, and the key: the
/// credential check of every request made with a key, in one statement
/// outside a transaction (on SQLite a read on this thread, see
/// [`Db::autocommit`]).
pub async fn find_holder_for_auth(
    db: &Db,
    key_hash: &str,
) -> StoreResult<Option<WithRelated<UserRow, KeyUse>>> {
    static SELECT: LazyLock<[String; 2]> = LazyLock::new(|| [holder(false), holder(true)]);
    fn holder(pg: bool) -> String {
        let related = related_column(
            pg,
            &[
                ("id", "id"),
                ("organization_id", "organization_id"),
                ("last_used_at", "last_used_at"),
            ],
        );
        // The key's columns go into `related`, so the user's names stay unambiguous.
        format!(
            "SELECT {USER_COLUMNS}, k.{RELATED} FROM users \
             JOIN (SELECT user_id, {related} FROM api_keys \
             WHERE key_hash = $1 AND revoked_at IS NULL) k ON k.user_id = users.id"
        )
    }
    let mut tx = db.autocommit().await?;
    let sql = Sql::with_args(
        SELECT[usize::from(tx.is_postgres())].as_str(),
        vec![Arg::Text(key_hash.to_string())],
    );
    query::fetch_optional(&mut tx, &sql).await
}

pub async fn touch(tx: &mut Tx, id: i64, now: i64) -> StoreResult<()> {
    const SQL: &str = "UPDATE api_keys SET last_used_at = $2 WHERE id = $1";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}
