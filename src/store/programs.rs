//! Programs of an organisation and their members.

use super::query::{self, Arg, Sql};
use super::{StoreResult, Tx, on_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProgramRow {
    pub id: i64,
    pub name: String,
    pub created_at: i64,
}
crate::reader_row!(ProgramRow {
    id,
    name,
    created_at
});

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramSort {
    Name,
    CreatedAt,
}

pub async fn insert(tx: &mut Tx, org: i64, name: &str, now: i64) -> StoreResult<ProgramRow> {
    const SQL: &str = "INSERT INTO programs (organization_id, name, created_at, updated_at) VALUES ($1, $2, $3, $3) \
         RETURNING id, name, created_at";
    Ok(on_tx!(tx, |c| sqlx::query_as(SQL)
        .bind(org)
        .bind(name)
        .bind(now)
        .fetch_one(c)
        .await?))
}

pub async fn find(tx: &mut Tx, org: i64, id: i64) -> StoreResult<Option<ProgramRow>> {
    const SQL: &str =
        "SELECT id, name, created_at FROM programs WHERE organization_id = $1 AND id = $2";
    query::fetch_optional(tx, &Sql::with_args(SQL, vec![Arg::Int(org), Arg::Int(id)])).await
}

fn from_where(org: i64, ids: Option<&[i64]>) -> Sql {
    let mut sql = Sql::new(" FROM programs WHERE organization_id = ");
    sql.bind(Arg::Int(org));
    if let Some(ids) = ids {
        sql.push(" AND id IN ")
            .bind_list(ids.iter().map(|id| Arg::Int(*id)));
    }
    sql
}

pub async fn count(tx: &mut Tx, org: i64, ids: Option<&[i64]>) -> StoreResult<i64> {
    let f = from_where(org, ids);
    query::fetch_int(
        tx,
        &Sql {
            text: format!("SELECT COUNT(*){}", f.text),
            args: f.args,
        },
    )
    .await
}

pub async fn list(
    tx: &mut Tx,
    org: i64,
    ids: Option<&[i64]>,
    sort: &[(ProgramSort, bool)],
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<ProgramRow>> {
    let pg = tx.is_postgres();
    let f = from_where(org, ids);
    let mut sql = Sql {
        text: format!("SELECT id, name, created_at{}", f.text),
        args: f.args,
    };
    let keys = sort.iter().map(|(s, desc)| {
        let column = match (s, pg) {
            (ProgramSort::Name, true) => "name COLLATE \"C\"",
            (ProgramSort::Name, false) => "name",
            (ProgramSort::CreatedAt, _) => "created_at",
        };
        (column, *desc)
    });
    sql.push(&query::order_by(keys, "id"));
    sql.limit_offset(limit, offset, pg);
    query::fetch_all(tx, &sql).await
}

pub async fn is_member(tx: &mut Tx, program_id: i64, user_id: i64) -> StoreResult<bool> {
    const SQL: &str = "SELECT COUNT(*) FROM program_members WHERE program_id = $1 AND user_id = $2";
    let n: i64 = on_tx!(tx, |c| sqlx::query_scalar(SQL)
        .bind(program_id)
        .bind(user_id)
        .fetch_one(c)
        .await?);
    Ok(n > 0)
}

pub async fn add_member(
    tx: &mut Tx,
    program_id: i64,
    user_id: i64,
    role: &str,
    now: i64,
) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO program_members (program_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(program_id)
        .bind(user_id)
        .bind(role)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

pub async fn remove_member(tx: &mut Tx, program_id: i64, user_id: i64) -> StoreResult<bool> {
    const SQL: &str = "DELETE FROM program_members WHERE program_id = $1 AND user_id = $2";
    let n = on_tx!(tx, |c| sqlx::query(SQL)
        .bind(program_id)
        .bind(user_id)
        .execute(c)
        .await?
        .rows_affected());
    Ok(n == 1)
}
