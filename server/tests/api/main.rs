//! Integration tests: the whole app on a random port with a fresh database per test (SQLite, or
//! PostgreSQL when `TEST_DATABASE_URL` is set), driven over HTTP with a cookie-jar client.

// Test code: a failed unwrap is a failed test (the workspace denies unwrap elsewhere).
#![allow(clippy::unwrap_used)]

mod helpers;
#[path = "../common/pg.rs"]
mod pg;

mod accounts;
mod admin;
mod cli;
mod flows;
mod forms;
mod hardening;
mod lifecycle;
mod login;
mod mail;
mod metrics;
mod oauth_apps;
mod oauth_authorize;
mod oauth_conformance;
mod oauth_console;
mod oauth_discovery;
mod oauth_logout;
mod oauth_tokens;
mod operator;
mod passkeys;

mod pages;
mod security;
mod sessions;
mod sso;
mod throttle;

mod two_factor;
