//! The supervisor (`basis supervise --env PATH`; docs/FILES.md,
//! "Supervisor restarts and logs" and "State directory"): a detached process that keeps one
//! worker alive, restarts it with backoff, stops restarting in a crash loop, writes its output
//! to size-rotated, redacted log files, and answers a 0600 Unix control socket.
//!
//! - [`daemon::run`]: the supervisor process itself (setsid, lock, socket, `supervisor.json`,
//!   the restart loop in `keeper`), given a [`SuperviseConfig`]; [`child`] spawns the worker and pumps its output into [`sink`].
//! - [`control`]: the socket protocol (line-delimited JSON `status` / `stop` / `logs`) and the
//!   client [`control::request`] the operations use.
//! - [`launch::spawn_detached`]: how `start` starts a supervisor.
//! - [`presence::probe`]: is a supervisor running, gone, or stale (dead or reused pid)?
//! - [`backoff`], [`logs`], [`redact`], [`pidfile`], [`proc`], [`tuning`]: one concern each;
//!   [`managed`]: which service manager (systemd, launchd) runs it, if any.
//!
//! Files (all in the state dir): `supervisor.json` (0600, atomic), `supervisor.sock` (0600),
//! `supervisor.lock` (held for the supervisor's life: two can never run at once),
//! `logs/worker.log` (+ `.1`, `.2`, rotated, redacted) and `logs/supervisor.log` (the
//! supervisor's own stderr).

pub mod backoff;
pub mod child;
pub mod clock;
mod config;
pub mod control;
pub mod daemon;
mod error;
mod keeper;
pub mod launch;
pub mod logs;
pub mod managed;
pub mod pidfile;
pub mod presence;
pub mod proc;
pub mod redact;
pub mod sink;
pub mod state;
pub mod tuning;

pub use child::WorkerCommand;
pub use config::SuperviseConfig;
pub use daemon::run;
pub use error::SupervisorError;
pub use managed::ManagedBy;
pub use presence::{Presence, probe};
pub use state::{ExitInfo, SupervisorState, SupervisorStatus};
pub use tuning::Tuning;

/// The lock file a running supervisor holds (in the state dir).
pub const LOCK_FILE: &str = "supervisor.lock";
