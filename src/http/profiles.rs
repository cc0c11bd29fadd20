//! Worker profiles (seed 001) in the Rails dialect: `/api/v1/profiles...`
//! for organisation admins and staff, `/api/v1/profile...` for a member's
//! own profile, documents, sub-records, and signed blob ids.

use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::api::{
    Api, Dialect, array, blank_or_date, choice, date, doc, nullable_string, object, optional_text,
    page_number, r, string, text,
};
use super::rails::{
    Params, RailsAuth, RailsError, RailsResult, Upload, if_match, none_match, not_modified,
    path_id, with_etag,
};
use crate::app::AppState;
use crate::domain::profiles::{
    self, COMPLIANCE_DOCUMENTS, ListQuery, Profile, ProfileChanges, RecordKind, Target,
};
use crate::domain::uploads::{self, Accept, download_url, signed_id};
use crate::domain::{Error, FieldErrors, Timestamp, iso8601};
use crate::store::profiles::{DocumentRow, RecordRow};

/// Paths under this prefix answer 404 and 405 in this dialect.
pub const PREFIX: &str = "/api/v1";

/// Every document kind, for the path parameter's enum.
fn document_kinds() -> Vec<&'static str> {
    profiles::SLOT_KINDS
        .iter()
        .chain(profiles::LIST_KINDS.iter())
        .copied()
        .collect()
}

pub fn api() -> Api {
    let envelope = r("ProfileEnvelope");
    let mut english_levels = json!(profiles::ENGLISH_LEVELS);
    if let Value::Array(levels) = &mut english_levels {
        levels.push(Value::Null);
    }
    let fields = object(
        json!({
            "first_name": string(), "last_name": string(), "postcode": nullable_string(),
            "english_level": {"enum": english_levels}, "contact_phone_number": nullable_string(),
            "birth_date": date(), "start_date": date(), "bio": nullable_string(),
            "licenses": array(json!({"enum": profiles::LICENSES})),
        }),
        &[],
    );
    let mut body = object(json!({ "profile": fields }), &["profile"]);
    // A complete, valid profile: the five required fields and a licence.
    body["examples"] = json!([{"profile": {
        "first_name": "Nicola", "last_name": "Conn", "postcode": "SW1A 1AA",
        "english_level": "fluent", "contact_phone_number": "+44 20 7946 0000",
        "licenses": ["b"],
    }}]);
    let file_body = object(
        // A file part (OpenAPI 3.1's spelling of `format: binary`); the
        // type is read from the bytes: PDF, PNG, JPEG or WebP.
        json!({"file": {"type": "string", "contentMediaType": "application/octet-stream",
                        "description": "A PDF, PNG, JPEG or WebP file (the type is read from its bytes)"}}),
        &["file"],
    );
    let attachment = r("Attachment");
    let show_doc = |summary| {
        doc(summary)
            .ok(200, envelope.clone())
            .errors(&[304, 403, 404])
            .describe("Carries an ETag; If-None-Match with it answers 304.")
    };
    let update_doc = |summary| {
        doc(summary)
            .json_body(body.clone())
            .ok(200, envelope.clone())
            .errors(&[400, 403, 404, 412, 415, 422])
            .describe("Merges the given fields; the result must be complete. If-Match with a stale ETag answers 412.")
    };
    let mut api = Api::new("Worker profiles", Dialect::Rails)
        .get(
            "/api/v1/profiles",
            list,
            doc("Profiles of the organisation (admins) or of all (staff)")
                .query(
                    "license",
                    choice(&crate::domain::profiles::LICENSES, true),
                    "holds this licence (any case)",
                )
                .query(
                    "english_level",
                    choice(&crate::domain::profiles::ENGLISH_LEVELS, true),
                    "English level (any case)",
                )
                .query(
                    "missing_document",
                    choice(
                        &[
                            "dbs",
                            "enchanced_dbs",
                            "tacho",
                            "cpc",
                            "medical_check",
                            "child_safeguard_training",
                            "cv",
                            "documents",
                            "driving_license",
                        ],
                        false,
                    ),
                    "lacks this document kind",
                )
                .query("q", string(), "substring of name, email or postcode")
                .query(
                    "page",
                    page_number(),
                    "page number; below 1 or not a number means 1",
                )
                .query(
                    "per_page",
                    page_number(),
                    "at most 100; below 1 or not a number means 25",
                )
                .ok(200, r("ProfilePage"))
                .errors(&[403, 422]),
        )
        .get(
            "/api/v1/profiles/{id}",
            show,
            show_doc("A member's profile"),
        )
        .put(
            "/api/v1/profiles/{id}",
            update,
            update_doc("Update a member's profile"),
        )
        .patch(
            "/api/v1/profiles/{id}",
            update,
            update_doc("Update a member's profile"),
        )
        .get(
            "/api/v1/profile",
            show_own,
            show_doc("The signed-in member's own profile"),
        )
        .put(
            "/api/v1/profile",
            update_own,
            update_doc("Update the member's own profile"),
        )
        .patch(
            "/api/v1/profile",
            update_own,
            update_doc("Update the member's own profile"),
        )
        .post(
            "/api/v1/profiles/{id}/documents/{kind}",
            upload,
            doc("Upload into a document slot (replaces) or list (appends)")
                .choice_param("kind", document_kinds())
                .upload(file_body.clone())
                .ok(201, attachment.clone())
                .errors(&[403, 404, 422]),
        )
        .delete(
            "/api/v1/profiles/{id}/documents/{kind}",
            empty_document,
            doc("Empty a document slot or list")
                .choice_param("kind", document_kinds())
                .no_content()
                .errors(&[403, 404]),
        )
        .delete(
            "/api/v1/profiles/{id}/documents/{kind}/{attachment}",
            remove_document,
            doc("Remove one attachment")
                .choice_param("kind", document_kinds())
                .no_content()
                .errors(&[403, 404]),
        )
        .post(
            "/api/v1/profile/documents/{kind}",
            upload_own,
            doc("Upload to the member's own profile")
                .choice_param("kind", document_kinds())
                .upload(file_body)
                .ok(201, attachment)
                .errors(&[404, 422]),
        )
        .delete(
            "/api/v1/profile/documents/{kind}",
            empty_own_document,
            doc("Empty a slot or list of the member's own profile")
                .choice_param("kind", document_kinds())
                .no_content()
                .errors(&[404]),
        )
        .delete(
            "/api/v1/profile/documents/{kind}/{attachment}",
            remove_own_document,
            doc("Remove one attachment of the member's own profile")
                .choice_param("kind", document_kinds())
                .no_content()
                .errors(&[404]),
        )
        .get(
            "/api/v1/blobs/{signed_id}",
            blob,
            doc("Follow a signed id to a fresh download link (302)")
                .string_param("signed_id")
                .redirect()
                .errors(&[404]),
        );
    let records = [
        (
            "/api/v1/profiles/{id}/experiences",
            "/api/v1/profiles/{id}/experiences/{record}",
            "experience",
            json!({"company": text(), "role": optional_text(), "start_date": blank_or_date(), "end_date": blank_or_date(), "description": optional_text()}),
            &["company"][..],
        ),
        (
            "/api/v1/profiles/{id}/interviews",
            "/api/v1/profiles/{id}/interviews/{record}",
            "interview",
            json!({"date": {"type": "string", "format": "date"}, "interviewer": optional_text(), "outcome": {"enum": ["pending", "passed", "failed", null]}, "notes": optional_text()}),
            &["date"][..],
        ),
        (
            "/api/v1/profiles/{id}/reviews",
            "/api/v1/profiles/{id}/reviews/{record}",
            "review",
            json!({"rating": {"type": "integer", "minimum": 1, "maximum": 5}, "comment": optional_text()}),
            &["rating"][..],
        ),
    ];
    for (collection, member, key, properties, required) in records {
        api = api
            .post(
                collection,
                add_record,
                doc("Add a record to the profile")
                    .json_body(object(json!({ key: object(properties, required) }), &[key]))
                    .ok(201, object(json!({ key: r("ProfileRecord") }), &[key]))
                    .errors(&[400, 403, 404, 422]),
            )
            .delete(
                member,
                remove_record,
                doc("Remove a record from the profile")
                    .no_content()
                    .errors(&[403, 404]),
            );
    }
    // Upload bodies are bounded part by part by `Upload`.
    api.map_router(|r| r.layer(DefaultBodyLimit::disable()))
}

// ------------------------------------------------------------- rendering

/// An attached document, as seed 001 shows it in a slot or a list.
#[derive(serde::Serialize)]
struct AttachmentBody<'a> {
    id: i64,
    signed_id: String,
    byte_size: i64,
    filename: &'a str,
    url: String,
    content_type: &'a str,
    checksum: &'a str,
}

impl<'a> AttachmentBody<'a> {
    fn of(state: &AppState, d: &'a DocumentRow) -> Self {
        AttachmentBody {
            id: d.id,
            signed_id: signed_id(state, d.blob_id),
            byte_size: d.byte_size,
            filename: &d.filename,
            url: download_url(state, d.blob_id, &d.filename),
            content_type: &d.content_type,
            checksum: &d.checksum,
        }
    }
}

/// A document slot: its document, or the empty attachment Rails renders
/// (`{"id": null, "signed_id": null, "byte_size": null, "filename": "", "url": null}`).
#[derive(serde::Serialize)]
#[serde(untagged)]
enum SlotBody<'a> {
    Filled(AttachmentBody<'a>),
    Empty {
        id: Option<i64>,
        signed_id: Option<String>,
        byte_size: Option<i64>,
        filename: &'static str,
        url: Option<String>,
    },
}

impl SlotBody<'_> {
    fn empty() -> Self {
        SlotBody::Empty {
            id: None,
            signed_id: None,
            byte_size: None,
            filename: "",
            url: None,
        }
    }
}

fn record_json(r: &RecordRow) -> Value {
    let mut map = match serde_json::from_str::<Value>(&r.data) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let mut out = Map::new();
    out.insert("id".into(), json!(r.id));
    out.append(&mut map);
    if r.kind == "reviews" {
        out.insert("reviewer_id".into(), json!(r.actor_id));
    }
    out.insert("created_at".into(), json!(iso8601(r.created_at)));
    Value::Object(out)
}

#[derive(serde::Serialize)]
struct ActivityBody<'a> {
    id: i64,
    action: &'a str,
    changes: Value,
    actor_id: Option<i64>,
    created_at: Timestamp,
}

/// The profile object, field for field (and in the order) seed 001 shows
/// it, serialized straight from the rows.
#[derive(serde::Serialize)]
struct ProfileBody<'a> {
    id: i64,
    activities: Vec<ActivityBody<'a>>,
    bio: &'a Option<String>,
    birth_date: &'a Option<String>,
    child_safeguard_training: SlotBody<'a>,
    compliance_documents: &'static [&'static str],
    contact_phone_number: &'a Option<String>,
    cpc: SlotBody<'a>,
    cv: SlotBody<'a>,
    dbs: SlotBody<'a>,
    documents: Vec<AttachmentBody<'a>>,
    driving_license: Vec<AttachmentBody<'a>>,
    email: &'a str,
    enchanced_dbs: SlotBody<'a>,
    english_level: &'a Option<String>,
    experiences: Vec<Value>,
    first_name: &'a str,
    interviews: Vec<Value>,
    last_name: &'a str,
    last_sign_in_at: Option<Timestamp>,
    licenses: &'a [String],
    medical_check: SlotBody<'a>,
    phone_number: &'a Option<String>,
    postcode: &'a Option<String>,
    reviews: Vec<Value>,
    start_date: &'a Option<String>,
    tacho: SlotBody<'a>,
}

impl<'a> ProfileBody<'a> {
    fn of(state: &AppState, p: &'a Profile) -> Self {
        let r = &p.row;
        let slot = |kind: &str| {
            p.documents
                .iter()
                .find(|d| d.kind == kind)
                .map_or_else(SlotBody::empty, |d| {
                    SlotBody::Filled(AttachmentBody::of(state, d))
                })
        };
        let list = |kind: &str| {
            p.documents
                .iter()
                .filter(|d| d.kind == kind)
                .map(|d| AttachmentBody::of(state, d))
                .collect()
        };
        let records = |kind: &str| {
            p.records
                .iter()
                .filter(|x| x.kind == kind)
                .map(record_json)
                .collect()
        };
        let activities = p
            .activities
            .iter()
            .map(|a| ActivityBody {
                id: a.id,
                action: &a.action,
                changes: serde_json::from_str(&a.changes).unwrap_or(Value::Null),
                actor_id: a.actor_id,
                created_at: Timestamp(a.created_at),
            })
            .collect();
        ProfileBody {
            id: r.id,
            activities,
            bio: &r.bio,
            birth_date: &r.birth_date,
            child_safeguard_training: slot("child_safeguard_training"),
            compliance_documents: &COMPLIANCE_DOCUMENTS,
            contact_phone_number: &r.contact_phone_number,
            cpc: slot("cpc"),
            cv: slot("cv"),
            dbs: slot("dbs"),
            documents: list("documents"),
            driving_license: list("driving_license"),
            email: &r.email,
            enchanced_dbs: slot("enchanced_dbs"),
            english_level: &r.english_level,
            experiences: records("experiences"),
            first_name: &r.first_name,
            interviews: records("interviews"),
            last_name: &r.last_name,
            last_sign_in_at: r.last_sign_in_at.map(Timestamp),
            licenses: &p.licenses,
            medical_check: slot("medical_check"),
            phone_number: &r.phone,
            postcode: &r.postcode,
            reviews: records("reviews"),
            start_date: &r.start_date,
            tacho: slot("tacho"),
        }
    }
}

#[derive(serde::Serialize)]
struct OneProfileBody<'a> {
    profile: ProfileBody<'a>,
}

/// The profile and its ETag ([`profiles::etag`], which the caller may
/// already have made: a hash, not worth making twice).
fn profile_response(state: &AppState, status: StatusCode, p: &Profile, etag: &str) -> Response {
    let body = OneProfileBody {
        profile: ProfileBody::of(state, p),
    };
    with_etag(status, &body, etag)
}

// ------------------------------------------------------------------- reads

async fn list(
    State(state): State<AppState>,
    RailsAuth(me): RailsAuth,
    RawQuery(query): RawQuery,
) -> RailsResult {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or("")).unwrap_or_default();
    let get = |name: &str| {
        pairs
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    let number = |name: &str, default: i64| {
        get(name)
            .and_then(|v| v.parse::<i64>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(default)
    };
    let page = profiles::list(
        &state,
        &me,
        ListQuery {
            license: get("license").map(|v| v.to_ascii_lowercase()),
            english_level: get("english_level").map(|v| v.to_ascii_lowercase()),
            missing_document: get("missing_document"),
            q: get("q"),
            page: number("page", 1),
            per_page: number("per_page", 25),
        },
    )
    .await?;
    #[derive(serde::Serialize)]
    struct Meta {
        page: i64,
        per_page: i64,
        total: i64,
    }
    #[derive(serde::Serialize)]
    struct ProfilesBody<'a> {
        profiles: Vec<ProfileBody<'a>>,
        meta: Meta,
    }
    let body = ProfilesBody {
        profiles: page
            .profiles
            .iter()
            .map(|p| ProfileBody::of(&state, p))
            .collect(),
        meta: Meta {
            page: page.page,
            per_page: page.per_page,
            total: page.total,
        },
    };
    Ok(super::json_response(StatusCode::OK, &body))
}

async fn respond_show(
    state: &AppState,
    me: &crate::domain::auth::Principal,
    target: Target,
    headers: &HeaderMap,
) -> RailsResult {
    let profile = profiles::find(state, me, target).await?;
    let etag = profiles::etag(&profile.row);
    if none_match(headers, &etag) {
        return Ok(not_modified(&etag));
    }
    Ok(profile_response(state, StatusCode::OK, &profile, &etag))
}

async fn show(
    State(state): State<AppState>,
    RailsAuth(me): RailsAuth,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> RailsResult {
    respond_show(&state, &me, Target::Id(path_id(&id)?), &headers).await
}

async fn show_own(
    State(state): State<AppState>,
    RailsAuth(me): RailsAuth,
    headers: HeaderMap,
) -> RailsResult {
    respond_show(&state, &me, Target::Own, &headers).await
}

// ------------------------------------------------------------------ update

/// Reads `profile[...]` into changes; type errors are 422s on the field.
fn changes_from(profile: &Map<String, Value>) -> Result<ProfileChanges, RailsError> {
    let mut errors = FieldErrors::new();
    let mut text = |name: &str| -> Option<Option<String>> {
        match profile.get(name)? {
            Value::Null => Some(None),
            Value::String(s) if !s.contains('\0') => Some(Some(s.clone())),
            Value::Number(n) => Some(Some(n.to_string())),
            _ => {
                errors.add(name, "is invalid");
                None
            }
        }
    };
    let mut changes = ProfileChanges {
        first_name: text("first_name"),
        last_name: text("last_name"),
        postcode: text("postcode"),
        english_level: text("english_level"),
        contact_phone_number: text("contact_phone_number"),
        birth_date: text("birth_date"),
        start_date: text("start_date"),
        bio: text("bio"),
        licenses: None,
    };
    match profile.get("licenses") {
        None => {}
        Some(Value::Null) => changes.licenses = Some(Vec::new()),
        Some(Value::Array(items)) => {
            let mut licenses = Vec::new();
            for item in items {
                match item {
                    Value::String(s) if s.trim().is_empty() => {}
                    Value::String(s) => licenses.push(s.clone()),
                    other => errors.add("licenses", format!("{other} is not a valid licence")),
                }
            }
            changes.licenses = Some(licenses);
        }
        // A form may send one value, or an empty value to clear the list.
        Some(Value::String(s)) if s.trim().is_empty() => changes.licenses = Some(Vec::new()),
        Some(Value::String(s)) => changes.licenses = Some(vec![s.clone()]),
        Some(_) => errors.add("licenses", "must be a list"),
    }
    errors.into_result()?;
    Ok(changes)
}

async fn respond_update(
    state: &AppState,
    me: &crate::domain::auth::Principal,
    target: Target,
    headers: &HeaderMap,
    params: &Params,
) -> RailsResult {
    let changes = changes_from(params.require("profile")?)?;
    let condition = if_match(headers);
    let profile = profiles::update(state, me, target, changes, condition.as_deref()).await?;
    let etag = profiles::etag(&profile.row);
    Ok(profile_response(state, StatusCode::OK, &profile, &etag))
}

async fn update(
    State(state): State<AppState>,
    RailsAuth(me): RailsAuth,
    Path(id): Path<String>,
    headers: HeaderMap,
    params: Params,
) -> RailsResult {
    let target = Target::Id(path_id(&id)?);
    respond_update(&state, &me, target, &headers, &params).await
}

async fn update_own(
    State(state): State<AppState>,
    RailsAuth(me): RailsAuth,
    headers: HeaderMap,
    params: Params,
) -> RailsResult {
    respond_update(&state, &me, Target::Own, &headers, &params).await
}

// --------------------------------------------------------------- documents

async fn respond_upload(
    state: &AppState,
    me: &crate::domain::auth::Principal,
    target: Target,
    kind: &str,
    upload: Upload,
) -> RailsResult {
    let file = uploads::check(state, upload.0, Accept::Documents)
        .map_err(|message| Error::field("file", message))?;
    let (document, profile) = profiles::upload(state, me, target, kind, file).await?;
    Ok(with_etag(
        StatusCode::CREATED,
        &AttachmentBody::of(state, &document),
        &profiles::etag(&profile.row),
    ))
}

async fn upload(
    State(state): State<AppState>,
    RailsAuth(me): RailsAuth,
    Path((id, kind)): Path<(String, String)>,
    file: Upload,
) -> RailsResult {
    respond_upload(&state, &me, Target::Id(path_id(&id)?), &kind, file).await
}

async fn upload_own(
    State(state): State<AppState>,
    RailsAuth(me): RailsAuth,
    Path(kind): Path<String>,
    file: Upload,
) -> RailsResult {
    respond_upload(&state, &me, Target::Own, &kind, file).await
}

async fn empty_document(
    State(state): State<AppState>,
    RailsAuth(me): RailsAuth,
    Path((id, kind)): Path<(String, String)>,
) -> RailsResult {
    let target = Target::Id(path_id(&id)?);
    profiles::remove_document(&state, &me, target, &kind, None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn remove_document(
    State(state): State<AppState>,
    RailsAuth(me): RailsAuth,
    Path((id, kind, attachment)): Path<(String, String, String)>,
) -> RailsResult {
    let target = Target::Id(path_id(&id)?);
    let attachment = Some(path_id(&attachment)?);
    profiles::remove_document(&state, &me, target, &kind, attachment).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn empty_own_document(
    State(state): State<AppState>,
    RailsAuth(me): RailsAuth,
    Path(kind): Path<String>,
) -> RailsResult {
    profiles::remove_document(&state, &me, Target::Own, &kind, None).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn remove_own_document(
    State(state): State<AppState>,
    RailsAuth(me): RailsAuth,
    Path((kind, attachment)): Path<(String, String)>,
) -> RailsResult {
    let attachment = Some(path_id(&attachment)?);
    profiles::remove_document(&state, &me, Target::Own, &kind, attachment).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /api/v1/blobs/{signed_id}`: a 302 to a fresh download link, for
/// those allowed to see the document; a tampered id is 404.
async fn blob(
    State(state): State<AppState>,
    RailsAuth(me): RailsAuth,
    Path(signed): Path<String>,
) -> RailsResult {
    let id = uploads::verify_signed_id(&state, &signed).ok_or(Error::NotFound)?;
    if !profiles::may_read_blob(&state, &me, id).await? {
        return Err(Error::NotFound.into());
    }
    let mut tx = state.db.begin_read().await.map_err(Error::from)?;
    let found = crate::store::blobs::find(&mut tx, id)
        .await
        .map_err(Error::from)?;
    tx.commit().await.map_err(Error::from)?;
    let blob = found.ok_or(Error::NotFound)?;
    let mut response = StatusCode::FOUND.into_response();
    let location = download_url(&state, blob.id, &blob.filename);
    if let Ok(value) = header::HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("max-age=300, private"),
    );
    Ok(response)
}

// ------------------------------------------------------------- sub-records

/// The collection a sub-record path names (`/profiles/1/experiences`).
fn record_kind(uri: &axum::http::Uri) -> Result<RecordKind, RailsError> {
    uri.path()
        .split('/')
        .nth(5)
        .and_then(RecordKind::parse)
        .ok_or(RailsError::Domain(Error::NotFound))
}

async fn add_record(
    State(state): State<AppState>,
    RailsAuth(me): RailsAuth,
    Path(id): Path<String>,
    uri: axum::http::Uri,
    params: Params,
) -> RailsResult {
    let kind = record_kind(&uri)?;
    let target = Target::Id(path_id(&id)?);
    let input = params.require(kind.member())?;
    let record = profiles::add_record(&state, &me, target, kind, input).await?;
    Ok((
        StatusCode::CREATED,
        axum::Json(json!({ kind.member(): record_json(&record) })),
    )
        .into_response())
}

async fn remove_record(
    State(state): State<AppState>,
    RailsAuth(me): RailsAuth,
    Path((id, record)): Path<(String, String)>,
    uri: axum::http::Uri,
) -> RailsResult {
    let kind = record_kind(&uri)?;
    let target = Target::Id(path_id(&id)?);
    profiles::remove_record(&state, &me, target, kind, path_id(&record)?).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
