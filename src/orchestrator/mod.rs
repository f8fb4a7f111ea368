//! The self-hostable orchestrator (`basis orchestrator`; its API is docs/PROTOCOL.md): the
//! worker registry over HTTP
//! (axum), with storage behind the [`store::Store`] trait (`SQLite` by default).
//!
//! Request path: [`routes`] (one file per noun) → [`registration`] / [`auth`] → [`store`].
//! Workers connect over the worker channel into the [`hub`]; the OpenAI-compatible
//! [`gateway`] routes each chat completion through the hub to one of them.
//! Every failure is an [`error::ApiError`] rendered as `{"error":{code,message,fix}}`.
//! Bodies are [`crate::wire`] types; config is resolved once into [`OrchestratorConfig`].
//!
//! Architecture invariant: the orchestrator never imports the agent side (`crate::ops`,
//! `crate::client`, `crate::fronts`); it shares only `crate::domain` and `crate::wire` with it.
//! Handlers never see SQL: a new backend implements [`store::Store`] and nothing else changes.

mod accept;
mod auth;
pub mod client_ip;
pub mod config;
pub mod discovery;
pub mod error;
mod extract;
mod gateway;
pub mod hub;
mod key_cache;
pub mod keys;
pub mod market;
pub mod metering;
pub mod metrics;
pub mod openapi;
mod quota;
mod rate_limit;
mod registration;
pub mod replica;
mod reservation;
mod routes;
mod server;
pub mod settlement;
mod signed;
mod state;
pub mod store;
pub mod trusted_proxies;

pub use config::{ConfigError, OrchestratorConfig, Overrides};
pub use server::{ServeError, app, open_store, run};
pub use store::copy::{CopyError, CopyReport, sqlite_to_postgres};
pub use store::postgres::DatabaseUrl;
