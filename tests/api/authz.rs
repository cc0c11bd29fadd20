//! The authorization matrix: every operation of `docs/authorization.toml`
//! as every principal, with objects of the caller's organisation and of
//! another one. Allowed gets the operation's status, a wrong role 403 (or
//! the operation's `denied`), anonymous and deactivated callers 401, another
//! organisation's object 404; a refused request changes nothing, and no
//! answer to organisation A carries organisation B's data.

use std::collections::HashMap;

use reqwest::Method;
use reqwest::multipart::Form;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::coach::{PDF, file};
use crate::harness::{PASSWORD, TestApp};

#[derive(Deserialize)]
struct Policy {
    operation: Vec<Operation>,
    smuggle: Vec<Smuggle>,
}

#[derive(Deserialize, Clone)]
struct Operation {
    method: String,
    path: String,
    body: Option<String>,
    multipart: Option<String>,
    #[serde(default)]
    allow: Vec<String>,
    denied: Option<u16>,
    #[serde(default)]
    public: bool,
    success: u16,
}

#[derive(Deserialize)]
struct Smuggle {
    method: String,
    path: String,
    body: String,
    principal: String,
    status: u16,
}

/// How a principal authenticates.
#[derive(Clone)]
enum Credential {
    None,
    Jwt(String),
    ApiKey(String),
}

#[derive(Clone)]
struct Principal {
    name: &'static str,
    id: i64,
    credential: Credential,
}

/// One organisation's standing principals.
struct Org {
    marker: &'static str,
    admin: Principal,
    coach: Principal,
    member: Principal,
    api_key: Principal,
}

impl Org {
    fn principal(&self, name: &str) -> &Principal {
        match name {
            "admin" => &self.admin,
            "coach" => &self.coach,
            "member" => &self.member,
            "api_key" => &self.api_key,
            other => panic!("no principal {other}"),
        }
    }
}

async fn org(app: &TestApp, marker: &'static str) -> Org {
    let (admin_id, admin, _) = app
        .active_user(&format!("admin@{marker}.example"), "Admin")
        .await;
    let mut made = Vec::new();
    for role in ["Coach", "Member"] {
        let email = format!("{}@{marker}.example", role.to_lowercase());
        let r = app
            .post(
                "/api/myTeams/",
                Some(&admin),
                json!({"email": email, "first_name": marker, "last_name": role,
                       "password": PASSWORD, "role": role}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let (token, _) = app.login(&email, PASSWORD).await;
        made.push((r.body["id"].as_i64().unwrap(), token));
    }
    let r = app
        .post("/api/auth/api-keys/", Some(&admin), json!({"name": marker}))
        .await;
    let key = r.body["key"].as_str().unwrap().to_string();
    let (member, coach) = (made.pop().unwrap(), made.pop().unwrap());
    Org {
        marker,
        admin: Principal {
            name: "admin",
            id: admin_id,
            credential: Credential::Jwt(admin.clone()),
        },
        coach: Principal {
            name: "coach",
            id: coach.0,
            credential: Credential::Jwt(coach.1),
        },
        member: Principal {
            name: "member",
            id: member.0,
            credential: Credential::Jwt(member.1),
        },
        api_key: Principal {
            name: "api_key",
            id: admin_id,
            credential: Credential::ApiKey(key),
        },
    }
}

fn jwt(p: &Principal) -> &str {
    match &p.credential {
        Credential::Jwt(t) => t,
        _ => panic!("{} has no JWT", p.name),
    }
}

/// Creates the objects a request names (`{department}`, ...) in `org`.
async fn fixtures(
    app: &TestApp,
    org: &Org,
    text: &str,
    counter: &mut u64,
) -> HashMap<&'static str, String> {
    let needs = |name: &str| text.contains(&format!("{{{name}}}"));
    let admin = jwt(&org.admin).to_string();
    let mut ids = HashMap::new();
    *counter += 1;
    let n = *counter;
    let m = org.marker;
    let need_member = ["member", "profile", "program", "review"]
        .iter()
        .any(|x| needs(x));
    if need_member {
        let email = format!("fixture{n}@{m}.example");
        let r = app
            .post(
                "/api/myTeams/",
                Some(&admin),
                json!({"email": email, "first_name": m, "last_name": "Fixture",
                       "password": PASSWORD, "role": "Member"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        ids.insert("member", r.body["id"].as_i64().unwrap().to_string());
        if needs("profile") || needs("review") {
            let r = app
                .send(
                    Method::GET,
                    &format!("/api/v1/profiles?q=fixture{n}%40"),
                    Some(&admin),
                    None,
                )
                .await;
            let profile = r.body["profiles"][0]["id"]
                .as_i64()
                .expect("fixture profile");
            ids.insert("profile", profile.to_string());
            if needs("review") {
                let r = app
                    .post(
                        &format!("/api/v1/profiles/{profile}/reviews"),
                        Some(&admin),
                        json!({"review": {"rating": 3, "comment": m}}),
                    )
                    .await;
                assert_eq!(r.status, 201, "{}", r.text);
                ids.insert(
                    "review",
                    r.body["review"]["id"].as_i64().unwrap().to_string(),
                );
            }
        }
    }
    if needs("department") {
        let r = app
            .post(
                "/api/departments/",
                Some(&admin),
                json!({"name": format!("{m} dept {n}")}),
            )
            .await;
        ids.insert("department", r.body["id"].as_i64().unwrap().to_string());
    }
    if needs("coach") {
        let email = format!("fixturecoach{n}@{m}.example");
        let r = app
            .post(
                "/api/myTeams/",
                Some(&admin),
                json!({"email": email, "first_name": m, "last_name": "Coach",
                       "password": PASSWORD, "role": "Coach"}),
            )
            .await;
        ids.insert("coach", r.body["id"].as_i64().unwrap().to_string());
    }
    if needs("program") {
        let key = match &org.api_key.credential {
            Credential::ApiKey(k) => k.clone(),
            _ => unreachable!(),
        };
        let r = app
            .bearer(
                Method::POST,
                "/programs",
                &key,
                Some(json!({"name": format!("{m} program {n}")})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let program = resource_id(&r.body);
        let member = ids["member"].clone();
        let r = app
            .bearer(
                Method::POST,
                &format!("/programs/{program}/members"),
                &key,
                Some(json!({"user": member, "role": "member"})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        ids.insert("program", program);
    }
    if needs("client") {
        let key = match &org.api_key.credential {
            Credential::ApiKey(k) => k.clone(),
            _ => unreachable!(),
        };
        let r = app
            .bearer(
                Method::POST,
                "/clients",
                &key,
                Some(json!({"name": format!("{m} client"), "email": format!("client{n}@{m}.example")})),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        ids.insert("client", resource_id(&r.body));
    }
    if needs("api_key") {
        let r = app
            .post(
                "/api/auth/api-keys/",
                Some(&admin),
                json!({"name": format!("{m} {n}")}),
            )
            .await;
        ids.insert("api_key", r.body["id"].as_i64().unwrap().to_string());
    }
    let coach = jwt(&org.coach).to_string();
    if needs("certification") {
        let r = app
            .post(
                "/auth/coach/certification/",
                Some(&coach),
                json!({"user_id": org.coach.id, "name": format!("{m} cert")}),
            )
            .await;
        ids.insert("certification", r.body["id"].as_i64().unwrap().to_string());
    }
    if needs("education") {
        let r = app
            .post(
                "/auth/coach/education/",
                Some(&coach),
                json!({"user_id": org.coach.id, "school_name": format!("{m} school")}),
            )
            .await;
        ids.insert("education", r.body["id"].as_i64().unwrap().to_string());
    }
    ids
}

/// The id of a created organisation-API resource (bare or wrapped).
fn resource_id(body: &Value) -> String {
    let resource = ["data", "client", "program"]
        .iter()
        .find_map(|k| body.get(*k))
        .unwrap_or(body);
    resource["id"].as_str().expect("resource id").to_string()
}

fn fill(text: &str, ids: &HashMap<&'static str, String>, caller: i64, n: u64) -> String {
    let mut out = text
        .replace("{self}", &caller.to_string())
        .replace("{n}", &n.to_string());
    for (name, id) in ids {
        out = out.replace(&format!("{{{name}}}"), id);
    }
    out
}

/// A digest of every table a request could change.
async fn fingerprint(app: &TestApp) -> Vec<i64> {
    const QUERIES: &[&str] = &[
        "SELECT COUNT(*) FROM users",
        "SELECT CAST(COALESCE(SUM(updated_at % 1000000007), 0) AS BIGINT) FROM users",
        "SELECT COUNT(*) FROM users WHERE is_active",
        "SELECT COUNT(*) FROM organizations",
        "SELECT COUNT(*) FROM departments",
        "SELECT CAST(COALESCE(SUM(updated_at % 1000000007), 0) AS BIGINT) FROM departments",
        "SELECT COUNT(*) FROM api_keys WHERE revoked_at IS NULL",
        "SELECT COUNT(*) FROM custom_fields",
        "SELECT COUNT(*) FROM custom_field_values",
        "SELECT COUNT(*) FROM programs",
        "SELECT COUNT(*) FROM program_members",
        "SELECT CAST(COALESCE(SUM(updated_at % 1000000007), 0) AS BIGINT) FROM coach_profiles",
        "SELECT CAST(COALESCE(SUM(vetting_updated_at % 1000000007), 0) AS BIGINT) FROM coach_profiles",
        "SELECT COUNT(*) FROM certifications",
        "SELECT COUNT(*) FROM educations",
        "SELECT COUNT(*) FROM blobs",
        "SELECT CAST(COALESCE(SUM(version), 0) AS BIGINT) FROM worker_profiles",
        "SELECT COUNT(*) FROM profile_documents",
        "SELECT COUNT(*) FROM profile_records",
        "SELECT COUNT(*) FROM outbox",
    ];
    let mut out = Vec::with_capacity(QUERIES.len());
    for q in QUERIES {
        out.push(app.scalar_i64(q).await);
    }
    out
}

struct Outcome {
    status: u16,
    text: String,
}

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<&str>,
    multipart: Option<&str>,
    who: &Credential,
) -> Outcome {
    let method: Method = method.parse().unwrap();
    let mut req = app.client.request(method, app.url(path));
    req = match who {
        Credential::None => req,
        Credential::Jwt(t) => req.header("authorization", format!("JWT {t}")),
        Credential::ApiKey(k) => req.header("authorization", format!("Bearer {k}")),
    };
    if let Some(field) = multipart {
        req = req.multipart(Form::new().part(field.to_string(), file("doc.pdf", PDF)));
    } else if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(b.to_string());
    }
    let resp = req.send().await.expect("request");
    Outcome {
        status: resp.status().as_u16(),
        text: resp.text().await.unwrap_or_default(),
    }
}

#[tokio::test]
async fn every_operation_as_every_principal() {
    let policy: Policy =
        toml::from_str(include_str!("../../docs/authorization.toml")).expect("policy parses");
    let app = TestApp::spawn().await;
    let a = org(&app, "alpha").await;
    let b = org(&app, "bravo").await;
    let (staff_id, staff) = app.staff("staff@platform.example").await;
    let staff = Principal {
        name: "staff",
        id: staff_id,
        credential: Credential::Jwt(staff),
    };
    // A member of A who logged in, then was deactivated.
    let r = app
        .post(
            "/api/myTeams/",
            Some(jwt(&a.admin)),
            json!({"email": "gone@alpha.example", "first_name": "Gone", "last_name": "Away",
                   "password": PASSWORD, "role": "Member"}),
        )
        .await;
    let gone_id = r.body["id"].as_i64().unwrap();
    let (gone, _) = app.login("gone@alpha.example", PASSWORD).await;
    match &app.state.db {
        roster::store::Db::Sqlite(pool, ..) => {
            sqlx::query("UPDATE users SET is_active = FALSE WHERE id = $1")
                .bind(gone_id)
                .execute(pool)
                .await
                .map(|_| ())
        }
        roster::store::Db::Postgres(pg) => {
            sqlx::query("UPDATE users SET is_active = FALSE WHERE id = $1")
                .bind(gone_id)
                .execute(&mut *pg.acquire().await.unwrap())
                .await
                .map(|_| ())
        }
    }
    .unwrap();
    let anonymous = Principal {
        name: "anonymous",
        id: 0,
        credential: Credential::None,
    };
    let deactivated = Principal {
        name: "deactivated",
        id: gone_id,
        credential: Credential::Jwt(gone),
    };

    let mut counter = 0u64;
    let (mut requests, mut leaks, mut denied_writes_checked) = (0usize, 0usize, 0usize);
    let mut failures = Vec::new();
    for op in &policy.operation {
        let template = format!("{} {}", op.path, op.body.clone().unwrap_or_default());
        let ids_a = fixtures(&app, &a, &template, &mut counter).await;
        let ids_b = fixtures(&app, &b, &template, &mut counter).await;
        let label = format!("{} {}", op.method, op.path);
        let org_api = !op.path.starts_with("/api/")
            && !op.path.starts_with("/auth/")
            && op.path != "/healthz";
        // Everyone who is not allowed, first: nothing may change.
        let everyone = [
            &anonymous,
            &deactivated,
            &staff,
            &a.admin,
            &a.coach,
            &a.member,
            &a.api_key,
        ];
        for p in everyone
            .iter()
            .filter(|p| op.public || !op.allow.iter().any(|x| x == p.name))
        {
            counter += 1;
            let path = fill(&op.path, &ids_a, p.id, counter);
            let body = op.body.as_deref().map(|b| fill(b, &ids_a, p.id, counter));
            let expected = if op.public {
                op.success
            } else {
                match (&p.credential, p.name) {
                    (Credential::None, _) | (_, "deactivated") => 401,
                    (Credential::ApiKey(_), _) if !org_api => 401,
                    _ => op.denied.unwrap_or(403),
                }
            };
            let before = fingerprint(&app).await;
            let out = call(
                &app,
                &op.method,
                &path,
                body.as_deref(),
                op.multipart.as_deref(),
                &p.credential,
            )
            .await;
            requests += 1;
            if out.status != expected {
                failures.push(format!(
                    "{label} as {}: {} (expected {expected}): {}",
                    p.name, out.status, out.text
                ));
            }
            if !op.public && op.method != "GET" {
                denied_writes_checked += 1;
                if fingerprint(&app).await != before {
                    failures.push(format!(
                        "{label} as {}: refused, but something changed",
                        p.name
                    ));
                }
            }
            if out.text.to_lowercase().contains("bravo") {
                leaks += 1;
                failures.push(format!(
                    "{label} as {}: answer mentions organisation B: {}",
                    p.name, out.text
                ));
            }
        }
        if op.public {
            continue;
        }
        // Allowed principals of A, naming B's objects: 404, nothing changes.
        let tenant = ids_b.keys().any(|k| op.path.contains(&format!("{{{k}}}")));
        for name in op.allow.iter().filter(|n| *n != "staff") {
            if !tenant {
                break;
            }
            let p = a.principal(name);
            counter += 1;
            let path = fill(&op.path, &ids_b, p.id, counter);
            let body = op.body.as_deref().map(|x| fill(x, &ids_b, p.id, counter));
            let before = fingerprint(&app).await;
            let out = call(
                &app,
                &op.method,
                &path,
                body.as_deref(),
                op.multipart.as_deref(),
                &p.credential,
            )
            .await;
            requests += 1;
            if out.status != 404 {
                failures.push(format!(
                    "{label} as {name} of A on B's object: {} (expected 404): {}",
                    out.status, out.text
                ));
            }
            denied_writes_checked += 1;
            if fingerprint(&app).await != before {
                failures.push(format!(
                    "{label} as {name} of A on B's object: something changed"
                ));
            }
            if out.text.to_lowercase().contains("bravo") {
                leaks += 1;
                failures.push(format!(
                    "{label} as {name}: answer mentions organisation B: {}",
                    out.text
                ));
            }
        }
        // Finally the allowed principals, each on fresh objects.
        for (i, name) in op.allow.iter().enumerate() {
            let p = if name == "staff" {
                &staff
            } else {
                a.principal(name)
            };
            let ids = if i == 0 {
                ids_a.clone()
            } else {
                fixtures(&app, &a, &template, &mut counter).await
            };
            counter += 1;
            let path = fill(&op.path, &ids, p.id, counter);
            let body = op.body.as_deref().map(|x| fill(x, &ids, p.id, counter));
            let out = call(
                &app,
                &op.method,
                &path,
                body.as_deref(),
                op.multipart.as_deref(),
                &p.credential,
            )
            .await;
            requests += 1;
            if out.status != op.success {
                failures.push(format!(
                    "{label} as {name}: {} (expected {}): {}",
                    out.status, op.success, out.text
                ));
            }
            if name != "staff" && out.text.to_lowercase().contains("bravo") {
                leaks += 1;
                failures.push(format!(
                    "{label} as {name}: answer mentions organisation B: {}",
                    out.text
                ));
            }
        }
    }
    // Foreign ids inside bodies.
    for s in &policy.smuggle {
        let template = format!("{} {}", s.path, s.body);
        let ids_a = fixtures(&app, &a, &template, &mut counter).await;
        let foreign_template = template.replace("{foreign.", "{");
        let ids_b = fixtures(&app, &b, &foreign_template, &mut counter).await;
        let p = a.principal(&s.principal);
        counter += 1;
        let mut body = s.body.clone();
        for (name, id) in &ids_b {
            body = body.replace(&format!("{{foreign.{name}}}"), id);
        }
        let body = fill(&body, &ids_a, p.id, counter);
        let path = fill(&s.path, &ids_a, p.id, counter);
        let before = fingerprint(&app).await;
        let out = call(&app, &s.method, &path, Some(&body), None, &p.credential).await;
        requests += 1;
        if out.status != s.status {
            failures.push(format!(
                "smuggled {} {} as {}: {} (expected {}): {}",
                s.method, s.path, s.principal, out.status, s.status, out.text
            ));
        }
        denied_writes_checked += 1;
        if fingerprint(&app).await != before {
            failures.push(format!(
                "smuggled {} {}: something changed",
                s.method, s.path
            ));
        }
    }
    crate::harness::figure(&format!(
        "authorization matrix: {} operations, {} smuggled ids, {requests} requests, {denied_writes_checked} refused writes checked unchanged, {leaks} leaks",
        policy.operation.len(),
        policy.smuggle.len()
    ));
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    let _ = &b.member;
}
