//! The supervisor–worker lifeline's names, a contract between the two processes: the
//! supervisor sets [`LIFELINE_ENV`]`=`[`LIFELINE_STDIN`] on the worker it starts, whose stdin
//! is then a pipe only the supervisor holds (see `worker::lifeline` for why a pipe).

/// Set by the supervisor on its worker; names what the lifeline is.
pub const LIFELINE_ENV: &str = "BASIS_WORKER_LIFELINE";
/// [`LIFELINE_ENV`]'s value when stdin is the lifeline pipe.
pub const LIFELINE_STDIN: &str = "stdin";
