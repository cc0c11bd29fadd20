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
//! A connection keeps its read transaction open between reads while a new
//! one would see the same: beginning and ending a transaction costs two
//! file-lock system calls and more, together more than the credential
//! check's statement. Whether anything was committed since the kept one
//! began is told by the WAL index header in shared memory, which every
//! commit of any connection or process rewrites, and which a new
//! transaction starts from ([`WalIndexHeader`]). A transaction is kept
//! for at most [`KEPT_SNAPSHOT_AGE`], and not while the WAL is due for a
//! checkpoint: a checkpoint cannot copy pages past a snapshot in use, and
//! a WAL never checkpointed in full never starts over.
//!
//! Rows are mapped by [`ReaderRow`], which [`reader_row!`] implements for a
//! row struct by its field names, as sqlx's `FromRow` maps the same struct
//! on the pool.

use std::any::TypeId;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::types::FromSql;
use rusqlite::{Connection, OpenFlags, Row, Statement};

use super::query::{Arg, Sql};
use super::{StoreError, StoreResult};

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

/// Compiled statements kept per connection. rusqlite keeps 16 by default,
/// fewer than the distinct statements a server runs (each list's orderings
/// and filters are statements of their own), and compiling one again
/// costs more than running it.
const STATEMENTS_KEPT: usize = 128;

/// How long a connection may keep a read transaction for further reads
/// (while nothing is committed). Long enough that a busy server begins a
/// transaction once per many requests; short enough that a checkpoint
/// waiting for readers to leave the WAL (`wal_checkpoint(RESTART)`, by a
/// backup tool, say) waits no longer than a request.
pub const KEPT_SNAPSHOT_AGE: Duration = Duration::from_millis(1);

/// Frames in the WAL at which SQLite checkpoints it after a commit (its
/// `wal_autocheckpoint` default, which Roster keeps): from there on,
/// readers keep no transaction, so that the checkpoint can finish.
const CHECKPOINT_FRAMES: u32 = 1_000;

pub struct SqliteReader {
    path: PathBuf,
    /// Boxed, as they are taken and given back: a snapshot carries its
    /// connection inside a request's future, which stays small.
    #[allow(clippy::vec_box)]
    idle: Mutex<Vec<Box<ReaderConnection>>>,
    /// Turns for statements of a snapshot that run over the budget on a
    /// blocking thread, as many as the pool has connections: long reads
    /// take no more threads and connections than on the pool.
    blocking: tokio::sync::Semaphore,
    /// How long such a statement waits for a turn before the read is
    /// unavailable (the pool's acquire timeout).
    blocking_wait: std::time::Duration,
    /// Statements finished on a blocking thread so far (for `/metrics`).
    long_reads: AtomicU64,
    /// How long a connection may keep a snapshot ([`KEPT_SNAPSHOT_AGE`]).
    kept_age: Duration,
}

/// A connection, the progress handler's count of its current statement
/// against the statement's limit, where each statement's columns are for
/// each row type read from it, and the read transaction it keeps.
struct ReaderConnection {
    conn: Connection,
    checks: Arc<AtomicU32>,
    limit: Arc<AtomicU32>,
    columns: RefCell<ColumnsBySql>,
    snapshot: Cell<Option<Snapshot>>,
}

/// A read transaction begun by the reader: the WAL index header it began
/// from, and when.
#[derive(Clone, Copy)]
struct Snapshot {
    header: WalIndexHeader,
    begun: Instant,
}

impl Snapshot {
    /// Whether a read now, when the header is `header`, would see what
    /// this transaction sees, and the transaction may be kept (until `age`).
    fn current(&self, header: &WalIndexHeader, age: Duration, now: Instant) -> bool {
        self.header == *header
            && now.saturating_duration_since(self.begun) < age
            && header.frames() < CHECKPOINT_FRAMES
    }
}

/// The WAL index header: the first 48 bytes of the shared memory beside a
/// database in WAL mode (the `-shm` file), as <https://sqlite.org/walformat.html>
/// documents them. A new read transaction starts from this copy; every
/// commit rewrites it (its change counter, frame count and checksum, at
/// the least) before it returns. The format is shared by every SQLite
/// version and process on the file, so it does not change.
#[derive(Clone, Copy, PartialEq, Eq)]
struct WalIndexHeader([u32; 12]);

impl WalIndexHeader {
    /// Frames in the WAL (`mxFrame`).
    fn frames(&self) -> u32 {
        self.0[4]
    }

    /// The header as `conn` sees it now, or `None` when it has no WAL
    /// index mapped (before its first read, or not in WAL mode).
    fn of(conn: &Connection) -> Option<WalIndexHeader> {
        use std::ffi::{c_int, c_void};
        use std::sync::atomic::AtomicU32;
        // A WAL index is mapped in pages of 32 KiB (`WALINDEX_PGSZ`).
        const PAGE: c_int = 32 * 1024;
        let mut file: *mut rusqlite::ffi::sqlite3_file = std::ptr::null_mut();
        let mut region: *mut c_void = std::ptr::null_mut();
        // SAFETY: `conn` is open, and this thread holds it for the call.
        // SQLITE_FCNTL_FILE_POINTER writes the main database's file handle
        // (or leaves it null). `xShmMap` without extending returns the
        // connection's mapping of the first WAL index page if it has one
        // (null if not), which stays mapped until the connection closes
        // or leaves WAL mode, neither of which can happen during this call.
        // Another connection may rewrite the header meanwhile: it is read
        // word by word with atomic loads, as SQLite itself reads it
        // without a lock, and a torn read only differs from any snapshot's.
        unsafe {
            let db = conn.handle();
            let rc = rusqlite::ffi::sqlite3_file_control(
                db,
                c"main".as_ptr(),
                rusqlite::ffi::SQLITE_FCNTL_FILE_POINTER,
                (&raw mut file).cast(),
            );
            if rc != rusqlite::ffi::SQLITE_OK || file.is_null() || (*file).pMethods.is_null() {
                return None;
            }
            let methods = &*(*file).pMethods;
            let map = methods.xShmMap.filter(|_| methods.iVersion >= 2)?;
            if map(file, 0, PAGE, 0, &raw mut region) != rusqlite::ffi::SQLITE_OK
                || region.is_null()
            {
                return None;
            }
            let words = region.cast::<u32>();
            Some(WalIndexHeader(std::array::from_fn(|i| {
                AtomicU32::from_ptr(words.add(i)).load(Ordering::Acquire)
            })))
        }
    }
}

/// [`ReaderRow::columns`] of each statement (by its text) for each row
/// type. Finding a row's fields by name compares each with the statement's
/// column names: for the credential check's user row, more time than
/// reading the row. Bounded by the statements kept, as they are.
type ColumnsBySql =
    HashMap<Box<str>, Vec<(TypeId, Arc<[Option<usize>]>)>, foldhash::fast::RandomState>;

impl ReaderConnection {
    /// Runs `sql`, whose `$N` placeholders take `args[N - 1]`, and maps
    /// every row, within the step budget.
    fn query_all<T: ReaderRow>(&self, sql: &str, args: &[Arg]) -> rusqlite::Result<Vec<T>> {
        self.checks.store(0, Ordering::Relaxed);
        let mut statement = self.conn.prepare_cached(sql)?;
        let columns = T::BY_NAME.then(|| self.columns_of::<T>(sql, &statement));
        let columns = columns.as_deref().unwrap_or_default();
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
            mapped.push(T::from_reader_row(row, columns)?);
        }
        Ok(mapped)
    }

    /// Where `T`'s fields are in the rows of `statement` (whose text is
    /// `sql`), found once per statement and type.
    fn columns_of<T: ReaderRow>(
        &self,
        sql: &str,
        statement: &Statement<'_>,
    ) -> Arc<[Option<usize>]> {
        let row_type = TypeId::of::<T>();
        let mut by_sql = self.columns.borrow_mut();
        if let Some((_, found)) = by_sql
            .get(sql)
            .and_then(|types| types.iter().find(|(t, _)| *t == row_type))
        {
            return found.clone();
        }
        let columns: Arc<[Option<usize>]> = T::columns(statement).into();
        if by_sql.len() >= STATEMENTS_KEPT {
            by_sql.clear();
        }
        by_sql
            .entry(sql.into())
            .or_default()
            .push((row_type, columns.clone()));
        columns
    }

    /// As [`Self::query_all`] with no step budget: for a thread that may block.
    fn query_all_unbudgeted<T: ReaderRow>(
        &self,
        sql: &str,
        args: &[Arg],
    ) -> rusqlite::Result<Vec<T>> {
        self.limit.store(u32::MAX, Ordering::Relaxed);
        let answer = self.query_all(sql, args);
        self.limit.store(STEP_BUDGET, Ordering::Relaxed);
        answer
    }

    /// Runs a statement without arguments or rows (BEGIN, ROLLBACK),
    /// compiled once per connection.
    fn run(&self, sql: &str) -> rusqlite::Result<()> {
        self.conn.prepare_cached(sql)?.raw_execute().map(|_| ())
    }

    /// Whether a transaction is open on the connection.
    fn in_transaction(&self) -> bool {
        !self.conn.is_autocommit()
    }

    /// Opens a read transaction for a new read, or keeps the one open when
    /// it still shows what a new one would ([`Snapshot::current`]).
    fn begin_read(&self, age: Duration) -> rusqlite::Result<()> {
        let now = Instant::now();
        // Read before BEGIN: a commit in between is seen by the transaction
        // and ends it at the next read, which is only early.
        let header = WalIndexHeader::of(&self.conn);
        match (self.snapshot.get(), header) {
            (Some(kept), Some(header))
                if self.in_transaction() && kept.current(&header, age, now) =>
            {
                return Ok(());
            }
            _ => self.end_read()?,
        }
        self.run("BEGIN")?;
        // Without a header (the connection's first read), nothing is kept.
        self.snapshot
            .set(header.map(|header| Snapshot { header, begun: now }));
        Ok(())
    }

    /// Ends the read transaction, if one is open.
    fn end_read(&self) -> rusqlite::Result<()> {
        self.snapshot.set(None);
        if self.in_transaction() {
            self.run("ROLLBACK")?;
        }
        Ok(())
    }

    /// Whether the connection may wait for reuse as it is: in no
    /// transaction, or in a read transaction of its own still current.
    fn keepable(&self, age: Duration, now: Instant) -> bool {
        if !self.in_transaction() {
            return true;
        }
        match (self.snapshot.get(), WalIndexHeader::of(&self.conn)) {
            (Some(kept), Some(header)) => kept.current(&header, age, now),
            _ => false,
        }
    }
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
        Self::with_blocking_limit(path, 4, Duration::from_secs(3))
    }

    /// A reader whose snapshots run at most `threads` statements over the
    /// budget at once, each waiting up to `wait` for its turn.
    pub fn with_blocking_limit(path: PathBuf, threads: usize, wait: Duration) -> Self {
        SqliteReader {
            path,
            idle: Mutex::new(Vec::new()),
            blocking: tokio::sync::Semaphore::new(threads.max(1)),
            blocking_wait: wait,
            long_reads: AtomicU64::new(0),
            kept_age: KEPT_SNAPSHOT_AGE,
        }
    }

    /// The reader, keeping a snapshot for at most `age` (instead of
    /// [`KEPT_SNAPSHOT_AGE`]). The test servers keep theirs for longer than
    /// any test: a read sees a commit only because the header told of it.
    pub fn keeping_snapshots_for(mut self, age: Duration) -> Self {
        self.kept_age = age;
        self
    }

    /// How many snapshot statements ran over the budget and finished on a
    /// blocking thread.
    pub fn long_reads(&self) -> u64 {
        self.long_reads.load(Ordering::Relaxed)
    }

    fn open(&self) -> rusqlite::Result<Box<ReaderConnection>> {
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
        let limit = Arc::new(AtomicU32::new(STEP_BUDGET));
        let (counted, limited) = (checks.clone(), limit.clone());
        conn.progress_handler(
            STEPS_PER_CHECK,
            Some(move || {
                counted.fetch_add(1, Ordering::Relaxed) >= limited.load(Ordering::Relaxed)
            }),
        )?;
        conn.set_prepared_statement_cache_capacity(STATEMENTS_KEPT);
        Ok(Box::new(ReaderConnection {
            conn,
            checks,
            limit,
            columns: RefCell::default(),
            snapshot: Cell::new(None),
        }))
    }

    /// Runs `sql`, whose `$N` placeholders take `args[N - 1]`, and maps
    /// every row. `None` when SQLite could not answer at once, or not
    /// within the step budget: the caller asks the pool.
    pub fn query_all<T: ReaderRow>(&self, sql: &str, args: &[Arg]) -> Option<Vec<T>> {
        let reader = self.take()?;
        if let Err(e) = reader.begin_read(self.kept_age) {
            tracing::debug!(error = %e, "SQLite reader cannot begin: asking the pool");
            return None;
        }
        match reader.query_all(sql, args) {
            Ok(rows) => {
                self.give_back(reader);
                Some(rows)
            }
            Err(e) => {
                if worth_keeping_after(&e) {
                    self.give_back(rolled_back(reader));
                }
                None
            }
        }
    }

    /// An idle connection, or a new one.
    fn take(&self) -> Option<Box<ReaderConnection>> {
        if let Some(reader) = self.idle.lock().ok()?.pop() {
            return Some(reader);
        }
        match self.open() {
            Ok(reader) => Some(reader),
            Err(e) => {
                tracing::debug!(error = %e, "SQLite reader cannot open a connection");
                None
            }
        }
    }

    /// Keeps a connection for reuse, with its read transaction while that
    /// is current, and ends the transactions that idle connections keep
    /// and that are no longer current: an idle snapshot must not hold a
    /// checkpoint back. (A connection in any other transaction is dropped.)
    fn give_back(&self, reader: Box<ReaderConnection>) {
        let (age, now) = (self.kept_age, Instant::now());
        let Ok(mut idle) = self.idle.lock() else {
            return;
        };
        end_stale(&mut idle, age, now);
        if !reader.keepable(age, now) && reader.end_read().is_err() {
            return;
        }
        if idle.len() < MAX_IDLE {
            idle.push(reader);
        }
    }

    /// Ends the read transactions that idle connections keep and that are
    /// no longer current: run now and then, so that a server without
    /// requests holds back no other process's checkpoint.
    pub fn end_stale_snapshots(&self) {
        if let Ok(mut idle) = self.idle.lock() {
            end_stale(&mut idle, self.kept_age, Instant::now());
        }
    }
}

/// Ends the read transactions of `idle` connections that are no longer
/// current (dropping a connection whose transaction will not end).
#[allow(clippy::vec_box)] // boxed as `SqliteReader::idle` keeps them
fn end_stale(idle: &mut Vec<Box<ReaderConnection>>, age: Duration, now: Instant) {
    idle.retain(|conn| conn.keepable(age, now) || conn.end_read().is_ok());
}

/// A read transaction on one reader connection, for a read of several
/// statements that must agree (a coach and their areas, a page of people
/// and its count): each statement runs on the request's thread and sees
/// the snapshot the first one opened, without the hand-offs to a pooled
/// connection's worker thread (see `Db::begin_read`).
///
/// Until a statement has answered, nothing is promised yet: a reader that
/// cannot answer at once (a lock, an error) gives way, and the caller runs
/// the whole read on the pool, which waits and retries as ever. After
/// that, every statement must run here to see the same snapshot: one over
/// the step budget goes on without it, in the same transaction, on a
/// blocking thread so the async worker keeps serving other requests.
pub struct ReadSnapshot {
    reader: Arc<SqliteReader>,
    conn: Option<Box<ReaderConnection>>,
    started: bool,
}

impl ReadSnapshot {
    pub fn new(reader: Arc<SqliteReader>) -> Self {
        ReadSnapshot {
            reader,
            conn: None,
            started: false,
        }
    }

    /// Whether a statement has answered, fixing the snapshot.
    pub fn started(&self) -> bool {
        self.started
    }

    /// Every row of `sql` in the snapshot. `Ok(None)` only before it has
    /// started, when the reader cannot answer: the caller asks the pool
    /// instead, for this statement and the rest of the read.
    pub async fn query_all<T: ReaderRow + Send + 'static>(
        &mut self,
        sql: &Sql,
    ) -> StoreResult<Option<Vec<T>>> {
        let conn = match self.conn.take() {
            Some(conn) => conn,
            None if self.started => {
                return Err(StoreError::Unavailable(
                    "the read's snapshot connection was lost".into(),
                ));
            }
            None => {
                let Some(conn) = self.reader.take() else {
                    return Ok(None);
                };
                if let Err(e) = conn.begin_read(self.reader.kept_age) {
                    tracing::debug!(error = %e, "SQLite reader cannot begin: asking the pool");
                    return Ok(None);
                }
                conn
            }
        };
        let (conn, answer) = match conn.query_all(&sql.text, &sql.args) {
            Err(e) if is_interrupted(&e) => {
                match Box::pin(without_budget(&self.reader, conn, sql)).await {
                    Ok(finished) => finished,
                    Err(_) if !self.started => return Ok(None),
                    Err(e) => return Err(e),
                }
            }
            answer => (conn, answer),
        };
        match answer {
            Ok(rows) => {
                self.started = true;
                self.conn = Some(conn);
                Ok(Some(rows))
            }
            Err(e) if !self.started => {
                if worth_keeping_after(&e) {
                    self.reader.give_back(rolled_back(conn));
                }
                Ok(None)
            }
            Err(e) => Err(store_error(e)),
        }
    }

    /// Gives the connection back for reuse, with its read transaction
    /// while that is current (see [`SqliteReader::give_back`]).
    pub fn finish(mut self) {
        if let Some(conn) = self.conn.take() {
            self.reader.give_back(conn);
        }
    }
}

impl Drop for ReadSnapshot {
    /// Not finished (an error on the way): the read transaction ends.
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.reader.give_back(rolled_back(conn));
        }
    }
}

/// Runs `sql` on `conn` with no step budget, on a blocking thread, in
/// `reader`'s turn. (The connection is dropped, with its snapshot, if it
/// cannot.)
async fn without_budget<T: ReaderRow + Send + 'static>(
    reader: &SqliteReader,
    conn: Box<ReaderConnection>,
    sql: &Sql,
) -> StoreResult<(Box<ReaderConnection>, rusqlite::Result<Vec<T>>)> {
    tracing::debug!("SQLite read over budget: finishing it on a blocking thread");
    let turn = tokio::time::timeout(reader.blocking_wait, reader.blocking.acquire())
        .await
        .map_err(|_| StoreError::Unavailable("no turn for a long read".into()))?
        .map_err(|e| StoreError::Other(e.to_string()))?;
    // Counted once it has its turn: a read refused one never ran here.
    reader.long_reads.fetch_add(1, Ordering::Relaxed);
    let (text, args) = (sql.text.clone(), sql.args.clone());
    let finished = tokio::task::spawn_blocking(move || {
        let answer = conn.query_all_unbudgeted(&text, &args);
        (conn, answer)
    })
    .await
    .map_err(|e| StoreError::Other(format!("SQLite read thread failed: {e}")));
    drop(turn);
    finished
}

/// `conn` with its read transaction ended (a read has nothing to commit).
/// Should that fail, the transaction stays open and `give_back` drops it.
fn rolled_back(conn: Box<ReaderConnection>) -> Box<ReaderConnection> {
    if let Err(e) = conn.end_read() {
        tracing::warn!(error = %e, "SQLite reader cannot end its read transaction");
    }
    conn
}

/// A failure inside a snapshot, for the caller to report.
fn store_error(e: rusqlite::Error) -> StoreError {
    if is_busy(&e) {
        StoreError::Unavailable(e.to_string())
    } else {
        StoreError::Other(e.to_string())
    }
}

/// Whether a connection is worth keeping after its statement failed with
/// `e`: only when the budget stopped it (a busy or broken connection is
/// dropped: a fresh one next time).
fn worth_keeping_after(e: &rusqlite::Error) -> bool {
    if is_interrupted(e) {
        tracing::debug!("SQLite reader out of budget: asking the pool");
        true
    } else if is_busy(e) {
        tracing::debug!(error = %e, "SQLite reader busy: asking the pool");
        false
    } else {
        tracing::warn!(error = %e, "SQLite reader failed: asking the pool");
        false
    }
}

/// A row type the reader can map (sqlx's `FromRow` maps it on the pool).
pub trait ReaderRow: Sized + 'static {
    /// Whether the type reads its columns by name (see `columns`), or,
    /// as a tuple, by position.
    const BY_NAME: bool = false;

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
            const BY_NAME: bool = true;

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

impl<A: FromSql + 'static> ReaderRow for (A,) {
    fn from_reader_row(row: &Row<'_>, _: &[Option<usize>]) -> rusqlite::Result<Self> {
        Ok((row.get(0)?,))
    }
}

impl<A: FromSql + 'static, B: FromSql + 'static> ReaderRow for (A, B) {
    fn from_reader_row(row: &Row<'_>, _: &[Option<usize>]) -> rusqlite::Result<Self> {
        Ok((row.get(0)?, row.get(1)?))
    }
}

impl<A: FromSql + 'static, B: FromSql + 'static, C: FromSql + 'static> ReaderRow for (A, B, C) {
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

    /// An exclusive-mode writer keeps every other connection out, even WAL
    /// readers (and sets every name to 'x').
    fn lock_out_readers(writer: &Connection) {
        writer
            .execute_batch(
                "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; UPDATE t SET name = 'x';",
            )
            .unwrap();
    }

    fn let_readers_in(writer: &Connection) {
        writer
            .execute_batch("COMMIT; PRAGMA locking_mode = NORMAL;")
            .unwrap();
        // Exclusive mode lets go of the lock at the next access.
        let _: i64 = writer
            .query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0))
            .unwrap();
    }

    fn name_of(reader: &SqliteReader, id: i64) -> Option<Option<String>> {
        let rows =
            reader.query_all::<(String,)>("SELECT name FROM t WHERE id = $1", &[Arg::Int(id)])?;
        Some(rows.into_iter().next().map(|(name,)| name))
    }

    /// Whether the one idle connection keeps a read transaction.
    fn keeps_a_snapshot(reader: &SqliteReader) -> bool {
        let idle = reader.idle.lock().unwrap();
        assert_eq!(idle.len(), 1, "one connection");
        idle[0].in_transaction()
    }

    /// Kept transactions are ended by commits, not by their age: the
    /// reader here keeps them for an hour.
    #[test]
    fn every_lookup_sees_what_other_connections_committed() {
        let dir = TempDir::new();
        let (path, writer) = temp_database(&dir);
        let reader = SqliteReader::new(path).keeping_snapshots_for(Duration::from_secs(3600));
        assert_eq!(name_of(&reader, 1), Some(Some("one".into())));
        assert_eq!(name_of(&reader, 2), Some(None));
        // The connection went back keeping its snapshot...
        assert!(keeps_a_snapshot(&reader));
        assert_eq!(name_of(&reader, 1), Some(Some("one".into())));
        writer
            .execute_batch(
                "UPDATE t SET name = 'uno' WHERE id = 1; INSERT INTO t VALUES (2, 'two');",
            )
            .unwrap();
        // ...which the commit ended: the same connection, a new snapshot.
        assert_eq!(name_of(&reader, 1), Some(Some("uno".into())));
        assert_eq!(name_of(&reader, 2), Some(Some("two".into())));
        assert!(keeps_a_snapshot(&reader));
        // Any commit ends it, whatever it wrote.
        writer
            .execute_batch("INSERT INTO t VALUES (3, 'three')")
            .unwrap();
        assert_eq!(name_of(&reader, 3), Some(Some("three".into())));
    }

    #[test]
    fn a_snapshot_left_idle_past_its_time_is_ended() {
        let dir = TempDir::new();
        let (path, _writer) = temp_database(&dir);
        let reader = SqliteReader::new(path);
        assert_eq!(name_of(&reader, 1), Some(Some("one".into())));
        assert!(keeps_a_snapshot(&reader));
        std::thread::sleep(KEPT_SNAPSHOT_AGE * 2);
        reader.end_stale_snapshots();
        assert!(!keeps_a_snapshot(&reader));
    }

    /// Kept snapshots must not hold checkpoints back: a checkpoint cannot
    /// copy pages past the oldest snapshot in use, and a WAL that is never
    /// checkpointed in full never starts over, so it grows with every
    /// write. Here lookups run between commits of about 10 pages each, 500
    /// commits in all: the WAL must start over near the checkpoint size.
    #[test]
    fn kept_snapshots_let_the_wal_be_checkpointed_and_start_over() {
        let dir = TempDir::new();
        let (path, writer) = temp_database(&dir);
        let reader =
            SqliteReader::new(path.clone()).keeping_snapshots_for(Duration::from_secs(3600));
        writer
            .execute_batch("CREATE TABLE blobs (id INTEGER PRIMARY KEY, b BLOB NOT NULL)")
            .unwrap();
        let commit = "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10) \
                      INSERT INTO blobs (b) SELECT randomblob(3500) FROM n; COMMIT;";
        for _ in 0..500 {
            writer.execute_batch(commit).unwrap();
            assert_eq!(name_of(&reader, 1), Some(Some("one".into())));
        }
        let page: i64 = writer
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        let wal = std::fs::metadata(path.with_extension("db-wal"))
            .unwrap()
            .len();
        let frames = wal / (page as u64 + 24);
        let limit = 2 * u64::from(CHECKPOINT_FRAMES);
        assert!(frames < limit, "the WAL grew to {frames} frames");
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
        lock_out_readers(&writer);
        let reader = SqliteReader::new(path);
        assert_eq!(name_of(&reader, 1), None);
        let_readers_in(&writer);
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

    /// The fields of `Named` in another order, and one of them missing.
    #[derive(Debug, PartialEq)]
    struct NameFirst {
        name: String,
        id: i64,
    }
    crate::reader_row!(NameFirst { name, id });

    /// Where a row type's fields are is kept per statement and per type:
    /// the same statement read again, and read as another type whose
    /// fields sit elsewhere, maps each from its own columns.
    #[test]
    fn kept_column_positions_belong_to_one_statement_and_one_row_type() {
        let dir = TempDir::new();
        let (path, _writer) = temp_database(&dir);
        let reader = SqliteReader::new(path);
        let sql = "SELECT id, name, 'n' AS note FROM t";
        let other = "SELECT name, id FROM t";
        for _ in 0..2 {
            let named: Vec<Named> = reader.query_all(sql, &[]).unwrap();
            assert_eq!(
                named,
                [Named {
                    id: 1,
                    name: "one".into(),
                    note: Some("n".into())
                }]
            );
            let name_first: Vec<NameFirst> = reader.query_all(sql, &[]).unwrap();
            let expected = [NameFirst {
                name: "one".into(),
                id: 1,
            }];
            assert_eq!(name_first, expected);
            let name_first: Vec<NameFirst> = reader.query_all(other, &[]).unwrap();
            assert_eq!(name_first, expected);
            let named: Vec<Named> = reader.query_all(other, &[]).unwrap();
            assert_eq!(named[0].note, None);
        }
        assert_eq!(reader.idle.lock().unwrap().len(), 1, "one connection");
    }

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

    fn names_sql(id: i64) -> Sql {
        Sql::with_args("SELECT name FROM t WHERE id = $1", vec![Arg::Int(id)])
    }

    /// How many connections wait for reuse (none may hold a transaction
    /// other than a snapshot of its own that is still current).
    fn idle_connections(reader: &SqliteReader) -> usize {
        let idle = reader.idle.lock().unwrap();
        let now = Instant::now();
        assert!(
            idle.iter().all(|c| c.keepable(reader.kept_age, now)),
            "an idle connection holds a transaction"
        );
        idle.len()
    }

    async fn snapshot_name(snapshot: &mut ReadSnapshot, id: i64) -> Option<Vec<(String,)>> {
        snapshot.query_all(&names_sql(id)).await.unwrap()
    }

    #[tokio::test]
    async fn a_snapshot_sees_one_state_of_the_database_until_it_ends() {
        let dir = TempDir::new();
        let (path, writer) = temp_database(&dir);
        let reader = Arc::new(SqliteReader::new(path));
        let mut snapshot = ReadSnapshot::new(reader.clone());
        assert!(!snapshot.started());
        assert_eq!(
            snapshot_name(&mut snapshot, 1).await,
            Some(vec![("one".into(),)])
        );
        assert!(snapshot.started());
        writer
            .execute_batch("UPDATE t SET name = 'uno' WHERE id = 1")
            .unwrap();
        // Still the state the first statement saw...
        assert_eq!(
            snapshot_name(&mut snapshot, 1).await,
            Some(vec![("one".into(),)])
        );
        // ...while a lookup outside it sees the write.
        assert_eq!(name_of(&reader, 1), Some(Some("uno".into())));
        snapshot.finish();
        // The connection went back without its transaction, and the next
        // snapshot sees the write.
        assert_eq!(idle_connections(&reader), 2);
        let mut next = ReadSnapshot::new(reader.clone());
        assert_eq!(
            snapshot_name(&mut next, 1).await,
            Some(vec![("uno".into(),)])
        );
        // A snapshot dropped without `finish` (an error on the way) also
        // ends its transaction before its connection is reused.
        drop(next);
        assert_eq!(idle_connections(&reader), 2);
    }

    #[tokio::test]
    async fn a_statement_over_budget_in_a_snapshot_finishes_in_the_same_snapshot() {
        let dir = TempDir::new();
        let (path, writer) = temp_database(&dir);
        let reader = Arc::new(SqliteReader::new(path));
        let mut snapshot = ReadSnapshot::new(reader.clone());
        assert_eq!(
            snapshot_name(&mut snapshot, 1).await,
            Some(vec![("one".into(),)])
        );
        writer
            .execute_batch("UPDATE t SET name = 'uno' WHERE id = 1")
            .unwrap();
        // Millions of steps, then the row as the snapshot has it.
        let long = Sql::with_args(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1000000) \
             SELECT (SELECT COUNT(*) FROM n), (SELECT name FROM t WHERE id = $1)",
            vec![Arg::Int(1)],
        );
        let rows: Option<Vec<(i64, String)>> = snapshot.query_all(&long).await.unwrap();
        assert_eq!(rows, Some(vec![(1_000_000, "one".into())]));
        // The budget is back for the next statement on the connection.
        let conn = snapshot.conn.as_ref().unwrap();
        assert_eq!(conn.limit.load(Ordering::Relaxed), STEP_BUDGET);
        assert_eq!(
            snapshot_name(&mut snapshot, 1).await,
            Some(vec![("one".into(),)])
        );
    }

    #[tokio::test]
    async fn a_snapshot_that_cannot_start_sends_the_read_to_the_pool() {
        let dir = TempDir::new();
        let (path, writer) = temp_database(&dir);
        lock_out_readers(&writer);
        let reader = Arc::new(SqliteReader::new(path));
        let mut snapshot = ReadSnapshot::new(reader.clone());
        assert_eq!(snapshot_name(&mut snapshot, 1).await, None);
        assert!(!snapshot.started());
        // A statement it cannot run (no such table) gives way too, before
        // the snapshot has started...
        let_readers_in(&writer);
        let missing = Sql::with_args("SELECT name FROM nowhere", vec![]);
        let rows: Option<Vec<(String,)>> = snapshot.query_all(&missing).await.unwrap();
        assert_eq!(rows, None);
        // ...and is an error once it has.
        assert_eq!(
            snapshot_name(&mut snapshot, 1).await,
            Some(vec![("x".into(),)])
        );
        let failed = snapshot.query_all::<(String,)>(&missing).await;
        assert!(matches!(failed, Err(StoreError::Other(_))), "{failed:?}");
    }
}
