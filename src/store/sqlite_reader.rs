//! Point reads on SQLite without leaving the request's thread.
//!
//! sqlx runs every SQLite connection on a worker thread of its own, so each
//! statement is a hand-off to that thread and back: on a busy core the
//! context switches cost more than the query. The credential check that
//! every authenticated request makes (one row by primary key or unique
//! index, a few microseconds in SQLite's page cache) is cheaper run right
//! here, on a plain connection, than sent away.
//!
//! Only bounded lookups belong here: the calling async worker is blocked
//! while the statement runs. Anything that scans stays on the pool. The
//! connections are read-only (`query_only`) and never wait for a lock
//! (`busy_timeout` 0): a lookup that cannot answer at once (a lock, an I/O
//! error, a schema change) returns `None`, and the caller takes the pool's
//! path, which waits, retries and maps errors as every other query does.

use std::path::PathBuf;
use std::sync::Mutex;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, Params, Row};

/// Idle connections kept for reuse. A lookup holds one only while its
/// statement runs, so the number in use is at most the number of threads
/// running requests.
const MAX_IDLE: usize = 8;

pub struct SqliteReader {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
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

    fn open(&self) -> rusqlite::Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Read-write only so that it can share the WAL index with the pool;
        // `query_only` refuses any write.
        conn.execute_batch("PRAGMA query_only = 1; PRAGMA busy_timeout = 0;")?;
        // As on the pool's connections (see `super::stable_query_plans`).
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
        Ok(conn)
    }

    /// Runs `sql` (one row at most) and maps the row with `map`. `None`
    /// when SQLite could not answer at once: the caller asks the pool.
    pub fn query_row<T>(
        &self,
        sql: &str,
        params: impl Params,
        map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Option<Option<T>> {
        let taken = self.idle.lock().ok()?.pop();
        let conn = match taken {
            Some(conn) => conn,
            None => match self.open() {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::debug!(error = %e, "SQLite reader cannot open a connection");
                    return None;
                }
            },
        };
        let answer = Self::run(&conn, sql, params, map);
        match &answer {
            Ok(_) => {
                if let Ok(mut idle) = self.idle.lock()
                    && idle.len() < MAX_IDLE
                {
                    idle.push(conn);
                }
            }
            // The connection is dropped: a fresh one next time.
            Err(e) if is_busy(e) => {
                tracing::debug!(error = %e, "SQLite reader busy: asking the pool")
            }
            Err(e) => tracing::warn!(error = %e, "SQLite reader failed: asking the pool"),
        }
        answer.ok()
    }

    fn run<T>(
        conn: &Connection,
        sql: &str,
        params: impl Params,
        map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Option<T>> {
        let mut statement = conn.prepare_cached(sql)?;
        let mut rows = statement.query(params)?;
        match rows.next()? {
            Some(row) => Ok(Some(map(row)?)),
            None => Ok(None),
        }
    }
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
        reader.query_row("SELECT name FROM t WHERE id = $1", [id], |r| r.get(0))
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
        let wrote = reader.query_row("DELETE FROM t RETURNING id", [], |r| r.get::<_, i64>(0));
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
}
