//! `basis service` end to end: the real binary in a temp `BASIS_HOME` and `XDG_CONFIG_HOME`
//! with no `systemctl` on `PATH` (install writes the unit and prints the commands; a second
//! install changes nothing; a different unit needs --force; uninstall removes it), the unit's
//! own `ExecStart` run in the foreground as systemd would run it (then `basis status`,
//! `start` and `stop` against it), and `systemd-analyze verify` on the generated units where
//! that tool is installed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

const WALLET: &str = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";
/// A stand-in worker that says it is up and idles (`sleep` by its absolute path: the test runs
/// the supervisor with an empty `PATH`).
const IDLE: &str = "echo worker up; exec /bin/sleep 600";

/// A temp dir holding `home/` (`BASIS_HOME`, with a complete worker.env), `xdg/`
/// (`XDG_CONFIG_HOME`, where the user unit goes) and an empty `bin/` (the whole `PATH`).
struct Home {
    dir: tempfile::TempDir,
    exe: PathBuf,
}

impl Home {
    /// Under target/tmp, not /tmp: a system unit refuses files under /tmp (`PrivateTmp=yes`).
    /// A checkout that itself lies under /tmp (a CI clone) gets `$HOME/.cache/basis-tests`.
    fn new() -> Self {
        let target_tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let under_tmp = ["/tmp", "/var/tmp"]
            .iter()
            .any(|t| target_tmp.starts_with(t));
        let base = match std::env::var_os("HOME") {
            Some(home) if under_tmp => Path::new(&home).join(".cache/basis-tests"),
            _ => target_tmp.to_path_buf(),
        };
        fs::create_dir_all(&base).unwrap();
        let dir = tempfile::tempdir_in(&base).unwrap();
        fs::create_dir(dir.path().join("bin")).unwrap();
        let home = Self {
            dir,
            exe: PathBuf::from(env!("CARGO_BIN_EXE_basis")),
        };
        let out = home.basis(&["write-env", "--wallet", WALLET, "--worker-id", "gpu-1"]);
        assert!(out.status.success(), "{}", text(&out));
        home
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn unit(&self) -> PathBuf {
        self.path("xdg/systemd/user/basis-worker.service")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.exe);
        cmd.args(args)
            .env("BASIS_HOME", self.path("home"))
            .env("XDG_CONFIG_HOME", self.path("xdg"))
            .env("PATH", self.path("bin"))
            .env_remove("XDG_STATE_HOME")
            .env_remove("BASIS_CONFIG")
            .env_remove("BASIS_ORCHESTRATOR_URL")
            .env_remove("SUDO_USER")
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        cmd
    }

    fn basis(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn json(&self, args: &[&str]) -> (i32, Value) {
        let out = self.basis(args);
        let v = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", text(&out)));
        (out.status.code().unwrap(), v)
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

fn exec_start(unit: &str) -> &str {
    unit.lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .unwrap_or_else(|| panic!("no ExecStart in {unit}"))
}

#[test]
fn dry_run_prints_the_unit_and_touches_nothing() {
    let home = Home::new();
    let out = home.basis(&["service", "install", "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8(out.stdout).unwrap();
    let exe = fs::canonicalize(&home.exe).unwrap();
    let expected = format!(
        "ExecStart={} supervise --env {} --state-dir {} --managed-by systemd-user\n",
        exe.display(),
        home.path("home/worker.env").display(),
        home.path("home/state").display()
    );
    assert!(stdout.contains(&expected), "{stdout}");
    assert!(
        stdout.contains("[Install]\nWantedBy=default.target\n"),
        "{stdout}"
    );
    assert!(stdout.contains("systemctl --user enable --now basis-worker.service"));
    assert!(stdout.contains("loginctl enable-linger"), "{stdout}");
    assert!(!home.path("xdg").exists(), "a dry run wrote the unit");
    assert!(
        !home.path("home/state").exists(),
        "a dry run made the state dir"
    );
}

#[test]
fn install_without_systemctl_writes_the_unit_and_prints_the_commands() {
    let home = Home::new();
    let (code, v) = home.json(&["service", "install", "--json"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["change"], "created");
    assert_eq!(v["written"], true);
    assert_eq!(v["applied"], "manual", "{v:#}");
    assert_eq!(v["supervisor_pid"], Value::Null);
    assert!(
        v["manager_note"]
            .as_str()
            .unwrap()
            .contains("`systemctl` is not on PATH"),
        "{v:#}"
    );
    let steps: Vec<(&str, &str)> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["command"].as_str().unwrap(),
                s["outcome"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        steps,
        [
            ("systemctl --user daemon-reload", "not_run"),
            (
                "systemctl --user enable --now basis-worker.service",
                "not_run"
            ),
        ]
    );
    let unit = fs::read_to_string(home.unit()).unwrap();
    assert_eq!(unit, v["content"].as_str().unwrap());
    assert_eq!(
        fs::metadata(home.unit()).unwrap().permissions().mode() & 0o777,
        0o644
    );
    assert!(unit.contains(&format!(
        "Environment=BASIS_HOME={}\n",
        home.path("home").display()
    )));
    // The state dir exists for the sandbox to bind.
    assert!(home.path("home/state/logs").is_dir());

    // Again: nothing changes, the commands are printed again.
    let out = home.basis(&["service", "install"]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("already installed, unchanged"), "{stdout}");
    assert!(stdout.contains("  systemctl --user enable --now basis-worker.service\n"));
    assert_eq!(fs::read_to_string(home.unit()).unwrap(), unit);

    // A different unit is refused, untouched, without --force.
    fs::write(home.unit(), format!("{unit}# edited\n")).unwrap();
    let (code, v) = home.json(&["service", "install", "--json"]);
    assert_eq!(code, 3, "{v:#}");
    assert_eq!(v["error"]["code"], "SERVICE_UNIT_EXISTS");
    assert!(v["error"]["fix"].as_str().unwrap().contains("--force"));
    assert!(
        fs::read_to_string(home.unit())
            .unwrap()
            .ends_with("# edited\n")
    );
    let (code, v) = home.json(&["service", "install", "--force", "--json"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["change"], "replaced");
    assert_eq!(fs::read_to_string(home.unit()).unwrap(), unit);

    let (code, v) = home.json(&["service", "status", "--json"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["installed"], true);
    assert_eq!(v["written_by_basis"], true);
    assert_eq!(v["manager_reachable"], false);
    assert_eq!(v["enabled"], Value::Null);

    // Uninstall: a dry run keeps it; then it is removed; then there is nothing to remove.
    let (code, v) = home.json(&["service", "uninstall", "--dry-run", "--json"]);
    assert_eq!(code, 0, "{v:#}");
    assert!(home.unit().exists());
    let (code, v) = home.json(&["service", "uninstall", "--json"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["removed"], true);
    assert_eq!(v["applied"], "manual");
    let manual: Vec<&str> = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["command"].as_str().unwrap())
        .collect();
    assert_eq!(
        manual,
        [
            "systemctl --user stop basis-worker.service",
            "systemctl --user daemon-reload"
        ]
    );
    assert!(!home.unit().exists());
    let out = home.basis(&["service", "uninstall"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not installed"));
    let (_, v) = home.json(&["service", "status", "--json"]);
    assert_eq!(v["installed"], false, "{v:#}");
}

#[test]
fn a_unit_basis_did_not_write_is_left_alone() {
    let home = Home::new();
    fs::create_dir_all(home.unit().parent().unwrap()).unwrap();
    fs::write(home.unit(), "[Service]\nExecStart=/bin/true\n").unwrap();
    let (code, v) = home.json(&["service", "install", "--json"]);
    assert_eq!(code, 3, "{v:#}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("basis did not write it")
    );
    let (code, v) = home.json(&["service", "uninstall", "--json"]);
    assert_eq!(code, 3, "{v:#}");
    assert!(home.unit().exists());
    let (code, v) = home.json(&["service", "uninstall", "--force", "--json"]);
    assert_eq!(code, 0, "{v:#}");
    assert!(!home.unit().exists());
}

#[test]
fn install_needs_the_env_file() {
    let home = Home::new();
    fs::remove_file(home.path("home/worker.env")).unwrap();
    let (code, v) = home.json(&["service", "install", "--dry-run", "--json"]);
    assert_eq!(code, 1, "{v:#}");
    assert_eq!(v["error"]["code"], "IO_ERROR");
    assert!(
        v["error"]["fix"]
            .as_str()
            .unwrap()
            .contains("basis write-env"),
        "{v:#}"
    );
}

/// Kills the foreground supervisor (and its worker) a test left running.
struct Supervisor(Child);

impl Drop for Supervisor {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Supervisor {
    /// Runs the unit's `ExecStart` with its `Environment=`, in the foreground, as systemd does.
    fn from_unit(home: &Home, unit: &str) -> Self {
        let mut words = exec_start(unit).split(' ');
        let mut cmd = Command::new(words.next().unwrap());
        cmd.args(words)
            .env_clear()
            .env("PATH", home.path("bin"))
            .env("BASIS_SUPERVISE_WORKER_CMD", IDLE)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        for line in unit.lines() {
            if let Some((k, v)) = line
                .strip_prefix("Environment=")
                .and_then(|a| a.split_once('='))
            {
                cmd.env(k, v);
            }
        }
        Self(cmd.spawn().unwrap())
    }

    /// Waits for it to exit; its status code.
    fn wait(&mut self, timeout: Duration) -> Option<i32> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.0.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "the supervisor did not exit");
            sleep(Duration::from_millis(20));
        }
    }
}

fn wait_running(home: &Home) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (code, v) = home.json(&["status", "--json"]);
        if code == 0 && v["state"] == "running" && v["worker_pid"].is_u64() {
            return v;
        }
        assert!(Instant::now() < deadline, "not running: {v:#}");
        sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_units_command_runs_one_foreground_supervisor_that_status_and_stop_reach() {
    let home = Home::new();
    let (code, v) = home.json(&["service", "install", "--dry-run", "--json"]);
    assert_eq!(code, 0, "{v:#}");
    let unit = v["content"].as_str().unwrap().to_owned();
    let mut supervisor = Supervisor::from_unit(&home, &unit);
    let pid = supervisor.0.id();

    // It stays in the foreground (no fork: the pid systemd watches is the supervisor).
    let v = wait_running(&home);
    assert_eq!(v["pid"], pid, "{v:#}");
    assert!(supervisor.0.try_wait().unwrap().is_none());
    let info: Value =
        serde_json::from_slice(&fs::read(home.path("home/state/supervisor.json")).unwrap())
            .unwrap();
    assert_eq!(info["managed_by"], "systemd-user");
    // `basis start` does not start a second one.
    let (code, v) = home.json(&["start", "--json"]);
    assert_eq!(code, 3, "{v:#}");
    assert_eq!(v["error"]["code"], "WORKER_ALREADY_RUNNING");

    // `basis stop` stops it cleanly (exit 0: Restart=on-failure leaves it stopped) and says
    // how systemd stops it for good.
    let (code, v) = home.json(&["stop", "--json"]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["stopped"], true);
    let next = v["next_step"].as_str().unwrap();
    assert!(
        next.contains("`systemctl --user stop basis-worker`"),
        "{next}"
    );
    assert!(next.contains("disable --now"), "{next}");
    assert_eq!(supervisor.wait(Duration::from_secs(10)), Some(0));

    // systemd's stop (SIGTERM to the supervisor alone, KillMode=mixed) exits 0 too.
    let mut supervisor = Supervisor::from_unit(&home, &unit);
    wait_running(&home);
    let pid = i32::try_from(supervisor.0.id()).unwrap();
    kill(Pid::from_raw(pid), Signal::SIGTERM).unwrap();
    assert_eq!(supervisor.wait(Duration::from_secs(40)), Some(0));
    let (_, v) = home.json(&["status", "--json"]);
    assert_eq!(v["supervisor"], "not_running", "{v:#}");
}

/// `systemd-analyze verify` on `text` saved as basis-worker.service: exit 0 and no warning.
fn verify(dir: &Path, analyze: &Path, user: bool, text: &str) {
    let unit_dir = dir.join(if user { "user" } else { "system" });
    fs::create_dir_all(&unit_dir).unwrap();
    let file = unit_dir.join("basis-worker.service");
    fs::write(&file, text).unwrap();
    let runtime = dir.join("runtime");
    fs::create_dir_all(&runtime).unwrap();
    fs::set_permissions(&runtime, fs::Permissions::from_mode(0o700)).unwrap();
    let mut cmd = Command::new(analyze);
    if user {
        cmd.arg("--user");
    }
    let out = cmd
        .arg("verify")
        .arg(&file)
        .env("XDG_RUNTIME_DIR", &runtime)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}\n{text}", self::text(&out));
    assert!(
        out.stderr.is_empty(),
        "systemd-analyze warned:\n{}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn systemd_analyze_verifies_the_generated_units() {
    let Some(analyze) = ["/usr/bin/systemd-analyze", "/bin/systemd-analyze"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
    else {
        eprintln!(
            "\n*** SKIPPED systemd_analyze_verifies_the_generated_units: systemd-analyze is not \
             installed (apt-get install systemd); the generated units were NOT verified ***\n"
        );
        return;
    };
    let mut home = Home::new();
    // The binary under a path with a space: ExecStart must quote it for systemd.
    let bin = home.path("my bin");
    fs::create_dir(&bin).unwrap();
    let exe = bin.join("basis");
    if fs::hard_link(&home.exe, &exe).is_err() {
        fs::copy(&home.exe, &exe).unwrap();
    }
    home.exe = exe;
    for (user, args) in [
        (true, &["service", "install", "--dry-run", "--json"][..]),
        (
            false,
            &[
                "service",
                "install",
                "--system",
                "--allow-root",
                "--dry-run",
                "--json",
            ][..],
        ),
    ] {
        let (code, v) = home.json(args);
        assert_eq!(code, 0, "{v:#}");
        let text = v["content"].as_str().unwrap();
        assert!(exec_start(text).starts_with("\"/"), "{text}");
        verify(&home.path("analyze"), &analyze, user, text);
    }
    eprintln!("systemd-analyze verify: the user and system units pass");
}
