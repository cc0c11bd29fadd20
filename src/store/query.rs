//! Dynamic SQL for list endpoints (filters, search, ordering, paging): the
//! text is assembled from fixed fragments chosen by whitelisted enums, and
//! every user value is a bound `$N` argument, but for PostgreSQL's `LIMIT`
//! and `OFFSET`: integers, written out (see [`Sql::limit`]).

use serde::de::DeserializeOwned;

use super::{ReaderRow, StoreError, StoreResult, Tx, on_tx};

/// A value bound to a `$N` placeholder.
#[derive(Debug, Clone)]
pub enum Arg {
    Int(i64),
    Text(String),
    Bool(bool),
    Null,
}

impl rusqlite::ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, Value, ValueRef};
        Ok(match self {
            Arg::Int(v) => ToSqlOutput::Owned(Value::Integer(*v)),
            Arg::Text(v) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Arg::Bool(v) => ToSqlOutput::Owned(Value::Integer(i64::from(*v))),
            Arg::Null => ToSqlOutput::Owned(Value::Null),
        })
    }
}

/// SQL text and its arguments, in placeholder order.
#[derive(Debug, Default, Clone)]
pub struct Sql {
    pub text: String,
    pub args: Vec<Arg>,
}

impl Sql {
    pub fn new(text: &str) -> Sql {
        Sql {
            text: text.to_string(),
            args: Vec::new(),
        }
    }

    /// `text` with its `$N` placeholders written, and their arguments.
    pub fn with_args(text: impl Into<String>, args: Vec<Arg>) -> Sql {
        Sql {
            text: text.into(),
            args,
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// Appends `($1, $2, ...)` binding each value, for `x IN (...)`. An empty
    /// list renders `(NULL)`, which matches nothing.
    pub fn bind_list(&mut self, args: impl IntoIterator<Item = Arg>) -> &mut Self {
        self.text.push('(');
        let mut empty = true;
        for arg in args {
            if !empty {
                self.text.push_str(", ");
            }
            self.bind(arg);
            empty = false;
        }
        self.text.push_str(if empty { "NULL)" } else { ")" });
        self
    }

    /// Appends ` LIMIT n OFFSET m` (see [`Sql::limit`]).
    pub fn limit_offset(&mut self, limit: i64, offset: i64, pg: bool) -> &mut Self {
        self.limit(limit, pg);
        if pg {
            self.push(&format!(" OFFSET {offset}"))
        } else {
            self.push(" OFFSET ").bind(Arg::Int(offset))
        }
    }

    /// Appends ` LIMIT n`: bound on SQLite, written out on PostgreSQL. A
    /// prepared statement's generic plan cannot see a bound `LIMIT` or
    /// `OFFSET` and assumes a tenth of the rows; for a page of the team
    /// that plan is a scan of every user, so PostgreSQL planned the page
    /// afresh on every run (0.2 ms, against 0.08 ms to run it). Written
    /// out, the numbers reach the generic plan, and a page asked for again
    /// is planned once per connection. They are integers, never text.
    pub fn limit(&mut self, limit: i64, pg: bool) -> &mut Self {
        if pg {
            self.push(&format!(" LIMIT {limit}"))
        } else {
            self.push(" LIMIT ").bind(Arg::Int(limit))
        }
    }

    /// Binds `arg` and appends its placeholder.
    pub fn bind(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        let n = self.args.len();
        // Written in place: `format!` would allocate a string per argument.
        let _ = std::fmt::Write::write_fmt(&mut self.text, format_args!("${n}"));
        self
    }
}

/// Escapes `%`, `_` and `\` for `LIKE ... ESCAPE '\'` and wraps the term
/// for a substring match.
pub fn like_pattern(term: &str) -> String {
    let mut out = String::with_capacity(term.len() + 2);
    out.push('%');
    for c in term.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// ` ORDER BY a, b DESC, <id>` with the id tiebreaker running the way the
/// last field runs (so one index scan serves it).
pub fn order_by<S: AsRef<str>>(fields: impl Iterator<Item = (S, bool)>, id: &str) -> String {
    let mut parts = Vec::new();
    let mut last_desc = false;
    for (column, desc) in fields {
        parts.push(format!(
            "{}{}",
            column.as_ref(),
            if desc { " DESC" } else { "" }
        ));
        last_desc = desc;
    }
    if !parts.iter().any(|p| p == id || p == &format!("{id} DESC")) {
        parts.push(format!("{id}{}", if last_desc { " DESC" } else { "" }));
    }
    format!(" ORDER BY {}", parts.join(", "))
}

macro_rules! bind_all {
    ($query:expr, $args:expr) => {{
        let mut q = $query;
        for arg in $args {
            q = match arg {
                Arg::Int(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.clone()),
                Arg::Bool(v) => q.bind(*v),
                Arg::Null => q.bind(None::<i64>),
            };
        }
        q
    }};
}

/// A row type every path can map: SQLite's reader, and both drivers.
pub trait FetchedRow:
    ReaderRow
    + Send
    + Unpin
    + 'static
    + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
    + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
{
}

impl<T> FetchedRow for T where
    T: ReaderRow
        + Send
        + Unpin
        + 'static
        + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>
{
}

// ------------------------------------------------- children read with a row

/// A row and what it holds of other tables, read in the same statement:
/// `T` from the row's columns, `R` from its last column, `related`, a JSON
/// object (written by [`related_column`]). One statement is one snapshot
/// on either backend, so reading an object with its children needs no
/// transaction; on PostgreSQL that is one round trip, not one a table
/// plus BEGIN and COMMIT.
#[derive(Debug, Clone)]
pub struct WithRelated<T, R> {
    pub row: T,
    pub related: R,
}

/// The name of the column [`WithRelated`] reads `R` from.
pub const RELATED: &str = "related";

impl<T: ReaderRow, R: DeserializeOwned + 'static> ReaderRow for WithRelated<T, R> {
    const BY_NAME: bool = true;

    fn columns(statement: &rusqlite::Statement<'_>) -> Vec<Option<usize>> {
        let mut columns = if T::BY_NAME {
            T::columns(statement)
        } else {
            Vec::new()
        };
        let last = statement.column_count().saturating_sub(1);
        columns.push(super::sqlite_reader::column_index(statement, last, RELATED));
        columns
    }

    fn from_reader_row(
        row: &rusqlite::Row<'_>,
        columns: &[Option<usize>],
    ) -> rusqlite::Result<Self> {
        let (at, own) = match columns.split_last() {
            Some((Some(at), own)) => (*at, own),
            _ => return Err(rusqlite::Error::InvalidColumnName(RELATED.into())),
        };
        let related = serde_json::from_str(row.get_ref(at)?.as_str()?).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(at, rusqlite::types::Type::Text, e.into())
        })?;
        Ok(WithRelated {
            row: T::from_reader_row(row, own)?,
            related,
        })
    }
}

impl<'r, Q, T, R> sqlx::FromRow<'r, Q> for WithRelated<T, R>
where
    Q: sqlx::Row,
    T: sqlx::FromRow<'r, Q>,
    R: DeserializeOwned,
    &'static str: sqlx::ColumnIndex<Q>,
    &'r str: sqlx::Decode<'r, Q::Database> + sqlx::Type<Q::Database>,
{
    fn from_row(row: &'r Q) -> sqlx::Result<Self> {
        let text: &'r str = row.try_get(RELATED)?;
        let related = serde_json::from_str(text).map_err(|e| sqlx::Error::ColumnDecode {
            index: RELATED.into(),
            source: e.into(),
        })?;
        Ok(WithRelated {
            row: T::from_row(row)?,
            related,
        })
    }
}

/// A JSON object of `fields` (key, SQL expression), one a row.
pub fn json_object(pg: bool, fields: &[(&str, &str)]) -> String {
    let mut out = String::from(if pg {
        "json_build_object("
    } else {
        "json_object("
    });
    for (i, (key, expression)) in fields.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&format!("'{key}', {expression}"));
    }
    out.push(')');
    out
}

/// A scalar subquery: `element` of each row of `from` (tables and a WHERE
/// that may name the outer statement's), in `order`, as a JSON array;
/// `[]` when there is none.
pub fn json_array(pg: bool, element: &str, from: &str, order: &str) -> String {
    if pg {
        format!("COALESCE((SELECT json_agg({element} ORDER BY {order}) FROM {from}), '[]')")
    } else {
        // json(): the array is JSON, not text, inside the object around it.
        format!("json((SELECT json_group_array({element} ORDER BY {order}) FROM {from}))")
    }
}

/// The `related` column [`WithRelated`] reads: a JSON object of
/// `members` (key, JSON from [`json_array`]), as text. It goes last.
pub fn related_column(pg: bool, members: &[(&str, &str)]) -> String {
    let object = json_object(pg, members);
    if pg {
        format!("{object}::text AS {RELATED}")
    } else {
        format!("{object} AS {RELATED}")
    }
}

/// Every row of `sql`. A statement outside a transaction, or in a read
/// snapshot, on SQLite goes to the [`super::SqliteReader`] first (see
/// [`super::Db::autocommit`] and [`super::Db::begin_read`]).
pub async fn fetch_all<T: FetchedRow>(tx: &mut Tx, sql: &Sql) -> StoreResult<Vec<T>> {
    if let Some(rows) = tx.read_here(sql).await? {
        return Ok(rows);
    }
    // Boxed: the drivers' futures are large, and every caller's future
    // (a request's, to the top) would carry them even when the reader
    // answers, and be copied at each move.
    Box::pin(fetch_all_on_connection(tx, sql)).await
}

async fn fetch_all_on_connection<T>(tx: &mut Tx, sql: &Sql) -> StoreResult<Vec<T>>
where
    T: Send
        + Unpin
        + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
        + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
{
    let text = sqlx::AssertSqlSafe(sql.text.clone());
    Ok(on_tx!(tx, |c| bind_all!(
        sqlx::query_as::<_, T>(text),
        &sql.args
    )
    .fetch_all(c)
    .await?))
}

/// The first row of `sql`, if any, as [`fetch_all`].
pub async fn fetch_optional<T: FetchedRow>(tx: &mut Tx, sql: &Sql) -> StoreResult<Option<T>> {
    Ok(fetch_all(tx, sql).await?.into_iter().next())
}

pub async fn execute(tx: &mut Tx, sql: &Sql) -> StoreResult<u64> {
    let text = sqlx::AssertSqlSafe(sql.text.clone());
    Ok(on_tx!(tx, |c| bind_all!(sqlx::query(text), &sql.args)
        .execute(c)
        .await?
        .rows_affected()))
}

/// The one integer `sql` answers (a count, a version), as [`fetch_all`].
pub async fn fetch_int(tx: &mut Tx, sql: &Sql) -> StoreResult<i64> {
    if let Some(rows) = tx.read_here::<(i64,)>(sql).await? {
        return match rows.first() {
            Some((n,)) => Ok(*n),
            None => Err(StoreError::Other("no row where one integer was due".into())),
        };
    }
    Box::pin(fetch_int_on_connection(tx, sql)).await
}

async fn fetch_int_on_connection(tx: &mut Tx, sql: &Sql) -> StoreResult<i64> {
    let text = sqlx::AssertSqlSafe(sql.text.clone());
    Ok(on_tx!(tx, |c| bind_all!(
        sqlx::query_scalar::<_, i64>(text),
        &sql.args
    )
    .fetch_one(c)
    .await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SQLite side of the JSON helpers (PostgreSQL's is covered by
    /// the API tests, whose coach, profile and client reads use them).
    #[test]
    fn related_rows_come_back_in_order_escaped_and_empty_as_a_list() {
        #[derive(serde::Deserialize)]
        struct Child {
            id: i64,
            label: String,
        }
        #[derive(serde::Deserialize)]
        struct Children {
            children: Vec<Child>,
        }
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT NOT NULL);
             CREATE TABLE c (id INTEGER PRIMARY KEY, p_id INTEGER NOT NULL, label TEXT NOT NULL);
             INSERT INTO p VALUES (1, 'one'), (2, 'two'), (3, 'none');
             INSERT INTO c VALUES (3, 1, 'say \"hi\"'), (1, 1, 'a'), (2, 2, 'x');",
        )
        .unwrap();
        let children = json_array(
            false,
            &json_object(false, &[("id", "c.id"), ("label", "c.label")]),
            "c WHERE c.p_id = p.id",
            "c.id DESC",
        );
        let related = related_column(false, &[("children", &children)]);
        let sql = format!("SELECT p.id, p.name, {related} FROM p ORDER BY p.id");
        let mut statement = conn.prepare(&sql).unwrap();
        let columns = WithRelated::<(i64, String), Children>::columns(&statement);
        let rows: Vec<WithRelated<(i64, String), Children>> = statement
            .query_map([], |row| WithRelated::from_reader_row(row, &columns))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let seen: Vec<(i64, Vec<(i64, &str)>)> = rows
            .iter()
            .map(|r| {
                let children = r.related.children.iter();
                (
                    r.row.0,
                    children.map(|c| (c.id, c.label.as_str())).collect(),
                )
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (1, vec![(3, "say \"hi\""), (1, "a")]),
                (2, vec![(2, "x")]),
                (3, vec![]),
            ]
        );
    }

    #[test]
    fn placeholders_number_in_order_and_like_is_escaped() {
        let mut sql = Sql::new("SELECT 1 WHERE a = ");
        sql.bind(Arg::Int(1))
            .push(" AND b LIKE ")
            .bind(Arg::Text(like_pattern("50%_a\\b")));
        assert_eq!(sql.text, "SELECT 1 WHERE a = $1 AND b LIKE $2");
        assert!(matches!(&sql.args[1], Arg::Text(t) if t == "%50\\%\\_a\\\\b%"));
        let mut list = Sql::new("x IN ");
        list.bind_list([Arg::Int(1), Arg::Int(2)])
            .push(" AND y IN ")
            .bind_list([]);
        assert_eq!(list.text, "x IN ($1, $2) AND y IN (NULL)");
    }
}
