//! Company administration: departments and team members. Only the
//! company's admins may use it; every query is scoped to the admin's
//! organisation, so another company's ids are simply not found.

use super::auth::Principal;
use super::error::NON_FIELD;
use super::{Error, Result, Role, now_micros};
use crate::app::AppState;
use crate::store::departments::{self, DepartmentOrder, DepartmentRow};
use crate::store::team::{self, MemberOrder, MemberRow};
use crate::store::users::{self, NewUser};

pub const DEPARTMENT_NOT_UNIQUE: &str = "The fields company, name must make a unique set.";
pub const LAST_ADMIN: &str = super::accounts::LAST_ADMIN;

/// Which page of a list: a number from 1, or the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageNumber {
    Number(i64),
    Last,
}

/// What a list request asks for, in domain terms.
#[derive(Debug, Clone)]
pub struct ListRequest<O> {
    /// Every term must match at least one searched field (substring,
    /// case-insensitive).
    pub terms: Vec<String>,
    /// Fields with `true` for descending; the id breaks ties.
    pub order: Vec<(O, bool)>,
    pub page: PageNumber,
    pub page_size: i64,
}

/// One page of a list and where it sits.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub count: i64,
    pub number: i64,
    pub last: i64,
    pub rows: Vec<T>,
}

/// The page number and offset of `page`, or `InvalidPage`. An empty list
/// has one (empty) page.
pub(crate) fn locate(count: i64, page: PageNumber, size: i64) -> Result<(i64, i64, i64)> {
    let size = size.max(1);
    let last = ((count + size - 1) / size).max(1);
    let number = match page {
        PageNumber::Last => last,
        PageNumber::Number(n) => n,
    };
    if number < 1 || number > last {
        return Err(Error::InvalidPage);
    }
    Ok((number, last, (number - 1) * size))
}

/// A page of a list. A numbered page is one statement whose rows carry the
/// count (`total`): a single read, consistent on its own, so it needs no
/// transaction (whose BEGIN and COMMIT would be two more round trips).
/// The count is asked for separately only when that page is empty (past
/// the end, or an empty list) or for the last page, whose offset depends
/// on the count. (A macro: async closures borrowing the transaction make
/// futures the compiler cannot yet prove `Send`.)
macro_rules! page_of {
    ($state:expr, $page:expr, $size:expr,
     count: |$ctx:ident| $count:expr,
     list: |$ltx:ident, $offset:ident| $list:expr $(,)?) => {{
        let (page, size): (PageNumber, i64) = ($page, $size);
        match page {
            PageNumber::Number(n) if n >= 1 => {
                let mut conn = $state.db.autocommit().await?;
                let rows = {
                    let ($ltx, $offset) = (&mut conn, (n - 1).saturating_mul(size));
                    $list.await?
                };
                let count = match rows.first().and_then(|row| row.total) {
                    Some(total) => total,
                    None => {
                        let $ctx = &mut conn;
                        $count.await?
                    }
                };
                let (number, last, _) = locate(count, page, size)?;
                Ok(Page {
                    count,
                    number,
                    last,
                    rows,
                })
            }
            _ => {
                let mut tx = $state.db.begin_read().await?;
                let count = {
                    let $ctx = &mut tx;
                    $count.await?
                };
                let (number, last, offset) = locate(count, page, size)?;
                let rows = {
                    let ($ltx, $offset) = (&mut tx, offset);
                    $list.await?
                };
                tx.commit().await?;
                Ok(Page {
                    count,
                    number,
                    last,
                    rows,
                })
            }
        }
    }};
}

// ---------------------------------------------------------------- departments

pub async fn list_departments(
    state: &AppState,
    me: &Principal,
    req: &ListRequest<DepartmentOrder>,
) -> Result<Page<DepartmentRow>> {
    let org = me.admin_organization()?;
    page_of!(state, req.page, req.page_size,
        count: |tx| departments::count(tx, org, &req.terms),
        list: |tx, offset| departments::list(tx, org, &req.terms, &req.order, req.page_size, offset),
    )
}

pub async fn find_department(state: &AppState, me: &Principal, id: i64) -> Result<DepartmentRow> {
    let org = me.admin_organization()?;
    let mut tx = state.db.begin_read().await?;
    let row = departments::find(&mut tx, org, id)
        .await?
        .ok_or(Error::NotFound)?;
    tx.commit().await?;
    Ok(row)
}

/// Department names are unique within a company, compared case-insensitively.
pub async fn create_department(
    state: &AppState,
    me: &Principal,
    name: &str,
) -> Result<DepartmentRow> {
    let org = me.admin_organization()?;
    let key = name.to_lowercase();
    let mut tx = state.db.begin_write().await?;
    if departments::name_taken(&mut tx, org, &key, 0).await? {
        return Err(Error::field(NON_FIELD, DEPARTMENT_NOT_UNIQUE));
    }
    let row = departments::insert(&mut tx, org, name, &key, me.id(), now_micros()).await?;
    tx.commit().await?;
    Ok(row)
}

pub async fn rename_department(
    state: &AppState,
    me: &Principal,
    id: i64,
    name: Option<&str>,
) -> Result<DepartmentRow> {
    let org = me.admin_organization()?;
    let mut tx = state.db.begin_write().await?;
    let current = departments::find(&mut tx, org, id)
        .await?
        .ok_or(Error::NotFound)?;
    if let Some(name) = name {
        let key = name.to_lowercase();
        if departments::name_taken(&mut tx, org, &key, id).await? {
            return Err(Error::field(NON_FIELD, DEPARTMENT_NOT_UNIQUE));
        }
        departments::rename(&mut tx, org, id, name, &key, now_micros()).await?;
    }
    let row = departments::find(&mut tx, org, id)
        .await?
        .unwrap_or(current);
    tx.commit().await?;
    Ok(row)
}

/// Deletes a department; its members stay, without a department.
pub async fn delete_department(state: &AppState, me: &Principal, id: i64) -> Result<()> {
    let org = me.admin_organization()?;
    let mut tx = state.db.begin_write().await?;
    if !departments::delete(&mut tx, org, id).await? {
        return Err(Error::NotFound);
    }
    tx.commit().await?;
    Ok(())
}

/// Whether `id` is a department of the caller's company (for body fields
/// that name one).
pub async fn department_exists(state: &AppState, me: &Principal, id: i64) -> Result<bool> {
    let org = me.admin_organization()?;
    let mut tx = state.db.begin_read().await?;
    let found = departments::find(&mut tx, org, id).await?.is_some();
    tx.commit().await?;
    Ok(found)
}

// ---------------------------------------------------------------- team members

/// The roles a team member can hold.
pub const TEAM_ROLES: [Role; 3] = [Role::Admin, Role::Coach, Role::Member];

pub async fn list_team(
    state: &AppState,
    me: &Principal,
    req: &ListRequest<MemberOrder>,
) -> Result<Page<MemberRow>> {
    let org = me.admin_organization()?;
    page_of!(state, req.page, req.page_size,
        count: |tx| team::count(tx, &state.team_lists.searches, org, &req.terms, &req.order),
        list: |tx, offset| team::list(
            tx,
            &state.team_lists,
            org,
            &req.terms,
            &req.order,
            req.page_size,
            offset
        ),
    )
}

pub async fn find_member(state: &AppState, me: &Principal, id: i64) -> Result<MemberRow> {
    let org = me.admin_organization()?;
    let mut tx = state.db.begin_read().await?;
    let row = team::find(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    tx.commit().await?;
    Ok(row)
}

/// A team member to create (the surface has checked the fields).
pub struct NewMember {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    pub department_id: Option<i64>,
    pub role: Role,
    pub password: String,
}

/// Creates an active member of the admin's company, who can log in at once.
/// A coach gets a vetting record (pending).
pub async fn create_member(
    state: &AppState,
    me: &Principal,
    input: NewMember,
) -> Result<MemberRow> {
    let org = me.admin_organization()?;
    if !TEAM_ROLES.contains(&input.role) {
        return Err(Error::field(
            "role",
            format!("\"{}\" is not a valid choice.", input.role.title()),
        ));
    }
    let email = super::normalize_email(&input.email);
    state.passwords.check(
        "password",
        &input.password,
        &[
            ("email", &email),
            ("first name", &input.first_name),
            ("last name", &input.last_name),
        ],
    )?;
    let hash = state.hasher.hash(&input.password).await?;
    let key = super::email_key(&email);
    let now = now_micros();
    let mut tx = state.db.begin_write().await?;
    if users::email_key_taken(&mut tx, &key).await? {
        return Err(Error::field("email", super::accounts::EMAIL_TAKEN));
    }
    if let Some(dept) = input.department_id
        && departments::find(&mut tx, org, dept).await?.is_none()
    {
        return Err(Error::field("department", invalid_pk(dept)));
    }
    let id = users::insert(
        &mut tx,
        &NewUser {
            email: &email,
            email_key: &key,
            password: &hash,
            first_name: &input.first_name,
            last_name: &input.last_name,
            role: input.role.as_str(),
            organization_id: Some(org),
            added_by: Some(me.id()),
            department_id: input.department_id,
            is_active: true,
            now,
        },
    )
    .await?;
    match input.role {
        Role::Coach => {
            super::coach::ensure_profile(&mut tx, id, &input.first_name, &input.last_name, now)
                .await?
        }
        Role::Member => {
            super::profiles::ensure(&mut tx, id, org, &input.first_name, &input.last_name).await?
        }
        _ => {}
    }
    let row = team::find(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    tx.commit().await?;
    Ok(row)
}

/// DRF's message for a primary key that names nothing the caller can see.
pub fn invalid_pk(id: i64) -> String {
    format!("Invalid pk \"{id}\" - object does not exist.")
}

/// Changes to a team member; `None` leaves a field as it is, and
/// `department: Some(None)` clears the department.
#[derive(Default)]
pub struct MemberChanges {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub department_id: Option<Option<i64>>,
    pub role: Option<Role>,
}

pub async fn update_member(
    state: &AppState,
    me: &Principal,
    id: i64,
    changes: MemberChanges,
) -> Result<MemberRow> {
    let org = me.admin_organization()?;
    let mut tx = state.db.begin_write().await?;
    let current = team::find(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    if let Some(Some(dept)) = changes.department_id
        && departments::find(&mut tx, org, dept).await?.is_none()
    {
        return Err(Error::field("department", invalid_pk(dept)));
    }
    let role = match changes.role {
        Some(role) if !TEAM_ROLES.contains(&role) => {
            return Err(Error::field(
                "role",
                format!("\"{}\" is not a valid choice.", role.title()),
            ));
        }
        Some(role) => role,
        None => Role::parse(&current.role).unwrap_or(Role::Member),
    };
    if current.role == Role::Admin.as_str() && role != Role::Admin {
        ensure_another_admin(&mut tx, org).await?;
    }
    let first = changes.first_name.as_deref().unwrap_or(&current.first_name);
    let last = changes.last_name.as_deref().unwrap_or(&current.last_name);
    match role {
        Role::Coach => super::coach::ensure_profile(&mut tx, id, first, last, now_micros()).await?,
        Role::Member => super::profiles::ensure(&mut tx, id, org, first, last).await?,
        _ => {}
    }
    team::update(
        &mut tx,
        id,
        changes.first_name.as_deref().unwrap_or(&current.first_name),
        changes.last_name.as_deref().unwrap_or(&current.last_name),
        changes.department_id.unwrap_or(current.department_id),
        role.as_str(),
        now_micros(),
    )
    .await?;
    let row = team::find(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    tx.commit().await?;
    Ok(row)
}

/// Deletes a team member; their tokens stop working at once (the user is
/// gone). The company's last admin cannot be deleted.
pub async fn delete_member(state: &AppState, me: &Principal, id: i64) -> Result<()> {
    let org = me.admin_organization()?;
    let mut tx = state.db.begin_write().await?;
    let current = team::find(&mut tx, org, id).await?.ok_or(Error::NotFound)?;
    if current.role == Role::Admin.as_str() {
        ensure_another_admin(&mut tx, org).await?;
    }
    users::delete(&mut tx, id).await?;
    tx.commit().await?;
    Ok(())
}

async fn ensure_another_admin(tx: &mut crate::store::Tx, org: i64) -> Result<()> {
    if users::count_in_role(tx, org, Role::Admin.as_str()).await? <= 1 {
        return Err(Error::field("role", LAST_ADMIN));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_located_like_drf() {
        assert_eq!(locate(0, PageNumber::Number(1), 10).unwrap(), (1, 1, 0));
        assert_eq!(locate(25, PageNumber::Number(3), 10).unwrap(), (3, 3, 20));
        assert_eq!(locate(25, PageNumber::Last, 10).unwrap(), (3, 3, 20));
        assert!(matches!(
            locate(25, PageNumber::Number(4), 10),
            Err(Error::InvalidPage)
        ));
        assert!(matches!(
            locate(25, PageNumber::Number(0), 10),
            Err(Error::InvalidPage)
        ));
        assert!(matches!(
            locate(0, PageNumber::Number(2), 10),
            Err(Error::InvalidPage)
        ));
    }
}
