//! Aggios: a multi-tenant GraphQL API platform for agencies. The binary in
//! `main.rs` is a thin shell over this library, which tests and tools share.

pub mod auth;
pub mod cache;
pub mod cli;
pub mod config;
pub mod error;
pub mod events;
pub mod files;
pub mod graphql;
pub mod http;
pub mod identity;
pub mod metrics;
pub mod net;
pub mod objects;
pub mod persisted;
pub mod rate_limits;
pub mod request;
pub mod roles;
pub mod startup;
pub mod state;
pub mod store;
pub mod telemetry;
pub mod tenancy;
