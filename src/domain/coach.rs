//! Coaches: their public profile, areas of expertise, certifications and
//! education, and vetting, the state machine by which platform staff
//! approve them:
//!
//! ```text
//!   PD (pending) --coach submits--> RE (reviewing) --staff approve--> AP
//!        ^                               |                            |
//!        +------ staff send back, with a reason ----------------------+
//! ```
//!
//! Submitting while RE changes nothing; every other move is refused with a
//! message saying why. Each transition is recorded with who and when, and
//! each staff decision is emailed to the coach.

use std::collections::HashMap;

use super::auth::Principal;
use super::company::{Page, PageNumber, locate};
use super::email::{self, Email};
use super::uploads::{CheckedFile, Uploads};
use super::{Error, FieldErrors, Result, Role, now_micros, slugify, unique_slug};
use crate::app::AppState;
use crate::store::Tx;
use crate::store::blobs;
use crate::store::coach::{
    self, AreaRow, CertificationRow, CoachRecord, CoachRow, EducationRow, ProfileChanges,
    ReferenceTable,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VettingStatus {
    Pending,
    Reviewing,
    Approved,
}

impl VettingStatus {
    pub fn code(self) -> &'static str {
        match self {
            VettingStatus::Pending => "PD",
            VettingStatus::Reviewing => "RE",
            VettingStatus::Approved => "AP",
        }
    }

    pub fn parse(code: &str) -> Option<VettingStatus> {
        match code {
            "PD" => Some(VettingStatus::Pending),
            "RE" => Some(VettingStatus::Reviewing),
            "AP" => Some(VettingStatus::Approved),
            _ => None,
        }
    }
}

/// A staff decision on a submitted profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approve,
    SendBack { reason: String },
}

/// The coach submits: PD becomes RE; RE stays (`None`: nothing to do).
pub fn submit_transition(from: VettingStatus) -> Result<Option<VettingStatus>> {
    match from {
        VettingStatus::Pending => Ok(Some(VettingStatus::Reviewing)),
        VettingStatus::Reviewing => Ok(None),
        VettingStatus::Approved => Err(Error::BadRequest(
            "Your profile is already approved; there is nothing to submit.".into(),
        )),
    }
}

/// Staff decide: approve a profile under review, or send a profile under
/// review or approved back to pending.
pub fn decide_transition(from: VettingStatus, decision: &Decision) -> Result<VettingStatus> {
    use VettingStatus::*;
    match (from, decision) {
        (Reviewing, Decision::Approve) => Ok(Approved),
        (Pending, Decision::Approve) => Err(Error::BadRequest(
            "Only a profile under review (RE) can be approved; this coach has not submitted theirs."
                .into(),
        )),
        (Approved, Decision::Approve) => {
            Err(Error::BadRequest("This coach is already approved.".into()))
        }
        (Reviewing | Approved, Decision::SendBack { .. }) => Ok(Pending),
        (Pending, Decision::SendBack { .. }) => Err(Error::BadRequest(
            "This profile is already pending (PD); there is nothing to send back.".into(),
        )),
    }
}

/// A coach with everything the coach object shows.
#[derive(Debug, Clone)]
pub struct Coach {
    pub row: CoachRow,
    pub areas: Vec<AreaRow>,
    pub certifications: Vec<CertificationRow>,
    pub educations: Vec<EducationRow>,
    /// File names of the blobs the coach object links to, by blob id.
    pub files: HashMap<i64, String>,
}

impl From<CoachRecord> for Coach {
    fn from(record: CoachRecord) -> Coach {
        let CoachRecord { row, related } = record;
        Coach {
            row,
            areas: related.areas,
            certifications: related.certifications,
            educations: related.educations,
            files: related
                .files
                .into_iter()
                .map(|f| (f.id, f.filename))
                .collect(),
        }
    }
}

async fn load(tx: &mut Tx, user_id: i64) -> Result<Coach> {
    let record = coach::find_record(tx, user_id)
        .await?
        .ok_or(Error::NotFound)?;
    Ok(record.into())
}

/// Only coaches use the coach surface.
fn require_coach(me: &Principal) -> Result<()> {
    if me.role == Role::Coach {
        Ok(())
    } else {
        Err(Error::Forbidden(None))
    }
}

fn require_staff(me: &Principal) -> Result<()> {
    if me.role == Role::Staff {
        Ok(())
    } else {
        Err(Error::Forbidden(None))
    }
}

/// Gives a user a coach profile (vetting PD) with a free alias slug of
/// their name, unless they have one. Called wherever a coach comes to be.
pub async fn ensure_profile(
    tx: &mut Tx,
    user_id: i64,
    first_name: &str,
    last_name: &str,
    now: i64,
) -> Result<()> {
    if coach::find(tx, user_id).await?.is_some() {
        return Ok(());
    }
    let mut base = slugify(&format!("{first_name} {last_name}"));
    if base.is_empty() {
        base = "coach".into();
    }
    base.truncate(40);
    let base = base.trim_end_matches('-').to_string();
    let taken = coach::aliases_like(tx, &base).await?;
    let alias = unique_slug(&base, &taken);
    if !coach::insert_profile(tx, user_id, &alias, now).await? {
        // Taken by a concurrent insert: the user id makes it unique.
        let alias = format!("{base}-u{user_id}");
        if !coach::insert_profile(tx, user_id, &alias, now).await? {
            return Err(Error::Unavailable("could not choose a coach alias".into()));
        }
    }
    Ok(())
}

/// The calling coach's object. A coach whose profile predates this
/// surface gets one now.
pub async fn me(state: &AppState, me: &Principal) -> Result<Coach> {
    require_coach(me)?;
    let mut tx = state.db.begin_object_read().await?;
    if let Some(record) = coach::find_record(&mut tx, me.id()).await? {
        tx.commit().await?;
        return Ok(record.into());
    }
    drop(tx);
    let mut tx = state.db.begin_write().await?;
    let u = &me.user;
    ensure_profile(&mut tx, u.id, &u.first_name, &u.last_name, now_micros()).await?;
    let coach = load(&mut tx, me.id()).await?;
    tx.commit().await?;
    Ok(coach)
}

/// A change of the coach object. `None` leaves a field as it is; for
/// nullable fields `Some(None)` clears it.
#[derive(Debug, Default)]
pub struct CoachChanges {
    pub date_of_birth: Option<Option<String>>,
    pub area_list: Option<Vec<i64>>,
    pub avatar: Option<Option<CheckedFile>>,
    pub business_logo: Option<Option<CheckedFile>>,
    /// Text, date, location, language and alias fields (the logo is set
    /// from `business_logo`).
    pub profile: ProfileChanges,
}

pub async fn update(state: &AppState, me: &Principal, changes: CoachChanges) -> Result<Coach> {
    require_coach(me)?;
    let mut uploads = Uploads::new();
    let avatar = match changes.avatar {
        Some(Some(file)) => Some(Some(uploads.stage(state, file).await?)),
        Some(None) => Some(None),
        None => None,
    };
    let logo = match changes.business_logo {
        Some(Some(file)) => Some(Some(uploads.stage(state, file).await?)),
        Some(None) => Some(None),
        None => None,
    };
    let mut profile = changes.profile;
    let outcome = async {
        let mut tx = state.db.begin_write().await?;
        let u = &me.user;
        ensure_profile(&mut tx, u.id, &u.first_name, &u.last_name, now_micros()).await?;
        let current = coach::find(&mut tx, me.id())
            .await?
            .ok_or(Error::NotFound)?;
        check_references(&mut tx, me.id(), changes.area_list.as_deref(), &profile).await?;
        let now = now_micros();
        let avatar_id = match &avatar {
            Some(new) => {
                uploads.remove(&mut tx, current.avatar_blob_id).await?;
                Some(match new {
                    Some(staged) => Some(
                        uploads
                            .insert(&mut tx, staged, me.id(), u.organization_id)
                            .await?,
                    ),
                    None => None,
                })
            }
            None => None,
        };
        if let Some(new) = &logo {
            uploads
                .remove(&mut tx, current.business_logo_blob_id)
                .await?;
            profile.business_logo_blob_id = Some(match new {
                Some(staged) => Some(
                    uploads
                        .insert(&mut tx, staged, me.id(), u.organization_id)
                        .await?,
                ),
                None => None,
            });
        }
        coach::update_user(
            &mut tx,
            me.id(),
            changes.date_of_birth.clone(),
            avatar_id,
            now,
        )
        .await?;
        coach::update_profile(&mut tx, me.id(), &profile, now)
            .await
            .map_err(|e| match e {
                // Taken between the check and the write (PostgreSQL).
                crate::store::StoreError::Conflict(_) => Error::field(
                    "coachAlias",
                    "coach profile with this coachAlias already exists.",
                ),
                other => other.into(),
            })?;
        if let Some(areas) = &changes.area_list {
            let mut areas = areas.clone();
            areas.sort_unstable();
            areas.dedup();
            coach::set_areas(&mut tx, me.id(), &areas).await?;
        }
        let coach = load(&mut tx, me.id()).await?;
        tx.commit().await?;
        Ok(coach)
    }
    .await;
    uploads.finish(state, outcome).await
}

/// Checks that ids and codes name existing reference rows, and that a new
/// alias is free; every failure is reported under its field.
async fn check_references(
    tx: &mut Tx,
    user_id: i64,
    areas: Option<&[i64]>,
    profile: &ProfileChanges,
) -> Result<()> {
    let mut errors = FieldErrors::new();
    if let Some(areas) = areas {
        let found = coach::existing_ids(tx, ReferenceTable::Areas, areas).await?;
        if let Some(missing) = areas.iter().find(|id| !found.contains(id)) {
            errors.add("area_list", invalid_pk(*missing));
        }
    }
    for (field, value) in [
        ("mother_tongue", profile.mother_tongue_id),
        ("coaching_language", profile.coaching_language_id),
    ] {
        if let Some(Some(id)) = value
            && coach::existing_ids(tx, ReferenceTable::Languages, &[id])
                .await?
                .is_empty()
        {
            errors.add(field, invalid_pk(id));
        }
    }
    if let Some(Some(code)) = &profile.coach_location
        && !coach::country_exists(tx, code).await?
    {
        errors.add(
            "coach_location",
            format!("\"{code}\" is not a valid choice."),
        );
    }
    if let Some(alias) = &profile.alias
        && coach::alias_owner(tx, alias)
            .await?
            .is_some_and(|owner| owner != user_id)
    {
        errors.add(
            "coachAlias",
            "coach profile with this coachAlias already exists.",
        );
    }
    errors.into_result()
}

fn invalid_pk(id: i64) -> String {
    super::company::invalid_pk(id)
}

// ---------------------------------------------------------- certifications

/// A certification to create (`id` absent) or update.
#[derive(Debug)]
pub struct CertificationInput {
    pub id: Option<i64>,
    pub user_id: i64,
    pub name: Option<String>,
    pub issue_institution: Option<String>,
    pub issue_date: Option<Option<String>>,
    pub attachment: Option<Option<CheckedFile>>,
}

pub struct Saved<T> {
    pub created: bool,
    pub row: T,
    pub files: HashMap<i64, String>,
}

/// `user_id` must be the caller's own (403 otherwise); `id` must name one
/// of the caller's certifications (404 otherwise).
pub async fn save_certification(
    state: &AppState,
    me: &Principal,
    input: CertificationInput,
) -> Result<Saved<CertificationRow>> {
    require_coach(me)?;
    if input.user_id != me.id() {
        return Err(Error::Forbidden(Some(
            "You may only change your own certifications.".into(),
        )));
    }
    let mut uploads = Uploads::new();
    let staged = match input.attachment {
        Some(Some(file)) => Some(Some(uploads.stage(state, file).await?)),
        Some(None) => Some(None),
        None => None,
    };
    let outcome = async {
        let mut tx = state.db.begin_write().await?;
        let mut row = match input.id {
            Some(id) => coach::find_certification(&mut tx, me.id(), id)
                .await?
                .ok_or(Error::NotFound)?,
            None => CertificationRow {
                id: 0,
                user_id: me.id(),
                name: String::new(),
                issue_institution: String::new(),
                issue_date: None,
                attachment_blob_id: None,
            },
        };
        let created = row.id == 0;
        if let Some(name) = input.name {
            row.name = name;
        }
        if let Some(inst) = input.issue_institution {
            row.issue_institution = inst;
        }
        if let Some(date) = input.issue_date {
            row.issue_date = date;
        }
        if let Some(new) = &staged {
            uploads.remove(&mut tx, row.attachment_blob_id).await?;
            row.attachment_blob_id = match new {
                Some(s) => Some(
                    uploads
                        .insert(&mut tx, s, me.id(), me.user.organization_id)
                        .await?,
                ),
                None => None,
            };
        }
        row.id = coach::save_certification(&mut tx, &row, now_micros()).await?;
        let files = blob_names(&mut tx, &[row.attachment_blob_id]).await?;
        tx.commit().await?;
        Ok(Saved {
            created,
            row,
            files,
        })
    }
    .await;
    uploads.finish(state, outcome).await
}

async fn blob_names(tx: &mut Tx, ids: &[Option<i64>]) -> Result<HashMap<i64, String>> {
    let ids: Vec<i64> = ids.iter().flatten().copied().collect();
    Ok(blobs::find_many(tx, &ids)
        .await?
        .into_iter()
        .map(|b| (b.id, b.filename))
        .collect())
}

pub async fn delete_certification(state: &AppState, me: &Principal, id: i64) -> Result<()> {
    require_coach(me)?;
    let mut uploads = Uploads::new();
    let outcome = async {
        let mut tx = state.db.begin_write().await?;
        let attachment = coach::delete_certification(&mut tx, me.id(), id)
            .await?
            .ok_or(Error::NotFound)?;
        uploads.remove(&mut tx, attachment).await?;
        tx.commit().await?;
        Ok(())
    }
    .await;
    uploads.finish(state, outcome).await
}

// --------------------------------------------------------------- education

#[derive(Debug)]
pub struct EducationInput {
    pub id: Option<i64>,
    pub user_id: i64,
    pub school_name: Option<String>,
    pub degree: Option<String>,
    pub start_date: Option<Option<String>>,
    pub end_date: Option<Option<String>>,
}

pub async fn save_education(
    state: &AppState,
    me: &Principal,
    input: EducationInput,
) -> Result<Saved<EducationRow>> {
    require_coach(me)?;
    if input.user_id != me.id() {
        return Err(Error::Forbidden(Some(
            "You may only change your own education.".into(),
        )));
    }
    let mut tx = state.db.begin_write().await?;
    let mut row = match input.id {
        Some(id) => coach::find_education(&mut tx, me.id(), id)
            .await?
            .ok_or(Error::NotFound)?,
        None => EducationRow {
            id: 0,
            user_id: me.id(),
            school_name: String::new(),
            degree: String::new(),
            start_date: None,
            end_date: None,
        },
    };
    let created = row.id == 0;
    if let Some(v) = input.school_name {
        row.school_name = v;
    }
    if let Some(v) = input.degree {
        row.degree = v;
    }
    if let Some(v) = input.start_date {
        row.start_date = v;
    }
    if let Some(v) = input.end_date {
        row.end_date = v;
    }
    // ISO dates compare correctly as text.
    if let (Some(start), Some(end)) = (&row.start_date, &row.end_date)
        && end < start
    {
        return Err(Error::field(
            "end_date",
            "The end date cannot be before the start date.",
        ));
    }
    row.id = coach::save_education(&mut tx, &row, now_micros()).await?;
    tx.commit().await?;
    Ok(Saved {
        created,
        row,
        files: HashMap::new(),
    })
}

pub async fn delete_education(state: &AppState, me: &Principal, id: i64) -> Result<()> {
    require_coach(me)?;
    let mut tx = state.db.begin_write().await?;
    if !coach::delete_education(&mut tx, me.id(), id).await? {
        return Err(Error::NotFound);
    }
    tx.commit().await?;
    Ok(())
}

// ----------------------------------------------------------------- vetting

/// The vetting record as the seed shows it.
#[derive(Debug, Clone)]
pub struct Vetting {
    pub id: i64,
    pub status: VettingStatus,
    pub created_at: i64,
    pub last_update: i64,
}

impl Vetting {
    pub fn of(row: &CoachRow) -> Vetting {
        Vetting {
            id: row.id,
            status: VettingStatus::parse(&row.vetting_status).unwrap_or(VettingStatus::Pending),
            created_at: row.vetting_created_at,
            last_update: row.vetting_updated_at,
        }
    }
}

async fn record(
    tx: &mut Tx,
    coach_id: i64,
    from: VettingStatus,
    to: VettingStatus,
    reason: Option<&str>,
    actor: i64,
) -> Result<()> {
    let now = now_micros();
    coach::set_vetting(tx, coach_id, to.code(), to == VettingStatus::Approved, now).await?;
    coach::insert_vetting_event(tx, coach_id, from.code(), to.code(), reason, actor, now).await?;
    Ok(())
}

/// The coach submits their profile for review.
pub async fn submit(state: &AppState, me: &Principal) -> Result<Vetting> {
    require_coach(me)?;
    let mut tx = state.db.begin_write().await?;
    let u = &me.user;
    ensure_profile(&mut tx, u.id, &u.first_name, &u.last_name, now_micros()).await?;
    let row = coach::find(&mut tx, me.id())
        .await?
        .ok_or(Error::NotFound)?;
    let from = Vetting::of(&row).status;
    if let Some(to) = submit_transition(from)? {
        record(&mut tx, me.id(), from, to, None, me.id()).await?;
    }
    let row = coach::find(&mut tx, me.id())
        .await?
        .ok_or(Error::NotFound)?;
    tx.commit().await?;
    Ok(Vetting::of(&row))
}

/// Staff decide on a coach; the coach is emailed either way.
pub async fn decide(
    state: &AppState,
    me: &Principal,
    coach_id: i64,
    decision: Decision,
) -> Result<Vetting> {
    require_staff(me)?;
    let mut tx = state.db.begin_write().await?;
    let row = coach::find(&mut tx, coach_id)
        .await?
        .filter(|r| r.role == Role::Coach.as_str())
        .ok_or(Error::NotFound)?;
    let from = Vetting::of(&row).status;
    let to = decide_transition(from, &decision)?;
    let reason = match &decision {
        Decision::SendBack { reason } => Some(reason.as_str()),
        Decision::Approve => None,
    };
    record(&mut tx, coach_id, from, to, reason, me.id()).await?;
    email::enqueue(&mut tx, &decision_email(state, &row, &decision)).await?;
    let row = coach::find(&mut tx, coach_id)
        .await?
        .ok_or(Error::NotFound)?;
    tx.commit().await?;
    state.outbox_wakeup.notify_one();
    Ok(Vetting::of(&row))
}

fn decision_email(state: &AppState, row: &CoachRow, decision: &Decision) -> Email {
    let name = if row.first_name.is_empty() {
        "there".to_string()
    } else {
        row.first_name.clone()
    };
    let site = &state.config.public_url;
    match decision {
        Decision::Approve => Email {
            to: row.email.clone(),
            subject: "Your coach profile is approved".into(),
            body: format!(
                "Hello {name},\n\nYour coach profile has been reviewed and approved. \
                 Clients can now find you.\n\n{site}\n"
            ),
        },
        Decision::SendBack { reason } => Email {
            to: row.email.clone(),
            subject: "Your coach profile needs changes".into(),
            body: format!(
                "Hello {name},\n\nYour coach profile was reviewed and sent back for changes:\n\n\
                 {reason}\n\nPlease update your profile and submit it again.\n\n{site}\n"
            ),
        },
    }
}

/// Staff list coaches, optionally by vetting status, in id order.
pub async fn list_for_staff(
    state: &AppState,
    me: &Principal,
    status: Option<VettingStatus>,
    page: PageNumber,
    page_size: i64,
) -> Result<Page<Coach>> {
    require_staff(me)?;
    let code = status.map(VettingStatus::code);
    let mut tx = state.db.begin_read().await?;
    let count = coach::count(&mut tx, code).await?;
    let (number, last, offset) = locate(count, page, page_size)?;
    let rows = coach::list(&mut tx, code, page_size, offset).await?;
    tx.commit().await?;
    let rows = rows.into_iter().map(Coach::from).collect();
    Ok(Page {
        count,
        number,
        last,
        rows,
    })
}

pub async fn find_for_staff(state: &AppState, me: &Principal, coach_id: i64) -> Result<Coach> {
    require_staff(me)?;
    let mut tx = state.db.begin_object_read().await?;
    let coach = load(&mut tx, coach_id).await?;
    tx.commit().await?;
    if coach.row.role != Role::Coach.as_str() {
        return Err(Error::NotFound);
    }
    Ok(coach)
}

/// The vetting history of a coach, oldest first (staff only).
pub async fn history(
    state: &AppState,
    me: &Principal,
    coach_id: i64,
) -> Result<Vec<coach::VettingEventRow>> {
    require_staff(me)?;
    let mut tx = state.db.begin_read().await?;
    coach::find(&mut tx, coach_id)
        .await?
        .ok_or(Error::NotFound)?;
    let events = coach::vetting_events(&mut tx, coach_id).await?;
    tx.commit().await?;
    Ok(events)
}

// ---------------------------------------------------------- reference data

pub struct Reference {
    pub areas: Vec<AreaRow>,
    pub categories: Vec<(i64, String)>,
    pub languages: Vec<(i64, String, String)>,
    pub countries: Vec<(String, String)>,
}

pub enum Lookup {
    Areas,
    Categories,
    Languages,
    Countries,
}

/// One lookup table (the others come back empty).
pub async fn lookup(state: &AppState, which: Lookup) -> Result<Reference> {
    let mut tx = state.db.begin_read().await?;
    let mut r = Reference {
        areas: Vec::new(),
        categories: Vec::new(),
        languages: Vec::new(),
        countries: Vec::new(),
    };
    match which {
        Lookup::Areas => r.areas = coach::all_areas(&mut tx).await?,
        Lookup::Categories => r.categories = coach::categories(&mut tx).await?,
        Lookup::Languages => r.languages = coach::languages(&mut tx).await?,
        Lookup::Countries => r.countries = coach::countries(&mut tx).await?,
    }
    tx.commit().await?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;
    use VettingStatus::*;

    #[test]
    fn every_vetting_transition() {
        assert_eq!(submit_transition(Pending).unwrap(), Some(Reviewing));
        assert_eq!(submit_transition(Reviewing).unwrap(), None);
        assert!(submit_transition(Approved).is_err());
        let back = Decision::SendBack { reason: "x".into() };
        assert_eq!(
            decide_transition(Reviewing, &Decision::Approve).unwrap(),
            Approved
        );
        assert!(decide_transition(Pending, &Decision::Approve).is_err());
        assert!(decide_transition(Approved, &Decision::Approve).is_err());
        assert_eq!(decide_transition(Reviewing, &back).unwrap(), Pending);
        assert_eq!(decide_transition(Approved, &back).unwrap(), Pending);
        assert!(decide_transition(Pending, &back).is_err());
    }
}
