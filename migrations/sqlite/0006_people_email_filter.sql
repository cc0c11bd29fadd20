-- The organisation API's `filter[email]` (a substring) on clients and team
-- members: scanning the emails of one role of one organisation. Without
-- this index the planner scanned every email of the organisation through
-- users_email (the clients of a 100,000-member company: 6 ms a request).
CREATE INDEX users_role_email ON users (organization_id, role, email);
