//! /api/departments/: CRUD, DRF pagination, search and ordering, tenancy.

use serde_json::{Value, json};

use crate::harness::{TestApp, assert_reply};

async fn create(app: &TestApp, token: &str, name: &str) -> Value {
    let reply = app
        .post("/api/departments/", Some(token), json!({"name": name}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body
}

fn names(reply: &crate::harness::Reply) -> Vec<String> {
    reply.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn an_admin_creates_reads_renames_and_deletes_departments() {
    let app = TestApp::spawn().await;
    let (admin, token, _) = app.active_user("admin@example.com", "Admin").await;
    let created = create(&app, &token, "Sales").await;
    let keys: Vec<&String> = created.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "name",
            "company",
            "created_at",
            "updated_at",
            "added_by"
        ]
    );
    assert_eq!(created["added_by"], admin);
    assert!(created["company"].as_i64().unwrap() > 0);
    assert!(created["created_at"].as_str().unwrap().ends_with('Z'));
    let id = created["id"].as_i64().unwrap();
    let path = format!("/api/departments/{id}/");

    assert_reply(&app.get(&path, Some(&token)).await, 200, created.clone());
    let renamed = app
        .patch(&path, Some(&token), json!({"name": "Field Sales"}))
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    assert_eq!(renamed.body["name"], "Field Sales");
    assert_eq!(renamed.body["created_at"], created["created_at"]);
    let replaced = app.put(&path, Some(&token), json!({})).await;
    assert_reply(&replaced, 400, json!({"name": ["This field is required."]}));
    let replaced = app
        .put(&path, Some(&token), json!({"name": "Inside Sales"}))
        .await;
    assert_eq!(replaced.body["name"], "Inside Sales");

    assert_eq!(app.delete(&path, Some(&token), None).await.status, 204);
    assert_reply(
        &app.get(&path, Some(&token)).await,
        404,
        json!({"detail": "Not found."}),
    );
    assert_reply(
        &app.delete(&path, Some(&token), None).await,
        404,
        json!({"detail": "Not found."}),
    );
}

#[tokio::test]
async fn department_names_are_unique_per_company_ignoring_case() {
    let app = TestApp::spawn().await;
    let (_, a, _) = app.active_user("a@example.com", "Admin").await;
    let (_, b, _) = app.active_user("b@example.com", "Admin").await;
    create(&app, &a, "Sales").await;
    let unique = json!({"non_field_errors": ["The fields company, name must make a unique set."]});
    assert_reply(
        &app.post("/api/departments/", Some(&a), json!({"name": "SALES"}))
            .await,
        400,
        unique.clone(),
    );
    // Another company may use the name.
    create(&app, &b, "Sales").await;
    let other = create(&app, &a, "Support").await;
    let path = format!("/api/departments/{}/", other["id"]);
    assert_reply(
        &app.patch(&path, Some(&a), json!({"name": "sales"})).await,
        400,
        unique,
    );
    // Renaming to its own name in another case is fine.
    assert_eq!(
        app.patch(&path, Some(&a), json!({"name": "SUPPORT"}))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn department_bodies_are_validated() {
    let app = TestApp::spawn().await;
    let (_, token, _) = app.active_user("admin@example.com", "Admin").await;
    assert_reply(
        &app.post("/api/departments/", Some(&token), json!({})).await,
        400,
        json!({"name": ["This field is required."]}),
    );
    assert_reply(
        &app.post("/api/departments/", Some(&token), json!({"name": ""}))
            .await,
        400,
        json!({"name": ["This field may not be blank."]}),
    );
    assert_reply(
        &app.post("/api/departments/", Some(&token), json!({"name": ["x"]}))
            .await,
        400,
        json!({"name": ["Not a valid string."]}),
    );
    assert_reply(
        &app.post(
            "/api/departments/",
            Some(&token),
            json!({"name": "x".repeat(256)}),
        )
        .await,
        400,
        json!({"name": ["Ensure this field has no more than 255 characters."]}),
    );
    let reply = app
        .post_raw("/api/departments/", "application/json", "{")
        .await;
    assert_eq!(reply.status, 401, "auth comes before the body");
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM departments").await, 0);
}

#[tokio::test]
async fn departments_are_for_admins_and_other_companies_do_not_exist() {
    let app = TestApp::spawn().await;
    let (_, a, _) = app.active_user("a@example.com", "Admin").await;
    let (_, b, _) = app.active_user("b@example.com", "Admin").await;
    let (_, coach, _) = app.active_user("coach@example.com", "Coach").await;
    let dept = create(&app, &a, "Sales").await;
    let path = format!("/api/departments/{}/", dept["id"]);

    assert_eq!(app.get("/api/departments/", None).await.status, 401);
    let forbidden = json!({"detail": "You do not have permission to perform this action."});
    assert_reply(
        &app.get("/api/departments/", Some(&coach)).await,
        403,
        forbidden.clone(),
    );
    assert_reply(
        &app.post("/api/departments/", Some(&coach), json!({"name": "X"}))
            .await,
        403,
        forbidden.clone(),
    );
    assert_reply(&app.get(&path, Some(&coach)).await, 403, forbidden);

    let not_found = json!({"detail": "Not found."});
    assert_reply(&app.get(&path, Some(&b)).await, 404, not_found.clone());
    assert_reply(
        &app.patch(&path, Some(&b), json!({"name": "Hijacked"}))
            .await,
        404,
        not_found.clone(),
    );
    assert_reply(
        &app.delete(&path, Some(&b), None).await,
        404,
        not_found.clone(),
    );
    assert_eq!(
        app.get("/api/departments/", Some(&b)).await.body["count"],
        0
    );
    assert_reply(
        &app.get("/api/departments/abc/", Some(&a)).await,
        404,
        not_found,
    );
    assert_eq!(app.get(&path, Some(&a)).await.body["name"], "Sales");
}

#[tokio::test]
async fn department_lists_paginate_the_drf_way() {
    let app = TestApp::spawn().await;
    let (_, token, _) = app.active_user("admin@example.com", "Admin").await;
    for i in 1..=25 {
        create(&app, &token, &format!("Dept {i:02}")).await;
    }
    let first = app.get("/api/departments/", Some(&token)).await;
    assert_eq!(first.body["count"], 25);
    assert_eq!(first.body["previous"], Value::Null);
    let host = app.base.trim_start_matches("http://");
    assert_eq!(
        first.body["next"],
        format!("http://{host}/api/departments/?page=2")
    );
    assert_eq!(
        names(&first),
        (1..=10).map(|i| format!("Dept {i:02}")).collect::<Vec<_>>()
    );

    let second = app.get("/api/departments/?page=2", Some(&token)).await;
    assert_eq!(
        second.body["previous"],
        format!("http://{host}/api/departments/")
    );
    assert_eq!(
        second.body["next"],
        format!("http://{host}/api/departments/?page=3")
    );
    let last = app.get("/api/departments/?page=last", Some(&token)).await;
    assert_eq!(
        names(&last),
        ["Dept 21", "Dept 22", "Dept 23", "Dept 24", "Dept 25"]
    );
    assert_eq!(last.body["next"], Value::Null);
    assert_eq!(
        last.body["previous"],
        format!("http://{host}/api/departments/?page=2")
    );

    let invalid = json!({"detail": "Invalid page."});
    for page in ["4", "0", "-1", "abc", "2.0"] {
        assert_reply(
            &app.get(&format!("/api/departments/?page={page}"), Some(&token))
                .await,
            404,
            invalid.clone(),
        );
    }
    let sized = app
        .get("/api/departments/?page_size=20&page=2", Some(&token))
        .await;
    assert_eq!(names(&sized).len(), 5);
    assert_eq!(
        sized.body["previous"],
        format!("http://{host}/api/departments/?page_size=20")
    );
    let capped = app
        .get("/api/departments/?page_size=1000", Some(&token))
        .await;
    assert_eq!(names(&capped).len(), 25);
    assert_eq!(
        names(
            &app.get("/api/departments/?page_size=zero", Some(&token))
                .await
        )
        .len(),
        10
    );
}

#[tokio::test]
async fn department_lists_search_and_order() {
    let app = TestApp::spawn().await;
    let (_, token, _) = app.active_user("admin@example.com", "Admin").await;
    for name in ["Sales", "Support", "Research", "100% Sales_Team"] {
        create(&app, &token, name).await;
    }
    assert_eq!(
        names(&app.get("/api/departments/?search=SAL", Some(&token)).await),
        ["Sales", "100% Sales_Team"]
    );
    assert_eq!(
        names(
            &app.get("/api/departments/?search=s+team", Some(&token))
                .await
        ),
        ["100% Sales_Team"]
    );
    assert_eq!(
        names(&app.get("/api/departments/?search=%25", Some(&token)).await),
        ["100% Sales_Team"]
    );
    assert_eq!(
        names(&app.get("/api/departments/?search=_", Some(&token)).await),
        ["100% Sales_Team"]
    );
    assert_eq!(
        app.get("/api/departments/?search=nothing", Some(&token))
            .await
            .body["count"],
        0
    );
    assert_eq!(
        names(
            &app.get("/api/departments/?ordering=-name", Some(&token))
                .await
        ),
        ["Support", "Sales", "Research", "100% Sales_Team"]
    );
    assert_eq!(
        names(
            &app.get("/api/departments/?ordering=bogus,-id", Some(&token))
                .await
        ),
        ["100% Sales_Team", "Research", "Support", "Sales"]
    );
    // Unknown fields only: the default order (id ascending).
    assert_eq!(
        names(
            &app.get("/api/departments/?ordering=password", Some(&token))
                .await
        ),
        ["Sales", "Support", "Research", "100% Sales_Team"]
    );
    let page = app
        .get(
            "/api/departments/?search=s&ordering=-name&page_size=1&page=2",
            Some(&token),
        )
        .await;
    let host = app.base.trim_start_matches("http://");
    assert_eq!(
        page.body["next"],
        format!("http://{host}/api/departments/?ordering=-name&page=3&page_size=1&search=s")
    );
    assert_eq!(
        page.body["previous"],
        format!("http://{host}/api/departments/?ordering=-name&page_size=1&search=s")
    );
}

/// The list's count comes from a trigger-kept counter, not from counting
/// rows: it must follow every create and delete, ignore a refused create
/// (rolled back with its transaction), stay per company, and agree with
/// the rows themselves.
#[tokio::test]
async fn the_department_count_follows_creates_and_deletes() {
    let app = TestApp::spawn().await;
    let (_, a, _) = app.active_user("a@example.com", "Admin").await;
    let (_, b, _) = app.active_user("b@example.com", "Admin").await;
    let count = |token: String| {
        let app = &app;
        async move { app.get("/api/departments/", Some(&token)).await.body["count"].clone() }
    };
    assert_eq!(count(a.clone()).await, 0);
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(
            create(&app, &a, &format!("Dept {i}")).await["id"]
                .as_i64()
                .unwrap(),
        );
    }
    create(&app, &b, "Other company").await;
    let duplicate = app
        .post("/api/departments/", Some(&a), json!({"name": "dept 0"}))
        .await;
    assert_eq!(duplicate.status, 400, "{}", duplicate.text);
    assert_eq!(count(a.clone()).await, 12);
    assert_eq!(count(b.clone()).await, 1);
    for id in &ids[..5] {
        let path = format!("/api/departments/{id}/");
        assert_eq!(app.delete(&path, Some(&a), None).await.status, 204);
    }
    let page = app.get("/api/departments/?page=last", Some(&a)).await;
    assert_eq!(page.body["count"], 7);
    // page=last counts separately (in its transaction): the same answer.
    assert_eq!(page.body["results"].as_array().unwrap().len(), 7);
    assert_eq!(
        app.scalar_i64(
            "SELECT n FROM department_counts WHERE organization_id = \
             (SELECT organization_id FROM departments ORDER BY id LIMIT 1 OFFSET 5)"
        )
        .await,
        7
    );
    // With a search term the matches are counted, not looked up.
    let found = app.get("/api/departments/?search=dept 1", Some(&a)).await;
    assert_eq!(found.body["count"], 2, "{}", found.text);
}

/// Forty creates at once, more than the pool has connections: on SQLite
/// they take turns in the write queue while reads go on. None is refused
/// or lost.
#[tokio::test]
async fn many_creates_at_once_all_land() {
    let app = TestApp::spawn().await;
    let (_, token, _) = app.active_user("a@example.com", "Admin").await;
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (client, url, token) = (
            app.client.clone(),
            app.url("/api/departments/"),
            token.clone(),
        );
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .header("authorization", format!("Bearer {token}"))
                .json(&json!({"name": format!("Dept {i}")}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    // A read while the writers queue is answered.
    let during = app.get("/api/departments/", Some(&token)).await;
    assert_eq!(during.status, 200, "{}", during.text);
    for t in tasks {
        assert_eq!(t.await.unwrap(), 201);
    }
    let all = app
        .get("/api/departments/?page_size=100", Some(&token))
        .await;
    assert_eq!(all.body["count"], 40, "{}", all.text);
    let mut got = names(&all);
    got.sort();
    let mut want: Vec<String> = (0..40).map(|i| format!("Dept {i}")).collect();
    want.sort();
    assert_eq!(got, want);
}
