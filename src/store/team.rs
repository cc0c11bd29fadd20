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
    fn column(self, pg: bool) -> &'static str {
        match (self, pg) {
            (MemberOrder::Id, _) => "u.id",
            (MemberOrder::FirstName, false) => "u.first_name",
            (MemberOrder::FirstName, true) => "u.first_name COLLATE \"C\"",
            (MemberOrder::LastName, false) => "u.last_name",
            (MemberOrder::LastName, true) => "u.last_name COLLATE \"C\"",
            (MemberOrder::Email, false) => "u.email",
            (MemberOrder::Email, true) => "u.email COLLATE \"C\"",
            (MemberOrder::CreatedAt, _) => "u.created_at",
            (MemberOrder::UpdatedAt, _) => "u.updated_at",
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

/// The id filter of every matching member: organisation, team roles, and
/// each search term matching first name, last name or email.
fn matching_ids(org: i64, terms: &[String], pg: bool) -> Sql {
    let mut sql = Sql::new("SELECT u.id FROM users u WHERE u.organization_id = ");
    sql.bind(Arg::Int(org))
        .push(" AND u.role IN ")
        .push(TEAM_ROLES);
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
    sql
}

pub async fn count(tx: &mut Tx, org: i64, terms: &[String]) -> StoreResult<i64> {
    let ids = matching_ids(org, terms, tx.is_postgres());
    let sql = Sql {
        text: format!("SELECT COUNT(*) FROM ({}) m", ids.text),
        args: ids.args,
    };
    query::fetch_count(tx, &sql).await
}

/// One page of the organisation's team. With search terms the matches are
/// collected first (a materialised CTE) and then sorted: otherwise both
/// planners walk the sort index and test every row against the search.
pub async fn list(
    tx: &mut Tx,
    org: i64,
    terms: &[String],
    order: &[(MemberOrder, bool)],
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<MemberRow>> {
    let pg = tx.is_postgres();
    let ids = matching_ids(org, terms, pg);
    let order_by = query::order_by(order.iter().map(|(o, desc)| (o.column(pg), *desc)), "u.id");
    let mut sql = if terms.is_empty() {
        let where_clause = ids.text.trim_start_matches("SELECT u.id FROM users u");
        Sql {
            text: format!("SELECT {COLUMNS} FROM users u{where_clause}{order_by}"),
            args: ids.args,
        }
    } else {
        Sql {
            text: format!(
                "WITH m AS MATERIALIZED ({}) SELECT {COLUMNS} FROM users u WHERE u.id IN (SELECT id FROM m){order_by}",
                ids.text
            ),
            args: ids.args,
        }
    };
    sql.push(" LIMIT ")
        .bind(Arg::Int(limit))
        .push(" OFFSET ")
        .bind(Arg::Int(offset));
    query::fetch_all(tx, &sql).await
}
