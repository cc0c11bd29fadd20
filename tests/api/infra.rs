//! What every request gets: probes, request ids, nosniff, 404/405 bodies,
//! body limits and parse errors.

use serde_json::json;

use crate::harness::{TestApp, assert_reply};

#[tokio::test]
async fn health_and_readiness_probes_answer() {
    let app = TestApp::spawn().await;
    assert_reply(
        &app.get("/healthz", None).await,
        200,
        json!({"status": "ok"}),
    );
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.body["status"], "ok");
}

#[tokio::test]
async fn readiness_fails_with_503_when_the_database_is_gone() {
    let app = TestApp::spawn().await;
    app.state.db.close().await;
    let reply = app.get("/readyz", None).await;
    assert_eq!(reply.status, 503);
    assert_eq!(reply.header("retry-after"), Some("5"));
    // A request that needs the database is a 503 too, never a 500.
    let reply = app
        .post(
            "/api/auth/jwt/create/",
            None,
            json!({"email": "a@example.com", "password": "whatever-1"}),
        )
        .await;
    assert_eq!(reply.status, 503, "{}", reply.text);
    assert_eq!(reply.header("retry-after"), Some("5"));
}

#[tokio::test]
async fn every_response_carries_nosniff_and_a_request_id() {
    let app = TestApp::spawn().await;
    for reply in [
        app.get("/healthz", None).await,
        app.get("/nope", None).await,
        app.get("/api/auth/users/me/", None).await,
    ] {
        assert_eq!(reply.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(reply.header("x-request-id").map(str::len), Some(36));
    }
    let reply = app
        .client
        .get(app.url("/healthz"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(reply.headers()["x-request-id"], "abc-123");
}

#[tokio::test]
async fn unknown_routes_are_404_and_wrong_methods_405() {
    let app = TestApp::spawn().await;
    assert_reply(
        &app.get("/no/such/path", None).await,
        404,
        json!({"detail": "Not found."}),
    );
    assert_reply(
        &app.get("/api/auth/users/", None).await,
        405,
        json!({"detail": "Method \"GET\" not allowed."}),
    );
    assert_reply(
        &app.delete("/api/auth/jwt/create", None, None).await,
        405,
        json!({"detail": "Method \"DELETE\" not allowed."}),
    );
}

#[tokio::test]
async fn malformed_bodies_get_drf_errors() {
    let app = TestApp::spawn().await;
    let reply = app
        .post_raw("/api/auth/jwt/create/", "application/json", "{\"email\": ")
        .await;
    assert_eq!(reply.status, 400);
    assert!(
        reply.body["detail"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error - "),
        "{}",
        reply.text
    );
    let reply = app
        .post_raw("/api/auth/jwt/create/", "application/json", "[1, 2]")
        .await;
    assert_reply(
        &reply,
        400,
        json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}),
    );
    let reply = app
        .post_raw("/api/auth/jwt/create/", "application/json", "\"text\"")
        .await;
    assert_reply(
        &reply,
        400,
        json!({"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]}),
    );
    let reply = app
        .post_raw("/api/auth/jwt/create/", "application/json", "null")
        .await;
    assert_reply(
        &reply,
        400,
        json!({"non_field_errors": ["No data provided"]}),
    );
    let reply = app
        .post_raw("/api/auth/jwt/create/", "text/plain", "hello")
        .await;
    assert_reply(
        &reply,
        415,
        json!({"detail": "Unsupported media type \"text/plain\" in request."}),
    );
    let reply = app
        .post_raw(
            "/api/auth/users/",
            "application/json",
            "{\"email\": \"a\u{0}b@example.com\"}",
        )
        .await;
    assert_eq!(reply.status, 400);
}

#[tokio::test]
async fn oversize_bodies_are_413() {
    let app = TestApp::spawn_with(|c| c.max_body_bytes = 1024).await;
    let big = format!("{{\"email\": \"{}\"}}", "a".repeat(2048));
    let reply = app
        .post_raw("/api/auth/jwt/create/", "application/json", big.clone())
        .await;
    assert_reply(&reply, 413, json!({"detail": "Request body is too large."}));
    // Without a Content-Length (chunked), the limit holds as well.
    let stream = futures_stream(big.into_bytes());
    let reply = app
        .client
        .post(app.url("/api/auth/jwt/create/"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 413);
}

fn futures_stream(
    bytes: Vec<u8>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> + Send + 'static {
    ChunkStream {
        chunks: bytes.chunks(256).map(<[u8]>::to_vec).collect(),
    }
}

struct ChunkStream {
    chunks: std::collections::VecDeque<Vec<u8>>,
}

impl futures_core::Stream for ChunkStream {
    type Item = Result<Vec<u8>, std::io::Error>;
    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        std::task::Poll::Ready(self.chunks.pop_front().map(Ok))
    }
}

#[test]
fn both_backends_have_the_same_migrations() {
    let (sqlite, postgres) = roster::store::migration_versions();
    assert!(!sqlite.is_empty());
    assert_eq!(sqlite, postgres);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(|c| c.header_read_timeout_secs = 1).await;
    let addr = app.base.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut buf),
    )
    .await;
    assert!(
        read.is_ok(),
        "the server kept a slow client's connection open"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    // The server still answers everyone else.
    assert_eq!(app.get("/healthz", None).await.status, 200);
}

/// PostgreSQL cannot store NUL in text: wherever one arrives (a filter, a
/// custom field's options, a profile field), the answer is a 4xx, never 500.
#[tokio::test]
async fn nul_characters_are_refused_not_crashed_on() {
    let app = TestApp::spawn().await;
    let (_, access, key) = app.org_admin_with_key("admin@example.com").await;
    let r = app
        .bearer(
            reqwest::Method::GET,
            "/clients?filter[email]=a%00b",
            &key,
            None,
        )
        .await;
    assert!(r.status < 500, "{} {}", r.status, r.text);
    let r = app
        .bearer(
            reqwest::Method::POST,
            "/custom-fields",
            &key,
            Some(serde_json::json!({"slug": "f", "label": "F", "type": "select", "options": ["a\u{0}b"]})),
        )
        .await;
    assert!(r.status < 500, "{} {}", r.status, r.text);
    let r = app
        .bearer(
            reqwest::Method::POST,
            "/programs",
            &key,
            Some(serde_json::json!({"name": "a\u{0}b"})),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let r = app
        .post(
            "/api/myTeams/",
            Some(&access),
            serde_json::json!({"email": "m@example.com", "first_name": "M", "last_name": "M",
                               "password": crate::harness::PASSWORD, "role": "Member"}),
        )
        .await;
    assert_eq!(r.status, 201);
    let r = app.get("/api/v1/profiles?q=a%00b", Some(&access)).await;
    assert_eq!(r.status, 422, "{}", r.text);
    let r = app.get("/api/myTeams/?search=a%00b", Some(&access)).await;
    assert_eq!(r.status, 400, "{}", r.text);
    let list = app.get("/api/v1/profiles", Some(&access)).await;
    let id = list.body["profiles"][0]["id"].as_i64().unwrap();
    let r = app
        .put(
            &format!("/api/v1/profiles/{id}"),
            Some(&access),
            serde_json::json!({"profile": {"bio": "a\u{0}b"}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let r = app
        .post(
            &format!("/api/v1/profiles/{id}/reviews"),
            Some(&access),
            serde_json::json!({"review": {"rating": 3, "comment": "a\u{0}b"}}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
}

/// Reads what the server sends until it closes the connection (at most 10 s).
async fn read_until_closed(stream: &mut tokio::net::TcpStream) -> String {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut buf),
    )
    .await;
    String::from_utf8_lossy(&buf).into_owned()
}

#[tokio::test]
async fn a_body_that_stalls_or_trickles_is_408_and_a_slow_steady_one_is_served() {
    use tokio::io::AsyncWriteExt;
    let app = TestApp::spawn_with(|c| {
        c.body_idle_timeout_secs = 1;
        c.body_min_rate = 20;
    })
    .await;
    let head = b"POST /api/auth/jwt/create/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n{\"email\":";
    let started = std::time::Instant::now();
    let mut stalled = app.raw_connection(head).await;
    let answer = read_until_closed(&mut stalled).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("did not arrive in time"), "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));

    // A byte every 400 ms never pauses for a second, but averages 2.5 bytes
    // a second where 20 are required: cut off once the grace second is over.
    let head = b"POST /api/auth/jwt/create/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n";
    let mut trickle = app.raw_connection(head).await;
    let started = std::time::Instant::now();
    for _ in 0..8 {
        tokio::time::sleep(std::time::Duration::from_millis(400)).await;
        if trickle.write_all(b" ").await.is_err() {
            break;
        }
    }
    let answer = read_until_closed(&mut trickle).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(started.elapsed() < std::time::Duration::from_secs(6));

    // Ten bytes every 300 ms (about 33 a second) is slow but steady: served.
    let body = br#"{"email": "nobody@example.com", "password": "wrong-password-1"}"#;
    let head = format!(
        "POST /api/auth/jwt/create/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut slow = app.raw_connection(head.as_bytes()).await;
    for piece in body.chunks(10) {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        slow.write_all(piece).await.unwrap();
    }
    let answer = read_until_closed(&mut slow).await;
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");
}

#[tokio::test]
async fn beyond_the_concurrency_limit_requests_are_shed_with_503() {
    let app = TestApp::spawn_with(|c| c.max_concurrent_requests = 1).await;
    // This request holds the only permit while its body does not arrive.
    let head = b"POST /api/auth/jwt/create/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 60\r\n\r\n{";
    let _holder = app.raw_connection(head).await;
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let shed = app.get("/api/auth/users/me/", None).await;
    assert_reply(
        &shed,
        503,
        json!({"detail": "Service temporarily unavailable, try again later."}),
    );
    assert_eq!(shed.header("retry-after"), Some("1"));
    let shed = app.get("/api/v1/profile", None).await;
    assert_reply(
        &shed,
        503,
        json!({"error": "Service temporarily unavailable"}),
    );
    // The probes are always admitted, and the metrics count what was shed.
    assert_eq!(app.get("/healthz", None).await.status, 200);
    let metrics = app.get("/metrics", None).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics.text.contains("roster_http_requests_shed_total 2\n"),
        "{}",
        metrics.text
    );
    // The stalled request and this metrics request itself.
    assert!(
        metrics.text.contains("roster_http_requests_in_flight 2\n"),
        "{}",
        metrics.text
    );
}

#[tokio::test]
async fn oversize_request_heads_are_431() {
    let app = TestApp::spawn().await;
    let head = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(64 * 1024)
    );
    let mut stream = app.raw_connection(head.as_bytes()).await;
    let answer = read_until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert_eq!(app.get("/healthz", None).await.status, 200);
}

#[tokio::test]
async fn metrics_count_responses_and_password_hashing() {
    let app = TestApp::spawn().await;
    app.post(
        "/api/auth/jwt/create/",
        None,
        json!({"email": "nobody@example.com", "password": "wrong-password-1"}),
    )
    .await;
    let metrics = app.get("/metrics", None).await;
    assert_eq!(metrics.status, 200);
    assert_eq!(
        metrics.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let value = |name: &str| -> f64 {
        metrics
            .text
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or_else(|| panic!("{name} missing from {}", metrics.text))
    };
    assert_eq!(value("roster_http_responses_total{class=\"4xx\"}"), 1.0);
    assert!(value("roster_password_hashes_total") >= 1.0);
    // The hashing threads (two in tests) bound how many hashes run at once.
    let max = value("roster_password_hashes_in_flight_max");
    assert!((1.0..=2.0).contains(&max), "{max}");
    assert_eq!(value("roster_outbox_pending"), 0.0);
    assert_eq!(value("roster_draining"), 0.0);
}

#[tokio::test]
async fn readiness_turns_503_as_soon_as_shutdown_begins() {
    let app = TestApp::spawn_with(|c| c.shutdown_delay_secs = 30).await;
    assert_eq!(app.get("/readyz", None).await.status, 200);
    app.begin_shutdown();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.status, 503);
    assert_eq!(ready.body["status"], "draining");
    // During the delay requests are still served.
    assert_eq!(app.get("/healthz", None).await.status, 200);
    assert_eq!(app.get("/api/auth/users/me/", None).await.status, 401);
}

/// A PostgreSQL backend terminated while a request is using it (a failover,
/// `pg_terminate_backend`) costs the client nothing: nothing the request
/// did was committed, so it runs again on a fresh connection, once. The
/// request is caught mid-statement, and then during its COMMIT, by holding
/// a lock it waits for. (SQLite's connections are files in the process:
/// none can be lost.)
#[tokio::test]
async fn a_request_whose_postgres_backend_is_terminated_runs_again() {
    let app = TestApp::spawn().await;
    let Some(mut locker) = postgres_connection(&app).await else {
        return;
    };
    let (_, token, _) = app.active_user("admin@example.com", "Admin").await;
    let reply = app
        .post("/api/departments/", Some(&token), json!({"name": "Before"}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);

    let table_lock = "LOCK TABLE departments IN ACCESS EXCLUSIVE MODE";
    let list = app.get("/api/departments/", Some(&token));
    let reply = terminate_while_waiting(&mut locker, table_lock, list).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.body["count"], 1, "{}", reply.text);

    let create = app.post("/api/departments/", Some(&token), json!({"name": "During"}));
    let reply = terminate_while_waiting(&mut locker, table_lock, create).await;
    assert_eq!(reply.status, 201, "{}", reply.text);

    // A COMMIT that waits (here for a deferred trigger's lock) and whose
    // backend is terminated: PostgreSQL says the transaction aborted, so
    // the request may run again.
    for sql in [
        "CREATE FUNCTION wait_for_test_lock() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM pg_advisory_xact_lock(4242); RETURN NULL; END $$",
        "CREATE CONSTRAINT TRIGGER wait_at_commit AFTER INSERT ON departments \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION wait_for_test_lock()",
    ] {
        sqlx::query(sql).execute(&mut locker).await.unwrap();
    }
    let create = app.post(
        "/api/departments/",
        Some(&token),
        json!({"name": "AtCommit"}),
    );
    let advisory_lock = "SELECT pg_advisory_xact_lock(4242)";
    let reply = terminate_while_waiting(&mut locker, advisory_lock, create).await;
    assert_eq!(reply.status, 201, "{}", reply.text);

    // Each create ran to completion once.
    for name in ["During", "AtCommit"] {
        let reply = app
            .get(&format!("/api/departments/?search={name}"), Some(&token))
            .await;
        assert_eq!(reply.body["count"], 1, "{name}: {}", reply.text);
    }
    assert_eq!(counter(&app, "roster_http_requests_rerun_total").await, 3);
}

/// The pool does not ping a connection before lending it. When every idle
/// connection's backend has ended (a restart, a failover), the first
/// request to meet one runs again, and the rest of the pool's old
/// connections are retired unused: requests one after another all succeed,
/// where each dead connection would otherwise fail a run and three in a
/// row a request.
#[tokio::test]
async fn after_the_pools_backends_end_one_request_runs_again_and_none_fails() {
    let app = TestApp::spawn().await;
    let Some(mut admin) = postgres_connection(&app).await else {
        return;
    };
    let (_, token, _) = app.active_user("admin@example.com", "Admin").await;
    // Four connections open and idle in the pool.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(app.state.db.begin_read().await.unwrap());
    }
    drop(held);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (_, idle) = app.state.db.pool_size();
    assert!(idle >= 3, "{idle} idle connections");
    end_backends_then_serve_six(&app, &mut admin, &token, 3).await;
}

/// Terminates every backend of the app's database (at least `at_least`),
/// then asks for `me` six times: each succeeds, and at most one runs again
/// (none when another test's lost connection already retired this pool's
/// connections: the mark is process-wide).
async fn end_backends_then_serve_six(
    app: &TestApp,
    admin: &mut sqlx::PgConnection,
    token: &str,
    at_least: i64,
) {
    let ended: i64 = sqlx::query_scalar(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_one(admin)
    .await
    .unwrap();
    assert!(ended >= at_least, "{ended} backends terminated");
    // The terminated backends' sockets close.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;

    for _ in 0..6 {
        let reply = app.get("/api/auth/users/me/", Some(token)).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }
    let reruns = counter(app, "roster_http_requests_rerun_total").await;
    assert!(reruns <= 1, "{reruns} runs again");
}

/// As above, for connections parked after a statement outside a
/// transaction (`store::connections`): they skip sqlx's release ping, so a
/// dead one is found only by the next request that takes it, which runs
/// again; the rest parked before that loss are retired unused.
#[tokio::test]
async fn after_parked_connections_backends_end_one_request_runs_again_and_none_fails() {
    use roster::store::query::{Sql, fetch_int};
    let app = TestApp::spawn().await;
    let Some(mut admin) = postgres_connection(&app).await else {
        return;
    };
    let (_, token, _) = app.active_user("admin@example.com", "Admin").await;
    // Four connections, each used by a statement outside a transaction,
    // then parked together.
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut tx = app.state.db.autocommit().await.unwrap();
        assert_eq!(
            fetch_int(&mut tx, &Sql::new("SELECT CAST(1 AS BIGINT)"))
                .await
                .unwrap(),
            1
        );
        held.push(tx);
    }
    drop(held);
    let (open, idle) = app.state.db.pool_size();
    assert!(open >= 4 && idle >= 4, "{open} open, {idle} idle");
    end_backends_then_serve_six(&app, &mut admin, &token, 4).await;
}

/// A request waiting for a connection while every one is checked out is
/// served by the first to be parked: it does not wait on sqlx's pool
/// while that connection sits parked (transactions take parked
/// connections too).
#[tokio::test]
async fn a_parked_connection_serves_whoever_waits_for_one() {
    use roster::store::query::{Sql, fetch_int};
    use std::time::Duration;
    // No outbox pass during the test: it would take the parked connection
    // and hand it back to sqlx's pool, serving the waiter that way.
    let app = TestApp::spawn_with(|c| c.outbox_poll_secs = 3600).await;
    if postgres_connection(&app).await.is_none() {
        return;
    }
    let max = app.state.config.database_max_connections as usize;
    let mut held = Vec::new();
    for _ in 0..max {
        let mut tx = app.state.db.autocommit().await.unwrap();
        fetch_int(&mut tx, &Sql::new("SELECT CAST(1 AS BIGINT)"))
            .await
            .unwrap();
        held.push(tx);
    }
    let db = app.state.db.clone();
    let waiter = tokio::spawn(async move {
        let mut tx = db.begin_write().await?;
        let n = fetch_int(&mut tx, &Sql::new("SELECT CAST(2 AS BIGINT)")).await?;
        tx.commit().await?;
        Ok::<_, roster::store::StoreError>(n)
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "every connection is checked out");
    held.pop(); // parked
    let n = tokio::time::timeout(Duration::from_secs(1), waiter)
        .await
        .expect("the waiter took the parked connection")
        .unwrap()
        .unwrap();
    assert_eq!(n, 2);
    drop(held);
    // Every connection comes back (parked, or in sqlx's pool once its
    // release ping is answered), none lost.
    let mut sizes = (0, 0);
    for _ in 0..50 {
        let (open, idle) = app.state.db.pool_size();
        sizes = (open as usize, idle);
        if sizes == (max, max) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sizes, (max, max));
}

/// The value of the unlabelled counter `name` on `/metrics`.
async fn counter(app: &TestApp, name: &str) -> u64 {
    let metrics = app.get("/metrics", None).await;
    metrics
        .text
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no counter {name}: {}", metrics.text))
}

/// A connection of its own to the app's database when that is PostgreSQL
/// (the tests that need one have nothing to check on SQLite).
async fn postgres_connection(app: &TestApp) -> Option<sqlx::PgConnection> {
    use sqlx::Connection;
    let url = (app.state.db.backend() == "postgres")
        .then(|| app.state.config.database_url.clone())
        .flatten()?;
    Some(sqlx::PgConnection::connect(&url).await.unwrap())
}

/// Sends `request` while `locker` holds the lock `lock_sql` takes,
/// terminates the backend that waits for it, then lets go.
async fn terminate_while_waiting(
    locker: &mut sqlx::PgConnection,
    lock_sql: &'static str,
    request: impl std::future::Future<Output = crate::harness::Reply>,
) -> crate::harness::Reply {
    sqlx::query("BEGIN").execute(&mut *locker).await.unwrap();
    sqlx::query(lock_sql).execute(&mut *locker).await.unwrap();
    let terminate = async {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let pid: i32 = loop {
            let waiting: Option<i32> = sqlx::query_scalar(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock' AND pid <> pg_backend_pid() LIMIT 1",
            )
            .fetch_optional(&mut *locker)
            .await
            .unwrap();
            if let Some(pid) = waiting {
                break pid;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no request waited for the lock"
            );
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        };
        let ended: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .fetch_one(&mut *locker)
            .await
            .unwrap();
        assert!(ended);
        sqlx::query("ROLLBACK").execute(&mut *locker).await.unwrap();
    };
    let (reply, ()) = tokio::join!(request, terminate);
    reply
}

/// The statements of a read transaction see one snapshot: a row committed
/// between two of them is not seen by the second (on PostgreSQL this takes
/// REPEATABLE READ; READ COMMITTED would show it).
#[tokio::test]
async fn a_read_transaction_sees_one_snapshot() {
    use roster::store::query::{Sql, fetch_int};
    let app = TestApp::spawn().await;
    let (_, token, _) = app.active_user("admin@example.com", "Admin").await;
    let count = Sql::new("SELECT count(*) FROM departments");
    let mut tx = app.state.db.begin_read().await.unwrap();
    assert_eq!(fetch_int(&mut tx, &count).await.unwrap(), 0);
    let reply = app
        .post(
            "/api/departments/",
            Some(&token),
            json!({"name": "Meanwhile"}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(fetch_int(&mut tx, &count).await.unwrap(), 0);
    tx.commit().await.unwrap();
    let mut tx = app.state.db.begin_read().await.unwrap();
    assert_eq!(fetch_int(&mut tx, &count).await.unwrap(), 1);
    tx.commit().await.unwrap();
}

/// A statement of a SQLite read snapshot that runs over the reader's step
/// budget (a program's 20,000 members ordered by name, after the read that
/// found the program started the snapshot) finishes on a blocking thread,
/// in the same snapshot, with the whole answer. (PostgreSQL has no reader.)
#[tokio::test]
async fn a_long_statement_in_a_sqlite_snapshot_finishes_on_a_blocking_thread() {
    let app = TestApp::spawn().await;
    let roster::store::Db::Sqlite(pool, ..) = &app.state.db else {
        return;
    };
    let options = roster::seed::SeedOptions {
        company: "Big".into(),
        domain: "big.example".into(),
        password: crate::harness::PASSWORD.into(),
        departments: 10,
        coaches: 0,
        members: 20_000,
    };
    let seeded = roster::seed::seed_demo(&app.state, &options).await.unwrap();
    let (token, _) = app
        .login(&seeded.admin_email, crate::harness::PASSWORD)
        .await;
    let program = app
        .post("/programs", Some(&token), json!({"name": "Everyone"}))
        .await;
    assert_eq!(program.status, 201, "{}", program.text);
    let program = program.body["program"]["id"].as_str().unwrap().to_string();
    // Every member joins the program (written directly: 20,000 requests
    // would only slow the test).
    sqlx::query(
        "INSERT INTO program_members (program_id, user_id, role, created_at) \
         SELECT $1, id, 'member', created_at FROM users WHERE role = 'member'",
    )
    .bind(program.parse::<i64>().unwrap())
    .execute(pool)
    .await
    .unwrap();
    let long_reads = || counter(&app, "roster_sqlite_long_reads_total");
    assert_eq!(long_reads().await, 0);

    let path = format!("/programs/{program}/members?sort=name&per_page=50");
    let first = app.get(&path, Some(&token)).await;
    assert_eq!(first.status, 200, "{}", first.text);
    assert_eq!(first.body["meta"]["total"], 20_000, "{}", first.text);
    let names: Vec<&str> = first.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names.len(), 50);
    assert!(names.is_sorted(), "{names:?}");
    let after_first = long_reads().await;
    assert!(after_first >= 1, "the ordering stayed within the budget");

    // The last page, by the same path.
    let last = app.get(&format!("{path}&page=400"), Some(&token)).await;
    assert_eq!(last.status, 200, "{}", last.text);
    assert_eq!(
        last.body["data"].as_array().unwrap().len(),
        50,
        "{}",
        last.text
    );
    assert!(long_reads().await > after_first);
}

/// A request dropped while its BEGIN is on the wire (the client went away)
/// leaves no PostgreSQL session inside a transaction. sqlx 0.9 counts a
/// transaction only once it has read BEGIN's answer, so a future dropped
/// before then queued no ROLLBACK, and the pool lent that session to the
/// next request, whose statements ran inside the stale transaction (a
/// write inside a stale READ ONLY one failed). Here each BEGIN is driven
/// by hand until PostgreSQL shows its session inside a transaction, and
/// the request is dropped right then, before its answer is read.
#[tokio::test]
async fn a_transaction_dropped_during_its_begin_leaves_no_session_in_a_transaction() {
    use std::task::{Context, Waker};
    use std::time::{Duration, Instant};
    let app = TestApp::spawn().await;
    let Some(mut watcher) = postgres_connection(&app).await else {
        return;
    };
    let mut in_transaction = async || -> i64 {
        sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
             AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()",
        )
        .fetch_one(&mut watcher)
        .await
        .unwrap()
    };
    let (_, token, _) = app.active_user("admin@example.com", "Admin").await;
    let mut dropped_mid_begin = 0;
    for attempt in 0..10 {
        let db = app.state.db.clone();
        let mut request = Box::pin(async move {
            if attempt % 2 == 0 {
                db.begin_read().await
            } else {
                db.begin_write().await
            }
        });
        let mut cx = Context::from_waker(Waker::noop());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if request.as_mut().poll(&mut cx).is_ready() {
                break;
            }
            if in_transaction().await > 0 {
                dropped_mid_begin += 1;
                break;
            }
            assert!(Instant::now() < deadline, "BEGIN never reached the server");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        drop(request);
        // The dropped connection goes back to the pool on a task of its own.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(in_transaction().await, 0, "attempt {attempt}");
        // And the session takes writes.
        let reply = app
            .post(
                "/api/departments/",
                Some(&token),
                json!({"name": format!("D{attempt}")}),
            )
            .await;
        assert_eq!(reply.status, 201, "attempt {attempt}: {}", reply.text);
    }
    assert!(dropped_mid_begin > 0, "no request was dropped mid-BEGIN");
}
