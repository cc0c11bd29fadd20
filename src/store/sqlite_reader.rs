//! Reads on SQLite without leaving the request's thread.
//!
//! sqlx runs every SQLite connection on a worker thread of its own, so each
//! statement is a hand-off to that thread and back, and a pooled connection
//! costs one more when it goes back (sqlx pings it): on a busy core the
//! context switches cost more than the query. The credential check that
//! every authenticated request makes (one row by primary key or unique
//! index, a few microseconds in SQLite's page cache), and the statements
//! of a read outside a transaction (a list page: see `Db::autocommit`),
//! are cheaper run right here, on a plain connection, than sent away.
//!
//! A statement here blocks the calling async worker while it runs, so it
//! runs on a budget of SQLite virtual-machine steps ([`STEP_BUDGET`], one
//! to two milliseconds): one that would take longer is interrupted, and
//! the caller takes the pool's path instead, where the rest of the server
//! keeps running while it works. The connections are read-only
//! (`query_only`) and never wait for a lock (`busy_timeout` 0): a read that
//! cannot answer at once (a lock, an I/O error, a schema change, the
//! budget) returns `None`, and the caller takes the pool's path, which
//! waits, retries and maps errors as every other query does.
//!
//! Rows are mapped by [`ReaderRow`], which [`reader_row!`] implements for a
//! row struct by its field names, as sqlx's `FromRow` maps the same struct
//! on the pool.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};

use rusqlite::config::DbConfig;
use rusqlite::types::FromSql;
use rusqlite::{Connection, OpenFlags, Row, Statement};

use super::query::Arg;

/// Idle connections kept for reuse. A lookup holds one only while its
/// statement runs, so the number in use is at most the number of threads
/// running requests.
const MAX_IDLE: usize = 8;

/// SQLite's progress handler runs every this many virtual-machine steps...
const STEPS_PER_CHECK: i32 = 1_000;
/// ...and interrupts a statement at this many checks: 200,000 steps, one to
/// two milliseconds. A page of a list takes a few thousand; a statement
/// that scans (a search over a large team, a page far down a long list)
/// goes to the pool.
const STEP_BUDGET: u32 = 200;

pub struct SqliteReader {
    path: PathBuf,
    idle: Mutex<Vec<ReaderConnection>>,
}

/// A connection and the progress handler's count of its current statement.
struct ReaderConnection {
    conn: Connection,
    checks: Arc<AtomicU32>,
}

impl std::fmt::Debug for SqliteReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteReader")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SqliteReader {
    /// A reader of the database file at `path` (connections open lazily).
    pub fn new(path: PathBuf) -> Self {
        SqliteReader {
            path,
            idle: Mutex::new(Vec::new()),
        }
    }

    fn open(&self) -> rusqlite::Result<ReaderConnection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Read-write only so that it can share the WAL index with the pool;
        // `query_only` refuses any write.
        conn.execute_batch("PRAGMA query_only = 1; PRAGMA busy_timeout = 0;")?;
        // As on the pool's connections (see `super::stable_query_plans`).
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        let checks = Arc::new(AtomicU32::new(0));
        let counted = checks.clone();
        conn.progress_handler(
            STEPS_PER_CHECK,
            Some(move || counted.fetch_add(1, Ordering::Relaxed) >= STEP_BUDGET),
        )?;
        Ok(ReaderConnection { conn, checks })
    }

    /// Runs `sql`, whose `$N` placeholders take `args[N - 1]`, and maps
    /// every row. `None` when SQLite could not answer at once, or not
    /// within the step budget: the caller asks the pool.
    pub fn query_all<T: ReaderRow>(&self, sql: &str, args: &[Arg]) -> Option<Vec<T>> {
        self.with_connection(|conn| {
            let mut statement = conn.prepare_cached(sql)?;
            let columns = T::columns(&statement);
            for index in 1..=statement.parameter_count() {
                let arg = statement
                    .parameter_name(index)
                    .and_then(|name| name.strip_prefix('$')?.parse::<usize>().ok())
                    .and_then(|n| args.get(n.checked_sub(1)?))
                    .ok_or(rusqlite::Error::InvalidParameterCount(index, args.len()))?;
                statement.raw_bind_parameter(index, arg)?;
            }
            let mut rows = statement.raw_query();
            let mut mapped = Vec::new();
            while let Some(row) = rows.next()? {
                mapped.push(T::from_reader_row(row, &columns)?);
            }
            Ok(mapped)
        })
    }

    /// Runs `read` on an idle connection (or a new one) with a fresh step
    /// budget, and puts the connection back unless it failed.
    fn with_connection<T>(
        &self,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Option<T> {
        let taken = self.idle.lock().ok()?.pop();
        let reader = match taken {
            Some(reader) => reader,
            None => match self.open() {
                Ok(reader) => reader,
                Err(e) => {
                    tracing::debug!(error = %e, "SQLite reader cannot open a connection");
                    return None;
                }
            },
        };
        reader.checks.store(0, Ordering::Relaxed);
        let answer = read(&reader.conn);
        let keep = match &answer {
            Ok(_) => true,
            Err(e) if is_interrupted(e) => {
                tracing::debug!("SQLite reader out of budget: asking the pool");
                true
            }
            // The connection is dropped: a fresh one next time.
            Err(e) if is_busy(e) => {
                tracing::debug!(error = %e, "SQLite reader busy: asking the pool");
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, "SQLite reader failed: asking the pool");
                false
            }
        };
        if keep
            && let Ok(mut idle) = self.idle.lock()
            && idle.len() < MAX_IDLE
        {
            idle.push(reader);
        }
        answer.ok()
    }
}

/// A row type the reader can map (sqlx's `FromRow` maps it on the pool).
pub trait ReaderRow: Sized {
    /// Where the type's columns are in the statement's rows, looked up by
    /// name once per statement (empty for a tuple, read by position).
    fn columns(_statement: &Statement<'_>) -> Vec<Option<usize>> {
        Vec::new()
    }

    fn from_reader_row(row: &Row<'_>, columns: &[Option<usize>]) -> rusqlite::Result<Self>;
}

/// Implements [`ReaderRow`] for a struct from its fields, each read from
/// the column of its name: `reader_row!(DepartmentRow { id, name, .. })`.
/// A struct literal, so a field left out or misspelt does not compile. A
/// column the statement lacks is `None` for an `Option` field (as sqlx's
/// `#[sqlx(default)]`) and an error for any other.
#[macro_export]
macro_rules! reader_row {
    ($row:ident { $($field:ident),* $(,)? }) => {
        impl $crate::store::ReaderRow for $row {
            fn columns(statement: &rusqlite::Statement<'_>) -> Vec<Option<usize>> {
                [$(stringify!($field)),*]
                    .iter()
                    .enumerate()
                    .map(|(position, name)| {
                        $crate::store::sqlite_reader::column_index(statement, position, name)
                    })
                    .collect()
            }

            fn from_reader_row(
                row: &rusqlite::Row<'_>,
                columns: &[Option<usize>],
            ) -> rusqlite::Result<Self> {
                // Fields are evaluated in the order written, as `columns` lists them.
                let mut at = columns.iter().copied();
                Ok($row {
                    $($field: $crate::store::sqlite_reader::column(
                        row,
                        at.next().flatten(),
                        stringify!($field),
                    )?,)*
                })
            }
        }
    };
}

/// Where the column `name` is: at `position` when the statement selects
/// the columns in the struct's order (the usual case, one comparison), else
/// wherever it is (rusqlite compares it with every column's name).
pub fn column_index(statement: &Statement<'_>, position: usize, name: &str) -> Option<usize> {
    if statement.column_name(position).is_ok_and(|n| n == name) {
        return Some(position);
    }
    statement.column_index(name).ok()
}

/// The value of a column found at `index` (see [`reader_row!`]).
pub fn column<T: Column>(row: &Row<'_>, index: Option<usize>, name: &str) -> rusqlite::Result<T> {
    match index {
        Some(index) => row.get(index),
        None => T::when_missing().ok_or_else(|| rusqlite::Error::InvalidColumnName(name.into())),
    }
}

/// A column's value type: what a column the statement lacks stands for.
pub trait Column: FromSql {
    fn when_missing() -> Option<Self> {
        None
    }
}

impl Column for i64 {}
impl Column for bool {}
impl Column for String {}
impl<T: FromSql> Column for Option<T> {
    fn when_missing() -> Option<Self> {
        Some(None)
    }
}

impl<A: FromSql> ReaderRow for (A,) {
    fn from_reader_row(row: &Row<'_>, _: &[Option<usize>]) -> rusqlite::Result<Self> {
        Ok((row.get(0)?,))
    }
}

impl<A: FromSql, B: FromSql> ReaderRow for (A, B) {
    fn from_reader_row(row: &Row<'_>, _: &[Option<usize>]) -> rusqlite::Result<Self> {
        Ok((row.get(0)?, row.get(1)?))
    }
}

impl<A: FromSql, B: FromSql, C: FromSql> ReaderRow for (A, B, C) {
    fn from_reader_row(row: &Row<'_>, _: &[Option<usize>]) -> rusqlite::Result<Self> {
        Ok((row.get(0)?, row.get(1)?, row.get(2)?))
    }
}

/// Interrupted by the progress handler: over budget.
fn is_interrupted(err: &rusqlite::Error) -> bool {
    err.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
}

/// A lock held elsewhere: expected now and then, not worth a warning.
fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A folder removed when the test ends.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!("roster-reader-{}", uuid::Uuid::new_v4()));
            std::fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn temp_database(dir: &TempDir) -> (PathBuf, Connection) {
        let path = dir.0.join("test.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
                 INSERT INTO t VALUES (1, 'one');",
            )
            .unwrap();
        (path, writer)
    }

    fn name_of(reader: &SqliteReader, id: i64) -> Option<Option<String>> {
        let rows =
            reader.query_all::<(String,)>("SELECT name FROM t WHERE id = $1", &[Arg::Int(id)])?;
        Some(rows.into_iter().next().map(|(name,)| name))
    }

    #[test]
    fn every_lookup_sees_what_other_connections_committed() {
        let dir = TempDir::new();
        let (path, writer) = temp_database(&dir);
        let reader = SqliteReader::new(path);
        assert_eq!(name_of(&reader, 1), Some(Some("one".into())));
        assert_eq!(name_of(&reader, 2), Some(None));
        writer
            .execute_batch(
                "UPDATE t SET name = 'uno' WHERE id = 1; INSERT INTO t VALUES (2, 'two');",
            )
            .unwrap();
        // The same pooled connection, a new snapshot.
        assert_eq!(reader.idle.lock().unwrap().len(), 1);
        assert_eq!(name_of(&reader, 1), Some(Some("uno".into())));
        assert_eq!(name_of(&reader, 2), Some(Some("two".into())));
    }

    #[test]
    fn it_cannot_write() {
        let dir = TempDir::new();
        let (path, writer) = temp_database(&dir);
        let reader = SqliteReader::new(path);
        let wrote = reader.query_all::<(i64,)>("DELETE FROM t RETURNING id", &[]);
        assert_eq!(wrote, None);
        let left: i64 = writer
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(left, 1);
    }

    #[test]
    fn a_lock_it_would_wait_for_sends_the_caller_to_the_pool() {
        let dir = TempDir::new();
        let (path, writer) = temp_database(&dir);
        // An exclusive-mode writer keeps every other connection out, even
        // WAL readers: the reader must give up at once, not wait.
        writer
            .execute_batch(
                "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; UPDATE t SET name = 'x';",
            )
            .unwrap();
        let reader = SqliteReader::new(path);
        assert_eq!(name_of(&reader, 1), None);
        writer
            .execute_batch("COMMIT; PRAGMA locking_mode = NORMAL;")
            .unwrap();
        // Exclusive mode lets go of the lock at the next access.
        let _: i64 = writer
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(name_of(&reader, 1), Some(Some("x".into())));
    }

    #[test]
    fn a_file_that_is_not_a_database_is_no_answer() {
        let dir = TempDir::new();
        let path = dir.0.join("junk.db");
        std::fs::write(&path, vec![7u8; 8192]).unwrap();
        assert_eq!(name_of(&SqliteReader::new(path), 1), None);
    }

    #[derive(Debug, PartialEq)]
    struct Named {
        id: i64,
        name: String,
        note: Option<String>,
    }
    crate::reader_row!(Named { id, name, note });

    #[test]
    fn rows_are_mapped_by_column_name_with_dollar_placeholders() {
        let dir = TempDir::new();
        let (path, writer) = temp_database(&dir);
        writer
            .execute_batch("INSERT INTO t VALUES (2, 'two'), (3, 'three');")
            .unwrap();
        let reader = SqliteReader::new(path);
        // Placeholders out of order and one used twice bind by their number.
        let rows: Vec<Named> = reader
            .query_all(
                "SELECT name, NULL AS note, id FROM t WHERE id >= $2 AND id <= $1 AND $2 > 0 ORDER BY id",
                &[Arg::Int(3), Arg::Int(2)],
            )
            .unwrap();
        let names: Vec<&str> = rows.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["two", "three"]);
        assert_eq!(rows[0].id, 2);
        // A column the statement lacks: `None` for an optional field...
        let rows: Vec<Named> = reader
            .query_all(
                "SELECT id, name FROM t WHERE name = $1",
                &[Arg::Text("one".into())],
            )
            .unwrap();
        assert_eq!(
            rows,
            [Named {
                id: 1,
                name: "one".into(),
                note: None
            }]
        );
        // ...and no answer (the pool's path reports it) for any other.
        assert!(reader.query_all::<Named>("SELECT id FROM t", &[]).is_none());
        // A placeholder without an argument is no answer either.
        assert!(
            reader
                .query_all::<(i64,)>("SELECT id FROM t WHERE id = $2", &[Arg::Int(1)])
                .is_none()
        );
    }

    #[test]
    fn a_statement_over_its_step_budget_is_sent_to_the_pool() {
        let dir = TempDir::new();
        let (path, _writer) = temp_database(&dir);
        let reader = SqliteReader::new(path);
        // Counting a million generated rows takes millions of steps.
        let long = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000) \
                    SELECT COUNT(*) FROM n";
        assert_eq!(reader.query_all::<(i64,)>(long, &[]), None);
        // The same connection answers the next statement, on a fresh budget.
        let short = "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000) \
                     SELECT COUNT(*) FROM n";
        assert_eq!(reader.query_all::<(i64,)>(short, &[]), Some(vec![(1000,)]));
        assert_eq!(reader.idle.lock().unwrap().len(), 1);
        assert_eq!(reader.query_all::<(i64,)>(short, &[]), Some(vec![(1000,)]));
    }
}
