//! `basis`: turn an idle GPU into a contributor worker of a compute network, operated by an AI
//! agent over MCP without it ever handling a private key or a secret token.
//!
//! The crate is one library under one binary. Data flows one way:
//! fronts (CLI, MCP) → [`ops`] → clients / probes / supervisor → wire types → the far side.
//! [`domain`] is the shared vocabulary and depends on nothing else here. See ARCHITECTURE.md.

pub mod client;
pub mod config;
pub mod domain;
pub mod fronts;
pub mod guard;
pub mod hardware;
pub mod http;
pub mod ops;
pub mod orchestrator;
pub mod runtime;
pub mod supervisor;
pub mod telemetry;
pub mod wire;
pub mod worker;
