//! Coach self-service (seed 000) in the DRF dialect: the coach object at
//! `/auth/coach/`, certifications, education, vetting submission, the
//! lookups, and the staff review at `/api/admin/coaches/`.

use std::collections::HashMap;

use axum::extract::{DefaultBodyLimit, OriginalUri, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::{Value, json};

use super::api::{Api, Dialect, array, doc, drf_page, object, page_number, r, text};
use super::drf::{
    Authed, Data, DrfResult, Fields, UploadData, json_status, missing, no_content, path_id,
};
use super::drf_list::{list_request, page_body};
use crate::app::AppState;
use crate::domain::coach::{
    self, CertificationInput, Coach, CoachChanges, Decision, EducationInput, Lookup, Vetting,
    VettingStatus,
};
use crate::domain::uploads::{Accept, download_url};
use crate::domain::{Error, iso_date};
use crate::store::coach::{CertificationRow, EducationRow, ProfileChanges};

pub fn api() -> Api {
    let coach = r("Coach");
    // JSON bodies as documented; the same fields also come as multipart
    // (files in `avatar`, `business_logo` and `attachment`, repeated or
    // comma-separated `area_list`).
    let clear_only =
        json!({"enum": [null, ""], "description": "JSON clears the file; upload one as multipart"});
    let text_max = |max: u32| json!({"type": ["string", "number", "null"], "maxLength": max, "pattern": "^[^\\u0000]*$"});
    let date_or_clear =
        json!({"anyOf": [{"type": "string", "format": "date"}, {"enum": [null, ""]}]});
    let coach_changes = object(
        json!({
            "dob": date_or_clear.clone(), "area_list": {"type": "array", "items": {"type": "integer"}, "maxItems": 50},
            "avatar": clear_only.clone(),
            "website": text_max(200), "instagramId": text_max(100), "twitterId": text_max(100),
            "introduction": text_max(2000), "about_you": text_max(5000),
            "mother_tongue": {"type": ["integer", "null"]}, "coaching_language": {"type": ["integer", "null"]},
            "business_name": text_max(255), "coach_location": text_max(2), "coach_since": date_or_clear.clone(),
            "business_logo": clear_only.clone(),
            "coach_experience": text_max(2000),
            "coachAlias": {"type": ["string", "number"], "minLength": 1, "maxLength": 50, "pattern": "^\\s*[A-Za-z0-9_-]+\\s*$"},
        }),
        &[],
    );
    let id = json!({"type": ["integer", "string", "null"]});
    let certification = object(
        json!({"id": id.clone(), "user_id": {"type": ["integer", "string"]}, "name": text(),
               "issue_institution": text_max(255), "issue_date": date_or_clear.clone(), "attachment": clear_only}),
        &["user_id"],
    );
    let education = object(
        json!({"id": id, "user_id": {"type": ["integer", "string"]}, "school_name": text(), "degree": text_max(255),
               "start_date": date_or_clear.clone(), "end_date": date_or_clear}),
        &["user_id"],
    );
    Api::new("Coach", Dialect::Drf)
        .get(
            "/auth/coach",
            get_coach,
            doc("The signed-in coach's coach object")
                .ok(200, coach.clone())
                .errors(&[403]),
        )
        .put(
            "/auth/coach",
            update_coach,
            doc(
                "Update the coach object (any subset; JSON or multipart with avatar/business_logo)",
            )
            .body(coach_changes.clone())
                .optional_body()
            .ok(200, coach.clone())
            .errors(&[400, 403]),
        )
        .patch(
            "/auth/coach",
            update_coach,
            doc(
                "Update the coach object (any subset; JSON or multipart with avatar/business_logo)",
            )
            .body(coach_changes)
                .optional_body()
            .ok(200, coach.clone())
            .errors(&[400, 403]),
        )
        .post(
            "/auth/coach/certification",
            save_certification,
            doc("Create a certification, or update the one `id` names (multipart for attachment)")
                .body(certification)
                .ok(201, r("Certification"))
                .errors(&[400, 403, 404])
                .describe("201 when created, 200 when `id` named an existing certification."),
        )
        .delete(
            "/auth/coach/certification/{id}",
            delete_certification,
            doc("Delete one of the coach's certifications")
                .no_content()
                .errors(&[403, 404]),
        )
        .post(
            "/auth/coach/education",
            save_education,
            doc("Create an education entry, or update the one `id` names")
                .body(education)
                .ok(201, r("Education"))
                .errors(&[400, 403, 404])
                .describe("201 when created, 200 when `id` named an existing entry."),
        )
        .delete(
            "/auth/coach/education/{id}",
            delete_education,
            doc("Delete one of the coach's education entries")
                .no_content()
                .errors(&[403, 404]),
        )
        .post(
            "/auth/coach/vetting",
            submit_vetting,
            doc("Submit the profile for review (PD becomes RE)")
                .ok(200, r("Vetting"))
                .errors(&[400, 403]),
        )
        .get(
            "/auth/areas",
            areas,
            doc("Areas of expertise").ok(200, array(r("Area"))),
        )
        .get(
            "/auth/categories",
            categories,
            doc("Categories of areas").ok(200, array(r("Category"))),
        )
        .get(
            "/auth/languages",
            languages,
            doc("ISO 639-1 languages").ok(200, array(r("Language"))),
        )
        .get(
            "/auth/countries",
            countries,
            doc("ISO 3166-1 countries").ok(200, array(r("Country"))),
        )
        .get(
            "/api/admin/coaches",
            staff_list,
            doc("Coaches for review (staff)")
                .query("vetting_status", json!({"enum": ["PD", "RE", "AP", ""]}),
                    "only coaches in this state",
                )
                .query(
                    "page",
                    json!({"oneOf": [{"type": "integer", "minimum": 1}, {"const": "last"}]}),
                    "page number, or last",
                )
                .query("page_size", page_number(), "at most 100; below 1 or not a number means 10")
                .ok(200, drf_page(coach.clone()))
                .errors(&[400, 403, 404]),
        )
        .get(
            "/api/admin/coaches/{pk}",
            staff_find,
            doc("One coach (staff)").ok(200, coach).errors(&[403, 404]),
        )
        .get(
            "/api/admin/coaches/{pk}/vetting",
            staff_history,
            doc("A coach's vetting history, oldest first (staff)")
                .ok(200, array(r("VettingEvent")))
                .errors(&[403, 404]),
        )
        .post(
            "/api/admin/coaches/{pk}/vetting",
            staff_decide,
            doc("Approve (AP) or send back (PD, with a reason); the coach is emailed")
                .body(json!({"oneOf": [
                    object(json!({"status": {"enum": ["AP", "ap"]}, "reason": text_max(2000)}), &["status"]),
                    object(json!({"status": {"enum": ["PD", "pd"]}, "reason": {"type": ["string", "number"], "maxLength": 2000, "pattern": "^[^\\u0000]*\\S[^\\u0000]*$"}}), &["status", "reason"]),
                ]}))
                .ok(200, r("Vetting"))
                .errors(&[400, 403, 404]),
        )
        // Upload bodies are bounded part by part in `UploadData`.
        .map_router(|r| r.layer(DefaultBodyLimit::disable()))
}

// ------------------------------------------------------------- rendering

/// The group every coach belongs to, as Django's auth renders a group.
const COACH_GROUP_ID: i64 = 2;

fn file_url(state: &AppState, files: &HashMap<i64, String>, blob: Option<i64>) -> Option<String> {
    let id = blob?;
    files.get(&id).map(|name| download_url(state, id, name))
}

// The bodies are structs rather than `json!` values: a coach's keys went
// through an ordered map (SipHash and an allocation each) before they
// were written, a sixth of `GET /auth/coach/`. Fields serialize in the
// order they are declared, which is the seed's.

#[derive(Serialize)]
struct CoachBody<'a> {
    pk: i64,
    username: &'a str,
    email: &'a str,
    dob: Option<&'a str>,
    area: Vec<AreaBody<'a>>,
    approved: bool,
    group: GroupBody,
    certification: Vec<CertificationBody<'a>>,
    education: Vec<EducationBody<'a>>,
    coach_profile: CoachProfileBody<'a>,
    vetting_status: VettingBody,
    avatar: Option<String>,
    #[serde(rename = "coachAlias")]
    coach_alias: &'a str,
}

#[derive(Serialize)]
struct AreaBody<'a> {
    id: i64,
    alias: &'a str,
    name: &'a str,
    category: i64,
}

/// A group as Django's auth renders one.
#[derive(Serialize)]
struct GroupBody {
    id: i64,
    name: &'static str,
    permissions: [i64; 0],
}

#[derive(Serialize)]
struct CoachProfileBody<'a> {
    user: i64,
    introduction: &'a str,
    website: &'a str,
    #[serde(rename = "instagramId")]
    instagram_id: &'a str,
    #[serde(rename = "twitterId")]
    twitter_id: &'a str,
    about_you: &'a str,
    business_logo: Option<String>,
    business_name: &'a str,
    coach_since: Option<&'a str>,
    coach_location: Option<&'a str>,
    coach_experience: &'a str,
    mother_tongue: Option<i64>,
    coaching_language: Option<i64>,
}

#[derive(Serialize)]
struct CertificationBody<'a> {
    id: i64,
    user_id: i64,
    name: &'a str,
    issue_institution: &'a str,
    issue_date: Option<&'a str>,
    attachment: Option<String>,
}

#[derive(Serialize)]
struct EducationBody<'a> {
    id: i64,
    user_id: i64,
    school_name: &'a str,
    degree: &'a str,
    start_date: Option<&'a str>,
    end_date: Option<&'a str>,
}

#[derive(Serialize)]
struct VettingBody {
    id: i64,
    status: &'static str,
    created_at: String,
    last_update: String,
}

fn certification_json<'a>(
    state: &AppState,
    c: &'a CertificationRow,
    files: &HashMap<i64, String>,
) -> CertificationBody<'a> {
    CertificationBody {
        id: c.id,
        user_id: c.user_id,
        name: &c.name,
        issue_institution: &c.issue_institution,
        issue_date: c.issue_date.as_deref(),
        attachment: file_url(state, files, c.attachment_blob_id),
    }
}

fn education_json(e: &EducationRow) -> EducationBody<'_> {
    EducationBody {
        id: e.id,
        user_id: e.user_id,
        school_name: &e.school_name,
        degree: &e.degree,
        start_date: e.start_date.as_deref(),
        end_date: e.end_date.as_deref(),
    }
}

fn vetting_json(v: &Vetting) -> VettingBody {
    VettingBody {
        id: v.id,
        status: v.status.code(),
        created_at: iso_date(v.created_at),
        last_update: iso_date(v.last_update),
    }
}

fn coach_json<'a>(state: &AppState, c: &'a Coach) -> CoachBody<'a> {
    let r = &c.row;
    CoachBody {
        pk: r.id,
        username: &r.email,
        email: &r.email,
        dob: r.date_of_birth.as_deref(),
        area: c
            .areas
            .iter()
            .map(|a| AreaBody {
                id: a.id,
                alias: &a.alias,
                name: &a.name,
                category: a.category_id,
            })
            .collect(),
        approved: r.approved,
        group: GroupBody {
            id: COACH_GROUP_ID,
            name: "Coach",
            permissions: [],
        },
        certification: c
            .certifications
            .iter()
            .map(|x| certification_json(state, x, &c.files))
            .collect(),
        education: c.educations.iter().map(education_json).collect(),
        coach_profile: CoachProfileBody {
            user: r.id,
            introduction: &r.introduction,
            website: &r.website,
            instagram_id: &r.instagram_id,
            twitter_id: &r.twitter_id,
            about_you: &r.about_you,
            business_logo: file_url(state, &c.files, r.business_logo_blob_id),
            business_name: &r.business_name,
            coach_since: r.coach_since.as_deref(),
            coach_location: r.coach_location.as_deref(),
            coach_experience: &r.coach_experience,
            mother_tongue: r.mother_tongue_id,
            coaching_language: r.coaching_language_id,
        },
        vetting_status: vetting_json(&Vetting::of(r)),
        avatar: file_url(state, &c.files, r.avatar_blob_id),
        coach_alias: &r.alias,
    }
}

// ------------------------------------------------------------ coach object

async fn get_coach(State(state): State<AppState>, Authed(me): Authed) -> DrfResult {
    let coach = coach::me(&state, &me).await?;
    Ok(json_status(StatusCode::OK, coach_json(&state, &coach)))
}

/// PUT and PATCH alike: any subset of the fields (DESIGN 7).
async fn update_coach(
    State(state): State<AppState>,
    Authed(me): Authed,
    body: UploadData,
) -> DrfResult {
    // Role first: a non-coach learns nothing from validation errors.
    if me.role != crate::domain::Role::Coach {
        return Err(Error::Forbidden(None).into());
    }
    let UploadData {
        data,
        lists,
        mut files,
    } = body;
    let mut f = Fields::partial(&data);
    let changes = CoachChanges {
        date_of_birth: f.date("dob"),
        area_list: f.pk_list("area_list", &lists, 50),
        avatar: f.file(&state, "avatar", &mut files, Accept::Images),
        business_logo: f.file(&state, "business_logo", &mut files, Accept::Images),
        profile: ProfileChanges {
            alias: f.slug("coachAlias", 50).map(|a| a.to_ascii_lowercase()),
            introduction: f.text_blank("introduction", 2000),
            website: f.url("website", 200),
            instagram_id: f.text_blank("instagramId", 100),
            twitter_id: f.text_blank("twitterId", 100),
            about_you: f.text_blank("about_you", 5000),
            business_name: f.text_blank("business_name", 255),
            business_logo_blob_id: None,
            coach_since: f.date("coach_since"),
            coach_location: f
                .text_blank("coach_location", 2)
                .map(|c| (!c.is_empty()).then(|| c.to_ascii_uppercase())),
            coach_experience: f.text_blank("coach_experience", 2000),
            mother_tongue_id: f.pk("mother_tongue"),
            coaching_language_id: f.pk("coaching_language"),
        },
    };
    let today = crate::domain::today();
    for (name, date) in [
        ("dob", &changes.date_of_birth),
        ("coach_since", &changes.profile.coach_since),
    ] {
        if let Some(Some(d)) = date
            && *d > today
        {
            f.add(name, "The date cannot be in the future.");
        }
    }
    f.finish()?;
    let coach = coach::update(&state, &me, changes).await?;
    Ok(json_status(StatusCode::OK, coach_json(&state, &coach)))
}

// ------------------------------------------------ certification, education

/// The `id` (present: update that record) and `user_id` of a certification
/// or education body; creating also requires the `required` field.
fn record_target(f: &mut Fields, data: &Data, required: &str) -> (Option<i64>, Option<i64>) {
    let creating = matches!(data.0.get("id"), None | Some(Value::Null));
    let id = if creating {
        None
    } else {
        f.integer("id", false)
    };
    let user_id = f.integer("user_id", true);
    if creating && !data.0.contains_key(required) {
        f.add(required, "This field is required.");
    }
    (id, user_id)
}

async fn save_certification(
    State(state): State<AppState>,
    Authed(me): Authed,
    body: UploadData,
) -> DrfResult {
    if me.role != crate::domain::Role::Coach {
        return Err(Error::Forbidden(None).into());
    }
    let UploadData {
        data, mut files, ..
    } = body;
    let mut f = Fields::partial(&data);
    let (id, user_id) = record_target(&mut f, &data, "name");
    let input = CertificationInput {
        id,
        user_id: user_id.unwrap_or_default(),
        name: f.char("name", false, 255),
        issue_institution: f.text_blank("issue_institution", 255),
        issue_date: f.date("issue_date"),
        attachment: f.file(&state, "attachment", &mut files, Accept::Documents),
    };
    f.finish()?;
    user_id.ok_or_else(missing)?;
    let saved = coach::save_certification(&state, &me, input).await?;
    let status = if saved.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_status(
        status,
        certification_json(&state, &saved.row, &saved.files),
    ))
}

async fn delete_certification(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
) -> DrfResult {
    coach::delete_certification(&state, &me, path_id(&id)?).await?;
    Ok(no_content())
}

async fn save_education(
    State(state): State<AppState>,
    Authed(me): Authed,
    data: Data,
) -> DrfResult {
    if me.role != crate::domain::Role::Coach {
        return Err(Error::Forbidden(None).into());
    }
    let mut f = Fields::partial(&data);
    let (id, user_id) = record_target(&mut f, &data, "school_name");
    let input = EducationInput {
        id,
        user_id: user_id.unwrap_or_default(),
        school_name: f.char("school_name", false, 255),
        degree: f.text_blank("degree", 255),
        start_date: f.date("start_date"),
        end_date: f.date("end_date"),
    };
    f.finish()?;
    user_id.ok_or_else(missing)?;
    let saved = coach::save_education(&state, &me, input).await?;
    let status = if saved.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(json_status(status, education_json(&saved.row)))
}

async fn delete_education(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(id): Path<String>,
) -> DrfResult {
    coach::delete_education(&state, &me, path_id(&id)?).await?;
    Ok(no_content())
}

// ----------------------------------------------------------------- vetting

async fn submit_vetting(State(state): State<AppState>, Authed(me): Authed) -> DrfResult {
    let vetting = coach::submit(&state, &me).await?;
    Ok(json_status(StatusCode::OK, vetting_json(&vetting)))
}

// ----------------------------------------------------------------- lookups

async fn lookup(state: &AppState, which: Lookup) -> DrfResult {
    let r = coach::lookup(state, which).await?;
    let body: Vec<Value> = r
        .areas
        .iter()
        .map(|a| json!({"id": a.id, "alias": a.alias, "name": a.name, "category": a.category_id}))
        .chain(
            r.categories
                .iter()
                .map(|(id, name)| json!({"id": id, "name": name})),
        )
        .chain(
            r.languages
                .iter()
                .map(|(id, code, name)| json!({"id": id, "code": code, "name": name})),
        )
        .chain(
            r.countries
                .iter()
                .map(|(code, name)| json!({"code": code, "name": name})),
        )
        .collect();
    Ok(json_status(StatusCode::OK, Value::Array(body)))
}

async fn areas(State(state): State<AppState>, Authed(_): Authed) -> DrfResult {
    lookup(&state, Lookup::Areas).await
}

async fn categories(State(state): State<AppState>, Authed(_): Authed) -> DrfResult {
    lookup(&state, Lookup::Categories).await
}

async fn languages(State(state): State<AppState>, Authed(_): Authed) -> DrfResult {
    lookup(&state, Lookup::Languages).await
}

async fn countries(State(state): State<AppState>, Authed(_): Authed) -> DrfResult {
    lookup(&state, Lookup::Countries).await
}

// ------------------------------------------------------------ staff review

async fn staff_list(
    State(state): State<AppState>,
    Authed(me): Authed,
    OriginalUri(uri): OriginalUri,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> DrfResult {
    let req = list_request(query.as_deref(), |_| None::<()>)?;
    let status =
        serde_urlencoded::from_str::<Vec<(String, String)>>(query.as_deref().unwrap_or(""))
            .unwrap_or_default()
            .into_iter()
            .rev()
            .find(|(k, _)| k == "vetting_status")
            .map(|(_, v)| v)
            .filter(|v| !v.is_empty());
    let status = match status {
        None => None,
        Some(code) => Some(VettingStatus::parse(&code).ok_or_else(|| {
            Error::field(
                "vetting_status",
                format!("Select a valid choice. {code} is not one of the available choices."),
            )
        })?),
    };
    let page = coach::list_for_staff(&state, &me, status, req.page, req.page_size).await?;
    Ok(json_status(
        StatusCode::OK,
        page_body(&page, &uri, &headers, state.config.public_scheme(), |c| {
            coach_json(&state, c)
        }),
    ))
}

async fn staff_find(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(pk): Path<String>,
) -> DrfResult {
    if me.role != crate::domain::Role::Staff {
        return Err(Error::Forbidden(None).into());
    }
    let coach = coach::find_for_staff(&state, &me, path_id(&pk)?).await?;
    Ok(json_status(StatusCode::OK, coach_json(&state, &coach)))
}

async fn staff_decide(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(pk): Path<String>,
    data: Data,
) -> DrfResult {
    if me.role != crate::domain::Role::Staff {
        return Err(Error::Forbidden(None).into());
    }
    let mut f = Fields::new(&data);
    let status = f.choice("status", true, &["AP", "PD"]);
    let reason = f.text_blank("reason", 2000);
    if status == Some("PD") && reason.as_deref().unwrap_or("").is_empty() {
        f.add(
            "reason",
            "A reason is required when sending a profile back.",
        );
    }
    f.finish()?;
    let decision = match status.ok_or_else(missing)? {
        "AP" => Decision::Approve,
        _ => Decision::SendBack {
            reason: reason.unwrap_or_default(),
        },
    };
    let vetting = coach::decide(&state, &me, path_id(&pk)?, decision).await?;
    Ok(json_status(StatusCode::OK, vetting_json(&vetting)))
}

async fn staff_history(
    State(state): State<AppState>,
    Authed(me): Authed,
    Path(pk): Path<String>,
) -> DrfResult {
    let events = coach::history(&state, &me, path_id(&pk)?).await?;
    let body: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "from_status": e.from_status,
                "to_status": e.to_status,
                "reason": e.reason,
                "actor_id": e.actor_id,
                "created_at": crate::domain::iso8601(e.created_at),
            })
        })
        .collect();
    Ok(json_status(StatusCode::OK, Value::Array(body)))
}
