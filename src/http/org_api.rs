//! The organisation API (seeds 002 and 003, upCoach compatible): `/me`,
//! `/team-members`, `/clients`, `/programs`, program members and custom
//! fields. String ids, Unix-second timestamps, Laravel envelopes.

use axum::extract::{OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::api::{
    Api, Dialect, Doc, array, doc, email, laravel_page, laravel_text, object, page_number, r,
    string,
};
use super::laravel::{
    Check, Input, LaravelError, LaravelResult, ListQuery, OrgAuth, list_query, paginated,
};
use crate::app::AppState;
use crate::domain::organisation::{self, NewClient, NewFieldInput, People};
use crate::domain::{MICROS_PER_SEC, looks_like_email};
use crate::store::custom_fields::FieldRow;
use crate::store::people::{PeopleFilter, PeopleSort, PersonRow};
use crate::store::programs::{ProgramRow, ProgramSort};

/// A Laravel list: `filter[...]`, `sort`, `page`, `per_page`.
fn list_doc(summary: &'static str, item: Value, filters: &[&str], sorts: &[&str]) -> Doc {
    let alternatives = sorts.join("|");
    let mut properties = serde_json::Map::new();
    for f in filters {
        properties.insert(
            f.to_string(),
            json!({"type": "string", "description": "comma-separated values"}),
        );
    }
    doc(summary)
        .api_key()
        .deep_object_query(
            "filter",
            json!({"type": "object", "properties": properties, "additionalProperties": false}),
            "filters; another name is 400",
        )
        .query(
            "sort",
            json!({"type": "string", "pattern": format!("^(-?({alternatives})(,-?({alternatives}))*)?$")}),
            "comma-separated fields, - for descending; another field is 400",
        )
        .query("page", page_number(), "page number; below 1 or not a number means 1; past the end is empty")
        .query("per_page", page_number(), "below 1 or not a number means 15; above 100 means 100")
        .ok(200, laravel_page(item))
        .errors(&[400, 403])
}

pub fn api() -> Api {
    let mut program_member = object(
        json!({"user": laravel_text(), "role": {"enum": ["leader", "coach", "member"]}}),
        &["user"],
    );
    program_member["examples"] = json!([{"user": "2", "role": "member"}]);
    let wrap = |key: &str, schema: Value| object(json!({ key: schema }), &[key]);
    let mut timezones_or_null: Vec<Value> =
        organisation::TIMEZONES.iter().map(|t| json!(t)).collect();
    timezones_or_null.push(Value::Null);
    Api::new("Organisation API", Dialect::Laravel)
        .get(
            "/me",
            find_me,
            doc("The API key's user and organisation").api_key().ok(200, r("OrgMe")).errors(&[403]),
        )
        .get(
            "/team-members",
            list_team_members,
            list_doc("Admins, coaches and members", r("Person"), &["id", "email", "role"], &["created_at", "name", "role"]),
        )
        .get(
            "/clients",
            list_clients,
            list_doc("Clients with their custom-field info", r("Person"), &["id", "email"], &["created_at", "name"]),
        )
        .post(
            "/clients",
            create_client,
            doc("Create a client")
                .api_key()
                .body(object(
                    json!({"name": laravel_text(), "email": email(),
                           "password": {"type": ["string", "null"], "maxLength": 128},
                           "timezone": {"enum": timezones_or_null}}),
                    &["name", "email"],
                ))
                .ok(201, wrap("client", r("Person")))
                .errors(&[403, 422]),
        )
        .put(
            "/clients/{id}",
            update_client,
            doc("Merge custom-field values into a client's info (null clears one)")
                .api_key()
                .string_param("id")
                .json_body(object(json!({"info": {"type": "object"}}), &["info"]))
                .ok(200, wrap("client", r("Person")))
                .errors(&[403, 404, 422]),
        )
        .get(
            "/programs",
            list_programs,
            list_doc("Programs", r("Program"), &["id"], &["name", "created_at"]),
        )
        .post(
            "/programs",
            create_program,
            doc("Create a program")
                .api_key()
                .body(object(json!({"name": laravel_text()}), &["name"]))
                .ok(201, wrap("program", r("Program")))
                .errors(&[403, 422]),
        )
        .get(
            "/programs/{id}/members",
            list_program_members,
            list_doc("A program's members", r("Person"), &["id", "email", "role"], &["name", "created_at"])
                .string_param("id")
                .errors(&[404]),
        )
        .post(
            "/programs/{id}/members",
            add_program_member,
            doc("Add a user of the organisation to a program")
                .api_key()
                .string_param("id")
                .body(program_member)
                .ok(201, wrap("program_member", r("Person")))
                .errors(&[403, 404, 422]),
        )
        .delete(
            "/programs/{id}/members/{user_id}",
            remove_program_member,
            doc("Remove a member from a program")
                .api_key()
                .string_param("id")
                .string_param("user_id")
                .no_content()
                .errors(&[403, 404]),
        )
        .get(
            "/custom-fields",
            list_custom_fields,
            doc("The organisation's custom fields for clients")
                .api_key()
                .ok(200, object(json!({"data": array(r("CustomField"))}), &["data"]))
                .errors(&[403]),
        )
        .post(
            "/custom-fields",
            create_custom_field,
            doc("Define a custom field")
                .api_key()
                .json_body(object(
                    json!({"slug": {"type": "string", "maxLength": 64, "pattern": "^\\s*[a-z0-9_-]+\\s*$"},
                           "label": laravel_text(),
                           "type": {"enum": ["text", "number", "date", "boolean", "select"]},
                           "options": {"type": ["array", "null"], "items": string()},
                           "required": {"enum": [true, false, null, 0, 1, "0", "1", "true", "false"]}}),
                    &["slug", "label", "type"],
                ))
                .ok(201, wrap("custom_field", r("CustomField")))
                .errors(&[403, 422]),
        )
}

/// The first path segments this surface owns (for its 404 body).
pub const PREFIXES: [&str; 5] = [
    "/me",
    "/team-members",
    "/clients",
    "/programs",
    "/custom-fields",
];

fn secs(micros: i64) -> i64 {
    micros.div_euclid(MICROS_PER_SEC)
}

fn ok(status: StatusCode, body: Value) -> Response {
    super::json_response(status, &body)
}

/// The User resource, plus `role`, `created_at` and `info` where given.
fn person_json(p: &PersonRow, role: bool, info: Option<Option<Value>>) -> Value {
    let mut m = Map::new();
    m.insert("id".into(), json!(p.id.to_string()));
    m.insert("avatar".into(), Value::Null);
    m.insert(
        "name".into(),
        json!(organisation::full_name(&p.first_name, &p.last_name)),
    );
    m.insert("email".into(), json!(p.email));
    m.insert("timezone".into(), json!(p.timezone));
    if role {
        m.insert("role".into(), json!(p.role));
    }
    m.insert("created_at".into(), json!(secs(p.created_at)));
    if let Some(info) = info {
        m.insert("info".into(), info.unwrap_or(Value::Null));
    }
    Value::Object(m)
}

fn program_json(p: &ProgramRow) -> Value {
    json!({"id": p.id.to_string(), "name": p.name, "created_at": secs(p.created_at)})
}

fn field_json(f: &FieldRow) -> Value {
    let options: Value = f
        .options
        .as_deref()
        .and_then(|o| serde_json::from_str(o).ok())
        .unwrap_or(Value::Null);
    json!({
        "id": f.id.to_string(),
        "slug": f.slug,
        "label": f.label,
        "type": f.field_type,
        "options": options,
        "required": f.required,
        "created_at": secs(f.created_at),
    })
}

async fn find_me(State(state): State<AppState>, OrgAuth(p): OrgAuth) -> LaravelResult {
    let (user, org) = organisation::me(&state, &p).await?;
    Ok(ok(
        StatusCode::OK,
        json!({
            "user": {
                "avatar": null,
                "email": user.email,
                "id": user.id.to_string(),
                "name": organisation::full_name(&user.first_name, &user.last_name),
                "timezone": user.timezone,
            },
            "organization": {
                "id": org.id.to_string(),
                "name": org.name,
                "subdomain": org.subdomain,
                "url_home": org.url_home,
                "created_at": secs(org.created_at),
            },
        }),
    ))
}

fn people_filter(q: &ListQuery) -> PeopleFilter {
    PeopleFilter {
        ids: q.id_filter("id"),
        emails: q.filter("email").map(<[String]>::to_vec),
        roles: q
            .filter("role")
            .map(|r| r.iter().map(|v| v.to_lowercase()).collect()),
    }
}

fn people_sort(q: &ListQuery) -> Vec<(PeopleSort, bool)> {
    q.sort
        .iter()
        .filter_map(|(name, desc)| {
            let s = match name.as_str() {
                "name" => PeopleSort::Name,
                "created_at" => PeopleSort::CreatedAt,
                "role" => PeopleSort::Role,
                _ => return None,
            };
            Some((s, *desc))
        })
        .collect()
}

#[allow(clippy::too_many_arguments)]
async fn people_page(
    state: &AppState,
    p: &crate::domain::auth::Principal,
    which: People,
    q: &ListQuery,
    uri: &axum::http::Uri,
    headers: &HeaderMap,
    role: bool,
    info: bool,
) -> LaravelResult {
    let page = organisation::list_people(
        state,
        p,
        which,
        &people_filter(q),
        &people_sort(q),
        q.page,
        q.per_page,
    )
    .await?;
    let rows = page
        .rows
        .iter()
        .map(|(r, i)| person_json(r, role, info.then(|| i.clone())))
        .collect();
    Ok(ok(
        StatusCode::OK,
        paginated(
            rows,
            page.total,
            q.page,
            q.per_page,
            uri,
            headers,
            state.config.public_scheme(),
        ),
    ))
}

async fn list_team_members(
    State(state): State<AppState>,
    OrgAuth(p): OrgAuth,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> LaravelResult {
    let q = list_query(
        query.as_deref(),
        &["id", "email", "role"],
        &["created_at", "name", "role"],
    )?;
    people_page(&state, &p, People::Team, &q, &uri, &headers, true, false).await
}

async fn list_clients(
    State(state): State<AppState>,
    OrgAuth(p): OrgAuth,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> LaravelResult {
    let q = list_query(query.as_deref(), &["id", "email"], &["created_at", "name"])?;
    people_page(&state, &p, People::Clients, &q, &uri, &headers, false, true).await
}

/// `POST /clients`: `name*, email*, password` (8+), `timezone` (tz database).
async fn create_client(
    State(state): State<AppState>,
    OrgAuth(p): OrgAuth,
    input: Input,
) -> LaravelResult {
    let mut c = Check::new(&input);
    let name = c.string("name", true, 255);
    let email = c.string("email", true, 255);
    if let Some(e) = &email {
        if !looks_like_email(e) {
            c.add("email", "The email field must be a valid email address.");
        } else if !crate::domain::accounts::email_available(&state, e).await? {
            c.add("email", organisation::EMAIL_TAKEN);
        }
    }
    let password = c.string("password", false, 128);
    if let Some(pw) = &password
        && pw.chars().count() < 8
    {
        c.add(
            "password",
            "The password field must be at least 8 characters.",
        );
    }
    let timezone = c.string("timezone", false, 64);
    if let Some(tz) = &timezone
        && !organisation::is_timezone(tz)
    {
        c.add("timezone", "The timezone field must be a valid timezone.");
    }
    c.finish()?;
    let (Some(name), Some(email)) = (name, email) else {
        return Err(missing());
    };
    let (row, info) = organisation::create_client(
        &state,
        &p,
        NewClient {
            name,
            email,
            password,
            timezone,
        },
    )
    .await?;
    Ok(ok(
        StatusCode::CREATED,
        json!({"client": person_json(&row, false, Some(info))}),
    ))
}

/// `PUT /clients/{id}`: `{"info": {...}}` merged into the client's values.
async fn update_client(
    State(state): State<AppState>,
    OrgAuth(p): OrgAuth,
    Path(id): Path<String>,
    input: Input,
) -> LaravelResult {
    let Some(user_id) = id.parse::<i64>().ok() else {
        return Err(LaravelError::Missing("User", id));
    };
    let mut c = Check::new(&input);
    let info = match input.0.get("info") {
        Some(Value::Object(map)) => Some(map.clone()),
        None | Some(Value::Null) => {
            c.add("info", "The info field is required.");
            None
        }
        Some(_) => {
            c.add("info", "The info field must be an array.");
            None
        }
    };
    c.finish()?;
    let info = info.ok_or_else(missing)?;
    match organisation::update_client_info(&state, &p, user_id, &info).await {
        Ok((row, info)) => Ok(ok(
            StatusCode::OK,
            json!({"client": person_json(&row, false, Some(info))}),
        )),
        Err(crate::domain::Error::NotFound) => Err(LaravelError::Missing("User", id)),
        Err(e) => Err(e.into()),
    }
}

async fn list_programs(
    State(state): State<AppState>,
    OrgAuth(p): OrgAuth,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> LaravelResult {
    let q = list_query(query.as_deref(), &["id"], &["name", "created_at"])?;
    let sort: Vec<(ProgramSort, bool)> = q
        .sort
        .iter()
        .map(|(n, d)| {
            (
                if n == "name" {
                    ProgramSort::Name
                } else {
                    ProgramSort::CreatedAt
                },
                *d,
            )
        })
        .collect();
    let ids = q.id_filter("id");
    let page =
        organisation::list_programs(&state, &p, ids.as_deref(), &sort, q.page, q.per_page).await?;
    let rows = page.rows.iter().map(program_json).collect();
    Ok(ok(
        StatusCode::OK,
        paginated(
            rows,
            page.total,
            q.page,
            q.per_page,
            &uri,
            &headers,
            state.config.public_scheme(),
        ),
    ))
}

/// `POST /programs`: `{"name"}`.
async fn create_program(
    State(state): State<AppState>,
    OrgAuth(p): OrgAuth,
    input: Input,
) -> LaravelResult {
    let mut c = Check::new(&input);
    let name = c.string("name", true, 255);
    c.finish()?;
    let row = organisation::create_program(&state, &p, &name.ok_or_else(missing)?).await?;
    Ok(ok(
        StatusCode::CREATED,
        json!({"program": program_json(&row)}),
    ))
}

/// A program id of the path, or Laravel's model-not-found 404.
async fn program_id(
    state: &AppState,
    p: &crate::domain::auth::Principal,
    raw: &str,
) -> Result<i64, LaravelError> {
    match raw.parse::<i64>() {
        Ok(id) if organisation::program_exists(state, p, id).await? => Ok(id),
        _ => Err(LaravelError::Missing("Program", raw.to_string())),
    }
}

async fn list_program_members(
    State(state): State<AppState>,
    OrgAuth(p): OrgAuth,
    Path(id): Path<String>,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> LaravelResult {
    let program = program_id(&state, &p, &id).await?;
    let q = list_query(
        query.as_deref(),
        &["id", "email", "role"],
        &["name", "created_at"],
    )?;
    people_page(
        &state,
        &p,
        People::ProgramMembers(program),
        &q,
        &uri,
        &headers,
        true,
        true,
    )
    .await
}

/// `POST /programs/{id}/members`: `{"user": "<id>", "role"?}`.
async fn add_program_member(
    State(state): State<AppState>,
    OrgAuth(p): OrgAuth,
    Path(id): Path<String>,
    input: Input,
) -> LaravelResult {
    let program = program_id(&state, &p, &id).await?;
    let mut c = Check::new(&input);
    let user = match input.0.get("user") {
        None | Some(Value::Null) => {
            c.add("user", "The user field is required.");
            None
        }
        Some(Value::String(s)) if s.trim().is_empty() => {
            c.add("user", "The user field is required.");
            None
        }
        // An id that is no number names nobody: "invalid", like an unknown id.
        Some(Value::String(s)) => Some(s.trim().parse::<i64>().ok()),
        Some(Value::Number(n)) => Some(n.as_i64()),
        Some(_) => {
            c.add("user", "The user field must be a string.");
            None
        }
    };
    let role = c.string("role", false, 20).map(|r| r.to_lowercase());
    if let Some(r) = &role
        && !organisation::PROGRAM_ROLES.contains(&r.as_str())
    {
        c.add("role", "The selected role is invalid.");
    }
    c.finish()?;
    let user = user.ok_or_else(missing)?;
    let row = organisation::add_program_member(
        &state,
        &p,
        program,
        user,
        role.as_deref().unwrap_or("member"),
    )
    .await?;
    Ok(ok(
        StatusCode::CREATED,
        json!({"program_member": person_json(&row, true, None)}),
    ))
}

async fn remove_program_member(
    State(state): State<AppState>,
    OrgAuth(p): OrgAuth,
    Path((id, user_id)): Path<(String, String)>,
) -> LaravelResult {
    let program = program_id(&state, &p, &id).await?;
    let Ok(user) = user_id.parse::<i64>() else {
        return Err(LaravelError::Missing("User", user_id));
    };
    match organisation::remove_program_member(&state, &p, program, user).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(crate::domain::Error::NotFound) => Err(LaravelError::Missing("User", user_id)),
        Err(e) => Err(e.into()),
    }
}

async fn list_custom_fields(State(state): State<AppState>, OrgAuth(p): OrgAuth) -> LaravelResult {
    let fields = organisation::list_fields(&state, &p).await?;
    Ok(ok(
        StatusCode::OK,
        json!({"data": fields.iter().map(field_json).collect::<Vec<_>>()}),
    ))
}

/// `POST /custom-fields`: `slug, label, type, options` (select), `required`.
async fn create_custom_field(
    State(state): State<AppState>,
    OrgAuth(p): OrgAuth,
    input: Input,
) -> LaravelResult {
    let mut c = Check::new(&input);
    let slug = c.string("slug", true, 64);
    if let Some(s) = &slug
        && !s
            .chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '_' || ch == '-')
    {
        c.add(
            "slug",
            "The slug field must only contain lowercase letters, numbers, dashes, and underscores.",
        );
    }
    let label = c.string("label", true, 255);
    let field_type = c.string("type", true, 20);
    if let Some(t) = &field_type
        && !organisation::FIELD_TYPES.contains(&t.as_str())
    {
        c.add("type", "The selected type is invalid.");
    }
    let options = match input.0.get("options") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) if items.iter().all(|i| i.is_string()) => Some(
            items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect::<Vec<_>>(),
        ),
        Some(_) => {
            c.add("options", "The options field must be an array of strings.");
            None
        }
    };
    let required = match input.0.get("required") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => {
            n.as_i64() == Some(1)
        }
        Some(Value::String(s)) if ["0", "1", "true", "false"].contains(&s.as_str()) => {
            s == "1" || s == "true"
        }
        Some(_) => {
            c.add("required", "The required field must be true or false.");
            false
        }
    };
    c.finish()?;
    let (Some(slug), Some(label), Some(field_type)) = (slug, label, field_type) else {
        return Err(missing());
    };
    let row = organisation::create_field(
        &state,
        &p,
        NewFieldInput {
            slug,
            label,
            field_type,
            options,
            required,
        },
    )
    .await?;
    Ok(ok(
        StatusCode::CREATED,
        json!({"custom_field": field_json(&row)}),
    ))
}

fn missing() -> LaravelError {
    LaravelError::Domain(crate::domain::Error::Internal(
        "a checked field is missing".into(),
    ))
}
