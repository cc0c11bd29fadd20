-- Company admin: departments, a user's department, and the indexes behind
-- search and ordering of team members.

CREATE TABLE departments (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    organization_id INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    added_by INTEGER REFERENCES users(id) ON DELETE SET NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX departments_unique_name ON departments (organization_id, name_key);
CREATE INDEX departments_id ON departments (organization_id, id);
CREATE INDEX departments_name ON departments (organization_id, name, id);
CREATE INDEX departments_created ON departments (organization_id, created_at, id);
CREATE INDEX departments_updated ON departments (organization_id, updated_at, id);

ALTER TABLE users ADD COLUMN department_id INTEGER REFERENCES departments(id) ON DELETE SET NULL;
CREATE INDEX users_department ON users (department_id);

-- Every sortable field of a team member, within its organisation. `role`
-- rides along so that the team filter is checked in the index: paging deep
-- into a sorted list then never touches the rows it skips.
CREATE INDEX users_id ON users (organization_id, id, role);
CREATE INDEX users_first_name ON users (organization_id, first_name, id, role);
CREATE INDEX users_last_name ON users (organization_id, last_name, id, role);
CREATE INDEX users_email ON users (organization_id, email, id, role);
CREATE INDEX users_created ON users (organization_id, created_at, id, role);
CREATE INDEX users_updated ON users (organization_id, updated_at, id, role);

-- Users per organisation and role, kept exact by triggers, so that counting
-- a team of a million is one lookup instead of an index scan.
CREATE TABLE user_counts (
    organization_id INTEGER NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    role TEXT NOT NULL,
    n INTEGER NOT NULL,
    PRIMARY KEY (organization_id, role)
);
INSERT INTO user_counts (organization_id, role, n)
    SELECT organization_id, role, COUNT(*) FROM users WHERE organization_id IS NOT NULL GROUP BY organization_id, role;
CREATE TRIGGER user_counts_insert AFTER INSERT ON users WHEN new.organization_id IS NOT NULL BEGIN
    INSERT INTO user_counts (organization_id, role, n) VALUES (new.organization_id, new.role, 1)
    ON CONFLICT (organization_id, role) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER user_counts_delete AFTER DELETE ON users WHEN old.organization_id IS NOT NULL BEGIN
    UPDATE user_counts SET n = n - 1 WHERE organization_id = old.organization_id AND role = old.role;
END;
CREATE TRIGGER user_counts_update AFTER UPDATE OF role, organization_id ON users BEGIN
    UPDATE user_counts SET n = n - 1 WHERE organization_id = old.organization_id AND role = old.role;
    INSERT INTO user_counts (organization_id, role, n)
    SELECT new.organization_id, new.role, 1 WHERE new.organization_id IS NOT NULL
    ON CONFLICT (organization_id, role) DO UPDATE SET n = n + 1;
END;

-- Substring search: FTS5 with trigrams over first name, last name and email,
-- kept in step with the users table by triggers.
CREATE VIRTUAL TABLE users_fts USING fts5(
    first_name, last_name, email,
    content = 'users', content_rowid = 'id', tokenize = 'trigram'
);
CREATE TRIGGER users_fts_insert AFTER INSERT ON users BEGIN
    INSERT INTO users_fts (rowid, first_name, last_name, email)
    VALUES (new.id, new.first_name, new.last_name, new.email);
END;
CREATE TRIGGER users_fts_delete AFTER DELETE ON users BEGIN
    INSERT INTO users_fts (users_fts, rowid, first_name, last_name, email)
    VALUES ('delete', old.id, old.first_name, old.last_name, old.email);
END;
CREATE TRIGGER users_fts_update AFTER UPDATE OF first_name, last_name, email ON users BEGIN
    INSERT INTO users_fts (users_fts, rowid, first_name, last_name, email)
    VALUES ('delete', old.id, old.first_name, old.last_name, old.email);
    INSERT INTO users_fts (rowid, first_name, last_name, email)
    VALUES (new.id, new.first_name, new.last_name, new.email);
END;
INSERT INTO users_fts (users_fts) VALUES ('rebuild');
