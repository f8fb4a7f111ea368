//! The canary's orchestrator: a real `basis orchestrator` child process on 127.0.0.1:0 with a
//! SQLite file in the canary's temp dir, and the client and evaluator keys made for it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use secrecy::SecretString;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use url::Url;

/// The running orchestrator.
pub struct Orchestrator {
    pub url: Url,
    pub client_key: SecretString,
    pub evaluator_key: SecretString,
    child: Child,
}

fn exe() -> Result<std::path::PathBuf, String> {
    std::env::current_exe().map_err(|e| format!("cannot find the basis executable: {e}"))
}

impl Orchestrator {
    /// Creates a client key and an evaluator key in a fresh database, then starts the
    /// orchestrator on it.
    pub async fn start(home: &Path) -> Result<Self, String> {
        let db = home.join("orchestrator.db");
        let exe = exe()?;
        let client_key = create_key(&exe, home, &db, "client").await?;
        let evaluator_key = create_key(&exe, home, &db, "evaluator").await?;
        let mut child = Command::new(&exe)
            .args(["orchestrator", "--listen", "127.0.0.1:0", "--db"])
            .arg(&db)
            .env("BASIS_HOME", home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start `basis orchestrator`: {e}"))?;
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| "no stdout from the orchestrator".to_owned())?;
        let mut lines = BufReader::new(stdout).lines();
        let url = tokio::time::timeout(Duration::from_secs(15), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    return Url::parse(addr.trim()).ok();
                }
            }
            None
        })
        .await
        .ok()
        .flatten()
        .ok_or_else(|| "the orchestrator did not report its address within 15 s".to_owned())?;
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Self {
            url,
            client_key,
            evaluator_key,
            child,
        })
    }

    /// SIGTERM-free shutdown: the canary owns this process outright.
    pub async fn shutdown(&mut self) {
        let _ = self.child.kill().await;
    }
}

/// `basis orchestrator keys create --role ROLE`: the key is the first line it prints.
async fn create_key(
    exe: &Path,
    home: &Path,
    db: &Path,
    role: &str,
) -> Result<SecretString, String> {
    let out = Command::new(exe)
        .args(["orchestrator", "keys", "create", "--role", role, "--db"])
        .arg(db)
        .env("BASIS_HOME", home)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run `basis orchestrator keys create`: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .map(str::trim)
        .filter(|k| !k.is_empty() && out.status.success())
        .map(|k| SecretString::from(k.to_owned()))
        .ok_or_else(|| format!("`basis orchestrator keys create --role {role}` printed no key"))
}
