//! Accounts: signup, activation, login and JWTs, the current user, and
//! password changes and resets. The rules follow Djoser + SimpleJWT, plus
//! what DESIGN 3.1 adds (logout, rotation with reuse detection, revocation
//! on password change, rate limits).

use super::auth::Principal;
use super::email::{self, Email};
use super::error::NON_FIELD;
use super::passwords::UNUSABLE_PASSWORD;
use super::rate_limit::{self, Limit};
use super::tokens::{Purpose, TokenType};
use super::{AuthError, Error, MICROS_PER_SEC, Result, Role, now_micros};
use crate::app::AppState;
use crate::store::users::{self, NewUser, UserRow};
use crate::store::{Tx, organizations, refresh_tokens};

pub const EMAIL_TAKEN: &str = "user account with this email already exists.";
pub const PASSWORDS_DIFFER: &str = "The two password fields didn't match.";
pub const INVALID_UID: &str = "Invalid user id or user doesn't exist.";
pub const INVALID_TOKEN: &str = "Invalid token for given user.";
pub const STALE_TOKEN: &str = "Stale token for given user.";
pub const INVALID_PASSWORD: &str = "Invalid password.";
pub const LAST_ADMIN: &str = "A company must keep at least one admin.";

/// A signup that has passed the surface's field checks.
pub struct Signup {
    pub email: String,
    pub first_name: String,
    pub last_name: String,
    /// `Admin` (creates a company) or `Coach` (independent, vetting PD).
    pub role: Role,
    pub company_name: Option<String>,
    pub password: String,
    pub re_password: String,
}

fn now_secs() -> i64 {
    now_micros() / MICROS_PER_SEC
}

/// True when no account uses this email (compared case-insensitively).
pub async fn email_available(state: &AppState, email: &str) -> Result<bool> {
    let mut tx = state.db.begin_read().await?;
    let taken = users::email_key_taken(&mut tx, &super::email_key(email)).await?;
    tx.commit().await?;
    Ok(!taken)
}

async fn find_by_email(state: &AppState, key: &str) -> Result<Option<UserRow>> {
    let mut tx = state.db.begin_read().await?;
    let user = users::find_by_email_key(&mut tx, key).await?;
    tx.commit().await?;
    Ok(user)
}

/// Password rules, then the retype check, as Djoser orders them.
fn check_new_password(
    state: &AppState,
    field: &str,
    password: &str,
    retype: &str,
    attrs: &[(&str, &str)],
) -> Result<()> {
    state.passwords.check(field, password, attrs)?;
    if password != retype {
        return Err(Error::field(NON_FIELD, PASSWORDS_DIFFER));
    }
    Ok(())
}

/// Creates an inactive account (and the admin's company, or the coach's
/// vetting record) and queues the activation email, in one transaction.
pub async fn signup(state: &AppState, input: Signup) -> Result<UserRow> {
    let email = super::normalize_email(&input.email);
    check_new_password(
        state,
        "password",
        &input.password,
        &input.re_password,
        &[
            ("email", &email),
            ("first name", &input.first_name),
            ("last name", &input.last_name),
        ],
    )?;
    let hash = state.hasher.hash(&input.password).await?;
    let now = now_micros();
    let mut tx = state.db.begin_write().await?;
    let key = super::email_key(&email);
    if users::email_key_taken(&mut tx, &key).await? {
        return Err(Error::field("email", EMAIL_TAKEN));
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
            organization_id: None,
            added_by: None,
            department_id: None,
            is_active: false,
            now,
        },
    )
    .await
    .map_err(|e| match e {
        crate::store::StoreError::Conflict(_) => Error::field("email", EMAIL_TAKEN),
        other => other.into(),
    })?;
    match input.role {
        Role::Admin => {
            let full_name = format!("{} {}", input.first_name, input.last_name)
                .trim()
                .to_string();
            let name = input
                .company_name
                .filter(|n| !n.trim().is_empty())
                .unwrap_or(if full_name.is_empty() {
                    email.clone()
                } else {
                    full_name
                });
            let org = create_organization(&mut tx, name.trim(), now).await?;
            users::set_organization(&mut tx, id, org).await?;
        }
        Role::Coach => {
            super::coach::ensure_profile(&mut tx, id, &input.first_name, &input.last_name, now)
                .await?
        }
        _ => {
            return Err(Error::field(
                "role",
                format!("\"{}\" is not a valid choice.", input.role.title()),
            ));
        }
    }
    let user = users::find_by_id(&mut tx, id)
        .await?
        .ok_or(Error::NotFound)?;
    queue_one_time_link(state, &mut tx, &user, Purpose::Activation).await?;
    tx.commit().await?;
    state.outbox_wakeup.notify_one();
    Ok(user)
}

/// Creates an organisation with a unique subdomain slug of its name.
pub async fn create_organization(tx: &mut Tx, name: &str, now: i64) -> Result<i64> {
    let base = match super::slugify(name) {
        s if s.is_empty() => "org".to_string(),
        s => s
            .chars()
            .take(50)
            .collect::<String>()
            .trim_end_matches('-')
            .to_string(),
    };
    let taken = organizations::subdomains_like(tx, &base).await?;
    let subdomain = super::unique_slug(&base, &taken);
    Ok(organizations::insert(tx, name, &subdomain, now).await?)
}

async fn queue_one_time_link(
    state: &AppState,
    tx: &mut Tx,
    user: &UserRow,
    purpose: Purpose,
) -> Result<()> {
    let uid = super::tokens::encode_uid(user.id);
    let token = state.keys.one_time_token(purpose, user, now_secs());
    let (template, subject, intro) = match purpose {
        Purpose::Activation => (
            &state.config.activation_url,
            "Activate your Roster account",
            "Welcome to Roster. Open this link to activate your account:",
        ),
        Purpose::PasswordReset => (
            &state.config.password_reset_url,
            "Reset your Roster password",
            "Someone asked to reset the password of your Roster account. If it was you, open this link:",
        ),
    };
    let link = email::link(state, template, &uid, &token);
    let lifetime_hours = match purpose {
        Purpose::Activation => state.config.activation_token_lifetime / 3600,
        Purpose::PasswordReset => state.config.password_reset_token_lifetime / 3600,
    };
    let body = format!(
        "Hello {name},\n\n{intro}\n\n{link}\n\nThe link works once and expires in {hours} hour{s}.\n\
         If you did not ask for this, ignore this email.\n",
        name = if user.first_name.is_empty() {
            &user.email
        } else {
            &user.first_name
        },
        hours = lifetime_hours.max(1),
        s = if lifetime_hours == 1 { "" } else { "s" },
    );
    tracing::info!(user.id = user.id, purpose = ?purpose, %link, "one-time link queued");
    email::enqueue(
        tx,
        &Email {
            to: user.email.clone(),
            subject: subject.into(),
            body,
        },
    )
    .await
}

/// Resolves a Djoser `uid` to its user, or the uid field error.
async fn user_from_uid(tx: &mut Tx, uid: &str) -> Result<UserRow> {
    let id = super::tokens::decode_uid(uid).ok_or_else(|| Error::field("uid", INVALID_UID))?;
    users::find_by_id(tx, id)
        .await?
        .ok_or_else(|| Error::field("uid", INVALID_UID))
}

/// Activates the account behind `uid` and `token` (Djoser order: uid,
/// token, then "already active" as 403).
pub async fn activate(state: &AppState, uid: &str, token: &str) -> Result<()> {
    let mut tx = state.db.begin_write().await?;
    let user = user_from_uid(&mut tx, uid).await?;
    let lifetime = state.config.activation_token_lifetime;
    if !state
        .keys
        .check_one_time_token(Purpose::Activation, &user, token, now_secs(), lifetime)
    {
        return Err(Error::field("token", INVALID_TOKEN));
    }
    if user.is_active {
        return Err(Error::Forbidden(Some(STALE_TOKEN.into())));
    }
    users::set_active(&mut tx, user.id, true, now_micros()).await?;
    tx.commit().await?;
    Ok(())
}

fn mail_quota(state: &AppState) -> Limit {
    Limit {
        limit: state.config.reset_emails_per_hour,
        window_secs: 3_600,
    }
}

fn address_limit(state: &AppState) -> Limit {
    Limit {
        limit: state.config.login_rate_per_minute,
        window_secs: 60,
    }
}

/// Mails a new activation link to an inactive account; silent otherwise.
pub async fn resend_activation(state: &AppState, email: &str, client: &str) -> Result<()> {
    rate_limit::hit(state, &format!("reset-ip:{client}"), address_limit(state)).await?;
    let key = super::email_key(email);
    let Some(user) = find_by_email(state, &key)
        .await?
        .filter(|u| !u.is_active && u.password != UNUSABLE_PASSWORD)
    else {
        return Ok(());
    };
    if !rate_limit::allow(state, &format!("mail:{key}"), mail_quota(state)).await? {
        return Ok(());
    }
    let mut tx = state.db.begin_write().await?;
    queue_one_time_link(state, &mut tx, &user, Purpose::Activation).await?;
    tx.commit().await?;
    state.outbox_wakeup.notify_one();
    Ok(())
}

/// A refresh/access pair; `refresh` first, as SimpleJWT orders them.
pub struct TokenPair {
    pub refresh: String,
    pub access: String,
}

/// Logs in with email and password. Rate-limited per client address and
/// per submitted email (whether or not it exists); unknown emails cost the
/// same hash as wrong passwords.
pub async fn login(
    state: &AppState,
    email: &str,
    password: &str,
    client: &str,
) -> Result<TokenPair> {
    let cfg = &state.config;
    rate_limit::hit(state, &format!("login-ip:{client}"), address_limit(state)).await?;
    let key = super::email_key(email);
    let failures_bucket = format!("login-fail:{key}");
    let failures = Limit {
        limit: cfg.login_failures_per_account,
        window_secs: 15 * 60,
    };
    rate_limit::check(state, &failures_bucket, failures).await?;

    let user = find_by_email(state, &key).await?;
    let matches = state
        .hasher
        .verify(password, user.as_ref().map(|u| u.password.as_str()))
        .await?;
    let user = match user {
        Some(u) if matches && u.is_active => u,
        _ => {
            rate_limit::hit(
                state,
                &failures_bucket,
                Limit {
                    limit: u32::MAX,
                    window_secs: 15 * 60,
                },
            )
            .await?;
            return Err(AuthError::BadCredentials.into());
        }
    };
    let mut tx = state.db.begin_write().await?;
    users::set_last_sign_in(&mut tx, user.id, now_micros()).await?;
    let pair = issue_pair(state, &mut tx, &user, None).await?;
    tx.commit().await?;
    Ok(pair)
}

/// Issues a refresh token (recorded, so it can be revoked) and its access
/// token. `rotated_from` is `(family, parent jti)` when rotating.
async fn issue_pair(
    state: &AppState,
    tx: &mut Tx,
    user: &UserRow,
    rotated_from: Option<(&str, &str)>,
) -> Result<TokenPair> {
    let cfg = &state.config;
    let now = now_secs();
    let (refresh, jti) = state.keys.issue_jwt(
        TokenType::Refresh,
        user.id,
        user.token_version,
        now,
        cfg.refresh_token_lifetime,
    );
    let family = rotated_from
        .map(|(f, _)| f.to_string())
        .unwrap_or_else(|| jti.clone());
    refresh_tokens::insert(
        tx,
        &refresh_tokens::NewRefreshToken {
            jti: &jti,
            user_id: user.id,
            family: &family,
            parent: rotated_from.map(|(_, p)| p),
            now: now_micros(),
            expires_at: (now + cfg.refresh_token_lifetime as i64) * MICROS_PER_SEC,
        },
    )
    .await?;
    let (access, _) = state.keys.issue_jwt(
        TokenType::Access,
        user.id,
        user.token_version,
        now,
        cfg.access_token_lifetime,
    );
    Ok(TokenPair { refresh, access })
}

/// The answer to a refresh: a new access token, and a new refresh token
/// when rotation is on.
pub struct Refreshed {
    pub access: String,
    pub refresh: Option<String>,
}

/// Checks a refresh token against its record and its user.
async fn live_refresh_token(
    state: &AppState,
    tx: &mut Tx,
    token: &str,
) -> Result<(
    super::tokens::Claims,
    refresh_tokens::RefreshTokenRow,
    UserRow,
)> {
    let claims = state
        .keys
        .verify_jwt(token, Some(TokenType::Refresh))
        .map_err(AuthError::InvalidToken)?;
    let record = refresh_tokens::find(tx, &claims.jti)
        .await?
        .ok_or_else(|| AuthError::InvalidToken("Token is invalid".into()))?;
    if record.revoked_at.is_some() {
        return Err(AuthError::InvalidToken("Token is blacklisted".into()).into());
    }
    let user = users::find_by_id(tx, claims.user_id)
        .await?
        .filter(|u| u.is_active)
        .ok_or(AuthError::NoActiveAccountForToken)?;
    if user.token_version != claims.version {
        return Err(AuthError::PasswordChanged.into());
    }
    Ok((claims, record, user))
}

pub async fn refresh(state: &AppState, token: &str) -> Result<Refreshed> {
    let mut tx = state.db.begin_write().await?;
    let (claims, record, user) = live_refresh_token(state, &mut tx, token).await?;
    if record.rotated_at.is_some() {
        // A rotated-out token presented again: someone holds a copy. End the
        // whole chain, so the thief's newer tokens die with it.
        refresh_tokens::revoke_family(&mut tx, &record.family, now_micros()).await?;
        tx.commit().await?;
        tracing::warn!(
            user.id = user.id,
            "reuse of a rotated refresh token; chain revoked"
        );
        return Err(AuthError::InvalidToken("Token is blacklisted".into()).into());
    }
    let answer = if state.config.rotate_refresh_tokens {
        if !refresh_tokens::mark_rotated(&mut tx, &claims.jti, now_micros()).await? {
            return Err(AuthError::InvalidToken("Token is blacklisted".into()).into());
        }
        let pair = issue_pair(state, &mut tx, &user, Some((&record.family, &claims.jti))).await?;
        Refreshed {
            access: pair.access,
            refresh: Some(pair.refresh),
        }
    } else {
        let (access, _) = state.keys.issue_jwt(
            TokenType::Access,
            user.id,
            user.token_version,
            now_secs(),
            state.config.access_token_lifetime,
        );
        Refreshed {
            access,
            refresh: None,
        }
    };
    tx.commit().await?;
    Ok(answer)
}

/// `jwt/verify`: any valid token of either type. A revoked refresh token is
/// a 400 (SimpleJWT's blacklist behaviour); a token of a deactivated user
/// or from before a password change fails as on every other endpoint.
pub async fn verify(state: &AppState, token: &str) -> Result<()> {
    let claims = state
        .keys
        .verify_jwt(token, None)
        .map_err(AuthError::InvalidToken)?;
    // Read-only checks, each complete on its own: no transaction needed.
    if claims.token_type == "refresh" {
        let mut conn = state.db.autocommit().await?;
        if let Some(record) = refresh_tokens::find(&mut conn, &claims.jti).await?
            && record.revoked_at.is_some()
        {
            return Err(Error::field(NON_FIELD, "Token is blacklisted"));
        }
    }
    let user = users::find_by_id_for_auth(&state.db, claims.user_id)
        .await?
        .filter(|u| u.is_active)
        .ok_or(AuthError::NoActiveAccountForToken)?;
    if user.token_version != claims.version {
        return Err(AuthError::PasswordChanged.into());
    }
    Ok(())
}

/// Logout: the refresh token stops working.
pub async fn blacklist(state: &AppState, token: &str) -> Result<()> {
    let mut tx = state.db.begin_write().await?;
    let (claims, _, _) = live_refresh_token(state, &mut tx, token).await?;
    refresh_tokens::revoke(&mut tx, &claims.jti, now_micros()).await?;
    tx.commit().await?;
    Ok(())
}

/// Changes the caller's names (the email is the login field and read-only;
/// the role is not the user's to change).
pub async fn update_me(
    state: &AppState,
    me: &Principal,
    first_name: Option<String>,
    last_name: Option<String>,
) -> Result<UserRow> {
    let first = first_name.unwrap_or_else(|| me.user.first_name.clone());
    let last = last_name.unwrap_or_else(|| me.user.last_name.clone());
    let mut tx = state.db.begin_write().await?;
    users::set_names(&mut tx, me.id(), &first, &last, now_micros()).await?;
    let user = users::find_by_id(&mut tx, me.id())
        .await?
        .ok_or(Error::NotFound)?;
    tx.commit().await?;
    Ok(user)
}

/// Field-level check of `current_password` (reported with the other field
/// errors, as Djoser does).
pub async fn current_password_ok(state: &AppState, me: &Principal, password: &str) -> Result<bool> {
    state.hasher.verify(password, Some(&me.user.password)).await
}

/// Deletes the caller's account. The last admin of a company with other
/// users cannot leave it without an admin; a company's only user takes the
/// company with them.
pub async fn delete_me(state: &AppState, me: &Principal) -> Result<()> {
    let mut tx = state.db.begin_write().await?;
    if let (Role::Admin, Some(org)) = (me.role, me.user.organization_id) {
        let admins = users::count_in_role(&mut tx, org, Role::Admin.as_str()).await?;
        let everyone = users::count_in_organization(&mut tx, org).await?;
        if admins <= 1 && everyone > 1 {
            return Err(Error::field(NON_FIELD, LAST_ADMIN));
        }
        if everyone <= 1 {
            organizations::delete(&mut tx, org).await?;
        }
    }
    users::delete(&mut tx, me.id()).await?;
    tx.commit().await?;
    Ok(())
}

/// Sets a new password (the surface has checked `current_password`).
/// Every token issued before stops working.
pub async fn set_password(
    state: &AppState,
    me: &Principal,
    new_password: &str,
    retype: &str,
) -> Result<()> {
    let u = &me.user;
    check_new_password(
        state,
        "new_password",
        new_password,
        retype,
        &[
            ("email", &u.email),
            ("first name", &u.first_name),
            ("last name", &u.last_name),
        ],
    )?;
    let hash = state.hasher.hash(new_password).await?;
    let mut tx = state.db.begin_write().await?;
    users::set_password(&mut tx, u.id, &hash, now_micros()).await?;
    tx.commit().await?;
    Ok(())
}

/// Mails a reset link to an active account with a password. Always
/// succeeds for the caller, so the answer reveals nothing; at most
/// `reset_emails_per_hour` mails go to one address.
pub async fn reset_password(state: &AppState, email: &str, client: &str) -> Result<()> {
    rate_limit::hit(state, &format!("reset-ip:{client}"), address_limit(state)).await?;
    let key = super::email_key(email);
    let Some(user) = find_by_email(state, &key)
        .await?
        .filter(|u| u.is_active && u.password != UNUSABLE_PASSWORD)
    else {
        return Ok(());
    };
    if !rate_limit::allow(state, &format!("mail:{key}"), mail_quota(state)).await? {
        tracing::info!(user.id = user.id, "reset email quota reached; nothing sent");
        return Ok(());
    }
    let mut tx = state.db.begin_write().await?;
    queue_one_time_link(state, &mut tx, &user, Purpose::PasswordReset).await?;
    tx.commit().await?;
    state.outbox_wakeup.notify_one();
    Ok(())
}

/// Sets a new password from a reset link. Djoser's order: password rules,
/// retype, uid, token.
pub async fn reset_password_confirm(
    state: &AppState,
    uid: &str,
    token: &str,
    new_password: &str,
    retype: &str,
) -> Result<()> {
    check_new_password(state, "new_password", new_password, retype, &[])?;
    let hash = state.hasher.hash(new_password).await?;
    let mut tx = state.db.begin_write().await?;
    let user = user_from_uid(&mut tx, uid).await?;
    let lifetime = state.config.password_reset_token_lifetime;
    if !state
        .keys
        .check_one_time_token(Purpose::PasswordReset, &user, token, now_secs(), lifetime)
    {
        return Err(Error::field("token", INVALID_TOKEN));
    }
    let now = now_micros();
    users::set_password(&mut tx, user.id, &hash, now).await?;
    users::set_last_login(&mut tx, user.id, now).await?;
    tx.commit().await?;
    Ok(())
}

/// Creates an active platform staff user (the `create-staff` command).
pub async fn create_staff(state: &AppState, email: &str, password: &str) -> Result<UserRow> {
    let email = super::normalize_email(email);
    if !super::looks_like_email(&email) {
        return Err(Error::field("email", "Enter a valid email address."));
    }
    state
        .passwords
        .check("password", password, &[("email", &email)])?;
    let hash = state.hasher.hash(password).await?;
    let key = super::email_key(&email);
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
            first_name: "",
            last_name: "",
            role: Role::Staff.as_str(),
            organization_id: None,
            added_by: None,
            department_id: None,
            is_active: true,
            now: now_micros(),
        },
    )
    .await?;
    let user = users::find_by_id(&mut tx, id)
        .await?
        .ok_or(Error::NotFound)?;
    tx.commit().await?;
    Ok(user)
}

/// Housekeeping: forget expired refresh tokens and old rate-limit windows.
pub async fn prune(state: &AppState) -> Result<()> {
    let mut tx = state.db.begin_write().await?;
    refresh_tokens::delete_expired(&mut tx, now_micros()).await?;
    tx.commit().await?;
    rate_limit::prune(state).await?;
    Ok(())
}
