//! The OpenAPI document: complete (every routed operation, nothing else),
//! served at /openapi.json, and the /docs page with its vendored assets.

use axum::body::Body;
use axum::http::Request;
use tower::ServiceExt;

use crate::harness::TestApp;

#[tokio::test]
async fn every_operation_is_documented_and_routed() {
    let app = TestApp::spawn().await;
    let operations = roster::http::operations();
    let document = roster::http::openapi::document(&operations);
    assert_eq!(document["openapi"], "3.1.0");
    // The document lists exactly the registered operations.
    let paths = document["paths"].as_object().unwrap();
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(documented, operations.len(), "one document entry per route");
    for op in &operations {
        let path = roster::http::openapi::display_path(op);
        let entry = &paths[&path][op.method.as_str().to_ascii_lowercase()];
        assert!(entry.is_object(), "{} {path} is not documented", op.method);
        assert!(
            entry["responses"].as_object().unwrap().len() >= 2,
            "{path}: responses"
        );
        if op.doc.auth != roster::http::api::Auth::None {
            assert!(entry["responses"]["401"].is_object(), "{path}: 401");
        }
    }
    // And every documented operation is routed: the router matches it
    // (rather than falling back), with any ids filled in. The router puts
    // the route it matched on the response (none for the fallback), so a
    // routed 404 is told from an unrouted one.
    let router = roster::http::router(app.state.clone());
    for op in &operations {
        let concrete: String = op
            .path
            .split('/')
            .map(|s| if s.starts_with('{') { "1" } else { s })
            .collect::<Vec<_>>()
            .join("/");
        let req = Request::builder()
            .method(op.method.clone())
            .uri(&concrete)
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(req).await.unwrap();
        assert_eq!(
            response
                .extensions()
                .get::<axum::extract::MatchedPath>()
                .map(|m| m.as_str()),
            Some(op.path),
            "{} {concrete} is documented but not routed",
            op.method
        );
    }
    // Served as JSON, and the same document.
    let r = app.get("/openapi.json", None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body, document);
    println!(
        "openapi: {} operations on {} paths",
        operations.len(),
        paths.len()
    );
}

#[tokio::test]
async fn the_docs_page_is_served_from_the_binary() {
    let app = TestApp::spawn().await;
    let page = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("/docs/swagger-ui-bundle.js"));
    assert!(html.contains("/openapi.json"));
    assert!(!html.contains("https://"), "no CDN");
    for (asset, kind) in [
        ("/docs/swagger-ui-bundle.js", "text/javascript"),
        ("/docs/swagger-ui.css", "text/css"),
    ] {
        let r = app.client.get(app.url(asset)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{asset}");
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
        assert!(r.bytes().await.unwrap().len() > 100_000, "{asset}");
    }
}
