//! /api/myTeams/: team members of the admin's company.

use serde_json::{Value, json};

use crate::harness::{PASSWORD, TestApp, assert_reply};

async fn add(app: &TestApp, token: &str, email: &str, first: &str, last: &str) -> i64 {
    let reply = app
        .post(
            "/api/myTeams/",
            Some(token),
            json!({"email": email, "first_name": first, "last_name": last, "password": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    reply.body["id"].as_i64().unwrap()
}

fn emails(reply: &crate::harness::Reply) -> Vec<String> {
    reply.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn an_admin_adds_a_member_who_can_log_in_at_once() {
    let app = TestApp::spawn().await;
    let (admin, token, _) = app.active_user("admin@example.com", "Admin").await;
    let dept = app
        .post("/api/departments/", Some(&token), json!({"name": "Ops"}))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let reply = app
        .post(
            "/api/myTeams/",
            Some(&token),
            json!({"email": "Sam@Example.com", "first_name": "Sam", "last_name": "Lee", "department": dept, "password": PASSWORD}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let id = reply.body["id"].as_i64().unwrap();
    assert_eq!(
        reply.body,
        json!({"id": id, "email": "Sam@example.com", "first_name": "Sam", "last_name": "Lee", "role": "Member"})
    );

    let member = app.get(&format!("/api/myTeams/{id}/"), Some(&token)).await;
    assert_eq!(member.status, 200);
    let keys: Vec<&String> = member.body.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "email",
            "first_name",
            "last_name",
            "role",
            "company",
            "department",
            "created_at",
            "updated_at",
            "added_by"
        ]
    );
    assert_eq!(member.body["department"], dept);
    assert_eq!(member.body["added_by"], admin);

    let (access, _) = app.login("sam@example.com", PASSWORD).await;
    let me = app.get("/api/auth/users/me/", Some(&access)).await;
    assert_eq!(me.body["role"], "Member");
    // A member is not an admin.
    assert_eq!(app.get("/api/myTeams/", Some(&access)).await.status, 403);
}

#[tokio::test]
async fn the_team_lists_every_admin_coach_and_member_including_the_caller() {
    let app = TestApp::spawn().await;
    let (admin, token, _) = app.active_user("admin@example.com", "Admin").await;
    let coach = app
        .post("/api/myTeams/", Some(&token), json!({"email": "c@example.com", "first_name": "Cat", "last_name": "Coach", "password": PASSWORD, "role": "Coach"}))
        .await;
    assert_eq!(coach.body["role"], "Coach");
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM coach_profiles WHERE vetting_status = 'PD'")
            .await,
        1
    );
    add(&app, &token, "m@example.com", "Mo", "Member").await;
    let list = app.get("/api/myTeams/", Some(&token)).await;
    assert_eq!(list.body["count"], 3);
    assert_eq!(
        emails(&list),
        ["admin@example.com", "c@example.com", "m@example.com"]
    );
    assert_eq!(list.body["results"][0]["id"], admin);
    assert_eq!(list.body["results"][0]["role"], "Admin");
}

#[tokio::test]
async fn member_creation_is_validated_in_drf_words() {
    let app = TestApp::spawn().await;
    let (_, token, _) = app.active_user("admin@example.com", "Admin").await;
    let required = json!(["This field is required."]);
    assert_reply(
        &app.post("/api/myTeams/", Some(&token), json!({})).await,
        400,
        json!({"email": required, "first_name": required, "last_name": required, "password": required}),
    );
    let reply = app
        .post("/api/myTeams/", Some(&token), json!({"email": "admin@EXAMPLE.com", "first_name": "A", "last_name": "B", "password": PASSWORD, "department": "abc", "role": "Owner"}))
        .await;
    assert_reply(
        &reply,
        400,
        json!({"email": ["user account with this email already exists."],
               "department": ["Incorrect type. Expected pk value, received str."],
               "role": ["\"Owner\" is not a valid choice."]}),
    );
    let reply = app
        .post("/api/myTeams/", Some(&token), json!({"email": "x@example.com", "first_name": "A", "last_name": "B", "password": "12345678", "department": 999}))
        .await;
    assert_reply(
        &reply,
        400,
        json!({"department": ["Invalid pk \"999\" - object does not exist."]}),
    );
    let reply = app
        .post("/api/myTeams/", Some(&token), json!({"email": "x@example.com", "first_name": "A", "last_name": "B", "password": "12345678"}))
        .await;
    assert_reply(
        &reply,
        400,
        json!({"password": ["This password is too common.", "This password is entirely numeric."]}),
    );
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM users").await, 1);
}

#[tokio::test]
async fn another_companys_department_is_refused_in_the_body() {
    let app = TestApp::spawn().await;
    let (_, a, _) = app.active_user("a@example.com", "Admin").await;
    let (_, b, _) = app.active_user("b@example.com", "Admin").await;
    let dept_b = app
        .post("/api/departments/", Some(&b), json!({"name": "B only"}))
        .await
        .body["id"]
        .as_i64()
        .unwrap();
    let reply = app
        .post("/api/myTeams/", Some(&a), json!({"email": "x@example.com", "first_name": "A", "last_name": "B", "password": PASSWORD, "department": dept_b}))
        .await;
    assert_reply(
        &reply,
        400,
        json!({"department": [format!("Invalid pk \"{dept_b}\" - object does not exist.")]}),
    );
    let member = add(&app, &a, "m@example.com", "Mo", "M").await;
    let reply = app
        .patch(
            &format!("/api/myTeams/{member}/"),
            Some(&a),
            json!({"department": dept_b}),
        )
        .await;
    assert_reply(
        &reply,
        400,
        json!({"department": [format!("Invalid pk \"{dept_b}\" - object does not exist.")]}),
    );
}

#[tokio::test]
async fn members_are_updated_and_the_last_admin_is_kept() {
    let app = TestApp::spawn().await;
    let (admin, token, _) = app.active_user("admin@example.com", "Admin").await;
    let member = add(&app, &token, "m@example.com", "Mo", "Member").await;
    let path = format!("/api/myTeams/{member}/");
    let reply = app
        .patch(
            &path,
            Some(&token),
            json!({"first_name": "Moe", "email": "ignored@example.com"}),
        )
        .await;
    assert_reply(
        &reply,
        200,
        json!({"id": member, "first_name": "Moe", "last_name": "Member", "email": "m@example.com", "role": "Member"}),
    );
    assert_reply(
        &app.put(&path, Some(&token), json!({"first_name": "Moe"}))
            .await,
        400,
        json!({"last_name": ["This field is required."]}),
    );

    let last_admin = json!({"role": ["A company must keep at least one admin."]});
    let me_path = format!("/api/myTeams/{admin}/");
    assert_reply(
        &app.patch(&me_path, Some(&token), json!({"role": "Member"}))
            .await,
        400,
        last_admin.clone(),
    );
    assert_reply(
        &app.delete(&me_path, Some(&token), None).await,
        400,
        last_admin,
    );

    // Promote the member; now the first admin may step down.
    assert_eq!(
        app.patch(&path, Some(&token), json!({"role": "Admin"}))
            .await
            .body["role"],
        "Admin"
    );
    assert_eq!(
        app.patch(&me_path, Some(&token), json!({"role": "Coach"}))
            .await
            .body["role"],
        "Coach"
    );
    // The demotion applies to the very next request.
    assert_eq!(app.get("/api/myTeams/", Some(&token)).await.status, 403);
}

#[tokio::test]
async fn deleting_a_member_ends_their_session_at_once() {
    let app = TestApp::spawn().await;
    let (_, token, _) = app.active_user("admin@example.com", "Admin").await;
    let member = add(&app, &token, "m@example.com", "Mo", "Member").await;
    let (access, refresh) = app.login("m@example.com", PASSWORD).await;
    assert_eq!(
        app.delete(&format!("/api/myTeams/{member}/"), Some(&token), None)
            .await
            .status,
        204
    );
    assert_eq!(
        app.get("/api/auth/users/me/", Some(&access)).await.status,
        401
    );
    assert_eq!(
        app.post("/api/auth/jwt/refresh/", None, json!({"refresh": refresh}))
            .await
            .status,
        401
    );
    assert_reply(
        &app.get(&format!("/api/myTeams/{member}/"), Some(&token))
            .await,
        404,
        json!({"detail": "Not found."}),
    );
}

#[tokio::test]
async fn another_companys_members_do_not_exist() {
    let app = TestApp::spawn().await;
    let (_, a, _) = app.active_user("a@example.com", "Admin").await;
    let (b_admin, b, _) = app.active_user("b@example.com", "Admin").await;
    let member_b = add(&app, &b, "mb@example.com", "Bee", "Member").await;
    let not_found = json!({"detail": "Not found."});
    for id in [member_b, b_admin] {
        let path = format!("/api/myTeams/{id}/");
        assert_reply(&app.get(&path, Some(&a)).await, 404, not_found.clone());
        assert_reply(
            &app.patch(&path, Some(&a), json!({"first_name": "Evil"}))
                .await,
            404,
            not_found.clone(),
        );
        assert_reply(
            &app.delete(&path, Some(&a), None).await,
            404,
            not_found.clone(),
        );
    }
    let list = app.get("/api/myTeams/?search=bee", Some(&a)).await;
    assert_eq!(list.body["count"], 0);
    assert_eq!(
        app.get(&format!("/api/myTeams/{member_b}/"), Some(&b))
            .await
            .body["first_name"],
        "Bee"
    );
}

#[tokio::test]
async fn team_search_follows_drf_search_filter() {
    let app = TestApp::spawn().await;
    let (_, token, _) = app.active_user("admin@example.com", "Admin").await;
    add(&app, &token, "jane.smith@example.com", "Jane", "Smith").await;
    add(
        &app,
        &token,
        "john.smithers@example.com",
        "John",
        "Smithers",
    )
    .await;
    add(&app, &token, "ann@other.org", "Ann", "O'Brien").await;
    add(&app, &token, "x_y@example.com", "Xavier", "Young").await;
    let search = |q: &str| {
        let path = format!("/api/myTeams/?search={q}");
        let token = token.clone();
        let app = &app;
        async move { emails(&app.get(&path, Some(&token)).await) }
    };
    assert_eq!(
        search("smith").await,
        ["jane.smith@example.com", "john.smithers@example.com"]
    );
    assert_eq!(
        search("SMITH").await,
        ["jane.smith@example.com", "john.smithers@example.com"]
    );
    assert_eq!(search("smith+jane").await, ["jane.smith@example.com"]);
    assert_eq!(search("smith,john").await, ["john.smithers@example.com"]);
    assert_eq!(search("o'brien").await, ["ann@other.org"]);
    assert_eq!(search("other.org").await, ["ann@other.org"]);
    // Short terms (under the trigram length) still match.
    assert_eq!(search("yo").await, ["x_y@example.com"]);
    // `_` and `%` are literal.
    assert_eq!(search("_").await, ["x_y@example.com"]);
    assert_eq!(search("%25").await, Vec::<String>::new());
    // A quoted phrase is one term.
    assert_eq!(search("%22jane.smith%22").await, ["jane.smith@example.com"]);
    assert_eq!(search("zzzz").await, Vec::<String>::new());
    let reply = app.get("/api/myTeams/?search=a%00b", Some(&token)).await;
    assert_reply(&reply, 400, json!(["Null characters are not allowed."]));
}

#[tokio::test]
async fn team_ordering_and_pagination_keep_search_in_links() {
    let app = TestApp::spawn().await;
    let (_, token, _) = app.active_user("admin@example.com", "Admin").await;
    for (i, last) in ["Baker", "Adams", "Cole", "Adams", "Diaz"]
        .iter()
        .enumerate()
    {
        add(&app, &token, &format!("m{i}@team.org"), "Pat", last).await;
    }
    let reply = app
        .get(
            "/api/myTeams/?search=team.org&ordering=-last_name&page_size=2",
            Some(&token),
        )
        .await;
    assert_eq!(reply.body["count"], 5);
    let lasts: Vec<&str> = reply.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["last_name"].as_str().unwrap())
        .collect();
    assert_eq!(lasts, ["Diaz", "Cole"]);
    let host = app.base.trim_start_matches("http://");
    assert_eq!(
        reply.body["next"],
        format!(
            "http://{host}/api/myTeams/?ordering=-last_name&page=2&page_size=2&search=team.org"
        )
    );
    let last = app
        .get(
            "/api/myTeams/?search=team.org&ordering=-last_name&page_size=2&page=3",
            Some(&token),
        )
        .await;
    let lasts: Vec<&str> = last.body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["last_name"].as_str().unwrap())
        .collect();
    assert_eq!(lasts, ["Adams"]);
    assert_eq!(last.body["next"], Value::Null);
    let past = app
        .get(
            "/api/myTeams/?search=team.org&page_size=2&page=4",
            Some(&token),
        )
        .await;
    assert_reply(&past, 404, json!({"detail": "Invalid page."}));
    let last_by_name = app
        .get(
            "/api/myTeams/?search=team.org&page_size=2&page=last",
            Some(&token),
        )
        .await;
    assert_eq!(last_by_name.body["results"].as_array().unwrap().len(), 1);
    let empty = app
        .get("/api/myTeams/?search=nobody-here", Some(&token))
        .await;
    assert_reply(
        &empty,
        200,
        json!({"count": 0, "next": null, "previous": null, "results": []}),
    );
    // Ties on last_name break on id, in the same direction.
    let adams = app
        .get(
            "/api/myTeams/?search=adams&ordering=last_name",
            Some(&token),
        )
        .await;
    assert_eq!(emails(&adams), ["m1@team.org", "m3@team.org"]);
    let adams = app
        .get(
            "/api/myTeams/?search=adams&ordering=-last_name",
            Some(&token),
        )
        .await;
    assert_eq!(emails(&adams), ["m3@team.org", "m1@team.org"]);
    let by_email = app
        .get("/api/myTeams/?ordering=-email&page_size=100", Some(&token))
        .await;
    assert_eq!(emails(&by_email)[0], "m4@team.org");
    assert_eq!(by_email.body["results"].as_array().unwrap().len(), 6);
}

/// Pages without a search walk team-only indexes (migration 0009): in every
/// ordering, page after page holds the team in order and never a client,
/// including users who left the team or joined it after they were added.
#[tokio::test]
async fn team_pages_in_every_ordering_hold_the_team_and_no_client() {
    let app = TestApp::spawn().await;
    let (_, token, _) = app.active_user("admin@example.com", "Admin").await;
    let people = [
        ("a@x.org", "Eve", "Young"),
        ("b@x.org", "Bob", "Brown"),
        ("c@x.org", "Cy", "Adams"),
        ("d@x.org", "Di", "Clark"),
        ("e@x.org", "Al", "Zane"),
        ("f@x.org", "Flo", "Brown"),
        ("g@x.org", "Gus", "Moss"),
    ];
    for (email, first, last) in people {
        add(&app, &token, email, first, last).await;
    }
    // Two become clients, as the organisation API makes them; one of them
    // comes back to the team.
    for sql in [
        "UPDATE users SET role = 'client' WHERE email = 'b@x.org' RETURNING id",
        "UPDATE users SET role = 'client' WHERE email = 'e@x.org' RETURNING id",
        "UPDATE users SET role = 'client' WHERE email = 'g@x.org' RETURNING id",
        "UPDATE users SET role = 'coach' WHERE email = 'g@x.org' RETURNING id",
    ] {
        app.scalar_i64(sql).await;
    }
    let everyone = app.get("/api/myTeams/?page_size=100", Some(&token)).await;
    assert_eq!(everyone.body["count"], 6, "{}", everyone.text);
    let team: Vec<Value> = everyone.body["results"].as_array().unwrap().clone();
    for field in [
        "id",
        "first_name",
        "last_name",
        "email",
        "created_at",
        "updated_at",
    ] {
        for desc in [false, true] {
            let ordering = if desc {
                format!("-{field}")
            } else {
                field.to_string()
            };
            let mut expected = team.clone();
            expected.sort_by(|x, y| {
                let key = |m: &Value| (m[field].to_string(), m["id"].as_i64().unwrap());
                let order = if field == "id" {
                    x["id"].as_i64().cmp(&y["id"].as_i64())
                } else {
                    key(x).cmp(&key(y))
                };
                if desc { order.reverse() } else { order }
            });
            let expected: Vec<&str> = expected
                .iter()
                .map(|m| m["email"].as_str().unwrap())
                .collect();
            let mut seen = Vec::new();
            for page in 1..=3 {
                let reply = app
                    .get(
                        &format!("/api/myTeams/?ordering={ordering}&page_size=2&page={page}"),
                        Some(&token),
                    )
                    .await;
                assert_eq!(reply.status, 200, "{ordering} {page}: {}", reply.text);
                assert_eq!(reply.body["count"], 6, "{ordering}");
                seen.extend(emails(&reply));
            }
            assert_eq!(seen, expected, "ordering={ordering}");
            assert!(!seen.iter().any(|e| e == "b@x.org" || e == "e@x.org"));
        }
    }
}

/// Pages of the whole team from offset 1,000 on start from marks left by
/// the pages served before them (`store::team::PageMarks`), at the team's
/// version: every ordering, either way, comes out whole and in order at
/// any page size, and a change that moves the rows under the marks, made
/// straight in the database as another instance would or through the API,
/// is seen by the next page at once.
#[tokio::test]
async fn deep_team_pages_from_marks_follow_every_change() {
    let app = TestApp::spawn().await;
    let opts = roster::seed::SeedOptions {
        company: "Deep".into(),
        domain: "deep.example".into(),
        password: PASSWORD.into(),
        departments: 1,
        coaches: 0,
        members: 1200,
    };
    roster::seed::seed_demo(&app.state, &opts).await.unwrap();
    let (token, _) = app.login("admin@deep.example", PASSWORD).await;
    // Every member with its sort fields.
    let everyone = || async {
        let mut team = Vec::new();
        for page in 1.. {
            let reply = app
                .get(
                    &format!("/api/myTeams/?page_size=100&page={page}"),
                    Some(&token),
                )
                .await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            team.extend(reply.body["results"].as_array().unwrap().iter().cloned());
            if reply.body["next"].is_null() {
                break;
            }
        }
        team
    };
    // The team's emails by `field` (then the id), or by last name and then
    // first name descending (then the id descending).
    let sorted = |team: &[Value], field: &str, desc: bool| -> Vec<String> {
        let mut team = team.to_vec();
        team.sort_by(|x, y| {
            let by_id = x["id"].as_i64().cmp(&y["id"].as_i64());
            let text = |field: &str| x[field].as_str().cmp(&y[field].as_str());
            let order = match field {
                "id" => by_id,
                "last_name,-first_name" => {
                    return text("last_name")
                        .then(text("first_name").reverse().then(by_id.reverse()));
                }
                _ => text(field).then(by_id),
            };
            if desc { order.reverse() } else { order }
        });
        team.iter()
            .map(|m| m["email"].as_str().unwrap().to_string())
            .collect()
    };
    // Pages `pages` of `size` in `ordering`, and the count each gave.
    let read = |ordering: &'static str, size: usize, pages: std::ops::RangeInclusive<usize>| {
        let (app, token) = (&app, token.clone());
        async move {
            let mut seen = Vec::new();
            for page in pages {
                let reply = app
                    .get(
                        &format!("/api/myTeams/?ordering={ordering}&page_size={size}&page={page}"),
                        Some(&token),
                    )
                    .await;
                assert_eq!(reply.status, 200, "{ordering} {page}: {}", reply.text);
                seen.push((reply.body["count"].as_i64().unwrap(), emails(&reply)));
            }
            seen
        }
    };
    let team = everyone().await;
    assert_eq!(team.len(), 1201);
    // Marks serve one field (then the id) either way, and the id alone; an
    // ordering that mixes directions is read by offset.
    let orderings = [
        ("last_name", "last_name", false),
        ("-last_name", "last_name", true),
        ("-email", "email", true),
        ("created_at", "created_at", false),
        ("", "id", false),
        ("-id", "id", true),
        ("last_name,-first_name", "last_name,-first_name", false),
    ];
    for (ordering, field, desc) in orderings {
        let expected = sorted(&team, field, desc);
        // By 100 from offset 900 to the end, twice (the second time from
        // marks), then by 7 across the marks the first pass left.
        for _ in 0..2 {
            let pages = read(ordering, 100, 10..=13).await;
            let seen: Vec<String> = pages.iter().flat_map(|(_, e)| e.clone()).collect();
            assert_eq!(seen, expected[900..], "{ordering}");
            assert!(pages.iter().all(|(count, _)| *count == 1201));
        }
        let seen: Vec<String> = read(ordering, 7, 140..=160)
            .await
            .into_iter()
            .flat_map(|(_, e)| e)
            .collect();
        assert_eq!(seen, expected[973..1120], "{ordering} by 7");
    }
    // Rows 1,100-1,199 by last name, again and again from marks.
    let page12 = || async {
        let pages = read("-last_name", 100, 12..=12).await;
        assert_eq!(pages[0].0, team_size(&app, &token).await);
        pages[0].1.clone()
    };
    let expected = sorted(&team, "last_name", true);
    assert_eq!(page12().await, expected[1100..1200]);
    assert_eq!(page12().await, expected[1100..1200]);
    // Another writer renames the member at the end of that order to sort
    // first: every row before it, the marked ones among them, moves down one.
    let id_of = |team: &[Value], email: &str| {
        team.iter()
            .find(|m| m["email"] == email)
            .and_then(|m| m["id"].as_i64())
            .unwrap()
    };
    let last = id_of(&team, &expected[1200]);
    let renamed = app
        .patch(
            &format!("/api/myTeams/{last}/"),
            Some(&token),
            json!({"last_name": "Zzz"}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.text);
    let team = everyone().await;
    let expected = sorted(&team, "last_name", true);
    assert_eq!(expected[0], renamed.body["email"].as_str().unwrap());
    assert_eq!(page12().await, expected[1100..1200]);
    // Straight in the database, as another instance would: the member now
    // first goes back to the end.
    app.scalar_i64("UPDATE users SET last_name = '' WHERE last_name = 'Zzz' RETURNING id")
        .await;
    let team = everyone().await;
    let expected = sorted(&team, "last_name", true);
    assert_eq!(page12().await, expected[1100..1200]);
    // Deleted through the API: every row after it moves up one.
    let gone = id_of(&team, &expected[500]);
    let reply = app
        .delete(&format!("/api/myTeams/{gone}/"), Some(&token), None)
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    let team = everyone().await;
    assert_eq!(team.len(), 1200);
    let expected = sorted(&team, "last_name", true);
    assert_eq!(page12().await, expected[1100..1200]);
    // Past the end, from a mark or not: DRF's invalid page.
    for _ in 0..2 {
        let reply = app
            .get(
                "/api/myTeams/?ordering=-last_name&page_size=100&page=13",
                Some(&token),
            )
            .await;
        assert_reply(&reply, 404, json!({"detail": "Invalid page."}));
    }
}

async fn team_size(app: &TestApp, token: &str) -> i64 {
    let reply = app.get("/api/myTeams/?page_size=1", Some(token)).await;
    reply.body["count"].as_i64().unwrap()
}

/// A search's matches are cached (`store::team::SearchCache`) against the
/// team's version: every change, through the API or straight to the
/// database as another instance would make it, is seen by the next search.
#[tokio::test]
async fn team_search_sees_every_change_to_the_team() {
    let app = TestApp::spawn().await;
    let (_, token, _) = app.active_user("admin@example.com", "Admin").await;
    let ann = add(&app, &token, "a@x.org", "Ann", "Adams").await;
    let bob = add(&app, &token, "b@x.org", "Bob", "Adams").await;
    add(&app, &token, "c@x.org", "Cy", "Other").await;
    let search = |q: &'static str| {
        let (app, token) = (&app, token.clone());
        async move {
            let reply = app
                .get(&format!("/api/myTeams/?search={q}"), Some(&token))
                .await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            (reply.body["count"].as_i64().unwrap(), emails(&reply))
        }
    };
    let adams = "adams&ordering=last_name";
    assert_eq!(
        search(adams).await,
        (2, vec!["a@x.org".into(), "b@x.org".into()])
    );
    // The same search again, answered from the cache.
    assert_eq!(
        search(adams).await,
        (2, vec!["a@x.org".into(), "b@x.org".into()])
    );

    // Added through the API. Versions are times in microseconds (so a
    // restored backup cannot repeat one), and every change moves them on.
    let version = || app.scalar_i64("SELECT MAX(version) FROM team_versions");
    let before = version().await;
    assert!(before > 1_700_000_000_000_000, "{before}");
    add(&app, &token, "d@x.org", "Dee", "Adams").await;
    assert!(version().await > before);
    assert_eq!(search(adams).await.0, 3);
    // Renamed by another writer: no longer a match, and the order moves.
    app.scalar_i64("UPDATE users SET last_name = 'Brown' WHERE email = 'b@x.org' RETURNING id")
        .await;
    app.scalar_i64("UPDATE users SET last_name = 'Aadams' WHERE email = 'd@x.org' RETURNING id")
        .await;
    assert_eq!(
        search(adams).await,
        (2, vec!["d@x.org".into(), "a@x.org".into()])
    );
    let second = app
        .get(
            "/api/myTeams/?search=adams&ordering=last_name&page_size=1&page=2",
            Some(&token),
        )
        .await;
    assert_eq!(
        (second.body["count"].as_i64(), emails(&second)),
        (Some(2), vec!["a@x.org".to_string()])
    );
    // Renamed through the API.
    let reply = app
        .patch(
            &format!("/api/myTeams/{bob}/"),
            Some(&token),
            json!({"last_name": "Adams"}),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(search(adams).await.0, 3);
    // Deleted through the API.
    let reply = app
        .delete(&format!("/api/myTeams/{ann}/"), Some(&token), None)
        .await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    assert_eq!(
        search(adams).await,
        (2, vec!["d@x.org".into(), "b@x.org".into()])
    );
    // No longer a team role, then deleted, by another writer.
    app.scalar_i64("UPDATE users SET role = 'client' WHERE email = 'd@x.org' RETURNING id")
        .await;
    assert_eq!(search(adams).await, (1, vec!["b@x.org".into()]));
    app.scalar_i64("DELETE FROM users WHERE email = 'b@x.org' RETURNING id")
        .await;
    assert_eq!(search(adams).await, (0, vec![]));
}

#[tokio::test]
async fn seed_demo_builds_an_organisation_the_admin_can_browse() {
    let app = TestApp::spawn().await;
    let opts = roster::seed::SeedOptions {
        company: "Demo Coaching".into(),
        domain: "demo.example".into(),
        password: "Demo-Pass-2024!".into(),
        departments: 3,
        coaches: 2,
        members: 1200,
    };
    let seeded = roster::seed::seed_demo(&app.state, &opts).await.unwrap();
    assert_eq!((seeded.users, seeded.departments), (1203, 3));
    let (token, _) = app.login("admin@demo.example", "Demo-Pass-2024!").await;
    let team = app.get("/api/myTeams/", Some(&token)).await;
    assert_eq!(team.body["count"], 1203);
    let garcias = app
        .get("/api/myTeams/?search=garcia&page_size=100", Some(&token))
        .await;
    let count = garcias.body["count"].as_i64().unwrap();
    assert!(
        (1..=60).contains(&count),
        "about 1% are Garcias, got {count}"
    );
    for member in garcias.body["results"].as_array().unwrap() {
        let text = format!(
            "{} {} {}",
            member["first_name"], member["last_name"], member["email"]
        )
        .to_lowercase();
        assert!(text.contains("garcia"), "{text}");
    }
    let depts = app.get("/api/departments/", Some(&token)).await;
    assert_eq!(depts.body["count"], 3);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM coach_profiles").await,
        2
    );
    // Seeding twice is refused rather than duplicated.
    assert!(roster::seed::seed_demo(&app.state, &opts).await.is_err());
    // Seeded members can log in with the shared password.
    let first = app
        .get("/api/myTeams/?ordering=-id&page_size=1", Some(&token))
        .await;
    let email = first.body["results"][0]["email"]
        .as_str()
        .unwrap()
        .to_string();
    app.login(&email, "Demo-Pass-2024!").await;
}
