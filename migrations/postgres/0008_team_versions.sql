-- Changes to each organisation's team, counted by a trigger: who is in it
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
    organization_id BIGINT PRIMARY KEY,
    version BIGINT NOT NULL
);
INSERT INTO team_versions (organization_id, version)
    SELECT DISTINCT organization_id, (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT FROM users WHERE organization_id IS NOT NULL;
CREATE FUNCTION team_versions_bump(org BIGINT) RETURNS void LANGUAGE sql AS $$
    INSERT INTO team_versions (organization_id, version) VALUES (org, (extract(epoch FROM clock_timestamp()) * 1000000)::BIGINT)
    ON CONFLICT (organization_id) DO UPDATE SET version = GREATEST(team_versions.version + 1, excluded.version);
$$;
CREATE FUNCTION team_versions_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.organization_id IS NOT NULL THEN
            PERFORM team_versions_bump(NEW.organization_id);
        END IF;
    ELSE
        IF OLD.organization_id IS NOT NULL THEN
            PERFORM team_versions_bump(OLD.organization_id);
        END IF;
        IF TG_OP = 'UPDATE' AND NEW.organization_id IS NOT NULL
           AND NEW.organization_id IS DISTINCT FROM OLD.organization_id THEN
            PERFORM team_versions_bump(NEW.organization_id);
        END IF;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER users_team_version
AFTER INSERT OR DELETE OR UPDATE OF organization_id, role, first_name, last_name, email, created_at, updated_at
ON users FOR EACH ROW EXECUTE FUNCTION team_versions_track();
