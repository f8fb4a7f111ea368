//! Docker and the NVIDIA Container Toolkit: is the `docker` CLI on PATH, does its daemon answer,
//! is the `nvidia` runtime registered, are `nvidia-ctk` / `nvidia-container-runtime-hook` there.

use std::path::Path;
use std::time::{Duration, Instant};

use super::exec::{self, RunError};
use super::report::{ContainerInfo, DaemonState};

/// Runtime names from `docker info --format '{{json .Runtimes}}'` (a JSON object keyed by name).
pub fn parse_runtimes(stdout: &str) -> Option<Vec<String>> {
    let value: serde_json::Value = serde_json::from_str(stdout.trim()).ok()?;
    let mut names: Vec<String> = value.as_object()?.keys().cloned().collect();
    names.sort();
    Some(names)
}

/// How a failed `docker info` reads: permission problem or no daemon.
pub fn classify_failure(stderr: &str) -> DaemonState {
    if stderr.to_ascii_lowercase().contains("permission denied") {
        DaemonState::PermissionDenied
    } else {
        DaemonState::Unreachable
    }
}

/// When nothing points the CLI elsewhere (`DOCKER_HOST`, `DOCKER_CONTEXT`, a current context in
/// `~/.docker/config.json`) and the default socket is absent, the daemon is certainly down and
/// there is no need to spend a process on asking.
fn default_socket_absent() -> bool {
    if std::env::var_os("DOCKER_HOST").is_some() || std::env::var_os("DOCKER_CONTEXT").is_some() {
        return false;
    }
    let config_dir = std::env::var_os("DOCKER_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".docker")));
    let has_context = config_dir
        .and_then(|d| std::fs::read_to_string(d.join("config.json")).ok())
        .is_some_and(|c| c.contains("currentContext"));
    !has_context && cfg!(unix) && !Path::new("/var/run/docker.sock").exists()
}

/// Probes Docker within `budget`.
pub(crate) async fn probe(budget: Duration) -> ContainerInfo {
    let deadline = Instant::now() + budget;
    let docker = exec::find_program("docker", &[]);
    let mut info = ContainerInfo {
        docker_cli: docker.as_deref().map(exec::display),
        docker_daemon: DaemonState::NotInstalled,
        docker_detail: None,
        docker_runtimes: Vec::new(),
        nvidia_runtime: None,
        nvidia_ctk: exec::find_program("nvidia-ctk", &[])
            .as_deref()
            .map(exec::display),
        nvidia_container_runtime_hook: exec::find_program("nvidia-container-runtime-hook", &[])
            .as_deref()
            .map(exec::display),
    };
    let Some(docker) = docker else {
        return info;
    };
    if default_socket_absent() {
        info.docker_daemon = DaemonState::Unreachable;
        info.docker_detail = Some(
            "no daemon socket at /var/run/docker.sock (and no DOCKER_HOST or context)".to_owned(),
        );
        return info;
    }
    let (state, detail, runtimes) = ask_daemon(&docker, deadline).await;
    info.docker_daemon = state;
    info.docker_detail = detail;
    if state == DaemonState::Reachable {
        info.nvidia_runtime = Some(runtimes.iter().any(|r| r == "nvidia"));
    }
    info.docker_runtimes = runtimes;
    info
}

/// Asks the daemon through `docker info` (a fake `docker` in tests): its state, why it is not
/// reachable, and its registered runtimes.
pub(crate) async fn ask_daemon(
    docker: &Path,
    deadline: Instant,
) -> (DaemonState, Option<String>, Vec<String>) {
    match exec::run(
        docker,
        &["info", "--format", "{{json .Runtimes}}"],
        deadline,
    )
    .await
    {
        Ok(out) => {
            if let Some(runtimes) = parse_runtimes(&out.stdout).filter(|_| out.success()) {
                (DaemonState::Reachable, None, runtimes)
            } else {
                (
                    classify_failure(&out.stderr),
                    Some(out.reason()),
                    Vec::new(),
                )
            }
        }
        Err(e @ RunError::Timeout(_)) => (
            DaemonState::Timeout,
            Some(format!("docker info: {e}")),
            Vec::new(),
        ),
        Err(e) => (
            DaemonState::Unreachable,
            Some(format!("docker info: {e}")),
            Vec::new(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtimes_from_docker_info() {
        let out = r#"{"io.containerd.runc.v2":{"path":"runc"},"nvidia":{"path":"nvidia-container-runtime"},"runc":{"path":"runc"}}"#;
        assert_eq!(
            parse_runtimes(out).unwrap(),
            vec!["io.containerd.runc.v2", "nvidia", "runc"]
        );
        assert_eq!(parse_runtimes("null\n"), None);
        assert_eq!(parse_runtimes(""), None);
    }

    #[test]
    fn failures_are_classified() {
        assert_eq!(
            classify_failure(
                "permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock"
            ),
            DaemonState::PermissionDenied
        );
        assert_eq!(
            classify_failure(
                "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?"
            ),
            DaemonState::Unreachable
        );
    }

    #[cfg(unix)]
    async fn ask_fake(body: &str, budget: Duration) -> (DaemonState, Option<String>, Vec<String>) {
        let dir = tempfile::tempdir().unwrap();
        let docker = exec::test_support::fake_program(dir.path(), "docker", body);
        for _ in 0..20 {
            let res = ask_daemon(&docker, Instant::now() + budget).await;
            if !res.1.as_deref().is_some_and(|d| d.contains("busy")) {
                return res;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("fake docker stayed busy");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn fake_docker_daemon_states() {
        let up = r#"echo '{"io.containerd.runc.v2":{"path":"runc"},"nvidia":{"path":"nvidia-container-runtime"},"runc":{"path":"runc"}}'"#;
        let (state, detail, runtimes) = ask_fake(up, Duration::from_secs(5)).await;
        assert_eq!((state, detail), (DaemonState::Reachable, None));
        assert!(runtimes.contains(&"nvidia".to_owned()));

        let denied = "echo 'permission denied while trying to connect to the Docker daemon socket at unix:///var/run/docker.sock' >&2; exit 1";
        let (state, detail, _) = ask_fake(denied, Duration::from_secs(5)).await;
        assert_eq!(state, DaemonState::PermissionDenied);
        assert!(detail.unwrap().contains("exit status 1"));

        let down = "echo null; echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?' >&2; exit 1";
        assert_eq!(
            ask_fake(down, Duration::from_secs(5)).await.0,
            DaemonState::Unreachable
        );

        let start = Instant::now();
        let (state, _, _) = ask_fake("sleep 10", Duration::from_millis(300)).await;
        assert_eq!(state, DaemonState::Timeout);
        assert!(start.elapsed() < Duration::from_millis(1500));
    }

    #[tokio::test]
    async fn probe_on_this_machine_is_quick_and_consistent() {
        let start = Instant::now();
        let info = probe(Duration::from_millis(1500)).await;
        assert!(start.elapsed() < Duration::from_millis(1700));
        assert_eq!(
            info.docker_cli.is_none(),
            info.docker_daemon == DaemonState::NotInstalled
        );
        if info.docker_daemon != DaemonState::Reachable {
            assert!(info.nvidia_runtime.is_none());
        }
    }
}
