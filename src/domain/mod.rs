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
    Timestamp(micros)
        .write(&mut [0; Timestamp::MAX_LEN])
        .to_owned()
}

/// A stored timestamp (microseconds since the epoch) that serializes as
/// [`iso8601`] writes it, from a buffer on the stack: a list page renders
/// two per row, and a `String` each, through the `time` crate, was 5% of
/// the instructions of a page of departments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    const MAX_LEN: usize = 27;

    /// The text, written into `buf`. Empty beyond the years -9999 to 9999
    /// (as with the `time` crate, which wrote these before); years before 0
    /// are clamped to 0000 rather than given a sign.
    fn write(self, buf: &mut [u8; Self::MAX_LEN]) -> &str {
        /// `00` to `99`: two digits at a time, not a division per digit.
        const PAIRS: [[u8; 2]; 100] = {
            let mut pairs = [[0; 2]; 100];
            let mut n = 0;
            while n < 100 {
                pairs[n] = [b'0' + (n / 10) as u8, b'0' + (n % 10) as u8];
                n += 1;
            }
            pairs
        };
        let mut two = |at: usize, value: u32| {
            buf[at..at + 2].copy_from_slice(&PAIRS[value as usize % 100]);
        };
        let secs = self.0.div_euclid(MICROS_PER_SEC);
        let frac = self.0.rem_euclid(MICROS_PER_SEC) as u32;
        let (days, second_of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400) as u32);
        // The civil date of a day number: Howard Hinnant's `civil_from_days`.
        let z = days + 719_468;
        let (era, day_of_era) = (z.div_euclid(146_097), z.rem_euclid(146_097));
        let year_of_era =
            (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
        let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let shifted_month = (5 * day_of_year + 2) / 153; // March is 0
        let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
        let month = if shifted_month < 10 {
            shifted_month + 3
        } else {
            shifted_month - 9
        };
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        if !(-9999..=9999).contains(&year) {
            return "";
        }
        let (hour, minute, second) = (
            second_of_day / 3_600,
            second_of_day / 60 % 60,
            second_of_day % 60,
        );
        let year = year.max(0) as u32;
        two(0, year / 100);
        two(2, year);
        two(5, month as u32);
        two(8, day as u32);
        two(11, hour);
        two(14, minute);
        two(17, second);
        let end = if frac == 0 {
            19
        } else {
            two(20, frac / 10_000);
            two(22, frac / 100);
            two(24, frac);
            26
        };
        for (at, separator) in [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'.'),
        ] {
            buf[at] = separator;
        }
        buf[end] = b'Z';
        // Only ASCII digits and separators were written.
        std::str::from_utf8(&buf[..=end]).unwrap_or_default()
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.write(&mut [0; Self::MAX_LEN]))
    }
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
        assert_eq!(
            iso8601(-62_167_219_200_000_001),
            "0000-12-31T23:59:59.999999Z"
        );
        assert_eq!(
            serde_json::to_string(&[Timestamp(1_709_288_430_123_456), Timestamp(0)]).unwrap(),
            r#"["2024-03-01T10:20:30.123456Z","1970-01-01T00:00:00Z"]"#
        );
    }

    /// The hand-written calendar arithmetic against the `time` crate, over
    /// instants from every era it represents and the edges of its range.
    #[test]
    fn timestamps_agree_with_the_time_crate() {
        let expected = |micros: i64| {
            let secs = micros.div_euclid(MICROS_PER_SEC);
            let frac = micros.rem_euclid(MICROS_PER_SEC);
            let Ok(t) = time::OffsetDateTime::from_unix_timestamp(secs) else {
                return String::new();
            };
            let year = t.year().clamp(0, 9999);
            let (month, day) = (u8::from(t.month()), t.day());
            let (h, m, s) = (t.hour(), t.minute(), t.second());
            let fraction = if frac == 0 {
                String::new()
            } else {
                format!(".{frac:06}")
            };
            format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}{fraction}Z")
        };
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut seen = 0;
        for _ in 0..300_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let micros = match x % 3 {
                0 => (x as i64) % 400_000_000_000_000_000,
                1 => (x as i64) % 4_000_000_000_000_000,
                _ => (x as i64) % 400_000_000_000 * MICROS_PER_SEC,
            };
            assert_eq!(iso8601(micros), expected(micros), "{micros}");
            seen += usize::from(!expected(micros).is_empty());
        }
        assert!(seen > 200_000, "{seen} instants in range");
        let edges = [
            i64::MIN,
            i64::MAX,
            -62_167_219_200_000_001,  // the last instant of 1 BC
            -377_705_116_800_000_000, // -9999-01-01
            -377_705_116_800_000_001,
            253_402_300_799_999_999, // 9999-12-31T23:59:59.999999
            951_782_400_000_000,     // 2000-02-29
            4_107_542_400_000_000,   // 2100-03-01
        ];
        for micros in edges {
            assert_eq!(iso8601(micros), expected(micros), "{micros}");
        }
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
