-- Every sortable field of a team member, over team members only (see the
-- SQLite migration of the same number): a page deep in the team skips
-- team entries only, never an organisation's clients. The indexes of 0002
-- stay for the organisation API's people lists.
CREATE INDEX team_id ON users (organization_id, id, role) WHERE role IN ('admin', 'coach', 'member');
CREATE INDEX team_first_name ON users (organization_id, first_name COLLATE "C", id, role) WHERE role IN ('admin', 'coach', 'member');
CREATE INDEX team_last_name ON users (organization_id, last_name COLLATE "C", id, role) WHERE role IN ('admin', 'coach', 'member');
CREATE INDEX team_email ON users (organization_id, email COLLATE "C", id, role) WHERE role IN ('admin', 'coach', 'member');
CREATE INDEX team_created ON users (organization_id, created_at, id, role) WHERE role IN ('admin', 'coach', 'member');
CREATE INDEX team_updated ON users (organization_id, updated_at, id, role) WHERE role IN ('admin', 'coach', 'member');
