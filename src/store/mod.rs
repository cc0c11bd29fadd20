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
pub mod team;
pub mod users;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool};

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
                let busy = (sqlite_code
                    && code
                        .parse::<i64>()
                        .is_ok_and(|c| c & 0xff == 5 || c & 0xff == 6))
                    || code.starts_with("08")
                    || code == "53300"
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

pub type StoreResult<T> = Result<T, StoreError>;

/// A connection pool of either backend.
#[derive(Clone, Debug)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// One open transaction. Every request runs in exactly one of these.
pub enum Tx {
    Sqlite(sqlx::Transaction<'static, Sqlite>),
    Postgres(sqlx::Transaction<'static, Postgres>),
}

/// Runs `$body` with `$conn` bound to the transaction's connection, once per
/// backend. The body must be valid for both drivers.
#[macro_export]
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite(t) => {
                let $conn = &mut **t;
                $body
            }
            $crate::store::Tx::Postgres(t) => {
                let $conn = &mut **t;
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
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Db> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let opts =
                PgConnectOptions::from_str(url).map_err(|e| StoreError::Other(e.to_string()))?;
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(opts)
                .await?;
            Ok(Db::Postgres(pool))
        } else if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::Other(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5))
                // 8 MiB of page cache per connection (the default is 2 MiB):
                // hot index pages stay in memory while the whole pool stays
                // well under 100 MiB; the OS page cache holds the rest.
                .pragma("cache_size", "-8192")
                // Gathers planner statistics when they are missing or stale
                // (SQLite's advice for each new connection): without them the
                // planner can prefer a covering index that scans the whole
                // organisation over a selective (organisation, role) search.
                .pragma("optimize", "0x10002");
            let pool = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(5))
                .connect_with(opts)
                .await?;
            Ok(Db::Sqlite(pool))
        } else {
            Err(StoreError::Other(format!(
                "unsupported DATABASE_URL {url:?}: expected sqlite:// or postgres://"
            )))
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Db::Sqlite(_) => "sqlite",
            Db::Postgres(_) => "postgres",
        }
    }

    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match self {
            Db::Sqlite(pool) => SQLITE_MIGRATIONS.run(pool).await,
            Db::Postgres(pool) => POSTGRES_MIGRATIONS.run(pool).await,
        }
    }

    /// A transaction for reading (and writing, on PostgreSQL).
    pub async fn begin(&self) -> StoreResult<Tx> {
        Ok(match self {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin().await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// A transaction that will write. On SQLite it takes the write lock up
    /// front (`BEGIN IMMEDIATE`), so it waits on the busy timeout instead of
    /// failing when a deferred transaction tries to upgrade its lock.
    pub async fn begin_write(&self) -> StoreResult<Tx> {
        Ok(match self {
            Db::Sqlite(pool) => Tx::Sqlite(pool.begin_with("BEGIN IMMEDIATE").await?),
            Db::Postgres(pool) => Tx::Postgres(pool.begin().await?),
        })
    }

    /// Refreshes planner statistics that have gone stale (SQLite's
    /// `PRAGMA optimize`; PostgreSQL's autovacuum does this itself).
    pub async fn optimize(&self) -> StoreResult<()> {
        if let Db::Sqlite(pool) = self {
            sqlx::query("PRAGMA optimize").execute(pool).await?;
        }
        Ok(())
    }

    /// Checks that the database answers (for `/readyz`).
    pub async fn ping(&self) -> StoreResult<()> {
        match self {
            Db::Sqlite(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ())?,
            Db::Postgres(pool) => sqlx::query("SELECT 1").execute(pool).await.map(|_| ())?,
        }
        Ok(())
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(pool) => pool.close().await,
            Db::Postgres(pool) => pool.close().await,
        }
    }
}

impl Tx {
    pub fn is_postgres(&self) -> bool {
        matches!(self, Tx::Postgres(_))
    }

    pub async fn commit(self) -> StoreResult<()> {
        match self {
            Tx::Sqlite(t) => t.commit().await?,
            Tx::Postgres(t) => t.commit().await?,
        }
        Ok(())
    }
}
