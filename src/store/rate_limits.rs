//! Fixed-window hit counters, kept in the database so that every instance
//! behind a load balancer counts against the same limit.

use super::{StoreResult, Tx, on_tx};

/// Adds one hit to `bucket` in the window starting at `window_start` and
/// returns the window's total.
pub async fn hit(tx: &mut Tx, bucket: &str, window_start: i64) -> StoreResult<i64> {
    const SQL: &str = "INSERT INTO rate_limits (bucket, window_start, hits) VALUES ($1, $2, 1) \
         ON CONFLICT (bucket, window_start) DO UPDATE SET hits = rate_limits.hits + 1 RETURNING hits";
    Ok(on_tx!(tx, |c| sqlx::query_scalar(SQL)
        .bind(bucket)
        .bind(window_start)
        .fetch_one(c)
        .await?))
}

/// The hits counted so far in a window (0 when none).
pub async fn hits(tx: &mut Tx, bucket: &str, window_start: i64) -> StoreResult<i64> {
    const SQL: &str = "SELECT hits FROM rate_limits WHERE bucket = $1 AND window_start = $2";
    let n: Option<i64> = on_tx!(tx, |c| sqlx::query_scalar(SQL)
        .bind(bucket)
        .bind(window_start)
        .fetch_optional(c)
        .await?);
    Ok(n.unwrap_or(0))
}

pub async fn delete_before(tx: &mut Tx, window_start: i64) -> StoreResult<u64> {
    const SQL: &str = "DELETE FROM rate_limits WHERE window_start < $1";
    let done = on_tx!(tx, |c| sqlx::query(SQL)
        .bind(window_start)
        .execute(c)
        .await?
        .rows_affected());
    Ok(done)
}
