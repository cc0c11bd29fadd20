//! Organisations (the seeds' companies).

use super::query::{self, Arg, Sql};
use super::{StoreResult, Tx, on_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OrganizationRow {
    pub id: i64,
    pub name: String,
    pub subdomain: String,
    pub url_home: Option<String>,
    pub created_at: i64,
}
crate::reader_row!(OrganizationRow {
    id,
    name,
    subdomain,
    url_home,
    created_at
});

pub async fn find(tx: &mut Tx, id: i64) -> StoreResult<Option<OrganizationRow>> {
    const SQL: &str =
        "SELECT id, name, subdomain, url_home, created_at FROM organizations WHERE id = $1";
    query::fetch_optional(tx, &Sql::with_args(SQL, vec![Arg::Int(id)])).await
}

pub async fn insert(tx: &mut Tx, name: &str, subdomain: &str, now: i64) -> StoreResult<i64> {
    const SQL: &str = "INSERT INTO organizations (name, subdomain, created_at, updated_at) \
         VALUES ($1, $2, $3, $3) RETURNING id";
    Ok(on_tx!(tx, |c| sqlx::query_scalar(SQL)
        .bind(name)
        .bind(subdomain)
        .bind(now)
        .fetch_one(c)
        .await?))
}

/// The subdomains already taken among `base` and `base-N`.
pub async fn subdomains_like(tx: &mut Tx, base: &str) -> StoreResult<Vec<String>> {
    const SQL: &str =
        "SELECT subdomain FROM organizations WHERE subdomain = $1 OR subdomain LIKE $2";
    let pattern = format!("{base}-%");
    Ok(on_tx!(tx, |c| sqlx::query_scalar(SQL)
        .bind(base)
        .bind(&pattern)
        .fetch_all(c)
        .await?))
}

pub async fn delete(tx: &mut Tx, id: i64) -> StoreResult<()> {
    const SQL: &str = "DELETE FROM organizations WHERE id = $1";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}
