//! Worker profiles (seed 001): the seed's request and response, Rails
//! validation errors, documents, ETags, the audit trail, filters and
//! isolation.

use base64::Engine;
use md5::Digest;
use reqwest::multipart::Form;
use serde_json::{Value, json};

use crate::coach::{PDF, PNG, file};
use crate::harness::{PASSWORD, Reply, TestApp, assert_reply};

/// An organisation: its admin's token and id, and a member's profile id,
/// user id and token.
struct Org {
    admin: String,
    admin_id: i64,
    profile: i64,
    member: String,
}

async fn member(app: &TestApp, admin: &str, email: &str, first: &str, last: &str) -> (i64, String) {
    let r = app
        .post(
            "/api/myTeams/",
            Some(admin),
            json!({"email": email, "first_name": first, "last_name": last,
                   "password": PASSWORD, "role": "Member"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let (token, _) = app.login(email, PASSWORD).await;
    let own = app.get("/api/v1/profile", Some(&token)).await;
    assert_eq!(own.status, 200, "{}", own.text);
    (own.body["profile"]["id"].as_i64().unwrap(), token)
}

async fn org(app: &TestApp, prefix: &str) -> Org {
    let (admin_id, admin, _) = app
        .active_user(&format!("{prefix}-admin@example.com"), "Admin")
        .await;
    let (profile, member) = member(
        app,
        &admin,
        &format!("nicola.conn+{prefix}@example.com"),
        "Nicola",
        "Conn",
    )
    .await;
    Org {
        admin,
        admin_id,
        profile,
        member,
    }
}

async fn put_profile(app: &TestApp, token: &str, id: i64, profile: Value) -> Reply {
    app.put(
        &format!("/api/v1/profiles/{id}"),
        Some(token),
        json!({ "profile": profile }),
    )
    .await
}

fn complete() -> Value {
    json!({
        "first_name": "Nicola",
        "last_name": "Conn",
        "postcode": "EC1A 1BB",
        "english_level": "beginner",
        "contact_phone_number": "07515 470386",
        "birth_date": "1985-03-20",
        "start_date": "2020-03-20",
        "bio": "Conculco maxime clamo. Astrum pecunia validus.",
    })
}

fn empty_slot() -> Value {
    json!({"id": null, "signed_id": null, "byte_size": null, "filename": "", "url": null})
}

#[tokio::test]
async fn the_seeds_request_gets_the_seeds_response() {
    let app = TestApp::spawn().await;
    let o = org(&app, "a").await;
    // A new member's profile has their names only.
    let r = app
        .get(&format!("/api/v1/profiles/{}", o.profile), Some(&o.admin))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["profile"]["first_name"], json!("Nicola"));
    assert_eq!(r.body["profile"]["postcode"], Value::Null);
    let r = put_profile(&app, &o.admin, o.profile, complete()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // The seed's request: only licences.
    let r = app
        .client
        .put(app.url(&format!("/api/v1/profiles/{}", o.profile)))
        .header("accept", "application/json")
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {}", o.admin))
        .body(r#"{"profile": {"licenses": ["c", "b", "adr", "hiab"]}}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let etag = r.headers()["etag"].to_str().unwrap().to_string();
    assert!(
        etag.starts_with('"') && etag.ends_with('"'),
        "strong: {etag}"
    );
    let body: Value = r.json().await.unwrap();
    let p = &body["profile"];
    let mut keys: Vec<&str> = p.as_object().unwrap().keys().map(|k| k.as_str()).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "activities",
            "bio",
            "birth_date",
            "child_safeguard_training",
            "compliance_documents",
            "contact_phone_number",
            "cpc",
            "cv",
            "dbs",
            "documents",
            "driving_license",
            "email",
            "enchanced_dbs",
            "english_level",
            "experiences",
            "first_name",
            "id",
            "interviews",
            "last_name",
            "last_sign_in_at",
            "licenses",
            "medical_check",
            "phone_number",
            "postcode",
            "reviews",
            "start_date",
            "tacho"
        ]
    );
    assert_eq!(p["id"], json!(o.profile));
    assert_eq!(p["licenses"], json!(["c", "b", "adr", "hiab"]));
    assert_eq!(
        p["compliance_documents"],
        json!([
            "dbs",
            "tacho",
            "enchanced_dbs",
            "cpc",
            "medical_check",
            "child_safeguard_training"
        ])
    );
    for slot in [
        "child_safeguard_training",
        "cpc",
        "cv",
        "dbs",
        "enchanced_dbs",
        "medical_check",
        "tacho",
    ] {
        assert_eq!(p[slot], empty_slot(), "{slot}");
    }
    for list in [
        "documents",
        "driving_license",
        "experiences",
        "interviews",
        "reviews",
    ] {
        assert_eq!(p[list], json!([]), "{list}");
    }
    assert_eq!(p["email"], json!("nicola.conn+a@example.com"));
    assert_eq!(p["english_level"], json!("beginner"));
    assert_eq!(p["postcode"], json!("EC1A 1BB"));
    assert_eq!(p["contact_phone_number"], json!("07515 470386"));
    assert_eq!(p["birth_date"], json!("1985-03-20"));
    assert_eq!(p["start_date"], json!("2020-03-20"));
    assert_eq!(p["phone_number"], Value::Null);
    assert_eq!(
        p["bio"],
        json!("Conculco maxime clamo. Astrum pecunia validus.")
    );
    // The trail: the licences change, then the details, newest first.
    let activities = p["activities"].as_array().unwrap();
    assert_eq!(activities.len(), 2);
    assert_eq!(activities[0]["action"], json!("update"));
    assert_eq!(
        activities[0]["changes"],
        json!({"licenses": [[], ["c", "b", "adr", "hiab"]]})
    );
    assert_eq!(activities[0]["actor_id"], json!(o.admin_id));
    assert_eq!(
        activities[1]["changes"]["postcode"],
        json!([null, "EC1A 1BB"])
    );
    assert_eq!(
        activities[1]["changes"]["first_name"],
        Value::Null,
        "unchanged fields are not listed"
    );
    let keys: Vec<&String> = activities[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        vec!["id", "action", "changes", "actor_id", "created_at"]
    );
}

#[tokio::test]
async fn the_trail_shows_the_newest_fifty_changes_newest_first() {
    let app = TestApp::spawn().await;
    let o = org(&app, "a").await;
    let r = put_profile(&app, &o.admin, o.profile, complete()).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for i in 1..=51 {
        let r = put_profile(
            &app,
            &o.admin,
            o.profile,
            json!({"bio": format!("bio {i}")}),
        )
        .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let shown = |p: &Value| -> Vec<Value> {
        p["activities"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["changes"]["bio"][1].clone())
            .collect()
    };
    let expected: Vec<Value> = (2..=51).rev().map(|i| json!(format!("bio {i}"))).collect();
    let one = app
        .get(&format!("/api/v1/profiles/{}", o.profile), Some(&o.admin))
        .await;
    assert_eq!(one.status, 200, "{}", one.text);
    assert_eq!(shown(&one.body["profile"]), expected);
    let own = app.get("/api/v1/profile", Some(&o.member)).await;
    assert_eq!(own.status, 200, "{}", own.text);
    assert_eq!(shown(&own.body["profile"]), expected);
    let list = app.get("/api/v1/profiles", Some(&o.admin)).await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(shown(&list.body["profiles"][0]), expected);
}

#[tokio::test]
async fn validation_errors_are_rails_422s_and_change_nothing() {
    let app = TestApp::spawn().await;
    let o = org(&app, "a").await;
    // A new profile lacks the required fields.
    let r = put_profile(&app, &o.admin, o.profile, json!({"licenses": ["b"]})).await;
    assert_reply(
        &r,
        422,
        json!({"errors": {
            "postcode": ["can't be blank"],
            "english_level": ["can't be blank"],
            "contact_phone_number": ["can't be blank"],
        }}),
    );
    assert_eq!(
        put_profile(&app, &o.admin, o.profile, complete())
            .await
            .status,
        200
    );
    let before = app
        .get(&format!("/api/v1/profiles/{}", o.profile), Some(&o.admin))
        .await;
    let r = put_profile(
        &app,
        &o.admin,
        o.profile,
        json!({
            "first_name": "",
            "postcode": "90210",
            "english_level": "expert",
            "contact_phone_number": "call me",
            "birth_date": "20/03/1985",
            "start_date": "2020-02-30",
            "licenses": ["b", "xyz", "c", "boat"],
        }),
    )
    .await;
    assert_reply(
        &r,
        422,
        json!({"errors": {
            "first_name": ["can't be blank"],
            "postcode": ["is not a valid UK postcode"],
            "english_level": ["is not included in the list"],
            "contact_phone_number": ["is not a valid phone number"],
            "birth_date": ["is not a valid date"],
            "start_date": ["is not a valid date"],
            "licenses": ["xyz is not a valid licence", "boat is not a valid licence"],
        }}),
    );
    let r = put_profile(
        &app,
        &o.admin,
        o.profile,
        json!({"birth_date": "2999-01-01", "bio": ["x"]}),
    )
    .await;
    assert_reply(&r, 422, json!({"errors": {"bio": ["is invalid"]}}));
    let r = put_profile(
        &app,
        &o.admin,
        o.profile,
        json!({"birth_date": "2999-01-01"}),
    )
    .await;
    assert_reply(
        &r,
        422,
        json!({"errors": {"birth_date": ["can't be in the future"]}}),
    );
    let r = put_profile(&app, &o.admin, o.profile, json!({"licenses": "b,c"})).await;
    assert_reply(
        &r,
        422,
        json!({"errors": {"licenses": ["b,c is not a valid licence"]}}),
    );
    let r = put_profile(&app, &o.admin, o.profile, json!({"licenses": {"a": 1}})).await;
    assert_reply(&r, 422, json!({"errors": {"licenses": ["must be a list"]}}));
    // Missing `profile`, malformed JSON, another media type.
    let path = format!("/api/v1/profiles/{}", o.profile);
    let r = app
        .put(&path, Some(&o.admin), json!({"first_name": "x"}))
        .await;
    assert_reply(
        &r,
        400,
        json!({"error": "param is missing or the value is empty: profile"}),
    );
    let r = app
        .client
        .put(app.url(&path))
        .header("authorization", format!("Bearer {}", o.admin))
        .header("content-type", "application/json")
        .body("{\"profile\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("parsing"),
        "{body}"
    );
    let r = app
        .client
        .put(app.url(&path))
        .header("authorization", format!("Bearer {}", o.admin))
        .header("content-type", "text/xml")
        .body("<profile/>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    let big = json!({"profile": {"bio": "x".repeat(1024 * 1024 + 1)}});
    let r = app.put(&path, Some(&o.admin), big).await;
    assert_eq!(r.status, 413);
    let after = app.get(&path, Some(&o.admin)).await;
    assert_eq!(before.body, after.body, "nothing changed");
    assert_eq!(before.header("etag"), after.header("etag"));
}

#[tokio::test]
async fn form_encoded_nested_params_work() {
    let app = TestApp::spawn().await;
    let o = org(&app, "a").await;
    let r = app
        .client
        .put(app.url(&format!("/api/v1/profiles/{}", o.profile)))
        .header("authorization", format!("Bearer {}", o.admin))
        .form(&[
            ("profile[first_name]", "Nicola"),
            ("profile[last_name]", "Conn"),
            ("profile[postcode]", "sw1a2aa"),
            ("profile[english_level]", "Native"),
            ("profile[contact_phone_number]", "+44 20 7946 0958"),
            ("profile[licenses][]", "ce"),
            ("profile[licenses][]", "D1E"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["profile"]["postcode"], json!("SW1A 2AA"));
    assert_eq!(body["profile"]["english_level"], json!("native"));
    assert_eq!(body["profile"]["licenses"], json!(["ce", "d1e"]));
}

#[tokio::test]
async fn etags_give_304s_and_stale_writes_get_412() {
    let app = TestApp::spawn().await;
    let o = org(&app, "a").await;
    let path = format!("/api/v1/profiles/{}", o.profile);
    assert_eq!(
        put_profile(&app, &o.admin, o.profile, complete())
            .await
            .status,
        200
    );
    let r = app.get(&path, Some(&o.admin)).await;
    let etag = r.header("etag").unwrap().to_string();
    assert_eq!(
        r.header("cache-control"),
        Some("max-age=0, private, must-revalidate")
    );
    let conditional = |tag: &str, header: &'static str| {
        app.client
            .get(app.url(&path))
            .header("authorization", format!("Bearer {}", o.admin))
            .header(header, tag.to_string())
    };
    let r = conditional(&etag, "if-none-match").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 304);
    assert_eq!(r.headers()["etag"].to_str().unwrap(), etag);
    assert!(r.bytes().await.unwrap().is_empty());
    let r = conditional("\"other\"", "if-none-match")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // A write with the current ETag succeeds and moves it.
    let put = |tag: &str, bio: &str| {
        app.client
            .put(app.url(&path))
            .header("authorization", format!("Bearer {}", o.admin))
            .header("if-match", tag.to_string())
            .json(&json!({"profile": {"bio": bio}}))
            .send()
    };
    let r = put(&etag, "first").await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let newer = r.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(newer, etag);
    // The old ETag is stale now: 412, nothing changes.
    let r = put(&etag, "second").await.unwrap();
    assert_eq!(r.status().as_u16(), 412);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("If-Match"));
    let weak = format!("W/{newer}");
    assert_eq!(put(&weak, "weak").await.unwrap().status().as_u16(), 412);
    let r = app.get(&path, Some(&o.admin)).await;
    assert_eq!(r.body["profile"]["bio"], json!("first"));
    assert_eq!(r.header("etag"), Some(newer.as_str()));
    assert_eq!(put("*", "any").await.unwrap().status().as_u16(), 200);
}

async fn upload(app: &TestApp, token: &str, path: &str, name: &str, bytes: &[u8]) -> Reply {
    let form = Form::new().part("file", file(name, bytes));
    app.send_multipart_bearer(path, token, form).await
}

#[tokio::test]
async fn documents_fill_slots_append_to_lists_and_are_removed() {
    let app = TestApp::spawn().await;
    let o = org(&app, "a").await;
    let base = format!("/api/v1/profiles/{}/documents", o.profile);
    let r = upload(&app, &o.admin, &format!("{base}/dbs"), "dbs.pdf", PDF).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let mut keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "byte_size",
            "checksum",
            "content_type",
            "filename",
            "id",
            "signed_id",
            "url"
        ]
    );
    assert_eq!(r.body["byte_size"], json!(PDF.len()));
    assert_eq!(r.body["content_type"], json!("application/pdf"));
    let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(PDF));
    assert_eq!(r.body["checksum"], json!(md5));
    let first_url = r.body["url"].as_str().unwrap().to_string();
    let (status, headers, bytes) = app.fetch_link(&first_url).await;
    assert_eq!((status, bytes.as_slice()), (200, PDF));
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"dbs.pdf\"")
    );
    assert_eq!(headers["x-content-type-options"], "nosniff");
    // A slot: a new file replaces the old one, whose link dies.
    let r = upload(&app, &o.admin, &format!("{base}/dbs"), "dbs-2024.png", PNG).await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(app.fetch_link(&first_url).await.0, 404);
    // Lists append.
    for name in ["front.png", "back.png"] {
        let r = upload(
            &app,
            &o.admin,
            &format!("{base}/driving_license"),
            name,
            PNG,
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    let p = app
        .get(&format!("/api/v1/profiles/{}", o.profile), Some(&o.admin))
        .await
        .body["profile"]
        .clone();
    assert_eq!(p["dbs"]["filename"], json!("dbs-2024.png"));
    assert_eq!(p["tacho"], empty_slot());
    let licences = p["driving_license"].as_array().unwrap();
    assert_eq!(licences.len(), 2);
    assert_eq!(licences[0]["filename"], json!("front.png"));
    let activities = p["activities"].as_array().unwrap();
    assert_eq!(activities[0]["action"], json!("document_uploaded"));
    assert_eq!(
        activities[0]["changes"],
        json!({"driving_license": [null, "back.png"]})
    );
    assert_eq!(
        activities[2]["changes"],
        json!({"dbs": ["dbs.pdf", "dbs-2024.png"]})
    );
    // Remove one from a list, then empty the slot.
    let front = licences[0]["id"].as_i64().unwrap();
    let r = app
        .delete(
            &format!("{base}/driving_license/{front}"),
            Some(&o.admin),
            None,
        )
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    let r = app
        .delete(
            &format!("{base}/driving_license/{front}"),
            Some(&o.admin),
            None,
        )
        .await;
    assert_reply(&r, 404, json!({"error": "Not found"}));
    let r = app
        .delete(&format!("{base}/dbs"), Some(&o.admin), None)
        .await;
    assert_eq!(r.status, 204);
    let p = app
        .get(&format!("/api/v1/profiles/{}", o.profile), Some(&o.admin))
        .await
        .body["profile"]
        .clone();
    assert_eq!(p["dbs"], empty_slot());
    assert_eq!(p["driving_license"].as_array().unwrap().len(), 1);
    assert_eq!(
        p["activities"][0]["changes"],
        json!({"dbs": ["dbs-2024.png", null]})
    );
    assert_eq!(crate::coach::count_files(&app), 1);
    // Unknown kinds, disguised and missing files.
    let r = upload(&app, &o.admin, &format!("{base}/passport"), "p.pdf", PDF).await;
    assert_reply(&r, 404, json!({"error": "Not found"}));
    assert_eq!(
        app.delete(&format!("{base}/passport"), Some(&o.admin), None)
            .await
            .status,
        404
    );
    let r = upload(
        &app,
        &o.admin,
        &format!("{base}/cv"),
        "cv.pdf",
        b"<?php echo 1; ?>",
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(
        r.body["errors"]["file"][0]
            .as_str()
            .unwrap()
            .starts_with("Upload a valid document")
    );
    let r = upload(&app, &o.admin, &format!("{base}/cv"), "cv.pdf", PNG).await;
    assert_eq!(r.status, 422, "{}", r.text);
    let form = Form::new().text("note", "no file");
    let r = app
        .send_multipart_bearer(&format!("{base}/cv"), &o.admin, form)
        .await;
    assert_reply(&r, 422, json!({"errors": {"file": ["can't be blank"]}}));
    let r = app
        .post(&format!("{base}/cv"), Some(&o.admin), json!({}))
        .await;
    assert_eq!(r.status, 422);
    assert_eq!(
        crate::coach::count_files(&app),
        1,
        "refused files are not kept"
    );
    // The member uploads to their own profile.
    let r = upload(
        &app,
        &o.member,
        "/api/v1/profile/documents/cv",
        "cv.pdf",
        PDF,
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let own = app.get("/api/v1/profile", Some(&o.member)).await;
    assert_eq!(own.body["profile"]["cv"]["filename"], json!("cv.pdf"));
    let r = app
        .delete("/api/v1/profile/documents/cv", Some(&o.member), None)
        .await;
    assert_eq!(r.status, 204);
}

#[tokio::test]
async fn signed_ids_are_tamper_proof_and_scoped() {
    let app = TestApp::spawn().await;
    let a = org(&app, "a").await;
    let b = org(&app, "b").await;
    let r = upload(
        &app,
        &a.admin,
        &format!("/api/v1/profiles/{}/documents/dbs", a.profile),
        "dbs.pdf",
        PDF,
    )
    .await;
    let signed = r.body["signed_id"].as_str().unwrap().to_string();
    assert!(signed.starts_with("eyJfcmFpbHMiOnsiZGF0YSI6"), "{signed}");
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |token: String, id: String| {
        client
            .get(app.url(&format!("/api/v1/blobs/{id}")))
            .header("authorization", format!("Bearer {token}"))
            .send()
    };
    let r = get(a.admin.clone(), signed.clone()).await.unwrap();
    assert_eq!(r.status().as_u16(), 302);
    let location = r.headers()["location"].to_str().unwrap().to_string();
    let (status, _, bytes) = app.fetch_link(&location).await;
    assert_eq!((status, bytes.as_slice()), (200, PDF));
    // The member whose document it is may follow it too.
    assert_eq!(
        get(a.member.clone(), signed.clone())
            .await
            .unwrap()
            .status()
            .as_u16(),
        302
    );
    // Another organisation's admin, tampering, garbage: 404.
    assert_eq!(
        get(b.admin.clone(), signed.clone())
            .await
            .unwrap()
            .status()
            .as_u16(),
        404
    );
    let (payload, sig) = signed.rsplit_once("--").unwrap();
    let forged_payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(r#"{"_rails":{"data":999,"pur":"blob_id"}}"#);
    for bad in [
        format!("{forged_payload}--{sig}"),
        format!("{payload}--{}", "0".repeat(sig.len())),
        format!("{payload}x--{sig}"),
        "nonsense".to_string(),
    ] {
        let r = get(a.admin.clone(), bad.clone()).await.unwrap();
        assert_eq!(r.status().as_u16(), 404, "{bad}");
    }
    let r = client
        .get(app.url(&format!("/api/v1/blobs/{signed}")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
}

#[tokio::test]
async fn lists_filter_and_page() {
    let app = TestApp::spawn().await;
    let o = org(&app, "a").await;
    let (p2, _) = member(&app, &o.admin, "bob@example.com", "Bob", "Baker").await;
    let (p3, _) = member(&app, &o.admin, "cat@example.com", "Cat", "Cole").await;
    let mut fill = complete();
    fill["licenses"] = json!(["c", "b"]);
    assert_eq!(
        put_profile(&app, &o.admin, o.profile, fill.clone())
            .await
            .status,
        200
    );
    fill["first_name"] = json!("Bob");
    fill["last_name"] = json!("Baker");
    fill["english_level"] = json!("native");
    fill["postcode"] = json!("M1 1AE");
    fill["licenses"] = json!(["b"]);
    assert_eq!(put_profile(&app, &o.admin, p2, fill).await.status, 200);
    let r = upload(
        &app,
        &o.admin,
        &format!("/api/v1/profiles/{p2}/documents/dbs"),
        "dbs.pdf",
        PDF,
    )
    .await;
    assert_eq!(r.status, 201);
    let ids = |r: &Reply| -> Vec<i64> {
        r.body["profiles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect()
    };
    let r = app.get("/api/v1/profiles", Some(&o.admin)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(ids(&r), vec![o.profile, p2, p3]);
    assert_eq!(
        r.body["meta"],
        json!({"page": 1, "per_page": 25, "total": 3})
    );
    let cases = [
        ("license=c", vec![o.profile]),
        ("license=B", vec![o.profile, p2]),
        ("english_level=native", vec![p2]),
        ("missing_document=dbs", vec![o.profile, p3]),
        ("missing_document=cv", vec![o.profile, p2, p3]),
        ("q=bak", vec![p2]),
        ("q=m1%201", vec![p2]),
        ("q=cat%40example", vec![p3]),
        ("q=50%25", vec![]),
        ("license=b&english_level=beginner", vec![o.profile]),
    ];
    for (query, expected) in cases {
        let r = app
            .get(&format!("/api/v1/profiles?{query}"), Some(&o.admin))
            .await;
        assert_eq!(r.status, 200, "{query}: {}", r.text);
        assert_eq!(ids(&r), expected, "{query}");
        assert_eq!(r.body["meta"]["total"], json!(expected.len()), "{query}");
    }
    let r = app
        .get("/api/v1/profiles?per_page=1&page=2", Some(&o.admin))
        .await;
    assert_eq!(ids(&r), vec![p2]);
    assert_eq!(
        r.body["meta"],
        json!({"page": 2, "per_page": 1, "total": 3})
    );
    let r = app
        .get("/api/v1/profiles?per_page=1000&page=9", Some(&o.admin))
        .await;
    assert_eq!(ids(&r), Vec::<i64>::new());
    assert_eq!(r.body["meta"]["per_page"], json!(100));
    let r = app
        .get(
            "/api/v1/profiles?license=boat&missing_document=passport",
            Some(&o.admin),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(
        r.body["errors"]["license"][0]
            .as_str()
            .unwrap()
            .starts_with("is not one of")
    );
    assert!(r.body["errors"]["missing_document"].is_array());
}

#[tokio::test]
async fn organisations_and_roles_are_isolated() {
    let app = TestApp::spawn().await;
    let a = org(&app, "a").await;
    let b = org(&app, "b").await;
    assert_eq!(
        put_profile(&app, &a.admin, a.profile, complete())
            .await
            .status,
        200
    );
    let path = format!("/api/v1/profiles/{}", a.profile);
    let before = app.get(&path, Some(&a.admin)).await.body;
    // Another organisation's admin: 404 for every operation, nothing changes.
    assert_reply(
        &app.get(&path, Some(&b.admin)).await,
        404,
        json!({"error": "Not found"}),
    );
    let r = put_profile(&app, &b.admin, a.profile, json!({"bio": "hijacked"})).await;
    assert_eq!(r.status, 404);
    let r = upload(
        &app,
        &b.admin,
        &format!("{path}/documents/dbs"),
        "x.pdf",
        PDF,
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        app.delete(&format!("{path}/documents/dbs"), Some(&b.admin), None)
            .await
            .status,
        404
    );
    let r = app
        .post(
            &format!("{path}/reviews"),
            Some(&b.admin),
            json!({"review": {"rating": 1}}),
        )
        .await;
    assert_eq!(r.status, 404);
    let list = app.get("/api/v1/profiles", Some(&b.admin)).await;
    let ids: Vec<i64> = list.body["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![b.profile], "only their own organisation");
    assert!(
        !list.text.contains("nicola.conn+a@"),
        "no data of organisation A"
    );
    // A member reads and edits only their own profile.
    let r = app.get(&path, Some(&a.member)).await;
    assert_reply(
        &r,
        403,
        json!({"error": "You are not authorized to perform this action."}),
    );
    assert_eq!(
        app.get("/api/v1/profiles", Some(&a.member)).await.status,
        403
    );
    assert_eq!(
        app.get(&format!("/api/v1/profiles/{}", b.profile), Some(&a.member))
            .await
            .status,
        403
    );
    let r = app
        .put(
            "/api/v1/profile",
            Some(&a.member),
            json!({"profile": {"bio": "About me"}}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["profile"]["id"], json!(a.profile));
    // Coaches and admins have no worker profile of their own.
    assert_reply(
        &app.get("/api/v1/profile", Some(&a.admin)).await,
        404,
        json!({"error": "Not found"}),
    );
    let (_, coach, _) = app.active_user("coach@example.com", "Coach").await;
    assert_eq!(app.get(&path, Some(&coach)).await.status, 403);
    // Anonymous and forged callers.
    assert_reply(
        &app.get(&path, None).await,
        401,
        json!({"error": "You need to sign in or sign up before continuing."}),
    );
    let r = app
        .client
        .get(app.url(&path))
        .header("authorization", "Bearer not.a.jwt")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // Staff see every organisation's profiles.
    let (_, staff) = app.staff("staff@example.com").await;
    assert_eq!(app.get(&path, Some(&staff)).await.status, 200);
    let all = app.get("/api/v1/profiles", Some(&staff)).await;
    assert_eq!(all.body["meta"]["total"], json!(2));
    // A's profile changed only through its own member's edit.
    let after = app.get(&path, Some(&a.admin)).await.body;
    assert_eq!(after["profile"]["bio"], json!("About me"));
    assert_eq!(before["profile"]["dbs"], after["profile"]["dbs"]);
    // Unknown paths and methods answer in this dialect.
    assert_reply(
        &app.get("/api/v1/nothing", Some(&a.admin)).await,
        404,
        json!({"error": "Not found"}),
    );
    assert_eq!(
        app.get("/api/v1/profiles/abc", Some(&a.admin)).await.status,
        404
    );
    let r = app.delete(&path, Some(&a.admin), None).await;
    assert_eq!(r.status, 405);
}

#[tokio::test]
async fn experiences_interviews_and_reviews_are_added_and_removed() {
    let app = TestApp::spawn().await;
    let o = org(&app, "a").await;
    let path = format!("/api/v1/profiles/{}", o.profile);
    let r = app
        .post(
            &format!("{path}/experiences"),
            Some(&o.admin),
            json!({"experience": {"company": "Acme Haulage", "role": "HGV driver",
                   "start_date": "2015-01-05", "end_date": "2019-12-20"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let experience = r.body["experience"]["id"].as_i64().unwrap();
    assert_eq!(r.body["experience"]["company"], json!("Acme Haulage"));
    let r = app
        .post(
            &format!("{path}/interviews"),
            Some(&o.admin),
            json!({"interview": {"date": "2020-02-01", "interviewer": "Sam", "outcome": "passed"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .post(
            &format!("{path}/reviews"),
            Some(&o.admin),
            json!({"review": {"rating": 5, "comment": "Excellent"}}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(r.body["review"]["reviewer_id"], json!(o.admin_id));
    // Errors.
    let r = app
        .post(
            &format!("{path}/experiences"),
            Some(&o.admin),
            json!({"experience": {"start_date": "2019-01-01", "end_date": "2018-01-01"}}),
        )
        .await;
    assert_reply(
        &r,
        422,
        json!({"errors": {"company": ["can't be blank"],
                          "end_date": ["must be on or after the start date"]}}),
    );
    let r = app
        .post(
            &format!("{path}/interviews"),
            Some(&o.admin),
            json!({"interview": {"date": "soon", "outcome": "maybe"}}),
        )
        .await;
    assert_reply(
        &r,
        422,
        json!({"errors": {"date": ["is not a valid date"], "outcome": ["is not included in the list"]}}),
    );
    for rating in [json!(0), json!(6), json!("five"), json!(2.5)] {
        let r = app
            .post(
                &format!("{path}/reviews"),
                Some(&o.admin),
                json!({"review": {"rating": rating}}),
            )
            .await;
        assert_reply(
            &r,
            422,
            json!({"errors": {"rating": ["must be an integer from 1 to 5"]}}),
        );
    }
    let r = app
        .post(
            &format!("{path}/reviews"),
            Some(&o.admin),
            json!({"rating": 5}),
        )
        .await;
    assert_eq!(r.status, 400);
    // Members may not add records about themselves.
    let r = app
        .post(
            &format!("{path}/reviews"),
            Some(&o.member),
            json!({"review": {"rating": 5}}),
        )
        .await;
    assert_eq!(r.status, 403);
    let p = app.get(&path, Some(&o.admin)).await.body["profile"].clone();
    assert_eq!(p["experiences"].as_array().unwrap().len(), 1);
    assert_eq!(p["interviews"][0]["outcome"], json!("passed"));
    assert_eq!(p["reviews"][0]["rating"], json!(5));
    assert_eq!(p["activities"][0]["action"], json!("review_added"));
    // Remove.
    let r = app
        .delete(
            &format!("{path}/experiences/{experience}"),
            Some(&o.admin),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    let r = app
        .delete(
            &format!("{path}/experiences/{experience}"),
            Some(&o.admin),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    let p = app.get(&path, Some(&o.admin)).await.body["profile"].clone();
    assert_eq!(p["experiences"], json!([]));
    assert_eq!(p["activities"][0]["action"], json!("experience_removed"));
    assert_eq!(
        p["activities"][0]["changes"]["experiences"][0]["company"],
        json!("Acme Haulage")
    );
}

#[tokio::test]
async fn members_get_profiles_when_made_or_moved_into_the_role() {
    let app = TestApp::spawn().await;
    let (_, admin, _) = app.active_user("admin@example.com", "Admin").await;
    let r = app
        .post(
            "/api/myTeams/",
            Some(&admin),
            json!({"email": "c@example.com", "first_name": "Cy", "last_name": "Coach",
                   "password": PASSWORD, "role": "Coach"}),
        )
        .await;
    let id = r.body["id"].as_i64().unwrap();
    let (coach, _) = app.login("c@example.com", PASSWORD).await;
    assert_eq!(app.get("/api/v1/profile", Some(&coach)).await.status, 404);
    let r = app
        .patch(
            &format!("/api/myTeams/{id}/"),
            Some(&admin),
            json!({"role": "Member"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app.get("/api/v1/profile", Some(&coach)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["profile"]["first_name"], json!("Cy"));
    assert_eq!(r.body["profile"]["last_name"], json!("Coach"));
}

/// An unfiltered list's total is read from `profile_counts` (migration
/// 0010), kept by triggers: it follows every profile made and removed, in
/// each organisation and for staff, and agrees with a filter that matches
/// every profile (which counts rows).
#[tokio::test]
async fn unfiltered_totals_follow_every_profile_made_and_removed() {
    let app = TestApp::spawn().await;
    let a = org(&app, "a").await;
    let b = org(&app, "b").await;
    let (_, staff) = app.staff("staff@example.com").await;
    let totals = || async {
        let mut seen = Vec::new();
        for token in [&a.admin, &b.admin, &staff] {
            let all = app.get("/api/v1/profiles", Some(token)).await;
            assert_eq!(all.status, 200, "{}", all.text);
            let counted = app.get("/api/v1/profiles?q=%40", Some(token)).await;
            assert_eq!(all.body["meta"]["total"], counted.body["meta"]["total"]);
            seen.push(all.body["meta"]["total"].as_i64().unwrap());
        }
        seen
    };
    assert_eq!(totals().await, [1, 1, 2]);
    let mut added = Vec::new();
    for n in 0..2 {
        let r = app
            .post(
                "/api/myTeams/",
                Some(&a.admin),
                json!({"email": format!("w{n}@a.example"), "first_name": "W", "last_name": "A",
                       "password": PASSWORD, "role": "Member"}),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        added.push(r.body["id"].as_i64().unwrap());
    }
    assert_eq!(totals().await, [3, 1, 4]);
    let r = app
        .delete(&format!("/api/myTeams/{}/", added[0]), Some(&a.admin), None)
        .await;
    assert_eq!(r.status, 204, "{}", r.text);
    assert_eq!(totals().await, [2, 1, 3]);
    // A filter that matches nothing still counts (0), not the table.
    let none = app
        .get("/api/v1/profiles?q=nobody-at-all", Some(&a.admin))
        .await;
    assert_eq!(none.body["meta"]["total"], json!(0));
}

#[tokio::test]
async fn concurrent_changes_without_if_match_all_apply() {
    let app = TestApp::spawn().await;
    let o = org(&app, "a").await;
    assert_eq!(
        put_profile(&app, &o.admin, o.profile, complete())
            .await
            .status,
        200
    );
    let path = format!("/api/v1/profiles/{}", o.profile);
    // Ten reviews and two field changes at once: none refused, none lost.
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (client, url, token) = (
            app.client.clone(),
            app.url(&format!("{path}/reviews")),
            o.admin.clone(),
        );
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .header("authorization", format!("Bearer {token}"))
                .json(&json!({"review": {"rating": 1 + i % 5}}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for (field, value) in [("bio", "New bio"), ("postcode", "M1 1AE")] {
        let (client, url, token) = (app.client.clone(), app.url(&path), o.admin.clone());
        tasks.push(tokio::spawn(async move {
            client
                .put(url)
                .header("authorization", format!("Bearer {token}"))
                .json(&json!({"profile": { field: value }}))
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        let status = t.await.unwrap();
        assert!(status == 200 || status == 201, "{status}");
    }
    let p = app.get(&path, Some(&o.admin)).await.body["profile"].clone();
    assert_eq!(p["reviews"].as_array().unwrap().len(), 10);
    assert_eq!(p["bio"], json!("New bio"), "neither field change was lost");
    assert_eq!(p["postcode"], json!("M1 1AE"));
    // 1 (details) + 10 reviews + 2 changes.
    assert_eq!(p["activities"].as_array().unwrap().len(), 13);
}
