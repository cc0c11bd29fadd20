//! jwt/create, refresh, verify, blacklist; rotation and rate limits.

use base64::Engine;
use serde_json::{Value, json};

use crate::harness::{PASSWORD, TestApp, assert_reply};

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn login_answers_refresh_then_access_with_simplejwt_claims() {
    let app = TestApp::spawn().await;
    let (id, _, _) = app.active_user("jane@example.com", "Admin").await;
    let reply = app
        .post(
            "/api/auth/jwt/create/",
            None,
            json!({"email": "Jane@Example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let keys: Vec<&String> = reply.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["refresh", "access"]);
    let access = claims(reply.body["access"].as_str().unwrap());
    assert_eq!(access["token_type"], "access");
    assert_eq!(access["user_id"], id.to_string());
    assert_eq!(
        access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap(),
        300
    );
    assert_eq!(access["jti"].as_str().unwrap().len(), 32);
    let refresh = claims(reply.body["refresh"].as_str().unwrap());
    assert_eq!(refresh["token_type"], "refresh");
    assert_eq!(
        refresh["exp"].as_i64().unwrap() - refresh["iat"].as_i64().unwrap(),
        86_400
    );
}

#[tokio::test]
async fn login_failures_look_the_same_whatever_the_cause() {
    let app = TestApp::spawn().await;
    app.active_user("jane@example.com", "Admin").await;
    app.signup("inactive@example.com", "Admin").await;
    let expected = json!({"detail": "No active account found with the given credentials"});
    for (email, password) in [
        ("jane@example.com", "Wrong-Password-1"),
        ("ghost@example.com", PASSWORD),
        ("inactive@example.com", PASSWORD),
    ] {
        let reply = app
            .post(
                "/api/auth/jwt/create/",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_reply(&reply, 401, expected.clone());
        assert_eq!(reply.header("www-authenticate"), Some("JWT realm=\"api\""));
    }
    let reply = app.post("/api/auth/jwt/create/", None, json!({})).await;
    assert_reply(
        &reply,
        400,
        json!({"email": ["This field is required."], "password": ["This field is required."]}),
    );
}

#[tokio::test]
async fn refresh_gives_a_new_access_token_and_refuses_bad_tokens() {
    let app = TestApp::spawn().await;
    let (_, access, refresh) = app.active_user("jane@example.com", "Admin").await;
    let reply = app
        .post("/api/auth/jwt/refresh/", None, json!({"refresh": refresh}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body.as_object().unwrap().len(), 1);
    let new_access = reply.body["access"].as_str().unwrap();
    assert_eq!(
        app.get("/api/auth/users/me/", Some(new_access))
            .await
            .status,
        200
    );

    let reply = app
        .post(
            "/api/auth/jwt/refresh/",
            None,
            json!({"refresh": "garbage"}),
        )
        .await;
    assert_reply(
        &reply,
        401,
        json!({"detail": "Token is invalid", "code": "token_not_valid"}),
    );
    let reply = app
        .post("/api/auth/jwt/refresh/", None, json!({"refresh": access}))
        .await;
    assert_reply(
        &reply,
        401,
        json!({"detail": "Token has wrong type", "code": "token_not_valid"}),
    );
    let reply = app.post("/api/auth/jwt/refresh/", None, json!({})).await;
    assert_reply(&reply, 400, json!({"refresh": ["This field is required."]}));
}

#[tokio::test]
async fn verify_accepts_both_token_types_and_answers_an_empty_object() {
    let app = TestApp::spawn().await;
    let (_, access, refresh) = app.active_user("jane@example.com", "Admin").await;
    for token in [&access, &refresh] {
        let reply = app
            .post("/api/auth/jwt/verify/", None, json!({"token": token}))
            .await;
        assert_reply(&reply, 200, json!({}));
    }
    let mut tampered = access.clone();
    tampered.push('x');
    let reply = app
        .post("/api/auth/jwt/verify/", None, json!({"token": tampered}))
        .await;
    assert_reply(
        &reply,
        401,
        json!({"detail": "Token is invalid", "code": "token_not_valid"}),
    );
    let reply = app
        .post("/api/auth/jwt/verify/", None, json!({"token": 5}))
        .await;
    assert_reply(
        &reply,
        401,
        json!({"detail": "Token is invalid", "code": "token_not_valid"}),
    );
}

#[tokio::test]
async fn blacklist_logs_out_a_refresh_token() {
    let app = TestApp::spawn().await;
    let (_, _, refresh) = app.active_user("jane@example.com", "Admin").await;
    let reply = app
        .post(
            "/api/auth/jwt/blacklist/",
            None,
            json!({"refresh": refresh}),
        )
        .await;
    assert_reply(&reply, 200, json!({}));
    let blacklisted = json!({"detail": "Token is blacklisted", "code": "token_not_valid"});
    assert_reply(
        &app.post("/api/auth/jwt/refresh/", None, json!({"refresh": refresh}))
            .await,
        401,
        blacklisted.clone(),
    );
    assert_reply(
        &app.post(
            "/api/auth/jwt/blacklist/",
            None,
            json!({"refresh": refresh}),
        )
        .await,
        401,
        blacklisted,
    );
    let reply = app
        .post("/api/auth/jwt/verify/", None, json!({"token": refresh}))
        .await;
    assert_reply(
        &reply,
        400,
        json!({"non_field_errors": ["Token is blacklisted"]}),
    );
}

#[tokio::test]
async fn rotation_issues_new_refresh_tokens_and_reuse_revokes_the_chain() {
    let app = TestApp::spawn_with(|c| c.rotate_refresh_tokens = true).await;
    let (_, _, first) = app.active_user("jane@example.com", "Admin").await;
    let reply = app
        .post("/api/auth/jwt/refresh/", None, json!({"refresh": first}))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let second = reply.body["refresh"].as_str().unwrap().to_string();
    assert!(reply.body["access"].is_string());
    // The first token was rotated out; presenting it again is reuse.
    let reply = app
        .post("/api/auth/jwt/refresh/", None, json!({"refresh": first}))
        .await;
    assert_reply(
        &reply,
        401,
        json!({"detail": "Token is blacklisted", "code": "token_not_valid"}),
    );
    // ... which also ends the token that descended from it.
    let reply = app
        .post("/api/auth/jwt/refresh/", None, json!({"refresh": second}))
        .await;
    assert_reply(
        &reply,
        401,
        json!({"detail": "Token is blacklisted", "code": "token_not_valid"}),
    );
    // A fresh login starts a new, working chain.
    let (_, fresh) = app.login("jane@example.com", PASSWORD).await;
    assert_eq!(
        app.post("/api/auth/jwt/refresh/", None, json!({"refresh": fresh}))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn expired_access_tokens_are_refused_with_simplejwts_body() {
    let app = TestApp::spawn_with(|c| c.access_token_lifetime = 0).await;
    let (_, access, _) = app.active_user("jane@example.com", "Admin").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let reply = app.get("/api/auth/users/me/", Some(&access)).await;
    assert_reply(
        &reply,
        401,
        json!({"detail": "Given token not valid for any token type", "code": "token_not_valid",
               "messages": [{"token_class": "AccessToken", "token_type": "access", "message": "Token is expired"}]}),
    );
}

#[tokio::test]
async fn login_is_rate_limited_per_client_address() {
    let app = TestApp::spawn_with(|c| c.login_rate_per_minute = 3).await;
    for _ in 0..3 {
        let reply = app
            .post(
                "/api/auth/jwt/create/",
                None,
                json!({"email": "x@example.com", "password": "nope-nope"}),
            )
            .await;
        assert_eq!(reply.status, 401);
    }
    let reply = app
        .post(
            "/api/auth/jwt/create/",
            None,
            json!({"email": "y@example.com", "password": "nope-nope"}),
        )
        .await;
    assert_eq!(reply.status, 429, "{}", reply.text);
    let retry: u64 = reply.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry));
    assert_eq!(
        reply.body["detail"],
        format!("Request was throttled. Expected available in {retry} seconds.")
    );
}

#[tokio::test]
async fn repeated_failures_lock_an_account_for_a_while_even_for_the_right_password() {
    let app = TestApp::spawn_with(|c| c.login_failures_per_account = 2).await;
    app.active_user("jane@example.com", "Admin").await;
    for _ in 0..2 {
        let reply = app
            .post(
                "/api/auth/jwt/create/",
                None,
                json!({"email": "jane@example.com", "password": "wrong-wrong"}),
            )
            .await;
        assert_eq!(reply.status, 401);
    }
    let reply = app
        .post(
            "/api/auth/jwt/create/",
            None,
            json!({"email": "jane@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, 429, "{}", reply.text);
    assert!(reply.header("retry-after").is_some());
    // The same happens for an address with no account: a 429 reveals nothing.
    for _ in 0..2 {
        app.post(
            "/api/auth/jwt/create/",
            None,
            json!({"email": "ghost@example.com", "password": "wrong-wrong"}),
        )
        .await;
    }
    let reply = app
        .post(
            "/api/auth/jwt/create/",
            None,
            json!({"email": "ghost@example.com", "password": "wrong-wrong"}),
        )
        .await;
    assert_eq!(reply.status, 429);
}
