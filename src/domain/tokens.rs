//! Signed tokens: SimpleJWT-compatible access and refresh JWTs (HS256 only),
//! and Django-format one-time tokens for activation and password reset.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::store::users::UserRow;

/// The two kinds of JWT SimpleJWT issues.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenType {
    Access,
    Refresh,
}

impl TokenType {
    fn as_str(self) -> &'static str {
        match self {
            TokenType::Access => "access",
            TokenType::Refresh => "refresh",
        }
    }
}

/// The claims Roster reads from a verified JWT.
#[derive(Debug, Clone)]
pub struct Claims {
    pub token_type: String,
    pub jti: String,
    pub user_id: i64,
    pub exp: i64,
    pub iat: i64,
    /// The user's token version when issued; a password change bumps it.
    pub version: i64,
}

/// HS256 only, no leeway, `exp` required, `nbf` checked, no audience.
fn jwt_validation() -> Validation {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.leeway = 0;
    // Not before: a token dated in the future is not valid yet.
    validation.validate_nbf = true;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp"]);
    validation
}

/// The claims of a token as sent, before they are checked: read straight
/// into fields (a `serde_json` map cost an allocation per claim, on every
/// authenticated request). Other claims are ignored.
#[derive(Clone, serde::Deserialize)]
struct SentClaims {
    token_type: Option<Sent>,
    jti: Option<Sent>,
    user_id: Option<Sent>,
    exp: Option<Sent>,
    nbf: Option<Sent>,
    iat: Option<Sent>,
    ver: Option<Sent>,
}

/// One claim's value: a number (`None` when it is not an integer that fits
/// an i64, as `serde_json::Value::as_i64`), a string, or anything else.
#[derive(Clone, Debug, PartialEq)]
enum Sent {
    Number(Option<i64>),
    Text(String),
    Other,
}

impl Sent {
    fn is_number(&self) -> bool {
        matches!(self, Sent::Number(_))
    }

    fn into_i64(self) -> Option<i64> {
        match self {
            Sent::Number(n) => n,
            _ => None,
        }
    }
}

impl<'de> serde::Deserialize<'de> for Sent {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SentVisitor)
    }
}

struct SentVisitor;

impl<'de> serde::de::Visitor<'de> for SentVisitor {
    type Value = Sent;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_i64<E>(self, v: i64) -> Result<Sent, E> {
        Ok(Sent::Number(Some(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Sent, E> {
        Ok(Sent::Number(i64::try_from(v).ok()))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Sent, E> {
        Ok(Sent::Number(None))
    }

    fn visit_str<E>(self, v: &str) -> Result<Sent, E> {
        Ok(Sent::Text(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Sent, E> {
        Ok(Sent::Text(v))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Sent, E> {
        Ok(Sent::Other)
    }

    fn visit_unit<E>(self) -> Result<Sent, E> {
        Ok(Sent::Other)
    }

    fn visit_none<E>(self) -> Result<Sent, E> {
        Ok(Sent::Other)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Sent, D::Error> {
        d.deserialize_any(SentVisitor)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Sent, A::Error> {
        while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
        Ok(Sent::Other)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Sent, A::Error> {
        while map
            .next_entry::<serde::de::IgnoredAny, serde::de::IgnoredAny>()?
            .is_some()
        {}
        Ok(Sent::Other)
    }
}

/// Keys derived from the one secret.
pub struct Keys {
    secret: Vec<u8>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Built once: it holds sets of claim names, allocated on every build.
    validation: Validation,
    verified: VerifiedTokens,
}

/// JWTs that passed [`Keys::verify_jwt`], by their exact text, with their
/// claims: a client sends the same access token with every request, and
/// checking its signature and reading its claims again each time cost
/// about a tenth of a request's time. A token is the same bytes that were
/// verified, so the only thing that can change is the clock: an entry
/// answers only while its `exp` has not passed, and anything else goes
/// the whole way again (which gives the error message). What the token
/// names is checked against the database on every request as before (the
/// user, active, its token version; a refresh token's blacklist).
struct VerifiedTokens {
    claims: std::sync::Mutex<std::collections::HashMap<String, Claims>>,
}

/// Tokens kept at most (each a few hundred bytes). New tokens come only
/// from logins and refreshes, which are rate-limited and each cost a
/// password hash or a database write.
const VERIFIED_TOKENS_KEPT: usize = 4096;

impl VerifiedTokens {
    fn new() -> Self {
        VerifiedTokens {
            claims: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The claims of `token` if it was verified and has not expired at
    /// `now` (Unix seconds; `exp` equal to `now` is still valid, as
    /// jsonwebtoken without leeway has it).
    fn get(&self, token: &str, now: i64) -> Option<Claims> {
        let kept = self.claims.lock().ok()?;
        kept.get(token).filter(|c| c.exp >= now).cloned()
    }

    /// Keeps `claims` of a token that has just been verified. When full,
    /// expired entries go; if that frees nothing, all go.
    fn keep(&self, token: &str, claims: &Claims, now: i64) {
        let Ok(mut kept) = self.claims.lock() else {
            return;
        };
        if kept.len() >= VERIFIED_TOKENS_KEPT {
            kept.retain(|_, c| c.exp >= now);
            if kept.len() >= VERIFIED_TOKENS_KEPT {
                kept.clear();
            }
        }
        kept.insert(token.to_string(), claims.clone());
    }
}

impl Keys {
    pub fn new(secret: &str) -> Keys {
        Keys {
            secret: secret.as_bytes().to_vec(),
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            validation: jwt_validation(),
            verified: VerifiedTokens::new(),
        }
    }

    /// Signs a JWT of `kind` for `user_id`, valid `lifetime` seconds from
    /// `now` (Unix seconds). Returns the token and its `jti`.
    pub fn issue_jwt(
        &self,
        kind: TokenType,
        user_id: i64,
        version: i64,
        now: i64,
        lifetime: u64,
    ) -> (String, String) {
        let jti = uuid::Uuid::new_v4().simple().to_string();
        let claims = json!({
            "token_type": kind.as_str(),
            "exp": now + lifetime as i64,
            "iat": now,
            "jti": jti,
            "user_id": user_id.to_string(),
            "ver": version,
        });
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .expect("HS256 signing with an in-memory key cannot fail");
        (token, jti)
    }

    /// Verifies signature and expiry and reads the claims. The error is
    /// SimpleJWT's message for the failure. `expected` checks the type.
    pub fn verify_jwt(&self, token: &str, expected: Option<TokenType>) -> Result<Claims, String> {
        // jsonwebtoken's clock, which checks `exp` on the way in.
        let now = i64::try_from(jsonwebtoken::get_current_timestamp()).unwrap_or(i64::MAX);
        if let Some(claims) = self.verified.get(token, now) {
            return match expected {
                Some(kind) if claims.token_type != kind.as_str() => {
                    Err("Token has wrong type".into())
                }
                _ => Ok(claims),
            };
        }
        let claims = self.verify_jwt_uncached(token, expected)?;
        self.verified.keep(token, &claims, now);
        Ok(claims)
    }

    fn verify_jwt_uncached(
        &self,
        token: &str,
        expected: Option<TokenType>,
    ) -> Result<Claims, String> {
        let data = jsonwebtoken::decode::<SentClaims>(token, &self.decoding, &self.validation)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => "Token is expired".to_string(),
                ErrorKind::MissingRequiredClaim(c) if c == "exp" => {
                    "Token has no 'exp' claim".to_string()
                }
                _ => "Token is invalid".to_string(),
            })?;
        let claims = data.claims;
        // Time claims must be numbers; a string is not "absent" (the
        // CVE-2026-25537 class of bug), it is invalid.
        if [&claims.exp, &claims.nbf, &claims.iat]
            .iter()
            .any(|c| c.as_ref().is_some_and(|v| !v.is_number()))
        {
            return Err("Token is invalid".into());
        }
        let token_type = match claims.token_type {
            Some(Sent::Text(t)) => t,
            _ => return Err("Token has no type".into()),
        };
        if let Some(kind) = expected
            && token_type != kind.as_str()
        {
            return Err("Token has wrong type".into());
        }
        let jti = match claims.jti {
            Some(Sent::Text(j)) if !j.is_empty() => j,
            _ => return Err("Token has no id".into()),
        };
        // SimpleJWT >= 5.5.1 emits the user id as a string, older ones as an int.
        let user_id = match claims.user_id {
            Some(Sent::Text(s)) => s.parse().ok(),
            Some(Sent::Number(n)) => n,
            _ => None,
        }
        .ok_or_else(|| "Token contained no recognizable user identification".to_string())?;
        let int = |c: Option<Sent>| c.and_then(Sent::into_i64).unwrap_or(0);
        Ok(Claims {
            token_type,
            jti,
            user_id,
            exp: int(claims.exp),
            iat: int(claims.iat),
            version: int(claims.ver),
        })
    }

    /// A Django-format one-time token (`{ts36}-{hmac}`) for `purpose`.
    pub fn one_time_token(&self, purpose: Purpose, user: &UserRow, now_secs: i64) -> String {
        let ts = now_secs - DJANGO_EPOCH;
        format!(
            "{}-{}",
            to_base36(ts.max(0) as u64),
            self.one_time_hash(purpose, user, ts)
        )
    }

    /// Checks a one-time token: well-formed, signed for this user's current
    /// state and `purpose`, and younger than `lifetime` seconds.
    pub fn check_one_time_token(
        &self,
        purpose: Purpose,
        user: &UserRow,
        token: &str,
        now_secs: i64,
        lifetime: u64,
    ) -> bool {
        let Some((ts36, hash)) = token.split_once('-') else {
            return false;
        };
        let Some(ts) = from_base36(ts36) else {
            return false;
        };
        let expected = self.one_time_hash(purpose, user, ts as i64);
        if !constant_time_eq(expected.as_bytes(), hash.as_bytes()) {
            return false;
        }
        now_secs - DJANGO_EPOCH - (ts as i64) <= lifetime as i64
    }

    /// Django's `salted_hmac(...).hexdigest()[::2]` over the user's state,
    /// with a key salt per purpose so activation and reset tokens differ.
    fn one_time_hash(&self, purpose: Purpose, user: &UserRow, ts: i64) -> String {
        let key_salt = format!("roster.accounts.{}", purpose.as_str());
        let key = Sha256::new()
            .chain_update(key_salt.as_bytes())
            .chain_update(&self.secret)
            .finalize();
        let login_ts = user
            .last_login
            .map(django_login_timestamp)
            .unwrap_or_default();
        let value = format!(
            "{}{}{}{}{}",
            user.id, user.password, login_ts, ts, user.email
        );
        let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes keys of any size");
        mac.update(value.as_bytes());
        let digest = hex::encode(mac.finalize().into_bytes());
        digest.chars().step_by(2).collect()
    }

    /// A keyed SHA-256 of `data` (for signed ids and download links).
    pub fn sign(&self, purpose: &str, data: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.secret).expect("HMAC takes keys of any size");
        mac.update(purpose.as_bytes());
        mac.update(b"\0");
        mac.update(data.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

/// What a one-time token is for; a token of one purpose fails for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    Activation,
    PasswordReset,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Purpose::Activation => "activation",
            Purpose::PasswordReset => "password_reset",
        }
    }
}

/// 2001-01-01T00:00:00Z, the epoch of Django's token timestamps.
const DJANGO_EPOCH: i64 = 978_307_200;

/// `last_login` without microseconds, as Python's `str(datetime)` prints it.
fn django_login_timestamp(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => String::new(),
    }
}

fn to_base36(mut n: u64) -> String {
    const DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    if n == 0 {
        return "0".into();
    }
    let mut out = Vec::new();
    while n > 0 {
        out.push(DIGITS[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).expect("base36 digits are ASCII")
}

fn from_base36(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 13 {
        return None;
    }
    u64::from_str_radix(s, 36).ok()
}

pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Djoser's `uid`: the user id in unpadded URL-safe base64.
pub fn encode_uid(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(id.to_string())
}

pub fn decode_uid(uid: &str) -> Option<i64> {
    let bytes = URL_SAFE_NO_PAD.decode(uid.trim_end_matches('=')).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    text.parse().ok().filter(|id: &i64| *id > 0)
}

/// SHA-256 hex of a secret (how API keys are stored).
pub fn sha256_hex(data: &str) -> String {
    hex::encode(Sha256::digest(data.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> UserRow {
        UserRow {
            id: 7,
            email: "jane@example.com".into(),
            password: "$argon2id$x".into(),
            first_name: "Jane".into(),
            last_name: "Doe".into(),
            role: "admin".into(),
            organization_id: Some(1),
            added_by: None,
            is_active: false,
            timezone: "UTC".into(),
            token_version: 0,
            last_login: None,
            last_sign_in_at: None,
            created_at: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn uid_is_djosers() {
        assert_eq!(encode_uid(1), "MQ");
        assert_eq!(encode_uid(12), "MTI");
        assert_eq!(encode_uid(611), "NjEx");
        assert_eq!(decode_uid("NjEx"), Some(611));
        assert_eq!(decode_uid("NjEx=="), Some(611));
        assert_eq!(decode_uid("!!"), None);
        assert_eq!(decode_uid("MA"), None);
    }

    #[test]
    fn one_time_tokens_are_bound_to_purpose_state_and_time() {
        let keys = Keys::new("k".repeat(40).as_str());
        let u = user();
        let now = 1_800_000_000;
        let t = keys.one_time_token(Purpose::Activation, &u, now);
        assert!(keys.check_one_time_token(Purpose::Activation, &u, &t, now + 10, 60));
        assert!(!keys.check_one_time_token(Purpose::PasswordReset, &u, &t, now + 10, 60));
        assert!(!keys.check_one_time_token(Purpose::Activation, &u, &t, now + 61, 60));
        let mut changed = u.clone();
        changed.password = "$argon2id$y".into();
        assert!(!keys.check_one_time_token(Purpose::Activation, &changed, &t, now, 60));
        let mut moved = u.clone();
        moved.email = "other@example.com".into();
        assert!(!keys.check_one_time_token(Purpose::Activation, &moved, &t, now, 60));
        assert!(!keys.check_one_time_token(Purpose::Activation, &u, "garbage", now, 60));
        let other = Keys::new("z".repeat(40).as_str());
        assert!(!other.check_one_time_token(Purpose::Activation, &u, &t, now, 60));
    }

    #[test]
    fn jwts_round_trip_and_fail_with_simplejwt_messages() {
        let keys = Keys::new("k".repeat(40).as_str());
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let (t, jti) = keys.issue_jwt(TokenType::Refresh, 5, 2, now, 60);
        let c = keys.verify_jwt(&t, Some(TokenType::Refresh)).unwrap();
        assert_eq!((c.user_id, c.version, c.jti), (5, 2, jti));
        assert_eq!(
            keys.verify_jwt(&t, Some(TokenType::Access)).unwrap_err(),
            "Token has wrong type"
        );
        let (old, _) = keys.issue_jwt(TokenType::Access, 5, 0, now - 120, 60);
        assert_eq!(keys.verify_jwt(&old, None).unwrap_err(), "Token is expired");
        assert_eq!(
            keys.verify_jwt("a.b.c", None).unwrap_err(),
            "Token is invalid"
        );
        let other = Keys::new("z".repeat(40).as_str());
        assert_eq!(other.verify_jwt(&t, None).unwrap_err(), "Token is invalid");
    }

    #[test]
    fn a_verified_jwt_answers_from_memory_while_it_is_unexpired() {
        let keys = Keys::new("k".repeat(40).as_str());
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let (t, jti) = keys.issue_jwt(TokenType::Access, 7, 3, now, 600);
        assert!(keys.verified.get(&t, now).is_none());
        let first = keys.verify_jwt(&t, Some(TokenType::Access)).unwrap();
        let kept = keys.verified.get(&t, now).expect("kept after verifying");
        assert_eq!((kept.user_id, kept.version, &kept.jti), (7, 3, &jti));
        let again = keys.verify_jwt(&t, Some(TokenType::Access)).unwrap();
        assert_eq!((again.user_id, again.exp, again.jti), (7, first.exp, jti));
        // The kept claims still say what type the token is.
        assert_eq!(
            keys.verify_jwt(&t, Some(TokenType::Refresh)).unwrap_err(),
            "Token has wrong type"
        );
        // Valid up to and including its `exp`, as jsonwebtoken has it.
        assert!(keys.verified.get(&t, first.exp).is_some());
        assert!(keys.verified.get(&t, first.exp + 1).is_none());
        // Other bytes are another token: a changed signature is checked.
        let mut forged = t.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert_eq!(
            keys.verify_jwt(&forged, None).unwrap_err(),
            "Token is invalid"
        );
        assert!(keys.verified.get(&forged, now).is_none());
        // Failures are not kept.
        let (old, _) = keys.issue_jwt(TokenType::Access, 7, 3, now - 120, 60);
        assert_eq!(keys.verify_jwt(&old, None).unwrap_err(), "Token is expired");
        assert!(keys.verified.get(&old, now - 100).is_none());
    }

    #[test]
    fn verified_jwts_kept_stay_bounded_and_expired_ones_go_first() {
        let kept = VerifiedTokens::new();
        let claims = |exp| Claims {
            token_type: "access".into(),
            jti: "j".into(),
            user_id: 1,
            exp,
            iat: 0,
            version: 0,
        };
        let now = 1_000;
        kept.keep("live", &claims(now + 60), now);
        for n in 1..VERIFIED_TOKENS_KEPT {
            kept.keep(&format!("old{n}"), &claims(now - 1), now - 100);
        }
        assert_eq!(kept.claims.lock().unwrap().len(), VERIFIED_TOKENS_KEPT);
        // Full: the expired ones make room, the live one stays.
        kept.keep("new", &claims(now + 60), now);
        assert_eq!(kept.claims.lock().unwrap().len(), 2);
        assert!(kept.get("live", now).is_some() && kept.get("new", now).is_some());
        // Full of live tokens: all go, the newest is kept.
        for n in 0..VERIFIED_TOKENS_KEPT {
            kept.keep(&format!("live{n}"), &claims(now + 60), now);
        }
        assert!(kept.claims.lock().unwrap().len() <= VERIFIED_TOKENS_KEPT);
        assert!(
            kept.get(&format!("live{}", VERIFIED_TOKENS_KEPT - 1), now)
                .is_some()
        );
    }

    fn signed(keys: &Keys, claims: serde_json::Value) -> String {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap()
    }

    #[test]
    fn claims_of_every_json_type_are_read_or_refused_like_simplejwt() {
        let keys = Keys::new("k".repeat(40).as_str());
        let exp = time::OffsetDateTime::now_utc().unix_timestamp() + 60;
        // An old SimpleJWT's integer user id; no `ver` reads as 0; claims
        // Roster does not know, of any type, are ignored.
        let t = signed(
            &keys,
            json!({"token_type": "access", "exp": exp, "jti": "j", "user_id": 9,
                   "extra": {"a": [1, 2, {"b": null}]}, "flag": true, "n": 1.5}),
        );
        let c = keys.verify_jwt(&t, Some(TokenType::Access)).unwrap();
        assert_eq!((c.user_id, c.version, c.exp), (9, 0, exp));
        // A time claim that is not a number is invalid, not absent.
        for claim in ["nbf", "iat"] {
            let mut claims =
                json!({"token_type": "access", "exp": exp, "jti": "j", "user_id": "9"});
            claims[claim] = json!("0");
            let t = signed(&keys, claims);
            assert_eq!(keys.verify_jwt(&t, None).unwrap_err(), "Token is invalid");
        }
        let refused = [
            (
                json!({"exp": exp, "jti": "j", "user_id": "9"}),
                "Token has no type",
            ),
            (
                json!({"token_type": 1, "exp": exp, "jti": "j", "user_id": "9"}),
                "Token has no type",
            ),
            (
                json!({"token_type": "access", "exp": exp, "jti": "", "user_id": "9"}),
                "Token has no id",
            ),
            (
                json!({"token_type": "access", "exp": exp, "jti": ["j"], "user_id": "9"}),
                "Token has no id",
            ),
            (
                json!({"token_type": "access", "exp": exp, "jti": "j", "user_id": "nine"}),
                "Token contained no recognizable user identification",
            ),
            (
                json!({"token_type": "access", "exp": exp, "jti": "j", "user_id": {"id": 9}}),
                "Token contained no recognizable user identification",
            ),
            (
                json!({"token_type": "access", "exp": exp, "jti": "j", "user_id": 9.5}),
                "Token contained no recognizable user identification",
            ),
        ];
        for (claims, message) in refused {
            let t = signed(&keys, claims.clone());
            assert_eq!(keys.verify_jwt(&t, None).unwrap_err(), message, "{claims}");
        }
    }

    #[test]
    fn alg_none_is_refused() {
        let keys = Keys::new("k".repeat(40).as_str());
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD
            .encode(r#"{"token_type":"access","exp":9999999999,"jti":"x","user_id":"1"}"#);
        assert_eq!(
            keys.verify_jwt(&format!("{header}.{body}."), None)
                .unwrap_err(),
            "Token is invalid"
        );
    }
}
