//! The email outbox: messages are rows written in the transaction of the
//! change that causes them; a worker claims and delivers them.

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

/// Up to `limit` messages due for delivery that no worker holds.
pub async fn due(tx: &mut Tx, now: i64, limit: i64) -> StoreResult<Vec<OutboxRow>> {
    const SQL: &str = "SELECT id, to_address, subject, body, created_at, attempts FROM outbox \
         WHERE sent_at IS NULL AND next_attempt_at <= $1 AND (locked_until IS NULL OR locked_until < $1) \
         ORDER BY next_attempt_at, id LIMIT $2";
    Ok(on_tx!(tx, |c| sqlx::query_as(SQL)
        .bind(now)
        .bind(limit)
        .fetch_all(c)
        .await?))
}

/// Takes a message for delivery until `until`; false if another worker has it.
pub async fn claim(tx: &mut Tx, id: i64, now: i64, until: i64) -> StoreResult<bool> {
    const SQL: &str = "UPDATE outbox SET locked_until = $3 WHERE id = $1 AND sent_at IS NULL \
         AND (locked_until IS NULL OR locked_until < $2)";
    let done = on_tx!(tx, |c| sqlx::query(SQL)
        .bind(id)
        .bind(now)
        .bind(until)
        .execute(c)
        .await?
        .rows_affected());
    Ok(done == 1)
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
    Ok(on_tx!(tx, |c| sqlx::query_scalar(SQL).fetch_one(c).await?))
}
