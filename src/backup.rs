//! `roster backup DIR`: a copy of a single-machine deployment (SQLite and
//! files on local disk), taken while the server runs. Restoring is pointing
//! `ROSTER_DATA_DIR` at the folder (or copying it back) and starting Roster.
//!
//! The database is copied with `VACUUM INTO`, a transactionally consistent
//! snapshot. Then the files the snapshot names are copied: stored files never
//! change once written (each has a random key), so every one is still there
//! unless a change committed after the snapshot replaced it and deleted it.
//! Such a backup would name a missing file, so it fails and says to run it
//! again (the window is the few milliseconds between a commit and its file's
//! deletion).

use std::path::Path;

use anyhow::{Context, bail};

use crate::app::AppState;
use crate::store::Db;

/// What a backup holds.
#[derive(Debug)]
pub struct BackupSummary {
    pub files: usize,
    pub bytes: u64,
    /// Whether the signing key was copied (it is not when it comes from
    /// `ROSTER_SECRET_KEY`, which the operator keeps).
    pub secret_key: bool,
}

pub async fn backup(state: &AppState, dest: &Path) -> anyhow::Result<BackupSummary> {
    let Db::Sqlite(pool, ..) = &state.db else {
        bail!(
            "roster backup copies a SQLite deployment; back up PostgreSQL with its own tools \
             (pg_dump, base backups) and the bucket with versioning or replication"
        );
    };
    if state.config.s3_bucket.is_some() {
        bail!(
            "files are in the S3 bucket {:?}: back it up with versioning or replication, and the \
             database with `sqlite3 roster.db \"VACUUM INTO '...'\"`",
            state.config.s3_bucket.as_deref().unwrap_or_default()
        );
    }
    if dest.exists() && std::fs::read_dir(dest)?.next().is_some() {
        bail!("{} is not empty", dest.display());
    }
    std::fs::create_dir_all(dest)?;
    let snapshot = dest.join("roster.db");
    let target = snapshot
        .to_str()
        .context("the backup folder's path is not UTF-8")?
        .to_string();
    sqlx::query("VACUUM INTO $1")
        .bind(target)
        .execute(pool)
        .await
        .context("snapshot of the database")?;

    let key = state.config.data_dir.join("secret_key");
    let secret_key = state.config.secret_key.is_none() && key.exists();
    if secret_key {
        std::fs::copy(&key, dest.join("secret_key"))?;
    }

    let copy = crate::store::Db::connect(
        &format!("sqlite://{}", snapshot.display()),
        &crate::store::PoolOptions::new(1),
    )
    .await?;
    let mut tx = copy.begin_read().await?;
    let keys = crate::store::blobs::all_keys(&mut tx).await?;
    tx.commit().await?;
    copy.close().await;
    let (from, to) = (state.config.files_dir(), dest.join("files"));
    let mut summary = BackupSummary {
        files: 0,
        bytes: 0,
        secret_key,
    };
    let mut replaced = 0;
    for key in keys {
        let target = to.join(&key);
        if let Some(parent) = target.parent() {
            tokio::fs::create_dir_all(parent).await?;
        }
        match tokio::fs::copy(from.join(&key), &target).await {
            Ok(n) => {
                summary.files += 1;
                summary.bytes += n;
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => replaced += 1,
            Err(e) => return Err(e).with_context(|| format!("copying stored file {key}")),
        }
    }
    if replaced > 0 {
        bail!(
            "{replaced} stored files were replaced while the backup ran, so {} is incomplete: \
             empty it and run the backup again",
            dest.display()
        );
    }
    Ok(summary)
}
