//! What a request's transactions did, so that one which failed because its
//! PostgreSQL connection was lost can be run again.
//!
//! A backend terminated (`pg_terminate_backend`, a fast shutdown, a
//! failover) while a request is using its connection, or while the
//! connection sat idle in the pool (which lends it without a ping: see
//! `store::stale_connections`), fails that request. The
//! server rolls back whatever that transaction did, so the request can run
//! again on a fresh connection, unless one of its transactions had already
//! sent a write's COMMIT: that write may have landed, and running the
//! request again could do it twice. The store notes both facts here; the
//! HTTP layer (`http::rerun`) decides.
//!
//! The record lives in a task-local: a request's handler runs on the task
//! of its connection, and none of them does database work on another task.
//! Outside a recorded request (the mail worker, housekeeping) the notes go
//! nowhere.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

tokio::task_local! {
    static RECORD: Arc<Record>;
}

/// What one run of a request's transactions did.
#[derive(Default, Debug)]
pub struct Record {
    connection_lost: AtomicBool,
    write_commit_sent: AtomicBool,
}

impl Record {
    /// True when a connection was lost and no write was committed (or
    /// was being committed): running the request again cannot repeat a
    /// write.
    pub fn may_run_again(&self) -> bool {
        self.connection_lost.load(Ordering::Relaxed)
            && !self.write_commit_sent.load(Ordering::Relaxed)
    }
}

/// Runs `work` (one run of a request), noting what its transactions do.
pub async fn recorded<F: Future>(work: F) -> (F::Output, Arc<Record>) {
    let record = Arc::new(Record::default());
    let output = RECORD.scope(record.clone(), work).await;
    (output, record)
}

/// A statement failed because the connection to the database broke.
pub(crate) fn note_connection_lost() {
    let _ = RECORD.try_with(|r| r.connection_lost.store(true, Ordering::Relaxed));
}

/// A write transaction is about to send its COMMIT. Noted before the
/// COMMIT goes out: once it has, nobody can tell whether it landed.
pub(crate) fn note_write_commit() {
    let _ = RECORD.try_with(|r| r.write_commit_sent.store(true, Ordering::Relaxed));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lost_connection_may_run_again_until_a_write_commits() {
        let (_, record) = recorded(async {}).await;
        assert!(!record.may_run_again(), "nothing happened");

        let (_, record) = recorded(async { note_connection_lost() }).await;
        assert!(record.may_run_again());

        let (_, record) = recorded(async {
            note_write_commit();
            note_connection_lost();
        })
        .await;
        assert!(!record.may_run_again(), "a write was committed first");

        // Notes outside a recorded request go nowhere (and do not panic).
        note_connection_lost();
        let (_, record) = recorded(async {}).await;
        assert!(!record.may_run_again());
    }
}
