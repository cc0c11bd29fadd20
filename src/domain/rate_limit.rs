//! Rate limits over fixed windows, counted in the database (so they hold
//! across restarts and across instances behind a load balancer).

use super::{Error, MICROS_PER_SEC, Result, now_micros};
use crate::app::AppState;
use crate::store::rate_limits;

/// One limit: at most `limit` hits per `window_secs` per bucket.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub limit: u32,
    pub window_secs: i64,
}

fn window(now: i64, window_secs: i64) -> (i64, u64) {
    let len = window_secs.max(1) * MICROS_PER_SEC;
    let start = now - now.rem_euclid(len);
    let retry_after = ((start + len - now) + MICROS_PER_SEC - 1) / MICROS_PER_SEC;
    (start, retry_after.max(1) as u64)
}

/// Counts a hit on `bucket`; `Throttled` once the window holds more than the
/// limit. The count is committed on its own, whatever the request does next.
/// A bucket already at its limit is refused on a read alone: a flood of
/// refused attempts must not become a flood of (synced) writes.
pub async fn hit(state: &AppState, bucket: &str, limit: Limit) -> Result<()> {
    check(state, bucket, limit).await?;
    let (start, retry_after) = window(now_micros(), limit.window_secs);
    let mut tx = state.db.begin_write().await?;
    let hits = rate_limits::hit(&mut tx, bucket, start).await?;
    tx.commit().await?;
    if hits > limit.limit as i64 {
        Err(Error::Throttled { retry_after })
    } else {
        Ok(())
    }
}

/// `Throttled` if `bucket` already holds `limit` hits in this window (does
/// not count one).
pub async fn check(state: &AppState, bucket: &str, limit: Limit) -> Result<()> {
    let (start, retry_after) = window(now_micros(), limit.window_secs);
    let mut tx = state.db.begin_read().await?;
    let hits = rate_limits::hits(&mut tx, bucket, start).await?;
    tx.commit().await?;
    if hits >= limit.limit as i64 {
        Err(Error::Throttled { retry_after })
    } else {
        Ok(())
    }
}

/// Counts a hit and says whether it was within the limit (for quotas that
/// must not fail the request, such as reset emails per address).
pub async fn allow(state: &AppState, bucket: &str, limit: Limit) -> Result<bool> {
    match hit(state, bucket, limit).await {
        Ok(()) => Ok(true),
        Err(Error::Throttled { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Deletes windows that ended more than a day ago.
pub async fn prune(state: &AppState) -> Result<u64> {
    let mut tx = state.db.begin_write().await?;
    let n = rate_limits::delete_before(&mut tx, now_micros() - 86_400 * MICROS_PER_SEC).await?;
    tx.commit().await?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    #[test]
    fn windows_align_and_retry_after_counts_up() {
        let (start, retry) = super::window(61_500_000, 60);
        assert_eq!(start, 60_000_000);
        assert_eq!(retry, 59);
    }
}
