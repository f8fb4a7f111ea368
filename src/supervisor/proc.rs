//! Process inspection and signals, by pid: alive or not (a zombie counts as dead), the
//! kernel start time and command line from `/proc` (Linux), and `kill`. Where `/proc` is
//! missing (macOS), liveness falls back to `kill(pid, 0)` and the identity checks are skipped.

use std::fs;
use std::path::Path;

use nix::errno::Errno;
use nix::sys::signal::{self, Signal};
use nix::unistd::Pid;

/// What `/proc` (or `kill(pid, 0)`) says about a pid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    /// No such process.
    Missing,
    /// It exited and waits to be reaped: dead for every purpose here.
    Zombie,
    Alive,
}

fn nix_pid(pid: u32) -> Option<Pid> {
    i32::try_from(pid)
        .ok()
        .filter(|p| *p > 0)
        .map(Pid::from_raw)
}

/// The fields of `/proc/PID/stat` after the command name, starting at field 3 (the state).
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// Is `pid` running?
pub fn state(pid: u32) -> ProcState {
    let Some(nix) = nix_pid(pid) else {
        return ProcState::Missing;
    };
    if Path::new("/proc/self/stat").exists() {
        return match stat_fields(pid) {
            None => ProcState::Missing,
            Some(f) if f.first().is_some_and(|s| s == "Z" || s == "X") => ProcState::Zombie,
            Some(_) => ProcState::Alive,
        };
    }
    match signal::kill(nix, None) {
        Ok(()) | Err(Errno::EPERM) => ProcState::Alive,
        Err(_) => ProcState::Missing,
    }
}

/// True when `pid` is a live (not zombie) process.
pub fn is_alive(pid: u32) -> bool {
    state(pid) == ProcState::Alive
}

/// The process's start time in clock ticks after boot (field 22 of `/proc/PID/stat`).
pub fn start_ticks(pid: u32) -> Option<u64> {
    stat_fields(pid)?.get(19)?.parse().ok()
}

/// The process's arguments (`/proc/PID/cmdline`); `None` where unavailable, empty for a zombie
/// or kernel thread.
pub fn cmdline(pid: u32) -> Option<Vec<String>> {
    let bytes = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        bytes
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect(),
    )
}

/// Sends `sig` to `pid`; false when there is no such process (or it is not ours).
pub fn send(pid: u32, sig: Signal) -> bool {
    nix_pid(pid).is_some_and(|p| signal::kill(p, sig).is_ok())
}

/// Is `pid` still the process that had `ticks` as its start time? Without `/proc` (or
/// without a recorded time) this cannot be told, and the answer is `None`.
pub fn same_process(pid: u32, ticks: Option<u64>) -> Option<bool> {
    let expected = ticks?;
    Some(is_alive(pid) && start_ticks(pid)? == expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_known() {
        let me = std::process::id();
        assert!(is_alive(me));
        if Path::new("/proc/self/stat").exists() {
            let ticks = start_ticks(me).unwrap();
            assert_eq!(same_process(me, Some(ticks)), Some(true));
            assert_eq!(same_process(me, Some(ticks + 1)), Some(false));
            assert!(!cmdline(me).unwrap().is_empty());
        }
        assert_eq!(state(0), ProcState::Missing);
        assert_eq!(state(u32::MAX), ProcState::Missing);
    }

    #[test]
    fn an_unreaped_child_is_a_zombie_then_missing() {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        std::thread::sleep(std::time::Duration::from_millis(200));
        if Path::new("/proc/self/stat").exists() {
            assert_eq!(state(pid), ProcState::Zombie);
        }
        child.wait().unwrap();
        assert_eq!(state(pid), ProcState::Missing);
    }
}
