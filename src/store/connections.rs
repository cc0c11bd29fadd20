//! A pool's connections, and on PostgreSQL the ones that come back clean
//! from a statement outside a transaction, kept for the next request
//! without sqlx's release ping.
//!
//! sqlx pings every connection that goes back to its pool (a Sync message
//! and its ReadyForQuery: a round trip, with a wake-up of the backend and
//! of the server): it flushes what a dropped statement or transaction left
//! queued, and closes a connection found broken. For a statement that ran
//! to its end outside a transaction there is nothing to flush. On the
//! benchmark's one shared core that ping was about a fifth of the CPU time
//! of a `me` (`bench/README.md`, Round 14). So an autocommit read's
//! connection is *parked* here instead, still checked out of sqlx's pool,
//! and the next acquire takes it first.
//!
//! What the ping did is done another way:
//! - Anything a dropped statement left behind (unsent bytes, answers not
//!   yet read) sqlx's PostgreSQL driver settles itself before the next
//!   statement on that connection: every statement starts by flushing and
//!   reading up to the pending ReadyForQuery.
//! - A connection in a transaction is never parked: transactions end as
//!   sqlx ends them, with the release ping (and the queued ROLLBACK of a
//!   dropped one).
//! - A broken connection is found by the next statement that uses it: it
//!   fails with a lost connection and its request runs again
//!   (`store::rerun`). Parked connections taken from the pool before the
//!   last loss are retired as they would be handed out, as the pool's own
//!   are (`stale_connections`).
//!
//! Every PostgreSQL acquire goes through [`Connections::acquire`], which
//! first takes one of as many permits as the pool has connections; a lease
//! holds its permit until its connection is parked or back in sqlx's pool.
//! Parked connections hold no permit, so the leases, the parked and the
//! permit holders waiting in sqlx's pool are never more than its size: a
//! holder that finds none parked waits there only for a transaction's
//! connection (a transaction gives its permit back as it starts), never
//! while a connection sits parked. (Racing sqlx's acquire against
//! a parked connection instead cancelled the connections sqlx was opening:
//! 800 `me` a second, PostgreSQL forking all the while.) A connection
//! parked for longer than [`PARKED_IDLE`] goes back to sqlx's pool at the
//! next park or acquire, where its idle timeout and lifetime apply.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::pool::PoolConnection;
use sqlx::{Connection, Database, Pool};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::stale_connections;

/// How long a connection stays parked before it goes back to sqlx's pool.
pub const PARKED_IDLE: Duration = Duration::from_secs(30);

/// A pool, with the parking of clean connections on (PostgreSQL) or off.
#[derive(Debug)]
pub struct Connections<DB: Database> {
    pool: Pool<DB>,
    parking: Option<Arc<Parking<DB>>>,
}

impl<DB: Database> Clone for Connections<DB> {
    fn clone(&self) -> Self {
        Connections {
            pool: self.pool.clone(),
            parking: self.parking.clone(),
        }
    }
}

#[derive(Debug)]
struct Parking<DB: Database> {
    /// Newest last: the connection parked last is taken first.
    parked: Mutex<Vec<Parked<DB>>>,
    /// How long one may stay parked ([`PARKED_IDLE`]).
    idle: Duration,
    /// One for each connection of the pool; leases hold them.
    permits: Arc<Semaphore>,
}

#[derive(Debug)]
struct Parked<DB: Database> {
    conn: PoolConnection<DB>,
    taken: Instant,
    parked: Instant,
}

/// A connection checked out for a request. Dropped, it is parked when its
/// pool parks and it is outside a transaction; otherwise it goes back to
/// sqlx's pool.
#[derive(Debug)]
pub struct Lease<DB: Database> {
    conn: Option<PoolConnection<DB>>,
    /// When it was taken from sqlx's pool (it may have been parked since).
    taken: Instant,
    parking: Option<Arc<Parking<DB>>>,
    /// Released once the connection is parked or back in sqlx's pool.
    _permit: Option<OwnedSemaphorePermit>,
}

impl<DB: Database> Connections<DB> {
    /// Connections that go back to sqlx's pool after every use.
    pub fn unparked(pool: Pool<DB>) -> Self {
        Connections {
            pool,
            parking: None,
        }
    }

    /// Connections that are parked after a statement outside a transaction.
    pub fn parked(pool: Pool<DB>) -> Self {
        Self::parked_for(pool, PARKED_IDLE)
    }

    fn parked_for(pool: Pool<DB>, idle: Duration) -> Self {
        let size = pool.options().get_max_connections() as usize;
        Connections {
            pool,
            parking: Some(Arc::new(Parking {
                parked: Mutex::new(Vec::new()),
                idle,
                permits: Arc::new(Semaphore::new(size)),
            })),
        }
    }

    pub fn pool(&self) -> &Pool<DB> {
        &self.pool
    }

    /// A parked connection, or one from sqlx's pool, within the pool's
    /// acquire timeout.
    ///
    /// sqlx's acquire future is boxed: it holds a whole connect (14.5 KB
    /// for PostgreSQL, 3 KB for SQLite), and every future that awaits this
    /// one, up to each request handler's, would otherwise be that large and
    /// be copied whole each time axum boxes it, on every request.
    pub async fn acquire(&self) -> Result<Lease<DB>, sqlx::Error> {
        let Some(parking) = &self.parking else {
            let conn = Box::pin(self.pool.acquire()).await?;
            return Ok(self.lease(conn, Instant::now(), None));
        };
        let (timeout, asked) = (self.pool.options().get_acquire_timeout(), Instant::now());
        let permit = tokio::time::timeout(timeout, parking.permits.clone().acquire_owned())
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)?
            .map_err(|_| sqlx::Error::PoolClosed)?;
        if let Some((conn, taken)) = unpark(parking) {
            return Ok(self.lease(conn, taken, Some(permit)));
        }
        // The wait for the permit counts against the same timeout: in all,
        // a request waits the acquire timeout for a connection, not twice
        // that (while the database is down, each permit holder waits out a
        // connect of its own).
        let left = timeout.saturating_sub(asked.elapsed());
        let conn = tokio::time::timeout(left, Box::pin(self.pool.acquire()))
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
        Ok(self.lease(conn, Instant::now(), Some(permit)))
    }

    fn lease(
        &self,
        conn: PoolConnection<DB>,
        taken: Instant,
        permit: Option<OwnedSemaphorePermit>,
    ) -> Lease<DB> {
        Lease {
            conn: Some(conn),
            taken,
            parking: self.parking.clone(),
            _permit: permit,
        }
    }

    /// Open connections, and how many of them are idle (parked or in
    /// sqlx's pool).
    pub fn size(&self) -> (u32, usize) {
        let parked = self
            .parking
            .as_ref()
            .map_or(0, |parking| lock(&parking.parked).len());
        (self.pool.size(), self.pool.num_idle() + parked)
    }

    /// Closes the pool, once the parked connections are back in it.
    pub async fn close(&self) {
        if let Some(parking) = &self.parking {
            parking.permits.close();
            let parked = std::mem::take(&mut *lock(&parking.parked));
            drop(parked);
        }
        self.pool.close().await;
    }
}

/// The newest parked connection still fit to use, and when it was taken
/// from sqlx's pool. Those taken before the last lost connection go back
/// to sqlx's pool (which pings them, and closes the dead), as do those
/// parked too long.
fn unpark<DB: Database>(parking: &Parking<DB>) -> Option<(PoolConnection<DB>, Instant)> {
    let mut retired = Vec::new();
    let found = {
        let mut parked = lock(&parking.parked);
        retire_idle(&mut parked, parking.idle, &mut retired);
        loop {
            match parked.pop() {
                None => break None,
                Some(p) if stale_connections::opened_before_last_loss(p.taken.elapsed()) => {
                    retired.push(p.conn);
                }
                Some(p) => break Some((p.conn, p.taken)),
            }
        }
    };
    drop(retired);
    found
}

impl<DB: Database> Lease<DB> {
    /// The pooled connection itself, for a transaction: it goes back to
    /// sqlx's pool when the transaction ends. (Its permit is released now:
    /// a holder may then wait in sqlx's pool for a transaction to end, as
    /// anyone did before connections were parked.)
    pub fn into_pool_connection(mut self) -> PoolConnection<DB> {
        self.conn
            .take()
            .expect("a lease holds its connection until dropped")
    }
}

impl<DB: Database> std::ops::Deref for Lease<DB> {
    type Target = DB::Connection;
    fn deref(&self) -> &DB::Connection {
        self.conn
            .as_ref()
            .expect("a lease holds its connection until dropped")
    }
}

impl<DB: Database> std::ops::DerefMut for Lease<DB> {
    fn deref_mut(&mut self) -> &mut DB::Connection {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until dropped")
    }
}

impl<DB: Database> Drop for Lease<DB> {
    fn drop(&mut self) {
        let (Some(conn), Some(parking)) = (self.conn.take(), self.parking.as_ref()) else {
            return;
        };
        if conn.is_in_transaction() || std::thread::panicking() {
            return; // `conn` goes back to sqlx's pool, which settles it
        }
        let mut retired = Vec::new();
        {
            let mut parked = lock(&parking.parked);
            retire_idle(&mut parked, parking.idle, &mut retired);
            parked.push(Parked {
                conn,
                taken: self.taken,
                parked: Instant::now(),
            });
        }
        drop(retired);
        // The permit is released after this, once the connection is parked.
    }
}

/// Moves the connections parked longer than `idle` (the oldest are first)
/// to `retired`.
fn retire_idle<DB: Database>(
    parked: &mut Vec<Parked<DB>>,
    idle: Duration,
    retired: &mut Vec<PoolConnection<DB>>,
) {
    let expired = parked
        .iter()
        .take_while(|p| p.parked.elapsed() > idle)
        .count();
    retired.extend(parked.drain(..expired).map(|p| p.conn));
}

/// The lock of the parked list; a panic while it was held left the list
/// itself whole.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::sqlite::SqlitePoolOptions;

    /// Two connections of an in-memory SQLite pool, told apart by the name
    /// each was given in a temporary table (its own).
    async fn named_leases(
        idle: Duration,
    ) -> (
        Connections<sqlx::Sqlite>,
        Lease<sqlx::Sqlite>,
        Lease<sqlx::Sqlite>,
    ) {
        let pool = SqlitePoolOptions::new()
            .max_connections(2)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        let connections = Connections::parked_for(pool, idle);
        let mut first = connections.acquire().await.unwrap();
        let mut second = connections.acquire().await.unwrap();
        for (lease, name) in [(&mut first, "first"), (&mut second, "second")] {
            sqlx::query("CREATE TEMP TABLE name (v TEXT)")
                .execute(&mut **lease)
                .await
                .unwrap();
            sqlx::query("INSERT INTO name VALUES (?)")
                .bind(name)
                .execute(&mut **lease)
                .await
                .unwrap();
        }
        (connections, first, second)
    }

    async fn name_of(lease: &mut Lease<sqlx::Sqlite>) -> String {
        sqlx::query_scalar("SELECT v FROM name")
            .fetch_one(&mut **lease)
            .await
            .unwrap()
    }

    fn parked_count(connections: &Connections<sqlx::Sqlite>) -> usize {
        lock(&connections.parking.as_ref().unwrap().parked).len()
    }

    #[tokio::test]
    async fn the_connection_parked_last_is_taken_first() {
        let (connections, first, second) = named_leases(PARKED_IDLE).await;
        drop(first);
        drop(second);
        assert_eq!(parked_count(&connections), 2);
        assert_eq!(connections.size(), (2, 2));
        let mut taken = connections.acquire().await.unwrap();
        assert_eq!(name_of(&mut taken).await, "second");
        assert_eq!(parked_count(&connections), 1);
    }

    #[tokio::test]
    async fn a_connection_parked_too_long_goes_back_to_the_pool() {
        let (connections, first, second) = named_leases(Duration::ZERO).await;
        drop(first);
        tokio::time::sleep(Duration::from_millis(5)).await;
        // Parking the second retires the first (parked longer than zero).
        drop(second);
        assert_eq!(parked_count(&connections), 1);
        for _ in 0..100 {
            if connections.pool().num_idle() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(connections.pool().num_idle(), 1, "back in sqlx's pool");
        assert_eq!(connections.size(), (2, 2));
    }

    /// A transaction's connection ends as sqlx ends it (here, rolled back)
    /// and goes back to sqlx's pool, not to the parked ones.
    #[tokio::test]
    async fn a_transactions_connection_goes_back_to_the_pool() {
        let (connections, first, second) = named_leases(PARKED_IDLE).await;
        drop(second);
        let mut tx = sqlx::Transaction::begin(first.into_pool_connection(), None)
            .await
            .unwrap();
        sqlx::query("INSERT INTO name VALUES ('more')")
            .execute(&mut *tx)
            .await
            .unwrap();
        drop(tx);
        for _ in 0..100 {
            if connections.pool().num_idle() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(connections.pool().num_idle(), 1);
        assert_eq!(parked_count(&connections), 1);
        let mut back = connections.pool().acquire().await.unwrap();
        let names: Vec<String> = sqlx::query_scalar("SELECT v FROM name")
            .fetch_all(&mut *back)
            .await
            .unwrap();
        assert_eq!(names, ["first"], "the insert was rolled back");
    }

    /// Every statement's future holds the acquire's: it stays small (sqlx's
    /// own is 14.5 KB for PostgreSQL), so that handlers' futures, which axum
    /// copies into a box on every request, stay small too. Not connected:
    /// the futures are made, never run.
    #[tokio::test]
    async fn the_acquire_future_stays_small() {
        let postgres = Connections::parked(
            sqlx::postgres::PgPoolOptions::new()
                .connect_lazy("postgres://nobody@127.0.0.1:1/none")
                .unwrap(),
        );
        let sqlite = Connections::unparked(
            SqlitePoolOptions::new()
                .connect_lazy("sqlite::memory:")
                .unwrap(),
        );
        let postgres_acquire = std::mem::size_of_val(&postgres.acquire());
        let sqlite_acquire = std::mem::size_of_val(&sqlite.acquire());
        assert!(postgres_acquire < 1024, "{postgres_acquire} bytes");
        assert!(sqlite_acquire < 1024, "{sqlite_acquire} bytes");
    }
}
