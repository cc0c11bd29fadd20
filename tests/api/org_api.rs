//! The organisation API (seeds 002 and 003): API keys, /me, team members,
//! clients with custom fields, programs and their members.

use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{PASSWORD, TestApp, assert_reply};

async fn get(app: &TestApp, key: &str, path: &str) -> crate::harness::Reply {
    app.bearer(Method::GET, path, key, None).await
}

async fn post(app: &TestApp, key: &str, path: &str, body: Value) -> crate::harness::Reply {
    app.bearer(Method::POST, path, key, Some(body)).await
}

async fn client(app: &TestApp, key: &str, name: &str, email: &str) -> String {
    let reply = post(app, key, "/clients", json!({"name": name, "email": email})).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body["client"]["id"].as_str().unwrap().to_string()
}

fn ids(reply: &crate::harness::Reply) -> Vec<String> {
    reply.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn me_answers_the_key_owner_and_organisation() {
    let app = TestApp::spawn().await;
    let (id, _, key) = app.org_admin_with_key("jane@example.com").await;
    let reply = get(&app, &key, "/me").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.body["user"],
        json!({"avatar": null, "email": "jane@example.com", "id": id.to_string(), "name": "Test User", "timezone": "UTC"})
    );
    let org = &reply.body["organization"];
    assert!(org["id"].is_string());
    assert_eq!(org["name"], "Test User");
    assert_eq!(org["subdomain"], "test-user");
    assert_eq!(org["url_home"], Value::Null);
    assert!(org["created_at"].as_i64().unwrap() > 1_700_000_000);
    // A JWT of the admin works too, with either word.
    assert_eq!(
        app.get(
            "/me",
            Some(&app.login("jane@example.com", PASSWORD).await.0)
        )
        .await
        .status,
        200
    );
}

#[tokio::test]
async fn the_api_refuses_missing_bad_and_revoked_credentials() {
    let app = TestApp::spawn().await;
    let (_, access, key) = app.org_admin_with_key("jane@example.com").await;
    let unauthenticated = json!({"message": "Unauthenticated."});
    assert_reply(&app.get("/me", None).await, 401, unauthenticated.clone());
    assert_reply(
        &get(&app, "rst_0000", "/me").await,
        401,
        unauthenticated.clone(),
    );
    assert_reply(
        &get(&app, "garbage", "/me").await,
        401,
        unauthenticated.clone(),
    );
    // API keys are for the organisation API only.
    let reply = app
        .bearer(Method::GET, "/api/auth/users/me/", &key, None)
        .await;
    assert_eq!(reply.status, 401);
    // A coach's token is authenticated but not allowed.
    let (_, coach, _) = app.active_user("coach@example.com", "Coach").await;
    assert_reply(
        &app.get("/clients", Some(&coach)).await,
        403,
        json!({"message": "This action is unauthorized."}),
    );
    // Revoked: refused on the next request.
    let keys = app.get("/api/auth/api-keys/", Some(&access)).await;
    let key_id = keys.body[0]["id"].as_i64().unwrap();
    assert_eq!(get(&app, &key, "/me").await.status, 200);
    assert!(
        app.get("/api/auth/api-keys/", Some(&access)).await.body[0]["last_used_at"].is_string()
    );
    assert_eq!(
        app.delete(
            &format!("/api/auth/api-keys/{key_id}/"),
            Some(&access),
            None
        )
        .await
        .status,
        204
    );
    assert_reply(&get(&app, &key, "/me").await, 401, unauthenticated);
}

#[tokio::test]
async fn team_members_are_the_organisations_admins_coaches_and_members() {
    let app = TestApp::spawn().await;
    let (admin, access, key) = app.org_admin_with_key("jane@example.com").await;
    for (email, role) in [("c@example.com", "Coach"), ("m@example.com", "Member")] {
        let body = json!({"email": email, "first_name": "Pat", "last_name": role, "password": PASSWORD, "role": role});
        assert_eq!(
            app.post("/api/myTeams/", Some(&access), body).await.status,
            201
        );
    }
    client(&app, &key, "Cli Ent", "client@example.com").await;
    let reply = get(&app, &key, "/team-members").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["meta"]["total"], 3);
    let first = &reply.body["data"][0];
    let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "avatar",
            "name",
            "email",
            "timezone",
            "role",
            "created_at"
        ]
    );
    assert_eq!(first["id"], admin.to_string());
    assert_eq!(first["role"], "admin");
    assert!(first["created_at"].is_i64());

    let coaches = get(&app, &key, "/team-members?filter[role]=coach").await;
    assert_eq!(coaches.body["data"].as_array().unwrap().len(), 1);
    let both = get(
        &app,
        &key,
        "/team-members?filter[role]=coach,member&sort=-name",
    )
    .await;
    let roles: Vec<&str> = both.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["member", "coach"]);
    let by_email = get(
        &app,
        &key,
        "/team-members?filter[email]=EXAMPLE.COM&filter[id]=",
    )
    .await;
    assert_eq!(by_email.body["meta"]["total"], 3);
    let exact = get(&app, &key, &format!("/team-members?filter[id]={admin}")).await;
    assert_eq!(ids(&exact), [admin.to_string()]);
    let nothing = get(&app, &key, "/team-members?filter[id]=abc").await;
    assert_eq!(nothing.body["meta"]["total"], 0);
    assert_reply(
        &get(&app, &key, "/team-members?filter[password]=x").await,
        400,
        json!({"message": "Requested filter(s) `password` are not allowed. Allowed filter(s) are `id, email, role`."}),
    );
    assert_reply(
        &get(&app, &key, "/team-members?sort=email").await,
        400,
        json!({"message": "Requested sort(s) `email` is not allowed. Allowed sort(s) are `created_at, name, role`."}),
    );
}

/// Unfiltered people lists read their totals from the trigger-kept
/// `user_counts`, and the team's pages walk its partial indexes: totals
/// agree with a filter that counts rows, and follow role changes and
/// deletions; pages hold the right people in id order.
#[tokio::test]
async fn people_totals_and_pages_follow_role_changes_and_deletions() {
    let app = TestApp::spawn().await;
    let (admin, access, key) = app.org_admin_with_key("jane@example.com").await;
    let mut members = Vec::new();
    for n in 0..3 {
        let body = json!({"email": format!("m{n}@example.com"), "first_name": "Pat",
                          "last_name": "Member", "password": PASSWORD, "role": "Member"});
        let reply = app.post("/api/myTeams/", Some(&access), body).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        members.push(reply.body["id"].as_i64().unwrap());
    }
    client(&app, &key, "Cli Ent", "client@example.com").await;
    let totals = || async {
        let team = get(&app, &key, "/team-members?per_page=2").await;
        let counted = get(&app, &key, "/team-members?filter[role]=admin,coach,member").await;
        assert_eq!(team.body["meta"]["total"], counted.body["meta"]["total"]);
        let clients = get(&app, &key, "/clients").await;
        let counted = get(&app, &key, "/clients?filter[email]=example.com").await;
        assert_eq!(clients.body["meta"]["total"], counted.body["meta"]["total"]);
        (
            team.body["meta"]["total"].as_i64().unwrap(),
            clients.body["meta"]["total"].as_i64().unwrap(),
            ids(&team),
        )
    };
    let first_two = vec![admin.to_string(), members[0].to_string()];
    assert_eq!(totals().await, (4, 1, first_two));
    // A member becomes a client (as another writer would make them).
    app.scalar_i64("UPDATE users SET role = 'client' WHERE email = 'm0@example.com' RETURNING id")
        .await;
    let next_two = vec![admin.to_string(), members[1].to_string()];
    assert_eq!(totals().await, (3, 2, next_two));
    let reply = app
        .delete(
            &format!("/api/myTeams/{}/", members[1]),
            Some(&access),
            None,
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    let (team, clients, page) = totals().await;
    assert_eq!((team, clients), (2, 2));
    assert_eq!(page, [admin.to_string(), members[2].to_string()]);
}

/// `sort=name` orders people by first name, then last name, then id, both
/// ways and page after page (the name indexes of migration 0011 serve
/// it), for the team and for clients, with first names and whole names
/// shared.
#[tokio::test]
async fn people_sort_by_first_then_last_name_then_id_across_pages() {
    let app = TestApp::spawn().await;
    let (admin, access, key) = app.org_admin_with_key("jane@example.com").await;
    let me = app.get("/api/auth/users/me/", Some(&access)).await;
    let name = |field: &str| me.body[field].as_str().unwrap().to_string();
    let mut team = vec![(name("first_name"), name("last_name"), admin)];
    let mut clients = Vec::new();
    let names = [
        ("Al", "Zane"),
        ("Al", "Adams"),
        ("Bo", "Adams"),
        ("Al", "Adams"),
        ("Cy", "Brown"),
    ];
    for (n, (first, last)) in names.into_iter().enumerate() {
        let body = json!({"email": format!("m{n}@example.com"), "first_name": first,
                          "last_name": last, "password": PASSWORD, "role": "Member"});
        let reply = app.post("/api/myTeams/", Some(&access), body).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        team.push((
            first.into(),
            last.into(),
            reply.body["id"].as_i64().unwrap(),
        ));
        let id = client(
            &app,
            &key,
            &format!("{first} {last}"),
            &format!("c{n}@example.com"),
        )
        .await;
        clients.push((first.into(), last.into(), id.parse::<i64>().unwrap()));
    }
    for (path, mut people) in [("/team-members", team), ("/clients", clients)] {
        people.sort();
        let ascending: Vec<String> = people.iter().map(|p| p.2.to_string()).collect();
        let descending: Vec<String> = ascending.iter().rev().cloned().collect();
        for (sort, expected) in [("name", ascending), ("-name", descending)] {
            let mut seen = Vec::new();
            for page in 1..=3 {
                let reply = get(
                    &app,
                    &key,
                    &format!("{path}?sort={sort}&per_page=2&page={page}"),
                )
                .await;
                assert_eq!(reply.status, 200, "{path} {sort}: {}", reply.text);
                seen.extend(ids(&reply));
            }
            assert_eq!(seen, expected, "{path}?sort={sort}");
        }
    }
}

#[tokio::test]
async fn clients_are_created_listed_and_can_log_in_with_a_password() {
    let app = TestApp::spawn().await;
    let (_, _, key) = app.org_admin_with_key("jane@example.com").await;
    let reply = post(
        &app,
        &key,
        "/clients",
        json!({"name": "Cara  de la Cruz", "email": "cara@example.com", "password": "Client-Secret-9", "timezone": "Europe/Madrid"}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let c = &reply.body["client"];
    let keys: Vec<&String> = c.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "avatar",
            "name",
            "email",
            "timezone",
            "created_at",
            "info"
        ]
    );
    assert_eq!(c["name"], "Cara de la Cruz");
    assert_eq!(c["timezone"], "Europe/Madrid");
    assert_eq!(c["info"], Value::Null, "no custom fields defined");
    // The client can log in through the accounts API.
    let (access, _) = app.login("cara@example.com", "Client-Secret-9").await;
    assert_eq!(
        app.get("/api/auth/users/me/", Some(&access)).await.body["role"],
        "Client"
    );
    // A client is not a team member.
    assert_eq!(
        get(&app, &key, "/team-members").await.body["meta"]["total"],
        1
    );
    let list = get(&app, &key, "/clients").await;
    assert_eq!(ids(&list), [c["id"].as_str().unwrap()]);
    // Without a password a client exists but cannot log in.
    client(&app, &key, "No Password", "nopw@example.com").await;
    let login = app
        .post(
            "/api/auth/jwt/create/",
            None,
            json!({"email": "nopw@example.com", "password": "anything-at-all"}),
        )
        .await;
    assert_eq!(login.status, 401);
}

#[tokio::test]
async fn client_creation_errors_are_laravel_422s() {
    let app = TestApp::spawn().await;
    let (_, _, key) = app.org_admin_with_key("jane@example.com").await;
    let reply = post(&app, &key, "/clients", json!({})).await;
    assert_reply(
        &reply,
        422,
        json!({"message": "The name field is required. (and 1 more error)",
               "errors": {"name": ["The name field is required."], "email": ["The email field is required."]}}),
    );
    let reply = post(
        &app,
        &key,
        "/clients",
        json!({"name": 5, "email": "nope", "password": "short", "timezone": "Mars/Base"}),
    )
    .await;
    assert_reply(
        &reply,
        422,
        json!({"message": "The name field must be a string. (and 3 more errors)",
               "errors": {"name": ["The name field must be a string."], "email": ["The email field must be a valid email address."],
                          "password": ["The password field must be at least 8 characters."],
                          "timezone": ["The timezone field must be a valid timezone."]}}),
    );
    client(&app, &key, "A B", "taken@example.com").await;
    let reply = post(
        &app,
        &key,
        "/clients",
        json!({"name": "C D", "email": "TAKEN@example.com"}),
    )
    .await;
    assert_reply(
        &reply,
        422,
        json!({"message": "The email has already been taken.", "errors": {"email": ["The email has already been taken."]}}),
    );
    let reply = app.bearer(Method::POST, "/clients", &key, None).await;
    assert_eq!(reply.status, 422);
    let raw = app
        .client
        .post(app.url("/clients"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    assert_eq!(
        raw.json::<Value>().await.unwrap(),
        json!({"message": "The request body is not valid JSON."})
    );
}

#[tokio::test]
async fn custom_fields_type_and_validate_client_info() {
    let app = TestApp::spawn().await;
    let (_, _, key) = app.org_admin_with_key("jane@example.com").await;
    for field in [
        json!({"slug": "company", "label": "Company", "type": "text", "required": true}),
        json!({"slug": "age", "label": "Age", "type": "number"}),
        json!({"slug": "start", "label": "Start", "type": "date"}),
        json!({"slug": "vip", "label": "VIP", "type": "boolean"}),
        json!({"slug": "plan", "label": "Plan", "type": "select", "options": ["basic", "pro"]}),
    ] {
        let reply = post(&app, &key, "/custom-fields", field).await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
    let fields = get(&app, &key, "/custom-fields").await;
    assert_eq!(fields.body["data"].as_array().unwrap().len(), 5);
    assert_eq!(fields.body["data"][4]["options"], json!(["basic", "pro"]));
    assert_reply(
        &post(
            &app,
            &key,
            "/custom-fields",
            json!({"slug": "age", "label": "Again", "type": "text"}),
        )
        .await,
        422,
        json!({"message": "The slug has already been taken.", "errors": {"slug": ["The slug has already been taken."]}}),
    );
    let bad = post(
        &app,
        &key,
        "/custom-fields",
        json!({"slug": "Bad Slug", "label": "x", "type": "color"}),
    )
    .await;
    assert_eq!(bad.status, 422);
    assert!(bad.body["errors"]["slug"].is_array() && bad.body["errors"]["type"].is_array());
    let no_options = post(
        &app,
        &key,
        "/custom-fields",
        json!({"slug": "tier", "label": "Tier", "type": "select"}),
    )
    .await;
    assert_eq!(
        no_options.body["errors"]["options"],
        json!(["The options field is required when type is select."])
    );

    let id = client(&app, &key, "Cara Cruz", "cara@example.com").await;
    let created = get(&app, &key, &format!("/clients?filter[id]={id}")).await;
    assert_eq!(
        created.body["data"][0]["info"],
        json!({"company": null, "age": null, "start": null, "vip": null, "plan": null})
    );
    let path = format!("/clients/{id}");
    let reply = app
        .bearer(Method::PUT, &path, &key, Some(json!({"info": {"company": "Acme", "age": "42", "start": "2024-02-29", "vip": true, "plan": "pro"}})))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.body["client"]["info"],
        json!({"company": "Acme", "age": 42, "start": "2024-02-29", "vip": true, "plan": "pro"})
    );

    let reply = app
        .bearer(Method::PUT, &path, &key, Some(json!({"info": {"company": null, "age": "old", "start": "2023-02-30", "vip": "maybe", "plan": "gold", "shoe": 9}})))
        .await;
    assert_eq!(reply.status, 422, "{}", reply.text);
    let errors = &reply.body["errors"];
    assert_eq!(
        errors["info.age"],
        json!(["The info.age field must be a number."])
    );
    assert_eq!(
        errors["info.start"],
        json!(["The info.start field must be a valid date (YYYY-MM-DD)."])
    );
    assert_eq!(
        errors["info.vip"],
        json!(["The info.vip field must be true or false."])
    );
    assert_eq!(
        errors["info.plan"],
        json!(["The selected info.plan is invalid."])
    );
    assert_eq!(
        errors["info.shoe"],
        json!(["The info.shoe field is not a defined custom field."])
    );
    assert_eq!(
        errors["info.company"],
        json!(["The info.company field is required."])
    );
    // Nothing changed.
    let after = get(&app, &key, &format!("/clients?filter[id]={id}")).await;
    assert_eq!(after.body["data"][0]["info"]["age"], 42);
    // A partial update merges; null clears an optional field.
    let reply = app
        .bearer(
            Method::PUT,
            &path,
            &key,
            Some(json!({"info": {"age": null}})),
        )
        .await;
    assert_eq!(reply.body["client"]["info"]["age"], Value::Null);
    assert_eq!(reply.body["client"]["info"]["company"], "Acme");
    // On a page of several clients, each carries its own values.
    let other = client(&app, &key, "Dan Dale", "dan@example.com").await;
    let reply = app
        .bearer(
            Method::PUT,
            &format!("/clients/{other}"),
            &key,
            Some(json!({"info": {"company": "Bolt", "vip": false}})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let page = get(&app, &key, "/clients").await;
    let rows = page.body["data"].as_array().unwrap();
    let info_of = |id: &str| &rows.iter().find(|r| r["id"] == json!(id)).unwrap()["info"];
    assert_eq!(info_of(&id)["company"], "Acme");
    assert_eq!(info_of(&id)["age"], Value::Null);
    assert_eq!(
        info_of(&other),
        &json!({"company": "Bolt", "age": null, "start": null, "vip": false, "plan": null})
    );
    assert_reply(
        &app.bearer(Method::PUT, &path, &key, Some(json!({}))).await,
        422,
        json!({"message": "The info field is required.", "errors": {"info": ["The info field is required."]}}),
    );
}

#[tokio::test]
async fn lists_paginate_the_laravel_way() {
    let app = TestApp::spawn().await;
    let (_, _, key) = app.org_admin_with_key("jane@example.com").await;
    for i in 0..17 {
        let reply = post(
            &app,
            &key,
            "/programs",
            json!({"name": format!("Program {i:02}")}),
        )
        .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
    }
    let host = app.base.trim_start_matches("http://");
    let first = get(&app, &key, "/programs?sort=name").await;
    assert_eq!(first.body["data"].as_array().unwrap().len(), 15);
    assert_eq!(
        first.body["links"],
        json!({"first": format!("http://{host}/programs?page=1"), "last": format!("http://{host}/programs?page=2"),
               "prev": null, "next": format!("http://{host}/programs?page=2")})
    );
    assert_eq!(
        first.body["meta"],
        json!({"current_page": 1, "from": 1, "last_page": 2, "path": format!("http://{host}/programs"),
               "per_page": 15, "to": 15, "total": 17})
    );
    let second = get(&app, &key, "/programs?page=2").await;
    assert_eq!(
        (
            second.body["meta"]["from"].clone(),
            second.body["meta"]["to"].clone()
        ),
        (json!(16), json!(17))
    );
    assert_eq!(
        second.body["links"]["prev"],
        format!("http://{host}/programs?page=1")
    );
    assert_eq!(second.body["links"]["next"], Value::Null);
    // An invalid page is page 1; past the end is an empty 200.
    for page in ["abc", "0", "-3"] {
        assert_eq!(
            get(&app, &key, &format!("/programs?page={page}"))
                .await
                .body["meta"]["current_page"],
            1
        );
    }
    let past = get(&app, &key, "/programs?page=9").await;
    assert_eq!(past.status, 200);
    assert_eq!(past.body["data"], json!([]));
    assert_eq!(
        (
            past.body["meta"]["from"].clone(),
            past.body["meta"]["to"].clone()
        ),
        (Value::Null, Value::Null)
    );
    assert_eq!(
        get(&app, &key, "/programs?per_page=5").await.body["meta"]["last_page"],
        4
    );
    assert_eq!(
        get(&app, &key, "/programs?per_page=500").await.body["meta"]["per_page"],
        100
    );
    let names: Vec<String> = get(&app, &key, "/programs?sort=-name&per_page=2")
        .await
        .body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["Program 16", "Program 15"]);
    let program = &first.body["data"][0];
    let keys: Vec<&String> = program.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["id", "name", "created_at"]);
    let one = get(
        &app,
        &key,
        &format!("/programs?filter[id]={}", program["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(one.body["meta"]["total"], 1);
    assert_reply(
        &post(&app, &key, "/programs", json!({"name": ""})).await,
        422,
        json!({"message": "The name field is required.", "errors": {"name": ["The name field is required."]}}),
    );
}

#[tokio::test]
async fn program_members_are_added_listed_and_removed() {
    let app = TestApp::spawn().await;
    let (admin, access, key) = app.org_admin_with_key("jane@example.com").await;
    let program = post(&app, &key, "/programs", json!({"name": "Leadership"}))
        .await
        .body["program"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let cara = client(&app, &key, "Cara Cruz", "cara@example.com").await;
    let path = format!("/programs/{program}/members");

    let reply = post(&app, &key, &path, json!({"user": cara})).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let m = &reply.body["program_member"];
    let keys: Vec<&String> = m.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "avatar",
            "name",
            "email",
            "timezone",
            "role",
            "created_at"
        ]
    );
    assert_eq!(
        (m["id"].as_str().unwrap(), m["role"].as_str().unwrap()),
        (cara.as_str(), "member")
    );
    let reply = post(
        &app,
        &key,
        &path,
        json!({"user": admin.to_string(), "role": "leader"}),
    )
    .await;
    assert_eq!(reply.body["program_member"]["role"], "leader");

    assert_reply(
        &post(&app, &key, &path, json!({"user": cara})).await,
        422,
        json!({"message": "The user is already a member of this program.", "errors": {"user": ["The user is already a member of this program."]}}),
    );
    assert_reply(
        &post(&app, &key, &path, json!({})).await,
        422,
        json!({"message": "The user field is required.", "errors": {"user": ["The user field is required."]}}),
    );
    assert_reply(
        &post(&app, &key, &path, json!({"user": "999999"})).await,
        422,
        json!({"message": "The selected user is invalid.", "errors": {"user": ["The selected user is invalid."]}}),
    );
    let bad_role = post(&app, &key, &path, json!({"user": cara, "role": "owner"})).await;
    assert_eq!(
        bad_role.body["errors"]["role"],
        json!(["The selected role is invalid."])
    );

    let list = get(&app, &key, &path).await;
    assert_eq!(list.body["meta"]["total"], 2);
    assert_eq!(list.body["data"][0]["info"], Value::Null);
    let leaders = get(&app, &key, &format!("{path}?filter[role]=leader")).await;
    assert_eq!(ids(&leaders), [admin.to_string()]);
    let sorted = get(&app, &key, &format!("{path}?sort=-created_at")).await;
    assert_eq!(ids(&sorted), [admin.to_string(), cara.clone()]);

    assert_eq!(
        app.bearer(Method::DELETE, &format!("{path}/{cara}"), &key, None)
            .await
            .status,
        204
    );
    assert_eq!(
        app.bearer(Method::DELETE, &format!("{path}/{cara}"), &key, None)
            .await
            .status,
        404
    );
    assert_eq!(get(&app, &key, &path).await.body["meta"]["total"], 1);
    // A team member created through the company API shows up here too.
    let body = json!({"email": "m@example.com", "first_name": "Mo", "last_name": "M", "password": PASSWORD});
    let mo = app.post("/api/myTeams/", Some(&access), body).await.body["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        post(
            &app,
            &key,
            &path,
            json!({"user": mo.to_string(), "role": "coach"})
        )
        .await
        .status,
        201
    );
    assert_reply(
        &get(&app, &key, "/programs/999/members").await,
        404,
        json!({"message": "No query results for model [App\\Models\\Program] 999"}),
    );
}

#[tokio::test]
async fn another_organisations_key_sees_nothing_of_this_one() {
    let app = TestApp::spawn().await;
    let (_, _, key_a) = app.org_admin_with_key("a@example.com").await;
    let (b_admin, _, key_b) = app.org_admin_with_key("b@example.com").await;
    let cara = client(&app, &key_a, "Cara Cruz", "cara@example.com").await;
    let program = post(&app, &key_a, "/programs", json!({"name": "A only"}))
        .await
        .body["program"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    assert_eq!(get(&app, &key_b, "/clients").await.body["meta"]["total"], 0);
    assert_eq!(
        get(&app, &key_b, &format!("/clients?filter[id]={cara}"))
            .await
            .body["meta"]["total"],
        0
    );
    assert_eq!(
        get(&app, &key_b, "/programs").await.body["meta"]["total"],
        0
    );
    assert_eq!(
        get(&app, &key_b, "/team-members").await.body["meta"]["total"],
        1
    );
    assert_reply(
        &app.bearer(
            Method::PUT,
            &format!("/clients/{cara}"),
            &key_b,
            Some(json!({"info": {}})),
        )
        .await,
        404,
        json!({"message": format!("No query results for model [App\\Models\\User] {cara}")}),
    );
    assert_eq!(
        get(&app, &key_b, &format!("/programs/{program}/members"))
            .await
            .status,
        404
    );
    assert_eq!(
        post(
            &app,
            &key_b,
            &format!("/programs/{program}/members"),
            json!({"user": b_admin.to_string()})
        )
        .await
        .status,
        404
    );
    // B's own program cannot take A's client.
    let b_program = post(&app, &key_b, "/programs", json!({"name": "B"}))
        .await
        .body["program"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let reply = post(
        &app,
        &key_b,
        &format!("/programs/{b_program}/members"),
        json!({"user": cara}),
    )
    .await;
    assert_reply(
        &reply,
        422,
        json!({"message": "The selected user is invalid.", "errors": {"user": ["The selected user is invalid."]}}),
    );
    assert_eq!(
        get(&app, &key_b, "/custom-fields").await.body,
        json!({"data": []})
    );
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_in_laravels_words() {
    let app = TestApp::spawn().await;
    let (_, _, key) = app.org_admin_with_key("jane@example.com").await;
    assert_reply(
        &get(&app, &key, "/clients/5/notes").await,
        404,
        json!({"message": "Not Found"}),
    );
    let reply = app.bearer(Method::DELETE, "/clients", &key, None).await;
    assert_eq!(reply.status, 405);
    assert_eq!(
        reply.body["message"],
        "The DELETE method is not supported for this route."
    );
    assert_eq!(
        get(&app, &key, "/me/").await.status,
        200,
        "the trailing slash is optional"
    );
}
