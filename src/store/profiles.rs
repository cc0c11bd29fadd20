//! Worker profiles: the profile row with its user's contact columns,
//! licences, attached documents, sub-records and the activity log.

use std::sync::LazyLock;

use serde::Deserialize;

use super::query::{
    Arg, Sql, WithRelated, fetch_all, fetch_int, fetch_optional, json_array, json_object,
    related_column,
};
use super::{StoreResult, Tx, on_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ProfileRow {
    pub id: i64,
    pub user_id: i64,
    pub organization_id: i64,
    pub first_name: String,
    pub last_name: String,
    pub postcode: Option<String>,
    pub english_level: Option<String>,
    pub contact_phone_number: Option<String>,
    pub birth_date: Option<String>,
    pub start_date: Option<String>,
    pub bio: Option<String>,
    pub version: i64,
    pub email: String,
    pub phone: Option<String>,
    pub last_sign_in_at: Option<i64>,
    pub user_updated_at: i64,
}
crate::reader_row!(ProfileRow {
    id,
    user_id,
    organization_id,
    first_name,
    last_name,
    postcode,
    english_level,
    contact_phone_number,
    birth_date,
    start_date,
    bio,
    version,
    email,
    phone,
    last_sign_in_at,
    user_updated_at
});

const SELECT: &str = "SELECT p.id, p.user_id, p.organization_id, p.first_name, p.last_name, \
     p.postcode, p.english_level, p.contact_phone_number, p.birth_date, p.start_date, p.bio, \
     p.version, u.email, u.phone, u.last_sign_in_at, u.updated_at AS user_updated_at \
     FROM worker_profiles p JOIN users u ON u.id = p.user_id";

/// How many of the newest activities a profile shows.
pub const ACTIVITIES_SHOWN: i64 = 50;

/// What a profile shows of other tables, read with the profile.
#[derive(Debug, Clone, Deserialize)]
pub struct ProfileRelated {
    /// In the order they were given.
    pub licenses: Vec<String>,
    pub documents: Vec<DocumentRow>,
    pub records: Vec<RecordRow>,
    /// The newest [`ACTIVITIES_SHOWN`], newest first.
    pub activities: Vec<ActivityRow>,
}

/// A profile with everything it shows, from one statement.
pub type ProfileRecord = WithRelated<ProfileRow, ProfileRelated>;

/// `SELECT` of a profile with [`ProfileRelated`] in its `related` column,
/// on PostgreSQL (SQLite reads a statement a table: see
/// [`super::coach`]'s `COACH_RECORD_SELECT`).
static RECORD_SELECT: LazyLock<String> = LazyLock::new(record_select);

fn record_select() -> String {
    let pg = true;
    let licenses = json_array(
        pg,
        "l.license",
        "profile_licenses l WHERE l.profile_id = p.id",
        "l.position",
    );
    let documents = json_array(
        pg,
        &json_object(
            pg,
            &[
                ("id", "d.id"),
                ("profile_id", "d.profile_id"),
                ("kind", "d.kind"),
                ("blob_id", "d.blob_id"),
                ("filename", "b.filename"),
                ("content_type", "b.content_type"),
                ("byte_size", "b.byte_size"),
                ("checksum", "b.checksum"),
            ],
        ),
        "profile_documents d JOIN blobs b ON b.id = d.blob_id WHERE d.profile_id = p.id",
        "d.id",
    );
    let records = json_array(
        pg,
        &json_object(
            pg,
            &[
                ("id", "r.id"),
                ("profile_id", "r.profile_id"),
                ("kind", "r.kind"),
                ("data", "r.data"),
                ("actor_id", "r.actor_id"),
                ("created_at", "r.created_at"),
            ],
        ),
        "profile_records r WHERE r.profile_id = p.id",
        "r.id",
    );
    let activities = json_array(
        pg,
        &json_object(
            pg,
            &[
                ("id", "a.id"),
                ("profile_id", "a.profile_id"),
                ("action", "a.action"),
                ("changes", "a.changes"),
                ("actor_id", "a.actor_id"),
                ("created_at", "a.created_at"),
            ],
        ),
        &format!(
            "(SELECT id, profile_id, action, changes, actor_id, created_at \
             FROM profile_activities WHERE profile_id = p.id \
             ORDER BY id DESC LIMIT {ACTIVITIES_SHOWN}) a"
        ),
        "a.id DESC",
    );
    let related = related_column(
        pg,
        &[
            ("licenses", &licenses),
            ("documents", &documents),
            ("records", &records),
            ("activities", &activities),
        ],
    );
    SELECT.replacen(" FROM ", &format!(", {related} FROM "), 1)
}

/// Gives the user a profile with their names, unless they have one.
pub async fn ensure(
    tx: &mut Tx,
    user_id: i64,
    organization_id: i64,
    first_name: &str,
    last_name: &str,
    now: i64,
) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO worker_profiles (user_id, organization_id, first_name, \
         last_name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $5) \
         ON CONFLICT (user_id) DO NOTHING";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(user_id)
        .bind(organization_id)
        .bind(first_name)
        .bind(last_name)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

/// The profile with everything it shows: on PostgreSQL one statement, on
/// SQLite one a table (see [`super::Db::begin_object_read`]).
pub async fn find_record(tx: &mut Tx, id: i64) -> StoreResult<Option<ProfileRecord>> {
    find_record_where(tx, "p.id", id).await
}

/// The user's profile with everything it shows, as [`find_record`].
pub async fn find_record_by_user(tx: &mut Tx, user_id: i64) -> StoreResult<Option<ProfileRecord>> {
    find_record_where(tx, "p.user_id", user_id).await
}

async fn find_record_where(
    tx: &mut Tx,
    column: &str,
    value: i64,
) -> StoreResult<Option<ProfileRecord>> {
    let pg = tx.is_postgres();
    let select = if pg { RECORD_SELECT.as_str() } else { SELECT };
    let sql = Sql::with_args(
        format!("{select} WHERE {column} = $1"),
        vec![Arg::Int(value)],
    );
    if pg {
        return fetch_optional(tx, &sql).await;
    }
    let rows = fetch_all(tx, &sql).await?;
    Ok(with_related(tx, rows).await?.pop())
}

/// `rows` with what they show, one statement a table (SQLite).
async fn with_related(tx: &mut Tx, rows: Vec<ProfileRow>) -> StoreResult<Vec<ProfileRecord>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let licenses = licenses_of(tx, &ids).await?;
    let documents = documents_of(tx, &ids).await?;
    let records = records_of(tx, &ids).await?;
    let activities = activities_of(tx, &ids, ACTIVITIES_SHOWN).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let id = row.id;
            let related = ProfileRelated {
                licenses: licenses
                    .iter()
                    .filter(|(p, _)| *p == id)
                    .map(|(_, l)| l.clone())
                    .collect(),
                documents: documents
                    .iter()
                    .filter(|d| d.profile_id == id)
                    .cloned()
                    .collect(),
                records: records
                    .iter()
                    .filter(|r| r.profile_id == id)
                    .cloned()
                    .collect(),
                activities: activities
                    .iter()
                    .filter(|a| a.profile_id == id)
                    .cloned()
                    .collect(),
            };
            WithRelated { row, related }
        })
        .collect())
}

/// The licences of each profile, in the order they were given.
async fn licenses_of(tx: &mut Tx, ids: &[i64]) -> StoreResult<Vec<(i64, String)>> {
    let mut sql = Sql::new("SELECT profile_id, license FROM profile_licenses WHERE profile_id IN ");
    sql.bind_list(ids.iter().map(|id| Arg::Int(*id)))
        .push(" ORDER BY profile_id, position");
    fetch_all(tx, &sql).await
}

async fn documents_of(tx: &mut Tx, ids: &[i64]) -> StoreResult<Vec<DocumentRow>> {
    let mut sql = Sql::new(DOCUMENT_SELECT);
    sql.push(" WHERE d.profile_id IN ")
        .bind_list(ids.iter().map(|id| Arg::Int(*id)))
        .push(" ORDER BY d.profile_id, d.id");
    fetch_all(tx, &sql).await
}

async fn records_of(tx: &mut Tx, ids: &[i64]) -> StoreResult<Vec<RecordRow>> {
    let mut sql = Sql::new(
        "SELECT id, profile_id, kind, data, actor_id, created_at FROM profile_records \
         WHERE profile_id IN ",
    );
    sql.bind_list(ids.iter().map(|id| Arg::Int(*id)))
        .push(" ORDER BY profile_id, id");
    fetch_all(tx, &sql).await
}

/// The newest `per_profile` activities of each profile, newest first.
async fn activities_of(
    tx: &mut Tx,
    ids: &[i64],
    per_profile: i64,
) -> StoreResult<Vec<ActivityRow>> {
    let mut sql = Sql::new(
        "SELECT id, profile_id, action, changes, actor_id, created_at FROM ( \
         SELECT id, profile_id, action, changes, actor_id, created_at, \
         ROW_NUMBER() OVER (PARTITION BY profile_id ORDER BY id DESC) AS n \
         FROM profile_activities WHERE profile_id IN ",
    );
    sql.bind_list(ids.iter().map(|id| Arg::Int(*id)))
        .push(") recent WHERE n <= ")
        .bind(Arg::Int(per_profile))
        .push(" ORDER BY profile_id, id DESC");
    fetch_all(tx, &sql).await
}

pub async fn find(tx: &mut Tx, id: i64) -> StoreResult<Option<ProfileRow>> {
    let sql = Sql::with_args(format!("{SELECT} WHERE p.id = $1"), vec![Arg::Int(id)]);
    fetch_optional(tx, &sql).await
}

/// Holds the profile's row lock until the transaction ends, so concurrent
/// changes apply one after the other. (SQLite's write transactions are
/// serial already.)
pub async fn lock(tx: &mut Tx, id: i64) -> StoreResult<()> {
    if let Tx::Postgres(t) = tx {
        sqlx::query("SELECT id FROM worker_profiles WHERE id = $1 FOR UPDATE")
            .bind(id)
            .execute(t.conn().await?)
            .await?;
    }
    Ok(())
}

/// What a list of profiles is narrowed to.
#[derive(Debug, Default, Clone)]
pub struct ProfileFilter {
    /// `None`: every organisation (staff).
    pub organization_id: Option<i64>,
    pub license: Option<String>,
    pub english_level: Option<String>,
    pub missing_document: Option<String>,
    /// Substring of first name, last name, email or postcode.
    pub q: Option<String>,
}

fn filtered(select: &str, f: &ProfileFilter) -> Sql {
    let mut sql = Sql::new(select);
    sql.push(" WHERE 1 = 1");
    if let Some(org) = f.organization_id {
        sql.push(" AND p.organization_id = ").bind(Arg::Int(org));
    }
    if let Some(level) = &f.english_level {
        sql.push(" AND p.english_level = ")
            .bind(Arg::Text(level.clone()));
    }
    if let Some(license) = &f.license {
        sql.push(" AND EXISTS (SELECT 1 FROM profile_licenses l WHERE l.profile_id = p.id AND l.license = ")
            .bind(Arg::Text(license.clone()))
            .push(")");
    }
    if let Some(kind) = &f.missing_document {
        sql.push(" AND NOT EXISTS (SELECT 1 FROM profile_documents d WHERE d.profile_id = p.id AND d.kind = ")
            .bind(Arg::Text(kind.clone()))
            .push(")");
    }
    if let Some(q) = &f.q {
        let pattern = super::query::like_pattern(&q.to_lowercase());
        sql.push(" AND (LOWER(p.first_name) LIKE ")
            .bind(Arg::Text(pattern.clone()))
            .push(" ESCAPE '\\' OR LOWER(p.last_name) LIKE ")
            .bind(Arg::Text(pattern.clone()))
            .push(" ESCAPE '\\' OR u.email_key LIKE ")
            .bind(Arg::Text(pattern.clone()))
            .push(" ESCAPE '\\' OR LOWER(COALESCE(p.postcode, '')) LIKE ")
            .bind(Arg::Text(pattern))
            .push(" ESCAPE '\\')");
    }
    sql
}

pub async fn count(tx: &mut Tx, f: &ProfileFilter) -> StoreResult<i64> {
    let unfiltered = f.license.is_none()
        && f.english_level.is_none()
        && f.missing_document.is_none()
        && f.q.is_none();
    if unfiltered {
        // From the trigger-maintained `profile_counts` (migration 0010).
        let sql = match f.organization_id {
            Some(org) => Sql::with_args(
                "SELECT COALESCE((SELECT n FROM profile_counts WHERE organization_id = $1), 0)",
                vec![Arg::Int(org)],
            ),
            // SUM of BIGINT is NUMERIC on PostgreSQL.
            None if tx.is_postgres() => {
                Sql::new("SELECT COALESCE(SUM(n), 0)::BIGINT FROM profile_counts")
            }
            None => Sql::new("SELECT COALESCE(SUM(n), 0) FROM profile_counts"),
        };
        return fetch_int(tx, &sql).await;
    }
    // Every profile has its user (NOT NULL, ON DELETE CASCADE), so the join
    // only matters for the email in `q`; without it the count is read from
    // the organisation index alone (1,000,000 profiles: 1.4 s with the join).
    let select = if f.q.is_some() {
        "SELECT COUNT(*) FROM worker_profiles p JOIN users u ON u.id = p.user_id"
    } else {
        "SELECT COUNT(*) FROM worker_profiles p"
    };
    fetch_int(tx, &filtered(select, f)).await
}

/// One page of profiles in id order, each with everything it shows.
pub async fn list(
    tx: &mut Tx,
    f: &ProfileFilter,
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<ProfileRecord>> {
    let pg = tx.is_postgres();
    let mut sql = filtered(if pg { &RECORD_SELECT } else { SELECT }, f);
    sql.push(" ORDER BY p.id").limit_offset(limit, offset, pg);
    if pg {
        return fetch_all(tx, &sql).await;
    }
    let rows = fetch_all(tx, &sql).await?;
    with_related(tx, rows).await
}

/// The profile's own columns, all at once (the domain merged them).
pub struct ProfileFields<'a> {
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub postcode: Option<&'a str>,
    pub english_level: Option<&'a str>,
    pub contact_phone_number: Option<&'a str>,
    pub birth_date: Option<&'a str>,
    pub start_date: Option<&'a str>,
    pub bio: Option<&'a str>,
}

pub async fn update_fields(
    tx: &mut Tx,
    id: i64,
    f: &ProfileFields<'_>,
    now: i64,
) -> StoreResult<()> {
    const SQL: &str = "UPDATE worker_profiles SET first_name = $2, last_name = $3, postcode = $4, \
         english_level = $5, contact_phone_number = $6, birth_date = $7, start_date = $8, \
         bio = $9, updated_at = $10 WHERE id = $1";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(id)
        .bind(f.first_name)
        .bind(f.last_name)
        .bind(f.postcode)
        .bind(f.english_level)
        .bind(f.contact_phone_number)
        .bind(f.birth_date)
        .bind(f.start_date)
        .bind(f.bio)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

/// Moves the profile to its next version: from `expected` only, when
/// given (`false`: another change got there first, the caller rolls back).
pub async fn bump_version(
    tx: &mut Tx,
    id: i64,
    expected: Option<i64>,
    now: i64,
) -> StoreResult<bool> {
    const SQL: &str = "UPDATE worker_profiles SET version = version + 1, updated_at = $3 \
         WHERE id = $1 AND ($2 IS NULL OR version = $2)";
    let n = on_tx!(tx, |c| sqlx::query(SQL)
        .bind(id)
        .bind(expected)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(n == 1)
}

// ---------------------------------------------------------------- licences

pub async fn set_licenses(tx: &mut Tx, id: i64, licenses: &[String]) -> StoreResult<()> {
    const DELETE: &str = "DELETE FROM profile_licenses WHERE profile_id = $1";
    on_tx!(tx, |c| sqlx::query(DELETE)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
    if licenses.is_empty() {
        return Ok(());
    }
    let mut sql = Sql::new("INSERT INTO profile_licenses (profile_id, license, position) VALUES ");
    for (i, license) in licenses.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push("(")
            .bind(Arg::Int(id))
            .push(", ")
            .bind(Arg::Text(license.clone()))
            .push(", ")
            .bind(Arg::Int(i as i64))
            .push(")");
    }
    super::query::execute(tx, &sql).await?;
    Ok(())
}

// --------------------------------------------------------------- documents

#[derive(Debug, Clone, sqlx::FromRow, Deserialize)]
pub struct DocumentRow {
    pub id: i64,
    pub profile_id: i64,
    pub kind: String,
    pub blob_id: i64,
    pub filename: String,
    pub content_type: String,
    pub byte_size: i64,
    pub checksum: String,
}
crate::reader_row!(DocumentRow {
    id,
    profile_id,
    kind,
    blob_id,
    filename,
    content_type,
    byte_size,
    checksum
});

const DOCUMENT_SELECT: &str = "SELECT d.id, d.profile_id, d.kind, d.blob_id, b.filename, \
     b.content_type, b.byte_size, b.checksum FROM profile_documents d \
     JOIN blobs b ON b.id = d.blob_id";

pub async fn find_document(tx: &mut Tx, id: i64) -> StoreResult<Option<DocumentRow>> {
    let mut sql = Sql::new(DOCUMENT_SELECT);
    sql.push(" WHERE d.id = ").bind(Arg::Int(id));
    Ok(fetch_all(tx, &sql).await?.pop())
}

/// The documents of one kind on a profile (a slot has at most one).
pub async fn documents_of_kind(
    tx: &mut Tx,
    profile_id: i64,
    kind: &str,
) -> StoreResult<Vec<DocumentRow>> {
    let mut sql = Sql::new(DOCUMENT_SELECT);
    sql.push(" WHERE d.profile_id = ")
        .bind(Arg::Int(profile_id))
        .push(" AND d.kind = ")
        .bind(Arg::Text(kind.into()))
        .push(" ORDER BY d.id");
    fetch_all(tx, &sql).await
}

pub async fn insert_document(
    tx: &mut Tx,
    profile_id: i64,
    kind: &str,
    blob_id: i64,
    now: i64,
) -> StoreResult<i64> {
    const SQL: &str = "INSERT INTO profile_documents (profile_id, kind, blob_id, created_at) \
         VALUES ($1, $2, $3, $4) RETURNING id";
    Ok(on_tx!(tx, |c| sqlx::query_scalar(SQL)
        .bind(profile_id)
        .bind(kind)
        .bind(blob_id)
        .bind(now)
        .fetch_one(c)
        .await?))
}

/// Removes the attachment row (its blob row goes with the caller's
/// `Uploads::remove`).
pub async fn delete_document(tx: &mut Tx, id: i64) -> StoreResult<()> {
    const SQL: &str = "DELETE FROM profile_documents WHERE id = $1";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

// ------------------------------------------------------------- sub-records

#[derive(Debug, Clone, sqlx::FromRow, Deserialize)]
pub struct RecordRow {
    pub id: i64,
    pub profile_id: i64,
    pub kind: String,
    pub data: String,
    pub actor_id: Option<i64>,
    pub created_at: i64,
}
crate::reader_row!(RecordRow {
    id,
    profile_id,
    kind,
    data,
    actor_id,
    created_at
});

pub async fn insert_record(
    tx: &mut Tx,
    profile_id: i64,
    kind: &str,
    data: &str,
    actor_id: i64,
    now: i64,
) -> StoreResult<i64> {
    const SQL: &str = "INSERT INTO profile_records (profile_id, kind, data, actor_id, created_at) \
         VALUES ($1, $2, $3, $4, $5) RETURNING id";
    Ok(on_tx!(tx, |c| sqlx::query_scalar(SQL)
        .bind(profile_id)
        .bind(kind)
        .bind(data)
        .bind(actor_id)
        .bind(now)
        .fetch_one(c)
        .await?))
}

/// Deletes one record of a profile; returns its data when it existed.
pub async fn delete_record(
    tx: &mut Tx,
    profile_id: i64,
    kind: &str,
    id: i64,
) -> StoreResult<Option<String>> {
    const SQL: &str = "DELETE FROM profile_records WHERE id = $1 AND profile_id = $2 AND kind = $3 \
         RETURNING data";
    Ok(on_tx!(tx, |c| sqlx::query_scalar(SQL)
        .bind(id)
        .bind(profile_id)
        .bind(kind)
        .fetch_optional(c)
        .await?))
}

// -------------------------------------------------------------- activities

#[derive(Debug, Clone, sqlx::FromRow, Deserialize)]
pub struct ActivityRow {
    pub id: i64,
    pub profile_id: i64,
    pub action: String,
    pub changes: String,
    pub actor_id: Option<i64>,
    pub created_at: i64,
}
crate::reader_row!(ActivityRow {
    id,
    profile_id,
    action,
    changes,
    actor_id,
    created_at
});

pub async fn insert_activity(
    tx: &mut Tx,
    profile_id: i64,
    action: &str,
    changes: &str,
    actor_id: i64,
    now: i64,
) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO profile_activities (profile_id, action, changes, actor_id, \
         created_at) VALUES ($1, $2, $3, $4, $5)";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(profile_id)
        .bind(action)
        .bind(changes)
        .bind(actor_id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

/// The user whose profile holds `blob_id` as a document, if any.
pub async fn profile_of_blob(tx: &mut Tx, blob_id: i64) -> StoreResult<Option<i64>> {
    const SQL: &str = "SELECT p.user_id FROM profile_documents d \
         JOIN worker_profiles p ON p.id = d.profile_id WHERE d.blob_id = $1";
    let holder: Option<(i64,)> =
        fetch_optional(tx, &Sql::with_args(SQL, vec![Arg::Int(blob_id)])).await?;
    Ok(holder.map(|(user_id,)| user_id))
}
