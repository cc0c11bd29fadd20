//! Team members: the users of an organisation with role admin, coach or
//! member. Every function takes the organisation id and filters by it.

use super::query::{self, Arg, Sql, like_pattern};
use super::{StoreResult, Tx, on_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MemberRow {
    pub id: i64,
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub role: String,
    pub organization_id: Option<i64>,
    pub department_id: Option<i64>,
    pub added_by: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// How many members match (pages of [`list`] only).
    #[sqlx(default)]
    pub total: Option<i64>,
}

const COLUMNS: &str = "u.id, u.email, u.first_name, u.last_name, u.role, u.organization_id, \
     u.department_id, u.added_by, u.created_at, u.updated_at";
const TEAM_ROLES: &str = "('admin', 'coach', 'member')";

/// The fields a team list can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberOrder {
    Id,
    FirstName,
    LastName,
    Email,
    CreatedAt,
    UpdatedAt,
}

impl MemberOrder {
    /// The column, as ordered (byte-wise text on PostgreSQL, as on SQLite).
    fn column(self) -> &'static str {
        match self {
            MemberOrder::Id => "id",
            MemberOrder::FirstName => "first_name",
            MemberOrder::LastName => "last_name",
            MemberOrder::Email => "email",
            MemberOrder::CreatedAt => "created_at",
            MemberOrder::UpdatedAt => "updated_at",
        }
    }

    fn sort_key(self, pg: bool) -> String {
        match (self, pg) {
            (MemberOrder::FirstName | MemberOrder::LastName | MemberOrder::Email, true) => {
                format!("{} COLLATE \"C\"", self.column())
            }
            _ => self.column().to_string(),
        }
    }
}

pub async fn find(tx: &mut Tx, org: i64, id: i64) -> StoreResult<Option<MemberRow>> {
    let sql = sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM users u WHERE u.organization_id = $1 AND u.id = $2 AND u.role IN {TEAM_ROLES}"
    ));
    Ok(on_tx!(tx, |c| sqlx::query_as(sql)
        .bind(org)
        .bind(id)
        .fetch_optional(c)
        .await?))
}

pub async fn update(
    tx: &mut Tx,
    id: i64,
    first_name: &str,
    last_name: &str,
    department_id: Option<i64>,
    role: &str,
    now: i64,
) -> StoreResult<()> {
    const SQL: &str = "UPDATE users SET first_name = $2, last_name = $3, department_id = $4, role = $5, \
         updated_at = $6 WHERE id = $1";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(id)
        .bind(first_name)
        .bind(last_name)
        .bind(department_id)
        .bind(role)
        .bind(now)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}

/// The ids (and `extra` columns) of every matching member: organisation,
/// team roles, and each search term matching first name, last name or email.
fn matching(sql: &mut Sql, org: i64, terms: &[String], pg: bool, extra: &str) {
    sql.push(&format!(
        "SELECT u.id{extra} FROM users u WHERE u.role IN {TEAM_ROLES}"
    ));
    if !pg && terms.iter().any(|t| t.chars().count() >= 3) {
        // Driven by the FTS matches: `+` keeps SQLite from probing the
        // organisation index once per match instead of reading the row.
        sql.push(" AND +u.organization_id = ").bind(Arg::Int(org));
    } else {
        sql.push(" AND u.organization_id = ").bind(Arg::Int(org));
    }
    for term in terms {
        if pg {
            // Served by the users_search trigram index (3+ characters).
            sql.push(" AND (u.first_name || chr(31) || u.last_name || chr(31) || u.email) ILIKE ")
                .bind(Arg::Text(like_pattern(term)))
                .push(" ESCAPE '\\'");
        } else if term.chars().count() >= 3 {
            // FTS5 trigram phrase: a case-insensitive substring of one column.
            let phrase = format!("\"{}\"", term.replace('"', "\"\""));
            sql.push(" AND u.id IN (SELECT rowid FROM users_fts WHERE users_fts MATCH ")
                .bind(Arg::Text(phrase))
                .push(")");
        } else {
            // Trigrams cannot serve 1-2 characters: scan the organisation.
            let pattern = Arg::Text(like_pattern(term));
            sql.push(" AND (u.first_name LIKE ")
                .bind(pattern.clone())
                .push(" ESCAPE '\\' OR u.last_name LIKE ");
            sql.bind(pattern.clone())
                .push(" ESCAPE '\\' OR u.email LIKE ")
                .bind(pattern)
                .push(" ESCAPE '\\')");
        }
    }
}

/// Appends the number of team members without search terms, from the
/// trigger-maintained `user_counts` rather than by counting rows.
fn team_size(sql: &mut Sql, org: i64, pg: bool) {
    // SUM of BIGINT is NUMERIC on PostgreSQL.
    let cast = if pg { "::BIGINT" } else { "" };
    sql.push(&format!(
        "SELECT COALESCE(SUM(n), 0){cast} FROM user_counts WHERE organization_id = "
    ))
    .bind(Arg::Int(org))
    .push(" AND role IN ")
    .push(TEAM_ROLES);
}

/// How many members match. Without search terms the answer comes from the
/// trigger-maintained `user_counts`, not from counting rows.
pub async fn count(tx: &mut Tx, org: i64, terms: &[String]) -> StoreResult<i64> {
    let pg = tx.is_postgres();
    let mut sql = Sql::default();
    if terms.is_empty() {
        team_size(&mut sql, org, pg);
    } else {
        sql.push("SELECT COUNT(*) FROM (");
        matching(&mut sql, org, terms, pg, "");
        sql.push(") m");
    }
    query::fetch_count(tx, &sql).await
}

/// One page of the organisation's team. The page's ids are chosen first,
/// from an index (or, with search terms, from the matches collected in a
/// materialised CTE with their sort columns), and only those rows are read:
/// skipped rows are never fetched, and neither planner can fall into
/// walking a sort index while testing every row against the search.
pub async fn list(
    tx: &mut Tx,
    org: i64,
    terms: &[String],
    order: &[(MemberOrder, bool)],
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<MemberRow>> {
    let pg = tx.is_postgres();
    let order_by = query::order_by(order.iter().map(|(o, desc)| (o.sort_key(pg), *desc)), "id");
    let mut sql = Sql::default();
    if terms.is_empty() {
        sql.push(&format!("SELECT {COLUMNS}, ("));
        team_size(&mut sql, org, pg);
        sql.push(") AS total FROM users u WHERE u.id IN (");
        matching(&mut sql, org, terms, pg, "");
        sql.push(&order_by);
    } else {
        let mut extra = String::new();
        for (o, _) in order {
            if *o != MemberOrder::Id && !extra.contains(o.column()) {
                extra.push_str(&format!(", u.{}", o.column()));
            }
        }
        // The matches are collected once and serve both the page and the
        // count (the caller needs no second pass over them).
        sql.push("WITH m AS MATERIALIZED (");
        matching(&mut sql, org, terms, pg, &extra);
        sql.push(&format!(
            ") SELECT {COLUMNS}, (SELECT COUNT(*) FROM m) AS total \
             FROM users u WHERE u.id IN (SELECT id FROM m{order_by}"
        ));
    }
    sql.push(" LIMIT ")
        .bind(Arg::Int(limit))
        .push(" OFFSET ")
        .bind(Arg::Int(offset))
        .push(")");
    sql.push(&order_by);
    query::fetch_all(tx, &sql).await
}
