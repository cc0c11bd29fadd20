//! The domain: Roster's rules, written once and shared by every surface.
//! Functions here take the application state and typed input, open one
//! transaction, and return domain values or a domain [`Error`].

pub mod accounts;
pub mod api_keys;
pub mod auth;
pub mod coach;
pub mod company;
pub mod email;
pub mod error;
pub mod organisation;
pub mod passwords;
pub mod profiles;
pub mod rate_limit;
pub mod tokens;
pub mod uploads;

pub use error::{AuthError, Error, FieldErrors, Result};

/// Now, as integer microseconds since the Unix epoch (how every timestamp is
/// stored).
pub fn now_micros() -> i64 {
    let now = time::OffsetDateTime::now_utc();
    (now.unix_timestamp_nanos() / 1_000) as i64
}

pub const MICROS_PER_SEC: i64 = 1_000_000;

/// A stored timestamp's UTC calendar date, `YYYY-MM-DD`.
pub fn iso_date(micros: i64) -> String {
    let secs = micros.div_euclid(MICROS_PER_SEC);
    match time::OffsetDateTime::from_unix_timestamp(secs) {
        Ok(t) => format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        Err(_) => String::new(),
    }
}

/// A calendar date written `YYYY-MM-DD`, normalised; `None` if it is not one.
pub fn parse_date(text: &str) -> Option<String> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text, &format).ok()?;
    date.format(&format).ok()
}

/// Today's UTC date, `YYYY-MM-DD`.
pub fn today() -> String {
    iso_date(now_micros())
}

/// A stored timestamp as DRF renders a `DateTimeField`:
/// `2024-03-01T10:20:30.123456Z`, the fraction only when non-zero.
pub fn iso8601(micros: i64) -> String {
    let secs = micros.div_euclid(MICROS_PER_SEC);
    let frac = micros.rem_euclid(MICROS_PER_SEC);
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp(secs) else {
        return String::new();
    };
    // Digits pushed one by one: `format!` cost more than the rest of a
    // list row (every row has two timestamps).
    let mut out = String::with_capacity(27);
    let mut digits = |value: u32, width: u32, sep: char| {
        for place in (0..width).rev() {
            let digit = value / 10u32.pow(place) % 10;
            out.push(char::from(b'0' + digit as u8));
        }
        out.push(sep);
    };
    // `time` refuses years after 9999 (the empty string above); years
    // before 0 are clamped to 0000 rather than given a sign.
    digits(t.year().clamp(0, 9999) as u32, 4, '-');
    digits(u32::from(u8::from(t.month())), 2, '-');
    digits(u32::from(t.day()), 2, 'T');
    digits(u32::from(t.hour()), 2, ':');
    digits(u32::from(t.minute()), 2, ':');
    if frac == 0 {
        digits(u32::from(t.second()), 2, 'Z');
    } else {
        digits(u32::from(t.second()), 2, '.');
        digits(frac as u32, 6, 'Z');
    }
    out
}

/// A user's role inside an organisation, or platform staff.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    Client,
    Member,
    Coach,
    Admin,
    Staff,
}

impl Role {
    /// The stored spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Member => "member",
            Role::Coach => "coach",
            Role::Admin => "admin",
            Role::Staff => "staff",
        }
    }

    pub fn parse(stored: &str) -> Option<Role> {
        Some(match stored.to_ascii_lowercase().as_str() {
            "client" => Role::Client,
            "member" => Role::Member,
            "coach" => Role::Coach,
            "admin" => Role::Admin,
            "staff" => Role::Staff,
            _ => return None,
        })
    }

    /// The capitalised spelling of seed 004 (`Admin`, `Coach`, `Member`).
    pub fn title(self) -> &'static str {
        match self {
            Role::Client => "Client",
            Role::Member => "Member",
            Role::Coach => "Coach",
            Role::Admin => "Admin",
            Role::Staff => "Staff",
        }
    }

    /// The title of a stored role; empty for a value that is not a role.
    pub fn title_of(stored: &str) -> &'static str {
        Role::parse(stored).map(Role::title).unwrap_or("")
    }
}

/// The case-insensitive identity of an email address (what uniqueness and
/// lookups compare).
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Django's `normalize_email`: the domain part lower-cased, the local part
/// kept as typed.
pub fn normalize_email(email: &str) -> String {
    let email = email.trim();
    match email.rsplit_once('@') {
        Some((local, domain)) => format!("{local}@{}", domain.to_lowercase()),
        None => email.to_string(),
    }
}

/// Django's `EmailValidator`, in short: one `@`, a non-empty local part
/// without spaces, and a dotted domain (or `localhost`).
pub fn looks_like_email(email: &str) -> bool {
    let Some((local, domain)) = email.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.contains(char::is_whitespace)
        && !local.contains('@')
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..");
    let domain_ok = domain == "localhost"
        || (domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.chars().all(|c| c.is_alphanumeric() || c == '-')
            })
            && domain
                .rsplit('.')
                .next()
                .is_some_and(|tld| tld.chars().count() >= 2));
    local_ok && domain_ok && email.len() <= 254
}

/// A lower-case ASCII slug of `text` (`Jane Doe` -> `jane-doe`).
pub fn slugify(text: &str) -> String {
    let mut slug = String::new();
    for ch in text.chars() {
        if ch.is_ascii_alphanumeric() {
            slug.push(ch.to_ascii_lowercase());
        } else if !slug.is_empty() && !slug.ends_with('-') {
            slug.push('-');
        }
    }
    while slug.ends_with('-') {
        slug.pop();
    }
    slug
}

/// The first of `base`, `base-2`, `base-3`, ... not in `taken`.
pub fn unique_slug(base: &str, taken: &[String]) -> String {
    if !taken.iter().any(|t| t == base) {
        return base.to_string();
    }
    (2..)
        .map(|n| format!("{base}-{n}"))
        .find(|candidate| !taken.iter().any(|t| t == candidate))
        .unwrap_or_else(|| base.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs() {
        assert_eq!(slugify("Jane  Doe!"), "jane-doe");
        assert_eq!(slugify("--Acme, Inc.--"), "acme-inc");
        assert_eq!(
            unique_slug("acme", &["acme".into(), "acme-2".into()]),
            "acme-3"
        );
        assert_eq!(unique_slug("acme", &[]), "acme");
    }

    #[test]
    fn iso_timestamps() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(
            iso8601(1_709_288_430_123_456),
            "2024-03-01T10:20:30.123456Z"
        );
        assert_eq!(
            iso8601(1_709_288_430_000_100),
            "2024-03-01T10:20:30.000100Z"
        );
        assert_eq!(iso8601(-1), "1969-12-31T23:59:59.999999Z");
        assert_eq!(iso8601(253_402_300_799_000_000), "9999-12-31T23:59:59Z");
        assert_eq!(iso8601(253_402_300_800_000_000), "");
    }

    #[test]
    fn email_shapes() {
        assert!(looks_like_email("jane.doe+x@example.co.uk"));
        assert!(!looks_like_email("jane"));
        assert!(!looks_like_email("jane@"));
        assert!(!looks_like_email("ja ne@example.com"));
        assert!(!looks_like_email("jane@example"));
        assert!(!looks_like_email("jane@exa_mple.com"));
    }

    #[test]
    fn emails() {
        assert_eq!(normalize_email(" Jane@Example.COM "), "Jane@example.com");
        assert_eq!(email_key("Jane@Example.COM"), "jane@example.com");
    }
}
