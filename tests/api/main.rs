//! The HTTP test suite: every test starts a real server over a fresh
//! database and talks to it over real HTTP. It runs on SQLite, and on
//! PostgreSQL when `ROSTER_TEST_DATABASE_URL` is set.

mod harness;

mod accounts_jwt;
mod accounts_me;
mod accounts_passwords;
mod accounts_signup;
mod api_keys;
mod authz;
mod backup;
mod coach;
mod company_departments;
mod company_team;
mod files;
mod forged_tokens;
mod infra;
mod mail;
mod openapi;
mod org_api;
mod profiles;
