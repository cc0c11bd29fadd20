//! Coach self-service (seed 000): the coach object, JSON and multipart
//! updates, certifications, education, vetting, lookups, staff review.

use reqwest::Method;
use reqwest::multipart::{Form, Part};
use serde_json::{Value, json};

use crate::harness::{TestApp, assert_reply};

/// A valid 1x1 PNG.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1F, 0x15, 0xC4,
    0x89, 0x00, 0x00, 0x00, 0x0D, 0x49, 0x44, 0x41, 0x54, 0x78, 0xDA, 0x63, 0x64, 0x60, 0xF8, 0x5F,
    0x0F, 0x00, 0x02, 0x87, 0x01, 0x80, 0xEB, 0x47, 0xBA, 0x92, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45,
    0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82,
];

pub const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n";

/// A PNG whose header declares `side` x `side` pixels (a decompression bomb
/// in a few bytes).
pub fn png_declaring(side: u32) -> Vec<u8> {
    let mut png = PNG.to_vec();
    png[16..20].copy_from_slice(&side.to_be_bytes());
    png[20..24].copy_from_slice(&side.to_be_bytes());
    png
}

pub fn file(name: &str, bytes: &[u8]) -> Part {
    Part::bytes(bytes.to_vec()).file_name(name.to_string())
}

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

async fn coach(app: &TestApp, email: &str) -> (i64, String) {
    let (id, access, _) = app.active_user(email, "Coach").await;
    (id, access)
}

#[tokio::test]
async fn the_coach_object_has_the_seeds_keys_and_nesting() {
    let app = TestApp::spawn().await;
    let (id, access) = coach(&app, "coach@example.com").await;
    let r = app.get("/auth/coach/", Some(&access)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let b = &r.body;
    assert_eq!(
        keys(b),
        sorted(&[
            "pk",
            "username",
            "email",
            "dob",
            "area",
            "approved",
            "group",
            "certification",
            "education",
            "coach_profile",
            "vetting_status",
            "avatar",
            "coachAlias"
        ])
    );
    assert_eq!(
        keys(&b["coach_profile"]),
        sorted(&[
            "user",
            "introduction",
            "website",
            "instagramId",
            "twitterId",
            "about_you",
            "business_logo",
            "business_name",
            "coach_since",
            "coach_location",
            "coach_experience",
            "mother_tongue",
            "coaching_language"
        ])
    );
    assert_eq!(
        keys(&b["vetting_status"]),
        sorted(&["id", "status", "created_at", "last_update"])
    );
    assert_eq!(b["pk"], json!(id));
    assert_eq!(b["username"], json!("coach@example.com"));
    assert_eq!(b["email"], json!("coach@example.com"));
    assert_eq!(b["approved"], json!(false));
    assert_eq!(
        b["group"],
        json!({"id": 2, "name": "Coach", "permissions": []})
    );
    assert_eq!(b["vetting_status"]["status"], json!("PD"));
    let date = b["vetting_status"]["created_at"].as_str().unwrap();
    assert_eq!(date.len(), 10, "YYYY-MM-DD: {date}");
    assert_eq!(b["coach_profile"]["user"], json!(id));
    assert_eq!(b["avatar"], Value::Null);
    assert_eq!(b["dob"], Value::Null);
    assert_eq!(b["area"], json!([]));
    assert_eq!(b["certification"], json!([]));
    assert_eq!(b["education"], json!([]));
    // The harness signs everyone up as "Test User".
    assert_eq!(b["coachAlias"], json!("test-user"));
    let (_, second) = coach(&app, "coach2@example.com").await;
    let r = app.get("/auth/coach", Some(&second)).await;
    assert_eq!(r.body["coachAlias"], json!("test-user-2"));
}

#[tokio::test]
async fn only_coaches_use_the_coach_surface() {
    let app = TestApp::spawn().await;
    let (_, admin, _) = app.active_user("admin@example.com", "Admin").await;
    for (method, path) in [
        (Method::GET, "/auth/coach/"),
        (Method::PATCH, "/auth/coach/"),
        (Method::PUT, "/auth/coach/"),
        (Method::POST, "/auth/coach/certification/"),
        (Method::POST, "/auth/coach/education/"),
        (Method::POST, "/auth/coach/vetting/"),
        (Method::DELETE, "/auth/coach/certification/1/"),
        (Method::DELETE, "/auth/coach/education/1/"),
    ] {
        let body = (method != Method::GET && method != Method::DELETE)
            .then(|| json!({"user_id": 1, "name": "x", "school_name": "x"}));
        let r = app
            .send(method.clone(), path, Some(&admin), body.clone())
            .await;
        assert_reply(
            &r,
            403,
            json!({"detail": "You do not have permission to perform this action."}),
        );
        let r = app.send(method, path, None, body).await;
        assert_eq!(r.status, 401, "{path}: {}", r.text);
    }
    // A member made by the admin is refused too.
    let r = app
        .post(
            "/api/myTeams/",
            Some(&admin),
            json!({"email": "m@example.com", "first_name": "M", "last_name": "M",
                   "password": crate::harness::PASSWORD, "role": "Member"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let (member, _) = app.login("m@example.com", crate::harness::PASSWORD).await;
    assert_eq!(app.get("/auth/coach/", Some(&member)).await.status, 403);
}

#[tokio::test]
async fn json_updates_change_the_profile_and_put_and_patch_take_any_subset() {
    let app = TestApp::spawn().await;
    let (_, access) = coach(&app, "coach@example.com").await;
    let languages = app.get("/auth/languages/", Some(&access)).await.body;
    let english = languages
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["code"] == "en")
        .unwrap()["id"]
        .clone();
    let r = app
        .patch(
            "/auth/coach/",
            Some(&access),
            json!({
                "dob": "1985-04-12",
                "area_list": [3, 1, 3],
                "website": "https://coach.example.com/about",
                "instagramId": "coach_insta",
                "twitterId": "coach_tw",
                "introduction": "Hello",
                "about_you": "Ten years of coaching.",
                "mother_tongue": english,
                "coaching_language": english,
                "business_name": "Coach Ltd",
                "coach_location": "gb",
                "coach_since": "2015-01-01",
                "coach_experience": "10 years",
                "coachAlias": "the-coach",
            }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let b = &r.body;
    assert_eq!(b["dob"], json!("1985-04-12"));
    let area_ids: Vec<i64> = b["area"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert_eq!(area_ids, vec![1, 3]);
    assert_eq!(
        keys(&b["area"][0]),
        sorted(&["id", "alias", "name", "category"])
    );
    let p = &b["coach_profile"];
    assert_eq!(p["website"], json!("https://coach.example.com/about"));
    assert_eq!(p["instagramId"], json!("coach_insta"));
    assert_eq!(p["coach_location"], json!("GB"));
    assert_eq!(p["coach_since"], json!("2015-01-01"));
    assert_eq!(p["mother_tongue"], english);
    assert_eq!(b["coachAlias"], json!("the-coach"));
    // PUT with one field changes only that field.
    let r = app
        .put(
            "/auth/coach/",
            Some(&access),
            json!({"business_name": "New Name"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["coach_profile"]["business_name"], json!("New Name"));
    assert_eq!(r.body["coach_profile"]["instagramId"], json!("coach_insta"));
    // Null clears nullable fields; an empty list clears the areas.
    let r = app
        .patch(
            "/auth/coach/",
            Some(&access),
            json!({"dob": null, "coach_location": null, "area_list": [], "website": ""}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["dob"], Value::Null);
    assert_eq!(r.body["coach_profile"]["coach_location"], Value::Null);
    assert_eq!(r.body["coach_profile"]["website"], json!(""));
    assert_eq!(r.body["area"], json!([]));
    let again = app.get("/auth/coach/", Some(&access)).await;
    assert_eq!(again.body["coach_profile"], r.body["coach_profile"]);
}

#[tokio::test]
async fn invalid_updates_name_every_field_and_change_nothing() {
    let app = TestApp::spawn().await;
    let (_, other) = coach(&app, "other@example.com").await;
    let r = app
        .patch("/auth/coach/", Some(&other), json!({"coachAlias": "taken"}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (_, access) = coach(&app, "coach@example.com").await;
    let before = app.get("/auth/coach/", Some(&access)).await.body;
    let r = app
        .patch(
            "/auth/coach/",
            Some(&access),
            json!({
                "dob": "12/04/1985",
                "coach_since": "2999-01-01",
                "area_list": "1",
                "website": "not a url",
                "mother_tongue": "english",
                "coaching_language": 99999,
                "coach_location": "ZZ",
                "avatar": "http://example.com/me.png",
                "introduction": ["a"],
                "business_name": "x".repeat(256),
            }),
        )
        .await;
    assert_reply(
        &r,
        400,
        json!({
            "dob": ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."],
            "area_list": ["Expected a list of items but got type \"str\"."],
            "avatar": ["The submitted data was not a file. Check the encoding type on the form."],
            "introduction": ["Not a valid string."],
            "website": ["Enter a valid URL."],
            "business_name": ["Ensure this field has no more than 255 characters."],
            "mother_tongue": ["Incorrect type. Expected pk value, received str."],
            "coach_since": ["The date cannot be in the future."],
        }),
    );
    // Reference checks run in the domain, after the shapes are right.
    let r = app
        .patch(
            "/auth/coach/",
            Some(&access),
            json!({"area_list": [1, 9999], "coaching_language": 99999,
                   "coach_location": "ZZ", "coachAlias": "taken", "introduction": "changed"}),
        )
        .await;
    assert_reply(
        &r,
        400,
        json!({
            "area_list": ["Invalid pk \"9999\" - object does not exist."],
            "coaching_language": ["Invalid pk \"99999\" - object does not exist."],
            "coach_location": ["\"ZZ\" is not a valid choice."],
            "coachAlias": ["coach profile with this coachAlias already exists."],
        }),
    );
    let r = app
        .patch(
            "/auth/coach/",
            Some(&access),
            json!({"area_list": [1, "x"]}),
        )
        .await;
    assert_reply(
        &r,
        400,
        json!({"area_list": ["Incorrect type. Expected pk value, received str."]}),
    );
    let r = app
        .patch(
            "/auth/coach/",
            Some(&access),
            json!({"coachAlias": "no spaces"}),
        )
        .await;
    assert_eq!(r.status, 400);
    assert!(r.body["coachAlias"][0].as_str().unwrap().contains("slug"));
    let after = app.get("/auth/coach/", Some(&access)).await.body;
    assert_eq!(before, after, "a refused update changes nothing");
    // Malformed and non-object bodies.
    let r = app
        .send(Method::PATCH, "/auth/coach/", Some(&access), None)
        .await;
    assert_eq!(r.status, 200, "an empty PATCH is a no-op: {}", r.text);
    let req = app
        .client
        .patch(app.url("/auth/coach/"))
        .header("authorization", format!("JWT {access}"))
        .header("content-type", "application/json")
        .body("{\"dob\": ");
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let r = app
        .patch("/auth/coach/", Some(&access), json!([1, 2]))
        .await;
    assert_reply(
        &r,
        400,
        json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
    );
}

#[tokio::test]
async fn multipart_updates_take_files_and_repeated_or_comma_separated_areas() {
    let app = TestApp::spawn().await;
    let (id, access) = coach(&app, "coach@example.com").await;
    let form = Form::new()
        .text("area_list", "2")
        .text("area_list", "4")
        .text("introduction", "From a form")
        .text("coach_location", "FR")
        .part("avatar", file("me.png", PNG))
        .part("business_logo", file("logo.png", PNG));
    let r = app
        .multipart(Method::PATCH, "/auth/coach/", Some(&access), form)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let ids: Vec<i64> = r.body["area"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![2, 4]);
    assert_eq!(
        r.body["coach_profile"]["introduction"],
        json!("From a form")
    );
    let avatar = r.body["avatar"].as_str().unwrap().to_string();
    assert!(avatar.starts_with("http://testserver/files/"), "{avatar}");
    assert!(avatar.ends_with("/me.png"), "{avatar}");
    // The link works without credentials and serves the bytes safely.
    let (status, headers, bytes) = app.fetch_link(&avatar).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, PNG);
    assert_eq!(headers["content-type"], "image/png");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(
        headers["content-security-policy"],
        "default-src 'none'; sandbox"
    );
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("inline; filename=\"me.png\"")
    );
    let logo = r.body["coach_profile"]["business_logo"].as_str().unwrap();
    assert_eq!(app.fetch_link(logo).await.0, 200);
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM blobs").await,
        2,
        "one row per stored file"
    );
    // One comma-separated value works too; replacing the avatar deletes
    // the old file once the change commits.
    let form = Form::new()
        .text("area_list", "1,5")
        .part("avatar", file("new.png", PNG));
    let r = app
        .multipart(Method::PUT, "/auth/coach/", Some(&access), form)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["area"][1]["id"], json!(5));
    assert_eq!(app.fetch_link(&avatar).await.0, 404, "the old file is gone");
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM blobs").await, 2);
    assert_eq!(count_files(&app), 2);
    // An empty value clears the avatar.
    let form = Form::new().text("avatar", "");
    let r = app
        .multipart(Method::PATCH, "/auth/coach/", Some(&access), form)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["avatar"], Value::Null);
    assert_eq!(count_files(&app), 1);
    assert_eq!(r.body["pk"], json!(id));
}

/// Files in the data directory's file store.
pub fn count_files(app: &TestApp) -> usize {
    let root = app.dir.join("files");
    let Ok(shards) = std::fs::read_dir(&root) else {
        return 0;
    };
    shards
        .filter_map(|s| s.ok())
        .filter(|s| s.path().is_dir())
        .map(|s| std::fs::read_dir(s.path()).unwrap().count())
        .sum()
}

#[tokio::test]
async fn disguised_and_oversize_uploads_are_refused_and_nothing_is_stored() {
    let app = TestApp::spawn_with(|c| c.max_upload_bytes = 64 * 1024).await;
    let (_, access) = coach(&app, "coach@example.com").await;
    let not_image =
        "Upload a valid image. The file you uploaded was either not an image or a corrupted image.";
    let cases: Vec<(&str, Vec<u8>, String)> = vec![
        ("shell.png", b"<?php system($_GET['c']); ?>".to_vec(), not_image.into()),
        (
            "logo.png",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec(),
            not_image.into(),
        ),
        ("doc.png", PDF.to_vec(), not_image.into()),
        (
            "me.php",
            PNG.to_vec(),
            "The file name ends in .php but the file is image/png; rename it or upload the right file."
                .into(),
        ),
        (
            "bomb.png",
            png_declaring(100_000),
            "The image is 100000x100000 pixels; at most 10000x10000 and 40000000 pixels in all are accepted."
                .into(),
        ),
        ("empty.png", Vec::new(), "The submitted file is empty.".into()),
    ];
    for (name, bytes, message) in cases {
        let form = Form::new()
            .text("introduction", "should not be saved")
            .part("avatar", file(name, &bytes));
        let r = app
            .multipart(Method::PATCH, "/auth/coach/", Some(&access), form)
            .await;
        assert_reply(&r, 400, json!({"avatar": [message]}));
    }
    // Larger than the upload limit: 413 before anything is stored.
    let big = vec![0u8; 64 * 1024 + 1];
    let form = Form::new().part("avatar", file("big.png", &big));
    let r = app
        .multipart(Method::PATCH, "/auth/coach/", Some(&access), form)
        .await;
    assert_reply(&r, 413, json!({"detail": "Request body is too large."}));
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM blobs").await, 0);
    assert_eq!(count_files(&app), 0);
    let me = app.get("/auth/coach/", Some(&access)).await;
    assert_eq!(me.body["coach_profile"]["introduction"], json!(""));
    // A valid file with an invalid other field: the file is not kept.
    let form = Form::new()
        .text("coach_location", "ZZ")
        .part("avatar", file("me.png", PNG));
    let r = app
        .multipart(Method::PATCH, "/auth/coach/", Some(&access), form)
        .await;
    assert_reply(
        &r,
        400,
        json!({"coach_location": ["\"ZZ\" is not a valid choice."]}),
    );
    assert_eq!(app.scalar_i64("SELECT COUNT(*) FROM blobs").await, 0);
    assert_eq!(count_files(&app), 0, "the staged file was removed");
}

#[tokio::test]
async fn certifications_are_created_updated_and_deleted_by_their_owner_only() {
    let app = TestApp::spawn().await;
    let (id, access) = coach(&app, "coach@example.com").await;
    let (other_id, other) = coach(&app, "other@example.com").await;
    let r = app
        .post(
            "/auth/coach/certification/",
            Some(&access),
            json!({"user_id": id, "name": "ICF ACC", "issue_institution": "ICF",
                   "issue_date": "2020-06-01"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        keys(&r.body),
        sorted(&[
            "id",
            "user_id",
            "name",
            "issue_institution",
            "issue_date",
            "attachment"
        ])
    );
    assert_eq!(r.body["attachment"], Value::Null);
    let cert = r.body["id"].as_i64().unwrap();
    // Update with a PDF attachment, as multipart.
    let form = Form::new()
        .text("id", cert.to_string())
        .text("user_id", id.to_string())
        .text("name", "ICF PCC")
        .part("attachment", file("certificate.pdf", PDF));
    let r = app
        .multipart(
            Method::POST,
            "/auth/coach/certification/",
            Some(&access),
            form,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["name"], json!("ICF PCC"));
    assert_eq!(r.body["issue_institution"], json!("ICF"));
    let link = r.body["attachment"].as_str().unwrap().to_string();
    let (status, headers, bytes) = app.fetch_link(&link).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, PDF);
    assert_eq!(headers["content-type"], "application/pdf");
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment; filename=\"certificate.pdf\"")
    );
    // The coach object lists it.
    let me = app.get("/auth/coach/", Some(&access)).await;
    assert_eq!(me.body["certification"][0]["id"], json!(cert));
    let listed = me.body["certification"][0]["attachment"].as_str().unwrap();
    assert!(listed.ends_with("/certificate.pdf"), "{listed}");
    assert_eq!(app.fetch_link(listed).await.0, 200);
    // Someone else's user_id is refused; someone else's certification is
    // not found; nothing changes.
    let r = app
        .post(
            "/auth/coach/certification/",
            Some(&other),
            json!({"user_id": id, "name": "Forged"}),
        )
        .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = app
        .post(
            "/auth/coach/certification/",
            Some(&other),
            json!({"id": cert, "user_id": other_id, "name": "Stolen"}),
        )
        .await;
    assert_reply(&r, 404, json!({"detail": "Not found."}));
    let r = app
        .delete(
            &format!("/auth/coach/certification/{cert}/"),
            Some(&other),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    let me = app.get("/auth/coach/", Some(&access)).await;
    assert_eq!(me.body["certification"][0]["name"], json!("ICF PCC"));
    // Errors: no name on create, bad date, wrong types, a disguised file.
    let r = app
        .post(
            "/auth/coach/certification/",
            Some(&access),
            json!({"user_id": "me", "issue_date": "June 2020"}),
        )
        .await;
    assert_reply(
        &r,
        400,
        json!({
            "user_id": ["A valid integer is required."],
            "name": ["This field is required."],
            "issue_date": ["Date has wrong format. Use one of these formats instead: YYYY-MM-DD."],
        }),
    );
    let r = app
        .post(
            "/auth/coach/certification/",
            Some(&access),
            json!({"name": "x"}),
        )
        .await;
    assert_reply(&r, 400, json!({"user_id": ["This field is required."]}));
    let form = Form::new()
        .text("user_id", id.to_string())
        .text("name", "x")
        .part("attachment", file("cert.pdf", PNG));
    let r = app
        .multipart(
            Method::POST,
            "/auth/coach/certification/",
            Some(&access),
            form,
        )
        .await;
    assert_reply(
        &r,
        400,
        json!({"attachment": ["The file name ends in .pdf but the file is image/png; rename it or upload the right file."]}),
    );
    // Delete: 204, then 404; the attachment's file goes with it.
    let r = app
        .delete(
            &format!("/auth/coach/certification/{cert}/"),
            Some(&access),
            None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert_eq!(app.fetch_link(&link).await.0, 404);
    assert_eq!(crate::coach::count_files(&app), 0);
    let r = app
        .delete(
            &format!("/auth/coach/certification/{cert}/"),
            Some(&access),
            None,
        )
        .await;
    assert_eq!(r.status, 404);
    let r = app
        .delete("/auth/coach/certification/abc/", Some(&access), None)
        .await;
    assert_eq!(r.status, 404);
}

#[tokio::test]
async fn education_is_created_updated_and_deleted_by_its_owner_only() {
    let app = TestApp::spawn().await;
    let (id, access) = coach(&app, "coach@example.com").await;
    let (other_id, other) = coach(&app, "other@example.com").await;
    let r = app
        .post(
            "/auth/coach/education/",
            Some(&access),
            json!({"user_id": id, "school_name": "LSE", "degree": "MSc",
                   "start_date": "2005-09-01", "end_date": "2006-07-01"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert_eq!(
        keys(&r.body),
        sorted(&[
            "id",
            "user_id",
            "school_name",
            "degree",
            "start_date",
            "end_date"
        ])
    );
    let edu = r.body["id"].as_i64().unwrap();
    let r = app
        .post(
            "/auth/coach/education/",
            Some(&access),
            json!({"id": edu, "user_id": id, "degree": "MBA"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["degree"], json!("MBA"));
    assert_eq!(r.body["school_name"], json!("LSE"));
    let r = app
        .post(
            "/auth/coach/education/",
            Some(&access),
            json!({"id": edu, "user_id": id, "end_date": "2001-01-01"}),
        )
        .await;
    assert_reply(
        &r,
        400,
        json!({"end_date": ["The end date cannot be before the start date."]}),
    );
    let r = app
        .post(
            "/auth/coach/education/",
            Some(&other),
            json!({"user_id": id, "school_name": "x"}),
        )
        .await;
    assert_eq!(r.status, 403);
    let r = app
        .post(
            "/auth/coach/education/",
            Some(&other),
            json!({"id": edu, "user_id": other_id, "school_name": "x"}),
        )
        .await;
    assert_eq!(r.status, 404);
    let me = app.get("/auth/coach/", Some(&access)).await;
    assert_eq!(me.body["education"][0]["degree"], json!("MBA"));
    assert_eq!(me.body["education"][0]["end_date"], json!("2006-07-01"));
    assert_eq!(
        app.delete(&format!("/auth/coach/education/{edu}/"), Some(&other), None)
            .await
            .status,
        404
    );
    assert_eq!(
        app.delete(&format!("/auth/coach/education/{edu}"), Some(&access), None)
            .await
            .status,
        204
    );
    assert_eq!(
        app.delete(
            &format!("/auth/coach/education/{edu}/"),
            Some(&access),
            None
        )
        .await
        .status,
        404
    );
}

#[tokio::test]
async fn vetting_moves_through_every_transition_with_emails_and_history() {
    let app = TestApp::spawn().await;
    let (coach_id, access) = coach(&app, "coach@example.com").await;
    let (staff_id, staff) = app.staff("staff@example.com").await;
    let (_, admin, _) = app.active_user("admin@example.com", "Admin").await;
    let vetting = |r: &crate::harness::Reply| r.body["status"].as_str().unwrap().to_string();
    let decide = |body: Value| {
        let path = format!("/api/admin/coaches/{coach_id}/vetting/");
        let staff = staff.clone();
        let app = &app;
        async move { app.post(&path, Some(&staff), body).await }
    };
    // Staff cannot approve a profile that was never submitted.
    let r = decide(json!({"status": "AP"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["detail"].as_str().unwrap().contains("under review"));
    let r = decide(json!({"status": "PD", "reason": "x"})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    // Submit: PD -> RE; again: no-op.
    let r = app
        .post("/auth/coach/vetting/", Some(&access), json!({}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        keys(&r.body),
        sorted(&["id", "status", "created_at", "last_update"])
    );
    assert_eq!(vetting(&r), "RE");
    let r = app
        .send(Method::POST, "/auth/coach/vetting/", Some(&access), None)
        .await;
    assert_eq!((r.status, vetting(&r)), (200, "RE".to_string()));
    // The staff queue shows it; coaches and admins may not look.
    let r = app
        .get("/api/admin/coaches/?vetting_status=RE", Some(&staff))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["count"], json!(1));
    assert_eq!(r.body["results"][0]["pk"], json!(coach_id));
    assert_eq!(
        r.body["results"][0]["vetting_status"]["status"],
        json!("RE")
    );
    let r = app
        .get("/api/admin/coaches/?vetting_status=AP", Some(&staff))
        .await;
    assert_eq!(r.body["count"], json!(0));
    let r = app
        .get("/api/admin/coaches/?vetting_status=XX", Some(&staff))
        .await;
    assert_reply(
        &r,
        400,
        json!({"vetting_status": ["Select a valid choice. XX is not one of the available choices."]}),
    );
    for token in [&access, &admin] {
        let r = app.get("/api/admin/coaches/", Some(token)).await;
        assert_eq!(r.status, 403);
        let r = app
            .post(
                &format!("/api/admin/coaches/{coach_id}/vetting/"),
                Some(token),
                json!({"status": "AP"}),
            )
            .await;
        assert_eq!(r.status, 403);
    }
    assert_eq!(app.get("/api/admin/coaches/", None).await.status, 401);
    // Bad decisions.
    let r = decide(json!({"status": "RE"})).await;
    assert_reply(
        &r,
        400,
        json!({"status": ["\"RE\" is not a valid choice."]}),
    );
    let r = decide(json!({"status": "PD"})).await;
    assert_reply(
        &r,
        400,
        json!({"reason": ["A reason is required when sending a profile back."]}),
    );
    let r = decide(json!({})).await;
    assert_reply(&r, 400, json!({"status": ["This field is required."]}));
    // Send back with a reason: RE -> PD, the coach is told why.
    let r = decide(json!({"status": "PD", "reason": "Please add a certification."})).await;
    assert_eq!((r.status, vetting(&r)), (200, "PD".to_string()));
    let mails = app.wait_for_mails("coach@example.com", 2).await;
    assert!(mails[1].contains("needs changes"), "{}", mails[1]);
    assert!(mails[1].contains("Please add a certification."));
    // Resubmit and approve: approved becomes true, the coach is told.
    app.post("/auth/coach/vetting/", Some(&access), json!({}))
        .await;
    let r = decide(json!({"status": "AP"})).await;
    assert_eq!((r.status, vetting(&r)), (200, "AP".to_string()));
    let mails = app.wait_for_mails("coach@example.com", 3).await;
    assert!(mails[2].contains("approved"), "{}", mails[2]);
    let me = app.get("/auth/coach/", Some(&access)).await;
    assert_eq!(me.body["approved"], json!(true));
    assert_eq!(me.body["vetting_status"]["status"], json!("AP"));
    // Approved: submitting and approving again are refused.
    let r = app
        .post("/auth/coach/vetting/", Some(&access), json!({}))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap()
            .contains("already approved")
    );
    let r = decide(json!({"status": "AP"})).await;
    assert_reply(
        &r,
        400,
        json!({"detail": "This coach is already approved."}),
    );
    // Staff may withdraw an approval with a reason.
    let r = decide(json!({"status": "PD", "reason": "Certificate expired."})).await;
    assert_eq!((r.status, vetting(&r)), (200, "PD".to_string()));
    let me = app.get("/auth/coach/", Some(&access)).await;
    assert_eq!(me.body["approved"], json!(false));
    // Every transition is recorded with who and when.
    let r = app
        .get(
            &format!("/api/admin/coaches/{coach_id}/vetting/"),
            Some(&staff),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let moves: Vec<(String, String, i64)> = r
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["from_status"].as_str().unwrap().to_string(),
                e["to_status"].as_str().unwrap().to_string(),
                e["actor_id"].as_i64().unwrap(),
            )
        })
        .collect();
    let s = |a: &str| a.to_string();
    assert_eq!(
        moves,
        vec![
            (s("PD"), s("RE"), coach_id),
            (s("RE"), s("PD"), staff_id),
            (s("PD"), s("RE"), coach_id),
            (s("RE"), s("AP"), staff_id),
            (s("AP"), s("PD"), staff_id),
        ]
    );
    assert_eq!(r.body[1]["reason"], json!("Please add a certification."));
    // Staff see one coach; an admin's id or an unknown id is not a coach.
    let r = app
        .get(&format!("/api/admin/coaches/{coach_id}/"), Some(&staff))
        .await;
    assert_eq!(r.body["pk"], json!(coach_id));
    for path in [
        "/api/admin/coaches/99999/vetting/",
        "/api/admin/coaches/abc/vetting/",
    ] {
        let r = app.post(path, Some(&staff), json!({"status": "AP"})).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
    }
}

#[tokio::test]
async fn the_staff_list_pages_every_coach_with_what_each_shows() {
    let app = TestApp::spawn().await;
    let (_, staff) = app.staff("staff@example.com").await;
    let mut coaches = Vec::new();
    for i in 0..12 {
        coaches.push(coach(&app, &format!("c{i}@example.com")).await);
    }
    // The second coach has areas and a degree; the others have none.
    let (id, access) = &coaches[1];
    let r = app
        .patch("/auth/coach/", Some(access), json!({"area_list": [3, 1]}))
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = app
        .post(
            "/auth/coach/education/",
            Some(access),
            json!({"user_id": id, "school_name": "INSEAD", "degree": "MBA"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app.get("/api/admin/coaches/", Some(&staff)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["count"], json!(12));
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 10);
    assert_eq!(results[1]["pk"], json!(id));
    let areas: Vec<&Value> = results[1]["area"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["id"])
        .collect();
    assert_eq!(areas, [&json!(1), &json!(3)]);
    assert_eq!(results[1]["education"][0]["school_name"], json!("INSEAD"));
    for other in [&results[0], &results[2]] {
        assert_eq!(other["area"], json!([]));
        assert_eq!(other["education"], json!([]));
    }
    let next = r.body["next"].as_str().unwrap();
    assert!(next.ends_with("/api/admin/coaches/?page=2"), "{next}");
    let r = app.get("/api/admin/coaches/?page=2", Some(&staff)).await;
    assert_eq!(r.body["results"].as_array().unwrap().len(), 2);
    let r = app.get("/api/admin/coaches/?page=3", Some(&staff)).await;
    assert_reply(&r, 404, json!({"detail": "Invalid page."}));
}

#[tokio::test]
async fn lookups_serve_the_reference_data_to_signed_in_users() {
    let app = TestApp::spawn().await;
    let (_, _, _) = app.active_user("admin@example.com", "Admin").await;
    let (_, access) = coach(&app, "coach@example.com").await;
    let areas = app.get("/auth/areas/", Some(&access)).await;
    assert_eq!(areas.status, 200);
    let areas = areas.body.as_array().unwrap().clone();
    assert!(areas.len() >= 40, "{}", areas.len());
    assert_eq!(
        keys(&areas[0]),
        sorted(&["id", "alias", "name", "category"])
    );
    let categories = app.get("/auth/categories/", Some(&access)).await.body;
    let categories = categories.as_array().unwrap();
    assert_eq!(keys(&categories[0]), sorted(&["id", "name"]));
    // Every area's category exists.
    for a in &areas {
        assert!(categories.iter().any(|c| c["id"] == a["category"]), "{a}");
    }
    let languages = app.get("/auth/languages", Some(&access)).await.body;
    let languages = languages.as_array().unwrap();
    assert_eq!(languages.len(), 184, "ISO 639-1");
    assert!(
        languages
            .iter()
            .any(|l| l["code"] == "fr" && l["name"] == "French")
    );
    let countries = app.get("/auth/countries/", Some(&access)).await.body;
    let countries = countries.as_array().unwrap();
    assert_eq!(countries.len(), 249, "ISO 3166-1");
    assert!(
        countries
            .iter()
            .any(|c| c == &json!({"code": "GB", "name": "United Kingdom"}))
    );
    for path in [
        "/auth/areas/",
        "/auth/categories/",
        "/auth/languages/",
        "/auth/countries/",
    ] {
        assert_eq!(app.get(path, None).await.status, 401, "{path}");
    }
}

#[tokio::test]
async fn a_coach_made_by_an_admin_or_by_a_role_change_has_a_profile() {
    let app = TestApp::spawn().await;
    let (_, admin, _) = app.active_user("admin@example.com", "Admin").await;
    let r = app
        .post(
            "/api/myTeams/",
            Some(&admin),
            json!({"email": "jane@example.com", "first_name": "Jane", "last_name": "Doe",
                   "password": crate::harness::PASSWORD, "role": "Coach"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let (jane, _) = app
        .login("jane@example.com", crate::harness::PASSWORD)
        .await;
    let me = app.get("/auth/coach/", Some(&jane)).await;
    assert_eq!(me.body["coachAlias"], json!("jane-doe"));
    let r = app
        .post(
            "/api/myTeams/",
            Some(&admin),
            json!({"email": "john@example.com", "first_name": "Jane", "last_name": "Doe",
                   "password": crate::harness::PASSWORD, "role": "Member"}),
        )
        .await;
    let john_id = r.body["id"].as_i64().unwrap();
    let r = app
        .patch(
            &format!("/api/myTeams/{john_id}/"),
            Some(&admin),
            json!({"role": "Coach"}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let (john, _) = app
        .login("john@example.com", crate::harness::PASSWORD)
        .await;
    let me = app.get("/auth/coach/", Some(&john)).await;
    assert_eq!(me.body["coachAlias"], json!("jane-doe-2"));
    assert_eq!(me.body["vetting_status"]["status"], json!("PD"));
}

#[tokio::test]
async fn oversize_bodies_and_huge_forms_are_refused() {
    let app = TestApp::spawn().await;
    let (_, access) = coach(&app, "coach@example.com").await;
    let big = json!({"introduction": "x".repeat(1024 * 1024 + 1)});
    let r = app.patch("/auth/coach/", Some(&access), big).await;
    assert_reply(&r, 413, json!({"detail": "Request body is too large."}));
    let mut form = Form::new();
    for _ in 0..201 {
        form = form.text("area_list", "1");
    }
    let r = app
        .multipart(Method::PATCH, "/auth/coach/", Some(&access), form)
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = app
        .post_raw(
            "/auth/coach/vetting/",
            "multipart/form-data; boundary=x",
            "garbage",
        )
        .await;
    assert_eq!(r.status, 401, "credentials are checked first: {}", r.text);
    let req = app
        .client
        .patch(app.url("/auth/coach/"))
        .header("authorization", format!("JWT {access}"))
        .header("content-type", "multipart/form-data; boundary=x")
        .body("--x\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated");
    let resp = req.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let r = app.get("/auth/coach/", Some(&access)).await;
    assert_eq!(r.body["area"], json!([]));
}

/// A coach whose profile row predates the coach surface (or was lost) gets
/// one on their first `GET /auth/coach/`, and the same one after that.
#[tokio::test]
async fn a_coach_without_a_profile_row_gets_one_on_first_read() {
    let app = TestApp::spawn().await;
    let (_, token) = coach(&app, "coach@example.com").await;
    assert_eq!(
        app.scalar_i64("DELETE FROM coach_profiles RETURNING CAST(1 AS BIGINT)")
            .await,
        1
    );
    let first = app.get("/auth/coach/", Some(&token)).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["vetting_status"]["status"], json!("PD"));
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM coach_profiles").await,
        1
    );
    let again = app.get("/auth/coach/", Some(&token)).await;
    assert_eq!(again.status, 200, "{}", again.text);
    assert_eq!(again.body, first.body);
}
