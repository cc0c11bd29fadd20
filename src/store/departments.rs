//! Departments of an organisation. Every function takes the organisation
//! id and filters by it: another organisation's rows do not exist here.

use super::query::{self, Arg, Sql, like_pattern};
use super::{StoreResult, Tx, on_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DepartmentRow {
    pub id: i64,
    pub organization_id: i64,
    pub name: String,
    pub added_by: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// How many departments the list matches (pages of [`list`] only).
    #[sqlx(default)]
    pub total: Option<i64>,
}
crate::reader_row!(DepartmentRow {
    id,
    organization_id,
    name,
    added_by,
    created_at,
    updated_at,
    total
});

const COLUMNS: &str = "id, organization_id, name, added_by, created_at, updated_at";

/// The fields a department list can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DepartmentOrder {
    Id,
    Name,
    CreatedAt,
    UpdatedAt,
}

impl DepartmentOrder {
    fn column(self, pg: bool) -> &'static str {
        match (self, pg) {
            (DepartmentOrder::Id, _) => "id",
            (DepartmentOrder::Name, false) => "name",
            (DepartmentOrder::Name, true) => "name COLLATE \"C\"",
            (DepartmentOrder::CreatedAt, _) => "created_at",
            (DepartmentOrder::UpdatedAt, _) => "updated_at",
        }
    }
}

pub async fn insert(
    tx: &mut Tx,
    org: i64,
    name: &str,
    name_key: &str,
    added_by: i64,
    now: i64,
) -> StoreResult<DepartmentRow> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO departments (organization_id, name, name_key, added_by, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) RETURNING {COLUMNS}"
    ));
    Ok(on_tx!(tx, |c| sqlx::query_as(sql)
        .bind(org)
        .bind(name)
        .bind(name_key)
        .bind(added_by)
        .bind(now)
        .fetch_one(c)
        .await?))
}

pub async fn find(tx: &mut Tx, org: i64, id: i64) -> StoreResult<Option<DepartmentRow>> {
    let sql = Sql::with_args(
        format!("SELECT {COLUMNS} FROM departments WHERE organization_id = $1 AND id = $2"),
        vec![Arg::Int(org), Arg::Int(id)],
    );
    query::fetch_optional(tx, &sql).await
}

/// Whether another department of the organisation has this name key.
pub async fn name_taken(
    tx: &mut Tx,
    org: i64,
    name_key: &str,
    except_id: i64,
) -> StoreResult<bool> {
    const SQL: &str = "SELECT COUNT(*) FROM departments WHERE organization_id = $1 AND name_key = $2 AND id <> $3";
    let n: i64 = on_tx!(tx, |c| sqlx::query_scalar(SQL)
        .bind(org)
        .bind(name_key)
        .bind(except_id)
        .fetch_one(c)
        .await?);
    Ok(n > 0)
}

pub async fn rename(
    tx: &mut Tx,
    org: i64,
    id: i64,
    name: &str,
    name_key: &str,
    now: i64,
) -> StoreResult<()> {
    const SQL: &str = "UPDATE departments SET name = $3, name_key = $4, updated_at = $5 \
         WHERE organization_id = $1 AND id = $2";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(org)
        .bind(id)
        .bind(name)
        .bind(name_key)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

pub async fn delete(tx: &mut Tx, org: i64, id: i64) -> StoreResult<bool> {
    const SQL: &str = "DELETE FROM departments WHERE organization_id = $1 AND id = $2";
    let n = on_tx!(tx, |c| sqlx::query(SQL)
        .bind(org)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
    Ok(n == 1)
}

/// Appends ` FROM departments WHERE ...` for the organisation and terms.
fn filtered(sql: &mut Sql, org: i64, terms: &[String]) {
    sql.push(" FROM departments WHERE organization_id = ")
        .bind(Arg::Int(org));
    // Names are few per organisation; a LIKE over the lower-cased key is enough.
    for term in terms {
        sql.push(" AND name_key LIKE ")
            .bind(Arg::Text(like_pattern(&term.to_lowercase())))
            .push(" ESCAPE '\\'");
    }
}

/// Appends a query for the number of departments that match. Without
/// terms it is the trigger-maintained `department_counts`: counting the
/// index entries of 1,000 departments took longer than the rest of a page.
fn counted(sql: &mut Sql, org: i64, terms: &[String]) {
    if terms.is_empty() {
        sql.push("SELECT COALESCE((SELECT n FROM department_counts WHERE organization_id = ")
            .bind(Arg::Int(org))
            .push("), 0)");
    } else {
        sql.push("SELECT COUNT(*)");
        filtered(sql, org, terms);
    }
}

pub async fn count(tx: &mut Tx, org: i64, terms: &[String]) -> StoreResult<i64> {
    let mut sql = Sql::default();
    counted(&mut sql, org, terms);
    query::fetch_int(tx, &sql).await
}

/// One page of the organisation's departments, each row carrying the
/// number of matches in `total`: one statement, so one consistent read.
pub async fn list(
    tx: &mut Tx,
    org: i64,
    terms: &[String],
    order: &[(DepartmentOrder, bool)],
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<DepartmentRow>> {
    let pg = tx.is_postgres();
    let mut sql = Sql::new(&format!("SELECT {COLUMNS}, ("));
    counted(&mut sql, org, terms);
    sql.push(") AS total");
    filtered(&mut sql, org, terms);
    sql.push(&query::order_by(
        order.iter().map(|(o, desc)| (o.column(pg), *desc)),
        "id",
    ));
    sql.limit_offset(limit, offset, pg);
    query::fetch_all(tx, &sql).await
}
