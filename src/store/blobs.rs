//! Rows of stored files. The bytes live in the file store under
//! `storage_key`; a row is inserted only after its bytes are durable.

use super::query::{Arg, Sql, fetch_all, fetch_optional};
use super::{StoreResult, Tx, on_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct BlobRow {
    pub id: i64,
    pub storage_key: String,
    pub organization_id: Option<i64>,
    pub owner_id: Option<i64>,
    pub filename: String,
    pub content_type: String,
    pub byte_size: i64,
    pub checksum: String,
    pub created_at: i64,
}
crate::reader_row!(BlobRow {
    id,
    storage_key,
    organization_id,
    owner_id,
    filename,
    content_type,
    byte_size,
    checksum,
    created_at
});

const COLUMNS: &str = "id, storage_key, organization_id, owner_id, filename, content_type, \
     byte_size, checksum, created_at";

pub struct NewBlob<'a> {
    pub storage_key: &'a str,
    pub organization_id: Option<i64>,
    pub owner_id: Option<i64>,
    pub filename: &'a str,
    pub content_type: &'a str,
    pub byte_size: i64,
    pub checksum: &'a str,
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub now: i64,
}

pub async fn insert(tx: &mut Tx, b: &NewBlob<'_>) -> StoreResult<i64> {
    const SQL: &str = "INSERT INTO blobs (storage_key, organization_id, owner_id, filename, \
         content_type, byte_size, checksum, width, height, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id";
    Ok(on_tx!(tx, |c| sqlx::query_scalar(SQL)
        .bind(b.storage_key)
        .bind(b.organization_id)
        .bind(b.owner_id)
        .bind(b.filename)
        .bind(b.content_type)
        .bind(b.byte_size)
        .bind(b.checksum)
        .bind(b.width)
        .bind(b.height)
        .bind(b.now)
        .fetch_one(c)
        .await?))
}

pub async fn find(tx: &mut Tx, id: i64) -> StoreResult<Option<BlobRow>> {
    let sql = Sql::with_args(
        format!("SELECT {COLUMNS} FROM blobs WHERE id = $1"),
        vec![Arg::Int(id)],
    );
    fetch_optional(tx, &sql).await
}

/// The rows of `ids` (any order; missing ids are skipped).
pub async fn find_many(tx: &mut Tx, ids: &[i64]) -> StoreResult<Vec<BlobRow>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM blobs WHERE id IN "));
    sql.bind_list(ids.iter().map(|id| Arg::Int(*id)));
    fetch_all(tx, &sql).await
}

/// Deletes the row; returns its storage key, to delete after the commit.
pub async fn delete(tx: &mut Tx, id: i64) -> StoreResult<Option<String>> {
    const SQL: &str = "DELETE FROM blobs WHERE id = $1 RETURNING storage_key";
    Ok(on_tx!(tx, |c| sqlx::query_scalar(SQL)
        .bind(id)
        .fetch_optional(c)
        .await?))
}

/// Which of `keys` some row names (the rest are orphans).
pub async fn existing_keys(tx: &mut Tx, keys: &[String]) -> StoreResult<Vec<String>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut sql = Sql::new("SELECT storage_key FROM blobs WHERE storage_key IN ");
    sql.bind_list(keys.iter().map(|k| Arg::Text(k.clone())));
    let rows: Vec<(String,)> = fetch_all(tx, &sql).await?;
    Ok(rows.into_iter().map(|(k,)| k).collect())
}

/// Every stored file's key (for backups).
pub async fn all_keys(tx: &mut Tx) -> StoreResult<Vec<String>> {
    const SQL: &str = "SELECT storage_key FROM blobs ORDER BY id";
    Ok(on_tx!(tx, |c| sqlx::query_scalar(SQL).fetch_all(c).await?))
}
