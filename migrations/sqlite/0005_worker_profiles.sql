-- Worker profiles (seed 001): every Member has one. Licences, documents and
-- sub-records (experiences, interviews, reviews) in their own tables; every
-- change appends an activity. `version` grows with each change (the ETag).

CREATE TABLE worker_profiles (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id INTEGER NOT NULL UNIQUE REFERENCES users(id) ON DELETE CASCADE,
    organization_id INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    first_name TEXT NOT NULL DEFAULT '',
    last_name TEXT NOT NULL DEFAULT '',
    postcode TEXT,
    english_level TEXT,
    contact_phone_number TEXT,
    birth_date TEXT,
    start_date TEXT,
    bio TEXT,
    version INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE INDEX worker_profiles_organization ON worker_profiles (organization_id, id);
CREATE INDEX worker_profiles_english_level ON worker_profiles (organization_id, english_level, id);

CREATE TABLE profile_licenses (
    profile_id INTEGER NOT NULL REFERENCES worker_profiles(id) ON DELETE CASCADE,
    license TEXT NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (profile_id, license)
);
CREATE INDEX profile_licenses_license ON profile_licenses (license, profile_id);

-- An attached file: a named slot (one file) or a list kind (documents,
-- driving_license). `id` is the attachment id clients use to remove it.
CREATE TABLE profile_documents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    profile_id INTEGER NOT NULL REFERENCES worker_profiles(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    blob_id INTEGER NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL
);
CREATE INDEX profile_documents_profile ON profile_documents (profile_id, kind, id);
CREATE UNIQUE INDEX profile_documents_slot ON profile_documents (profile_id, kind)
    WHERE kind NOT IN ('documents', 'driving_license');
-- "Members missing a DBS check": one probe per profile.
CREATE INDEX profile_documents_kind ON profile_documents (kind, profile_id);

-- Experiences, interviews and reviews: validated by the domain, stored as
-- JSON objects.
CREATE TABLE profile_records (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    profile_id INTEGER NOT NULL REFERENCES worker_profiles(id) ON DELETE CASCADE,
    kind TEXT NOT NULL CHECK (kind IN ('experiences', 'interviews', 'reviews')),
    data TEXT NOT NULL,
    actor_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX profile_records_profile ON profile_records (profile_id, kind, id);

CREATE TABLE profile_activities (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    profile_id INTEGER NOT NULL REFERENCES worker_profiles(id) ON DELETE CASCADE,
    action TEXT NOT NULL,
    changes TEXT NOT NULL,
    actor_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL
);
CREATE INDEX profile_activities_profile ON profile_activities (profile_id, id);

-- Members that exist already get their profile, with their names.
INSERT INTO worker_profiles (user_id, organization_id, first_name, last_name, created_at, updated_at)
    SELECT id, organization_id, first_name, last_name, created_at, created_at
    FROM users WHERE role = 'member' AND organization_id IS NOT NULL;
