//! Outgoing email through the outbox: messages are queued in the caller's
//! transaction and delivered by a worker with retries, to `.eml` files by
//! default or over SMTP when `SMTP_URL` is set. A mail server outage delays
//! mail; it never fails the request that caused it, and never loses mail.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::{Mailbox, header::ContentType};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::{MICROS_PER_SEC, Result, now_micros};
use crate::app::AppState;
use crate::store::{Tx, outbox};

/// One message to send.
pub struct Email {
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Queues `email` in `tx`; it is sent only if `tx` commits. Call
/// [`AppState::outbox_wakeup`]`.notify_one()` after the commit.
pub async fn enqueue(tx: &mut Tx, email: &Email) -> Result<()> {
    outbox::insert(tx, &email.to, &email.subject, &email.body, now_micros()).await?;
    Ok(())
}

/// How many messages wait for delivery.
pub async fn pending(state: &AppState) -> Result<i64> {
    let mut tx = state.db.begin_read().await?;
    Ok(outbox::pending_count(&mut tx).await?)
}

/// Fills a link template such as `{public_url}/activate/{uid}/{token}`.
pub fn link(state: &AppState, template: &str, uid: &str, token: &str) -> String {
    template
        .replace("{public_url}", &state.config.public_url)
        .replace("{uid}", uid)
        .replace("{token}", token)
}

/// Where mail goes.
#[derive(Clone)]
pub enum Mailer {
    /// One `.eml` file per message in this folder.
    Files(PathBuf),
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Mailer {
    pub fn from_state(state: &AppState) -> anyhow::Result<Mailer> {
        Ok(match &state.config.smtp_url {
            Some(url) => Mailer::Smtp(
                AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?
                    .timeout(Some(Duration::from_secs(20)))
                    .build(),
            ),
            None => Mailer::Files(state.config.outbox_dir()),
        })
    }

    async fn deliver(&self, id: i64, message: Message) -> anyhow::Result<()> {
        match self {
            Mailer::Files(dir) => {
                tokio::fs::create_dir_all(dir).await?;
                let bytes = message.formatted();
                let name = format!("{id:08}.eml");
                let tmp = dir.join(format!(".{name}.tmp"));
                // Write, sync, then rename: a crash never leaves half a message.
                let file = tokio::fs::File::create(&tmp).await?;
                let mut file = file.into_std().await;
                tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                    use std::io::Write;
                    file.write_all(&bytes)?;
                    file.sync_all()
                })
                .await??;
                tokio::fs::rename(&tmp, dir.join(&name)).await?;
                Ok(())
            }
            Mailer::Smtp(transport) => {
                transport.send(message).await?;
                Ok(())
            }
        }
    }
}

fn build_message(from: &str, row: &outbox::OutboxRow) -> anyhow::Result<Message> {
    let from: Mailbox = from.parse()?;
    let to: Mailbox = row.to_address.parse()?;
    Ok(Message::builder()
        .from(from)
        .to(to)
        .subject(&row.subject)
        .header(ContentType::TEXT_PLAIN)
        .body(row.body.clone())?)
}

/// Seconds to wait before the next attempt after `attempts` failures:
/// 5 s doubling, at most an hour.
fn backoff_secs(attempts: i64) -> i64 {
    5i64.saturating_mul(1i64 << attempts.clamp(0, 10))
        .min(3_600)
}

/// Messages claimed at a time: few enough to deliver well within the claim.
const CLAIM_BATCH: i64 = 10;

/// Delivers every message that is due; returns how many were sent.
pub async fn deliver_due(state: &AppState, mailer: &Mailer) -> Result<usize> {
    let mut sent = 0;
    loop {
        // Claim a batch so that no other worker (of this or another
        // instance) sends it too; the claim lapses after two minutes if this
        // process dies mid-delivery.
        let now = now_micros();
        let mut tx = state.db.begin_write().await?;
        let batch =
            outbox::claim_due(&mut tx, now, now + 120 * MICROS_PER_SEC, CLAIM_BATCH).await?;
        tx.commit().await?;
        if batch.is_empty() {
            return Ok(sent);
        }
        for row in batch {
            let result = match build_message(&state.config.email_from, &row) {
                Ok(message) => mailer.deliver(row.id, message).await,
                Err(e) => Err(e),
            };
            let mut tx = state.db.begin_write().await?;
            match result {
                Ok(()) => {
                    outbox::mark_sent(&mut tx, row.id, now_micros()).await?;
                    sent += 1;
                    tracing::info!(outbox.id = row.id, to = %row.to_address, subject = %row.subject, "email delivered");
                }
                Err(e) => {
                    let next = now_micros() + backoff_secs(row.attempts) * MICROS_PER_SEC;
                    outbox::mark_failed(&mut tx, row.id, next, &e.to_string()).await?;
                    tracing::warn!(outbox.id = row.id, attempts = row.attempts + 1, error = %e, "email delivery failed; will retry");
                }
            }
            tx.commit().await?;
        }
    }
}

/// Runs until `shutdown` fires: delivers due mail whenever woken, and at
/// least every `outbox_poll_secs` (for retries and other instances' mail).
pub async fn run_worker(
    state: AppState,
    mailer: Mailer,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let poll = Duration::from_secs(state.config.outbox_poll_secs);
    loop {
        if let Err(e) = deliver_due(&state, &mailer).await {
            tracing::warn!(error = %e, "outbox pass failed");
        }
        tokio::select! {
            _ = state.outbox_wakeup.notified() => {}
            _ = tokio::time::sleep(poll) => {}
            _ = shutdown.changed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_grows_and_caps() {
        assert_eq!(super::backoff_secs(0), 5);
        assert_eq!(super::backoff_secs(1), 10);
        assert_eq!(super::backoff_secs(30), 3_600);
    }
}
