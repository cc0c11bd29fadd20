//! The OpenAPI 3.1 document of every operation, built from the routes as
//! registered (`http::api`), with the component schemas they refer to.

use serde_json::{Map, Value, json};

use super::api::{
    Auth, Dialect, Operation, array, date, integer, nullable_string, object, r, string,
};

/// The document for `operations` (all of them: `http::operations()`).
/// Its server is relative (`/`): the API wherever the document was served.
pub fn document(operations: &[Operation]) -> Value {
    let mut paths = Map::new();
    for op in operations {
        let path = display_path(op);
        let entry = paths
            .entry(path)
            .or_insert_with(|| Value::Object(Map::new()));
        entry[op.method.as_str().to_ascii_lowercase()] = operation(op);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Roster",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "One domain, several API dialects: accounts and company admin \
                (Djoser/DRF), coach self-service (DRF), worker profiles (Rails), and the \
                organisation API (upCoach/Laravel). Every path works with and without its \
                trailing slash.",
        },
        "servers": [{"url": "/"}],
        "tags": tags(operations),
        "paths": paths,
        "components": {
            "securitySchemes": {
                "jwt": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
                        "description": "An access token from /api/auth/jwt/create/. The DRF surfaces also accept the word JWT instead of Bearer."},
                "apiKey": {"type": "http", "scheme": "bearer", "bearerFormat": "rst_...",
                           "description": "An organisation API key from /api/auth/api-keys/ (organisation API only)."},
            },
            "schemas": schemas(),
        },
    })
}

/// The path as clients write it: DRF paths end in `/`.
pub fn display_path(op: &Operation) -> String {
    if op.dialect == Dialect::Drf {
        format!("{}/", op.path)
    } else {
        op.path.to_string()
    }
}

fn tags(operations: &[Operation]) -> Value {
    let mut seen: Vec<&str> = Vec::new();
    for op in operations {
        if !seen.contains(&op.tag) {
            seen.push(op.tag);
        }
    }
    Value::Array(seen.into_iter().map(|t| json!({"name": t})).collect())
}

fn operation_id(op: &Operation) -> String {
    let mut id = op.method.as_str().to_ascii_lowercase();
    for part in op.path.split('/').filter(|p| !p.is_empty()) {
        id.push('_');
        id.extend(
            part.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .map(|c| if c == '-' { '_' } else { c }),
        );
    }
    id
}

fn error_schema(dialect: Dialect) -> Value {
    match dialect {
        Dialect::Drf | Dialect::Plain => r("DrfError"),
        Dialect::Laravel => r("LaravelError"),
        Dialect::Rails => r("RailsError"),
    }
}

fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        302 => "Found: a fresh signed download link in Location",
        304 => "Not Modified",
        400 => "Bad request or validation failure",
        401 => "Not authenticated",
        403 => "Not allowed for this role",
        404 => "Not found (or another organisation's)",
        412 => "If-Match does not match the current ETag",
        413 => "Body too large",
        415 => "Unsupported media type",
        422 => "Validation failure",
        429 => "Throttled; see Retry-After",
        503 => "Temporarily unavailable; see Retry-After",
        _ => "See the description",
    }
}

fn operation(op: &Operation) -> Value {
    let d = &op.doc;
    let mut o = Map::new();
    o.insert("operationId".into(), json!(operation_id(op)));
    o.insert("summary".into(), json!(d.summary));
    if let Some(text) = d.description {
        o.insert("description".into(), json!(text));
    }
    o.insert("tags".into(), json!([op.tag]));
    let security = match d.auth {
        Auth::None => json!([]),
        Auth::Jwt => json!([{"jwt": []}]),
        Auth::ApiKeyOrJwt => json!([{"apiKey": []}, {"jwt": []}]),
    };
    o.insert("security".into(), security);
    let mut parameters = Vec::new();
    for segment in op.path.split('/') {
        if let Some(name) = segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
            let schema = if let Some((_, words)) = d.choice_params.iter().find(|(n, _)| *n == name)
            {
                json!({"type": "string", "enum": words})
            } else if d.string_params.contains(&name) {
                string()
            } else {
                json!({"type": "integer", "minimum": 1})
            };
            parameters
                .push(json!({"name": name, "in": "path", "required": true, "schema": schema}));
        }
    }
    for (name, schema, about) in &d.query {
        let mut schema = schema.clone();
        let deep = schema
            .as_object_mut()
            .and_then(|o| o.remove("x-style"))
            .is_some();
        let mut parameter = json!({"name": name, "in": "query", "required": false,
                                   "schema": schema, "description": about});
        if deep {
            parameter["style"] = json!("deepObject");
            parameter["explode"] = json!(true);
        }
        parameters.push(parameter);
    }
    if !parameters.is_empty() {
        o.insert("parameters".into(), Value::Array(parameters));
    }
    if let Some(body) = &d.request {
        let mut content = Map::new();
        if body.json {
            content.insert("application/json".into(), json!({"schema": body.schema}));
        }
        if body.form {
            content.insert(
                "application/x-www-form-urlencoded".into(),
                json!({"schema": body.schema}),
            );
        }
        if body.multipart {
            // Part names travel in a header: control characters there are
            // malformed HTTP, refused before any field is read.
            let mut schema = body.schema.clone();
            schema["propertyNames"] = json!({"pattern": "^[\\x20-\\x7e]*$"});
            content.insert("multipart/form-data".into(), json!({ "schema": schema }));
        }
        o.insert(
            "requestBody".into(),
            json!({"required": body.required, "content": content}),
        );
    }
    let mut responses = Map::new();
    let (status, schema) = &d.success;
    let mut success = json!({"description": status_text(*status)});
    if let Some(schema) = schema {
        let content: serde_json::Map<String, Value> = d
            .success_media
            .iter()
            .map(|media| (media.to_string(), json!({"schema": schema})))
            .collect();
        success["content"] = Value::Object(content);
    }
    responses.insert(status.to_string(), success);
    let mut errors = d.errors.clone();
    if d.auth != Auth::None {
        errors.push(401);
    }
    if d.request.is_some() {
        // Malformed bodies, bodies of another media type, oversize bodies.
        errors.extend([400, 413, 415]);
    }
    errors.push(503);
    errors.sort_unstable();
    errors.dedup();
    for status in errors {
        let mut resp = json!({"description": status_text(status)});
        if status != 304 {
            resp["content"] = json!({"application/json": {"schema": error_schema(op.dialect)}});
        }
        responses.insert(status.to_string(), resp);
    }
    o.insert("responses".into(), Value::Object(responses));
    Value::Object(o)
}

fn schemas() -> Value {
    let timestamp = || json!({"type": "string", "format": "date-time"});
    let unix = || json!({"type": "integer", "description": "Unix seconds"});
    let attachment = object(
        json!({
            "id": integer(), "signed_id": string(), "byte_size": integer(),
            "filename": string(), "url": json!({"type": "string", "format": "uri"}),
            "content_type": string(), "checksum": string(),
        }),
        &["id", "signed_id", "byte_size", "filename", "url"],
    );
    let empty_attachment = object(
        json!({
            "id": {"type": "null"}, "signed_id": {"type": "null"},
            "byte_size": {"type": "null"}, "filename": {"const": ""}, "url": {"type": "null"},
        }),
        &["id", "signed_id", "byte_size", "filename", "url"],
    );
    let slot = || json!({"oneOf": [r("Attachment"), r("EmptyAttachment")]});
    json!({
        "DrfError": {
            "description": "DRF errors: {\"detail\": \"...\"}, {\"field\": [\"message\"]}, or (Djoser) a bare list of messages.",
            "oneOf": [
                {"type": "object", "additionalProperties": true},
                {"type": "array", "items": string()},
            ],
        },
        "LaravelError": object(json!({"message": string(), "errors": {"type": "object"}}), &["message"]),
        "RailsError": {
            "type": "object",
            "description": "{\"error\": \"...\"}, or on 422 {\"errors\": {\"field\": [\"message\"]}}.",
            "properties": {"error": string(), "errors": {"type": "object"}},
        },
        "User": object(json!({"id": integer(), "email": string(), "first_name": string(),
                               "last_name": string(), "role": string()}),
                       &["id", "email", "first_name", "last_name", "role"]),
        "TokenPair": object(json!({"access": string(), "refresh": string()}), &["access"]),
        "ApiKey": object(json!({"id": integer(), "name": string(), "prefix": string(),
                                 "created_at": timestamp(), "last_used_at": {"type": ["string", "null"]}}),
                         &["id", "name", "prefix", "created_at"]),
        "NewApiKey": object(json!({"id": integer(), "name": string(), "key": string(),
                                    "prefix": string(), "created_at": timestamp()}),
                            &["id", "name", "key", "prefix", "created_at"]),
        "Department": object(json!({"id": integer(), "name": string(), "company": integer(),
                                     "created_at": timestamp(), "updated_at": timestamp(),
                                     "added_by": {"type": ["integer", "null"]}}),
                             &["id", "name", "company", "created_at", "updated_at"]),
        "TeamMember": object(json!({"id": integer(), "email": string(), "first_name": string(),
                                     "last_name": string(), "role": string(), "company": integer(),
                                     "department": {"type": ["integer", "null"]},
                                     "created_at": timestamp(), "updated_at": timestamp(),
                                     "added_by": {"type": ["integer", "null"]}}),
                             &["id", "email", "first_name", "last_name", "role"]),
        "OrgMe": object(json!({
            "user": object(json!({"avatar": nullable_string(), "email": string(), "id": string(),
                                  "name": string(), "timezone": string()}), &["id", "email", "name"]),
            "organization": object(json!({"id": string(), "name": string(), "subdomain": string(),
                                          "url_home": nullable_string(), "created_at": unix()}),
                                   &["id", "name", "subdomain"]),
        }), &["user", "organization"]),
        "Person": object(json!({"id": string(), "avatar": nullable_string(), "name": string(),
                                 "email": string(), "timezone": string(), "role": string(),
                                 "created_at": unix(), "info": {"type": ["object", "null"]}}),
                         &["id", "name", "email", "created_at"]),
        "Program": object(json!({"id": string(), "name": string(), "created_at": unix()}),
                          &["id", "name", "created_at"]),
        "CustomField": object(json!({"id": string(), "slug": string(), "label": string(),
                                      "type": {"enum": ["text", "number", "date", "boolean", "select"]},
                                      "options": {"type": ["array", "null"]}, "required": {"type": "boolean"},
                                      "created_at": unix()}),
                              &["id", "slug", "label", "type", "required"]),
        "LaravelLinks": object(json!({"first": string(), "last": string(),
                                       "prev": nullable_string(), "next": nullable_string()}),
                               &["first", "last", "prev", "next"]),
        "LaravelMeta": object(json!({"current_page": integer(), "from": {"type": ["integer", "null"]},
                                      "last_page": integer(), "path": string(), "per_page": integer(),
                                      "to": {"type": ["integer", "null"]}, "total": integer()}),
                              &["current_page", "last_page", "per_page", "total"]),
        "Area": object(json!({"id": integer(), "alias": string(), "name": string(), "category": integer()}),
                       &["id", "alias", "name", "category"]),
        "Category": object(json!({"id": integer(), "name": string()}), &["id", "name"]),
        "Language": object(json!({"id": integer(), "code": string(), "name": string()}), &["id", "code", "name"]),
        "Country": object(json!({"code": string(), "name": string()}), &["code", "name"]),
        "Certification": object(json!({"id": integer(), "user_id": integer(), "name": string(),
                                        "issue_institution": string(), "issue_date": date(),
                                        "attachment": {"type": ["string", "null"], "format": "uri"}}),
                                &["id", "user_id", "name", "issue_institution", "issue_date", "attachment"]),
        "Education": object(json!({"id": integer(), "user_id": integer(), "school_name": string(),
                                    "degree": string(), "start_date": date(), "end_date": date()}),
                            &["id", "user_id", "school_name", "degree", "start_date", "end_date"]),
        "Vetting": object(json!({"id": integer(), "status": {"enum": ["PD", "RE", "AP"]},
                                  "created_at": {"type": "string", "format": "date"},
                                  "last_update": {"type": "string", "format": "date"}}),
                          &["id", "status", "created_at", "last_update"]),
        "VettingEvent": object(json!({"id": integer(), "from_status": string(), "to_status": string(),
                                       "reason": nullable_string(), "actor_id": {"type": ["integer", "null"]},
                                       "created_at": timestamp()}),
                               &["id", "from_status", "to_status", "created_at"]),
        "Coach": object(json!({
            "pk": integer(), "username": string(), "email": string(), "dob": date(),
            "area": array(r("Area")), "approved": {"type": "boolean"},
            "group": object(json!({"id": integer(), "name": string(), "permissions": array(json!({}))}),
                            &["id", "name", "permissions"]),
            "certification": array(r("Certification")), "education": array(r("Education")),
            "coach_profile": object(json!({
                "user": integer(), "introduction": string(), "website": string(),
                "instagramId": string(), "twitterId": string(), "about_you": string(),
                "business_logo": {"type": ["string", "null"], "format": "uri"},
                "business_name": string(), "coach_since": date(),
                "coach_location": nullable_string(), "coach_experience": string(),
                "mother_tongue": {"type": ["integer", "null"]},
                "coaching_language": {"type": ["integer", "null"]},
            }), &["user"]),
            "vetting_status": r("Vetting"),
            "avatar": {"type": ["string", "null"], "format": "uri"},
            "coachAlias": string(),
        }), &["pk", "username", "email", "dob", "area", "approved", "group", "certification",
              "education", "coach_profile", "vetting_status", "avatar", "coachAlias"]),
        "Attachment": attachment,
        "EmptyAttachment": empty_attachment,
        "Activity": object(json!({"id": integer(), "action": string(), "changes": {"type": "object"},
                                   "actor_id": {"type": ["integer", "null"]}, "created_at": timestamp()}),
                           &["id", "action", "changes", "actor_id", "created_at"]),
        "ProfileRecord": {"type": "object", "properties": {"id": integer(), "created_at": timestamp()},
                          "required": ["id", "created_at"], "additionalProperties": true},
        "Profile": object(json!({
            "id": integer(), "activities": array(r("Activity")), "bio": nullable_string(),
            "birth_date": date(), "child_safeguard_training": slot(),
            "compliance_documents": array(string()), "contact_phone_number": nullable_string(),
            "cpc": slot(), "cv": slot(), "dbs": slot(), "documents": array(r("Attachment")),
            "driving_license": array(r("Attachment")), "email": string(), "enchanced_dbs": slot(),
            "english_level": {"type": ["string", "null"], "enum": ["beginner", "intermediate", "advanced", "fluent", "native", null]},
            "experiences": array(r("ProfileRecord")), "first_name": string(),
            "interviews": array(r("ProfileRecord")), "last_name": string(),
            "last_sign_in_at": {"type": ["string", "null"]}, "licenses": array(string()),
            "medical_check": slot(), "phone_number": nullable_string(), "postcode": nullable_string(),
            "reviews": array(r("ProfileRecord")), "start_date": date(), "tacho": slot(),
        }), &["id", "activities", "compliance_documents", "documents", "driving_license", "email",
              "first_name", "last_name", "licenses"]),
        "ProfileEnvelope": object(json!({"profile": r("Profile")}), &["profile"]),
        "ProfilePage": object(json!({
            "profiles": array(r("Profile")),
            "meta": object(json!({"page": integer(), "per_page": integer(), "total": integer()}),
                           &["page", "per_page", "total"]),
        }), &["profiles", "meta"]),
        "Health": object(json!({"status": string()}), &["status"]),
    })
}
