//! `roster backup`: a snapshot taken while the server runs restores to a
//! working server with the same accounts, data and files.

use serde_json::json;

use crate::harness::{PASSWORD, TestApp};

const PDF: &[u8] = b"%PDF-1.4\n% backed up\n1 0 obj << >> endobj\n%%EOF\n";

#[tokio::test]
async fn a_backup_restores_to_a_working_server() {
    let app = TestApp::spawn().await;
    let dest = app.dir.join("backup");
    if app.state.db.backend() == "postgres" {
        let err = roster::backup::backup(&app.state, &dest).await.unwrap_err();
        assert!(err.to_string().contains("pg_dump"), "{err}");
        return;
    }
    let (_, admin, _) = app.active_user("admin@example.com", "Admin").await;
    let r = app
        .post(
            "/api/departments/",
            Some(&admin),
            json!({"name": "Backed Up"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app
        .post(
            "/api/myTeams/",
            Some(&admin),
            json!({"email": "member@example.com", "first_name": "Mem", "last_name": "Ber",
                   "password": PASSWORD, "role": "Member"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let (member, _) = app.login("member@example.com", PASSWORD).await;
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(PDF.to_vec()).file_name("cv.pdf"),
    );
    let r = app
        .send_multipart_bearer("/api/v1/profile/documents/cv", &member, form)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    let summary = roster::backup::backup(&app.state, &dest).await.unwrap();
    assert_eq!(summary.files, 1);
    assert_eq!(summary.bytes, PDF.len() as u64);
    // A second backup into the same folder is refused, not mixed in.
    let again = roster::backup::backup(&app.state, &dest).await.unwrap_err();
    assert!(again.to_string().contains("not empty"), "{again}");

    // Restore: a server on the backup folder.
    let restored = TestApp::spawn_on_sqlite_folder(&dest).await;
    let (admin, _) = restored.login("admin@example.com", PASSWORD).await;
    let departments = restored.get("/api/departments/", Some(&admin)).await;
    assert_eq!(departments.status, 200, "{}", departments.text);
    assert!(
        departments.text.contains("Backed Up"),
        "{}",
        departments.text
    );
    let (member, _) = restored.login("member@example.com", PASSWORD).await;
    let own = restored.get("/api/v1/profile", Some(&member)).await;
    let url = own.body["profile"]["cv"]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, _, bytes) = restored.fetch_link(&url).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, PDF);
}
