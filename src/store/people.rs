//! People as the organisation API lists them: team members, clients and
//! program members, with exact and substring filters. Every function takes
//! the organisation id and filters by it.

use super::query::{self, Arg, Sql, like_pattern};
use super::users::{self, roles_sql};
use super::{StoreResult, Tx, on_tx};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PersonRow {
    pub id: i64,
    pub first_name: String,
    pub last_name: String,
    pub email: String,
    pub timezone: String,
    /// The user's role, or their role in the program for program members.
    pub role: String,
    /// When the user was created, or joined the program.
    pub created_at: i64,
}
crate::reader_row!(PersonRow {
    id,
    first_name,
    last_name,
    email,
    timezone,
    role,
    created_at
});

/// Filters of a people list; `None` means not filtered.
#[derive(Debug, Default, Clone)]
pub struct PeopleFilter {
    pub ids: Option<Vec<i64>>,
    /// Case-insensitive substrings of the email, any of which may match.
    pub emails: Option<Vec<String>>,
    pub roles: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeopleSort {
    Name,
    CreatedAt,
    Role,
}

/// Which people: users of the organisation in some roles, or the members
/// of one of its programs.
#[derive(Debug, Clone, Copy)]
pub enum Scope<'a> {
    Users { roles: &'a [&'a str] },
    Program { program_id: i64 },
}

fn from_where(org: i64, scope: Scope<'_>, filter: &PeopleFilter, pg: bool) -> Sql {
    let mut sql = match scope {
        Scope::Users { roles } => {
            let mut sql = Sql::new(" FROM users u WHERE u.organization_id = ");
            sql.bind(Arg::Int(org))
                .push(" AND u.role IN ")
                .push(&roles_sql(roles));
            sql
        }
        Scope::Program { program_id } => {
            let mut sql = Sql::new(
                " FROM program_members pm JOIN users u ON u.id = pm.user_id WHERE pm.program_id = ",
            );
            sql.bind(Arg::Int(program_id))
                .push(" AND u.organization_id = ")
                .bind(Arg::Int(org));
            sql
        }
    };
    let role_column = match scope {
        Scope::Users { .. } => "u.role",
        Scope::Program { .. } => "pm.role",
    };
    if let Some(ids) = &filter.ids {
        sql.push(" AND u.id IN ")
            .bind_list(ids.iter().map(|id| Arg::Int(*id)));
    }
    if let Some(emails) = &filter.emails {
        sql.push(" AND (");
        for (i, e) in emails.iter().enumerate() {
            if i > 0 {
                sql.push(" OR ");
            }
            let op = if pg { "ILIKE" } else { "LIKE" };
            sql.push(&format!("u.email {op} "))
                .bind(Arg::Text(like_pattern(e)))
                .push(" ESCAPE '\\'");
        }
        sql.push(")");
    }
    if let Some(roles) = &filter.roles {
        sql.push(&format!(" AND {role_column} IN "));
        sql.bind_list(roles.iter().map(|r| Arg::Text(r.clone())));
    }
    sql
}

pub async fn count(
    tx: &mut Tx,
    org: i64,
    scope: Scope<'_>,
    filter: &PeopleFilter,
) -> StoreResult<i64> {
    let unfiltered = filter.ids.is_none() && filter.emails.is_none() && filter.roles.is_none();
    if let (Scope::Users { roles }, true) = (scope, unfiltered) {
        // From the trigger-maintained `user_counts`, not by counting rows
        // (100,000 team members: 3 ms a page).
        let mut sql = Sql::default();
        users::push_count_in_roles(&mut sql, org, roles, tx.is_postgres());
        return query::fetch_int(tx, &sql).await;
    }
    let f = from_where(org, scope, filter, tx.is_postgres());
    let sql = Sql {
        text: format!("SELECT COUNT(*){}", f.text),
        args: f.args,
    };
    query::fetch_int(tx, &sql).await
}

pub async fn list(
    tx: &mut Tx,
    org: i64,
    scope: Scope<'_>,
    filter: &PeopleFilter,
    sort: &[(PeopleSort, bool)],
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<PersonRow>> {
    let pg = tx.is_postgres();
    let text = |column: &str| {
        if pg {
            format!("{column} COLLATE \"C\"")
        } else {
            column.to_string()
        }
    };
    let (role, created) = match scope {
        Scope::Users { .. } => ("u.role", "u.created_at"),
        Scope::Program { .. } => ("pm.role", "pm.created_at"),
    };
    let mut keys: Vec<(String, bool)> = Vec::new();
    for (s, desc) in sort {
        match s {
            PeopleSort::Name => {
                keys.push((text("u.first_name"), *desc));
                keys.push((text("u.last_name"), *desc));
            }
            PeopleSort::CreatedAt => keys.push((created.to_string(), *desc)),
            PeopleSort::Role => keys.push((text(role), *desc)),
        }
    }
    let f = from_where(org, scope, filter, pg);
    let mut sql = Sql {
        text: format!(
            "SELECT u.id, u.first_name, u.last_name, u.email, u.timezone, {role} AS role, {created} AS created_at{}",
            f.text
        ),
        args: f.args,
    };
    sql.push(&query::order_by(keys.into_iter(), "u.id"));
    sql.limit_offset(limit, offset, pg);
    query::fetch_all(tx, &sql).await
}

/// One user of the organisation in one of `roles`.
pub async fn find(
    tx: &mut Tx,
    org: i64,
    roles: &[&str],
    id: i64,
) -> StoreResult<Option<PersonRow>> {
    let filter = PeopleFilter {
        ids: Some(vec![id]),
        ..Default::default()
    };
    Ok(list(tx, org, Scope::Users { roles }, &filter, &[], 1, 0)
        .await?
        .pop())
}

pub async fn set_timezone(tx: &mut Tx, id: i64, timezone: &str) -> StoreResult<()> {
    const SQL: &str = "UPDATE users SET timezone = $2 WHERE id = $1";
    on_tx!(tx, |c| sqlx::query(SQL)
        .bind(id)
        .bind(timezone)
        .execute(c)
        .await?
        .rows_affected());
    Ok(())
}
