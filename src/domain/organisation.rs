//! The organisation's people, clients with custom fields, and programs, as
//! the organisation API (upCoach style) works with them. Every function
//! takes the caller (an organisation admin, by API key or token) and works
//! inside the caller's organisation only.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::{Map, Value, json};

use super::auth::Principal;
use super::passwords::UNUSABLE_PASSWORD;
use super::{Error, FieldErrors, Result, Role, now_micros};
use crate::app::AppState;
use crate::store::custom_fields::{self, FieldRow, NewField};
use crate::store::organizations::OrganizationRow;
use crate::store::people::{self, PeopleFilter, PeopleSort, PersonRecord, PersonRow, Scope};
use crate::store::programs::{self, ProgramRow, ProgramSort};
use crate::store::users::{self, NewUser, UserRow};

/// IANA time zone names (from the tz database), for `timezone` fields.
pub static TIMEZONES: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| include_str!("timezones.txt").lines().collect());

pub fn is_timezone(name: &str) -> bool {
    TIMEZONES.binary_search(&name).is_ok()
}

pub const TEAM_ROLES: [&str; 3] = ["admin", "coach", "member"];
pub const CLIENT_ROLES: [&str; 1] = ["client"];
pub const PROGRAM_ROLES: [&str; 3] = ["leader", "coach", "member"];
pub const FIELD_TYPES: [&str; 5] = ["text", "number", "date", "boolean", "select"];

/// The caller and their organisation (`GET /me`).
pub async fn me(state: &AppState, p: &Principal) -> Result<(UserRow, OrganizationRow)> {
    let org = p.admin_organization()?;
    let mut tx = state.db.begin_read().await?;
    let row = crate::store::organizations::find(&mut tx, org)
        .await?
        .ok_or(Error::NotFound)?;
    tx.commit().await?;
    Ok((p.user.clone(), row))
}

/// Which people a list shows.
#[derive(Debug, Clone, Copy)]
pub enum People {
    Team,
    Clients,
    ProgramMembers(i64),
}

/// One page of people with their custom-field `info` (`None` when the
/// organisation defines no fields).
pub struct PeoplePage {
    pub rows: Vec<(PersonRow, Option<Value>)>,
    pub total: i64,
}

pub async fn list_people(
    state: &AppState,
    p: &Principal,
    which: People,
    filter: &PeopleFilter,
    sort: &[(PeopleSort, bool)],
    page: i64,
    per_page: i64,
) -> Result<PeoplePage> {
    let org = p.admin_organization()?;
    let (scope, info) = match which {
        People::Team => (Scope::Users { roles: &TEAM_ROLES }, false),
        People::Clients => (
            Scope::Users {
                roles: &CLIENT_ROLES,
            },
            true,
        ),
        People::ProgramMembers(id) => (Scope::Program { program_id: id }, true),
    };
    // The page's rows carry the count and the custom fields (one
    // statement on PostgreSQL); a program's members are read in the
    // snapshot that finds the program.
    let mut tx = match which {
        People::ProgramMembers(id) => {
            let mut tx = state.db.begin_read().await?;
            programs::find(&mut tx, org, id)
                .await?
                .ok_or(Error::NotFound)?;
            tx
        }
        People::Team | People::Clients => state.db.begin_object_read().await?,
    };
    let offset = (page - 1) * per_page;
    let rows = people::list(&mut tx, org, scope, filter, sort, per_page, offset, info).await?;
    // Past the end, or an empty list: no row to carry the count.
    let total = match rows.first().and_then(|r| r.row.total) {
        Some(total) => total,
        None => people::count(&mut tx, org, scope, filter).await?,
    };
    tx.commit().await?;
    let rows = rows
        .into_iter()
        .map(|PersonRecord { row, related }| {
            let fields = related.fields.iter().map(|f| (f.id, f.slug.as_str()));
            let values: Vec<(i64, &str)> = related
                .values
                .iter()
                .map(|v| (v.field_id, v.value.as_str()))
                .collect();
            let info = (info && !related.fields.is_empty()).then(|| info_of(fields, &values));
            (row, info)
        })
        .collect();
    Ok(PeoplePage { rows, total })
}

/// `info` of one user: every field (id, slug) by slug, from the user's
/// `values` (field id, JSON text); `null` where unset.
fn info_of<'a>(fields: impl Iterator<Item = (i64, &'a str)>, values: &[(i64, &str)]) -> Value {
    let mut info = Map::new();
    for (id, slug) in fields {
        let value = values
            .iter()
            .find(|(field, _)| *field == id)
            .and_then(|(_, text)| serde_json::from_str(text).ok())
            .unwrap_or(Value::Null);
        info.insert(slug.to_string(), value);
    }
    Value::Object(info)
}

/// `info` of each user (see [`info_of`]). `None` when the organisation
/// defines no fields. Two queries.
async fn infos_for(
    tx: &mut crate::store::Tx,
    org: i64,
    user_ids: &[i64],
) -> Result<Option<HashMap<i64, Value>>> {
    let fields = custom_fields::list(tx, org).await?;
    if fields.is_empty() {
        return Ok(None);
    }
    let values = custom_fields::values_of(tx, user_ids).await?;
    let infos = user_ids.iter().map(|id| {
        let theirs: Vec<(i64, &str)> = values
            .iter()
            .filter(|v| v.user_id == *id)
            .map(|v| (v.field_id, v.value.as_str()))
            .collect();
        let fields = fields.iter().map(|f| (f.id, f.slug.as_str()));
        (*id, info_of(fields, &theirs))
    });
    Ok(Some(infos.collect()))
}

/// A client to create (the surface has checked the shapes).
pub struct NewClient {
    pub name: String,
    pub email: String,
    pub password: Option<String>,
    pub timezone: Option<String>,
}

/// Creates an active client of the organisation; with a password they can
/// log in through the accounts API.
pub async fn create_client(
    state: &AppState,
    p: &Principal,
    input: NewClient,
) -> Result<(PersonRow, Option<Value>)> {
    let org = p.admin_organization()?;
    let email = super::normalize_email(&input.email);
    let (first, last) = split_name(&input.name);
    let hash = match &input.password {
        Some(pw) => {
            let attrs = [("email", email.as_str()), ("name", input.name.as_str())];
            state.passwords.check("password", pw, &attrs)?;
            state.hasher.hash(pw).await?
        }
        None => UNUSABLE_PASSWORD.to_string(),
    };
    let key = super::email_key(&email);
    let now = now_micros();
    let mut tx = state.db.begin_write().await?;
    if users::email_key_taken(&mut tx, &key).await? {
        return Err(Error::field("email", EMAIL_TAKEN));
    }
    let id = users::insert(
        &mut tx,
        &NewUser {
            email: &email,
            email_key: &key,
            password: &hash,
            first_name: &first,
            last_name: &last,
            role: Role::Client.as_str(),
            organization_id: Some(org),
            added_by: Some(p.id()),
            department_id: None,
            is_active: true,
            now,
        },
    )
    .await?;
    if let Some(tz) = &input.timezone {
        people::set_timezone(&mut tx, id, tz).await?;
    }
    let row = people::find(&mut tx, org, &CLIENT_ROLES, id)
        .await?
        .ok_or(Error::NotFound)?;
    let info = infos_for(&mut tx, org, &[id])
        .await?
        .and_then(|mut m| m.remove(&id));
    tx.commit().await?;
    Ok((row, info))
}

pub const EMAIL_TAKEN: &str = "The email has already been taken.";

/// `Jane van Doe` -> (`Jane`, `van Doe`).
pub fn split_name(name: &str) -> (String, String) {
    let name = name.trim();
    match name.split_once(char::is_whitespace) {
        Some((first, rest)) => (first.to_string(), rest.trim().to_string()),
        None => (name.to_string(), String::new()),
    }
}

/// `first last`, as the organisation API names people.
pub fn full_name(first: &str, last: &str) -> String {
    format!("{first} {last}").trim().to_string()
}

/// Merges `info` into a client's custom-field values: each key must be a
/// defined field and each value of its type; `null` clears a value; the
/// required fields must hold a value afterwards. All or nothing.
pub async fn update_client_info(
    state: &AppState,
    p: &Principal,
    id: i64,
    info: &Map<String, Value>,
) -> Result<(PersonRow, Option<Value>)> {
    let org = p.admin_organization()?;
    let mut tx = state.db.begin_write().await?;
    let row = people::find(&mut tx, org, &CLIENT_ROLES, id)
        .await?
        .ok_or(Error::NotFound)?;
    let fields = custom_fields::list(&mut tx, org).await?;
    let current = custom_fields::values_of(&mut tx, &[id]).await?;
    let mut errors = FieldErrors::new();
    let mut changes: Vec<(&FieldRow, Option<String>)> = Vec::new();
    for (slug, value) in info {
        let key = format!("info.{slug}");
        let Some(field) = fields.iter().find(|f| &f.slug == slug) else {
            errors.add(
                &key,
                format!("The {key} field is not a defined custom field."),
            );
            continue;
        };
        if value.is_null() {
            changes.push((field, None));
            continue;
        }
        match typed_value(field, value) {
            Ok(v) => changes.push((field, Some(v.to_string()))),
            Err(message) => errors.add(&key, message.replace(":attribute", &key)),
        }
    }
    for field in fields.iter().filter(|f| f.required) {
        let after = match changes.iter().find(|(f, _)| f.id == field.id) {
            Some((_, v)) => v.is_some(),
            None => current.iter().any(|v| v.field_id == field.id),
        };
        if !after {
            let key = format!("info.{}", field.slug);
            errors.add(&key, format!("The {key} field is required."));
        }
    }
    errors.into_result()?;
    for (field, value) in changes {
        match value {
            Some(v) => custom_fields::set_value(&mut tx, id, field.id, &v).await?,
            None => custom_fields::clear_value(&mut tx, id, field.id).await?,
        }
    }
    let info = infos_for(&mut tx, org, &[id])
        .await?
        .and_then(|mut m| m.remove(&id));
    tx.commit().await?;
    Ok((row, info))
}

/// A value checked against its field's type, as it will be stored and shown.
fn typed_value(field: &FieldRow, value: &Value) -> std::result::Result<Value, String> {
    match field.field_type.as_str() {
        "text" => match value {
            Value::String(s) if s.chars().count() <= 1000 => Ok(value.clone()),
            Value::String(_) => {
                Err("The :attribute field must not be greater than 1000 characters.".into())
            }
            _ => Err("The :attribute field must be a string.".into()),
        },
        "number" => match value {
            Value::Number(_) => Ok(value.clone()),
            Value::String(s) => match s.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => Ok(number(n)),
                _ => Err("The :attribute field must be a number.".into()),
            },
            _ => Err("The :attribute field must be a number.".into()),
        },
        "boolean" => match value {
            Value::Bool(_) => Ok(value.clone()),
            Value::Number(n) if n.as_i64() == Some(0) || n.as_i64() == Some(1) => {
                Ok(json!(n.as_i64() == Some(1)))
            }
            Value::String(s) if ["0", "1", "true", "false"].contains(&s.as_str()) => {
                Ok(json!(s == "1" || s == "true"))
            }
            _ => Err("The :attribute field must be true or false.".into()),
        },
        "date" => match value {
            Value::String(s)
                if time::Date::parse(
                    s,
                    time::macros::format_description!("[year]-[month]-[day]"),
                )
                .is_ok() =>
            {
                Ok(value.clone())
            }
            _ => Err("The :attribute field must be a valid date (YYYY-MM-DD).".into()),
        },
        "select" => {
            let options: Vec<String> = field
                .options
                .as_deref()
                .and_then(|o| serde_json::from_str(o).ok())
                .unwrap_or_default();
            match value {
                Value::String(s) if options.contains(s) => Ok(value.clone()),
                _ => Err("The selected :attribute is invalid.".into()),
            }
        }
        _ => Err("The :attribute field has an unknown type.".into()),
    }
}

/// A JSON number, integral when it can be.
fn number(n: f64) -> Value {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        json!(n as i64)
    } else {
        json!(n)
    }
}

pub async fn list_fields(state: &AppState, p: &Principal) -> Result<Vec<FieldRow>> {
    let org = p.admin_organization()?;
    let mut tx = state.db.begin_read().await?;
    let rows = custom_fields::list(&mut tx, org).await?;
    tx.commit().await?;
    Ok(rows)
}

/// A custom field to define (the surface has checked the shapes).
pub struct NewFieldInput {
    pub slug: String,
    pub label: String,
    pub field_type: String,
    pub options: Option<Vec<String>>,
    pub required: bool,
}

pub async fn create_field(
    state: &AppState,
    p: &Principal,
    input: NewFieldInput,
) -> Result<FieldRow> {
    let org = p.admin_organization()?;
    let options = match (&input.field_type[..], &input.options) {
        ("select", Some(o)) if !o.is_empty() => {
            Some(serde_json::to_string(o).map_err(|e| Error::Internal(e.to_string()))?)
        }
        ("select", _) => {
            return Err(Error::field(
                "options",
                "The options field is required when type is select.",
            ));
        }
        _ => None,
    };
    let mut tx = state.db.begin_write().await?;
    if custom_fields::slug_taken(&mut tx, org, &input.slug).await? {
        return Err(Error::field("slug", "The slug has already been taken."));
    }
    let row = custom_fields::insert(
        &mut tx,
        org,
        &NewField {
            slug: &input.slug,
            label: &input.label,
            field_type: &input.field_type,
            options: options.as_deref(),
            required: input.required,
            now: now_micros(),
        },
    )
    .await?;
    tx.commit().await?;
    Ok(row)
}

pub struct ProgramPage {
    pub rows: Vec<ProgramRow>,
    pub total: i64,
}

pub async fn list_programs(
    state: &AppState,
    p: &Principal,
    ids: Option<&[i64]>,
    sort: &[(ProgramSort, bool)],
    page: i64,
    per_page: i64,
) -> Result<ProgramPage> {
    let org = p.admin_organization()?;
    let mut tx = state.db.begin_read().await?;
    let total = programs::count(&mut tx, org, ids).await?;
    let rows = programs::list(&mut tx, org, ids, sort, per_page, (page - 1) * per_page).await?;
    tx.commit().await?;
    Ok(ProgramPage { rows, total })
}

pub async fn create_program(state: &AppState, p: &Principal, name: &str) -> Result<ProgramRow> {
    let org = p.admin_organization()?;
    let mut tx = state.db.begin_write().await?;
    let row = programs::insert(&mut tx, org, name, now_micros()).await?;
    tx.commit().await?;
    Ok(row)
}

/// Adds a user of the organisation to one of its programs. A user of
/// another organisation, or one already in the program, is a 422 on `user`.
pub async fn add_program_member(
    state: &AppState,
    p: &Principal,
    program_id: i64,
    user_id: Option<i64>,
    role: &str,
) -> Result<PersonRow> {
    let org = p.admin_organization()?;
    let mut tx = state.db.begin_write().await?;
    programs::find(&mut tx, org, program_id)
        .await?
        .ok_or(Error::NotFound)?;
    let all_roles = ["admin", "coach", "member", "client"];
    let user = match user_id {
        Some(id) => people::find(&mut tx, org, &all_roles, id).await?,
        None => None,
    };
    let Some(user) = user else {
        return Err(Error::field("user", "The selected user is invalid."));
    };
    if programs::is_member(&mut tx, program_id, user.id).await? {
        return Err(Error::field(
            "user",
            "The user is already a member of this program.",
        ));
    }
    programs::add_member(&mut tx, program_id, user.id, role, now_micros()).await?;
    let filter = PeopleFilter {
        ids: Some(vec![user.id]),
        ..Default::default()
    };
    let row = people::list(
        &mut tx,
        org,
        Scope::Program { program_id },
        &filter,
        &[],
        1,
        0,
        false,
    )
    .await?
    .pop()
    .ok_or(Error::NotFound)?
    .row;
    tx.commit().await?;
    Ok(row)
}

pub async fn remove_program_member(
    state: &AppState,
    p: &Principal,
    program_id: i64,
    user_id: i64,
) -> Result<()> {
    let org = p.admin_organization()?;
    let mut tx = state.db.begin_write().await?;
    programs::find(&mut tx, org, program_id)
        .await?
        .ok_or(Error::NotFound)?;
    if !programs::remove_member(&mut tx, program_id, user_id).await? {
        return Err(Error::NotFound);
    }
    tx.commit().await?;
    Ok(())
}

/// Whether `id` names a program of the caller's organisation.
pub async fn program_exists(state: &AppState, p: &Principal, id: i64) -> Result<bool> {
    let org = p.admin_organization()?;
    let mut tx = state.db.begin_read().await?;
    let found = programs::find(&mut tx, org, id).await?.is_some();
    tx.commit().await?;
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_split_and_join() {
        assert_eq!(
            split_name(" Jane van Doe "),
            ("Jane".into(), "van Doe".into())
        );
        assert_eq!(split_name("Cher"), ("Cher".into(), "".into()));
        assert_eq!(full_name("Cher", ""), "Cher");
    }

    #[test]
    fn time_zones_come_from_the_tz_database() {
        assert!(is_timezone("Europe/London"));
        assert!(is_timezone("UTC"));
        assert!(!is_timezone("Mars/Olympus_Mons"));
    }
}
