//! Storage: one code path over SQLite and PostgreSQL.
//!
//! Every query is plain SQL with `$N` placeholders, which both sqlx drivers
//! accept, so the text is written once. The [`Tx`] enum holds a transaction
//! of either backend and the [`on_tx!`] macro expands a query body once per
//! backend, so each is type-checked against its own driver (see
//! `docs/persistence.md` for why this beats `sqlx::Any` and an ORM here).

pub mod api_keys;
pub mod blobs;
pub mod coach;
mod connections;
pub mod custom_fields;
pub mod departments;
pub mod organizations;
pub mod outbox;
pub mod people;
pub mod profiles;
pub mod programs;
pub mod query;
pub mod rate_limits;
pub mod refresh_tokens;
pub mod rerun;
pub mod sqlite_reader;
mod stale_connections;
pub mod team;
pub mod users;
pub mod write_queue;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Postgres, SqlSafeStr, Sqlite, SqlitePool};

pub use connections::{Connections, Lease};

pub use sqlite_reader::{ReadSnapshot, ReaderRow, SqliteReader};
pub use write_queue::WriteQueue;

/// Errors of the storage layer. The domain maps them to its own error type.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique constraint refused the write; carries the constraint's text.
    #[error("unique constraint violated: {0}")]
    Conflict(String),
    /// The database is busy, locked or unreachable: worth retrying later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// Text the database cannot store (PostgreSQL refuses NUL characters).
    #[error("text not storable: {0}")]
    InvalidText(String),
    #[error("database error: {0}")]
    Other(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if connection_lost(&err) {
            rerun::note_connection_lost();
            stale_connections::note_connection_lost();
        }
        match &err {
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                StoreError::Conflict(db.message().to_string())
            }
            sqlx::Error::Database(db) => {
                // SQLITE_BUSY (5) / SQLITE_LOCKED (6) and their extended codes;
                // PostgreSQL: connection exceptions (08*), too many connections
                // (53300), admin shutdown / cannot connect now (57P0*).
                let code = db.code().map(|c| c.to_string()).unwrap_or_default();
                // SQLite codes are short numbers; PostgreSQL's SQLSTATEs are
                // five characters (22021 must not read as SQLite's 5).
                let sqlite_code = code.len() < 5;
                // A full disk (SQLite 13, PostgreSQL 53100) is an outage too:
                // nothing was written and a retry after cleanup succeeds.
                let busy = (sqlite_code
                    && code
                        .parse::<i64>()
                        .is_ok_and(|c| matches!(c & 0xff, 5 | 6 | 13)))
                    || code.starts_with("08")
                    || code == "53300"
                    || code == "53100"
                    || code.starts_with("57P0");
                if busy {
                    StoreError::Unavailable(err.to_string())
                } else if code == "22021" || code == "22P05" {
                    StoreError::InvalidText(err.to_string())
                } else {
                    StoreError::Other(err.to_string())
                }
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed => StoreError::Unavailable(err.to_string()),
            _ => StoreError::Other(err.to_string()),
        }
    }
}

/// True when `err` says the connection itself broke (PostgreSQL's
/// connection exceptions 08*, a backend terminated or crashed 57P01 and
/// 57P02, or an I/O error), as opposed to a statement the database refused
/// or a pool with no connection to give (which waited its acquire timeout
/// already).
fn connection_lost(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c == "57P01" || c == "57P02"),
        _ => false,
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// How to size and run a pool.
#[derive(Clone, Debug)]
pub struct PoolOptions {
    pub max_connections: u32,
    /// How long a request waits for a free connection before it is told
    /// the database is unavailable.
    pub acquire_timeout: Duration,
    /// SQLite `synchronous=FULL` (else NORMAL).
    pub sqlite_synchronous_full: bool,
    /// SQLite's soft heap limit, for the whole process.
    pub sqlite_memory_bytes: u64,
    /// How long SQLite's reader may keep a read transaction between reads
    /// (see `SqliteReader`).
    pub sqlite_kept_snapshot_age: Duration,
}

impl PoolOptions {
    pub fn new(max_connections: u32) -> Self {
        PoolOptions {
            max_connections,
            acquire_timeout: Duration::from_secs(3),
            sqlite_synchronous_full: true,
            sqlite_memory_bytes: 40 * 1024 * 1024,
            sqlite_kept_snapshot_age: sqlite_reader::KEPT_SNAPSHOT_AGE,
        }
    }
}

/// How long a SQLite write waits for another writer before giving up (503).
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Gathers planner statistics when they are missing or stale, as SQLite
/// advises for each new connection: without them the planner can prefer a
/// covering index that scans the whole organisation over a selective
/// (organisation, role) search. `optimize` may write (ANALYZE), so it must
/// not wait: while another process holds the write lock, waiting here would
/// stall every request that needs a new connection. It is skipped then (the
/// hourly housekeeping pass runs it again).
async fn optimize_new_connection(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    sqlx::query("PRAGMA busy_timeout = 0")
        .execute(&mut *conn)
        .await?;
    if let Err(e) = sqlx::query("PRAGMA optimize = 0x10002")
        .execute(&mut *conn)
        .await
    {
        tracing::debug!(error = %e, "planner statistics not refreshed on a new connection");
    }
    let restore = format!("PRAGMA busy_timeout = {}", SQLITE_BUSY_TIMEOUT.as_millis());
    sqlx::query(sqlx::AssertSqlSafe(restore))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Sets up each new pooled SQLite connection: stable plans, then fresh
/// planner statistics.
async fn set_up_new_connection(conn: &mut sqlx::SqliteConnection) -> Result<(), sqlx::Error> {
    {
        let mut handle = conn.lock_handle().await?;
        stable_query_plans(handle.as_raw_handle().as_ptr())?;
    }
    optimize_new_connection(conn).await
}

/// Turns on SQLite's query planner stability guarantee for a connection:
/// a statement's plan no longer depends on the values bound to it.
///
/// This build of SQLite has `STAT4`: `ANALYZE` samples index values, and a
/// statement whose plan could use a sample of a bound value (any
/// `organization_id = $1`) is compiled again every time it is run with new
/// bindings. sqlx's statement cache then saves nothing: on a page of
/// departments the re-compilation took more time than the query itself.
/// Plans still use the per-index statistics (`sqlite_stat1`), and the
/// samples still serve literal values.
fn stable_query_plans(db: *mut rusqlite::ffi::sqlite3) -> Result<(), sqlx::Error> {
    use std::os::raw::c_int;
    // SAFETY: `db` is an open connection that the caller holds exclusively
    // for the duration of the call; SQLITE_DBCONFIG_ENABLE_QPSG takes an
    // int and an optional int pointer for the new setting (null: unwanted).
    let rc = unsafe {
        rusqlite::ffi::sqlite3_db_config(
            db,
            rusqlite::ffi::SQLITE_DBCONFIG_ENABLE_QPSG,
            1 as c_int,
            std::ptr::null_mut::<c_int>(),
        )
    };
    if rc == rusqlite::ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(sqlx::Error::Configuration(
            format!("SQLITE_DBCONFIG_ENABLE_QPSG failed with code {rc}").into(),
        ))
    }
}

/// A connection pool of either backend. SQLite's comes with a reader for
/// point lookups on the caller's thread (none for an in-memory database,
/// which another connection could not see) and the queue its writers take
/// turns in.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool, Option<Arc<SqliteReader>>, WriteQueue),
    Postgres(Connections<Postgres>),
}

/// One open transaction (or, for a single-statement read, one connection
/// in autocommit mode: see [`Db::autocommit`]).
pub enum Tx {
    Sqlite(Handle<Sqlite>),
    Postgres(Handle<Postgres>),
}

/// A transaction, or a bare connection whose every statement commits on
/// its own.
pub enum Handle<DB: sqlx::Database> {
    Transaction(sqlx::Transaction<'static, DB>),
    /// A write transaction, with what its backend needs besides.
    Write(sqlx::Transaction<'static, DB>, Writer<DB>),
    /// No transaction: statements the reader can answer go there, and a
    /// pooled connection is taken only when one cannot (see
    /// [`Db::autocommit`]).
    Autocommit {
        pool: Connections<DB>,
        conn: Option<Lease<DB>>,
        reader: Option<Arc<SqliteReader>>,
    },
    /// A read-only transaction on SQLite's reader, or, when the reader
    /// could not start one, on the pool (see [`Db::begin_read`]).
    Snapshot {
        pool: sqlx::Pool<DB>,
        snapshot: Option<ReadSnapshot>,
        pooled: Option<sqlx::Transaction<'static, DB>>,
    },
}

/// What a write transaction holds besides its connection.
pub enum Writer<DB: sqlx::Database> {
    /// SQLite: the writer's turn in this process, until the transaction
    /// ends.
    Turn(write_queue::WriteTurn),
    /// PostgreSQL: the transaction's id and the pool, to ask whether a
    /// COMMIT whose answer was lost with its connection landed.
    Xid(Connections<DB>, i64),
}

impl<DB: sqlx::Database> Handle<DB> {
    /// The connection statements run on (for autocommit, taken from the
    /// pool at the first statement that needs one).
    pub async fn conn(&mut self) -> Result<&mut DB::Connection, sqlx::Error> {
        match self {
            Handle::Transaction(t) | Handle::Write(t, _) => Ok(t),
            Handle::Autocommit { pool, conn, .. } => {
                if conn.is_none() {
                    *conn = Some(pool.acquire().await?);
                }
                conn.as_deref_mut()
                    .ok_or_else(|| sqlx::Error::Protocol("no pooled connection".into()))
            }
            Handle::Snapshot {
                pool,
                snapshot,
                pooled,
            } => {
                if pooled.is_none() {
                    if let Some(snapshot) = snapshot.take()
                        && snapshot.started()
                    {
                        // The statements so far saw another snapshot than
                        // the pool will: every statement of a read must be
                        // one the reader can run (`query::fetch_all`).
                        debug_assert!(false, "a read left its snapshot for the pool");
                        tracing::warn!("a read left its SQLite snapshot for the pool");
                    }
                    // Boxed, as sqlx's acquire in `Connections::acquire`.
                    *pooled = Some(Box::pin(pool.begin()).await?);
                }
                match pooled {
                    Some(t) => Ok(t),
                    None => Err(sqlx::Error::Protocol("no pooled transaction".into())),
                }
            }
        }
    }

    async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Handle::Transaction(t) => t.commit().await,
            // The next writer's turn comes once this one has committed.
            // (PostgreSQL's writes commit in `commit_postgres_write`.)
            Handle::Write(t, _writer) => {
                rerun::note_write_commit();
                t.commit().await
            }
            Handle::Autocommit { .. } => Ok(()),
            Handle::Snapshot {
                snapshot, pooled, ..
            } => {
                if let Some(snapshot) = snapshot {
                    snapshot.finish();
                }
                match pooled {
                    Some(t) => t.commit().await,
                    None => Ok(()),
                }
            }
        }
    }
}

/// Runs `$body` with `$conn` bound to the transaction's connection, once per
/// backend. The body must be valid for both drivers.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite(t) => {
                let $conn = t.conn().await?;
                $body
            }
            $crate::store::Tx::Postgres(t) => {
                let $conn = t.conn().await?;
                $body
            }
        }
    };
}
pub use on_tx;

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The versions of each backend's migrations (a test keeps them in step).
pub fn migration_versions() -> (Vec<i64>, Vec<i64>) {
    (
        SQLITE_MIGRATIONS.iter().map(|m| m.version).collect(),
        POSTGRES_MIGRATIONS.iter().map(|m| m.version).collect(),
    )
}

impl Db {
    /// Opens a pool for `url` (`sqlite://path`, `sqlite::memory:` or
    /// `postgres://...`). SQLite gets WAL, `synchronous=FULL`, foreign keys
    /// and a busy timeout on every connection.
    pub async fn connect(url: &str, options: &PoolOptions) -> StoreResult<Db> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts =
                PgConnectOptions::from_str(url).map_err(|e| StoreError::Other(e.to_string()))?;
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections)
                .acquire_timeout(options.acquire_timeout)
                // No ping before each acquire (a round trip per request):
                // connections opened before the last lost one are retired
                // instead (see `stale_connections`).
                .test_before_acquire(false)
                .before_acquire(|_, meta| {
                    let live = !stale_connections::opened_before_last_loss(meta.age);
                    Box::pin(std::future::ready(Ok(live)))
                })
                .connect_with(opts)
                .await?;
            Ok(Db::Postgres(Connections::parked(pool)))
        } else if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Other(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(if options.sqlite_synchronous_full {
                    SqliteSynchronous::Full
                } else {
                    SqliteSynchronous::Normal
                })
                .foreign_keys(true)
                .busy_timeout(SQLITE_BUSY_TIMEOUT)
                // 8 MiB of page cache per connection (the default is 2 MiB):
                // hot index pages stay in memory while the whole pool stays
                // well under 100 MiB; the OS page cache holds the rest.
                .pragma("cache_size", "-8192")
                // Process-wide, so the same on every connection: all caches
                // together stay near this (each connection's 8 MiB would
                // otherwise add up, with a large search on every one).
                .pragma("soft_heap_limit", options.sqlite_memory_bytes.to_string());
            let filename = opts.get_filename().to_path_buf();
            let pool = SqlitePoolOptions::new()
                .max_connections(options.max_connections)
                // A SQLite connection is a file handle in this process: it
                // cannot go stale the way a socket can, and the liveness
                // ping sqlx sends on every acquire is a round trip to the
                // connection's worker thread.
                .test_before_acquire(false)
                .acquire_timeout(options.acquire_timeout)
                .after_connect(|conn, _| Box::pin(set_up_new_connection(conn)))
                .connect_with(opts)
                .await?;
            let in_memory = url.contains(":memory:") || url.contains("mode=memory");
            let reader = (!in_memory).then(|| {
                Arc::new(
                    SqliteReader::with_blocking_limit(
                        filename,
                        options.max_connections as usize,
                        options.acquire_timeout,
                    )
                    .keeping_snapshots_for(options.sqlite_kept_snapshot_age),
                )
            });
            Ok(Db::Sqlite(pool, reader, WriteQueue::default()))
        } else {
            Err(StoreError::Other(format!(
                "unsupported DATABASE_URL {url:?}: expected sqlite:// or postgres://"
            )))
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(..) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self {
            Db::Sqlite(pool, ..) => SQLITE_MIGRATIONS.run(pool).await,
            Db::Postgres(pg) => POSTGRES_MIGRATIONS.run(&mut *pg.acquire().await?).await,
        }
    }

    /// A transaction that only reads: its statements agree with each
    /// other (one snapshot).
    ///
    /// On SQLite it runs on the [`SqliteReader`], on the request's thread,
    /// as a [`ReadSnapshot`]: the statements of [`query::fetch_all`] and
    /// [`query::fetch_int`] go there, saving the worker-thread hand-offs of
    /// a pooled connection (BEGIN, each statement, COMMIT, and the ping
    /// when it goes back). If the reader cannot start the snapshot, or the
    /// first statement is one it cannot run, the read takes a pooled
    /// transaction instead. An in-memory database has no reader.
    ///
    /// On PostgreSQL it is `REPEATABLE READ, READ ONLY`: under the default
    /// READ COMMITTED every statement would see its own snapshot. A
    /// read-only transaction at that level never fails to serialize.
    pub async fn begin_read(&self) -> StoreResult<Tx> {
        Ok(match self {
            Db::Sqlite(pool, Some(reader), _) => Tx::Sqlite(Handle::Snapshot {
                pool: pool.clone(),
                snapshot: Some(ReadSnapshot::new(reader.clone())),
                pooled: None,
            }),
            Db::Sqlite(pool, None, _) => {
                Tx::Sqlite(Handle::Transaction(Box::pin(pool.begin()).await?))
            }
            Db::Postgres(pg) => Tx::Postgres(Handle::Transaction(
                pg_begin(pg, "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY").await?,
            )),
        })
    }

    /// A read of objects with their children: the store's `find_record`s
    /// and record lists. PostgreSQL reads each in one statement, the
    /// children in a JSON column ([`query::WithRelated`]), which needs no
    /// transaction: this is [`Db::autocommit`] there, saving BEGIN and
    /// COMMIT. SQLite reads them a statement a table (in process, a
    /// statement costs less than the JSON), so this is [`Db::begin_read`]
    /// there, whose snapshot costs nothing.
    pub async fn begin_object_read(&self) -> StoreResult<Tx> {
        match self {
            Db::Sqlite(..) => self.begin_read().await,
            Db::Postgres(_) => self.autocommit().await,
        }
    }

    /// A connection without a transaction, each statement committing on
    /// its own: for reads that need no common snapshot across statements
    /// (a numbered list page, which is one statement; a credential check
    /// that the SQLite reader could not answer). It saves the BEGIN and
    /// COMMIT round trips of [`Db::begin_read`]. Anything that writes, or reads
    /// what must agree, takes a transaction.
    ///
    /// On SQLite the statements of [`query::fetch_all`] and
    /// [`query::fetch_int`] go to the [`SqliteReader`] first, on the
    /// request's thread; a pooled connection is taken only for one the
    /// reader cannot answer. A pooled connection costs two hand-offs to its
    /// worker thread even for one statement (the statement, and the ping
    /// sqlx sends when it goes back to the pool).
    ///
    /// On PostgreSQL the statements go to one pooled connection, without
    /// BEGIN and COMMIT: two round trips fewer. (This waited until a
    /// request whose backend is terminated under it could run again: see
    /// `store::rerun`. Before that, the fault stage's check that
    /// terminating every connection costs clients nothing failed now and
    /// then, with or without a transaction.)
    pub async fn autocommit(&self) -> StoreResult<Tx> {
        Ok(match self {
            Db::Sqlite(pool, reader, _) => Tx::Sqlite(Handle::Autocommit {
                pool: Connections::unparked(pool.clone()),
                conn: None,
                reader: reader.clone(),
            }),
            Db::Postgres(pg) => Tx::Postgres(Handle::Autocommit {
                pool: pg.clone(),
                conn: None,
                reader: None,
            }),
        })
    }

    /// A transaction that will write. On SQLite the writer first waits for
    /// its turn in the [`WriteQueue`], then takes the write lock up front
    /// (`BEGIN IMMEDIATE`), so it waits on the busy timeout instead of
    /// failing when a deferred transaction tries to upgrade its lock. The
    /// two waits share [`SQLITE_BUSY_TIMEOUT`].
    pub async fn begin_write(&self) -> StoreResult<Tx> {
        Ok(match self {
            Db::Sqlite(pool, _, queue) => {
                let turn = queue.turn(SQLITE_BUSY_TIMEOUT).await.ok_or_else(|| {
                    StoreError::Unavailable(format!(
                        "no turn to write within {} s",
                        SQLITE_BUSY_TIMEOUT.as_secs()
                    ))
                })?;
                // One round trip for both. The shortened timeout stays on
                // the connection until its next write sets its own; reads
                // in WAL mode do not wait for the write lock.
                let begin = format!(
                    "PRAGMA busy_timeout = {}; BEGIN IMMEDIATE",
                    turn.left.as_millis()
                );
                // Boxed, as sqlx's acquire in `Connections::acquire`.
                let tx = Box::pin(pool.begin_with(sqlx::AssertSqlSafe(begin))).await?;
                Tx::Sqlite(Handle::Write(tx, Writer::Turn(turn)))
            }
            Db::Postgres(pg) => {
                let mut tx = pg_begin(pg, "BEGIN").await?;
                let xid: i64 = sqlx::query_scalar("SELECT txid_current()")
                    .fetch_one(&mut *tx)
                    .await?;
                Tx::Postgres(Handle::Write(tx, Writer::Xid(pg.clone(), xid)))
            }
        })
    }

    /// Refreshes planner statistics that have gone stale (SQLite's
    /// `PRAGMA optimize`; PostgreSQL's autovacuum does this itself).
    pub async fn optimize(&self) -> StoreResult<()> {
        if let Db::Sqlite(pool, ..) = self {
            sqlx::query("PRAGMA optimize").execute(pool).await?;
        }
        Ok(())
    }

    /// Checks that the database answers within a second (for `/readyz`).
    pub async fn ping(&self) -> StoreResult<()> {
        let ping = async {
            match self {
                Db::Sqlite(pool, ..) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()),
                Db::Postgres(pg) => {
                    let mut conn = pg.acquire().await?;
                    sqlx::query("SELECT 1")
                        .execute(&mut *conn)
                        .await
                        .map(|_| ())
                }
            }
        };
        match tokio::time::timeout(Duration::from_secs(1), ping).await {
            Ok(answer) => Ok(answer?),
            Err(_) => Err(StoreError::Unavailable("no answer within 1 s".into())),
        }
    }

    /// Ends the read transactions that SQLite's idle reader connections
    /// keep and that are no longer current (see `SqliteReader`).
    pub fn end_stale_snapshots(&self) {
        if let Db::Sqlite(_, Some(reader), _) = self {
            reader.end_stale_snapshots();
        }
    }

    /// SQLite snapshot statements that ran over the reader's budget and
    /// finished on a blocking thread, for `/metrics` (`None`: no reader).
    pub fn sqlite_long_reads(&self) -> Option<u64> {
        match self {
            Db::Sqlite(_, Some(reader), _) => Some(reader.long_reads()),
            _ => None,
        }
    }

    /// Connections open and idle, for `/metrics`.
    pub fn pool_size(&self) -> (u32, usize) {
        match self {
            Db::Sqlite(pool, ..) => (pool.size(), pool.num_idle()),
            Db::Postgres(pg) => pg.size(),
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(pool, ..) => pool.close().await,
            Db::Postgres(pg) => pg.close().await,
        }
    }
}

impl Tx {
    pub fn is_postgres(&self) -> bool {
        matches!(self, Tx::Postgres(_))
    }

    /// Every row of `sql` from SQLite's reader, when this is a read it
    /// serves (outside a transaction, or a [`ReadSnapshot`]) and it can
    /// answer; `None` sends the statement to a connection.
    pub async fn read_here<T: ReaderRow + Send + 'static>(
        &mut self,
        sql: &query::Sql,
    ) -> StoreResult<Option<Vec<T>>> {
        match self {
            Tx::Sqlite(Handle::Autocommit {
                reader: Some(reader),
                ..
            }) => Ok(reader.query_all(&sql.text, &sql.args)),
            Tx::Sqlite(Handle::Snapshot {
                snapshot: Some(snapshot),
                pooled: None,
                ..
            }) => snapshot.query_all(sql).await,
            _ => Ok(None),
        }
    }

    pub async fn commit(self) -> StoreResult<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(Handle::Write(t, Writer::Xid(pool, xid))) => {
                commit_postgres_write(t, &pool, xid).await?
            }
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}

/// Begins a PostgreSQL transaction on a task of its own, which runs to the
/// end even when the request is dropped (its client went away). sqlx 0.9
/// counts a transaction only once it has read BEGIN's answer: a request
/// dropped before then queued no ROLLBACK, and the pool lent the session,
/// still inside the transaction, to the next request, whose writes failed
/// in a stale READ ONLY one and whose reads saw its old snapshot (sqlx
/// issue #4393). On its own task the BEGIN is always counted, so the
/// dropped transaction is rolled back as any other is.
async fn pg_begin(
    pg: &Connections<Postgres>,
    begin: &'static str,
) -> Result<sqlx::Transaction<'static, Postgres>, sqlx::Error> {
    let pg = pg.clone();
    tokio::spawn(async move {
        let conn = pg.acquire().await?.into_pool_connection();
        sqlx::Transaction::begin(conn, Some(begin.into_sql_str())).await
    })
    .await
    .map_err(|e| sqlx::Error::Protocol(format!("the task of a BEGIN failed: {e}")))?
}

/// Commits a PostgreSQL write. When the answer to its COMMIT is lost with
/// the connection (a backend terminated while it flushed the commit, say),
/// asks on another connection whether the transaction landed: committed is
/// success, and the request answers as if nothing happened; aborted means
/// nothing was written, and the request may run again (see [`rerun`]);
/// anything else is unknown, and it may not.
async fn commit_postgres_write(
    tx: sqlx::Transaction<'static, Postgres>,
    pg: &Connections<Postgres>,
    xid: i64,
) -> Result<(), sqlx::Error> {
    let lost = match tx.commit().await {
        Err(err) if connection_lost(&err) => err,
        outcome => {
            rerun::note_write_commit();
            return outcome;
        }
    };
    match transaction_committed(pg, xid).await {
        Some(true) => {
            rerun::note_write_commit();
            tracing::info!(xid, "a COMMIT whose answer was lost had landed");
            Ok(())
        }
        Some(false) => Err(lost),
        None => {
            rerun::note_write_commit();
            Err(lost)
        }
    }
}

/// Whether PostgreSQL transaction `xid` committed (`txid_status`); `None`
/// when that cannot be told: the database is unreachable, or the
/// transaction's backend has not finished ending it within about 200 ms.
async fn transaction_committed(pg: &Connections<Postgres>, xid: i64) -> Option<bool> {
    for _ in 0..20 {
        let asked: Result<Option<String>, sqlx::Error> = async {
            let mut conn = pg.acquire().await?;
            sqlx::query_scalar("SELECT txid_status($1)")
                .bind(xid)
                .fetch_one(&mut *conn)
                .await
        }
        .await;
        let status = match asked {
            Ok(status) => status,
            // Another connection of the same wave, lost too: ask again,
            // on a connection opened since.
            Err(err) if connection_lost(&err) => {
                stale_connections::note_connection_lost();
                None
            }
            Err(_) => return None,
        };
        match status.as_deref() {
            Some("committed") => return Some(true),
            Some("aborted") => return Some(false),
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full disk is an outage (503 with Retry-After), not a server error.
    /// SQLite reports it as SQLITE_FULL once `max_page_count` is reached.
    #[tokio::test]
    async fn a_full_sqlite_database_is_unavailable_not_an_error() {
        let opts = SqliteConnectOptions::from_str("sqlite::memory:")
            .unwrap()
            .pragma("max_page_count", "8");
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (v TEXT)")
            .execute(&pool)
            .await
            .unwrap();
        let mut outcome = None;
        for _ in 0..1_000 {
            if let Err(e) = sqlx::query("INSERT INTO t VALUES (randomblob(1000))")
                .execute(&pool)
                .await
            {
                outcome = Some(StoreError::from(e));
                break;
            }
        }
        match outcome {
            Some(StoreError::Unavailable(_)) => {}
            other => panic!("expected Unavailable, got {other:?}"),
        }
    }
}
