//! `write_env`: write the worker's env file (docs/FILES.md, "worker.env") from public
//! settings. The device key is generated here, on the host, when the file has none, and an
//! existing one is always kept (so is a legacy token, until registration retires it): the whole
//! read-modify-write runs under the file's cross-process [`EnvLock`], so of several processes
//! racing to create the file, one creates it and the others keep its key.
//!
//! Pointing an existing worker at another orchestrator is deliberate (`new_orchestrator`), and a
//! plain `http://` orchestrator off this machine is refused unless `allow_insecure_http` says
//! otherwise: jobs and outputs would cross the network in clear.

use std::path::Path;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use url::Url;

use super::Context;
use super::parse;
use crate::config::{
    ENV_FILE_MODE, EnvFileError, EnvLock, EnvTarget, MAX_CAPACITY, WorkerEnv, env_target,
};
use crate::domain::{ErrorCode, KeyFingerprint, Problem, Runtime, WalletAddress, WorkerId};
use crate::guard::{GuardText, Guarded, SecretRefused};
use crate::worker::effective_capacity;

/// Public settings for the worker. Every field is optional on a rewrite: what is omitted keeps
/// its current value. Never put a private key, device key, seed phrase or token here.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The PUBLIC EVM address (0x + 40 hex) that receives rewards. Never a private key.
    #[serde(default)]
    pub wallet: Option<String>,
    /// The worker's name: 2-63 lowercase letters, digits and '-', e.g. "gpu-box-1".
    #[serde(default)]
    pub worker_id: Option<String>,
    /// echo (simulator, no GPU), ollama or vllm. Defaults to echo for a new file.
    #[serde(default)]
    pub runtime: Option<String>,
    /// Models this worker serves, e.g. ["llama3.1:8b"]. Defaults to ["echo"] for the echo runtime.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// The Ollama model to run (ollama runtime).
    #[serde(default)]
    pub ollama_model: Option<String>,
    /// Ollama's URL (default http://127.0.0.1:11434).
    #[serde(default)]
    pub ollama_url: Option<String>,
    /// vLLM's URL (default http://127.0.0.1:8000).
    #[serde(default)]
    pub vllm_url: Option<String>,
    /// The orchestrator to register with (default from basis.toml / BASIS_ORCHESTRATOR_URL).
    /// Changing the one an existing env file names needs new_orchestrator.
    #[serde(default)]
    pub orchestrator_url: Option<String>,
    /// Confirms moving this worker to a different orchestrator than the one its env file
    /// names (default false: such a change is refused).
    #[serde(default)]
    pub new_orchestrator: Option<bool>,
    /// Accept a plain http:// orchestrator that is not on this machine (default false: refused,
    /// since jobs and outputs would travel in clear; use https://).
    #[serde(default)]
    pub allow_insecure_http: Option<bool>,
    /// Let this worker hold several task claims at once when it registers (default false:
    /// one claim at a time).
    #[serde(default)]
    pub multi_task: Option<bool>,
    /// Gateway jobs the worker runs at once, 1-256 (default by runtime: vllm 32, ollama
    /// OLLAMA_NUM_PARALLEL or 4, echo 16). Applies when the worker next starts.
    #[serde(default)]
    #[schemars(range(min = 1, max = 256))]
    pub capacity: Option<u32>,
    /// Other replicas of the same orchestrator to fail over to, in order, when
    /// orchestrator_url is unreachable, e.g. ["https://orch-b.example"]. [] removes them.
    #[serde(default)]
    pub fallback_orchestrator_urls: Option<Vec<String>>,
    /// Free-form labels this worker registers with, e.g. ["region=eu", "tier:gold"]
    /// (lowercase letters, digits and . _ - = : /; at most 16). Tasks may require them
    /// (`label:region=eu`) and gateway clients ask for them. [] removes them.
    #[serde(default)]
    pub labels: Option<Vec<String>>,
    /// Where to write the env file (default: worker.env in the basis config directory). Must
    /// be inside the config dir, the current dir or a dir allowed in basis.toml.
    #[serde(default)]
    pub out: Option<String>,
    /// Replace the file at out even when it is not a worker env file (what it holds is
    /// lost). Without it such a file is refused (ENV_FILE_FOREIGN); a missing file or a
    /// worker env file needs no force.
    #[serde(default)]
    pub force: Option<bool>,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.wallet.guard("wallet")?;
        self.worker_id.guard("worker_id")?;
        self.runtime.guard("runtime")?;
        self.models.guard("models")?;
        self.ollama_model.guard("ollama_model")?;
        self.ollama_url.guard("ollama_url")?;
        self.vllm_url.guard("vllm_url")?;
        self.orchestrator_url.guard("orchestrator_url")?;
        self.fallback_orchestrator_urls
            .guard("fallback_orchestrator_urls")?;
        self.labels.guard("labels")?;
        self.out.guard("out")
    }
}

/// What was written. Shows the device key's fingerprint, never the key.
// Each bool is an independent fact about the file.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    /// Absolute path of the env file.
    pub path: String,
    /// File mode, always "0600".
    pub mode: String,
    /// Keys now in the file, in file order.
    pub keys_written: Vec<String>,
    /// True when the file did not exist before.
    pub created: bool,
    /// True when an existing device key was kept; false when one was generated now.
    pub key_kept: bool,
    /// The device key's fingerprint (SHA256: + base64 of its public key's sha256). The private
    /// key never leaves this host.
    pub key_fingerprint: KeyFingerprint,
    /// The file still holds a legacy BASIS_WORKER_TOKEN: register_worker moves the worker to
    /// the device key, proving the token once, then removes it.
    pub legacy_token: bool,
    /// The orchestrator the file named before, when this call changed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_orchestrator_url: Option<String>,
    pub worker_id: WorkerId,
    pub wallet: WalletAddress,
    pub runtime: Runtime,
    pub models: Vec<String>,
    pub orchestrator_url: String,
    /// The worker registers as multi-task: it may hold several task claims at once.
    pub multi_task: bool,
    /// Gateway jobs the worker will run at once (the file's setting, else its runtime's
    /// default), from its next start.
    pub capacity: u32,
    /// The replicas it fails over to, in order.
    pub fallback_orchestrator_urls: Vec<String>,
    /// The labels it registers with.
    pub labels: Vec<String>,
    /// What to do next.
    pub next_step: String,
}

/// Parses the input into the env-file update it describes.
fn update_from(input: &Input) -> Result<WorkerEnv, Problem> {
    Ok(WorkerEnv {
        worker_id: input
            .worker_id
            .as_deref()
            .map(parse::worker_id)
            .transpose()?,
        wallet: input.wallet.as_deref().map(parse::wallet).transpose()?,
        runtime: input.runtime.as_deref().map(parse::runtime).transpose()?,
        models: input.models.clone().unwrap_or_default(),
        ollama_model: input.ollama_model.clone(),
        ollama_url: opt_url("ollama_url", input.ollama_url.as_deref())?,
        vllm_url: opt_url("vllm_url", input.vllm_url.as_deref())?,
        orchestrator_url: input
            .orchestrator_url
            .as_deref()
            .map(|u| orchestrator_url("orchestrator_url", u, input.allow_insecure_http))
            .transpose()?,
        token: None,
        device_key: None,
        device_key_next: None,
        evaluator_key: None,
        multi_task: input.multi_task,
        fallback_urls: input
            .fallback_orchestrator_urls
            .iter()
            .flatten()
            .map(|u| orchestrator_url("fallback_orchestrator_urls", u, input.allow_insecure_http))
            .collect::<Result<_, _>>()?,
        capacity: input.capacity.map(parse_capacity).transpose()?,
        labels: match &input.labels {
            None => Vec::new(),
            Some(labels) => {
                let labels: Vec<String> = labels.iter().map(|l| l.trim().to_owned()).collect();
                crate::domain::check_labels(&labels).map_err(|e| {
                    Problem::new(ErrorCode::InvalidArgument, format!("labels: {e}"))
                        .with_fix("Give labels like \"region=eu\" or \"tier:gold\".")
                })?;
                labels
            }
        },
        extra: Vec::new(),
    })
}

fn parse_capacity(capacity: u32) -> Result<u32, Problem> {
    if (1..=MAX_CAPACITY).contains(&capacity) {
        Ok(capacity)
    } else {
        Err(Problem::new(
            ErrorCode::InvalidArgument,
            format!("capacity must be from 1 to {MAX_CAPACITY}"),
        )
        .with_fix("pass the number of jobs the runtime can run at once, e.g. 8, or leave it out for the runtime's default"))
    }
}

fn opt_url(field: &str, value: Option<&str>) -> Result<Option<Url>, Problem> {
    value.map(|v| parse::http_url(field, v)).transpose()
}

/// An orchestrator URL given in `field`: http(s), and https unless the host is this machine
/// (127.0.0.0/8, ::1, localhost) or `allow_insecure_http`.
pub(super) fn orchestrator_url(
    field: &str,
    value: &str,
    allow_insecure_http: Option<bool>,
) -> Result<Url, Problem> {
    let url = parse::http_url(field, value)?;
    if url.scheme() == "http" && !is_loopback(&url) && !allow_insecure_http.unwrap_or(false) {
        return Err(Problem::new(
            ErrorCode::InvalidArgument,
            format!(
                "{field}: {} is a plain http:// orchestrator on another machine: the jobs, their \
                 outputs and the registration would travel in clear",
                url.as_str().trim_end_matches('/')
            ),
        )
        .with_fix(format!(
            "give its https:// address; or, on a network you trust, confirm it with \
             allow_insecure_http: true (`--allow-insecure-http`) next to {field}"
        )));
    }
    Ok(url)
}

/// Whether `url`'s host is this machine: `localhost`, 127.0.0.0/8 or ::1.
fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    }
}

/// Whether two orchestrator URLs name the same orchestrator (`http://h:1` and `http://h:1/`
/// do).
fn same_url(a: &Url, b: &Url) -> bool {
    a.as_str().trim_end_matches('/') == b.as_str().trim_end_matches('/')
}

/// The orchestrator the env file at `env_file` names (`file_url`) when `given` moves the worker
/// off it; refused unless `confirmed` (`new_orchestrator`). None when nothing moves.
pub(super) fn check_move(
    env_file: &str,
    file_url: Option<&Url>,
    given: Option<&Url>,
    confirmed: bool,
) -> Result<Option<Url>, Problem> {
    match (file_url, given) {
        (Some(old), Some(new)) if !same_url(old, new) => {
            if confirmed {
                Ok(Some(old.clone()))
            } else {
                Err(orchestrator_change_refused(env_file, old, new))
            }
        }
        _ => Ok(None),
    }
}

/// The refusal to move a worker from orchestrator `from` to `to` without `new_orchestrator`.
fn orchestrator_change_refused(env_file: &str, from: &Url, to: &Url) -> Problem {
    let (from, to) = (
        from.as_str().trim_end_matches('/'),
        to.as_str().trim_end_matches('/'),
    );
    Problem::new(
        ErrorCode::InvalidArgument,
        format!(
            "the env file {env_file} points this worker at the orchestrator {from}; this call \
             would move it to {to}, a different orchestrator"
        ),
    )
    .with_fix(format!(
        "to move the worker to {to} (it then registers there under the same worker id and \
         device key), repeat the call with new_orchestrator: true (`--new-orchestrator`); to \
         stay with {from}, leave orchestrator_url out"
    ))
}

/// Models when none were given: the echo runtime serves `echo`; another runtime drops that
/// simulator model and serves its Ollama model when one is set.
fn default_models(env: &mut WorkerEnv, runtime: Runtime) {
    if runtime == Runtime::Echo {
        if env.models.is_empty() {
            env.models = vec![ECHO_MODEL.to_owned()];
        }
        return;
    }
    env.models.retain(|m| m != ECHO_MODEL);
    if env.models.is_empty()
        && let Some(model) = &env.ollama_model
    {
        env.models = vec![model.clone()];
    }
}

/// The one model the echo simulator serves.
const ECHO_MODEL: &str = "echo";

/// Merges the input into the env file (creating it if needed), keeps or generates the token,
/// and writes it atomically with mode 0600, all under the file's [`EnvLock`].
pub fn run(ctx: &Context, input: &Input) -> Result<Output, Problem> {
    update(ctx, input, None).map(|written| written.output)
}

/// What [`update`] wrote.
pub(super) struct Written {
    pub output: Output,
    /// The file as written, its device key included.
    pub env: WorkerEnv,
    /// The orchestrator the file named before this call (none for a new file).
    pub file_url: Option<Url>,
}

/// [`run`], also returning the file as written, device key included, for `register_worker`:
/// the key it registers is the one this call read or created under the lock, and basis never
/// replaces a key that exists (only `rotate_key` does), so it is the one the file keeps.
/// `default_url` is the orchestrator a file that names none gets (else the configured one).
pub(super) fn update(
    ctx: &Context,
    input: &Input,
    default_url: Option<&Url>,
) -> Result<Written, Problem> {
    parse::refuse_key_as_wallet(input.wallet.as_deref())?;
    input.check_secrets()?;
    let update = update_from(input)?;
    let path = ctx.allowed.check(&ctx.env_path(input.out.as_deref()))?;
    let force = input.force.unwrap_or(false);
    // Refused before the lock, whose file would otherwise be left beside the foreign one.
    if !force && env_target(&path)? == EnvTarget::Foreign {
        return Err(EnvFileError::Foreign { path }.into());
    }
    let _lock = EnvLock::acquire(&path)?;
    // Under the lock no other basis process writes the file; `create` also refuses to replace
    // a file a writer without the lock (an older basis) created meanwhile: read it and merge
    // again, once.
    let clear_fallbacks = input
        .fallback_orchestrator_urls
        .as_ref()
        .is_some_and(Vec::is_empty);
    let clear_labels = input.labels.as_ref().is_some_and(Vec::is_empty);
    let how = How {
        force,
        clear_fallbacks,
        clear_labels,
        new_orchestrator: input.new_orchestrator.unwrap_or(false),
    };
    let default_url = default_url.unwrap_or(&ctx.settings.orchestrator_url);
    match merge_and_write(ctx, &path, update.clone(), how, default_url) {
        Err(EnvFileError::Appeared { .. }) => merge_and_write(ctx, &path, update, how, default_url),
        other => other,
    }
    .map_err(Problem::from)?
}

/// How [`merge_and_write`] treats what is there.
// Each bool is an independent switch of the input.
#[allow(clippy::struct_excessive_bools)]
#[derive(Debug, Clone, Copy)]
struct How {
    /// Replace a file that is not a worker env file.
    force: bool,
    /// Remove the fallback URLs (`fallback_orchestrator_urls: []`).
    clear_fallbacks: bool,
    /// Remove the labels (`labels: []`).
    clear_labels: bool,
    /// Point an existing worker at a different orchestrator.
    new_orchestrator: bool,
}

impl How {
    /// Empties the lists the input asked to remove.
    fn clear(self, env: &mut WorkerEnv) {
        if self.clear_fallbacks {
            env.fallback_urls.clear();
        }
        if self.clear_labels {
            env.labels.clear();
        }
    }
}

/// The problem of an env file that would lack the worker id or the wallet.
fn incomplete(env: &WorkerEnv) -> Problem {
    let missing: Vec<&str> = [
        ("worker_id", env.worker_id.is_none()),
        ("wallet", env.wallet.is_none()),
    ]
    .into_iter()
    .filter_map(|(k, m)| m.then_some(k))
    .collect();
    Problem::new(
        ErrorCode::EnvIncomplete,
        format!("the env file would lack {}", missing.join(" and ")),
    )
    .with_fix(format!(
        "pass {} (public values only)",
        missing.join(" and ")
    ))
}

/// One read-merge-write of the env file at `path` (checked, locked). A file there that is
/// not a worker env file is refused, or with `force` replaced without reading it. The outer
/// error is the file's (a retry may help); the inner one is the merged settings'.
fn merge_and_write(
    ctx: &Context,
    path: &Path,
    update: WorkerEnv,
    how: How,
    default_url: &Url,
) -> Result<Result<Written, Problem>, EnvFileError> {
    let force = how.force;
    let target = env_target(path)?;
    let existing = match target {
        EnvTarget::WorkerEnv => WorkerEnv::read_optional(path)?,
        EnvTarget::Foreign if !force => {
            return Err(EnvFileError::Foreign {
                path: path.to_path_buf(),
            });
        }
        EnvTarget::Foreign | EnvTarget::Missing => None,
    };
    let created = existing.is_none() && target != EnvTarget::Foreign;
    let mut env = existing.unwrap_or_default();
    let file_url = env.orchestrator_url.clone();
    let previous_orchestrator_url = match check_move(
        &path.display().to_string(),
        file_url.as_ref(),
        update.orchestrator_url.as_ref(),
        how.new_orchestrator,
    ) {
        Ok(previous) => previous,
        Err(refused) => return Ok(Err(refused)),
    };
    let models_given = !update.models.is_empty();
    env.merge(update);
    how.clear(&mut env);
    let runtime = *env.runtime.get_or_insert(Runtime::Echo);
    if !models_given {
        default_models(&mut env, runtime);
    }
    if env.orchestrator_url.is_none() {
        env.orchestrator_url = Some(default_url.clone());
    }
    let (Some(worker_id), Some(wallet), Some(runtime)) =
        (env.worker_id.clone(), env.wallet, env.runtime)
    else {
        return Ok(Err(incomplete(&env)));
    };
    if env.models.is_empty() {
        return Ok(Err(Problem::new(
            ErrorCode::EnvIncomplete,
            format!("the {runtime} runtime needs at least one model"),
        )
        .with_fix("pass models, e.g. [\"llama3.1:8b\"]")));
    }
    let key_kept = !env.ensure_device_key();
    let written = if created {
        env.create(path, &ctx.allowed)?
    } else {
        env.write(path, &ctx.allowed)?
    };
    let Some(key_fingerprint) = written.key_fingerprint.clone() else {
        return Ok(Err(Problem::new(
            ErrorCode::Internal,
            "the env file was written without a device key",
        )));
    };
    tracing::debug!(
        path = %written.path.display(),
        created,
        key_kept,
        key_fingerprint = %key_fingerprint,
        "wrote the env file"
    );
    let output = Output {
        path: written.path.display().to_string(),
        mode: format!("{ENV_FILE_MODE:04o}"),
        keys_written: written.keys,
        created,
        key_kept,
        key_fingerprint,
        legacy_token: env.token.is_some(),
        previous_orchestrator_url: previous_orchestrator_url
            .map(|u| u.as_str().trim_end_matches('/').to_owned()),
        worker_id,
        wallet,
        runtime,
        models: env.models.clone(),
        orchestrator_url: env
            .orchestrator_url
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        multi_task: env.multi_task.unwrap_or(false),
        // The worker's service environment may set OLLAMA_NUM_PARALLEL too; what the file
        // says is what is known here.
        capacity: effective_capacity(&env, runtime, None, &|_: &str| None),
        fallback_orchestrator_urls: env
            .fallback_urls
            .iter()
            .map(|u| u.as_str().trim_end_matches('/').to_owned())
            .collect(),
        labels: env.labels.clone(),
        next_step: "register the worker with the orchestrator (register_worker / `basis register`)"
            .to_owned(),
    };
    Ok(Ok(Written {
        output,
        env,
        file_url,
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use super::*;

    const WALLET: &str = "0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed";

    /// Threads released together all find the file missing at once, the race that made each
    /// create it with a key of its own: under the lock one creates it and the rest keep its
    /// key, and the file holds that one key.
    #[test]
    fn racing_first_writes_end_with_one_key_the_one_each_reported() {
        for round in 0..5 {
            let home = tempfile::tempdir().unwrap();
            let url = url::Url::parse("http://127.0.0.1:9").unwrap();
            let ctx = Arc::new(Context::for_home(home.path(), &url).unwrap());
            let n = 8;
            let barrier = Arc::new(Barrier::new(n));
            let threads: Vec<_> = (0..n)
                .map(|i| {
                    let (ctx, barrier) = (Arc::clone(&ctx), Arc::clone(&barrier));
                    std::thread::spawn(move || {
                        let input = Input {
                            wallet: Some(WALLET.to_owned()),
                            worker_id: Some("gpu-1".to_owned()),
                            multi_task: Some(i % 2 == 0),
                            ..Input::default()
                        };
                        barrier.wait();
                        update(&ctx, &input, None).unwrap()
                    })
                })
                .collect();
            let results: Vec<(Output, WorkerEnv)> = threads
                .into_iter()
                .map(|t| t.join().unwrap())
                .map(|w| (w.output, w.env))
                .collect();
            let on_disk = WorkerEnv::read(&ctx.dirs().env_file()).unwrap();
            let key = on_disk.device_key.as_ref().unwrap();
            assert!(on_disk.token.is_none(), "a new file has no token");
            let created = results.iter().filter(|(o, _)| o.created).count();
            assert_eq!(created, 1, "round {round}: one writer creates the file");
            for (output, env) in &results {
                assert_eq!(output.key_fingerprint, key.fingerprint(), "round {round}");
                assert_eq!(env.device_key.as_ref().unwrap().public(), key.public());
                assert_eq!(output.key_kept, !output.created);
                assert!(!output.legacy_token);
            }
        }
    }

    /// A file that is not a worker env file is left byte for byte (no lock file beside it)
    /// unless forced; forced, it is replaced by a fresh worker env file.
    #[test]
    fn a_foreign_file_is_refused_unless_forced() {
        let home = tempfile::tempdir().unwrap();
        let url = url::Url::parse("http://127.0.0.1:9").unwrap();
        let ctx = Context::for_home(home.path(), &url).unwrap();
        let bashrc = home.path().join(".bashrc");
        let original = "export PATH=\"$HOME/bin:$PATH\"\nBASIS_WORKER_ID=gpu-1\n";
        std::fs::write(&bashrc, original).unwrap();
        let mut input = Input {
            wallet: Some(WALLET.to_owned()),
            worker_id: Some("gpu-1".to_owned()),
            out: Some(bashrc.display().to_string()),
            ..Input::default()
        };
        let problem = run(&ctx, &input).unwrap_err();
        assert_eq!(problem.code, ErrorCode::EnvFileForeign, "{problem:?}");
        assert_eq!(std::fs::read_to_string(&bashrc).unwrap(), original);
        assert!(!home.path().join(".bashrc.lock").exists());

        input.force = Some(true);
        let output = run(&ctx, &input).unwrap();
        assert!(!output.created && !output.key_kept);
        let env = WorkerEnv::read(&bashrc).unwrap();
        assert!(env.extra.is_empty(), "the foreign lines are not merged");
        assert_eq!(
            env.device_key.unwrap().fingerprint(),
            output.key_fingerprint
        );
        // Now it is a worker env file: rewriting it needs no force and keeps its key.
        input.force = None;
        assert!(run(&ctx, &input).unwrap().key_kept);
    }

    /// A legacy file's token is kept beside the new device key (registration needs it once);
    /// no token is generated for it.
    #[test]
    fn a_legacy_token_is_kept_beside_a_new_device_key() {
        let home = tempfile::tempdir().unwrap();
        let url = url::Url::parse("http://127.0.0.1:9").unwrap();
        let ctx = Context::for_home(home.path(), &url).unwrap();
        let path = ctx.dirs().env_file();
        let mut legacy = WorkerEnv::default();
        legacy.ensure_token();
        let token = legacy.token.clone().unwrap();
        legacy.write(&path, &ctx.allowed).unwrap();
        let input = Input {
            wallet: Some(WALLET.to_owned()),
            worker_id: Some("gpu-1".to_owned()),
            ..Input::default()
        };
        let output = run(&ctx, &input).unwrap();
        assert!(!output.key_kept && output.legacy_token);
        let env = WorkerEnv::read(&path).unwrap();
        assert!(env.token.unwrap().ct_eq(&token));
        assert_eq!(
            env.device_key.unwrap().fingerprint(),
            output.key_fingerprint
        );
    }

    /// Another orchestrator than the file's needs new_orchestrator, and the result names the
    /// old one; a plain http:// orchestrator off this machine needs allow_insecure_http.
    #[test]
    fn orchestrator_changes_are_deliberate_and_remote_http_is_refused() {
        let home = tempfile::tempdir().unwrap();
        let url = url::Url::parse("http://127.0.0.1:9").unwrap();
        let ctx = Context::for_home(home.path(), &url).unwrap();
        let mut input = Input {
            wallet: Some(WALLET.to_owned()),
            worker_id: Some("gpu-1".to_owned()),
            orchestrator_url: Some("http://127.0.0.1:8787".to_owned()),
            ..Input::default()
        };
        let first = run(&ctx, &input).unwrap();
        assert_eq!(first.previous_orchestrator_url, None);
        // The same URL again (with a trailing slash): no change.
        input.orchestrator_url = Some("http://127.0.0.1:8787/".to_owned());
        assert_eq!(run(&ctx, &input).unwrap().previous_orchestrator_url, None);
        input.orchestrator_url = Some("https://orch.example".to_owned());
        let refused = run(&ctx, &input).unwrap_err();
        assert_eq!(refused.code, ErrorCode::InvalidArgument);
        assert!(
            refused.message.contains("http://127.0.0.1:8787"),
            "{refused:?}"
        );
        assert!(
            refused.message.contains("https://orch.example"),
            "{refused:?}"
        );
        assert!(refused.fix.unwrap().contains("new_orchestrator"));
        let env = WorkerEnv::read(&ctx.dirs().env_file()).unwrap();
        assert_eq!(
            env.orchestrator_url.unwrap().as_str(),
            "http://127.0.0.1:8787/"
        );
        input.new_orchestrator = Some(true);
        let moved = run(&ctx, &input).unwrap();
        assert_eq!(
            moved.previous_orchestrator_url.as_deref(),
            Some("http://127.0.0.1:8787")
        );
        assert_eq!(
            moved.key_fingerprint, first.key_fingerprint,
            "the key is kept"
        );

        for remote in ["http://orch.example", "http://10.0.0.2:8787"] {
            input.orchestrator_url = Some(remote.to_owned());
            let refused = run(&ctx, &input).unwrap_err();
            assert_eq!(refused.code, ErrorCode::InvalidArgument, "{remote}");
            assert!(refused.message.contains("in clear"), "{refused:?}");
            assert!(refused.fix.unwrap().contains("allow_insecure_http"));
        }
        input.allow_insecure_http = Some(true);
        assert!(run(&ctx, &input).is_ok());
        for local in [
            "http://localhost:8787",
            "http://127.0.0.2:1",
            "http://[::1]:8787",
        ] {
            assert!(
                orchestrator_url("orchestrator_url", local, None).is_ok(),
                "{local}"
            );
        }
        let fallback = Input {
            fallback_orchestrator_urls: Some(vec!["http://orch-b.example".to_owned()]),
            ..Input::default()
        };
        assert_eq!(
            run(&ctx, &fallback).unwrap_err().code,
            ErrorCode::InvalidArgument
        );
    }
}
