//! Worker profiles (seed 001): each Member's personal details, driving
//! licences, compliance documents and sub-records, kept by the admins of
//! their organisation (and platform staff), with an audit trail of every
//! change and optimistic concurrency through a version (the ETag).
//!
//! Who may do what, in one place ([`locate`]):
//! - `Target::Id`: organisation admins (their organisation's profiles; any
//!   other is not found) and staff; anyone else is forbidden.
//! - `Target::Own`: the caller's own profile (Members have one).

use serde_json::{Map, Value, json};

use super::auth::Principal;
use super::uploads::{CheckedFile, Uploads};
use super::{Error, FieldErrors, Result, Role, now_micros};
use crate::app::AppState;
use crate::store::Tx;
use crate::store::profiles::{
    self, ActivityRow, DocumentRow, ProfileFields, ProfileFilter, ProfileRecord, ProfileRow,
    RecordRow,
};

/// The compliance documents every organisation requires, in the seed's
/// order.
pub const COMPLIANCE_DOCUMENTS: [&str; 6] = [
    "dbs",
    "tacho",
    "enchanced_dbs",
    "cpc",
    "medical_check",
    "child_safeguard_training",
];

/// Document kinds holding one file: a new upload replaces the old.
pub const SLOT_KINDS: [&str; 7] = [
    "dbs",
    "enchanced_dbs",
    "tacho",
    "cpc",
    "medical_check",
    "child_safeguard_training",
    "cv",
];

/// Document kinds holding a list: uploads are appended.
pub const LIST_KINDS: [&str; 2] = ["documents", "driving_license"];

pub const ENGLISH_LEVELS: [&str; 5] = ["beginner", "intermediate", "advanced", "fluent", "native"];

/// UK driving licence categories, then the qualifications.
pub const LICENSES: [&str; 20] = [
    "am", "a1", "a2", "a", "b", "be", "c1", "c1e", "c", "ce", "d1", "d1e", "d", "de", "f", "g",
    "h", "k", "adr", "hiab",
];

/// Which profile a request names.
#[derive(Debug, Clone, Copy)]
pub enum Target {
    Id(i64),
    /// The caller's own.
    Own,
}

/// A profile with everything it renders.
#[derive(Debug, Clone)]
pub struct Profile {
    pub row: ProfileRow,
    pub licenses: Vec<String>,
    pub documents: Vec<DocumentRow>,
    pub records: Vec<RecordRow>,
    pub activities: Vec<ActivityRow>,
}

/// A strong ETag of the profile's state: its version, and the user
/// columns it shows. (Download links inside the body are signed afresh
/// for each response; the ETag names the data, not those bytes.)
pub fn etag(row: &ProfileRow) -> String {
    let state = format!(
        "{}:{}:{}:{}",
        row.id,
        row.version,
        row.user_updated_at,
        row.last_sign_in_at.unwrap_or(0)
    );
    format!("\"{}\"", &super::tokens::sha256_hex(&state)[..32])
}

/// `If-Match`: `*`, or a list of ETags of which one must be current.
/// Compared strongly, so weak tags never match.
pub fn if_match_holds(if_match: &str, current: &str) -> bool {
    if_match.trim() == "*"
        || if_match
            .split(',')
            .map(str::trim)
            .any(|tag| !tag.starts_with("W/") && tag == current)
}

/// `locate` for a change: the row locked and read afresh under the lock.
async fn locate_for_change(tx: &mut Tx, me: &Principal, target: Target) -> Result<ProfileRow> {
    let id = locate(tx, me, target).await?.row.id;
    profiles::lock(tx, id).await?;
    profiles::find(tx, id).await?.ok_or(Error::NotFound)
}

async fn locate(tx: &mut Tx, me: &Principal, target: Target) -> Result<ProfileRecord> {
    match target {
        Target::Own => profiles::find_record_by_user(tx, me.id())
            .await?
            .ok_or(Error::NotFound),
        Target::Id(id) => {
            let org = match me.role {
                Role::Staff => None,
                Role::Admin => Some(me.user.organization_id.ok_or(Error::NotFound)?),
                _ => return Err(Error::Forbidden(None)),
            };
            profiles::find_record(tx, id)
                .await?
                .filter(|found| org.is_none_or(|org| found.row.organization_id == org))
                .ok_or(Error::NotFound)
        }
    }
}

impl From<ProfileRecord> for Profile {
    fn from(record: ProfileRecord) -> Profile {
        let ProfileRecord { row, related } = record;
        Profile {
            row,
            licenses: related.licenses,
            documents: related.documents,
            records: related.records,
            activities: related.activities,
        }
    }
}

async fn load(tx: &mut Tx, id: i64) -> Result<Profile> {
    let record = profiles::find_record(tx, id)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(record.into())
}

pub async fn find(state: &AppState, me: &Principal, target: Target) -> Result<Profile> {
    let mut tx = state.db.begin_object_read().await?;
    let record = locate(&mut tx, me, target).await?;
    tx.commit().await?;
    Ok(record.into())
}

/// Gives a Member their profile (with their names) unless they have one.
pub async fn ensure(
    tx: &mut Tx,
    user_id: i64,
    organization_id: i64,
    first_name: &str,
    last_name: &str,
) -> Result<()> {
    profiles::ensure(
        tx,
        user_id,
        organization_id,
        first_name,
        last_name,
        now_micros(),
    )
    .await?;
    Ok(())
}

// ------------------------------------------------------------------- list

/// The filters of `GET /profiles`, as given (validated here).
#[derive(Debug, Default)]
pub struct ListQuery {
    pub license: Option<String>,
    pub english_level: Option<String>,
    pub missing_document: Option<String>,
    pub q: Option<String>,
    pub page: i64,
    pub per_page: i64,
}

pub struct ProfilePage {
    pub profiles: Vec<Profile>,
    pub page: i64,
    pub per_page: i64,
    pub total: i64,
}

pub async fn list(state: &AppState, me: &Principal, query: ListQuery) -> Result<ProfilePage> {
    let organization_id = match me.role {
        Role::Staff => None,
        Role::Admin => Some(me.user.organization_id.ok_or(Error::Forbidden(None))?),
        _ => return Err(Error::Forbidden(None)),
    };
    let mut errors = FieldErrors::new();
    let mut choice = |name: &str, value: &Option<String>, allowed: &[&str]| {
        if let Some(v) = value
            && !allowed.contains(&v.as_str())
        {
            errors.add(name, format!("is not one of: {}", allowed.join(", ")));
        }
    };
    choice("license", &query.license, &LICENSES);
    choice("english_level", &query.english_level, &ENGLISH_LEVELS);
    let kinds: Vec<&str> = SLOT_KINDS
        .iter()
        .chain(LIST_KINDS.iter())
        .copied()
        .collect();
    choice("missing_document", &query.missing_document, &kinds);
    if query.q.as_deref().is_some_and(|q| q.contains('\0')) {
        errors.add("q", "is invalid");
    }
    errors.into_result()?;
    let filter = ProfileFilter {
        organization_id,
        license: query.license,
        english_level: query.english_level,
        missing_document: query.missing_document,
        q: query.q.filter(|q| !q.trim().is_empty()),
    };
    let per_page = query.per_page.clamp(1, 100);
    let page = query.page.max(1);
    let mut tx = state.db.begin_read().await?;
    let total = profiles::count(&mut tx, &filter).await?;
    let offset = (page - 1).saturating_mul(per_page);
    let rows = if offset < total {
        profiles::list(&mut tx, &filter, per_page, offset).await?
    } else {
        Vec::new()
    };
    tx.commit().await?;
    let profiles = rows.into_iter().map(Profile::from).collect();
    Ok(ProfilePage {
        profiles,
        page,
        per_page,
        total,
    })
}

// ----------------------------------------------------------------- update

/// A change of the profile's own fields; `None` leaves a field as it is,
/// `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct ProfileChanges {
    pub first_name: Option<Option<String>>,
    pub last_name: Option<Option<String>>,
    pub postcode: Option<Option<String>>,
    pub english_level: Option<Option<String>>,
    pub contact_phone_number: Option<Option<String>>,
    pub birth_date: Option<Option<String>>,
    pub start_date: Option<Option<String>>,
    pub bio: Option<Option<String>>,
    pub licenses: Option<Vec<String>>,
}

/// A UK postcode, normalised (`ec1a1bb` -> `EC1A 1BB`), or `None`.
pub fn uk_postcode(text: &str) -> Option<String> {
    let compact: String = text
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_uppercase();
    if compact == "GIR0AA" {
        return Some("GIR 0AA".into());
    }
    if !(5..=7).contains(&compact.len()) || !compact.is_ascii() {
        return None;
    }
    let (outward, inward) = compact.split_at(compact.len() - 3);
    let inward_ok = {
        let b = inward.as_bytes();
        b[0].is_ascii_digit() && b[1].is_ascii_alphabetic() && b[2].is_ascii_alphabetic()
    };
    // Outward codes: A9, A99, AA9, AA99, A9A, AA9A.
    let shape: String = outward
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { 'A' })
        .collect();
    let outward_ok = matches!(
        shape.as_str(),
        "A9" | "A99" | "AA9" | "AA99" | "A9A" | "AA9A"
    );
    (inward_ok && outward_ok).then(|| format!("{outward} {inward}"))
}

/// A phone number as people write them: digits with spaces, dashes,
/// brackets and a leading `+`; 7 to 15 digits.
fn phone_ok(text: &str) -> bool {
    let digits = text.chars().filter(char::is_ascii_digit).count();
    (7..=15).contains(&digits)
        && text
            .chars()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || " -()".contains(c) || (c == '+' && i == 0))
}

/// The merged fields of a profile, checked with Rails' messages.
struct Merged {
    first_name: Option<String>,
    last_name: Option<String>,
    postcode: Option<String>,
    english_level: Option<String>,
    contact_phone_number: Option<String>,
    birth_date: Option<String>,
    start_date: Option<String>,
    bio: Option<String>,
    licenses: Vec<String>,
}

fn merge(current: &Profile, changes: ProfileChanges) -> std::result::Result<Merged, FieldErrors> {
    let r = &current.row;
    let pick = |change: Option<Option<String>>, now: Option<String>| match change {
        Some(v) => v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()),
        None => now,
    };
    let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
    let mut m = Merged {
        first_name: pick(changes.first_name, nonempty(&r.first_name)),
        last_name: pick(changes.last_name, nonempty(&r.last_name)),
        postcode: pick(changes.postcode, r.postcode.clone()),
        english_level: pick(changes.english_level, r.english_level.clone()),
        contact_phone_number: pick(changes.contact_phone_number, r.contact_phone_number.clone()),
        birth_date: pick(changes.birth_date, r.birth_date.clone()),
        start_date: pick(changes.start_date, r.start_date.clone()),
        bio: pick(changes.bio, r.bio.clone()),
        licenses: changes.licenses.unwrap_or_else(|| current.licenses.clone()),
    };
    let mut errors = FieldErrors::new();
    for (name, value) in [
        ("first_name", &m.first_name),
        ("last_name", &m.last_name),
        ("postcode", &m.postcode),
        ("english_level", &m.english_level),
        ("contact_phone_number", &m.contact_phone_number),
    ] {
        match value {
            None => errors.add(name, "can't be blank"),
            Some(v) if v.chars().count() > 255 => {
                errors.add(name, "is too long (maximum is 255 characters)")
            }
            Some(_) => {}
        }
    }
    if let Some(p) = &m.postcode
        && !errors.has("postcode")
    {
        match uk_postcode(p) {
            Some(normal) => m.postcode = Some(normal),
            None => errors.add("postcode", "is not a valid UK postcode"),
        }
    }
    if let Some(level) = &m.english_level {
        let lower = level.to_ascii_lowercase();
        if ENGLISH_LEVELS.contains(&lower.as_str()) {
            m.english_level = Some(lower);
        } else if !errors.has("english_level") {
            errors.add("english_level", "is not included in the list");
        }
    }
    if let Some(phone) = &m.contact_phone_number
        && !errors.has("contact_phone_number")
        && !phone_ok(phone)
    {
        errors.add("contact_phone_number", "is not a valid phone number");
    }
    let today = super::today();
    for (name, value) in [
        ("birth_date", &mut m.birth_date),
        ("start_date", &mut m.start_date),
    ] {
        if let Some(v) = value {
            match super::parse_date(v) {
                Some(date) => *v = date,
                None => {
                    errors.add(name, "is not a valid date");
                    continue;
                }
            }
        }
    }
    if let Some(birth) = &m.birth_date
        && !errors.has("birth_date")
        && *birth > today
    {
        errors.add("birth_date", "can't be in the future");
    }
    if m.bio.as_ref().is_some_and(|b| b.chars().count() > 5000) {
        errors.add("bio", "is too long (maximum is 5000 characters)");
    }
    let mut licenses = Vec::new();
    for l in &m.licenses {
        let lower = l.trim().to_ascii_lowercase();
        if !LICENSES.contains(&lower.as_str()) {
            errors.add("licenses", format!("{l} is not a valid licence"));
        } else if !licenses.contains(&lower) {
            licenses.push(lower);
        }
    }
    m.licenses = licenses;
    if errors.is_empty() {
        Ok(m)
    } else {
        Err(errors)
    }
}

/// The `{"field": [before, after]}` of every field that changed.
fn diff(current: &Profile, m: &Merged) -> Map<String, Value> {
    let r = &current.row;
    let mut changes = Map::new();
    let mut field = |name: &str, before: Option<&str>, after: Option<&str>| {
        if before != after {
            changes.insert(name.into(), json!([before, after]));
        }
    };
    fn nonempty(s: &str) -> Option<&str> {
        if s.is_empty() { None } else { Some(s) }
    }
    field(
        "first_name",
        nonempty(&r.first_name),
        m.first_name.as_deref(),
    );
    field("last_name", nonempty(&r.last_name), m.last_name.as_deref());
    field("postcode", r.postcode.as_deref(), m.postcode.as_deref());
    field(
        "english_level",
        r.english_level.as_deref(),
        m.english_level.as_deref(),
    );
    field(
        "contact_phone_number",
        r.contact_phone_number.as_deref(),
        m.contact_phone_number.as_deref(),
    );
    field(
        "birth_date",
        r.birth_date.as_deref(),
        m.birth_date.as_deref(),
    );
    field(
        "start_date",
        r.start_date.as_deref(),
        m.start_date.as_deref(),
    );
    field("bio", r.bio.as_deref(), m.bio.as_deref());
    if current.licenses != m.licenses {
        changes.insert("licenses".into(), json!([current.licenses, m.licenses]));
    }
    changes
}

/// Checks `If-Match` against the profile as it is now.
fn check_precondition(row: &ProfileRow, if_match: Option<&str>) -> Result<()> {
    match if_match {
        Some(tags) if !if_match_holds(tags, &etag(row)) => Err(Error::PreconditionFailed),
        _ => Ok(()),
    }
}

/// Records a change: the activity, and the next version. With `If-Match`
/// the version must still be the one the condition was checked against (a
/// concurrent change in between fails the request with 412); without it,
/// concurrent changes simply apply one after the other.
async fn record_change(
    tx: &mut Tx,
    row: &ProfileRow,
    action: &str,
    changes: &Map<String, Value>,
    actor: i64,
    conditional: bool,
) -> Result<()> {
    let now = now_micros();
    let expected = conditional.then_some(row.version);
    if !profiles::bump_version(tx, row.id, expected, now).await? {
        return Err(Error::PreconditionFailed);
    }
    let text = Value::Object(changes.clone()).to_string();
    profiles::insert_activity(tx, row.id, action, &text, actor, now).await?;
    Ok(())
}

/// Merges `changes` into the profile; the result must be complete and
/// valid (else 422, nothing changed). A stale `If-Match` changes nothing.
pub async fn update(
    state: &AppState,
    me: &Principal,
    target: Target,
    changes: ProfileChanges,
    if_match: Option<&str>,
) -> Result<Profile> {
    let mut tx = state.db.begin_write().await?;
    let row = locate_for_change(&mut tx, me, target).await?;
    check_precondition(&row, if_match)?;
    let current = load(&mut tx, row.id).await?;
    let merged = merge(&current, changes).map_err(Error::Validation)?;
    let changed = diff(&current, &merged);
    if !changed.is_empty() {
        profiles::update_fields(
            &mut tx,
            row.id,
            &ProfileFields {
                first_name: merged.first_name.as_deref().unwrap_or(""),
                last_name: merged.last_name.as_deref().unwrap_or(""),
                postcode: merged.postcode.as_deref(),
                english_level: merged.english_level.as_deref(),
                contact_phone_number: merged.contact_phone_number.as_deref(),
                birth_date: merged.birth_date.as_deref(),
                start_date: merged.start_date.as_deref(),
                bio: merged.bio.as_deref(),
            },
            now_micros(),
        )
        .await?;
        if changed.contains_key("licenses") {
            profiles::set_licenses(&mut tx, row.id, &merged.licenses).await?;
        }
        record_change(
            &mut tx,
            &row,
            "update",
            &changed,
            me.id(),
            if_match.is_some(),
        )
        .await?;
    }
    let profile = load(&mut tx, row.id).await?;
    tx.commit().await?;
    Ok(profile)
}

// --------------------------------------------------------------- documents

/// Whether `kind` names a document slot or list; anything else is 404.
fn document_kind(kind: &str) -> Result<bool> {
    if SLOT_KINDS.contains(&kind) {
        Ok(true)
    } else if LIST_KINDS.contains(&kind) {
        Ok(false)
    } else {
        Err(Error::NotFound)
    }
}

/// Stores a file in a slot (replacing its file) or appends it to a list;
/// returns the new attachment.
pub async fn upload(
    state: &AppState,
    me: &Principal,
    target: Target,
    kind: &str,
    file: CheckedFile,
) -> Result<(DocumentRow, Profile)> {
    let slot = document_kind(kind)?;
    let mut uploads = Uploads::new();
    let staged = uploads.stage(state, file).await?;
    let outcome = async {
        let mut tx = state.db.begin_write().await?;
        let row = locate_for_change(&mut tx, me, target).await?;
        let mut before = Value::Null;
        if slot {
            for old in profiles::documents_of_kind(&mut tx, row.id, kind).await? {
                before = Value::String(old.filename.clone());
                profiles::delete_document(&mut tx, old.id).await?;
                uploads.remove(&mut tx, Some(old.blob_id)).await?;
            }
        }
        let blob = uploads
            .insert(&mut tx, &staged, me.id(), Some(row.organization_id))
            .await?;
        let id = profiles::insert_document(&mut tx, row.id, kind, blob, now_micros()).await?;
        let document = profiles::find_document(&mut tx, id)
            .await?
            .ok_or(Error::NotFound)?;
        let mut changes = Map::new();
        changes.insert(kind.into(), json!([before, document.filename]));
        record_change(&mut tx, &row, "document_uploaded", &changes, me.id(), false).await?;
        let profile = load(&mut tx, row.id).await?;
        tx.commit().await?;
        Ok((document, profile))
    }
    .await;
    uploads.finish(state, outcome).await
}

/// Empties a slot (or a whole list), or removes one attachment from a
/// list. Emptying what is empty changes nothing; an unknown attachment id
/// is 404.
pub async fn remove_document(
    state: &AppState,
    me: &Principal,
    target: Target,
    kind: &str,
    attachment_id: Option<i64>,
) -> Result<()> {
    document_kind(kind)?;
    let mut uploads = Uploads::new();
    let outcome = async {
        let mut tx = state.db.begin_write().await?;
        let row = locate_for_change(&mut tx, me, target).await?;
        let existing = profiles::documents_of_kind(&mut tx, row.id, kind).await?;
        let doomed: Vec<&DocumentRow> = match attachment_id {
            Some(id) => vec![
                existing
                    .iter()
                    .find(|d| d.id == id)
                    .ok_or(Error::NotFound)?,
            ],
            None => existing.iter().collect(),
        };
        if doomed.is_empty() {
            tx.commit().await?;
            return Ok(());
        }
        let mut removed = Vec::new();
        for d in &doomed {
            profiles::delete_document(&mut tx, d.id).await?;
            uploads.remove(&mut tx, Some(d.blob_id)).await?;
            removed.push(d.filename.clone());
        }
        let mut changes = Map::new();
        let before = if removed.len() == 1 {
            json!(removed[0])
        } else {
            json!(removed)
        };
        changes.insert(kind.into(), json!([before, null]));
        record_change(&mut tx, &row, "document_removed", &changes, me.id(), false).await?;
        tx.commit().await?;
        Ok(())
    }
    .await;
    uploads.finish(state, outcome).await
}

/// Whether the caller may fetch a profile document's blob by its signed
/// id: staff, the admins of its organisation, and the member it belongs to.
pub async fn may_read_blob(state: &AppState, me: &Principal, blob_id: i64) -> Result<bool> {
    let mut tx = state.db.begin_read().await?;
    let blob = crate::store::blobs::find(&mut tx, blob_id).await?;
    let holder = profiles::profile_of_blob(&mut tx, blob_id).await?;
    tx.commit().await?;
    let Some(blob) = blob else {
        return Ok(false);
    };
    Ok(match me.role {
        Role::Staff => true,
        Role::Admin => {
            blob.organization_id.is_some() && blob.organization_id == me.user.organization_id
        }
        _ => blob.owner_id == Some(me.id()) || holder == Some(me.id()),
    })
}

// ------------------------------------------------------------- sub-records

/// Experiences, interviews and reviews.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    Experiences,
    Interviews,
    Reviews,
}

impl RecordKind {
    pub fn collection(self) -> &'static str {
        match self {
            RecordKind::Experiences => "experiences",
            RecordKind::Interviews => "interviews",
            RecordKind::Reviews => "reviews",
        }
    }

    /// The body's key for one record (`{"experience": {...}}`).
    pub fn member(self) -> &'static str {
        match self {
            RecordKind::Experiences => "experience",
            RecordKind::Interviews => "interview",
            RecordKind::Reviews => "review",
        }
    }

    pub fn parse(collection: &str) -> Option<RecordKind> {
        match collection {
            "experiences" => Some(RecordKind::Experiences),
            "interviews" => Some(RecordKind::Interviews),
            "reviews" => Some(RecordKind::Reviews),
            _ => None,
        }
    }
}

pub const INTERVIEW_OUTCOMES: [&str; 3] = ["pending", "passed", "failed"];

/// A record's fields being checked (Rails messages) into their stored form.
struct RecordCheck<'a> {
    input: &'a Map<String, Value>,
    errors: FieldErrors,
    out: Map<String, Value>,
}

impl RecordCheck<'_> {
    fn text(&mut self, name: &str) -> Option<String> {
        match self.input.get(name) {
            Some(Value::String(s)) if s.contains('\0') => {
                self.errors.add(name, "is invalid");
                None
            }
            Some(Value::String(s)) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
            Some(Value::Number(n)) => Some(n.to_string()),
            None | Some(Value::Null) => None,
            Some(_) => {
                self.errors.add(name, "is invalid");
                None
            }
        }
    }

    fn string(&mut self, name: &str, required: bool, max: usize) -> Option<String> {
        let value = self.text(name);
        match &value {
            None if required => self.errors.add(name, "can't be blank"),
            Some(v) if v.chars().count() > max => self
                .errors
                .add(name, format!("is too long (maximum is {max} characters)")),
            _ => {}
        }
        self.out.insert(name.into(), json!(value));
        value
    }

    fn date(&mut self, name: &str, required: bool) -> Option<String> {
        let value = match self.text(name) {
            None => {
                if required {
                    self.errors.add(name, "can't be blank");
                }
                None
            }
            Some(v) => {
                let date = super::parse_date(&v);
                if date.is_none() {
                    self.errors.add(name, "is not a valid date");
                }
                date
            }
        };
        self.out.insert(name.into(), json!(value));
        value
    }
}

/// Checks a record's fields and returns its stored form.
fn check_record(kind: RecordKind, input: &Map<String, Value>) -> Result<Map<String, Value>> {
    let mut c = RecordCheck {
        input,
        errors: FieldErrors::new(),
        out: Map::new(),
    };
    match kind {
        RecordKind::Experiences => {
            c.string("company", true, 255);
            c.string("role", false, 255);
            let start = c.date("start_date", false);
            let end = c.date("end_date", false);
            if let (Some(s), Some(e)) = (&start, &end)
                && e < s
            {
                c.errors
                    .add("end_date", "must be on or after the start date");
            }
            c.string("description", false, 5000);
        }
        RecordKind::Interviews => {
            c.date("date", true);
            c.string("interviewer", false, 255);
            let outcome = c
                .string("outcome", false, 20)
                .unwrap_or_else(|| "pending".into())
                .to_ascii_lowercase();
            if !INTERVIEW_OUTCOMES.contains(&outcome.as_str()) {
                c.errors.add("outcome", "is not included in the list");
            }
            c.out.insert("outcome".into(), json!(outcome));
            c.string("notes", false, 5000);
        }
        RecordKind::Reviews => {
            let rating = match input.get("rating") {
                // 4.0 is the integer 4 in JSON.
                Some(Value::Number(n)) => n.as_i64().or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 1e15)
                        .map(|f| f as i64)
                }),
                Some(Value::String(s)) => s.trim().parse::<i64>().ok(),
                _ => None,
            };
            match (input.get("rating"), rating) {
                (None | Some(Value::Null), _) => c.errors.add("rating", "can't be blank"),
                (_, Some(r)) if (1..=5).contains(&r) => {
                    c.out.insert("rating".into(), json!(r));
                }
                _ => c.errors.add("rating", "must be an integer from 1 to 5"),
            }
            c.string("comment", false, 5000);
        }
    }
    c.errors.into_result()?;
    Ok(c.out)
}

/// Adds an experience, interview or review; returns it.
pub async fn add_record(
    state: &AppState,
    me: &Principal,
    target: Target,
    kind: RecordKind,
    input: &Map<String, Value>,
) -> Result<RecordRow> {
    let data = check_record(kind, input)?;
    let mut tx = state.db.begin_write().await?;
    let row = locate_for_change(&mut tx, me, target).await?;
    let now = now_micros();
    let text = Value::Object(data.clone()).to_string();
    let id =
        profiles::insert_record(&mut tx, row.id, kind.collection(), &text, me.id(), now).await?;
    let mut record = data;
    record.insert("id".into(), json!(id));
    let mut changes = Map::new();
    changes.insert(kind.collection().into(), json!([null, record]));
    record_change(
        &mut tx,
        &row,
        &format!("{}_added", kind.member()),
        &changes,
        me.id(),
        false,
    )
    .await?;
    tx.commit().await?;
    Ok(RecordRow {
        id,
        profile_id: row.id,
        kind: kind.collection().into(),
        data: text,
        actor_id: Some(me.id()),
        created_at: now,
    })
}

pub async fn remove_record(
    state: &AppState,
    me: &Principal,
    target: Target,
    kind: RecordKind,
    id: i64,
) -> Result<()> {
    let mut tx = state.db.begin_write().await?;
    let row = locate_for_change(&mut tx, me, target).await?;
    let data = profiles::delete_record(&mut tx, row.id, kind.collection(), id)
        .await?
        .ok_or(Error::NotFound)?;
    let mut before: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
    if let Value::Object(map) = &mut before {
        map.insert("id".into(), json!(id));
    }
    let mut changes = Map::new();
    changes.insert(kind.collection().into(), json!([before, null]));
    record_change(
        &mut tx,
        &row,
        &format!("{}_removed", kind.member()),
        &changes,
        me.id(),
        false,
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uk_postcodes() {
        assert_eq!(uk_postcode("ec1a1bb").as_deref(), Some("EC1A 1BB"));
        assert_eq!(uk_postcode("SW1A 2AA").as_deref(), Some("SW1A 2AA"));
        assert_eq!(uk_postcode("M1 1AE").as_deref(), Some("M1 1AE"));
        assert_eq!(uk_postcode("B33 8TH").as_deref(), Some("B33 8TH"));
        assert_eq!(uk_postcode("CR2 6XH").as_deref(), Some("CR2 6XH"));
        assert_eq!(uk_postcode("DN55 1PT").as_deref(), Some("DN55 1PT"));
        assert_eq!(uk_postcode("W1A 0AX").as_deref(), Some("W1A 0AX"));
        assert_eq!(uk_postcode("gir 0aa").as_deref(), Some("GIR 0AA"));
        for bad in [
            "",
            "12345",
            "EC1A",
            "EC1A 1B",
            "1C1A 1BB",
            "EC1A 1B1",
            "ÉC1A 1BB",
            "90210",
        ] {
            assert_eq!(uk_postcode(bad), None, "{bad}");
        }
    }

    #[test]
    fn phones() {
        assert!(phone_ok("07515 470386"));
        assert!(phone_ok("+44 (0)20 7946-0958"));
        assert!(!phone_ok("12345"));
        assert!(!phone_ok("call me"));
        assert!(!phone_ok("0751+5470386"));
    }

    #[test]
    fn if_match_is_strong() {
        assert!(if_match_holds("*", "\"a\""));
        assert!(if_match_holds("\"b\", \"a\"", "\"a\""));
        assert!(!if_match_holds("W/\"a\"", "\"a\""));
        assert!(!if_match_holds("\"b\"", "\"a\""));
    }
}
