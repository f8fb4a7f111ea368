//! `basis verify` and `basis status` as a newcomer sees them: a spinner that is gone before the
//! checklist (and absent off a terminal), and an unreachable orchestrator said first.

use std::io::Read;
use std::time::{Duration, Instant};

use super::*;

const FRAMES: &[char] = &['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// A home whose env file points at `url` (complete, not registered).
fn home_for(url: &str) -> Home {
    let home = Home::new();
    let out = home.basis(&[
        "write-env",
        "--wallet",
        WALLET,
        "--worker-id",
        "cli-box",
        "--orchestrator-url",
        url,
    ]);
    assert!(out.status.success(), "{}", all_output(&out));
    home
}

/// Runs `basis ARGS` with stdout and stderr on one pseudo-terminal; everything it drew.
fn on_a_terminal(home: &Home, args: &[&str]) -> String {
    let pty = nix::pty::openpty(
        None::<&nix::pty::Winsize>,
        None::<&nix::sys::termios::Termios>,
    )
    .unwrap();
    let mut child = {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_basis"));
        cmd.args(args)
            .env("BASIS_HOME", home.path())
            .env_remove("BASIS_ORCHESTRATOR_URL")
            .env_remove("BASIS_CONFIG")
            .current_dir(home.path())
            .stdin(Stdio::null())
            .stdout(Stdio::from(pty.slave.try_clone().unwrap()))
            .stderr(Stdio::from(pty.slave));
        cmd.spawn().unwrap()
        // `cmd`, and with it this side's copies of the slave, is dropped here: the master
        // reads end of file (EIO) once the child exits.
    };
    let mut master = std::fs::File::from(pty.master);
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n @ 1..) = master.read(&mut buf) {
        seen.extend_from_slice(&buf[..n]);
    }
    child.wait().unwrap();
    String::from_utf8_lossy(&seen).into_owned()
}

#[test]
fn the_spinner_is_cleared_before_the_checklist_and_absent_off_a_terminal() {
    let home = home_for(&dead_url());
    let drawn = on_a_terminal(&home, &["verify"]);
    let start = drawn
        .find("[x] env_complete")
        .unwrap_or_else(|| panic!("no checklist in {drawn:?}"));
    let before = &drawn[..start];
    assert!(
        before.is_empty() || before.ends_with("\r\x1b[2K") || before.ends_with('\n'),
        "the checklist does not start on a clean line: {drawn:?}"
    );
    assert!(
        !drawn[start..].contains(FRAMES),
        "the spinner still draws after the checklist: {drawn:?}"
    );

    let out = home.basis(&["verify"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains(FRAMES) && !stderr.contains('\r'),
        "a spinner on a pipe: {stderr:?}"
    );
}

#[test]
fn verify_says_first_that_the_orchestrator_cannot_be_reached() {
    let url = dead_url();
    let home = home_for(&url);
    let out = home.basis(&["verify"]);
    assert_eq!(out.status.code(), Some(1));
    let text = human_text(&out);
    let next = line_with(&text, "next:");
    assert!(
        next.starts_with(&format!(
            "next: fix orchestrator_reachable first: the orchestrator at {url}/ cannot be reached"
        )),
        "{next}"
    );
    assert!(
        next.contains("BASIS_ORCHESTRATOR_URL in") && !next.contains("register"),
        "{next}"
    );
    let check = line_with(&text, "[ ] orchestrator_reachable");
    assert!(check.contains(&url), "{check}");
    let fix = text
        .lines()
        .skip_while(|l| !l.contains("orchestrator_reachable"))
        .find(|l| l.trim_start().starts_with("fix:"))
        .unwrap();
    assert!(
        fix.contains("`basis network`") && fix.contains("running"),
        "{fix}"
    );
    let (_, json) = home.json(&["verify", "--json"]);
    assert_eq!(
        json["checks"][1]["name"], "orchestrator_reachable",
        "{json}"
    );
}

#[test]
fn status_says_first_that_the_worker_cannot_reach_its_orchestrator() {
    let url = dead_url();
    let home = home_for(&url);
    let started = home.basis(&["start", "--json"]);
    assert!(started.status.success(), "{}", all_output(&started));
    let _stop = Stopper(&home);
    let deadline = Instant::now() + Duration::from_secs(30);
    let text = loop {
        let (_, json) = home.json(&["status", "--json"]);
        if json["worker_status"]["last_error"]["code"] == "UNREACHABLE" {
            break human_text(&home.basis(&["status"]));
        }
        assert!(
            Instant::now() < deadline,
            "the worker never reported: {json}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let next = line_with(&text, "next:");
    assert!(
        next.starts_with(&format!(
            "next: the orchestrator at {url}/ cannot be reached: check that it is running"
        )),
        "{next}"
    );
    assert!(
        next.contains("`basis network`") && !next.contains("`basis verify`"),
        "{next}"
    );
}

/// Stops the worker when dropped, so a failed test leaves no supervisor behind.
struct Stopper<'a>(&'a Home);

impl Drop for Stopper<'_> {
    fn drop(&mut self) {
        let _ = self.0.basis(&["stop", "--drain-timeout", "1"]);
    }
}
