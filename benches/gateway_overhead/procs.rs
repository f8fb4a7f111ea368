//! The processes the gateway benches run: the release `basis` binary as an orchestrator or a
//! worker (vllm runtime, at its default capacity, answered by the in-bench upstream), killed
//! when dropped; and the percentile the tables report.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use basis::client::RegisterAuth;
use basis::domain::{DeviceKey, Runtime, TokenSha256, WalletAddress, WorkerId, WorkerToken};
use basis::wire::RegisterRequest;

use super::{MODEL, Result, WALLET, WORKER};

/// A child process, killed when dropped (also on an early error return).
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_basis")
}

/// The URL an orchestrator started with piped stdout announces (`listening on URL`); the rest
/// of its stdout is drained so it never blocks.
pub fn announced(child: &mut Child) -> Result<String> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    std::thread::spawn(move || for _ in reader.lines() {});
    Ok(line
        .trim()
        .strip_prefix("listening on ")
        .ok_or("the orchestrator announced no address")?
        .to_owned())
}

/// Registers the worker, writes its env file and starts `basis worker` (vllm runtime, at its
/// default capacity) against `orchestrator`, answered by `upstream`.
pub async fn vllm_worker(dir: &Path, orchestrator: &str, upstream: &str) -> Result<Proc> {
    // A device key, as `basis write-env` makes: the worker signs its channel's challenge.
    // `BASIS_GATEWAY_LEGACY_TOKEN=1`: a legacy token worker instead (bearer on the upgrade),
    // to compare the two.
    let legacy = std::env::var("BASIS_GATEWAY_LEGACY_TOKEN").is_ok_and(|v| v == "1");
    let key = DeviceKey::generate();
    let token = WorkerToken::generate();
    let request = RegisterRequest {
        worker_id: WorkerId::parse(WORKER)?,
        wallet: WalletAddress::parse(WALLET)?,
        runtime: Runtime::Vllm,
        models: vec![MODEL.into()],
        token_sha256: if legacy {
            token.sha256()
        } else {
            TokenSha256::sha256(key.public().as_bytes())
        },
        public_key: (!legacy).then(|| key.public()),
        hardware: None,
        version: env!("CARGO_PKG_VERSION").into(),
        multi_task: false,
        labels: Vec::new(),
    };
    basis::client::OrchestratorClient::new(orchestrator.parse()?, Duration::from_secs(10))?
        .register_with(
            &request,
            RegisterAuth {
                key: (!legacy).then_some(&key),
                ..RegisterAuth::default()
            },
        )
        .await?;
    let credential = if legacy {
        format!("BASIS_WORKER_TOKEN={}", token.expose_secret())
    } else {
        format!("BASIS_DEVICE_KEY={}", &*key.expose_secret())
    };
    let home = dir.join("worker");
    std::fs::create_dir_all(&home)?;
    let env_file = home.join("worker.env");
    std::fs::write(
        &env_file,
        format!(
            "BASIS_WORKER_ID={WORKER}\nBASIS_WORKER_WALLET={WALLET}\nBASIS_WORKER_RUNTIME=vllm\n\
             BASIS_WORKER_MODELS={MODEL}\nVLLM_URL={upstream}\nBASIS_ORCHESTRATOR_URL={orchestrator}\n\
             {credential}\n"
        ),
    )?;
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o600))?;
    let child = Command::new(bin())
        .args(["worker", "--env"])
        .arg(&env_file)
        .env("BASIS_HOME", &home)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("worker.log"))?)
        .spawn()?;
    Ok(Proc(child))
}

/// The `p` quantile of sorted µs samples, in ms.
pub fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    f64::from(sorted[i]) / 1000.0
}
