//! set_password, reset_password and reset_password_confirm.

use serde_json::json;

use crate::harness::{PASSWORD, TestApp, assert_reply};

const NEW: &str = "Brand-New-Secret-7";

#[tokio::test]
async fn set_password_changes_it_and_revokes_every_earlier_token() {
    let app = TestApp::spawn().await;
    let (_, access, refresh) = app.active_user("jane@example.com", "Admin").await;
    let reply = app
        .post(
            "/api/auth/users/set_password/",
            Some(&access),
            json!({"new_password": NEW, "re_new_password": NEW, "current_password": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    let changed =
        json!({"detail": "The user's password has been changed.", "code": "password_changed"});
    assert_reply(
        &app.get("/api/auth/users/me/", Some(&access)).await,
        401,
        changed.clone(),
    );
    assert_reply(
        &app.post("/api/auth/jwt/refresh/", None, json!({"refresh": refresh}))
            .await,
        401,
        changed,
    );
    let old = app
        .post(
            "/api/auth/jwt/create/",
            None,
            json!({"email": "jane@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(old.status, 401);
    let (access, _) = app.login("jane@example.com", NEW).await;
    assert_eq!(
        app.get("/api/auth/users/me/", Some(&access)).await.status,
        200
    );
}

#[tokio::test]
async fn set_password_errors_follow_djosers_order() {
    let app = TestApp::spawn().await;
    let (_, access, _) = app.active_user("jane@example.com", "Admin").await;
    let path = "/api/auth/users/set_password/";
    let reply = app.post(path, None, json!({})).await;
    assert_eq!(reply.status, 401);
    let reply = app.post(path, Some(&access), json!({})).await;
    let required = json!(["This field is required."]);
    assert_reply(
        &reply,
        400,
        json!({"new_password": required, "re_new_password": required, "current_password": required}),
    );
    // A wrong current password is a field error, reported before the rules run.
    let reply = app.post(path, Some(&access), json!({"new_password": "123", "re_new_password": "123", "current_password": "nope-nope"})).await;
    assert_reply(
        &reply,
        400,
        json!({"current_password": ["Invalid password."]}),
    );
    let reply = app.post(path, Some(&access), json!({"new_password": "password", "re_new_password": "password", "current_password": PASSWORD})).await;
    assert_reply(
        &reply,
        400,
        json!({"new_password": ["This password is too common."]}),
    );
    let reply = app
        .post(
            path,
            Some(&access),
            json!({"new_password": NEW, "re_new_password": "other", "current_password": PASSWORD}),
        )
        .await;
    assert_reply(
        &reply,
        400,
        json!({"non_field_errors": ["The two password fields didn't match."]}),
    );
    // Nothing changed.
    app.login("jane@example.com", PASSWORD).await;
}

#[tokio::test]
async fn reset_password_mails_a_link_that_sets_a_new_password_once() {
    let app = TestApp::spawn().await;
    let (_, access, _) = app.active_user("jane@example.com", "Admin").await;
    let reply = app
        .post(
            "/api/auth/users/reset_password/",
            None,
            json!({"email": "jane@example.com"}),
        )
        .await;
    assert_eq!(reply.status, 204);
    let (uid, token) = app
        .link_for("jane@example.com", "/password/reset/confirm/")
        .await;
    let mail = app.mails_to("jane@example.com").pop().unwrap();
    assert!(
        mail.contains("Subject: Reset your Roster password"),
        "{mail}"
    );

    let body = json!({"uid": uid, "token": token, "new_password": NEW, "re_new_password": NEW});
    let reply = app
        .post(
            "/api/auth/users/reset_password_confirm/",
            None,
            body.clone(),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    assert_eq!(reply.text, "");
    app.login("jane@example.com", NEW).await;
    // The old session ended, and the link does not work twice.
    assert_eq!(
        app.get("/api/auth/users/me/", Some(&access)).await.status,
        401
    );
    let reply = app
        .post("/api/auth/users/reset_password_confirm/", None, body)
        .await;
    assert_reply(
        &reply,
        400,
        json!({"token": ["Invalid token for given user."]}),
    );
}

#[tokio::test]
async fn reset_password_reveals_nothing_about_unknown_or_inactive_accounts() {
    let app = TestApp::spawn().await;
    app.signup("inactive@example.com", "Admin").await;
    app.wait_for_mails("inactive@example.com", 1).await;
    for email in ["ghost@example.com", "inactive@example.com"] {
        let reply = app
            .post(
                "/api/auth/users/reset_password/",
                None,
                json!({"email": email}),
            )
            .await;
        assert_eq!(reply.status, 204);
    }
    let reply = app
        .post(
            "/api/auth/users/reset_password/",
            None,
            json!({"email": "bad"}),
        )
        .await;
    assert_reply(
        &reply,
        400,
        json!({"email": ["Enter a valid email address."]}),
    );
    let reply = app
        .post("/api/auth/users/reset_password/", None, json!({}))
        .await;
    assert_reply(&reply, 400, json!({"email": ["This field is required."]}));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.mails_to("ghost@example.com").len(), 0);
    assert_eq!(
        app.mails_to("inactive@example.com").len(),
        1,
        "only the activation mail"
    );
}

#[tokio::test]
async fn reset_password_sends_at_most_three_mails_an_hour_to_one_address() {
    let app = TestApp::spawn().await;
    app.active_user("jane@example.com", "Admin").await;
    for _ in 0..5 {
        let reply = app
            .post(
                "/api/auth/users/reset_password/",
                None,
                json!({"email": "jane@example.com"}),
            )
            .await;
        assert_eq!(reply.status, 204);
    }
    // One activation mail plus three reset mails.
    app.wait_for_mails("jane@example.com", 4).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(app.mails_to("jane@example.com").len(), 4);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM outbox").await, 4);
}

#[tokio::test]
async fn reset_confirm_checks_password_rules_first_then_uid_then_token() {
    let app = TestApp::spawn().await;
    let (id, _, _) = app.active_user("jane@example.com", "Admin").await;
    let path = "/api/auth/users/reset_password_confirm/";
    let required = json!(["This field is required."]);
    assert_reply(
        &app.post(path, None, json!({})).await,
        400,
        json!({"uid": required, "token": required, "new_password": required, "re_new_password": required}),
    );
    let reply = app.post(path, None, json!({"uid": "garbage", "token": "x-y", "new_password": "short", "re_new_password": "short"})).await;
    assert_reply(
        &reply,
        400,
        json!({"new_password": ["This password is too short. It must contain at least 8 characters."]}),
    );
    let reply = app
        .post(
            path,
            None,
            json!({"uid": "garbage", "token": "x-y", "new_password": NEW, "re_new_password": "x"}),
        )
        .await;
    assert_reply(
        &reply,
        400,
        json!({"non_field_errors": ["The two password fields didn't match."]}),
    );
    let reply = app
        .post(
            path,
            None,
            json!({"uid": "garbage", "token": "x-y", "new_password": NEW, "re_new_password": NEW}),
        )
        .await;
    assert_reply(
        &reply,
        400,
        json!({"uid": ["Invalid user id or user doesn't exist."]}),
    );
    let uid = roster::domain::tokens::encode_uid(id);
    let reply = app
        .post(
            path,
            None,
            json!({"uid": uid, "token": "x-y", "new_password": NEW, "re_new_password": NEW}),
        )
        .await;
    assert_reply(
        &reply,
        400,
        json!({"token": ["Invalid token for given user."]}),
    );
}

#[tokio::test]
async fn an_activation_token_cannot_reset_a_password() {
    let app = TestApp::spawn().await;
    app.signup("jane@example.com", "Admin").await;
    let (uid, token) = app.link_for("jane@example.com", "/activate/").await;
    let reply = app
        .post(
            "/api/auth/users/reset_password_confirm/",
            None,
            json!({"uid": uid, "token": token, "new_password": NEW, "re_new_password": NEW}),
        )
        .await;
    assert_reply(
        &reply,
        400,
        json!({"token": ["Invalid token for given user."]}),
    );
}
