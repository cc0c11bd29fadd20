//! Users.

use super::query::{self, Arg, Sql};
use super::{Db, StoreResult, Tx, on_tx};

/// A user as stored.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub password: String,
    pub first_name: String,
    pub last_name: String,
    pub role: String,
    pub organization_id: Option<i64>,
    pub added_by: Option<i64>,
    pub is_active: bool,
    pub timezone: String,
    pub token_version: i64,
    pub last_login: Option<i64>,
    pub last_sign_in_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}
crate::reader_row!(UserRow {
    id,
    email,
    password,
    first_name,
    last_name,
    role,
    organization_id,
    added_by,
    is_active,
    timezone,
    token_version,
    last_login,
    last_sign_in_at,
    created_at,
    updated_at,
});

pub(super) const COLUMNS: &str = "id, email, password, first_name, last_name, role, organization_id, \
     added_by, is_active, timezone, token_version, last_login, last_sign_in_at, created_at, updated_at";

/// The fields of a user to insert.
pub struct NewUser<'a> {
    pub email: &'a str,
    pub email_key: &'a str,
    pub password: &'a str,
    pub first_name: &'a str,
    pub last_name: &'a str,
    pub role: &'a str,
    pub organization_id: Option<i64>,
    pub added_by: Option<i64>,
    pub department_id: Option<i64>,
    pub is_active: bool,
    pub now: i64,
}

pub async fn insert(tx: &mut Tx, u: &NewUser<'_>) -> StoreResult<i64> {
    const SQL: &str = "INSERT INTO users (email, email_key, password, first_name, last_name, role, \
         organization_id, added_by, is_active, created_at, updated_at, department_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11) RETURNING id";
    let id: i64 = on_tx!(tx, |c| sqlx::query_scalar(SQL)
        .bind(u.email)
        .bind(u.email_key)
        .bind(u.password)
        .bind(u.first_name)
        .bind(u.last_name)
        .bind(u.role)
        .bind(u.organization_id)
        .bind(u.added_by)
        .bind(u.is_active)
        .bind(u.now)
        .bind(u.department_id)
        .fetch_one(c)
        .await?);
    Ok(id)
}

pub async fn set_organization(tx: &mut Tx, id: i64, organization_id: i64) -> StoreResult<()> {
    const SQL: &str = "UPDATE users SET organization_id = $2 WHERE id = $1";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(id)
        .bind(organization_id)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

pub async fn find_by_id(tx: &mut Tx, id: i64) -> StoreResult<Option<UserRow>> {
    let mut sql = Sql::new(&format!("SELECT {COLUMNS} FROM users WHERE id = "));
    sql.bind(Arg::Int(id));
    Ok(query::fetch_all(tx, &sql).await?.pop())
}

/// [`find_by_id`] for the credential check of every authenticated request,
/// outside a transaction: on SQLite a read on this thread (see
/// [`Db::autocommit`]).
pub async fn find_by_id_for_auth(db: &Db, id: i64) -> StoreResult<Option<UserRow>> {
    find_by_id(&mut db.autocommit().await?, id).await
}

pub async fn find_by_email_key(tx: &mut Tx, email_key: &str) -> StoreResult<Option<UserRow>> {
    let sql = Sql::with_args(
        format!("SELECT {COLUMNS} FROM users WHERE email_key = $1"),
        vec![Arg::Text(email_key.into())],
    );
    query::fetch_optional(tx, &sql).await
}

pub async fn email_key_taken(tx: &mut Tx, email_key: &str) -> StoreResult<bool> {
    let sql = Sql::with_args(
        "SELECT COUNT(*) FROM users WHERE email_key = $1",
        vec![Arg::Text(email_key.into())],
    );
    Ok(query::fetch_int(tx, &sql).await? > 0)
}

pub async fn set_active(tx: &mut Tx, id: i64, active: bool, now: i64) -> StoreResult<()> {
    const SQL: &str = "UPDATE users SET is_active = $2, updated_at = $3 WHERE id = $1";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(id)
        .bind(active)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

/// Replaces the password hash and bumps the token version, which revokes
/// every access and refresh token issued before.
pub async fn set_password(tx: &mut Tx, id: i64, hash: &str, now: i64) -> StoreResult<()> {
    const SQL: &str = "UPDATE users SET password = $2, token_version = token_version + 1, \
         updated_at = $3 WHERE id = $1";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(id)
        .bind(hash)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

pub async fn set_last_login(tx: &mut Tx, id: i64, now: i64) -> StoreResult<()> {
    const SQL: &str = "UPDATE users SET last_login = $2 WHERE id = $1";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

pub async fn set_last_sign_in(tx: &mut Tx, id: i64, now: i64) -> StoreResult<()> {
    const SQL: &str = "UPDATE users SET last_sign_in_at = $2 WHERE id = $1";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(id)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

pub async fn count_in_organization(tx: &mut Tx, organization_id: i64) -> StoreResult<i64> {
    const SQL: &str = "SELECT COUNT(*) FROM users WHERE organization_id = $1";
    Ok(on_tx!(tx, |c| sqlx::query_scalar(SQL)
        .bind(organization_id)
        .fetch_one(c)
        .await?))
}

pub async fn set_names(tx: &mut Tx, id: i64, first: &str, last: &str, now: i64) -> StoreResult<()> {
    const SQL: &str =
        "UPDATE users SET first_name = $2, last_name = $3, updated_at = $4 WHERE id = $1";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(id)
        .bind(first)
        .bind(last)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

pub async fn delete(tx: &mut Tx, id: i64) -> StoreResult<()> {
    const SQL: &str = "DELETE FROM users WHERE id = $1";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(id)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

/// How many users of the organisation hold `role`.
pub async fn count_in_role(tx: &mut Tx, organization_id: i64, role: &str) -> StoreResult<i64> {
    const SQL: &str = "SELECT COUNT(*) FROM users WHERE organization_id = $1 AND role = $2";
    Ok(on_tx!(tx, |c| sqlx::query_scalar(SQL)
        .bind(organization_id)
        .bind(role)
        .fetch_one(c)
        .await?))
}

/// `('admin', 'coach', 'member')`: roles written into the SQL, not bound.
/// They are the domain's constants, never a client's words (checked:
/// lowercase letters only), and written out they let the team's partial
/// indexes (migration 0009) serve its pages, as SQLite takes a partial
/// index only for a query that repeats its condition.
pub fn roles_sql(roles: &[&str]) -> String {
    let quoted: Vec<String> = roles
        .iter()
        .filter(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_lowercase()))
        .map(|r| format!("'{r}'"))
        .collect();
    if quoted.is_empty() {
        "(NULL)".into()
    } else {
        format!("({})", quoted.join(", "))
    }
}

/// Appends a query for how many users of the organisation hold one of
/// `roles`, read from the trigger-kept `user_counts` rather than by
/// counting rows. The roles are compared one by one (`role = $n OR ...`),
/// not with `IN (...)`: SQLite fills a temporary table with an `IN` list on
/// every run, which cost five times the rest of this count (1.1 µs against
/// 0.2 µs in the bundled SQLite), a tenth of a team page's statement.
pub fn push_count_in_roles(sql: &mut Sql, organization_id: i64, roles: &[&str], pg: bool) {
    // SUM of BIGINT is NUMERIC on PostgreSQL.
    let cast = if pg { "::BIGINT" } else { "" };
    sql.push(&format!(
        "SELECT COALESCE(SUM(n), 0){cast} FROM user_counts WHERE organization_id = "
    ))
    .bind(Arg::Int(organization_id))
    .push(" AND (");
    if roles.is_empty() {
        sql.push("1 = 0");
    }
    for (i, role) in roles.iter().enumerate() {
        if i > 0 {
            sql.push(" OR ");
        }
        sql.push("role = ").bind(Arg::Text((*role).to_string()));
    }
    sql.push(")");
}

/// Inserts many users in one statement per call (for seeding); returns
/// nothing, since bulk callers look rows up by email afterwards.
pub async fn insert_many(tx: &mut Tx, users: &[NewUser<'_>]) -> StoreResult<()> {
    use super::query::{Arg, Sql};
    if users.is_empty() {
        return Ok(());
    }
    let mut sql = Sql::new(
        "INSERT INTO users (email, email_key, password, first_name, last_name, role, organization_id, \
         added_by, department_id, is_active, created_at, updated_at) VALUES ",
    );
    for (i, u) in users.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        let opt = |v: Option<i64>| v.map(Arg::Int).unwrap_or(Arg::Null);
        sql.push("(")
            .bind(Arg::Text(u.email.into()))
            .push(", ")
            .bind(Arg::Text(u.email_key.into()));
        sql.push(", ")
            .bind(Arg::Text(u.password.into()))
            .push(", ")
            .bind(Arg::Text(u.first_name.into()));
        sql.push(", ")
            .bind(Arg::Text(u.last_name.into()))
            .push(", ")
            .bind(Arg::Text(u.role.into()));
        sql.push(", ")
            .bind(opt(u.organization_id))
            .push(", ")
            .bind(opt(u.added_by));
        sql.push(", ")
            .bind(opt(u.department_id))
            .push(", ")
            .bind(Arg::Bool(u.is_active));
        sql.push(", ")
            .bind(Arg::Int(u.now))
            .push(", ")
            .bind(Arg::Int(u.now))
            .push(")");
    }
    super::query::execute(tx, &sql).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::roles_sql;

    #[test]
    fn scope_roles_are_written_out_only_when_plain_words() {
        assert_eq!(
            roles_sql(&["admin", "coach", "member"]),
            "('admin', 'coach', 'member')"
        );
        assert_eq!(roles_sql(&["client"]), "('client')");
        // Anything else is left out rather than written into the SQL.
        assert_eq!(roles_sql(&["x' OR 1=1 --", "Admin", ""]), "(NULL)");
        assert_eq!(roles_sql(&[]), "(NULL)");
    }
}
