//! People as the organisation API lists them: team members, clients and
//! program members, with exact and substring filters. Every function takes
//! the organisation id and filters by it.

use std::sync::LazyLock;

use serde::Deserialize;

use super::custom_fields;
use super::query::{
    self, Arg, Sql, WithRelated, json_array, json_object, like_pattern, related_column,
};
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
    /// How many people the list matches (pages of [`list`] only).
    #[sqlx(default)]
    pub total: Option<i64>,
}
crate::reader_row!(PersonRow {
    id,
    first_name,
    last_name,
    email,
    timezone,
    role,
    created_at,
    total
});

/// The custom fields of a person's organisation and the person's values,
/// read with the person when a list asks for them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct PersonInfo {
    /// The organisation's fields (id and slug), in id order.
    pub fields: Vec<InfoField>,
    /// The person's values (JSON text), by field id.
    pub values: Vec<InfoValue>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InfoField {
    pub id: i64,
    pub slug: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct InfoValue {
    pub field_id: i64,
    pub value: String,
}

/// A person on a page of a list, with their [`PersonInfo`] if asked for.
pub type PersonRecord = WithRelated<PersonRow, PersonInfo>;

/// The `related` column of a list without [`PersonInfo`].
const NO_INFO: &str = "'{}' AS related";

/// The `related` column of a list with [`PersonInfo`], on PostgreSQL.
/// (SQLite reads the fields and values a statement each: see
/// [`super::coach`]'s `COACH_RECORD_SELECT`.)
static INFO_COLUMN: LazyLock<String> = LazyLock::new(|| {
    let pg = true;
    // The fields are the same on every row: the organisation is the person's.
    let fields = json_array(
        pg,
        &json_object(pg, &[("id", "f.id"), ("slug", "f.slug")]),
        "custom_fields f WHERE f.organization_id = u.organization_id",
        "f.id",
    );
    let values = json_array(
        pg,
        &json_object(pg, &[("field_id", "v.field_id"), ("value", "v.value")]),
        "custom_field_values v WHERE v.user_id = u.id",
        "v.field_id",
    );
    related_column(pg, &[("fields", &fields), ("values", &values)])
});

/// The [`PersonInfo`] of `rows`, two statements (SQLite).
async fn add_info(tx: &mut Tx, org: i64, rows: &mut [PersonRecord]) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let fields = custom_fields::list(tx, org).await?;
    if fields.is_empty() {
        return Ok(());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.row.id).collect();
    let values = custom_fields::values_of(tx, &ids).await?;
    for person in rows {
        person.related = PersonInfo {
            fields: fields
                .iter()
                .map(|f| InfoField {
                    id: f.id,
                    slug: f.slug.clone(),
                })
                .collect(),
            values: values
                .iter()
                .filter(|v| v.user_id == person.row.id)
                .map(|v| InfoValue {
                    field_id: v.field_id,
                    value: v.value.clone(),
                })
                .collect(),
        };
    }
    Ok(())
}

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

/// Appends ` FROM ... WHERE ...` of the people `scope` and `filter` select.
fn from_where(sql: &mut Sql, org: i64, scope: Scope<'_>, filter: &PeopleFilter, pg: bool) {
    match scope {
        Scope::Users { roles } => {
            sql.push(" FROM users u WHERE u.organization_id = ")
                .bind(Arg::Int(org))
                .push(" AND u.role IN ")
                .push(&roles_sql(roles));
        }
        Scope::Program { program_id } => {
            sql.push(
                " FROM program_members pm JOIN users u ON u.id = pm.user_id WHERE pm.program_id = ",
            )
            .bind(Arg::Int(program_id))
            .push(" AND u.organization_id = ")
            .bind(Arg::Int(org));
        }
    }
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
}

/// Appends the statement that counts the people `scope` and `filter` select.
fn counted(sql: &mut Sql, org: i64, scope: Scope<'_>, filter: &PeopleFilter, pg: bool) {
    let unfiltered = filter.ids.is_none() && filter.emails.is_none() && filter.roles.is_none();
    if let (Scope::Users { roles }, true) = (scope, unfiltered) {
        // From the trigger-maintained `user_counts`, not by counting rows
        // (100,000 team members: 3 ms a page).
        users::push_count_in_roles(sql, org, roles, pg);
    } else {
        sql.push("SELECT COUNT(*)");
        from_where(sql, org, scope, filter, pg);
    }
}

pub async fn count(
    tx: &mut Tx,
    org: i64,
    scope: Scope<'_>,
    filter: &PeopleFilter,
) -> StoreResult<i64> {
    let mut sql = Sql::default();
    counted(&mut sql, org, scope, filter, tx.is_postgres());
    query::fetch_int(tx, &sql).await
}

/// One page of people, each row carrying the number of matches in
/// `total` and, with `info`, its [`PersonInfo`]: on PostgreSQL one
/// statement, on SQLite three (see [`super::Db::begin_object_read`]).
#[allow(clippy::too_many_arguments)]
pub async fn list(
    tx: &mut Tx,
    org: i64,
    scope: Scope<'_>,
    filter: &PeopleFilter,
    sort: &[(PeopleSort, bool)],
    limit: i64,
    offset: i64,
    info: bool,
) -> StoreResult<Vec<PersonRecord>> {
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
    let mut sql = Sql::new(&format!(
        "SELECT u.id, u.first_name, u.last_name, u.email, u.timezone, {role} AS role, \
         {created} AS created_at, ("
    ));
    counted(&mut sql, org, scope, filter, pg);
    sql.push(") AS total, ")
        .push(if info && pg { &INFO_COLUMN } else { NO_INFO });
    from_where(&mut sql, org, scope, filter, pg);
    sql.push(&query::order_by(keys.into_iter(), "u.id"));
    sql.limit_offset(limit, offset, pg);
    let mut rows = query::fetch_all(tx, &sql).await?;
    if info && !pg {
        add_info(tx, org, &mut rows).await?;
    }
    Ok(rows)
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
    Ok(
        list(tx, org, Scope::Users { roles }, &filter, &[], 1, 0, false)
            .await?
            .pop()
            .map(|found| found.row),
    )
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
