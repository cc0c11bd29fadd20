//! SQLite's writers in this process, one at a time and in arrival order.
//!
//! SQLite lets one transaction write at a time. A writer that finds the
//! lock taken sleeps in SQLite's busy handler, in steps growing to 100 ms,
//! and whoever tries at the right moment goes next: under 32 concurrent
//! creates the median waited 13 ms but the p99 1.2 s, and every waiting
//! writer held one of the pool's connections, which readers then lacked.
//! Here writers queue first (tokio's semaphore serves its waiters in
//! order), without a connection, and only the head of the queue asks
//! SQLite for the lock. Another process on the same file (a second
//! instance, a script) is still waited for by the busy handler.
//!
//! The queue and the busy handler share the writer's deadline: the time a
//! writer spent queuing is taken off what SQLite may then wait, so a write
//! gives up (503) after the same 5 s however the wait was split.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The queue of one SQLite database's writers in this process.
#[derive(Clone, Debug)]
pub struct WriteQueue(Arc<Semaphore>);

/// The head of the queue: the writer holding it may take SQLite's write
/// lock. Dropping it lets the next writer go.
#[derive(Debug)]
pub struct WriteTurn {
    _permit: OwnedSemaphorePermit,
    /// What is left of the writer's deadline for SQLite's busy handler.
    pub left: Duration,
}

impl Default for WriteQueue {
    fn default() -> Self {
        WriteQueue(Arc::new(Semaphore::new(1)))
    }
}

impl WriteQueue {
    /// Waits for this writer's turn, at most `deadline`; `None` if it did
    /// not come by then.
    pub async fn turn(&self, deadline: Duration) -> Option<WriteTurn> {
        let started = Instant::now();
        let permit = tokio::time::timeout(deadline, self.0.clone().acquire_owned())
            .await
            .ok()?
            // The semaphore is never closed.
            .ok()?;
        Some(WriteTurn {
            _permit: permit,
            left: deadline.saturating_sub(started.elapsed()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn writers_get_their_turn_in_arrival_order() {
        let queue = WriteQueue::default();
        let first = queue.turn(Duration::from_secs(5)).await.unwrap();
        let order = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut waiting = Vec::new();
        for i in 0..5 {
            let (queue, order) = (queue.clone(), order.clone());
            waiting.push(tokio::spawn(async move {
                let _turn = queue.turn(Duration::from_secs(5)).await.unwrap();
                order.lock().unwrap().push(i);
                tokio::time::sleep(Duration::from_millis(1)).await;
            }));
            // Let writer i reach the queue before writer i + 1.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(order.lock().unwrap().is_empty(), "nobody passes the head");
        drop(first);
        for w in waiting {
            w.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), vec![0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn the_wait_comes_off_the_deadline_and_ends_at_it() {
        let queue = WriteQueue::default();
        let head = queue.turn(Duration::from_secs(5)).await.unwrap();
        assert!(head.left > Duration::from_millis(4900), "{:?}", head.left);

        let started = Instant::now();
        assert!(queue.turn(Duration::from_millis(50)).await.is_none());
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");

        let next = tokio::spawn({
            let queue = queue.clone();
            async move { queue.turn(Duration::from_millis(500)).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        drop(head);
        let turn = next
            .await
            .unwrap()
            .expect("the turn came within the deadline");
        assert!(turn.left <= Duration::from_millis(400), "{:?}", turn.left);
    }
}
