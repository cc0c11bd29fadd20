//! Where the bytes of uploaded files live: a folder on local disk (the
//! default, `data_dir/files`) or an S3-compatible bucket (when `S3_BUCKET`
//! is set). Rows in the `blobs` table name files by their storage key; this
//! module knows nothing of rows, only keys and bytes.
//!
//! A `put` returns only once the bytes are durable (on disk: written,
//! fsynced and renamed into place, the folder fsynced; on S3: acknowledged
//! by the service), so a row naming the key may then commit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use futures_util::TryStreamExt;
use object_store::ObjectStore;
use object_store::ObjectStoreExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use rand::Rng;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
#[error("file store: {0}")]
pub struct FileStoreError(String);

type Result<T> = std::result::Result<T, FileStoreError>;

fn fail(e: impl std::fmt::Display) -> FileStoreError {
    FileStoreError(e.to_string())
}

#[derive(Clone)]
pub enum FileStore {
    Disk(PathBuf),
    S3(Arc<dyn ObjectStore>),
}

impl std::fmt::Debug for FileStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FileStore::Disk(root) => write!(f, "disk:{}", root.display()),
            FileStore::S3(store) => write!(f, "{store}"),
        }
    }
}

/// A new storage key: two shard characters, a slash, and 26 more, all
/// lower-case base36 from a CSPRNG (about 144 bits). Never derived from the
/// user's file name.
pub fn new_key() -> String {
    const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::rng();
    let mut key = String::with_capacity(29);
    for i in 0..28 {
        if i == 2 {
            key.push('/');
        }
        key.push(ALPHABET[rng.random_range(0..ALPHABET.len())] as char);
    }
    key
}

/// A key as `new_key` makes them; anything else never reaches the disk.
fn valid_key(key: &str) -> bool {
    key.len() == 29
        && key.bytes().enumerate().all(|(i, b)| {
            if i == 2 {
                b == b'/'
            } else {
                b.is_ascii_digit() || b.is_ascii_lowercase()
            }
        })
}

impl FileStore {
    pub fn from_config(config: &Config) -> anyhow::Result<FileStore> {
        let Some(bucket) = &config.s3_bucket else {
            return Ok(FileStore::Disk(config.files_dir()));
        };
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(bucket)
            .with_region(&config.s3_region);
        if let Some(endpoint) = &config.s3_endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"))
                .with_virtual_hosted_style_request(false);
        }
        if let Some(id) = &config.s3_access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(secret) = &config.s3_secret_access_key {
            builder = builder.with_secret_access_key(secret);
        }
        Ok(FileStore::S3(Arc::new(builder.build()?)))
    }

    pub fn describe(&self) -> String {
        format!("{self:?}")
    }

    /// Stores `bytes` under `key`; durable when this returns.
    pub async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        if !valid_key(key) {
            return Err(fail(format!("invalid key {key:?}")));
        }
        match self {
            FileStore::Disk(root) => {
                let root = root.clone();
                let key = key.to_string();
                tokio::task::spawn_blocking(move || write_synced(&root, &key, &bytes))
                    .await
                    .map_err(fail)?
                    .map_err(fail)
            }
            FileStore::S3(store) => {
                store
                    .put(&ObjectPath::from(key), bytes.into())
                    .await
                    .map_err(fail)?;
                Ok(())
            }
        }
    }

    /// The bytes under `key`, or `None` when there is no such file.
    pub async fn get(&self, key: &str) -> Result<Option<Bytes>> {
        if !valid_key(key) {
            return Ok(None);
        }
        match self {
            FileStore::Disk(root) => match tokio::fs::read(root.join(key)).await {
                Ok(bytes) => Ok(Some(Bytes::from(bytes))),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(fail(e)),
            },
            FileStore::S3(store) => match store.get(&ObjectPath::from(key)).await {
                Ok(result) => Ok(Some(result.bytes().await.map_err(fail)?)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(fail(e)),
            },
        }
    }

    /// Removes `key`; a missing file is not an error.
    pub async fn delete(&self, key: &str) -> Result<()> {
        if !valid_key(key) {
            return Ok(());
        }
        match self {
            FileStore::Disk(root) => match tokio::fs::remove_file(root.join(key)).await {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(fail(e)),
            },
            FileStore::S3(store) => match store.delete(&ObjectPath::from(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(e) => Err(fail(e)),
            },
        }
    }

    /// Deletes `keys` after a commit that stopped naming them. Failures are
    /// logged and left to the orphan sweep.
    pub async fn delete_quietly(&self, keys: &[String]) {
        for key in keys {
            if let Err(e) = self.delete(key).await {
                tracing::warn!(error = %e, key, "could not delete a replaced file; the sweep will");
            }
        }
    }

    /// Every stored key last modified before `cutoff` (candidates for the
    /// orphan sweep).
    pub async fn keys_older_than(&self, cutoff: SystemTime) -> Result<Vec<String>> {
        match self {
            FileStore::Disk(root) => {
                let root = root.clone();
                tokio::task::spawn_blocking(move || disk_keys_older_than(&root, cutoff))
                    .await
                    .map_err(fail)?
                    .map_err(fail)
            }
            FileStore::S3(store) => {
                let cutoff_secs = cutoff
                    .duration_since(SystemTime::UNIX_EPOCH)
                    .unwrap_or(Duration::ZERO)
                    .as_secs() as i64;
                let metas: Vec<_> = store.list(None).try_collect().await.map_err(fail)?;
                Ok(metas
                    .into_iter()
                    .filter(|m| m.last_modified.timestamp() < cutoff_secs)
                    .map(|m| m.location.to_string())
                    .filter(|k| valid_key(k))
                    .collect())
            }
        }
    }
}

/// Writes to a temporary file, fsyncs it, renames it into place and fsyncs
/// the folder, so the file is complete and durable or absent.
fn write_synced(root: &Path, key: &str, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let path = root.join(key);
    let dir = path.parent().unwrap_or(root);
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.part", uuid::Uuid::new_v4().simple()));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn disk_keys_older_than(root: &Path, cutoff: SystemTime) -> std::io::Result<Vec<String>> {
    let mut keys = Vec::new();
    let shards = match std::fs::read_dir(root) {
        Ok(shards) => shards,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(keys),
        Err(e) => return Err(e),
    };
    for shard in shards {
        let shard = shard?;
        if !shard.file_type()?.is_dir() {
            continue;
        }
        for file in std::fs::read_dir(shard.path())? {
            let file = file?;
            let modified = file.metadata()?.modified()?;
            if modified >= cutoff {
                continue;
            }
            let name = file.file_name().to_string_lossy().to_string();
            let key = format!("{}/{}", shard.file_name().to_string_lossy(), name);
            if valid_key(&key) {
                keys.push(key);
            } else if name.ends_with(".part") {
                // A temporary file left by a crash mid-write.
                keys.push(format!("{}/{}", shard.file_name().to_string_lossy(), name));
            }
        }
    }
    Ok(keys)
}

/// Removes a stale temporary file found by the sweep (not a valid key).
pub async fn remove_stale_part(store: &FileStore, key: &str) {
    if let FileStore::Disk(root) = store
        && key.ends_with(".part")
        && !key.contains("..")
    {
        let _ = tokio::fs::remove_file(root.join(key)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_sharded_and_validated() {
        let a = new_key();
        let b = new_key();
        assert_ne!(a, b);
        assert!(valid_key(&a), "{a}");
        assert_eq!(&a[2..3], "/");
        assert!(!valid_key("../../etc/passwd"));
        assert!(!valid_key("ab/../../../../../etc/passwd"));
        assert!(!valid_key("AB/cdefghijklmnopqrstuvwxyz01"));
    }

    #[tokio::test]
    async fn disk_put_get_delete() {
        let dir = std::env::temp_dir().join(format!("roster-fs-{}", uuid::Uuid::new_v4()));
        let store = FileStore::Disk(dir.clone());
        let key = new_key();
        store.put(&key, Bytes::from_static(b"hello")).await.unwrap();
        assert_eq!(store.get(&key).await.unwrap().unwrap(), &b"hello"[..]);
        let later = SystemTime::now() + Duration::from_secs(60);
        assert_eq!(
            store.keys_older_than(later).await.unwrap(),
            vec![key.clone()]
        );
        assert!(
            store
                .keys_older_than(SystemTime::UNIX_EPOCH)
                .await
                .unwrap()
                .is_empty()
        );
        store.delete(&key).await.unwrap();
        assert!(store.get(&key).await.unwrap().is_none());
        store.delete(&key).await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }
}
