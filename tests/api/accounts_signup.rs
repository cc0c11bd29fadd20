//! Signup, activation and resend_activation.

use serde_json::json;

use crate::harness::{PASSWORD, TestApp, assert_reply};

fn signup_body() -> serde_json::Value {
    json!({"email": "jane@example.com", "first_name": "Jane", "last_name": "Doe", "role": "Admin",
           "password": PASSWORD, "re_password": PASSWORD})
}

#[tokio::test]
async fn signup_as_admin_creates_an_inactive_account_with_a_company_and_mails_the_activation_link()
{
    let app = TestApp::spawn().await;
    let reply = app.post("/api/auth/users/", None, signup_body()).await;
    assert_reply(
        &reply,
        201,
        json!({"id": 1, "email": "jane@example.com", "first_name": "Jane", "last_name": "Doe", "role": "Admin"}),
    );
    let keys: Vec<&String> = reply.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "email", "first_name", "last_name", "role"]);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM organizations WHERE name = 'Jane Doe'")
            .await,
        1
    );

    // Inactive until activated: login gives SimpleJWT's generic 401.
    let login = app
        .post(
            "/api/auth/jwt/create/",
            None,
            json!({"email": "jane@example.com", "password": PASSWORD}),
        )
        .await;
    assert_reply(
        &login,
        401,
        json!({"detail": "No active account found with the given credentials"}),
    );

    let mail = &app.wait_for_mails("jane@example.com", 1).await[0];
    assert!(
        mail.contains("Subject: Activate your Roster account"),
        "{mail}"
    );
    assert!(mail.contains("http://testserver/activate/MQ/"), "{mail}");
    let (uid, token) = app.link_for("jane@example.com", "/activate/").await;
    let reply = app
        .post(
            "/api/auth/users/activation/",
            None,
            json!({"uid": uid, "token": token}),
        )
        .await;
    assert_eq!(reply.status, 204);
    assert_eq!(reply.text, "");
    app.login("jane@example.com", PASSWORD).await;
}

#[tokio::test]
async fn signup_names_the_company_from_company_name_and_makes_subdomains_unique() {
    let app = TestApp::spawn().await;
    for email in ["a@example.com", "b@example.com"] {
        let mut body = signup_body();
        body["email"] = json!(email);
        body["company_name"] = json!("Acme Coaching");
        assert_eq!(app.post("/api/auth/users/", None, body).await.status, 201);
    }
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM organizations WHERE subdomain = 'acme-coaching'")
            .await,
        1
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM organizations WHERE subdomain = 'acme-coaching-2'")
            .await,
        1
    );
}

#[tokio::test]
async fn signup_as_coach_creates_an_independent_coach_pending_vetting() {
    let app = TestApp::spawn().await;
    let mut body = signup_body();
    body["role"] = json!("coach");
    let reply = app.post("/api/auth/users/", None, body).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body["role"], "Coach");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM coach_profiles WHERE vetting_status = 'PD'")
            .await,
        1
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM users WHERE organization_id IS NULL")
            .await,
        1
    );
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM organizations").await,
        0
    );
}

#[tokio::test]
async fn signup_reports_every_missing_field_at_once() {
    let app = TestApp::spawn().await;
    let reply = app.post("/api/auth/users/", None, json!({})).await;
    let required = json!(["This field is required."]);
    assert_reply(
        &reply,
        400,
        json!({"email": required, "first_name": required, "last_name": required, "role": required,
               "password": required, "re_password": required}),
    );
}

#[tokio::test]
async fn signup_refuses_bad_values_in_drf_words() {
    let app = TestApp::spawn().await;
    let reply = app
        .post(
            "/api/auth/users/",
            None,
            json!({"email": "not-an-email", "first_name": "  ", "last_name": null, "role": "Boss",
                   "password": PASSWORD, "re_password": PASSWORD}),
        )
        .await;
    assert_reply(
        &reply,
        400,
        json!({"email": ["Enter a valid email address."], "first_name": ["This field may not be blank."],
               "last_name": ["This field may not be null."], "role": ["\"Boss\" is not a valid choice."]}),
    );
    // Members, clients and staff cannot sign themselves up.
    for role in ["Member", "Client", "Staff"] {
        let mut body = signup_body();
        body["role"] = json!(role);
        let reply = app.post("/api/auth/users/", None, body).await;
        assert_reply(
            &reply,
            400,
            json!({"role": [format!("\"{role}\" is not a valid choice.")]}),
        );
    }
}

#[tokio::test]
async fn signup_refuses_wrong_types() {
    let app = TestApp::spawn().await;
    let reply = app
        .post(
            "/api/auth/users/",
            None,
            json!({"email": ["x@example.com"], "first_name": {"a": 1}, "last_name": true, "role": "Admin",
                   "password": 12345678, "re_password": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text);
    assert_eq!(reply.body["email"], json!(["Not a valid string."]));
    assert_eq!(reply.body["first_name"], json!(["Not a valid string."]));
    assert_eq!(reply.body["last_name"], json!(["Not a valid string."]));
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM users").await, 0);
}

#[tokio::test]
async fn signup_refuses_a_taken_email_whatever_its_case() {
    let app = TestApp::spawn().await;
    assert_eq!(
        app.post("/api/auth/users/", None, signup_body())
            .await
            .status,
        201
    );
    let mut body = signup_body();
    body["email"] = json!("JANE@Example.com");
    let reply = app.post("/api/auth/users/", None, body).await;
    assert_reply(
        &reply,
        400,
        json!({"email": ["user account with this email already exists."]}),
    );
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM users").await, 1);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM organizations").await,
        1
    );
}

#[tokio::test]
async fn signup_applies_the_password_rules_before_the_retype_check() {
    let app = TestApp::spawn().await;
    let mut body = signup_body();
    body["password"] = json!("12345");
    body["re_password"] = json!("different");
    let reply = app.post("/api/auth/users/", None, body).await;
    assert_reply(
        &reply,
        400,
        json!({"password": ["This password is too short. It must contain at least 8 characters.",
                            "This password is too common.", "This password is entirely numeric."]}),
    );
    let mut body = signup_body();
    body["password"] = json!("jane.doe.example");
    body["re_password"] = json!("jane.doe.example");
    let reply = app.post("/api/auth/users/", None, body).await;
    assert_reply(
        &reply,
        400,
        json!({"password": ["The password is too similar to the email."]}),
    );
    let mut body = signup_body();
    body["re_password"] = json!("Something-Else-99");
    let reply = app.post("/api/auth/users/", None, body).await;
    assert_reply(
        &reply,
        400,
        json!({"non_field_errors": ["The two password fields didn't match."]}),
    );
    let mut body = signup_body();
    body["password"] = json!("x".repeat(129) + "Aa1");
    body["re_password"] = body["password"].clone();
    let reply = app.post("/api/auth/users/", None, body).await;
    assert_reply(
        &reply,
        400,
        json!({"password": ["This password is too long. It must contain at most 128 characters."]}),
    );
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM users").await, 0);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM outbox").await, 0);
}

#[tokio::test]
async fn signup_accepts_form_encoded_bodies() {
    let app = TestApp::spawn().await;
    let body = format!(
        "email=form%40example.com&first_name=Form&last_name=User&role=Admin&password={p}&re_password={p}",
        p = PASSWORD
    );
    let reply = app
        .post_raw(
            "/api/auth/users/",
            "application/x-www-form-urlencoded",
            body,
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.body["email"], "form@example.com");
}

#[tokio::test]
async fn activation_errors_follow_djoser() {
    let app = TestApp::spawn().await;
    let id = app.signup("jane@example.com", "Admin").await;
    let (uid, token) = app.link_for("jane@example.com", "/activate/").await;

    let reply = app
        .post("/api/auth/users/activation/", None, json!({}))
        .await;
    assert_reply(
        &reply,
        400,
        json!({"uid": ["This field is required."], "token": ["This field is required."]}),
    );
    let reply = app
        .post(
            "/api/auth/users/activation/",
            None,
            json!({"uid": "%%%", "token": token}),
        )
        .await;
    assert_reply(
        &reply,
        400,
        json!({"uid": ["Invalid user id or user doesn't exist."]}),
    );
    let reply = app
        .post(
            "/api/auth/users/activation/",
            None,
            json!({"uid": "OTk5", "token": token}),
        )
        .await;
    assert_reply(
        &reply,
        400,
        json!({"uid": ["Invalid user id or user doesn't exist."]}),
    );
    let reply = app
        .post(
            "/api/auth/users/activation/",
            None,
            json!({"uid": uid, "token": "abc-123"}),
        )
        .await;
    assert_reply(
        &reply,
        400,
        json!({"token": ["Invalid token for given user."]}),
    );
    assert_eq!(uid, roster::domain::tokens::encode_uid(id));

    assert_eq!(
        app.post(
            "/api/auth/users/activation/",
            None,
            json!({"uid": uid, "token": token})
        )
        .await
        .status,
        204
    );
    let reply = app
        .post(
            "/api/auth/users/activation/",
            None,
            json!({"uid": uid, "token": token}),
        )
        .await;
    assert_reply(
        &reply,
        403,
        json!({"detail": "Stale token for given user."}),
    );
}

#[tokio::test]
async fn resend_activation_mails_only_inactive_accounts_and_always_answers_204() {
    let app = TestApp::spawn().await;
    app.signup("jane@example.com", "Admin").await;
    app.wait_for_mails("jane@example.com", 1).await;
    let reply = app
        .post(
            "/api/auth/users/resend_activation/",
            None,
            json!({"email": "jane@example.com"}),
        )
        .await;
    assert_eq!(reply.status, 204);
    app.wait_for_mails("jane@example.com", 2).await;
    // The newest link works.
    let (uid, token) = app.link_for("jane@example.com", "/activate/").await;
    assert_eq!(
        app.post(
            "/api/auth/users/activation/",
            None,
            json!({"uid": uid, "token": token})
        )
        .await
        .status,
        204
    );

    // Active account and unknown address: same answer, no mail.
    for email in ["jane@example.com", "nobody@example.com"] {
        let reply = app
            .post(
                "/api/auth/users/resend_activation/",
                None,
                json!({"email": email}),
            )
            .await;
        assert_eq!(reply.status, 204);
    }
    let reply = app
        .post(
            "/api/auth/users/resend_activation/",
            None,
            json!({"email": "nope"}),
        )
        .await;
    assert_reply(
        &reply,
        400,
        json!({"email": ["Enter a valid email address."]}),
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.mails_to("jane@example.com").len(), 2);
    assert_eq!(app.mails_to("nobody@example.com").len(), 0);
}
