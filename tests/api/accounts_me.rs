//! users/me and the authentication header.

use base64::Engine;
use serde_json::json;

use crate::harness::{PASSWORD, TestApp, assert_reply};

#[tokio::test]
async fn me_answers_the_current_user() {
    let app = TestApp::spawn().await;
    let (id, access, _) = app.active_user("jane@example.com", "Admin").await;
    let reply = app.get("/api/auth/users/me/", Some(&access)).await;
    assert_reply(
        &reply,
        200,
        json!({"id": id, "email": "jane@example.com", "first_name": "Test", "last_name": "User", "role": "Admin"}),
    );
    // Bearer works as well as JWT, and the trailing slash is optional.
    let reply = app
        .client
        .get(app.url("/api/auth/users/me"))
        .header("authorization", format!("Bearer {access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
}

#[tokio::test]
async fn me_refuses_missing_and_malformed_credentials() {
    let app = TestApp::spawn().await;
    let (_, access, refresh) = app.active_user("jane@example.com", "Admin").await;
    let anonymous = app.get("/api/auth/users/me/", None).await;
    assert_reply(
        &anonymous,
        401,
        json!({"detail": "Authentication credentials were not provided."}),
    );
    assert_eq!(
        anonymous.header("www-authenticate"),
        Some("JWT realm=\"api\"")
    );

    let send = |value: String| {
        let req = app
            .client
            .get(app.url("/api/auth/users/me/"))
            .header("authorization", value);
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }
    };
    assert_eq!(
        send(format!("Token {access}")).await.1["detail"],
        "Authentication credentials were not provided."
    );
    let bad_header = send("JWT".into()).await;
    assert_eq!(bad_header.0, 401);
    assert_eq!(bad_header.1["code"], "bad_authorization_header");
    assert_eq!(
        send(format!("JWT {access} extra")).await.1["code"],
        "bad_authorization_header"
    );
    // Words are split on runs of spaces and tabs, as DRF's `bytes.split()`.
    for spaced in [format!("  jwt \t {access}\t"), format!("Bearer\t{access}")] {
        let (status, body) = send(spaced).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["email"], "jane@example.com");
    }
    assert_eq!(
        send(format!("JWT {access}\textra")).await.1["code"],
        "bad_authorization_header"
    );
    let wrong_type = send(format!("JWT {refresh}")).await;
    assert_eq!(wrong_type.0, 401);
    assert_eq!(
        wrong_type.1["messages"][0]["message"],
        "Token has wrong type"
    );

    // alg:none and a forged signature are invalid tokens.
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let none = format!(
        "{}.{}.",
        b64(r#"{"alg":"none","typ":"JWT"}"#),
        b64(r#"{"token_type":"access","exp":9999999999,"iat":1,"jti":"abc","user_id":"1"}"#)
    );
    assert_eq!(
        send(format!("JWT {none}")).await.1["messages"][0]["message"],
        "Token is invalid"
    );
    let parts: Vec<&str> = access.split('.').collect();
    let forged = format!(
        "{}.{}.{}",
        parts[0],
        b64(r#"{"token_type":"access","exp":9999999999,"iat":1,"jti":"abc","user_id":"2"}"#),
        parts[2]
    );
    assert_eq!(
        send(format!("JWT {forged}")).await.1["messages"][0]["message"],
        "Token is invalid"
    );
}

#[tokio::test]
async fn patch_me_changes_names_and_ignores_email_and_role() {
    let app = TestApp::spawn().await;
    let (id, access, _) = app.active_user("coach@example.com", "Coach").await;
    let reply = app
        .patch(
            "/api/auth/users/me/",
            Some(&access),
            json!({"first_name": "Janet", "email": "evil@example.com", "role": "Admin"}),
        )
        .await;
    assert_reply(
        &reply,
        200,
        json!({"id": id, "email": "coach@example.com", "first_name": "Janet", "last_name": "User", "role": "Coach"}),
    );
    let reply = app
        .patch(
            "/api/auth/users/me/",
            Some(&access),
            json!({"last_name": ""}),
        )
        .await;
    assert_reply(
        &reply,
        400,
        json!({"last_name": ["This field may not be blank."]}),
    );
    let reply = app
        .patch(
            "/api/auth/users/me/",
            Some(&access),
            json!({"first_name": "x".repeat(151)}),
        )
        .await;
    assert_reply(
        &reply,
        400,
        json!({"first_name": ["Ensure this field has no more than 150 characters."]}),
    );
    let reply = app.get("/api/auth/users/me/", Some(&access)).await;
    assert_eq!(reply.body["first_name"], "Janet");
}

#[tokio::test]
async fn put_me_requires_every_writable_field() {
    let app = TestApp::spawn().await;
    let (_, access, _) = app.active_user("jane@example.com", "Admin").await;
    let reply = app
        .put(
            "/api/auth/users/me/",
            Some(&access),
            json!({"first_name": "Jane"}),
        )
        .await;
    assert_reply(
        &reply,
        400,
        json!({"last_name": ["This field is required."]}),
    );
    let reply = app
        .put(
            "/api/auth/users/me/",
            Some(&access),
            json!({"first_name": "Jane", "last_name": "Roe"}),
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.body["last_name"], "Roe");
}

#[tokio::test]
async fn delete_me_needs_the_current_password_and_ends_every_token() {
    let app = TestApp::spawn().await;
    let (_, access, refresh) = app.active_user("coach@example.com", "Coach").await;
    let reply = app
        .delete("/api/auth/users/me/", Some(&access), Some(json!({})))
        .await;
    assert_reply(
        &reply,
        400,
        json!({"current_password": ["This field is required."]}),
    );
    let reply = app
        .delete(
            "/api/auth/users/me/",
            Some(&access),
            Some(json!({"current_password": "wrong-one"})),
        )
        .await;
    assert_reply(
        &reply,
        400,
        json!({"current_password": ["Invalid password."]}),
    );
    let reply = app
        .delete(
            "/api/auth/users/me/",
            Some(&access),
            Some(json!({"current_password": PASSWORD})),
        )
        .await;
    assert_eq!(reply.status, 204);
    assert_reply(
        &app.get("/api/auth/users/me/", Some(&access)).await,
        401,
        json!({"detail": "User not found", "code": "user_not_found"}),
    );
    let reply = app
        .post("/api/auth/jwt/refresh/", None, json!({"refresh": refresh}))
        .await;
    assert_eq!(reply.status, 401);
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM users").await, 0);
}

#[tokio::test]
async fn an_admin_who_is_alone_takes_the_company_with_them() {
    let app = TestApp::spawn().await;
    let (_, access, _) = app.active_user("jane@example.com", "Admin").await;
    let reply = app
        .delete(
            "/api/auth/users/me/",
            Some(&access),
            Some(json!({"current_password": PASSWORD})),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM organizations").await,
        0
    );
}

#[tokio::test]
async fn a_deactivated_user_is_refused_on_the_next_request() {
    let app = TestApp::spawn().await;
    let (_, access, refresh) = app.active_user("jane@example.com", "Admin").await;
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM users WHERE is_active = TRUE")
            .await,
        1
    );
    match &app.state.db {
        roster::store::Db::Sqlite(p, ..) => sqlx::query("UPDATE users SET is_active = FALSE")
            .execute(p)
            .await
            .map(|_| ()),
        roster::store::Db::Postgres(p) => sqlx::query("UPDATE users SET is_active = FALSE")
            .execute(&mut *p.acquire().await.unwrap())
            .await
            .map(|_| ()),
    }
    .unwrap();
    assert_reply(
        &app.get("/api/auth/users/me/", Some(&access)).await,
        401,
        json!({"detail": "User is inactive", "code": "user_inactive"}),
    );
    let reply = app
        .post("/api/auth/jwt/refresh/", None, json!({"refresh": refresh}))
        .await;
    assert_reply(
        &reply,
        401,
        json!({"detail": "No active account found for the given token.", "code": "no_active_account"}),
    );
}

/// The credential check reads the user on a fast path (SQLite: on the
/// request's thread); it must find exactly what the pool finds.
#[tokio::test]
async fn the_credential_check_reads_the_row_the_pool_reads() {
    let app = TestApp::spawn().await;
    let (id, _, _) = app.active_user("jane@example.com", "Admin").await;
    let db = &app.state.db;
    let fast = roster::store::users::find_by_id_for_auth(db, id)
        .await
        .unwrap();
    // A write transaction runs on a pooled connection, never the reader.
    let mut tx = db.begin_write().await.unwrap();
    let pooled = roster::store::users::find_by_id(&mut tx, id).await.unwrap();
    assert!(fast.is_some());
    assert_eq!(fast, pooled);
    assert_eq!(
        roster::store::users::find_by_id_for_auth(db, id + 1000)
            .await
            .unwrap(),
        None
    );
}

/// When the fast path cannot answer (here: its file is not the database),
/// the check asks the pool and gets the same row.
#[tokio::test]
async fn the_credential_check_falls_back_to_the_pool() {
    let app = TestApp::spawn().await;
    let roster::store::Db::Sqlite(pool, ..) = &app.state.db else {
        return; // the fast path is SQLite's
    };
    let (id, _, _) = app.active_user("jane@example.com", "Admin").await;
    let junk = app.dir.join("not-a-database.db");
    std::fs::write(&junk, vec![7u8; 8192]).unwrap();
    let reader = roster::store::SqliteReader::new(junk);
    assert_eq!(
        reader.query_all::<(i64,)>(
            "SELECT id FROM users WHERE id = $1",
            &[roster::store::query::Arg::Int(id)]
        ),
        None
    );
    let db = roster::store::Db::Sqlite(
        pool.clone(),
        Some(std::sync::Arc::new(reader)),
        roster::store::WriteQueue::default(),
    );
    let user = roster::store::users::find_by_id_for_auth(&db, id)
        .await
        .unwrap()
        .expect("the pool finds the user");
    assert_eq!(user.email, "jane@example.com");
}
