-- Departments per organisation, kept exact by a trigger: the count on every
-- page of the departments list is then one lookup, not an index scan.
CREATE TABLE department_counts (
    organization_id BIGINT PRIMARY KEY REFERENCES organizations(id) ON DELETE CASCADE,
    n BIGINT NOT NULL
);
INSERT INTO department_counts (organization_id, n)
    SELECT organization_id, COUNT(*) FROM departments GROUP BY organization_id;
CREATE FUNCTION department_counts_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('DELETE', 'UPDATE') THEN
        UPDATE department_counts SET n = n - 1 WHERE organization_id = OLD.organization_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO department_counts (organization_id, n) VALUES (NEW.organization_id, 1)
        ON CONFLICT (organization_id) DO UPDATE SET n = department_counts.n + 1;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER departments_count AFTER INSERT OR DELETE OR UPDATE OF organization_id ON departments
    FOR EACH ROW EXECUTE FUNCTION department_counts_track();
