//! The supervisor end to end: the real `basis start|stop|status|logs` in a temp `BASIS_HOME`,
//! a real detached `basis supervise`, and a stand-in worker (a shell command given through the
//! test-only `BASIS_SUPERVISE_WORKER_CMD`) with short durations (`BASIS_SUPERVISE_TUNING`).
//! Every test kills what it started, even when it fails. The real worker, under a real
//! orchestrator, where the lifeline between supervisor and worker is what is tested.

// Test helpers outside `#[test]` fns: a panic is how a test reports failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::orchestrator::{Options, Orchestrator};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

const WALLET: &str = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
const PRIVATE_KEY: &str = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
/// A worker that says it is up and then idles.
const IDLE: &str = "echo worker up; exec sleep 600";

/// A temp `BASIS_HOME` with a complete worker.env, and the tuning its supervisors run with.
struct Home {
    dir: tempfile::TempDir,
    tuning: String,
}

impl Home {
    fn new(tuning: &str) -> Self {
        let home = Self {
            dir: tempfile::tempdir().unwrap(),
            tuning: tuning.to_owned(),
        };
        let out = home.basis(
            &["write-env", "--wallet", WALLET, "--worker-id", "gpu-1"],
            "",
        );
        assert!(out.status.success(), "{}", text(&out));
        home
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// The device key's text in the env file.
    fn key(&self) -> String {
        fs::read_to_string(self.dir.path().join("worker.env"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("BASIS_DEVICE_KEY=").map(str::to_owned))
            .unwrap()
    }

    /// Runs `basis ARGS` with `worker_cmd` as the stand-in worker of any supervisor it starts.
    fn basis(&self, args: &[&str], worker_cmd: &str) -> Output {
        Command::new(env!("CARGO_BIN_EXE_basis"))
            .args(args)
            .env("BASIS_HOME", self.dir.path())
            .env("BASIS_SUPERVISE_WORKER_CMD", worker_cmd)
            .env("BASIS_SUPERVISE_TUNING", &self.tuning)
            .env_remove("BASIS_ORCHESTRATOR_URL")
            .env_remove("BASIS_CONFIG")
            .env_remove("XDG_STATE_HOME")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn json(&self, args: &[&str], worker_cmd: &str) -> (i32, Value) {
        let out = self.basis(args, worker_cmd);
        let v = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", text(&out)));
        (out.status.code().unwrap(), v)
    }

    fn start(&self, worker_cmd: &str) -> Value {
        let (code, v) = self.json(&["start", "--json"], worker_cmd);
        assert_eq!(code, 0, "{v:#}");
        v
    }

    fn status(&self) -> Value {
        let (code, v) = self.json(&["status", "--json", "-n", "200"], "");
        assert_eq!(code, 0, "{v:#}");
        v
    }

    /// Polls `status` until `done` holds; panics with the last status after `timeout`.
    fn wait_status(&self, what: &str, timeout: Duration, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let v = self.status();
            if done(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}: {v:#}"
            );
            sleep(Duration::from_millis(50));
        }
    }

    /// Everything under the state dir, for secret scans.
    fn state_files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut dirs = vec![self.state()];
        while let Some(dir) = dirs.pop() {
            for entry in fs::read_dir(&dir).unwrap().flatten() {
                let path = entry.path();
                let kind = entry.file_type().unwrap();
                if kind.is_dir() {
                    dirs.push(path);
                } else if kind.is_file() {
                    out.push((path.clone(), fs::read(&path).unwrap()));
                }
            }
        }
        out
    }
}

impl Drop for Home {
    /// Kills the supervisor and worker a test left running.
    fn drop(&mut self) {
        let Ok(bytes) = fs::read(self.state().join("supervisor.json")) else {
            return;
        };
        let Ok(info) = serde_json::from_slice::<Value>(&bytes) else {
            return;
        };
        for key in ["worker_pid", "pid"] {
            if let Some(pid) = info[key].as_i64().and_then(|p| i32::try_from(p).ok()) {
                let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
    }
}

fn text(out: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn pid_of(v: &Value, key: &str) -> u32 {
    u32::try_from(v[key].as_u64().unwrap_or_else(|| panic!("no {key}: {v:#}"))).unwrap()
}

/// Alive and not a zombie (a killed detached process may wait for init to reap it).
fn alive(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        let state = s.rsplit(')').next().unwrap_or("").split_whitespace().next();
        !matches!(state, Some("Z" | "X"))
    })
}

fn wait_dead(pid: u32, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    while alive(pid) {
        assert!(Instant::now() < deadline, "pid {pid} is still alive");
        sleep(Duration::from_millis(20));
    }
}

fn sigkill(pid: u32) {
    kill(Pid::from_raw(i32::try_from(pid).unwrap()), Signal::SIGKILL).unwrap();
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn log_has(v: &Value, needle: &str) -> bool {
    v["log_tail"]
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l.as_str().unwrap().contains(needle))
}

#[test]
fn start_runs_a_detached_private_supervisor_and_refuses_a_second() {
    let home = Home::new("");
    let started = home.start(IDLE);
    let pid = pid_of(&started, "pid");
    assert_eq!(started["state"], "running", "{started:#}");
    let worker = pid_of(&started, "worker_pid");

    // supervisor.json (0600) names it; the socket is a 0600 socket.
    let json_path = home.state().join("supervisor.json");
    assert_eq!(mode(&json_path), 0o600);
    let info: Value = serde_json::from_slice(&fs::read(&json_path).unwrap()).unwrap();
    assert_eq!(pid_of(&info, "pid"), pid);
    assert_eq!(info["version"], env!("CARGO_PKG_VERSION"));
    let sock = home.state().join("supervisor.sock");
    assert!(fs::metadata(&sock).unwrap().file_type().is_socket());
    assert_eq!(mode(&sock), 0o600);
    assert_eq!(info["socket_path"], sock.display().to_string());
    // Its own session (setsid): no controlling terminal, out of the caller's group.
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap()
        .split_whitespace()
        .collect();
    assert_eq!(fields[3], pid.to_string(), "session id");

    let v = home.wait_status("the worker's output", Duration::from_secs(10), |v| {
        log_has(v, "worker up")
    });
    assert_eq!(v["supervisor"], "running");
    assert_eq!(v["state"], "running");
    assert_eq!(pid_of(&v, "worker_pid"), worker);
    assert_eq!(v["restarts"], 0);

    let (code, v) = home.json(&["start", "--json"], IDLE);
    assert_eq!(code, 3, "{v:#}");
    assert_eq!(v["error"]["code"], "WORKER_ALREADY_RUNNING");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains(&pid.to_string())
    );
    assert!(alive(pid) && alive(worker));

    let (code, v) = home.json(&["stop", "--json"], "");
    assert_eq!(code, 0, "{v:#}");
    wait_dead(pid, Duration::from_secs(5));
    wait_dead(worker, Duration::from_secs(5));
}

#[test]
fn a_killed_worker_is_restarted_with_a_doubling_backoff() {
    let home = Home::new("backoff_initial_ms=400,backoff_max_ms=5000");
    let started = home.start(IDLE);
    let mut worker = pid_of(&started, "worker_pid");
    for (round, min_delay) in [(1, 400), (2, 800)] {
        sigkill(worker);
        let killed = Instant::now();
        let v = home.wait_status("a restarted worker", Duration::from_secs(15), |v| {
            v["restarts"] == round && v["worker_pid"].is_u64()
        });
        let waited = killed.elapsed();
        assert!(
            waited >= Duration::from_millis(min_delay),
            "round {round} after {waited:?}"
        );
        assert_eq!(v["state"], "running");
        let exit = &v["last_exits"][round - 1];
        assert_eq!(exit["signal"], 9, "{v:#}");
        assert!(exit["reason"].as_str().unwrap().contains("SIGKILL"));
        assert!(log_has(&v, "restarting the worker in"));
        let new = pid_of(&v, "worker_pid");
        assert_ne!(new, worker);
        worker = new;
    }
}

#[test]
fn a_crash_loop_stops_the_restarts_and_keeps_the_reasons() {
    let home = Home::new("backoff_initial_ms=20,backoff_max_ms=80");
    home.start("echo crashing now; exit 3");
    let v = home.wait_status("the crash loop", Duration::from_secs(15), |v| {
        v["state"] == "crash_loop"
    });
    let exits = v["last_exits"].as_array().unwrap();
    assert_eq!(exits.len(), 5, "{v:#}");
    assert!(
        exits
            .iter()
            .all(|e| e["code"] == 3 && e["reason"] == "exited with status 3")
    );
    assert_eq!(v["restarts"], 4);
    assert!(v["worker_pid"].is_null());
    assert!(log_has(&v, "crash loop") && log_has(&v, "crashing now"));
    assert!(v["next_step"].as_str().unwrap().contains("fix the cause"));
    sleep(Duration::from_millis(400));
    let later = home.status();
    assert_eq!(later["restarts"], 4);
    assert_eq!(later["state"], "crash_loop");

    let (code, v) = home.json(&["stop", "--json"], "");
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["stopped"], true);
    assert!(v["worker_exit"].is_null());
}

#[test]
fn a_killed_supervisor_is_reported_gone_and_start_works_again() {
    let home = Home::new("");
    let started = home.start(IDLE);
    let (pid, worker) = (pid_of(&started, "pid"), pid_of(&started, "worker_pid"));
    sigkill(pid);
    wait_dead(pid, Duration::from_secs(5));

    // This worker ignores its lifeline (a real one drains and exits: see below), so it is
    // still there, and status says so rather than "stopped".
    let v = home.status();
    assert_eq!(v["supervisor"], "stale", "{v:#}");
    assert_eq!(v["running"], false);
    assert_eq!(v["state"], "orphaned");
    assert_eq!(pid_of(&v, "worker_pid"), worker);
    let note = v["note"].as_str().unwrap();
    assert!(note.contains(&pid.to_string()) && note.contains(&format!("worker (pid {worker})")));
    assert!(v["next_step"].as_str().unwrap().contains("stop_worker"));
    let human = text(&home.basis(&["status"], ""));
    assert!(
        human.contains("orphaned") && human.contains("`basis stop`"),
        "{human}"
    );

    let again = home.start(IDLE);
    let new_pid = pid_of(&again, "pid");
    assert_ne!(new_pid, pid);
    let cleaned = again["cleaned_up"].as_str().unwrap();
    assert!(
        cleaned.contains(&format!("orphaned worker (pid {worker})")),
        "{cleaned}"
    );
    wait_dead(worker, Duration::from_secs(5));
    assert_eq!(home.status()["supervisor"], "running");
}

#[test]
fn stop_drains_the_worker_and_cleans_up_and_is_idempotent() {
    let home = Home::new("");
    let script = "trap 'echo draining; sleep 0.3; echo drained; exit 0' TERM; echo worker up; \
                  while :; do sleep 0.1; done";
    let started = home.start(script);
    let (pid, worker) = (pid_of(&started, "pid"), pid_of(&started, "worker_pid"));
    home.wait_status("the trap", Duration::from_secs(10), |v| {
        log_has(v, "worker up")
    });

    let (code, v) = home.json(&["stop", "--json"], "");
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["stopped"], true);
    assert_eq!(v["was_running"], true);
    assert_eq!(v["forced"], false);
    assert_eq!(pid_of(&v, "pid"), pid);
    assert_eq!(v["worker_exit"]["code"], 0, "{v:#}");
    assert!(!alive(pid) && !alive(worker));
    assert!(!home.state().join("supervisor.json").exists());
    assert!(!home.state().join("supervisor.sock").exists());
    let log = fs::read_to_string(home.state().join("logs/worker.log")).unwrap();
    assert!(log.contains("draining") && log.contains("drained"), "{log}");

    let (code, v) = home.json(&["stop", "--json"], "");
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["stopped"], false);
    assert_eq!(v["was_running"], false);
    let v = home.status();
    assert_eq!(v["supervisor"], "not_running");
    assert!(
        log_has(&v, "drained"),
        "the log is read from the file: {v:#}"
    );
}

#[test]
fn stop_kills_a_worker_that_does_not_drain_in_time() {
    let home = Home::new("");
    let started = home.start("trap '' TERM; echo worker up; while :; do sleep 0.1; done");
    let worker = pid_of(&started, "worker_pid");
    home.wait_status("the trap", Duration::from_secs(10), |v| {
        log_has(v, "worker up")
    });
    let t0 = Instant::now();
    let (code, v) = home.json(&["stop", "--json", "--drain-timeout", "1"], "");
    assert_eq!(code, 0, "{v:#}");
    assert!(t0.elapsed() >= Duration::from_secs(1));
    assert_eq!(v["worker_exit"]["signal"], 9, "{v:#}");
    wait_dead(worker, Duration::from_secs(5));
}

#[test]
fn logs_rotate_and_no_secret_reaches_a_file_or_an_output() {
    let home = Home::new("log_max_bytes=4000,log_files=3");
    let token = home.key();
    let body = &token["basis_dk_".len()..];
    let secrets = format!(
        "echo \"auth Bearer {token} ok\"; echo \"seed={body}\"; echo \"key {PRIVATE_KEY} here\"; \
         echo \"using sk-ant-api03-AbCdEf0123456789xyzXYZ now\""
    );
    let script = format!(
        "{secrets}; i=0; while [ $i -lt 300 ]; do echo \"filler line $i of the worker log\"; \
         i=$((i+1)); done; {secrets}; echo all done; exec sleep 600"
    );
    home.start(&script);
    home.wait_status("the worker's output", Duration::from_secs(15), |v| {
        log_has(v, "all done")
    });

    let logs = home.state().join("logs");
    for name in ["worker.log", "worker.log.1", "worker.log.2"] {
        let len = fs::metadata(logs.join(name)).unwrap().len();
        assert!(len > 0 && len <= 4000, "{name}: {len} bytes");
        assert_eq!(mode(&logs.join(name)), 0o600);
    }
    assert!(!logs.join("worker.log.3").exists());

    let (code, logs_out) = home.json(&["logs", "--json", "-n", "5000"], "");
    assert_eq!(code, 0, "{logs_out:#}");
    assert_eq!(logs_out["source"], "supervisor");
    let lines: Vec<&str> = logs_out["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(lines.contains(&"auth Bearer [REDACTED] ok"), "{lines:#?}");
    assert!(lines.contains(&"key [REDACTED] here"));
    assert!(lines.iter().any(|l| l.contains("all done")));
    let human = home.basis(&["logs", "-n", "20"], "");
    let status = home.basis(&["status", "--json", "-n", "200"], "");
    let status_human = home.basis(&["status"], "");

    let outputs = [
        text(&human),
        text(&status),
        text(&status_human),
        logs_out.to_string(),
    ];
    for (what, haystack) in home
        .state_files()
        .into_iter()
        .map(|(p, b)| {
            (
                p.display().to_string(),
                String::from_utf8_lossy(&b).into_owned(),
            )
        })
        .chain(outputs.into_iter().map(|o| ("an output".to_owned(), o)))
    {
        for secret in [body, PRIVATE_KEY, "sk-ant-api03"] {
            assert!(!haystack.contains(secret), "{what} holds a secret");
        }
    }
}

#[test]
fn start_refuses_an_incomplete_env_file() {
    let home = Home::new("");
    fs::write(
        home.dir.path().join("worker.env"),
        "BASIS_WORKER_ID=gpu-1\n",
    )
    .unwrap();
    fs::set_permissions(
        home.dir.path().join("worker.env"),
        fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let (code, v) = home.json(&["start", "--json"], IDLE);
    assert_eq!(code, 2, "{v:#}");
    assert_eq!(v["error"]["code"], "ENV_INCOMPLETE");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("BASIS_DEVICE_KEY") && message.contains("BASIS_WORKER_WALLET"));
    assert!(v["error"]["fix"].as_str().unwrap().contains("write-env"));
    assert!(!home.state().join("supervisor.json").exists());
}

/// The real worker under a real orchestrator: when its supervisor is killed (SIGKILL, no
/// chance to stop it) the worker reads the end of its lifeline, drains and exits, so nothing
/// serves unseen; `stop` then cleans the stale files up and leaves nothing running.
#[test]
fn a_real_worker_exits_when_its_supervisor_is_killed() {
    let orch = Orchestrator::with(Options {
        args: vec!["--open".into()],
        ..Options::default()
    });
    let home = Home::new("");
    let url = orch.url.to_string();
    // The env file names the default orchestrator: moving it to this one is deliberate.
    let register = [
        "register",
        "--orchestrator-url",
        &url,
        "--new-orchestrator",
        "--json",
    ];
    let (code, v) = home.json(&register, "");
    assert_eq!(code, 0, "{v:#}");
    let started = home.start("");
    let (pid, worker) = (pid_of(&started, "pid"), pid_of(&started, "worker_pid"));
    let args = proc_args(worker);
    assert!(args.iter().any(|a| a == "worker"), "{args:?}");
    home.wait_status("the worker online", Duration::from_secs(30), |v| {
        v["worker_status_current"] == true && v["worker_status"]["state"] == "online"
    });

    sigkill(pid);
    wait_dead(pid, Duration::from_secs(5));
    wait_dead(worker, Duration::from_secs(15));
    let v = home.status();
    assert_eq!(v["supervisor"], "stale", "{v:#}");
    assert_eq!(v["state"], "stopped", "no orphan is left: {v:#}");
    assert!(v["worker_pid"].is_null());
    // It drained and stopped cleanly (its last status), not killed by a dead stderr pipe.
    assert_eq!(v["worker_status"]["state"], "stopped", "{v:#}");

    let (code, v) = home.json(&["stop", "--json"], "");
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["was_running"], false);
    assert!(v["cleaned_up"].as_str().is_some(), "{v:#}");
    assert!(!alive(pid) && !alive(worker));
    assert_eq!(home.status()["supervisor"], "not_running");
    assert!(!home.state().join("supervisor.json").exists());
}

/// `/proc/PID/cmdline` as arguments.
fn proc_args(pid: u32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap()
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}
