//! The supervisor's lifeline: a worker started by `basis supervise` drains and exits when its
//! supervisor is gone, however it went (`kill -9` included), instead of serving on unseen while
//! `basis status` says nothing runs.
//!
//! The supervisor starts the worker with [`LIFELINE_ENV`]`=`[`LIFELINE_STDIN`] and its stdin a
//! pipe whose write end only the supervisor holds and never writes to. The kernel closes that
//! end when the supervisor process ends, for any reason; the worker then reads EOF and drains as
//! on SIGTERM.
//!
//! Why a pipe and not `prctl(PR_SET_PDEATHSIG)`: the death signal follows the *thread* that
//! forked the child, and tokio spawns from whichever runtime thread runs the task (blocking-pool
//! threads come and go), so it could fire while the supervisor lives; it needs `unsafe`
//! `pre_exec`, which this crate forbids; and it is Linux only. A pipe's EOF means exactly
//! "every holder of the write end is gone", on every Unix. Polling the parent pid would also
//! work, but late (one poll interval) and racy against a reused pid.

use std::io::Read;

pub use crate::config::{LIFELINE_ENV, LIFELINE_STDIN};

/// Whether this process was started with stdin as its supervisor's lifeline.
pub fn stdin_is_lifeline() -> bool {
    std::env::var(LIFELINE_ENV).is_ok_and(|v| v == LIFELINE_STDIN)
}

/// Reads stdin on a thread of its own until EOF (or a read error), then calls `gone`. A plain
/// thread, not tokio's blocking pool: a blocking read cannot be cancelled, and the runtime waits
/// for its blocking tasks when it shuts down, while a plain thread ends with the process.
pub fn watch_stdin(gone: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("lifeline".to_owned())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buf = [0_u8; 64];
            loop {
                match stdin.read(&mut buf) {
                    // Bytes mean nothing (the supervisor sends none); only the end counts.
                    Ok(n) if n > 0 => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Ok(_) | Err(_) => break,
                }
            }
            gone();
        })?;
    Ok(())
}
