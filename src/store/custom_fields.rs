//! Custom fields of an organisation's clients, and their values.

use super::query::{self, Arg, Sql};
use super::{StoreResult, Tx, on_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct FieldRow {
    pub id: i64,
    pub slug: String,
    pub label: String,
    pub field_type: String,
    /// JSON array of the allowed values of a `select`.
    pub options: Option<String>,
    pub required: bool,
    pub created_at: i64,
}
crate::reader_row!(FieldRow {
    id,
    slug,
    label,
    field_type,
    options,
    required,
    created_at
});

const COLUMNS: &str = "id, slug, label, field_type, options, required, created_at";

pub struct NewField<'a> {
    pub slug: &'a str,
    pub label: &'a str,
    pub field_type: &'a str,
    pub options: Option<&'a str>,
    pub required: bool,
    pub now: i64,
}

pub async fn list(tx: &mut Tx, org: i64) -> StoreResult<Vec<FieldRow>> {
    let sql = Sql::with_args(
        format!("SELECT {COLUMNS} FROM custom_fields WHERE organization_id = $1 ORDER BY id"),
        vec![Arg::Int(org)],
    );
    query::fetch_all(tx, &sql).await
}

pub async fn insert(tx: &mut Tx, org: i64, f: &NewField<'_>) -> StoreResult<FieldRow> {
    let sql = sqlx::AssertSqlSafe(format!(
        "INSERT INTO custom_fields (organization_id, slug, label, field_type, options, required, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
    ));
    Ok(on_tx!(tx, |c| sqlx::query_as(sql)
        .bind(org)
        .bind(f.slug)
        .bind(f.label)
        .bind(f.field_type)
        .bind(f.options)
        .bind(f.required)
        .bind(f.now)
        .fetch_one(c)
        .await?))
}

pub async fn slug_taken(tx: &mut Tx, org: i64, slug: &str) -> StoreResult<bool> {
    const SQL: &str = "SELECT COUNT(*) FROM custom_fields WHERE organization_id = $1 AND slug = $2";
    let n: i64 = on_tx!(tx, |c| sqlx::query_scalar(SQL)
        .bind(org)
        .bind(slug)
        .fetch_one(c)
        .await?);
    Ok(n > 0)
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ValueRow {
    pub user_id: i64,
    pub field_id: i64,
    pub value: String,
}
crate::reader_row!(ValueRow {
    user_id,
    field_id,
    value
});

/// Every stored value of these users, in one query.
pub async fn values_of(tx: &mut Tx, user_ids: &[i64]) -> StoreResult<Vec<ValueRow>> {
    if user_ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql =
        Sql::new("SELECT user_id, field_id, value FROM custom_field_values WHERE user_id IN ");
    sql.bind_list(user_ids.iter().map(|id| Arg::Int(*id)));
    query::fetch_all(tx, &sql).await
}

pub async fn set_value(tx: &mut Tx, user_id: i64, field_id: i64, value: &str) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO custom_field_values (user_id, field_id, value) VALUES ($1, $2, $3) \
         ON CONFLICT (user_id, field_id) DO UPDATE SET value = excluded.value";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(user_id)
        .bind(field_id)
        .bind(value)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

pub async fn clear_value(tx: &mut Tx, user_id: i64, field_id: i64) -> StoreResult<()> {
    const SQL: &str = "DELETE FROM custom_field_values WHERE user_id = $1 AND field_id = $2";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(user_id)
        .bind(field_id)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}
