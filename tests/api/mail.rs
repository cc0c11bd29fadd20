//! Delivery through a real SMTP server (Python's aiosmtpd, started here),
//! including mail queued while that server is down.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{TestApp, mails_in};

/// The Python that has aiosmtpd: `ROSTER_TEST_PYTHON`, else the project's
/// `.venv` made by `scripts/test`.
fn python() -> PathBuf {
    if let Ok(p) = std::env::var("ROSTER_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python")
}

/// An aiosmtpd server writing what it receives into a Maildir.
struct SmtpSink {
    child: Child,
    maildir: PathBuf,
}

impl SmtpSink {
    fn start(port: u16, maildir: &Path) -> SmtpSink {
        let python = python();
        assert!(
            python.exists(),
            "{} not found: run scripts/test (it installs aiosmtpd into .venv)",
            python.display()
        );
        let child = Command::new(&python)
            .args([
                "-m",
                "aiosmtpd",
                "-n",
                "-l",
                &format!("127.0.0.1:{port}"),
                "-c",
                "aiosmtpd.handlers.Mailbox",
            ])
            .arg(maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        let deadline = Instant::now() + Duration::from_secs(15);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not start listening on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        SmtpSink {
            child,
            maildir: maildir.to_path_buf(),
        }
    }

    fn mails_to(&self, to: &str) -> Vec<String> {
        mails_in(&self.maildir.join("new"), to)
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn wait_for(sink: &SmtpSink, to: &str, seconds: u64) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let mails = sink.mails_to(to);
        if !mails.is_empty() {
            return mails;
        }
        assert!(
            Instant::now() < deadline,
            "no mail to {to} reached the SMTP server"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn activation_mail_goes_out_over_smtp() {
    let port = free_port();
    let maildir =
        std::env::temp_dir().join(format!("roster-maildir-{}", uuid::Uuid::new_v4().simple()));
    let sink = SmtpSink::start(port, &maildir);
    let app = TestApp::spawn_with(|c| c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"))).await;
    app.signup("jane@example.com", "Admin").await;
    let mails = wait_for(&sink, "jane@example.com", 10).await;
    assert!(
        mails[0].contains("Subject: Activate your Roster account"),
        "{}",
        mails[0]
    );
    assert!(
        mails[0].contains("http://testserver/activate/"),
        "{}",
        mails[0]
    );
    assert!(
        app.mails_to("jane@example.com").is_empty(),
        "SMTP replaces the .eml outbox"
    );
    drop(sink);
    let _ = std::fs::remove_dir_all(maildir);
}

#[tokio::test]
async fn mail_queued_while_the_smtp_server_is_down_is_delivered_when_it_returns() {
    let port = free_port();
    let app = TestApp::spawn_with(|c| c.smtp_url = Some(format!("smtp://127.0.0.1:{port}"))).await;
    // Nothing listens on the port: signup still succeeds, the mail waits.
    app.signup("jane@example.com", "Admin").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while app
        .scalar_i64("SELECT COUNT(*) FROM outbox WHERE attempts > 0 AND sent_at IS NULL")
        .await
        == 0
    {
        assert!(
            Instant::now() < deadline,
            "the worker never tried to deliver"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.scalar_i64("SELECT COUNT(*) FROM outbox WHERE sent_at IS NOT NULL")
            .await,
        0
    );

    let maildir =
        std::env::temp_dir().join(format!("roster-maildir-{}", uuid::Uuid::new_v4().simple()));
    let sink = SmtpSink::start(port, &maildir);
    // The retry comes after the 5-second backoff.
    let mails = wait_for(&sink, "jane@example.com", 20).await;
    assert_eq!(mails.len(), 1);
    // The worker records the delivery just after the server accepted it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while app
        .scalar_i64("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL")
        .await
        != 0
    {
        assert!(Instant::now() < deadline, "the delivery was never recorded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(sink);
    let _ = std::fs::remove_dir_all(maildir);
}

/// Workers of several instances compete for the outbox: each message is
/// claimed by one of them and delivered exactly once (the server's own
/// worker competes too).
#[tokio::test]
async fn competing_workers_deliver_each_message_exactly_once() {
    use roster::domain::email::{self, Email, Mailer};
    let app = TestApp::spawn().await;
    let mut tx = app.state.db.begin_write().await.unwrap();
    for i in 0..40 {
        let mail = Email {
            to: format!("worker{i}@example.com"),
            subject: format!("message {i}"),
            body: "hello".into(),
        };
        email::enqueue(&mut tx, &mail).await.unwrap();
    }
    tx.commit().await.unwrap();
    let dirs: Vec<PathBuf> = (0..3)
        .map(|k| app.dir.join(format!("worker-{k}")))
        .collect();
    let mailers: Vec<Mailer> = dirs.iter().cloned().map(Mailer::Files).collect();
    let (a, b, c) = tokio::join!(
        email::deliver_due(&app.state, &mailers[0]),
        email::deliver_due(&app.state, &mailers[1]),
        email::deliver_due(&app.state, &mailers[2]),
    );
    let by_workers = a.unwrap() + b.unwrap() + c.unwrap();
    // Whatever the server's worker took is in its own outbox folder.
    let mut delivered: Vec<String> = Vec::new();
    for dir in dirs
        .iter()
        .chain(std::iter::once(&app.state.config.outbox_dir()))
    {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for entry in entries {
                let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
                let to = text
                    .lines()
                    .find_map(|l| l.strip_prefix("To: "))
                    .unwrap()
                    .to_string();
                delivered.push(to);
            }
        }
    }
    let unique: std::collections::HashSet<&String> = delivered.iter().collect();
    assert_eq!(delivered.len(), 40, "{delivered:?}");
    assert_eq!(unique.len(), 40, "a message was delivered twice");
    assert!((1..=40).contains(&by_workers));
    let pending = email::pending(&app.state).await.unwrap();
    assert_eq!(pending, 0);
}
