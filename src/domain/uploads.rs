//! Uploaded files: what is accepted (type sniffed from the bytes, size,
//! image dimensions, a name that agrees with the content), how a file is
//! stored before the row that names it commits, and the signed, expiring
//! links that download it.

use axum::body::Bytes;
use base64::Engine;
use md5::{Digest, Md5};

use super::tokens::constant_time_eq;
use super::{Error, Result, now_micros};
use crate::app::AppState;
use crate::store::Tx;
use crate::store::blobs::{self, BlobRow, NewBlob};

/// A file as it arrived in a multipart body.
#[derive(Debug, Clone)]
pub struct IncomingFile {
    /// The name the client gave; metadata only, never a path.
    pub filename: String,
    pub bytes: Bytes,
}

/// The types Roster stores, recognised by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Png,
    Jpeg,
    Webp,
    Pdf,
}

impl FileKind {
    pub const ALL: [FileKind; 4] = [FileKind::Png, FileKind::Jpeg, FileKind::Webp, FileKind::Pdf];

    pub fn content_type(self) -> &'static str {
        match self {
            FileKind::Png => "image/png",
            FileKind::Jpeg => "image/jpeg",
            FileKind::Webp => "image/webp",
            FileKind::Pdf => "application/pdf",
        }
    }

    pub fn is_image(self) -> bool {
        self != FileKind::Pdf
    }

    /// File name extensions that may carry this type.
    fn extensions(self) -> &'static [&'static str] {
        match self {
            FileKind::Png => &["png"],
            FileKind::Jpeg => &["jpg", "jpeg", "jpe", "jfif"],
            FileKind::Webp => &["webp"],
            FileKind::Pdf => &["pdf"],
        }
    }

    fn sniff(bytes: &[u8]) -> Option<FileKind> {
        if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(FileKind::Png)
        } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(FileKind::Jpeg)
        } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
            Some(FileKind::Webp)
        } else if bytes.starts_with(b"%PDF-") {
            Some(FileKind::Pdf)
        } else {
            None
        }
    }
}

/// Which kinds a field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// PNG, JPEG, WebP (avatars, logos).
    Images,
    /// Images and PDF (certificates, compliance documents).
    Documents,
}

impl Accept {
    fn allows(self, kind: FileKind) -> bool {
        self == Accept::Documents || kind.is_image()
    }
}

/// A file that passed every check, ready to store.
#[derive(Debug, Clone)]
pub struct CheckedFile {
    pub filename: String,
    pub kind: FileKind,
    pub bytes: Bytes,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Base64 of the MD5 digest, as ActiveStorage records it.
    pub checksum: String,
}

pub const NOT_AN_IMAGE: &str =
    "Upload a valid image. The file you uploaded was either not an image or a corrupted image.";
pub const NOT_A_DOCUMENT: &str = "Upload a valid document: a PDF, PNG, JPEG or WebP file. The file you uploaded was none of these.";

/// Checks an upload against the rules; the message names what is wrong.
pub fn check(
    state: &AppState,
    file: IncomingFile,
    accept: Accept,
) -> std::result::Result<CheckedFile, String> {
    let config = &state.config;
    if file.bytes.is_empty() {
        return Err("The submitted file is empty.".into());
    }
    if file.bytes.len() > config.max_upload_bytes {
        return Err(format!(
            "The file is too large ({} bytes); the limit is {} bytes.",
            file.bytes.len(),
            config.max_upload_bytes
        ));
    }
    let refused = || match accept {
        Accept::Images => NOT_AN_IMAGE.to_string(),
        Accept::Documents => NOT_A_DOCUMENT.to_string(),
    };
    let kind = FileKind::sniff(&file.bytes).ok_or_else(refused)?;
    if !accept.allows(kind) {
        return Err(refused());
    }
    let filename = sanitize_filename(&file.filename);
    if let Some((_, ext)) = filename.rsplit_once('.') {
        let ext = ext.to_ascii_lowercase();
        if !kind.extensions().contains(&ext.as_str()) {
            return Err(format!(
                "The file name ends in .{ext} but the file is {}; rename it or upload the right file.",
                kind.content_type()
            ));
        }
    }
    let (mut width, mut height) = (None, None);
    if kind.is_image() {
        let size = imagesize::blob_size(&file.bytes).map_err(|_| NOT_AN_IMAGE.to_string())?;
        let (w, h) = (size.width as u64, size.height as u64);
        if w == 0 || h == 0 {
            return Err(NOT_AN_IMAGE.into());
        }
        let side = u64::from(config.max_image_side);
        if w > side || h > side || w * h > config.max_image_pixels {
            return Err(format!(
                "The image is {w}x{h} pixels; at most {side}x{side} and {} pixels in all are accepted.",
                config.max_image_pixels
            ));
        }
        width = u32::try_from(w).ok();
        height = u32::try_from(h).ok();
    }
    let checksum = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&file.bytes));
    Ok(CheckedFile {
        filename,
        kind,
        bytes: file.bytes,
        width,
        height,
        checksum,
    })
}

/// The client's file name as harmless metadata: the last path component,
/// without control or bidirectional-override characters, at most 255 bytes.
pub fn sanitize_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or("");
    let cleaned: String = base
        .chars()
        .filter(|c| {
            !c.is_control()
                && !matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}')
                && !matches!(c, '"' | '<' | '>' | ':' | '|' | '?' | '*')
        })
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let mut out = String::new();
    for c in trimmed.chars() {
        if out.len() + c.len_utf8() > 255 {
            break;
        }
        out.push(c);
    }
    if out.is_empty() { "file".into() } else { out }
}

/// Files written to the store for one request. If the request fails they
/// are deleted again; files its commit stopped naming are deleted after
/// the commit. (A crash in between leaves orphans for the sweep.)
#[derive(Default)]
pub struct Uploads {
    written: Vec<String>,
    replaced: Vec<String>,
}

/// A stored file whose row is not inserted yet.
#[derive(Debug)]
pub struct StagedFile {
    key: String,
    file: CheckedFile,
}

impl Uploads {
    pub fn new() -> Uploads {
        Uploads::default()
    }

    /// Writes the file's bytes (durably) before any transaction starts.
    pub async fn stage(&mut self, state: &AppState, file: CheckedFile) -> Result<StagedFile> {
        let key = crate::filestore::new_key();
        state
            .files
            .put(&key, file.bytes.clone())
            .await
            .map_err(|e| Error::Unavailable(e.to_string()))?;
        self.written.push(key.clone());
        Ok(StagedFile { key, file })
    }

    /// Inserts the row of a staged file; returns the blob id.
    pub async fn insert(
        &mut self,
        tx: &mut Tx,
        staged: &StagedFile,
        owner_id: i64,
        organization_id: Option<i64>,
    ) -> Result<i64> {
        let f = &staged.file;
        Ok(blobs::insert(
            tx,
            &NewBlob {
                storage_key: &staged.key,
                organization_id,
                owner_id: Some(owner_id),
                filename: &f.filename,
                content_type: f.kind.content_type(),
                byte_size: f.bytes.len() as i64,
                checksum: &f.checksum,
                width: f.width.map(i64::from),
                height: f.height.map(i64::from),
                now: now_micros(),
            },
        )
        .await?)
    }

    /// Deletes a blob row in `tx`; its file goes after the commit.
    pub async fn remove(&mut self, tx: &mut Tx, blob_id: Option<i64>) -> Result<()> {
        if let Some(id) = blob_id
            && let Some(key) = blobs::delete(tx, id).await?
        {
            self.replaced.push(key);
        }
        Ok(())
    }

    /// Settles the files after the request's transaction: on success the
    /// replaced files are deleted, on failure the new ones.
    pub async fn finish<T>(self, state: &AppState, outcome: Result<T>) -> Result<T> {
        match &outcome {
            Ok(_) => state.files.delete_quietly(&self.replaced).await,
            Err(_) => state.files.delete_quietly(&self.written).await,
        }
        outcome
    }
}

// ----------------------------------------------------------- signed links

/// `{public_url}/files/{token}/{name}`: a link that downloads the blob
/// without credentials until it expires.
pub fn download_url(state: &AppState, blob_id: i64, filename: &str) -> String {
    let expires = now_micros() / 1_000_000 + state.config.file_url_lifetime as i64;
    let token = download_token(state, blob_id, expires);
    format!(
        "{}/files/{token}/{}",
        state.config.public_url,
        percent_encode_segment(filename)
    )
}

fn download_token(state: &AppState, blob_id: i64, expires: i64) -> String {
    let data = format!("{blob_id}:{expires}");
    let sig = state.keys.sign("file-download", &data);
    format!("{blob_id}-{expires}-{}", &sig[..32])
}

/// The blob a download token names, if its signature holds and it has not
/// expired.
pub fn verify_download_token(state: &AppState, token: &str) -> Option<i64> {
    let mut parts = token.splitn(3, '-');
    let id: i64 = parts.next()?.parse().ok()?;
    let expires: i64 = parts.next()?.parse().ok()?;
    let sig = parts.next()?;
    let expected = download_token(state, id, expires);
    if !constant_time_eq(expected.as_bytes(), token.as_bytes()) || sig.len() != 32 {
        return None;
    }
    (expires >= now_micros() / 1_000_000).then_some(id)
}

/// A permanent, tamper-proof reference to a blob in ActiveStorage's
/// shape: `base64({"_rails":{"data":<id>,"pur":"blob_id"}})--<HMAC>`. The
/// base64 is URL-safe, so the id can sit in a path.
pub fn signed_id(state: &AppState, blob_id: i64) -> String {
    let envelope = format!("{{\"_rails\":{{\"data\":{blob_id},\"pur\":\"blob_id\"}}}}");
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(envelope);
    let sig = state.keys.sign("blob_id", &payload);
    format!("{payload}--{sig}")
}

/// The blob a signed id names, if its signature holds.
pub fn verify_signed_id(state: &AppState, signed: &str) -> Option<i64> {
    let (payload, sig) = signed.rsplit_once("--")?;
    let expected = state.keys.sign("blob_id", payload);
    if !constant_time_eq(expected.as_bytes(), sig.as_bytes()) {
        return None;
    }
    let envelope = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let value: serde_json::Value = serde_json::from_slice(&envelope).ok()?;
    let rails = value.get("_rails")?;
    (rails.get("pur")?.as_str()? == "blob_id")
        .then(|| rails.get("data")?.as_i64())
        .flatten()
}

/// A stored file to send.
pub struct Download {
    pub blob: BlobRow,
    pub bytes: Bytes,
}

pub async fn download(state: &AppState, token: &str) -> Result<Download> {
    let id = verify_download_token(state, token).ok_or(Error::NotFound)?;
    let mut tx = state.db.begin_read().await?;
    let blob = blobs::find(&mut tx, id).await?.ok_or(Error::NotFound)?;
    tx.commit().await?;
    let bytes = state
        .files
        .get(&blob.storage_key)
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?
        .ok_or(Error::NotFound)?;
    Ok(Download { blob, bytes })
}

/// RFC 3986 unreserved characters kept, everything else percent-encoded.
pub fn percent_encode_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ------------------------------------------------------------ orphan sweep

/// Deletes stored files that no row names and that are older than
/// `grace` (so uploads still in flight are left alone). Returns how many
/// were removed.
pub async fn sweep_orphans(state: &AppState, grace: std::time::Duration) -> Result<usize> {
    let cutoff = std::time::SystemTime::now() - grace;
    let keys = state
        .files
        .keys_older_than(cutoff)
        .await
        .map_err(|e| Error::Unavailable(e.to_string()))?;
    let mut removed = 0;
    for chunk in keys.chunks(500) {
        let (parts, keys): (Vec<String>, Vec<String>) =
            chunk.iter().cloned().partition(|k| k.ends_with(".part"));
        for part in &parts {
            crate::filestore::remove_stale_part(&state.files, part).await;
            removed += 1;
        }
        let mut tx = state.db.begin_read().await?;
        let named = blobs::existing_keys(&mut tx, &keys).await?;
        tx.commit().await?;
        for key in keys.iter().filter(|k| !named.contains(k)) {
            if state.files.delete(key).await.is_ok() {
                removed += 1;
            }
        }
    }
    if removed > 0 {
        tracing::info!(removed, "orphan files removed");
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_by_bytes() {
        assert_eq!(
            FileKind::sniff(b"\x89PNG\r\n\x1a\nxxxx"),
            Some(FileKind::Png)
        );
        assert_eq!(FileKind::sniff(b"%PDF-1.7"), Some(FileKind::Pdf));
        assert_eq!(FileKind::sniff(b"<?php echo 1; ?>"), None);
        assert_eq!(FileKind::sniff(b"<svg xmlns="), None);
        assert_eq!(
            FileKind::sniff(b"RIFF\0\0\0\0WEBPVP8 "),
            Some(FileKind::Webp)
        );
    }

    #[test]
    fn file_names_are_metadata_only() {
        assert_eq!(sanitize_filename("../../etc/passwd"), "passwd");
        assert_eq!(sanitize_filename("..\\..\\x.png"), "x.png");
        assert_eq!(sanitize_filename("a\r\nb.pdf"), "ab.pdf");
        assert_eq!(sanitize_filename("evil\u{202E}gnp.pdf"), "evilgnp.pdf");
        assert_eq!(sanitize_filename("/"), "file");
        assert_eq!(sanitize_filename(".hidden.png"), "hidden.png");
        assert_eq!(sanitize_filename("a\"b.png"), "ab.png");
        assert!(sanitize_filename(&"é".repeat(1000)).len() <= 255);
    }

    #[test]
    fn percent_encoding() {
        assert_eq!(percent_encode_segment("a b/é.png"), "a%20b%2F%C3%A9.png");
    }
}
