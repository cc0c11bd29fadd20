-- Worker profiles per organisation, kept exact by a trigger: an unfiltered
-- page of `GET /api/v1/profiles` reads its total in one lookup instead of
-- counting the organisation's profiles (see the SQLite migration).
CREATE TABLE profile_counts (
    organization_id BIGINT PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    n BIGINT NOT NULL
);
INSERT INTO profile_counts (organization_id, n)
    SELECT organization_id, COUNT(*) FROM worker_profiles GROUP BY organization_id;
CREATE FUNCTION profile_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE profile_counts SET n = n - 1 WHERE organization_id = OLD.organization_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO profile_counts (organization_id, n) VALUES (NEW.organization_id, 1)
        ON CONFLICT (organization_id) DO UPDATE SET n = profile_counts.n + 1;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER worker_profiles_count AFTER INSERT OR DELETE OR UPDATE OF organization_id ON worker_profiles
    FOR EACH ROW EXECUTE FUNCTION profile_counts_track();
