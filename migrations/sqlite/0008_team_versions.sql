-- Changes to each organisation's team, counted by triggers: who is in it
-- (organisation, role) and what a team search matches and sorts by (names,
-- email, timestamps). A team search's ordered matches are cached in memory
-- against this number (`store::team::SearchCache`), so a cached answer is
-- used only while nothing it depends on has changed, whichever instance
-- made the change. No foreign key: the deletes cascading from an
-- organisation's deletion still count after its row is gone.
-- A version is never used twice, even after the database is restored from
-- a backup under running instances: each change takes the current time in
-- microseconds, or one more than the last version if that is later.
CREATE TABLE team_versions (
    organization_id INTEGER PRIMARY KEY,
    version INTEGER NOT NULL
);
INSERT INTO team_versions (organization_id, version)
    SELECT DISTINCT organization_id, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) FROM users WHERE organization_id IS NOT NULL;
CREATE TRIGGER team_versions_insert AFTER INSERT ON users WHEN new.organization_id IS NOT NULL BEGIN
    INSERT INTO team_versions (organization_id, version) VALUES (new.organization_id, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
    ON CONFLICT (organization_id) DO UPDATE SET version = max(version + 1, excluded.version);
END;
CREATE TRIGGER team_versions_delete AFTER DELETE ON users WHEN old.organization_id IS NOT NULL BEGIN
    INSERT INTO team_versions (organization_id, version) VALUES (old.organization_id, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER))
    ON CONFLICT (organization_id) DO UPDATE SET version = max(version + 1, excluded.version);
END;
CREATE TRIGGER team_versions_update
AFTER UPDATE OF organization_id, role, first_name, last_name, email, created_at, updated_at ON users
BEGIN
    INSERT INTO team_versions (organization_id, version)
    SELECT old.organization_id, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER) WHERE old.organization_id IS NOT NULL
    ON CONFLICT (organization_id) DO UPDATE SET version = max(version + 1, excluded.version);
    INSERT INTO team_versions (organization_id, version)
    SELECT new.organization_id, CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)
    WHERE new.organization_id IS NOT NULL AND new.organization_id IS NOT old.organization_id
    ON CONFLICT (organization_id) DO UPDATE SET version = max(version + 1, excluded.version);
END;
