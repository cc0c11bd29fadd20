-- The organisation API sorts people by name as first name, then last name,
-- then id (`sort=name`). The indexes of 0002 and 0009 order by first name
-- and then id, so a page sorted every member sharing a first name. One
-- index per scope, each with the scope's roles as its condition, which the
-- people lists write into their SQL literally; text in the "C" collation,
-- as the lists sort it.
CREATE INDEX team_full_name ON users (organization_id, first_name COLLATE "C", last_name COLLATE "C", id, role) WHERE role IN ('admin', 'coach', 'member');
CREATE INDEX client_full_name ON users (organization_id, first_name COLLATE "C", last_name COLLATE "C", id) WHERE role IN ('client');
