//! Roster: a self-hosted backend for coaching and training organisations.
//!
//! Layout: [`domain`] holds the rules (one place), [`http`] the API surfaces
//! (thin dialects over the domain), [`store`] the SQL for SQLite and
//! PostgreSQL, [`filestore`] the bytes of uploaded files (disk or S3). [`server`] runs it all; [`cli`] is the command line.

// The OpenAPI component schemas are one large `json!` literal.
#![recursion_limit = "512"]

pub mod app;
pub mod backup;
pub mod cli;
pub mod config;
pub mod domain;
pub mod filestore;
pub mod http;
pub mod seed;
pub mod server;
pub mod store;
