//! `/openapi.json` (the document of every operation) and `/docs`, an
//! interactive Swagger UI page served from the binary (no CDN).

use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

use super::api::{Api, Dialect, doc};

const BUNDLE: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui-bundle.js");
const CSS: &[u8] = include_bytes!("../../assets/swagger-ui/swagger-ui.css");

pub fn api() -> Api {
    Api::new("Documentation", Dialect::Plain)
        .get(
            "/openapi.json",
            openapi_json,
            doc("This OpenAPI 3.1 document")
                .public()
                .ok(200, json!({"type": "object"})),
        )
        .get(
            "/docs",
            page,
            doc("An interactive page for the document (Swagger UI)")
                .public()
                .ok(200, json!({"type": "string"}))
                .media("text/html"),
        )
        .get(
            "/docs/swagger-ui-bundle.js",
            bundle,
            doc("Swagger UI's script (vendored)")
                .public()
                .file()
                .media("text/javascript"),
        )
        .get(
            "/docs/swagger-ui.css",
            css,
            doc("Swagger UI's style sheet (vendored)")
                .public()
                .file()
                .media("text/css"),
        )
}

async fn openapi_json() -> Response {
    axum::Json(super::openapi::document(&super::operations())).into_response()
}

async fn page() -> Html<&'static str> {
    Html(
        r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Roster API</title>
  <link rel="stylesheet" href="/docs/swagger-ui.css">
</head>
<body>
  <div id="swagger-ui"></div>
  <script src="/docs/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({
      url: "/openapi.json",
      dom_id: "#swagger-ui",
      deepLinking: true,
      persistAuthorization: true,
      tryItOutEnabled: false,
      validatorUrl: null
    });
  </script>
</body>
</html>
"##,
    )
}

fn asset(bytes: &'static [u8], content_type: &'static str) -> Response {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    response
}

async fn bundle() -> Response {
    asset(BUNDLE, "text/javascript; charset=utf-8")
}

async fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}
