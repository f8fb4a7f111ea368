//! The task market's server side (docs/TASK_MARKET.md) above storage and below the routes: the
//! engine (every lifecycle decision, over the store's `MarketTx`), its configuration, the
//! anti-cheat verdict, settlement arithmetic and receipts, the refusals as API errors, the wire
//! form of its rows, and the background sweeper.

pub mod anti_cheat;
pub mod config;
pub mod engine;
pub mod intake;
pub mod problems;
mod rows;
pub mod settle;
pub mod sweeper;
pub mod validate;

pub use config::{AssetUnits, RawTaskConfig, TaskMarketConfig};
pub use rows::credit_with_decimals;
