//! Coach profiles, their areas, certifications and education, the vetting
//! history, and the reference data the coach surface looks up.

use std::sync::LazyLock;

use serde::Deserialize;

use super::query::{
    Arg, Sql, WithRelated, fetch_all, fetch_int, fetch_optional, json_array, json_object,
    related_column,
};
use super::{StoreResult, Tx, on_tx};

/// A coach: the user's own columns and their profile.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct CoachRow {
    pub id: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: String,
    pub organization_id: Option<i64>,
    pub date_of_birth: Option<String>,
    pub avatar_blob_id: Option<i64>,
    pub alias: String,
    pub introduction: String,
    pub website: String,
    pub instagram_id: String,
    pub twitter_id: String,
    pub about_you: String,
    pub business_name: String,
    pub business_logo_blob_id: Option<i64>,
    pub coach_since: Option<String>,
    pub coach_location: Option<String>,
    pub coach_experience: String,
    pub mother_tongue_id: Option<i64>,
    pub coaching_language_id: Option<i64>,
    pub vetting_status: String,
    pub approved: bool,
    pub vetting_created_at: i64,
    pub vetting_updated_at: i64,
}
crate::reader_row!(CoachRow {
    id,
    email,
    first_name,
    last_name,
    role,
    organization_id,
    date_of_birth,
    avatar_blob_id,
    alias,
    introduction,
    website,
    instagram_id,
    twitter_id,
    about_you,
    business_name,
    business_logo_blob_id,
    coach_since,
    coach_location,
    coach_experience,
    mother_tongue_id,
    coaching_language_id,
    vetting_status,
    approved,
    vetting_created_at,
    vetting_updated_at
});

const COACH_SELECT: &str = "SELECT u.id, u.email, u.first_name, u.last_name, u.role, \
     u.organization_id, u.date_of_birth, u.avatar_blob_id, p.alias, p.introduction, p.website, \
     p.instagram_id, p.twitter_id, p.about_you, p.business_name, p.business_logo_blob_id, \
     p.coach_since, p.coach_location, p.coach_experience, p.mother_tongue_id, \
     p.coaching_language_id, p.vetting_status, p.approved, p.created_at AS vetting_created_at, \
     COALESCE(p.vetting_updated_at, p.created_at) AS vetting_updated_at";

const COACH_FROM: &str = " FROM coach_profiles p JOIN users u ON u.id = p.user_id";

/// What the coach object shows of other tables, read with the coach.
#[derive(Debug, Clone, Deserialize)]
pub struct CoachRelated {
    pub areas: Vec<AreaRow>,
    pub certifications: Vec<CertificationRow>,
    pub educations: Vec<EducationRow>,
    /// The files it links to: avatar, business logo, certificates.
    pub files: Vec<FileName>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct FileName {
    pub id: i64,
    pub filename: String,
}

/// A coach with everything the coach object shows, from one statement.
pub type CoachRecord = WithRelated<CoachRow, CoachRelated>;

/// `SELECT` of a coach with [`CoachRelated`] in its `related` column, on
/// PostgreSQL. (SQLite reads the related tables a statement each: there a
/// statement costs no round trip, and building and parsing JSON, with a
/// sort for each ordered aggregate, cost more than the statements.)
static COACH_RECORD_SELECT: LazyLock<String> = LazyLock::new(coach_record_select);

fn coach_record_select() -> String {
    let pg = true;
    let areas = json_array(
        pg,
        &json_object(
            pg,
            &[
                ("id", "a.id"),
                ("alias", "a.alias"),
                ("name", "a.name"),
                ("category_id", "a.category_id"),
            ],
        ),
        "coach_areas ca JOIN areas a ON a.id = ca.area_id WHERE ca.user_id = u.id",
        "a.id",
    );
    let certifications = json_array(
        pg,
        &json_object(
            pg,
            &[
                ("id", "c.id"),
                ("user_id", "c.user_id"),
                ("name", "c.name"),
                ("issue_institution", "c.issue_institution"),
                ("issue_date", "c.issue_date"),
                ("attachment_blob_id", "c.attachment_blob_id"),
            ],
        ),
        "certifications c WHERE c.user_id = u.id",
        "c.id",
    );
    let educations = json_array(
        pg,
        &json_object(
            pg,
            &[
                ("id", "e.id"),
                ("user_id", "e.user_id"),
                ("school_name", "e.school_name"),
                ("degree", "e.degree"),
                ("start_date", "e.start_date"),
                ("end_date", "e.end_date"),
            ],
        ),
        "educations e WHERE e.user_id = u.id",
        "e.id",
    );
    // A list of ids, not `OR`s: each planner reads the blobs by key.
    let files = json_array(
        pg,
        &json_object(pg, &[("id", "b.id"), ("filename", "b.filename")]),
        "blobs b WHERE b.id IN (SELECT u.avatar_blob_id UNION ALL \
         SELECT p.business_logo_blob_id UNION ALL \
         SELECT fc.attachment_blob_id FROM certifications fc WHERE fc.user_id = u.id)",
        "b.id",
    );
    let related = related_column(
        pg,
        &[
            ("areas", &areas),
            ("certifications", &certifications),
            ("educations", &educations),
            ("files", &files),
        ],
    );
    format!("{COACH_SELECT}, {related}{COACH_FROM}")
}

/// Inserts a coach profile; `false` when `alias` was taken meanwhile (a
/// concurrent insert on PostgreSQL), so the caller can try another.
pub async fn insert_profile(tx: &mut Tx, user_id: i64, alias: &str, now: i64) -> StoreResult<bool> {
    const SQL: &str = "INSERT INTO coach_profiles (user_id, alias, vetting_status, approved, \
         created_at, updated_at, vetting_updated_at) VALUES ($1, $2, 'PD', FALSE, $3, $3, $3) \
         ON CONFLICT (alias) DO NOTHING";
    let n = on_tx!(tx, |c| sqlx::query(SQL)
        .bind(user_id)
        .bind(alias)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(n == 1)
}

/// Aliases equal to `base` or of the form `base-N`, for choosing a free one.
pub async fn aliases_like(tx: &mut Tx, base: &str) -> StoreResult<Vec<String>> {
    let mut sql = Sql::new("SELECT alias FROM coach_profiles WHERE alias = ");
    sql.bind(Arg::Text(base.into()))
        .push(" OR alias LIKE ")
        // `base` is a slug (a-z, 0-9, '-'): nothing in it is a LIKE wildcard.
        .bind(Arg::Text(format!("{base}-%")));
    let rows: Vec<(String,)> = fetch_all(tx, &sql).await?;
    Ok(rows.into_iter().map(|(a,)| a).collect())
}

pub async fn alias_owner(tx: &mut Tx, alias: &str) -> StoreResult<Option<i64>> {
    const SQL: &str = "SELECT user_id FROM coach_profiles WHERE alias = $1";
    Ok(on_tx!(tx, |c| sqlx::query_scalar(SQL)
        .bind(alias)
        .fetch_optional(c)
        .await?))
}

/// The coach with everything the coach object shows: on PostgreSQL one
/// statement, on SQLite one a table (see [`super::Db::begin_object_read`]).
pub async fn find_record(tx: &mut Tx, user_id: i64) -> StoreResult<Option<CoachRecord>> {
    if !tx.is_postgres() {
        let row = find(tx, user_id).await?;
        return Ok(with_related(tx, row.into_iter().collect()).await?.pop());
    }
    let sql = Sql::with_args(
        format!("{} WHERE p.user_id = $1", *COACH_RECORD_SELECT),
        vec![Arg::Int(user_id)],
    );
    fetch_optional(tx, &sql).await
}

/// `rows` with what their objects show, one statement a table (SQLite,
/// where a statement costs no round trip and a JSON column more).
async fn with_related(tx: &mut Tx, rows: Vec<CoachRow>) -> StoreResult<Vec<CoachRecord>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let areas = areas_of(tx, &ids).await?;
    let certifications = certifications_of(tx, &ids).await?;
    let educations = educations_of(tx, &ids).await?;
    let blob_ids: Vec<i64> = rows
        .iter()
        .flat_map(|r| [r.avatar_blob_id, r.business_logo_blob_id])
        .chain(certifications.iter().map(|c| c.attachment_blob_id))
        .flatten()
        .collect();
    let blobs = super::blobs::find_many(tx, &blob_ids).await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let certifications: Vec<CertificationRow> = certifications
                .iter()
                .filter(|c| c.user_id == row.id)
                .cloned()
                .collect();
            let linked: Vec<i64> = [row.avatar_blob_id, row.business_logo_blob_id]
                .into_iter()
                .chain(certifications.iter().map(|c| c.attachment_blob_id))
                .flatten()
                .collect();
            let related = CoachRelated {
                areas: areas
                    .iter()
                    .filter(|(user, _)| *user == row.id)
                    .map(|(_, area)| area.clone())
                    .collect(),
                educations: educations
                    .iter()
                    .filter(|e| e.user_id == row.id)
                    .cloned()
                    .collect(),
                files: blobs
                    .iter()
                    .filter(|b| linked.contains(&b.id))
                    .map(|b| FileName {
                        id: b.id,
                        filename: b.filename.clone(),
                    })
                    .collect(),
                certifications,
            };
            WithRelated { row, related }
        })
        .collect())
}

/// The areas of each of `user_ids`, as (user id, area) in area id order.
async fn areas_of(tx: &mut Tx, user_ids: &[i64]) -> StoreResult<Vec<(i64, AreaRow)>> {
    #[derive(sqlx::FromRow)]
    struct Row {
        user_id: i64,
        id: i64,
        alias: String,
        name: String,
        category_id: i64,
    }
    crate::reader_row!(Row {
        user_id,
        id,
        alias,
        name,
        category_id
    });
    let mut sql = Sql::new(
        "SELECT ca.user_id, a.id, a.alias, a.name, a.category_id FROM coach_areas ca \
         JOIN areas a ON a.id = ca.area_id WHERE ca.user_id IN ",
    );
    sql.bind_list(user_ids.iter().map(|id| Arg::Int(*id)))
        .push(" ORDER BY ca.user_id, a.id");
    let rows: Vec<Row> = fetch_all(tx, &sql).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.user_id,
                AreaRow {
                    id: r.id,
                    alias: r.alias,
                    name: r.name,
                    category_id: r.category_id,
                },
            )
        })
        .collect())
}

async fn certifications_of(tx: &mut Tx, user_ids: &[i64]) -> StoreResult<Vec<CertificationRow>> {
    let mut sql = Sql::new(&format!(
        "SELECT {CERT_COLUMNS} FROM certifications WHERE user_id IN "
    ));
    sql.bind_list(user_ids.iter().map(|id| Arg::Int(*id)))
        .push(" ORDER BY user_id, id");
    fetch_all(tx, &sql).await
}

async fn educations_of(tx: &mut Tx, user_ids: &[i64]) -> StoreResult<Vec<EducationRow>> {
    let mut sql = Sql::new(&format!(
        "SELECT {EDU_COLUMNS} FROM educations WHERE user_id IN "
    ));
    sql.bind_list(user_ids.iter().map(|id| Arg::Int(*id)))
        .push(" ORDER BY user_id, id");
    fetch_all(tx, &sql).await
}

pub async fn find(tx: &mut Tx, user_id: i64) -> StoreResult<Option<CoachRow>> {
    let sql = Sql::with_args(
        format!("{COACH_SELECT}{COACH_FROM} WHERE p.user_id = $1"),
        vec![Arg::Int(user_id)],
    );
    fetch_optional(tx, &sql).await
}

/// Coaches (users whose role is coach) with a vetting status, if given.
fn coach_filter(sql: &mut Sql, status: Option<&str>) {
    sql.push(" WHERE u.role = 'coach'");
    if let Some(status) = status {
        sql.push(" AND p.vetting_status = ")
            .bind(Arg::Text(status.into()));
    }
}

pub async fn count(tx: &mut Tx, status: Option<&str>) -> StoreResult<i64> {
    let mut sql =
        Sql::new("SELECT COUNT(*) FROM coach_profiles p JOIN users u ON u.id = p.user_id");
    coach_filter(&mut sql, status);
    fetch_int(tx, &sql).await
}

/// One page of coaches in id order, each with what its object shows.
pub async fn list(
    tx: &mut Tx,
    status: Option<&str>,
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<CoachRecord>> {
    let pg = tx.is_postgres();
    let mut sql = if pg {
        Sql::new(&COACH_RECORD_SELECT)
    } else {
        Sql::new(&format!("{COACH_SELECT}{COACH_FROM}"))
    };
    coach_filter(&mut sql, status);
    sql.push(" ORDER BY p.user_id")
        .limit_offset(limit, offset, pg);
    if pg {
        return fetch_all(tx, &sql).await;
    }
    let rows = fetch_all(tx, &sql).await?;
    with_related(tx, rows).await
}

/// Profile fields to change; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ProfileChanges {
    pub alias: Option<String>,
    pub introduction: Option<String>,
    pub website: Option<String>,
    pub instagram_id: Option<String>,
    pub twitter_id: Option<String>,
    pub about_you: Option<String>,
    pub business_name: Option<String>,
    pub business_logo_blob_id: Option<Option<i64>>,
    pub coach_since: Option<Option<String>>,
    pub coach_location: Option<Option<String>>,
    pub coach_experience: Option<String>,
    pub mother_tongue_id: Option<Option<i64>>,
    pub coaching_language_id: Option<Option<i64>>,
}

fn text(v: &Option<String>) -> Option<Arg> {
    v.as_ref().map(|s| Arg::Text(s.clone()))
}

fn opt_text(v: &Option<Option<String>>) -> Option<Arg> {
    v.as_ref().map(|o| {
        o.as_ref()
            .map(|s| Arg::Text(s.clone()))
            .unwrap_or(Arg::Null)
    })
}

fn opt_int(v: &Option<Option<i64>>) -> Option<Arg> {
    v.as_ref().map(|o| o.map(Arg::Int).unwrap_or(Arg::Null))
}

pub async fn update_profile(
    tx: &mut Tx,
    user_id: i64,
    c: &ProfileChanges,
    now: i64,
) -> StoreResult<()> {
    let columns: [(&str, Option<Arg>); 13] = [
        ("alias", text(&c.alias)),
        ("introduction", text(&c.introduction)),
        ("website", text(&c.website)),
        ("instagram_id", text(&c.instagram_id)),
        ("twitter_id", text(&c.twitter_id)),
        ("about_you", text(&c.about_you)),
        ("business_name", text(&c.business_name)),
        ("business_logo_blob_id", opt_int(&c.business_logo_blob_id)),
        ("coach_since", opt_text(&c.coach_since)),
        ("coach_location", opt_text(&c.coach_location)),
        ("coach_experience", text(&c.coach_experience)),
        ("mother_tongue_id", opt_int(&c.mother_tongue_id)),
        ("coaching_language_id", opt_int(&c.coaching_language_id)),
    ];
    let mut sql = Sql::new("UPDATE coach_profiles SET updated_at = ");
    sql.bind(Arg::Int(now));
    for (column, value) in columns {
        if let Some(value) = value {
            sql.push(", ").push(column).push(" = ").bind(value);
        }
    }
    sql.push(" WHERE user_id = ").bind(Arg::Int(user_id));
    super::query::execute(tx, &sql).await?;
    Ok(())
}

/// The user columns the coach surface edits.
pub async fn update_user(
    tx: &mut Tx,
    user_id: i64,
    date_of_birth: Option<Option<String>>,
    avatar_blob_id: Option<Option<i64>>,
    now: i64,
) -> StoreResult<()> {
    let mut sql = Sql::new("UPDATE users SET updated_at = ");
    sql.bind(Arg::Int(now));
    if let Some(dob) = date_of_birth {
        sql.push(", date_of_birth = ")
            .bind(dob.map(Arg::Text).unwrap_or(Arg::Null));
    }
    if let Some(avatar) = avatar_blob_id {
        sql.push(", avatar_blob_id = ")
            .bind(avatar.map(Arg::Int).unwrap_or(Arg::Null));
    }
    sql.push(" WHERE id = ").bind(Arg::Int(user_id));
    super::query::execute(tx, &sql).await?;
    Ok(())
}

// ------------------------------------------------------------------- areas

#[derive(Debug, Clone, sqlx::FromRow, Deserialize)]
pub struct AreaRow {
    pub id: i64,
    pub alias: String,
    pub name: String,
    pub category_id: i64,
}
crate::reader_row!(AreaRow {
    id,
    alias,
    name,
    category_id
});

pub async fn set_areas(tx: &mut Tx, user_id: i64, area_ids: &[i64]) -> StoreResult<()> {
    const DELETE: &str = "DELETE FROM coach_areas WHERE user_id = $1";
    on_tx!(tx, |c| sqlx::query(DELETE)
        .bind(user_id)
        .execute(c)
        .await?
        .rows_affected());
    if area_ids.is_empty() {
        return Ok(());
    }
    let mut sql = Sql::new("INSERT INTO coach_areas (user_id, area_id) VALUES ");
    for (i, area) in area_ids.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push("(")
            .bind(Arg::Int(user_id))
            .push(", ")
            .bind(Arg::Int(*area))
            .push(")");
    }
    super::query::execute(tx, &sql).await?;
    Ok(())
}

// ---------------------------------------------------------- reference data

pub async fn all_areas(tx: &mut Tx) -> StoreResult<Vec<AreaRow>> {
    fetch_all(
        tx,
        &Sql::new("SELECT id, alias, name, category_id FROM areas ORDER BY id"),
    )
    .await
}

pub async fn categories(tx: &mut Tx) -> StoreResult<Vec<(i64, String)>> {
    fetch_all(
        tx,
        &Sql::new("SELECT id, name FROM area_categories ORDER BY id"),
    )
    .await
}

pub async fn languages(tx: &mut Tx) -> StoreResult<Vec<(i64, String, String)>> {
    fetch_all(
        tx,
        &Sql::new("SELECT id, code, name FROM languages ORDER BY id"),
    )
    .await
}

pub async fn countries(tx: &mut Tx) -> StoreResult<Vec<(String, String)>> {
    fetch_all(
        tx,
        &Sql::new("SELECT code, name FROM countries ORDER BY code"),
    )
    .await
}

/// Which of `ids` exist in `table` (`areas` or `languages`).
pub async fn existing_ids(
    tx: &mut Tx,
    table: ReferenceTable,
    ids: &[i64],
) -> StoreResult<Vec<i64>> {
    let mut sql = Sql::new(match table {
        ReferenceTable::Areas => "SELECT id FROM areas WHERE id IN ",
        ReferenceTable::Languages => "SELECT id FROM languages WHERE id IN ",
    });
    sql.bind_list(ids.iter().map(|id| Arg::Int(*id)));
    let rows: Vec<(i64,)> = fetch_all(tx, &sql).await?;
    Ok(rows.into_iter().map(|(id,)| id).collect())
}

#[derive(Debug, Clone, Copy)]
pub enum ReferenceTable {
    Areas,
    Languages,
}

pub async fn country_exists(tx: &mut Tx, code: &str) -> StoreResult<bool> {
    const SQL: &str = "SELECT COUNT(*) FROM countries WHERE code = $1";
    let n: i64 = on_tx!(tx, |c| sqlx::query_scalar(SQL)
        .bind(code)
        .fetch_one(c)
        .await?);
    Ok(n > 0)
}

// ---------------------------------------------------------- certifications

#[derive(Debug, Clone, sqlx::FromRow, Deserialize)]
pub struct CertificationRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub issue_institution: String,
    pub issue_date: Option<String>,
    pub attachment_blob_id: Option<i64>,
}
crate::reader_row!(CertificationRow {
    id,
    user_id,
    name,
    issue_institution,
    issue_date,
    attachment_blob_id
});

const CERT_COLUMNS: &str = "id, user_id, name, issue_institution, issue_date, attachment_blob_id";

pub async fn find_certification(
    tx: &mut Tx,
    user_id: i64,
    id: i64,
) -> StoreResult<Option<CertificationRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {CERT_COLUMNS} FROM certifications WHERE id = $1 AND user_id = $2"
    ));
    Ok(on_tx!(tx, |c| sqlx::query_as(sql)
        .bind(id)
        .bind(user_id)
        .fetch_optional(c)
        .await?))
}

/// Inserts (`row.id == 0`) or updates the certification; returns its id.
pub async fn save_certification(tx: &mut Tx, row: &CertificationRow, now: i64) -> StoreResult<i64> {
    if row.id == 0 {
        const SQL: &str = "INSERT INTO certifications (user_id, name, issue_institution, \
             issue_date, attachment_blob_id, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id";
        Ok(on_tx!(tx, |c| sqlx::query_scalar(SQL)
            .bind(row.user_id)
            .bind(&row.name)
            .bind(&row.issue_institution)
            .bind(&row.issue_date)
            .bind(row.attachment_blob_id)
            .bind(now)
            .fetch_one(c)
            .await?))
    } else {
        const SQL: &str = "UPDATE certifications SET name = $3, issue_institution = $4, \
             issue_date = $5, attachment_blob_id = $6, updated_at = $7 \
             WHERE id = $1 AND user_id = $2";
        on_tx!(tx, |c| sqlx::query(SQL)
            .bind(row.id)
            .bind(row.user_id)
            .bind(&row.name)
            .bind(&row.issue_institution)
            .bind(&row.issue_date)
            .bind(row.attachment_blob_id)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected());
        Ok(row.id)
    }
}

/// Deletes the user's certification; returns its attachment's blob id.
pub async fn delete_certification(
    tx: &mut Tx,
    user_id: i64,
    id: i64,
) -> StoreResult<Option<Option<i64>>> {
    const SQL: &str =
        "DELETE FROM certifications WHERE id = $1 AND user_id = $2 RETURNING attachment_blob_id";
    Ok(on_tx!(tx, |c| sqlx::query_scalar(SQL)
        .bind(id)
        .bind(user_id)
        .fetch_optional(c)
        .await?))
}

// --------------------------------------------------------------- education

#[derive(Debug, Clone, sqlx::FromRow, Deserialize)]
pub struct EducationRow {
    pub id: i64,
    pub user_id: i64,
    pub school_name: String,
    pub degree: String,
    pub start_date: Option<String>,
    pub end_date: Option<String>,
}
crate::reader_row!(EducationRow {
    id,
    user_id,
    school_name,
    degree,
    start_date,
    end_date
});

const EDU_COLUMNS: &str = "id, user_id, school_name, degree, start_date, end_date";

pub async fn find_education(
    tx: &mut Tx,
    user_id: i64,
    id: i64,
) -> StoreResult<Option<EducationRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {EDU_COLUMNS} FROM educations WHERE id = $1 AND user_id = $2"
    ));
    Ok(on_tx!(tx, |c| sqlx::query_as(sql)
        .bind(id)
        .bind(user_id)
        .fetch_optional(c)
        .await?))
}

pub async fn save_education(tx: &mut Tx, row: &EducationRow, now: i64) -> StoreResult<i64> {
    if row.id == 0 {
        const SQL: &str = "INSERT INTO educations (user_id, school_name, degree, start_date, \
             end_date, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING id";
        Ok(on_tx!(tx, |c| sqlx::query_scalar(SQL)
            .bind(row.user_id)
            .bind(&row.school_name)
            .bind(&row.degree)
            .bind(&row.start_date)
            .bind(&row.end_date)
            .bind(now)
            .fetch_one(c)
            .await?))
    } else {
        const SQL: &str = "UPDATE educations SET school_name = $3, degree = $4, start_date = $5, \
             end_date = $6, updated_at = $7 WHERE id = $1 AND user_id = $2";
        on_tx!(tx, |c| sqlx::query(SQL)
            .bind(row.id)
            .bind(row.user_id)
            .bind(&row.school_name)
            .bind(&row.degree)
            .bind(&row.start_date)
            .bind(&row.end_date)
            .bind(now)
            .execute(c)
            .await?
            .rows_affected());
        Ok(row.id)
    }
}

pub async fn delete_education(tx: &mut Tx, user_id: i64, id: i64) -> StoreResult<bool> {
    const SQL: &str = "DELETE FROM educations WHERE id = $1 AND user_id = $2";
    let n = on_tx!(tx, |c| sqlx::query(SQL)
        .bind(id)
        .bind(user_id)
        .execute(c)
        .await?
        .rows_affected());
    Ok(n > 0)
}

// ----------------------------------------------------------------- vetting

pub async fn set_vetting(
    tx: &mut Tx,
    user_id: i64,
    status: &str,
    approved: bool,
    now: i64,
) -> StoreResult<()> {
    const SQL: &str = "UPDATE coach_profiles SET vetting_status = $2, approved = $3, \
         vetting_updated_at = $4 WHERE user_id = $1";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(user_id)
        .bind(status)
        .bind(approved)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct VettingEventRow {
    pub id: i64,
    pub from_status: String,
    pub to_status: String,
    pub reason: Option<String>,
    pub actor_id: Option<i64>,
    pub created_at: i64,
}
crate::reader_row!(VettingEventRow {
    id,
    from_status,
    to_status,
    reason,
    actor_id,
    created_at
});

pub async fn insert_vetting_event(
    tx: &mut Tx,
    user_id: i64,
    from: &str,
    to: &str,
    reason: Option<&str>,
    actor_id: i64,
    now: i64,
) -> StoreResult<()> {
    const SQL: &str = "INSERT INTO vetting_events (user_id, from_status, to_status, reason, \
         actor_id, created_at) VALUES ($1, $2, $3, $4, $5, $6)";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(user_id)
        .bind(from)
        .bind(to)
        .bind(reason)
        .bind(actor_id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

pub async fn vetting_events(tx: &mut Tx, user_id: i64) -> StoreResult<Vec<VettingEventRow>> {
    let mut sql = Sql::new(
        "SELECT id, from_status, to_status, reason, actor_id, created_at FROM vetting_events \
         WHERE user_id = ",
    );
    sql.bind(Arg::Int(user_id)).push(" ORDER BY id");
    fetch_all(tx, &sql).await
}
