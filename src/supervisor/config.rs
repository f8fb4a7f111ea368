//! [`SuperviseConfig`]: what one supervisor runs, resolved by the CLI front; read by the
//! process ([`super::daemon`]) and its restart loop ([`super::keeper`]).

use std::path::PathBuf;

use super::child::WorkerCommand;
use super::managed::ManagedBy;
use super::tuning::Tuning;
use crate::config::Dirs;

/// What one supervisor runs, resolved by the CLI front.
#[derive(Debug, Clone)]
pub struct SuperviseConfig {
    /// The worker's env file (absolute).
    pub env_path: PathBuf,
    /// Where `supervisor.json`, the socket and the logs live.
    pub dirs: Dirs,
    pub worker: WorkerCommand,
    pub tuning: Tuning,
    /// The service manager that started this supervisor, if any (recorded in
    /// `supervisor.json` for `stop`).
    pub managed_by: Option<ManagedBy>,
}
