#![allow(clippy::expect_used, clippy::unwrap_used)]

//! The one integration test binary: real PostgreSQL, Redis and S3
//! (SeaweedFS) servers, started by `scripts/test.sh`; the core also runs on
//! the embedded SQLite default.

mod abuse_files;
mod abuse_operations;
mod authz_matrix;
mod byte_counts;
mod cli;
mod domain;
mod edge;
mod faults;
mod files;
mod graphql_http;
mod health;
mod http_server;
mod identity;
mod invalidations;
mod layers;
mod helpers;
mod logging;
mod memory;
mod metrics;
mod migrations;
mod persisted;
mod planned_reads;
mod playground;
mod rate_limits;
mod replicas;
mod request_id;
mod rls;
mod schema;
mod sqlite_writers;
mod subscriptions;
mod tenancy;
mod tokens;
mod traces;
