//! Is a supervisor running? [`probe`] reads `supervisor.json` and checks its pid: alive, and
//! still a `basis supervise` (same kernel start time, `supervise` in its command line). A dead
//! pid, a zombie or a reused pid makes the files [`Presence::Stale`]; [`clean_stale`] removes
//! them and ends the orphaned worker a killed supervisor left behind ([`orphan_worker`] says
//! whether there is one).

use std::time::Duration;

use nix::sys::signal::Signal;

use super::pidfile::{self, SupervisorInfo};
use super::proc;
use crate::config::Dirs;

/// What the state dir says about a supervisor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// No `supervisor.json` and no socket.
    Absent,
    /// `supervisor.json` names a live `basis supervise` process.
    Running(SupervisorInfo),
    /// Left-overs of a supervisor that is gone; `reason` says why they are stale.
    Stale {
        info: Option<SupervisorInfo>,
        reason: String,
    },
}

impl Presence {
    pub fn is_running(&self) -> bool {
        matches!(self, Presence::Running(_))
    }
}

/// Why `info`'s pid is not (or no longer) its supervisor; `None` when it is.
fn stale_reason(info: &SupervisorInfo) -> Option<String> {
    let pid = info.pid;
    if !proc::is_alive(pid) {
        return Some(format!(
            "supervisor pid {pid} is not running (it was killed or crashed)"
        ));
    }
    if proc::same_process(pid, info.start_ticks) == Some(false) {
        return Some(format!(
            "pid {pid} now belongs to another process (started at another time)"
        ));
    }
    if let Some(args) = proc::cmdline(pid)
        && !args.iter().any(|a| a == "supervise")
    {
        return Some(format!("pid {pid} is not a `basis supervise` process"));
    }
    None
}

/// Reads `supervisor.json` in `dirs`' state dir and checks its pid.
pub fn probe(dirs: &Dirs) -> Presence {
    match pidfile::read(&dirs.supervisor_json()) {
        Ok(Some(info)) => match stale_reason(&info) {
            None => Presence::Running(info),
            Some(reason) => Presence::Stale {
                info: Some(info),
                reason,
            },
        },
        Ok(None) if dirs.supervisor_sock().exists() => Presence::Stale {
            info: None,
            reason: "a control socket is left without supervisor.json".to_owned(),
        },
        Ok(None) => Presence::Absent,
        Err(e) => Presence::Stale {
            info: None,
            reason: e.to_string(),
        },
    }
}

/// The worker a gone supervisor left running: `info`'s worker pid when that pid is alive and
/// verifiably the same process (same kernel start time). Where that cannot be told (no
/// `/proc`), `None`: a pid that may have been reused is never reported or signalled.
pub fn orphan_worker(info: &SupervisorInfo) -> Option<u32> {
    let worker = info.worker_pid?;
    (proc::same_process(worker, info.worker_start_ticks) == Some(true)).then_some(worker)
}

/// What [`clean_stale`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// The orphaned worker it ended, if any.
    pub killed_worker: Option<u32>,
}

/// Removes a gone supervisor's `supervisor.json` and socket, and ends its orphaned worker
/// (SIGTERM, then SIGKILL after `grace`) when that pid is verifiably the same process.
pub async fn clean_stale(dirs: &Dirs, info: Option<&SupervisorInfo>, grace: Duration) -> Cleanup {
    let mut cleanup = Cleanup::default();
    if let Some(worker) = info.and_then(orphan_worker) {
        proc::send(worker, Signal::SIGTERM);
        let deadline = tokio::time::Instant::now() + grace;
        while proc::is_alive(worker) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        if proc::is_alive(worker) {
            proc::send(worker, Signal::SIGKILL);
        }
        tracing::info!(
            pid = worker,
            "ended the worker a stale supervisor left behind"
        );
        cleanup.killed_worker = Some(worker);
    }
    for path in [dirs.supervisor_json(), dirs.supervisor_sock()] {
        if let Err(e) = pidfile::remove(&path) {
            tracing::warn!("{e}");
        }
    }
    cleanup
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dirs(root: &std::path::Path) -> Dirs {
        Dirs {
            config_dir: root.to_path_buf(),
            state_dir: root.join("state"),
        }
    }

    fn info(pid: u32, start_ticks: Option<u64>) -> SupervisorInfo {
        SupervisorInfo {
            pid,
            started_at: 0,
            env_path: String::new(),
            socket_path: String::new(),
            version: String::new(),
            start_ticks,
            worker_pid: None,
            worker_start_ticks: None,
            managed_by: None,
        }
    }

    #[tokio::test]
    async fn absent_dead_reused_and_cleanup() {
        let tmp = tempfile::tempdir().unwrap();
        let d = dirs(tmp.path());
        assert_eq!(probe(&d), Presence::Absent);

        // A dead pid.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        pidfile::write(&d.supervisor_json(), &info(dead, None)).unwrap();
        assert!(
            matches!(probe(&d), Presence::Stale { reason, .. } if reason.contains("not running"))
        );

        // A live pid that is not a supervisor (this test binary), or has another start time.
        let me = std::process::id();
        pidfile::write(&d.supervisor_json(), &info(me, None)).unwrap();
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(matches!(probe(&d), Presence::Stale { .. }));
            let ticks = proc::start_ticks(me).unwrap();
            pidfile::write(&d.supervisor_json(), &info(me, Some(ticks + 1))).unwrap();
            assert!(
                matches!(probe(&d), Presence::Stale { reason, .. } if reason.contains("another process"))
            );
        }

        // Cleanup removes the files and leaves unverifiable pids alone.
        let mut stale = info(dead, None);
        stale.worker_pid = Some(me);
        std::fs::write(d.supervisor_sock(), "").unwrap();
        let done = clean_stale(&d, Some(&stale), Duration::from_millis(10)).await;
        assert_eq!(done, Cleanup::default());
        assert!(!d.supervisor_json().exists() && !d.supervisor_sock().exists());
        assert_eq!(probe(&d), Presence::Absent);
    }
}
