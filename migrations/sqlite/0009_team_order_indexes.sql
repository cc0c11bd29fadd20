-- Every sortable field of a team member, over team members only. The
-- indexes of 0002 hold every user of the organisation, clients too, and a
-- page of the team walked past every entry before it, checking each one's
-- role: half the time of a page deep in a team of 100,000, and in an
-- organisation with many clients most entries walked were clients. Here
-- the team condition is the index's own, so a page skips entries without
-- reading them. The team list's query repeats `role IN ('admin', 'coach',
-- 'member')` literally, as SQLite requires to use a partial index;
-- `role` rides along so the index covers that query. The indexes of 0002
-- stay for the organisation API's people lists, which bind their roles.
CREATE INDEX team_id ON users (organization_id, id, role) WHERE role IN ('admin', 'coach', 'member');
CREATE INDEX team_first_name ON users (organization_id, first_name, id, role) WHERE role IN ('admin', 'coach', 'member');
CREATE INDEX team_last_name ON users (organization_id, last_name, id, role) WHERE role IN ('admin', 'coach', 'member');
CREATE INDEX team_email ON users (organization_id, email, id, role) WHERE role IN ('admin', 'coach', 'member');
CREATE INDEX team_created ON users (organization_id, created_at, id, role) WHERE role IN ('admin', 'coach', 'member');
CREATE INDEX team_updated ON users (organization_id, updated_at, id, role) WHERE role IN ('admin', 'coach', 'member');
