//! Company admin (seed 004 items 11-22): `/api/departments/` and
//! `/api/myTeams/`, DRF `ModelViewSet`s with search, ordering and
//! page-number pagination.

use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::json;

use super::api::{Api, Dialect, Doc, doc, drf_page, email, object, page_number, r, string, text};
use super::drf::{Authed, Data, DrfResult, Fields, json_status, missing, no_content, path_id};
use super::drf_list::{list_request, page_body};
use crate::app::AppState;
use crate::domain::auth::Principal;
use crate::domain::company::{self, MemberChanges, NewMember, invalid_pk};
use crate::domain::{Role, Timestamp};
use crate::store::departments::{DepartmentOrder, DepartmentRow};
use crate::store::team::{MemberOrder, MemberRow};

/// The DRF list parameters every company list takes.
fn list_doc(summary: &'static str, item: serde_json::Value, ordering: &'static str) -> Doc {
    doc(summary)
        .query(
            "page",
            json!({"oneOf": [{"type": "integer", "minimum": 1}, {"const": "last"}]}),
            "page number, or last",
        )
        .query(
            "page_size",
            page_number(),
            "at most 100; below 1 or not a number means 10",
        )
        .query(
            "search",
            string(),
            "every term must match (smart split, quotes keep phrases)",
        )
        .query("ordering", string(), ordering)
        .ok(200, drf_page(item))
        .errors(&[400, 403, 404])
}

pub fn api() -> Api {
    let department = r("Department");
    let member = r("TeamMember");
    let name = object(json!({"name": text()}), &["name"]);
    let mut new_member = object(
        json!({"email": email(), "first_name": text(), "last_name": text(), "password": text(),
               "role": {"enum": ["Admin", "Coach", "Member"]}, "department": {"type": ["integer", "null"], "minimum": 1}}),
        &["email", "first_name", "last_name", "password"],
    );
    new_member["examples"] = json!([{"email": "sam.taylor@example.com", "first_name": "Sam",
        "last_name": "Taylor", "password": "Welcome-Aboard-2024", "role": "Member"}]);
    let member_fields = json!({"first_name": text(), "last_name": text(),
               "role": {"enum": ["Admin", "Coach", "Member"]}, "department": {"type": ["integer", "null"], "minimum": 1}});
    Api::new("Company admin", Dialect::Drf)
        .get(
            "/api/departments",
            list_departments,
            list_doc(
                "The company's departments (admins)",
                department.clone(),
                "id, name, created_at, updated_at; - for descending",
            ),
        )
        .post(
            "/api/departments",
            create_department,
            doc("Create a department")
                .body(name.clone())
                .ok(201, department.clone())
                .errors(&[400, 403]),
        )
        .get(
            "/api/departments/{id}",
            find_department,
            doc("One department")
                .ok(200, department.clone())
                .errors(&[403, 404]),
        )
        .patch(
            "/api/departments/{id}",
            update_department,
            doc("Rename a department")
                .body(object(json!({"name": text()}), &[]))
                .optional_body()
                .ok(200, department.clone())
                .errors(&[400, 403, 404]),
        )
        .put(
            "/api/departments/{id}",
            replace_department,
            doc("Replace a department")
                .body(name)
                .ok(200, department)
                .errors(&[400, 403, 404]),
        )
        .delete(
            "/api/departments/{id}",
            delete_department,
            doc("Delete a department (its members keep no department)")
                .no_content()
                .errors(&[403, 404]),
        )
        .get(
            "/api/myTeams",
            list_team,
            list_doc(
                "The company's admins, coaches and members (admins)",
                member.clone(),
                "id, email, first_name, last_name, role, created_at, updated_at; - for descending",
            ),
        )
        .post(
            "/api/myTeams",
            create_member,
            doc("Add a team member with a password")
                .body(new_member)
                .ok(201, member.clone())
                .errors(&[400, 403]),
        )
        .get(
            "/api/myTeams/{id}",
            find_member,
            doc("One team member")
                .ok(200, member.clone())
                .errors(&[403, 404]),
        )
        .patch(
            "/api/myTeams/{id}",
            update_member,
            doc("Change a team member (role, names, department)")
                .body(object(member_fields.clone(), &[]))
                .optional_body()
                .ok(200, member.clone())
                .errors(&[400, 403, 404]),
        )
        .put(
            "/api/myTeams/{id}",
            replace_member,
            doc("Replace a team member's names, role and department")
                .body(object(member_fields, &["first_name", "last_name"]))
                .ok(200, member)
                .errors(&[400, 403, 404]),
        )
        .delete(
            "/api/myTeams/{id}",
            delete_member,
            doc("Remove a team member (their tokens stop working)")
                .no_content()
                .errors(&[400, 403, 404]),
        )
}

// ---------------------------------------------------------------- departments

/// A department as the seed renders it.
#[derive(Serialize)]
struct DepartmentBody<'a> {
    id: i64,
    name: &'a str,
    company: i64,
    created_at: Timestamp,
    updated_at: Timestamp,
    added_by: Option<i64>,
}

fn department_json(d: &DepartmentRow) -> DepartmentBody<'_> {
    DepartmentBody {
        id: d.id,
        name: &d.name,
        company: d.organization_id,
        created_at: Timestamp(d.created_at),
        updated_at: Timestamp(d.updated_at),
        added_by: d.added_by,
    }
}

fn department_order(name: &str) -> Option<DepartmentOrder> {
    Some(match name {
        "id" => DepartmentOrder::Id,
        "name" => DepartmentOrder::Name,
        "created_at" => DepartmentOrder::CreatedAt,
        "updated_at" => DepartmentOrder::UpdatedAt,
        _ => return None,
    })
}

async fn list_departments(
    State(state): State<AppState>,
    Authed(me): Authed,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> DrfResult {
    me.admin_organization()?;
    let req = list_request(query.as_deref(), department_order)?;
    let page = company::list_departments(&state, &me, &req).await?;
    Ok(json_status(
        StatusCode::OK,
        page_body(
            &page,
            &uri,
            &headers,
            state.config.public_scheme(),
            department_json,
        ),
    ))
}

async fn create_department(
    State(state): State<AppState>,
    Authed(me): Authed,
    data: Data,
) -> DrfResult {
    me.admin_organization()?;
    let mut f = Fields::new(&data);
    let name = f.char("name", true, 255);
    f.finish()?;
    let name = name.ok_or_else(missing)?;
    let row = company::create_department(&state, &me, &name).await?;
    Ok(json_status(StatusCode::CREATED, department_json(&row)))
}

async fn find_department(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
) -> DrfResult {
    me.admin_organization()?;
    let row = company::find_department(&state, &me, path_id(&id)?).await?;
    Ok(json_status(StatusCode::OK, department_json(&row)))
}

async fn update_department(
    state: State<AppState>,
    me: Authed,
    id: Path<String>,
    data: Data,
) -> DrfResult {
    change_department(state, me, id, data, true).await
}

async fn replace_department(
    state: State<AppState>,
    me: Authed,
    id: Path<String>,
    data: Data,
) -> DrfResult {
    change_department(state, me, id, data, false).await
}

async fn change_department(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
    data: Data,
    partial: bool,
) -> DrfResult {
    me.admin_organization()?;
    let id = path_id(&id)?;
    let mut f = if partial {
        Fields::partial(&data)
    } else {
        Fields::new(&data)
    };
    let name = f.char("name", true, 255);
    // DRF looks the object up before validating the body.
    company::find_department(&state, &me, id).await?;
    f.finish()?;
    let row = company::rename_department(&state, &me, id, name.as_deref()).await?;
    Ok(json_status(StatusCode::OK, department_json(&row)))
}

async fn delete_department(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
) -> DrfResult {
    me.admin_organization()?;
    company::delete_department(&state, &me, path_id(&id)?).await?;
    Ok(no_content())
}

// ---------------------------------------------------------------- team members

/// A team member as the seed renders it.
#[derive(Serialize)]
struct MemberBody<'a> {
    id: i64,
    email: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    role: &'static str,
    company: Option<i64>,
    department: Option<i64>,
    created_at: Timestamp,
    updated_at: Timestamp,
    added_by: Option<i64>,
}

fn member_json(m: &MemberRow) -> MemberBody<'_> {
    MemberBody {
        id: m.id,
        email: &m.email,
        first_name: &m.first_name,
        last_name: &m.last_name,
        role: Role::title_of(&m.role),
        company: m.organization_id,
        department: m.department_id,
        created_at: Timestamp(m.created_at),
        updated_at: Timestamp(m.updated_at),
        added_by: m.added_by,
    }
}

fn member_order(name: &str) -> Option<MemberOrder> {
    Some(match name {
        "id" => MemberOrder::Id,
        "first_name" => MemberOrder::FirstName,
        "last_name" => MemberOrder::LastName,
        "email" => MemberOrder::Email,
        "created_at" => MemberOrder::CreatedAt,
        "updated_at" => MemberOrder::UpdatedAt,
        _ => return None,
    })
}

const ROLE_CHOICES: [&str; 3] = ["Admin", "Coach", "Member"];

fn parse_role(choice: &str) -> Role {
    Role::parse(choice).unwrap_or(Role::Member)
}

async fn list_team(
    State(state): State<AppState>,
    Authed(me): Authed,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> DrfResult {
    me.admin_organization()?;
    let req = list_request(query.as_deref(), member_order)?;
    let page = company::list_team(&state, &me, &req).await?;
    Ok(json_status(
        StatusCode::OK,
        page_body(
            &page,
            &uri,
            &headers,
            state.config.public_scheme(),
            member_json,
        ),
    ))
}

/// Checks a department named in a body against the caller's company.
async fn check_department(
    state: &AppState,
    me: &Principal,
    f: &mut Fields<'_>,
    department: Option<Option<i64>>,
) -> DrfResult<()> {
    if let Some(Some(id)) = department
        && !company::department_exists(state, me, id).await?
    {
        f.add("department", &invalid_pk(id));
    }
    Ok(())
}

/// 201 with `id, email, first_name, last_name, role` (seed 004 item 18).
async fn create_member(State(state): State<AppState>, Authed(me): Authed, data: Data) -> DrfResult {
    me.admin_organization()?;
    let mut f = Fields::new(&data);
    let email = f.email("email", true);
    let first_name = f.char("first_name", true, 150);
    let last_name = f.char("last_name", true, 150);
    let department = f.pk("department");
    let role = f.choice("role", false, &ROLE_CHOICES);
    let password = f.password("password");
    if let Some(email) = &email
        && !crate::domain::accounts::email_available(&state, email).await?
    {
        f.add("email", crate::domain::accounts::EMAIL_TAKEN);
    }
    check_department(&state, &me, &mut f, department).await?;
    f.finish()?;
    let (Some(email), Some(first_name), Some(last_name), Some(password)) =
        (email, first_name, last_name, password)
    else {
        return Err(missing());
    };
    let row = company::create_member(
        &state,
        &me,
        NewMember {
            email,
            first_name,
            last_name,
            department_id: department.flatten(),
            role: role.map(parse_role).unwrap_or(Role::Member),
            password,
        },
    )
    .await?;
    Ok(json_status(
        StatusCode::CREATED,
        json!({"id": row.id, "email": row.email, "first_name": row.first_name, "last_name": row.last_name,
               "role": Role::title_of(&row.role)}),
    ))
}

async fn find_member(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
) -> DrfResult {
    me.admin_organization()?;
    let row = company::find_member(&state, &me, path_id(&id)?).await?;
    Ok(json_status(StatusCode::OK, member_json(&row)))
}

async fn update_member(
    state: State<AppState>,
    me: Authed,
    id: Path<String>,
    data: Data,
) -> DrfResult {
    change_member(state, me, id, data, true).await
}

async fn replace_member(
    state: State<AppState>,
    me: Authed,
    id: Path<String>,
    data: Data,
) -> DrfResult {
    change_member(state, me, id, data, false).await
}

/// 200 with `id, first_name, last_name, email, role` (seed 004 item 19).
/// `email` is read-only and ignored.
async fn change_member(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
    data: Data,
    partial: bool,
) -> DrfResult {
    me.admin_organization()?;
    let id = path_id(&id)?;
    company::find_member(&state, &me, id).await?;
    let mut f = if partial {
        Fields::partial(&data)
    } else {
        Fields::new(&data)
    };
    let first_name = f.char("first_name", true, 150);
    let last_name = f.char("last_name", true, 150);
    let department = f.pk("department");
    let role = f.choice("role", false, &ROLE_CHOICES);
    check_department(&state, &me, &mut f, department).await?;
    f.finish()?;
    let row = company::update_member(
        &state,
        &me,
        id,
        MemberChanges {
            first_name,
            last_name,
            department_id: department,
            role: role.map(parse_role),
        },
    )
    .await?;
    Ok(json_status(
        StatusCode::OK,
        json!({"id": row.id, "first_name": row.first_name, "last_name": row.last_name, "email": row.email,
               "role": Role::title_of(&row.role)}),
    ))
}

async fn delete_member(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
) -> DrfResult {
    me.admin_organization()?;
    company::delete_member(&state, &me, path_id(&id)?).await?;
    Ok(no_content())
}
