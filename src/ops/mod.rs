//! Operations: what the fronts (CLI and MCP) call. One file per action; no logic lives in a
//! front. Each takes the resolved [`Context`] and an `Input` of raw strings (which it guards
//! against secrets and parses into domain types) and returns an `Output` or a [`Problem`].

mod context;
pub(crate) mod env_edit;
pub(crate) mod parse;

pub mod canary;
pub mod check;
pub mod discovery;
pub mod env_resource;
pub mod hash;
pub mod keys;
pub mod logs;
pub mod mcp_install;
pub mod network;
pub mod receipts;
pub mod register;
pub mod resolve;
pub mod rewards;
pub mod rotate_key;
pub mod service;
pub mod settle;
pub mod start;
pub mod status;
pub mod stop;
pub mod tasks;
pub mod verify;
pub mod write_env;

pub use crate::domain::{ErrorCode, Problem};
pub use context::Context;
