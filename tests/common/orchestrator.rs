//! A real `basis orchestrator` child process for tests: bound to 127.0.0.1:0, its `SQLite` file
//! and `BASIS_HOME` in a temp dir, its address read from the `listening on http://ADDR` line
//! on stdout, its log (stderr, at debug level) kept in a file so tests can inspect it.
//!
//! ```ignore
//! let orch = Orchestrator::start();
//! let client = orch.client();
//! ```

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use basis::client::OrchestratorClient;
use tempfile::TempDir;
use url::Url;

/// Limits high enough that ordinary tests never meet them.
pub const RELAXED_LIMITS: &str = "[rate_limit]
register_per_minute = 60000
register_burst = 1000
auth_failures_per_minute = 60000
auth_failure_burst = 1000
";

/// How to start the orchestrator.
#[derive(Debug, Clone)]
pub struct Options {
    /// The whole orchestrator.toml (the db path is passed with --db).
    pub toml: String,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Extra command-line flags.
    pub args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            toml: RELAXED_LIMITS.to_owned(),
            env: Vec::new(),
            args: Vec::new(),
        }
    }
}

/// A running orchestrator; killed (SIGKILL) when dropped.
#[derive(Debug)]
pub struct Orchestrator {
    child: Option<Child>,
    pub url: Url,
    pub dir: TempDir,
    pub db: PathBuf,
    options: Options,
    log: PathBuf,
    starts: u32,
    http: reqwest::Client,
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_basis")
}

impl Orchestrator {
    pub fn start() -> Self {
        Self::with(Options::default())
    }

    pub fn with(options: Options) -> Self {
        Self::in_dir_with(tempfile::tempdir().expect("temp dir"), options)
    }

    /// Starts on a prepared temp dir (its `state/orchestrator.db` may already exist).
    pub fn in_dir(dir: TempDir, toml: String) -> Self {
        Self::in_dir_with(
            dir,
            Options {
                toml,
                ..Options::default()
            },
        )
    }

    fn in_dir_with(dir: TempDir, options: Options) -> Self {
        let db = dir.path().join("state").join("orchestrator.db");
        std::fs::write(dir.path().join("orchestrator.toml"), &options.toml).expect("write config");
        let mut me = Self {
            child: None,
            url: Url::parse("http://127.0.0.1:1/").expect("placeholder url"),
            log: dir.path().join("orchestrator-0.log"),
            dir,
            db,
            options,
            starts: 0,
            http: basis::http::client_builder(Duration::from_secs(2))
                .timeout(Duration::from_secs(10))
                .build()
                .expect("reqwest client"),
        };
        me.spawn();
        me
    }

    fn spawn(&mut self) {
        if let Err(why) = self.try_spawn("127.0.0.1:0") {
            panic!("{why}; log:\n{}", self.logs());
        }
    }

    /// Starts the process listening on `listen`; Err when it announced no address (it exited,
    /// e.g. the port was taken, or stayed silent for 30 s).
    fn try_spawn(&mut self, listen: &str) -> Result<(), String> {
        self.log = self
            .dir
            .path()
            .join(format!("orchestrator-{}.log", self.starts));
        self.starts += 1;
        let log = File::create(&self.log).expect("log file");
        let mut cmd = Command::new(bin());
        cmd.args(["orchestrator", "--listen", listen, "--db"])
            .arg(&self.db)
            .arg("--config")
            .arg(self.dir.path().join("orchestrator.toml"))
            .args(&self.options.args)
            .env("BASIS_HOME", self.dir.path())
            .env("RUST_LOG", "basis=debug,tower_http=debug")
            .env_remove("BASIS_ENROLLMENT_KEY")
            .env_remove("BASIS_ORCHESTRATOR_CONFIG")
            .env_remove("BASIS_CONFIG")
            .envs(
                self.options
                    .env
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str())),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = cmd.spawn().expect("spawn basis orchestrator");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep reading to EOF so the child never blocks on a full pipe.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let _ = tx.send(addr.trim().to_owned());
                }
            }
        });
        let Ok(addr) = rx.recv_timeout(Duration::from_secs(30)) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "the orchestrator (--listen {listen}) announced no address"
            ));
        };
        self.url = Url::parse(&addr).expect("announced url");
        self.child = Some(child);
        Ok(())
    }

    /// A client with a short timeout.
    pub fn client(&self) -> OrchestratorClient {
        OrchestratorClient::new(self.url.clone(), Duration::from_secs(10)).expect("client")
    }

    /// An HTTP client for raw requests (malformed bodies, headers).
    pub fn http(&self) -> reqwest::Client {
        self.http.clone()
    }

    /// The Prometheus text of `GET /metrics`.
    pub async fn metrics(&self) -> String {
        let resp = self.http().get(self.at("/metrics")).send().await.unwrap();
        assert_eq!(resp.status(), 200, "GET /metrics");
        resp.text().await.unwrap()
    }

    /// `self.url` joined with `path`.
    pub fn at(&self, path: &str) -> Url {
        self.url.join(path).expect("url")
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits (at most 20 s: the drain has its own bound) for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let pid = self.pid();
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("run kill");
        assert!(status.success());
        self.wait_exit(Duration::from_secs(20))
    }

    /// Waits (at most `limit`) for the process to exit by itself; kills it and panics after.
    pub fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("orchestrator did not stop in time; log:\n{}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts it again on the same database and config (after `kill` or `terminate`).
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Starts it again on the same database, config and address (after `kill` or
    /// `terminate`), so clients that hold the old URL (a worker) find it again. The port was
    /// free when the first start bound it on port 0; binding it again is retried for `patience`
    /// in case the closing sockets hold it briefly.
    pub fn restart_on_same_address(&mut self, patience: Duration) {
        self.kill();
        let listen = format!(
            "{}:{}",
            self.url.host_str().expect("host"),
            self.url.port().expect("port")
        );
        let before = self.url.clone();
        let deadline = Instant::now() + patience;
        loop {
            match self.try_spawn(&listen) {
                Ok(()) => break,
                Err(why) if Instant::now() > deadline => {
                    panic!("{why}; log:\n{}", self.logs())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(200)),
            }
        }
        assert_eq!(
            self.url, before,
            "the orchestrator came back on another address"
        );
    }

    /// Everything every run of this orchestrator logged so far.
    pub fn logs(&self) -> String {
        (0..self.starts.max(1))
            .map(|i| self.dir.path().join(format!("orchestrator-{i}.log")))
            .filter_map(|p| std::fs::read_to_string(p).ok())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// `basis orchestrator keys create --role ROLE --db DB`: returns (stdout, stderr).
    pub fn create_key(&self, role: &str) -> (String, String) {
        create_key(&self.db, role)
    }
}

/// `basis orchestrator keys create` against a database file.
pub fn create_key(db: &Path, role: &str) -> (String, String) {
    let out = Command::new(bin())
        .args(["orchestrator", "keys", "create", "--role", role, "--db"])
        .arg(db)
        .env_remove("BASIS_ORCHESTRATOR_CONFIG")
        .output()
        .expect("run keys create");
    assert!(
        out.status.success(),
        "keys create failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).expect("utf-8"),
        String::from_utf8(out.stderr).expect("utf-8"),
    )
}

impl Drop for Orchestrator {
    fn drop(&mut self) {
        self.kill();
    }
}
