//! The application state shared by every request, the background tasks and
//! the command-line commands.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::{Notify, Semaphore};

use crate::config::Config;
use crate::domain::passwords::{Hasher, PasswordPolicy};
use crate::domain::tokens::Keys;
use crate::filestore::FileStore;
use crate::http::metrics::Metrics;
use crate::store::Db;
use crate::store::team::TeamLists;

/// Cloned for every request (each extractor and middleware takes its own
/// copy), so it is one reference count, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What [`AppState`] shares.
pub struct Shared {
    pub db: Db,
    pub config: Arc<Config>,
    pub keys: Arc<Keys>,
    pub hasher: Hasher,
    pub passwords: Arc<PasswordPolicy>,
    /// Where uploaded files' bytes live.
    pub files: FileStore,
    /// Wakes the outbox worker after a transaction that queued mail commits.
    pub outbox_wakeup: Arc<Notify>,
    /// Request counters for `/metrics`.
    pub metrics: Arc<Metrics>,
    /// One permit per request being handled (`max_concurrent_requests`).
    pub admission: Arc<Semaphore>,
    /// Team searches' matches and deep pages' marks (see [`TeamLists`]).
    pub team_lists: TeamLists,
    /// Set when shutdown begins: `/readyz` then answers 503.
    draining: AtomicBool,
}

impl AppState {
    pub fn new(db: Db, config: Config, secret_key: &str) -> anyhow::Result<AppState> {
        let config_max_concurrent = config.max_concurrent_requests;
        Ok(AppState(Arc::new(Shared {
            db,
            files: FileStore::from_config(&config)?,
            keys: Arc::new(Keys::new(secret_key)),
            hasher: Hasher::new(
                config.password_hash_concurrency,
                Duration::from_secs(config.password_hash_wait_secs),
            ),
            passwords: Arc::new(PasswordPolicy::from_config(&config)),
            config: Arc::new(config),
            outbox_wakeup: Arc::new(Notify::new()),
            metrics: Arc::new(Metrics::default()),
            admission: Arc::new(Semaphore::new(config_max_concurrent)),
            team_lists: TeamLists::default(),
            draining: AtomicBool::new(false),
        })))
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }

    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }
}
