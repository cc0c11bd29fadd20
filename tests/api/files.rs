//! The file store: signed links, S3-compatible storage, orphan cleanup.

use std::time::Duration;

use reqwest::Method;
use reqwest::multipart::Form;
use serde_json::Value;

use crate::coach::{PNG, count_files, file};
use crate::harness::{S3Server, TestApp};

async fn upload_avatar(app: &TestApp, access: &str, name: &str) -> String {
    let form = Form::new().part("avatar", file(name, PNG));
    let r = app
        .multipart(Method::PATCH, "/auth/coach/", Some(access), form)
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["avatar"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn tampered_links_are_not_found() {
    let app = TestApp::spawn().await;
    let (_, access, _) = app.active_user("coach@example.com", "Coach").await;
    let link = upload_avatar(&app, &access, "me.png").await;
    assert_eq!(app.fetch_link(&link).await.0, 200);
    // .../files/{id}-{expires}-{signature}/{name}
    let (prefix, rest) = link.split_once("/files/").unwrap();
    let (token, name) = rest.split_once('/').unwrap();
    let parts: Vec<&str> = token.split('-').collect();
    let (id, expires, sig) = (parts[0], parts[1], parts[2]);
    let flip = |s: &str| {
        let mut c: Vec<char> = s.chars().collect();
        c[0] = if c[0] == '0' { '1' } else { '0' };
        c.into_iter().collect::<String>()
    };
    let next_id = (id.parse::<i64>().unwrap() + 1).to_string();
    let later = (expires.parse::<i64>().unwrap() + 3600).to_string();
    for bad in [
        format!("{next_id}-{expires}-{sig}"),
        format!("{id}-{later}-{sig}"),
        format!("{id}-{expires}-{}", flip(sig)),
        format!("{id}-{expires}"),
        format!("{id}-{expires}-{sig}x"),
        "garbage".to_string(),
        format!("-1-{expires}-{sig}"),
    ] {
        let url = format!("{prefix}/files/{bad}/{name}");
        let (status, _, body) = app.fetch_link(&url).await;
        assert_eq!(status, 404, "{bad}");
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body, serde_json::json!({"detail": "Not found."}));
    }
    // The name in the link is cosmetic; the token alone is the credential.
    let (status, _, _) = app.fetch_link(&format!("{prefix}/files/{token}")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn links_expire() {
    let app = TestApp::spawn_with(|c| c.file_url_lifetime = 1).await;
    let (_, access, _) = app.active_user("coach@example.com", "Coach").await;
    let link = upload_avatar(&app, &access, "me.png").await;
    assert_eq!(app.fetch_link(&link).await.0, 200);
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    assert_eq!(app.fetch_link(&link).await.0, 404);
    // A fresh response carries a fresh link.
    let me = app.get("/auth/coach/", Some(&access)).await;
    assert_eq!(
        app.fetch_link(me.body["avatar"].as_str().unwrap()).await.0,
        200
    );
}

#[tokio::test]
async fn names_are_sanitised_and_headers_stay_well_formed() {
    let app = TestApp::spawn().await;
    let (_, access, _) = app.active_user("coach@example.com", "Coach").await;
    let link = upload_avatar(&app, &access, "..\\../etc/passwd\u{202E}.png").await;
    assert!(link.ends_with("/passwd.png"), "{link}");
    let (status, headers, _) = app.fetch_link(&link).await;
    assert_eq!(status, 200);
    let disposition = headers["content-disposition"].to_str().unwrap();
    assert_eq!(
        disposition,
        "inline; filename=\"passwd.png\"; filename*=UTF-8''passwd.png"
    );
    let link = upload_avatar(&app, &access, "café \"x\".png").await;
    let (_, headers, _) = app.fetch_link(&link).await;
    assert_eq!(
        headers["content-disposition"].to_str().unwrap(),
        "inline; filename=\"caf_ x.png\"; filename*=UTF-8''caf%C3%A9%20x.png"
    );
    // Nothing was written outside the store's folder.
    assert!(!app.dir.join("etc").exists());
    assert_eq!(count_files(&app), 1);
}

#[tokio::test]
async fn orphaned_files_are_swept_and_named_files_are_kept() {
    let app = TestApp::spawn().await;
    let (_, access, _) = app.active_user("coach@example.com", "Coach").await;
    let link = upload_avatar(&app, &access, "me.png").await;
    // A file with no row, as a crash between write and commit leaves.
    let key = roster::filestore::new_key();
    app.state
        .files
        .put(&key, axum::body::Bytes::from_static(b"orphan"))
        .await
        .unwrap();
    assert_eq!(count_files(&app), 2);
    // Within the grace period nothing is touched (it may be an upload in
    // flight).
    let removed = roster::domain::uploads::sweep_orphans(&app.state, Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(removed, 0);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let removed = roster::domain::uploads::sweep_orphans(&app.state, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(removed, 1);
    assert!(app.state.files.get(&key).await.unwrap().is_none());
    assert_eq!(app.fetch_link(&link).await.0, 200, "named files stay");
}

#[tokio::test]
async fn the_file_store_works_on_s3() {
    let s3 = S3Server::start().await;
    let app = TestApp::spawn_with(|c| s3.configure(c)).await;
    let (id, access, _) = app.active_user("coach@example.com", "Coach").await;
    let first = upload_avatar(&app, &access, "me.png").await;
    assert_eq!(s3.keys().await.len(), 1);
    assert_eq!(count_files(&app), 0, "nothing on local disk");
    let (status, headers, bytes) = app.fetch_link(&first).await;
    assert_eq!((status, bytes.as_slice()), (200, PNG));
    assert_eq!(headers["content-type"], "image/png");
    // A certificate PDF, then a replacement avatar: the old object goes.
    let form = Form::new()
        .text("user_id", id.to_string())
        .text("name", "ICF")
        .part("attachment", file("c.pdf", crate::coach::PDF));
    let r = app
        .multipart(
            Method::POST,
            "/auth/coach/certification/",
            Some(&access),
            form,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let pdf = r.body["attachment"].as_str().unwrap().to_string();
    let second = upload_avatar(&app, &access, "new.png").await;
    assert_eq!(s3.keys().await.len(), 2);
    assert_eq!(app.fetch_link(&first).await.0, 404);
    assert_eq!(app.fetch_link(&second).await.0, 200);
    let (status, headers, bytes) = app.fetch_link(&pdf).await;
    assert_eq!((status, bytes.as_slice()), (200, crate::coach::PDF));
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment;")
    );
    // Orphans are swept from the bucket too.
    let key = roster::filestore::new_key();
    app.state
        .files
        .put(&key, axum::body::Bytes::from_static(b"orphan"))
        .await
        .unwrap();
    assert_eq!(s3.keys().await.len(), 3);
    // S3 timestamps have one-second resolution.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let removed = roster::domain::uploads::sweep_orphans(&app.state, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(removed, 1);
    assert_eq!(s3.keys().await.len(), 2);
    assert_eq!(app.fetch_link(&second).await.0, 200);
}
