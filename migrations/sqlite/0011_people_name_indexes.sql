-- The organisation API sorts people by name as first name, then last name,
-- then id (`sort=name`). The indexes of 0002 and 0009 order by first name
-- and then id, so SQLite sorted every member sharing a first name to pick
-- a page: 2 ms for the first page of a team of 100,000 and 12 ms for page
-- 500. One index per scope, each with the scope's roles as its condition,
-- which the people lists write into their SQL literally.
CREATE INDEX team_full_name ON users (organization_id, first_name, last_name, id, role) WHERE role IN ('admin', 'coach', 'member');
CREATE INDEX client_full_name ON users (organization_id, first_name, last_name, id) WHERE role IN ('client');
