//! The task market's server side (§7) beyond storage and routes: its configuration.

pub mod config;

pub use config::{RawTaskConfig, TaskMarketConfig};
