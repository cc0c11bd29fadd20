//! The email outbox: messages are rows written in the transaction of the
//! change that causes them; a worker claims and delivers them.

use super::query;
use super::{StoreResult, Tx, on_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub to_address: String,
    pub subject: String,
    pub body: String,
    pub created_at: i64,
    pub attempts: i64,
}

pub async fn insert(
    tx: &mut Tx,
    to: &str,
    subject: &str,
    body: &str,
    now: i64,
) -> StoreResult<i64> {
    const SQL: &str = "INSERT INTO outbox (to_address, subject, body, created_at, next_attempt_at) \
         VALUES ($1, $2, $3, $4, $4) RETURNING id";
    Ok(on_tx!(tx, |c| sqlx::query_scalar(SQL)
        .bind(to)
        .bind(subject)
        .bind(body)
        .bind(now)
        .fetch_one(c)
        .await?))
}

/// Claims up to `limit` messages that are due and held by no worker, until
/// `until`, in one statement, and returns them (oldest first). On
/// PostgreSQL `FOR UPDATE SKIP LOCKED` lets workers of several instances
/// claim side by side without waiting on or taking each other's rows; on
/// SQLite the write transaction already excludes other writers. A claim
/// lapses at `until` if its worker dies mid-delivery.
pub async fn claim_due(
    tx: &mut Tx,
    now: i64,
    until: i64,
    limit: i64,
) -> StoreResult<Vec<OutboxRow>> {
    const POSTGRES: &str = "UPDATE outbox SET locked_until = $2 WHERE id IN (\
         SELECT id FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= $1 \
         AND (locked_until IS NULL OR locked_until < $1) \
         ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
         RETURNING id, to_address, subject, body, created_at, attempts";
    const SQLITE: &str = "UPDATE outbox SET locked_until = $2 WHERE id IN (\
         SELECT id FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= $1 \
         AND (locked_until IS NULL OR locked_until < $1) \
         ORDER BY next_attempt_at, id LIMIT $3) \
         RETURNING id, to_address, subject, body, created_at, attempts";
    let sql = if tx.is_postgres() { POSTGRES } else { SQLITE };
    let mut rows: Vec<OutboxRow> = on_tx!(tx, |c| sqlx::query_as(sql)
        .bind(now)
        .bind(until)
        .bind(limit)
        .fetch_all(c)
        .await?);
    rows.sort_by_key(|r| r.id);
    Ok(rows)
}

pub async fn mark_sent(tx: &mut Tx, id: i64, now: i64) -> StoreResult<()> {
    const SQL: &str = "UPDATE outbox SET sent_at = $2, attempts = attempts + 1, locked_until = NULL, \
         last_error = NULL WHERE id = $1";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

pub async fn mark_failed(
    tx: &mut Tx,
    id: i64,
    next_attempt_at: i64,
    error: &str,
) -> StoreResult<()> {
    const SQL: &str = "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2, \
         locked_until = NULL, last_error = $3 WHERE id = $1";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(id)
        .bind(next_attempt_at)
        .bind(error)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

/// Messages not yet delivered (for tests and the operator).
pub async fn pending_count(tx: &mut Tx) -> StoreResult<i64> {
    const SQL: &str = "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL";
    query::fetch_int(tx, &query::Sql::new(SQL)).await
}
