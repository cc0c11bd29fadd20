//! The application state shared by every request, the background tasks and
//! the command-line commands.

use std::sync::Arc;

use tokio::sync::Notify;

use crate::config::Config;
use crate::domain::passwords::{Hasher, PasswordPolicy};
use crate::domain::tokens::Keys;
use crate::filestore::FileStore;
use crate::store::Db;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub config: Arc<Config>,
    pub keys: Arc<Keys>,
    pub hasher: Hasher,
    pub passwords: Arc<PasswordPolicy>,
    /// Where uploaded files' bytes live.
    pub files: FileStore,
    /// Wakes the outbox worker after a transaction that queued mail commits.
    pub outbox_wakeup: Arc<Notify>,
}

impl AppState {
    pub fn new(db: Db, config: Config, secret_key: &str) -> anyhow::Result<AppState> {
        Ok(AppState {
            db,
            files: FileStore::from_config(&config)?,
            keys: Arc::new(Keys::new(secret_key)),
            hasher: Hasher::new(config.password_hash_concurrency),
            passwords: Arc::new(PasswordPolicy::from_config(&config)),
            config: Arc::new(config),
            outbox_wakeup: Arc::new(Notify::new()),
        })
    }
}
