//! Accounts (seed 004 items 1-10, Djoser + SimpleJWT compatible), logout,
//! and API keys, under `/api/auth/`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::{Value, json};

use super::ClientIp;
use super::api::{Api, Dialect, array, doc, email, object, r, text};
use super::drf::{Authed, Data, DrfError, DrfResult, Fields, json_status, missing, no_content};
use crate::app::AppState;
use crate::domain::accounts::{self, INVALID_PASSWORD, Signup};
use crate::domain::{Error, Role, api_keys, iso8601};
use crate::store::api_keys::ApiKeyRow;
use crate::store::users::UserRow;

pub fn api() -> Api {
    let user = r("User");
    let tokens = r("TokenPair");
    let empty = json!({"type": "object"});
    let signup = object(
        json!({"email": email(), "first_name": text(), "last_name": text(),
               "role": {"enum": ["Admin", "Coach", "admin", "coach"]}, "company_name": text(),
               "password": text(), "re_password": text()}),
        &[
            "email",
            "first_name",
            "last_name",
            "role",
            "password",
            "re_password",
        ],
    );
    let names = object(json!({"first_name": text(), "last_name": text()}), &[]);
    let uid_token = object(json!({"uid": text(), "token": text()}), &["uid", "token"]);
    let email_body = object(json!({"email": email()}), &["email"]);
    let refresh = object(json!({"refresh": text()}), &["refresh"]);
    Api::new("Accounts", Dialect::Drf)
        .post(
            "/api/auth/users",
            create_user,
            doc("Sign up as Admin (with a new company) or Coach; an activation link is emailed")
                .public()
                .body(signup)
                .ok(201, user.clone())
                .errors(&[400]),
        )
        .get(
            "/api/auth/users/me",
            find_me,
            doc("The signed-in user").ok(200, user.clone()),
        )
        .put(
            "/api/auth/users/me",
            replace_me,
            doc("Replace the user's names").body(object(json!({"first_name": text(), "last_name": text()}), &["first_name", "last_name"])).ok(200, user.clone()).errors(&[400]),
        )
        .patch(
            "/api/auth/users/me",
            update_me,
            doc("Change the user's names").body(names).optional_body().ok(200, user.clone()).errors(&[400]),
        )
        .delete(
            "/api/auth/users/me",
            delete_me,
            doc("Delete the account (needs current_password)")
                .body(object(json!({"current_password": text()}), &["current_password"]))
                .no_content()
                .errors(&[400]),
        )
        .post(
            "/api/auth/users/activation",
            activate_user,
            doc("Activate an account with the emailed uid and token")
                .public()
                .body(uid_token.clone())
                .no_content()
                .errors(&[400, 403]),
        )
        .post(
            "/api/auth/users/resend_activation",
            resend_activation,
            doc("Email the activation link again").public().body(email_body.clone()).no_content().errors(&[400, 429]),
        )
        .post(
            "/api/auth/users/set_password",
            set_password,
            doc("Change the password (ends every earlier token)")
                .body(object(
                    json!({"current_password": text(), "new_password": text(), "re_new_password": text()}),
                    &["current_password", "new_password", "re_new_password"],
                ))
                .no_content()
                .errors(&[400]),
        )
        .post(
            "/api/auth/users/reset_password",
            reset_password,
            doc("Email a password-reset link (always 204)").public().body(email_body).no_content().errors(&[400, 429]),
        )
        .post(
            "/api/auth/users/reset_password_confirm",
            reset_password_confirm,
            doc("Set a new password with the emailed uid and token")
                .public()
                .body(object(
                    json!({"uid": text(), "token": text(), "new_password": text(), "re_new_password": text()}),
                    &["uid", "token", "new_password", "re_new_password"],
                ))
                .no_content()
                .errors(&[400]),
        )
        .post(
            "/api/auth/jwt/create",
            create_jwt,
            doc("Log in: an access and a refresh token")
                .public()
                .body(object(json!({"email": text(), "password": text()}), &["email", "password"]))
                .ok(200, tokens.clone())
                .errors(&[400, 401, 429]),
        )
        .post(
            "/api/auth/jwt/refresh",
            refresh_jwt,
            doc("A new access token (and refresh token, when rotation is on)")
                .public()
                .body(refresh.clone())
                .ok(200, tokens)
                .errors(&[400, 401]),
        )
        .post(
            "/api/auth/jwt/verify",
            verify_jwt,
            doc("Check a token (answers {})")
                .public()
                .body(object(json!({"token": text()}), &["token"]))
                .ok(200, empty.clone())
                .errors(&[400, 401]),
        )
        .post(
            "/api/auth/jwt/blacklist",
            blacklist_jwt,
            doc("Log out: the refresh token stops working")
                .public()
                .body(refresh)
                .ok(200, empty)
                .errors(&[400, 401]),
        )
        .get(
            "/api/auth/api-keys",
            list_api_keys,
            doc("The company's organisation API keys (admins)").ok(200, array(r("ApiKey"))).errors(&[403]),
        )
        .post(
            "/api/auth/api-keys",
            create_api_key,
            doc("Create an API key; the key is shown only in this answer")
                .body(object(json!({"name": text()}), &["name"]))
                .ok(201, r("NewApiKey"))
                .errors(&[400, 403]),
        )
        .delete(
            "/api/auth/api-keys/{id}",
            delete_api_key,
            doc("Revoke an API key").no_content().errors(&[403, 404]),
        )
}

/// Djoser's user object (`UserSerializer`).
pub fn user_json(u: &UserRow) -> UserBody<'_> {
    UserBody {
        id: u.id,
        email: &u.email,
        first_name: &u.first_name,
        last_name: &u.last_name,
        role: Role::title_of(&u.role),
    }
}

/// A user as Djoser's `UserSerializer` renders it.
#[derive(serde::Serialize)]
pub struct UserBody<'a> {
    id: i64,
    email: &'a str,
    first_name: &'a str,
    last_name: &'a str,
    role: &'static str,
}

const NAME_MAX: usize = 150;

/// `POST /api/auth/users/`: signup as `Admin` (with a new company) or
/// `Coach`. The account stays inactive until the emailed link is used.
async fn create_user(State(state): State<AppState>, data: Data) -> DrfResult {
    let mut f = Fields::new(&data);
    let email = f.email("email", true);
    let first_name = f.char("first_name", true, NAME_MAX);
    let last_name = f.char("last_name", true, NAME_MAX);
    let role = f.choice("role", true, &["Admin", "Coach"]);
    let company_name = match data.0.get("company_name") {
        Some(Value::Null) | None => None,
        Some(_) => f.char("company_name", false, 255),
    };
    let password = f.password("password");
    let re_password = f.password("re_password");
    if let Some(email) = &email
        && !accounts::email_available(&state, email).await?
    {
        f.add("email", accounts::EMAIL_TAKEN);
    }
    f.finish()?;
    let (
        Some(email),
        Some(first_name),
        Some(last_name),
        Some(role),
        Some(password),
        Some(re_password),
    ) = (email, first_name, last_name, role, password, re_password)
    else {
        return Err(missing());
    };
    let role = if role == "Admin" {
        Role::Admin
    } else {
        Role::Coach
    };
    let user = accounts::signup(
        &state,
        Signup {
            email,
            first_name,
            last_name,
            role,
            company_name,
            password,
            re_password,
        },
    )
    .await?;
    Ok(json_status(StatusCode::CREATED, user_json(&user)))
}

async fn find_me(Authed(me): Authed) -> DrfResult {
    Ok(json_status(StatusCode::OK, user_json(&me.user)))
}

/// PATCH: any subset of `first_name`, `last_name`; `email` (the login
/// field) and `role` are read-only and ignored, as DRF ignores them.
async fn update_me(State(state): State<AppState>, Authed(me): Authed, data: Data) -> DrfResult {
    change_me(state, me, data, true).await
}

/// PUT: `first_name` and `last_name` are required.
async fn replace_me(State(state): State<AppState>, Authed(me): Authed, data: Data) -> DrfResult {
    change_me(state, me, data, false).await
}

async fn change_me(
    state: AppState,
    me: crate::domain::auth::Principal,
    data: Data,
    partial: bool,
) -> DrfResult {
    let mut f = if partial {
        Fields::partial(&data)
    } else {
        Fields::new(&data)
    };
    let first_name = f.char("first_name", true, NAME_MAX);
    let last_name = f.char("last_name", true, NAME_MAX);
    f.finish()?;
    let user = accounts::update_me(&state, &me, first_name, last_name).await?;
    Ok(json_status(StatusCode::OK, user_json(&user)))
}

async fn delete_me(State(state): State<AppState>, Authed(me): Authed, data: Data) -> DrfResult {
    let mut f = Fields::new(&data);
    let current = f.password("current_password");
    if let Some(current) = &current
        && !accounts::current_password_ok(&state, &me, current).await?
    {
        f.add("current_password", INVALID_PASSWORD);
    }
    f.finish()?;
    accounts::delete_me(&state, &me).await?;
    Ok(no_content())
}

async fn activate_user(State(state): State<AppState>, data: Data) -> DrfResult {
    let mut f = Fields::new(&data);
    let uid = f.char("uid", true, 255);
    let token = f.char("token", true, 255);
    f.finish()?;
    let (Some(uid), Some(token)) = (uid, token) else {
        return Err(missing());
    };
    accounts::activate(&state, &uid, &token).await?;
    Ok(no_content())
}

async fn resend_activation(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    data: Data,
) -> DrfResult {
    let mut f = Fields::new(&data);
    let email = f.email("email", true);
    f.finish()?;
    let Some(email) = email else {
        return Err(missing());
    };
    accounts::resend_activation(&state, &email, &ip).await?;
    Ok(no_content())
}

async fn set_password(State(state): State<AppState>, Authed(me): Authed, data: Data) -> DrfResult {
    let mut f = Fields::new(&data);
    let new_password = f.password("new_password");
    let re_new_password = f.password("re_new_password");
    let current = f.password("current_password");
    if let Some(current) = &current
        && !accounts::current_password_ok(&state, &me, current).await?
    {
        f.add("current_password", INVALID_PASSWORD);
    }
    f.finish()?;
    let (Some(new_password), Some(re_new_password)) = (new_password, re_new_password) else {
        return Err(missing());
    };
    accounts::set_password(&state, &me, &new_password, &re_new_password).await?;
    Ok(no_content())
}

async fn reset_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    data: Data,
) -> DrfResult {
    let mut f = Fields::new(&data);
    let email = f.email("email", true);
    f.finish()?;
    let Some(email) = email else {
        return Err(missing());
    };
    accounts::reset_password(&state, &email, &ip).await?;
    Ok(no_content())
}

async fn reset_password_confirm(State(state): State<AppState>, data: Data) -> DrfResult {
    let mut f = Fields::new(&data);
    let uid = f.char("uid", true, 255);
    let token = f.char("token", true, 255);
    let new_password = f.password("new_password");
    let re_new_password = f.password("re_new_password");
    f.finish()?;
    let (Some(uid), Some(token), Some(new_password), Some(re_new_password)) =
        (uid, token, new_password, re_new_password)
    else {
        return Err(missing());
    };
    accounts::reset_password_confirm(&state, &uid, &token, &new_password, &re_new_password).await?;
    Ok(no_content())
}

/// `POST jwt/create/`: `{"refresh", "access"}`.
async fn create_jwt(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    data: Data,
) -> DrfResult {
    let mut f = Fields::new(&data);
    let email = f.char("email", true, 255);
    let password = f.password("password");
    f.finish()?;
    let (Some(email), Some(password)) = (email, password) else {
        return Err(missing());
    };
    let pair = accounts::login(&state, &email, &password, &ip).await?;
    Ok(json_status(
        StatusCode::OK,
        json!({"refresh": pair.refresh, "access": pair.access}),
    ))
}

fn token_field(data: &Data, name: &str) -> Result<String, DrfError> {
    let mut f = Fields::new(data);
    let token = f.char(name, true, 4096);
    f.finish()?;
    token.ok_or_else(missing)
}

async fn refresh_jwt(State(state): State<AppState>, data: Data) -> DrfResult {
    let token = token_field(&data, "refresh")?;
    let refreshed = accounts::refresh(&state, &token).await?;
    let body = match refreshed.refresh {
        Some(refresh) => json!({"access": refreshed.access, "refresh": refresh}),
        None => json!({"access": refreshed.access}),
    };
    Ok(json_status(StatusCode::OK, body))
}

async fn verify_jwt(State(state): State<AppState>, data: Data) -> DrfResult {
    let token = token_field(&data, "token")?;
    accounts::verify(&state, &token).await?;
    Ok(json_status(StatusCode::OK, json!({})))
}

/// Logout: `{"refresh"}` stops working. 200 `{}` as SimpleJWT answers.
async fn blacklist_jwt(State(state): State<AppState>, data: Data) -> DrfResult {
    let token = token_field(&data, "refresh")?;
    accounts::blacklist(&state, &token).await?;
    Ok(json_status(StatusCode::OK, json!({})))
}

fn api_key_json(k: &ApiKeyRow) -> Value {
    json!({
        "id": k.id,
        "name": k.name,
        "prefix": k.prefix,
        "created_at": iso8601(k.created_at),
        "last_used_at": k.last_used_at.map(iso8601),
    })
}

async fn list_api_keys(State(state): State<AppState>, Authed(me): Authed) -> DrfResult {
    let keys = api_keys::list(&state, &me).await?;
    Ok(json_status(
        StatusCode::OK,
        Value::Array(keys.iter().map(api_key_json).collect()),
    ))
}

/// 201 `{"id", "name", "key", "prefix", "created_at"}`: the only time the
/// key is shown.
async fn create_api_key(
    State(state): State<AppState>,
    Authed(me): Authed,
    data: Data,
) -> DrfResult {
    me.admin_organization()?;
    let mut f = Fields::new(&data);
    let name = f.char("name", true, 100);
    f.finish()?;
    let Some(name) = name else {
        return Err(missing());
    };
    let created = api_keys::create(&state, &me, &name).await?;
    Ok(json_status(
        StatusCode::CREATED,
        json!({
            "id": created.row.id,
            "name": created.row.name,
            "key": created.key,
            "prefix": created.row.prefix,
            "created_at": iso8601(created.row.created_at),
        }),
    ))
}

async fn delete_api_key(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
) -> DrfResult<Response> {
    me.admin_organization()?;
    let id: i64 = id.parse().map_err(|_| Error::NotFound)?;
    api_keys::revoke(&state, &me, id).await?;
    Ok(no_content())
}
