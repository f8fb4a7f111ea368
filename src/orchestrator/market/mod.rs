//! The task market's server side (§7) beyond storage and routes: its configuration, the
//! anti-cheat verdict, settlement arithmetic and receipts, the refusals as API errors, and the
//! background sweeper.

pub mod anti_cheat;
pub mod config;
pub mod problems;
pub mod settle;
pub mod sweeper;
pub mod validate;

pub use config::{AssetUnits, RawTaskConfig, TaskMarketConfig};
