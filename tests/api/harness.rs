//! The test harness: a real Roster server on a loopback port over a fresh
//! database per test (a temp SQLite file, or a new PostgreSQL database when
//! `ROSTER_TEST_DATABASE_URL` names a server), driven over real HTTP.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::HeaderMap;
use roster::app::AppState;
use roster::config::Config;
use roster::store::Db;
use serde_json::{Value, json};
use tokio::sync::watch;

pub const PASSWORD: &str = "Correct-Horse-42";
pub const SECRET: &str = "test-secret-key-that-is-long-enough-0123456789";

/// A running server and what a test needs to talk to it.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    pub dir: PathBuf,
    shutdown: watch::Sender<bool>,
    _database: Option<Arc<PgDatabase>>,
}

/// Prints a figure of a suite-wide check (the authorization matrix, the
/// forged tokens) where CI shows it: straight to stderr, which the test
/// harness does not capture, so `.ci/run` can quote it.
pub fn figure(line: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{line}");
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
    pub body: Value,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Asserts status and JSON body together, showing both on failure.
#[track_caller]
pub fn assert_reply(reply: &Reply, status: u16, body: Value) {
    assert_eq!(
        (reply.status, &reply.body),
        (status, &body),
        "unexpected reply: {}",
        reply.text
    );
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Starts a server whose configuration `adjust` may change.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
        let dir =
            std::env::temp_dir().join(format!("roster-test-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        let (url, database) = match std::env::var("ROSTER_TEST_DATABASE_URL") {
            Ok(admin) if admin.starts_with("postgres") => {
                let db = PgDatabase::create(&admin).await;
                (db.url.clone(), Some(Arc::new(db)))
            }
            _ => (
                format!("sqlite://{}", dir.join("roster.db").display()),
                None,
            ),
        };
        Self::start(dir, url, database, adjust).await
    }

    /// Serves an existing SQLite data folder (a restored backup, say).
    pub async fn spawn_on_sqlite_folder(dir: &Path) -> TestApp {
        let url = format!("sqlite://{}", dir.join("roster.db").display());
        Self::start(dir.to_path_buf(), url, None, |_| {}).await
    }

    async fn start(
        dir: PathBuf,
        url: String,
        database: Option<Arc<PgDatabase>>,
        adjust: impl FnOnce(&mut Config),
    ) -> TestApp {
        let mut config = Config {
            data_dir: dir.clone(),
            database_url: Some(url.clone()),
            database_max_connections: 4,
            secret_key: Some(SECRET.into()),
            public_url: "http://testserver".into(),
            outbox_poll_secs: 1,
            password_hash_concurrency: 2,
            // Many test servers share the machine, and hashing yields to all
            // of them: a login may wait well past the production limit.
            password_hash_wait_secs: 60,
            ..Config::default()
        };
        adjust(&mut config);
        let options = roster::store::PoolOptions {
            // Longer than any test: on SQLite, a read sees a commit only
            // because the WAL index header told of it (see
            // `store::sqlite_reader`), never because a kept transaction
            // happened to be a millisecond old.
            sqlite_kept_snapshot_age: Duration::from_secs(3600),
            ..roster::store::PoolOptions::new(config.database_max_connections)
        };
        let db = Db::connect(&url, &options)
            .await
            .expect("connect to the test database");
        db.migrate().await.expect("migrate the test database");
        let state = AppState::new(db, config, SECRET).expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, rx) = watch::channel(false);
        tokio::spawn(roster::server::run(listener, state.clone(), rx));
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        TestApp {
            base,
            client,
            state,
            dir,
            shutdown,
            _database: database,
        }
    }

    /// Sends the shutdown signal (as SIGTERM does in `roster serve`).
    pub fn begin_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Opens a raw connection to the server and writes `head` (for tests of
    /// what clients that misbehave at the socket level get).
    pub async fn raw_connection(&self, head: &[u8]) -> tokio::net::TcpStream {
        use tokio::io::AsyncWriteExt;
        let addr = self.base.trim_start_matches("http://").to_string();
        let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
        stream.write_all(head).await.unwrap();
        stream
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// Sends a request; `token` goes out as `Authorization: JWT <token>`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self.client.request(method, self.url(path));
        if let Some(t) = token {
            req = req.header("authorization", format!("JWT {t}"));
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        read(req.send().await.expect("request failed")).await
    }

    /// Sends a request to the organisation API with `Authorization: Bearer`.
    pub async fn bearer(
        &self,
        method: Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> Reply {
        let mut req = self
            .client
            .request(method, self.url(path))
            .header("authorization", format!("Bearer {key}"));
        if let Some(b) = body {
            req = req.json(&b);
        }
        read(req.send().await.expect("request failed")).await
    }

    /// An organisation admin and an API key of theirs: `(admin id, access, key)`.
    pub async fn org_admin_with_key(&self, email: &str) -> (i64, String, String) {
        let (id, access, _) = self.active_user(email, "Admin").await;
        let reply = self
            .post(
                "/api/auth/api-keys/",
                Some(&access),
                json!({"name": "integration"}),
            )
            .await;
        assert_eq!(reply.status, 201, "{}", reply.text);
        (id, access, reply.body["key"].as_str().unwrap().to_string())
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Reply {
        self.send(Method::GET, path, token, None).await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(Method::POST, path, token, Some(body)).await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(Method::PATCH, path, token, Some(body)).await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> Reply {
        self.send(Method::PUT, path, token, Some(body)).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>, body: Option<Value>) -> Reply {
        self.send(Method::DELETE, path, token, body).await
    }

    /// Sends raw bytes with a content type.
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let req = self
            .client
            .post(self.url(path))
            .header("content-type", content_type)
            .body(body);
        read(req.send().await.expect("request failed")).await
    }

    /// Signs up (`Admin` or `Coach`) and returns the new user's id.
    pub async fn signup(&self, email: &str, role: &str) -> i64 {
        let reply = self
            .post(
                "/api/auth/users/",
                None,
                json!({"email": email, "first_name": "Test", "last_name": "User", "role": role,
                       "password": PASSWORD, "re_password": PASSWORD}),
            )
            .await;
        assert_eq!(reply.status, 201, "signup failed: {}", reply.text);
        reply.body["id"].as_i64().unwrap()
    }

    /// Signs up, follows the emailed activation link and logs in; returns
    /// `(user id, access, refresh)`.
    pub async fn active_user(&self, email: &str, role: &str) -> (i64, String, String) {
        let id = self.signup(email, role).await;
        let (uid, token) = self.link_for(email, "/activate/").await;
        let reply = self
            .post(
                "/api/auth/users/activation/",
                None,
                json!({"uid": uid, "token": token}),
            )
            .await;
        assert_eq!(reply.status, 204, "activation failed: {}", reply.text);
        let (access, refresh) = self.login(email, PASSWORD).await;
        (id, access, refresh)
    }

    pub async fn login(&self, email: &str, password: &str) -> (String, String) {
        let reply = self
            .post(
                "/api/auth/jwt/create/",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(reply.status, 200, "login failed: {}", reply.text);
        (
            reply.body["access"].as_str().unwrap().into(),
            reply.body["refresh"].as_str().unwrap().into(),
        )
    }

    /// The emails delivered so far to `to`, oldest first.
    pub fn mails_to(&self, to: &str) -> Vec<String> {
        mails_in(&self.dir.join("outbox"), to)
    }

    /// Waits until `to` has received `count` emails and returns them.
    pub async fn wait_for_mails(&self, to: &str, count: usize) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let mails = self.mails_to(to);
            if mails.len() >= count {
                return mails;
            }
            assert!(
                Instant::now() < deadline,
                "expected {count} emails to {to}, found {}",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The `(uid, token)` of the newest link containing `marker` mailed to `to`.
    pub async fn link_for(&self, to: &str, marker: &str) -> (String, String) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(found) = self
                .mails_to(to)
                .iter()
                .rev()
                .find_map(|m| link_in(m, marker))
            {
                return found;
            }
            assert!(Instant::now() < deadline, "no {marker} link mailed to {to}");
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Sends a multipart form with `Authorization: JWT <token>`.
    pub async fn multipart(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        form: reqwest::multipart::Form,
    ) -> Reply {
        let mut req = self.client.request(method, self.url(path)).multipart(form);
        if let Some(t) = token {
            req = req.header("authorization", format!("JWT {t}"));
        }
        read(req.send().await.expect("request failed")).await
    }

    /// POSTs a multipart form with `Authorization: Bearer <token>`.
    pub async fn send_multipart_bearer(
        &self,
        path: &str,
        token: &str,
        form: reqwest::multipart::Form,
    ) -> Reply {
        let req = self
            .client
            .post(self.url(path))
            .header("authorization", format!("Bearer {token}"))
            .multipart(form);
        read(req.send().await.expect("request failed")).await
    }

    /// Fetches an absolute URL from a response (a signed file link) from
    /// this server, without credentials.
    pub async fn fetch_link(&self, url: &str) -> (u16, HeaderMap, Vec<u8>) {
        let path = url
            .strip_prefix("http://testserver")
            .expect("links use the configured public URL");
        let resp = self.client.get(self.url(path)).send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        (status, headers, resp.bytes().await.unwrap().to_vec())
    }

    /// A platform staff user (made as `roster create-staff` makes them),
    /// logged in: `(id, access)`.
    pub async fn staff(&self, email: &str) -> (i64, String) {
        let user = roster::domain::accounts::create_staff(&self.state, email, PASSWORD)
            .await
            .expect("create staff");
        let (access, _) = self.login(email, PASSWORD).await;
        (user.id, access)
    }

    /// Runs SQL against the test database (for checks the API cannot make).
    pub async fn scalar_i64(&self, sql: &'static str) -> i64 {
        match &self.state.db {
            Db::Sqlite(pool, ..) => sqlx::query_scalar(sql).fetch_one(pool).await.unwrap(),
            Db::Postgres(pg) => sqlx::query_scalar(sql)
                .fetch_one(&mut *pg.acquire().await.unwrap())
                .await
                .unwrap(),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn read(resp: reqwest::Response) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Reply {
        status,
        headers,
        text,
        body,
    }
}

/// Every message in a folder of `.eml` files (or a Maildir's `new/`)
/// addressed to `to`, in file-name order.
pub fn mails_in(dir: &Path, to: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .collect();
    names.sort();
    names
        .iter()
        .filter(|p| !p.file_name().unwrap().to_string_lossy().starts_with('.'))
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .filter(|m| {
            m.lines()
                .any(|l| l.eq_ignore_ascii_case(&format!("To: {to}")))
        })
        .map(|m| decode_quoted_printable(&m))
        .collect()
}

/// Undoes quoted-printable (soft line breaks and `=XX`), which mailers use
/// for bodies with long lines such as links; headers pass through as is.
fn decode_quoted_printable(mail: &str) -> String {
    if !mail.contains("Content-Transfer-Encoding: quoted-printable") {
        return mail.to_string();
    }
    let joined = mail.replace("=\r\n", "").replace("=\n", "");
    let bytes = joined.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `(uid, token)` from a link such as `http://testserver/activate/MQ/abc-123`.
pub fn link_in(mail: &str, marker: &str) -> Option<(String, String)> {
    let start = mail.find(marker)? + marker.len();
    let rest: String = mail[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let (uid, token) = rest.split_once('/')?;
    Some((uid.to_string(), token.to_string()))
}

/// A throwaway PostgreSQL database, dropped when the last test using it ends.
struct PgDatabase {
    admin: String,
    name: String,
    url: String,
}

impl PgDatabase {
    async fn create(admin: &str) -> PgDatabase {
        use sqlx::Connection;
        let name = format!("roster_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .expect("connect to ROSTER_TEST_DATABASE_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .expect("create a test database");
        let _ = conn.close().await;
        let url = match admin.rsplit_once('/') {
            Some((server, last)) if !last.contains('@') => format!("{server}/{name}"),
            _ => format!("{}/{name}", admin.trim_end_matches('/')),
        };
        // Keep any query string (sslmode and the like).
        let url = match admin.split_once('?') {
            Some((_, query)) => format!("{}?{query}", url.split('?').next().unwrap()),
            None => url,
        };
        PgDatabase {
            admin: admin.to_string(),
            name,
            url,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime; use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                use sqlx::Connection;
                if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut conn)
                        .await;
                    let _ = conn.close().await;
                }
            });
        })
        .join();
    }
}

/// A real S3-compatible server (moto's server mode, from `.venv`) on a
/// loopback port with one bucket, stopped when dropped.
pub struct S3Server {
    child: std::process::Child,
    pub endpoint: String,
    pub bucket: String,
}

impl S3Server {
    pub async fn start() -> S3Server {
        let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
        assert!(
            python.exists(),
            "{} not found: run scripts/test (it installs moto into .venv)",
            python.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = std::process::Command::new(&python)
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start moto");
        let endpoint = format!("http://127.0.0.1:{port}");
        let server = S3Server {
            child,
            endpoint: endpoint.clone(),
            bucket: "roster-test".into(),
        };
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            // Creating the bucket doubles as the readiness probe.
            if let Ok(r) = client.put(format!("{endpoint}/roster-test")).send().await
                && r.status().is_success()
            {
                break;
            }
            assert!(Instant::now() < deadline, "moto did not start on {port}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        server
    }

    /// Points a configuration at this server.
    pub fn configure(&self, config: &mut Config) {
        config.s3_bucket = Some(self.bucket.clone());
        config.s3_endpoint = Some(self.endpoint.clone());
        config.s3_access_key_id = Some("testing".into());
        config.s3_secret_access_key = Some("testing".into());
    }

    /// The keys in the bucket (a ListObjectsV2 call).
    pub async fn keys(&self) -> Vec<String> {
        let xml = reqwest::get(format!("{}/{}?list-type=2", self.endpoint, self.bucket))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        xml.split("<Key>")
            .skip(1)
            .filter_map(|s| s.split("</Key>").next())
            .map(str::to_string)
            .collect()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
