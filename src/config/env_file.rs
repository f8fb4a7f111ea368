//! `worker.env` (docs/FILES.md, "worker.env"): the dotenv file `basis worker`, systemd
//! `EnvironmentFile=` and `docker --env-file` all read. It holds the worker's device key (and,
//! on a host not yet moved to one, its legacy token), so it is written 0600, atomically, never through a symlink and only inside the allowed directories (see
//! `env_io`).
//!
//! Written form (docs/FILES.md, "Format"): a header comment, then plain `KEY=value` lines (known
//! keys in [`KNOWN_KEYS`] order, then unknown keys in their original order). Known values never
//! need quotes; unknown values are quoted only when they must be. Reading also accepts
//! `export KEY=...`, comments, blank lines and single- or double-quoted values on one line.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::domain::{
    DeviceKey, Runtime, TokenFingerprint, TokenSha256, WalletAddress, WalletError, WorkerId,
    WorkerToken,
};

use super::dotenv::{is_key, push_line, quote_if_needed, split_line};
use super::error::EnvFileError;
use super::settings::parse_http_url;

pub const KEY_WORKER_ID: &str = "BASIS_WORKER_ID";
pub const KEY_WALLET: &str = "BASIS_WORKER_WALLET";
pub const KEY_RUNTIME: &str = "BASIS_WORKER_RUNTIME";
pub const KEY_MODELS: &str = "BASIS_WORKER_MODELS";
pub const KEY_OLLAMA_MODEL: &str = "BASIS_OLLAMA_MODEL";
pub const KEY_OLLAMA_URL: &str = "OLLAMA_URL";
pub const KEY_VLLM_URL: &str = "VLLM_URL";
pub const KEY_ORCHESTRATOR_URL: &str = "BASIS_ORCHESTRATOR_URL";
/// The legacy worker token: kept only until the worker has moved to its device key (the
/// first registration with the key proves it once, then removes it).
pub const KEY_TOKEN: &str = "BASIS_WORKER_TOKEN";
/// The worker's Ed25519 device key (`basis_dk_` + 43 base64url): its one secret, generated on
/// this host; only its public key and signatures leave it (docs/SECURITY.md, "Identity:
/// worker id, wallet, device key").
pub const KEY_DEVICE_KEY: &str = "BASIS_DEVICE_KEY";
/// The key a rotation (`basis rotate-key`) is moving to, written before the orchestrator is
/// asked so a crash never loses it; promoted to [`KEY_DEVICE_KEY`] once the orchestrator holds it.
pub const KEY_DEVICE_KEY_NEXT: &str = "BASIS_DEVICE_KEY_NEXT";
/// The evaluator key an operator gives an Evaluator Agent's host (docs/TASK_MARKET.md). A secret
/// like the token: never a tool argument, never shown (only its fingerprint).
pub const KEY_EVALUATOR_KEY: &str = "BASIS_EVALUATOR_KEY";
/// `true` when the worker registers as multi-task: it may hold several task claims at once.
pub const KEY_MULTI_TASK: &str = "BASIS_WORKER_MULTI_TASK";
/// Other orchestrators (replicas of the same network) the worker connects to, in order, when
/// `BASIS_ORCHESTRATOR_URL` cannot be reached or drops it: comma-separated URLs.
pub const KEY_ORCHESTRATOR_FALLBACK_URLS: &str = "BASIS_ORCHESTRATOR_FALLBACK_URLS";
/// Jobs the worker runs at once (1 to [`MAX_CAPACITY`]); absent: its runtime's default.
pub const KEY_CAPACITY: &str = "BASIS_WORKER_CAPACITY";
/// The most jobs a worker may run at once.
pub const MAX_CAPACITY: u32 = 256;
/// Free-form labels the worker registers with, comma-separated (e.g. `region=eu,tier:gold`):
/// shown in the registry, matched by tasks requiring `label:<label>` and by gateway requests
/// asking for one.
pub const KEY_LABELS: &str = "BASIS_WORKER_LABELS";

/// The longest evaluator key accepted (the orchestrator's are `basis_evaluator_` + 64 hex).
const MAX_EVALUATOR_KEY_LEN: usize = 256;

/// The known keys, in the order docs/FILES.md ("Keys") lists them and [`WorkerEnv::render`]
/// writes them (keys added later, last).
pub const KNOWN_KEYS: [&str; 16] = [
    KEY_WORKER_ID,
    KEY_WALLET,
    KEY_RUNTIME,
    KEY_MODELS,
    KEY_OLLAMA_MODEL,
    KEY_OLLAMA_URL,
    KEY_VLLM_URL,
    KEY_ORCHESTRATOR_URL,
    KEY_TOKEN,
    KEY_EVALUATOR_KEY,
    KEY_MULTI_TASK,
    KEY_ORCHESTRATOR_FALLBACK_URLS,
    KEY_CAPACITY,
    KEY_LABELS,
    KEY_DEVICE_KEY,
    KEY_DEVICE_KEY_NEXT,
];

pub const DEFAULT_OLLAMA_URL: &str = "http://127.0.0.1:11434";
pub const DEFAULT_VLLM_URL: &str = "http://127.0.0.1:8000";

/// How the header basis writes begins: a file that begins so is a worker env file.
const HEADER_MARK: &str = "# basis worker environment, written by basis.";

const HEADER: &str = "\
# basis worker environment, written by basis. Read by `basis worker`, systemd
# EnvironmentFile= and `docker --env-file`.
# SECRET: this file holds BASIS_DEVICE_KEY, the worker's private key, which never leaves this
# host. Keep it mode 0600; never commit or share it.
";

/// The contents of `worker.env`. Debug redacts the keys, the token and unknown values; there
/// is deliberately no `Serialize`.
#[derive(Clone, Default)]
pub struct WorkerEnv {
    pub worker_id: Option<WorkerId>,
    pub wallet: Option<WalletAddress>,
    pub runtime: Option<Runtime>,
    pub models: Vec<String>,
    pub ollama_model: Option<String>,
    pub ollama_url: Option<Url>,
    pub vllm_url: Option<Url>,
    pub orchestrator_url: Option<Url>,
    /// The legacy token (see [`KEY_TOKEN`]).
    pub token: Option<WorkerToken>,
    /// The device key (see [`KEY_DEVICE_KEY`]). Secret.
    pub device_key: Option<DeviceKey>,
    /// The key a rotation is moving to (see [`KEY_DEVICE_KEY_NEXT`]). Secret.
    pub device_key_next: Option<DeviceKey>,
    /// The operator's evaluator key, on an Evaluator Agent's host. Secret.
    pub evaluator_key: Option<SecretString>,
    /// Register as multi-task (several claims at once); absent: no.
    pub multi_task: Option<bool>,
    /// Replicas to fail over to, in order, after `orchestrator_url`.
    pub fallback_urls: Vec<Url>,
    /// Jobs run at once; absent: the runtime's default.
    pub capacity: Option<u32>,
    /// Labels it registers with (`domain::check_label`'s grammar).
    pub labels: Vec<String>,
    /// Unknown keys and their values, in file order, kept on rewrite.
    pub extra: Vec<(String, String)>,
}

impl fmt::Debug for WorkerEnv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let token = self
            .token
            .as_ref()
            .map(|t| format!("[REDACTED] fingerprint {}", t.fingerprint()));
        let extra_keys: Vec<&str> = self.extra.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("WorkerEnv")
            .field("worker_id", &self.worker_id)
            .field("wallet", &self.wallet)
            .field("runtime", &self.runtime)
            .field("models", &self.models)
            .field("labels", &self.labels)
            .field("ollama_model", &self.ollama_model)
            .field("ollama_url", &self.ollama_url.as_ref().map(Url::as_str))
            .field("vllm_url", &self.vllm_url.as_ref().map(Url::as_str))
            .field(
                "orchestrator_url",
                &self.orchestrator_url.as_ref().map(Url::as_str),
            )
            .field(
                "fallback_urls",
                &self
                    .fallback_urls
                    .iter()
                    .map(Url::as_str)
                    .collect::<Vec<_>>(),
            )
            .field("token", &token)
            .field("device_key", &self.device_key)
            .field("device_key_next", &self.device_key_next)
            .field(
                "evaluator_key",
                &self
                    .evaluator_key
                    .as_ref()
                    .map(|k| format!("[REDACTED] fingerprint {}", secret_fingerprint(k))),
            )
            .field("multi_task", &self.multi_task)
            .field("capacity", &self.capacity)
            .field("extra_keys", &extra_keys)
            .finish()
    }
}

/// `http://h:1/` → `http://h:1`: the form users write and clients append paths to.
fn url_text(url: &Url) -> &str {
    let s = url.as_str();
    if url.path() == "/" && url.query().is_none() && url.fragment().is_none() {
        s.strip_suffix('/').unwrap_or(s)
    } else {
        s
    }
}

fn wallet_rule(err: &WalletError) -> String {
    match err {
        // Its message would repeat the (checksummed) value.
        WalletError::BadChecksum { .. } => "the mixed-case address does not match its EIP-55 \
            checksum, so it may contain a typo; copy the address again from your wallet"
            .to_owned(),
        other => other.to_string(),
    }
}

/// First 8 hex of the sha256 of a secret: safe to show, enough to tell secrets apart.
pub fn secret_fingerprint(secret: &SecretString) -> TokenFingerprint {
    TokenFingerprint::of(&TokenSha256::sha256(secret.expose_secret().as_bytes()))
}

/// Whether `value` can be an evaluator key: printable ASCII without spaces or quotes, at most
/// [`MAX_EVALUATOR_KEY_LEN`] bytes. The reason never contains the value.
fn evaluator_key(value: String) -> Result<Option<SecretString>, String> {
    if value.is_empty() {
        return Ok(None);
    }
    let plain = value.len() <= MAX_EVALUATOR_KEY_LEN
        && value
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'\\' | b'`'));
    let key = SecretString::from(value);
    if plain {
        Ok(Some(key))
    } else {
        Err(format!(
            "not a usable evaluator key (printable characters without spaces or quotes, at most \
             {MAX_EVALUATOR_KEY_LEN}; the value is not shown): paste the key the operator's \
             `basis orchestrator keys create --role evaluator` printed"
        ))
    }
}

/// A device key's text form, or none when empty. The reason never contains the value.
fn device_key(value: String) -> Result<Option<DeviceKey>, String> {
    let value = zeroize::Zeroizing::new(value);
    if value.is_empty() {
        return Ok(None);
    }
    DeviceKey::parse(&value).map(Some).map_err(|_| {
        "not a valid device key (basis_dk_ followed by 43 base64url characters; the value is \
         not shown); if the key is lost, delete the line, run `basis write-env` to generate a \
         new one, and have the orchestrator's operator re-register the worker with the admin key"
            .to_owned()
    })
}

fn non_empty(value: String) -> Option<String> {
    Some(value).filter(|v| !v.is_empty())
}

impl WorkerEnv {
    /// Whether `text` is a worker env file, which basis may rewrite, rather than some other
    /// file at the same path (`~/.bashrc`), which it must not. The rule: the text is blank; or
    /// it begins with the header basis writes; or every line that is not blank or a `#`
    /// comment is a `KEY=value` assignment (optionally `export`ed) of a worker key, one of
    /// [`KNOWN_KEYS`] or a `BASIS_*` name, and there is at least one.
    pub fn is_worker_env_text(text: &str) -> bool {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        if text.trim().is_empty() || text.starts_with(HEADER_MARK) {
            return true;
        }
        let mut assignments = 0_usize;
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            match split_line(line) {
                Ok((key, _)) if KNOWN_KEYS.contains(&key) || key.starts_with("BASIS_") => {
                    assignments += 1;
                }
                _ => return false,
            }
        }
        assignments > 0
    }

    /// Parses dotenv text. Errors carry the 1-based line and a reason that never contains a
    /// value. Duplicate keys are errors.
    pub fn parse(text: &str) -> Result<WorkerEnv, EnvFileError> {
        let mut env = WorkerEnv::default();
        let mut seen: Vec<(String, usize)> = Vec::new();
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        for (index, raw) in text.split('\n').enumerate() {
            let line = index + 1;
            let err = |reason: String| EnvFileError::Parse {
                path: None,
                line,
                reason,
            };
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let (key, value) = split_line(trimmed).map_err(|r| err(r.to_owned()))?;
            if let Some((_, first)) = seen.iter().find(|(k, _)| k == key) {
                return Err(err(format!("{key} is set twice (first on line {first})")));
            }
            seen.push((key.to_owned(), line));
            env.set(key, value)
                .map_err(|r| err(format!("{key}: {r}")))?;
        }
        Ok(env)
    }

    /// Sets one key from its text value (empty means unset for known keys).
    fn set(&mut self, key: &str, value: String) -> Result<(), String> {
        let url = |v: String| non_empty(v).map(|v| parse_http_url(&v)).transpose();
        match key {
            KEY_WORKER_ID => {
                self.worker_id = non_empty(value)
                    .map(|v| WorkerId::parse(&v))
                    .transpose()
                    .map_err(|e| e.to_string())?;
            }
            KEY_WALLET => {
                self.wallet = non_empty(value)
                    .map(|v| WalletAddress::parse(&v))
                    .transpose()
                    .map_err(|e| wallet_rule(&e))?;
            }
            KEY_RUNTIME => {
                self.runtime = non_empty(value)
                    .map(|v| v.parse::<Runtime>())
                    .transpose()
                    .map_err(|e| e.to_string())?;
            }
            KEY_MODELS => {
                self.models = value
                    .split(',')
                    .map(str::trim)
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned)
                    .collect();
            }
            KEY_LABELS => {
                self.labels = crate::domain::parse_labels(&value).map_err(|e| e.to_string())?;
            }
            KEY_OLLAMA_MODEL => self.ollama_model = non_empty(value),
            KEY_OLLAMA_URL => self.ollama_url = url(value)?,
            KEY_VLLM_URL => self.vllm_url = url(value)?,
            KEY_ORCHESTRATOR_URL => self.orchestrator_url = url(value)?,
            KEY_ORCHESTRATOR_FALLBACK_URLS => {
                self.fallback_urls = value
                    .split(',')
                    .map(str::trim)
                    .filter(|u| !u.is_empty())
                    .map(parse_http_url)
                    .collect::<Result<_, _>>()?;
            }
            KEY_TOKEN => {
                self.token = non_empty(value)
                    .map(|v| WorkerToken::parse(&v))
                    .transpose()
                    .map_err(|_| {
                        "not a valid worker token (64 lowercase hex characters; the value is \
                         not shown); delete the line and run `basis write-env` to generate one"
                            .to_owned()
                    })?;
            }
            KEY_EVALUATOR_KEY => self.evaluator_key = evaluator_key(value)?,
            KEY_DEVICE_KEY => self.device_key = device_key(value)?,
            KEY_DEVICE_KEY_NEXT => self.device_key_next = device_key(value)?,
            KEY_CAPACITY => {
                self.capacity = match non_empty(value) {
                    None => None,
                    Some(v) => Some(
                        v.parse::<u32>()
                            .ok()
                            .filter(|c| (1..=MAX_CAPACITY).contains(c))
                            .ok_or_else(|| {
                                format!("must be a whole number from 1 to {MAX_CAPACITY}")
                            })?,
                    ),
                };
            }
            KEY_MULTI_TASK => {
                self.multi_task = match value.as_str() {
                    "" => None,
                    "true" => Some(true),
                    "false" => Some(false),
                    _ => return Err("must be true or false".to_owned()),
                };
            }
            _ => self.extra.push((key.to_owned(), value)),
        }
        Ok(())
    }

    /// The known keys present, as `(key, value)` pairs in [`KNOWN_KEYS`] order. The secrets' values
    /// are produced by `shown` (the secret's fingerprint and its text), so callers decide
    /// whether they are exposed.
    fn known_pairs(
        &self,
        shown: impl Fn(&dyn fmt::Display, &str) -> String,
    ) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        let mut push = |key, value: Option<String>| {
            if let Some(v) = value {
                pairs.push((key, v));
            }
        };
        push(
            KEY_WORKER_ID,
            self.worker_id.as_ref().map(|v| v.as_str().to_owned()),
        );
        push(
            KEY_WALLET,
            self.wallet.as_ref().map(WalletAddress::checksummed),
        );
        push(KEY_RUNTIME, self.runtime.map(|r| r.as_str().to_owned()));
        push(
            KEY_MODELS,
            Some(self.models.join(",")).filter(|m| !m.is_empty()),
        );
        push(KEY_OLLAMA_MODEL, self.ollama_model.clone());
        push(
            KEY_OLLAMA_URL,
            self.ollama_url.as_ref().map(|u| url_text(u).to_owned()),
        );
        push(
            KEY_VLLM_URL,
            self.vllm_url.as_ref().map(|u| url_text(u).to_owned()),
        );
        push(
            KEY_ORCHESTRATOR_URL,
            self.orchestrator_url
                .as_ref()
                .map(|u| url_text(u).to_owned()),
        );
        push(
            KEY_TOKEN,
            self.token
                .as_ref()
                .map(|t| shown(&t.fingerprint(), t.expose_secret())),
        );
        push(
            KEY_EVALUATOR_KEY,
            self.evaluator_key
                .as_ref()
                .map(|k| shown(&secret_fingerprint(k), k.expose_secret())),
        );
        push(KEY_MULTI_TASK, self.multi_task.map(|m| m.to_string()));
        push(
            KEY_ORCHESTRATOR_FALLBACK_URLS,
            Some(
                self.fallback_urls
                    .iter()
                    .map(|u| url_text(u).to_owned())
                    .collect::<Vec<_>>()
                    .join(","),
            )
            .filter(|v| !v.is_empty()),
        );
        push(KEY_CAPACITY, self.capacity.map(|c| c.to_string()));
        push(
            KEY_LABELS,
            Some(self.labels.join(",")).filter(|v| !v.is_empty()),
        );
        let key = |k: &DeviceKey| shown(&k.fingerprint(), &k.expose_secret());
        push(KEY_DEVICE_KEY, self.device_key.as_ref().map(key));
        push(KEY_DEVICE_KEY_NEXT, self.device_key_next.as_ref().map(key));
        pairs
    }

    /// The keys [`render`](Self::render) writes, in order.
    pub fn keys(&self) -> Vec<String> {
        self.known_pairs(|_, _| String::new())
            .into_iter()
            .map(|(k, _)| k.to_owned())
            .chain(self.extra.iter().map(|(k, _)| k.clone()))
            .collect()
    }

    /// Refuses values the file cannot hold as plain `KEY=value` lines: in known free-text
    /// values (models, Ollama model) newlines, quotes, backslashes, a leading `#` and
    /// surrounding whitespace; in unknown keys, bad names, known names, and line breaks.
    pub fn validate(&self) -> Result<(), EnvFileError> {
        let invalid = |key: &str, reason: &str| EnvFileError::InvalidValue {
            key: key.to_owned(),
            reason: reason.to_owned(),
        };
        let plain = |key: &str, v: &str| {
            if v.is_empty() {
                Err(invalid(key, "the value is empty"))
            } else if v
                .chars()
                .any(|c| c.is_control() || matches!(c, '"' | '\'' | '\\' | '`'))
            {
                Err(invalid(
                    key,
                    "the value must not contain quotes, backslashes or control characters such as a newline",
                ))
            } else if v.starts_with('#') {
                Err(invalid(key, "the value must not start with '#'"))
            } else if v.trim() != v {
                Err(invalid(
                    key,
                    "the value must not start or end with whitespace",
                ))
            } else {
                Ok(())
            }
        };
        for model in &self.models {
            plain(KEY_MODELS, model)?;
            if model.contains(',') || model.contains(char::is_whitespace) {
                return Err(invalid(
                    KEY_MODELS,
                    "a model name must not contain ',' or spaces",
                ));
            }
        }
        if let Some(model) = &self.ollama_model {
            plain(KEY_OLLAMA_MODEL, model)?;
        }
        for (key, value) in &self.extra {
            if !is_key(key) {
                return Err(invalid(
                    "(unknown key)",
                    "a key must be letters, digits and '_', not starting with a digit",
                ));
            }
            if KNOWN_KEYS.contains(&key.as_str()) {
                return Err(invalid(key, "a known key cannot also be an extra key"));
            }
            if value.contains(['\n', '\r', '\0']) {
                return Err(invalid(key, "the value must fit on one line"));
            }
        }
        Ok(())
    }

    /// The file's text: header, known keys in [`KNOWN_KEYS`] order, then unknown keys in their
    /// order. Call [`validate`](Self::validate) first (as [`write`](Self::write) does).
    pub fn render(&self) -> String {
        let mut out = String::from(HEADER);
        for (key, value) in self.known_pairs(|_, secret| secret.to_owned()) {
            push_line(&mut out, key, &value);
        }
        for (key, value) in &self.extra {
            push_line(&mut out, key, &quote_if_needed(value));
        }
        out
    }

    /// For showing to people and agents: the device keys, the token and the evaluator key as
    /// their fingerprints, unknown values hidden.
    pub fn masked(&self) -> String {
        let mut out = String::new();
        let pairs = self.known_pairs(|fp, _| format!("<redacted, fingerprint {fp}>"));
        for (key, value) in pairs {
            push_line(&mut out, key, &value);
        }
        for (key, _) in &self.extra {
            push_line(&mut out, key, "<not shown>");
        }
        out
    }

    /// Applies `update` on top: its present values replace these, its models replace these
    /// when non-empty, the secrets (device keys, token, evaluator key) are kept unless `update`
    /// has them, and unknown keys are kept
    /// (those `update` names are replaced in place, new ones appended).
    pub fn merge(&mut self, update: WorkerEnv) {
        fn take<T>(slot: &mut Option<T>, new: Option<T>) {
            if new.is_some() {
                *slot = new;
            }
        }
        take(&mut self.worker_id, update.worker_id);
        take(&mut self.wallet, update.wallet);
        take(&mut self.runtime, update.runtime);
        if !update.models.is_empty() {
            self.models = update.models;
        }
        take(&mut self.ollama_model, update.ollama_model);
        take(&mut self.ollama_url, update.ollama_url);
        take(&mut self.vllm_url, update.vllm_url);
        take(&mut self.orchestrator_url, update.orchestrator_url);
        take(&mut self.token, update.token);
        take(&mut self.device_key, update.device_key);
        take(&mut self.device_key_next, update.device_key_next);
        take(&mut self.evaluator_key, update.evaluator_key);
        take(&mut self.multi_task, update.multi_task);
        take(&mut self.capacity, update.capacity);
        if !update.fallback_urls.is_empty() {
            self.fallback_urls = update.fallback_urls;
        }
        if !update.labels.is_empty() {
            self.labels = update.labels;
        }
        for (key, value) in update.extra {
            match self.extra.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => self.extra.push((key, value)),
            }
        }
    }

    /// Generates a token when there is none. Returns whether it did. Only legacy setups (and
    /// tests of the legacy path) still want one: new env files get a device key instead
    /// ([`ensure_device_key`](Self::ensure_device_key)).
    pub fn ensure_token(&mut self) -> bool {
        if self.token.is_some() {
            return false;
        }
        self.token = Some(WorkerToken::generate());
        true
    }

    /// Generates a device key (from the OS's randomness) when there is none. Returns whether
    /// it did. An existing key is never replaced: only a rotation changes it.
    pub fn ensure_device_key(&mut self) -> bool {
        if self.device_key.is_some() {
            return false;
        }
        self.device_key = Some(DeviceKey::generate());
        true
    }

    /// `OLLAMA_URL`, or its default.
    pub fn effective_ollama_url(&self) -> Url {
        self.ollama_url
            .clone()
            .or_else(|| Url::parse(DEFAULT_OLLAMA_URL).ok())
            .unwrap_or_else(|| unreachable!("the default Ollama URL parses"))
    }

    /// `VLLM_URL`, or its default.
    pub fn effective_vllm_url(&self) -> Url {
        self.vllm_url
            .clone()
            .or_else(|| Url::parse(DEFAULT_VLLM_URL).ok())
            .unwrap_or_else(|| unreachable!("the default vLLM URL parses"))
    }
}
