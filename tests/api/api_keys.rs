//! API keys: created, listed and revoked by organisation admins.

use serde_json::json;

use crate::harness::{TestApp, assert_reply};

#[tokio::test]
async fn an_admin_creates_lists_and_revokes_keys() {
    let app = TestApp::spawn().await;
    let (_, access, _) = app.active_user("jane@example.com", "Admin").await;
    let reply = app
        .post(
            "/api/auth/api-keys/",
            Some(&access),
            json!({"name": "CRM sync"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let keys: Vec<&String> = reply.body.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "name", "key", "prefix", "created_at"]);
    let key = reply.body["key"].as_str().unwrap();
    assert!(key.starts_with("rst_") && key.len() == 68, "{key}");
    assert!(key.starts_with(reply.body["prefix"].as_str().unwrap()));
    let id = reply.body["id"].as_i64().unwrap();

    let list = app.get("/api/auth/api-keys/", Some(&access)).await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body.as_array().unwrap().len(), 1);
    assert_eq!(list.body[0]["name"], "CRM sync");
    assert!(
        list.body[0].get("key").is_none(),
        "the key is shown only once"
    );
    assert_eq!(list.body[0]["last_used_at"], json!(null));
    // Only a hash is stored.
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM api_keys WHERE key_hash LIKE 'rst_%'")
            .await,
        0
    );

    let path = format!("/api/auth/api-keys/{id}/");
    assert_eq!(app.delete(&path, Some(&access), None).await.status, 204);
    assert_reply(
        &app.delete(&path, Some(&access), None).await,
        404,
        json!({"detail": "Not found."}),
    );
    assert_eq!(
        app.get("/api/auth/api-keys/", Some(&access)).await.body,
        json!([])
    );
}

#[tokio::test]
async fn api_keys_are_for_admins_of_their_own_organisation() {
    let app = TestApp::spawn().await;
    let (_, admin_a, _) = app.active_user("a@example.com", "Admin").await;
    let (_, admin_b, _) = app.active_user("b@example.com", "Admin").await;
    let (_, coach, _) = app.active_user("coach@example.com", "Coach").await;
    let created = app
        .post("/api/auth/api-keys/", Some(&admin_a), json!({"name": "A"}))
        .await;
    let id = created.body["id"].as_i64().unwrap();

    let forbidden = json!({"detail": "You do not have permission to perform this action."});
    assert_reply(
        &app.post("/api/auth/api-keys/", Some(&coach), json!({"name": "C"}))
            .await,
        403,
        forbidden.clone(),
    );
    assert_reply(
        &app.get("/api/auth/api-keys/", Some(&coach)).await,
        403,
        forbidden,
    );
    assert_eq!(app.get("/api/auth/api-keys/", None).await.status, 401);
    // Another company's key: not found, and still alive.
    assert_reply(
        &app.delete(&format!("/api/auth/api-keys/{id}/"), Some(&admin_b), None)
            .await,
        404,
        json!({"detail": "Not found."}),
    );
    assert_eq!(
        app.get("/api/auth/api-keys/", Some(&admin_b)).await.body,
        json!([])
    );
    assert_eq!(
        app.get("/api/auth/api-keys/", Some(&admin_a))
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        app.delete("/api/auth/api-keys/abc/", Some(&admin_a), None)
            .await
            .status,
        404
    );
    let reply = app
        .post("/api/auth/api-keys/", Some(&admin_a), json!({"name": ""}))
        .await;
    assert_reply(
        &reply,
        400,
        json!({"name": ["This field may not be blank."]}),
    );
}
