//! `Problem`: the failure vocabulary every part shows — a stable code, a message, and how to fix
//! it. MCP tools return it as an `isError` result, the CLI prints it and maps the code to an
//! exit status, the orchestrator API wraps it as `{"error": …}`.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Declares the stable codes with their wire names and CLI exit statuses in one table.
macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal, exit $exit:literal; )*) => {
        /// Stable error codes. Agents branch on these; `schemas/errors.json` lists them.
        /// Add new codes at the end of their group; never rename one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
        pub enum ErrorCode {
            $( $(#[$doc])* #[serde(rename = $name)] $variant, )*
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),*];

            /// The code's wire name, e.g. `SECRET_REFUSED`.
            pub fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name,)* }
            }

            /// The process exit status the CLI uses: 2 for input the user must change,
            /// 1 for failures of the environment, 3 for conflicts with remote state.
            pub fn exit_code(self) -> u8 {
                match self { $(Self::$variant => $exit,)* }
            }
        }
    };
}

error_codes! {
    // input
    /// A value looked like a private key, mnemonic, keystore, PEM key or API key: refused, not echoed.
    SecretRefused = "SECRET_REFUSED", exit 2;
    /// A private key was given where a public wallet address belongs.
    PrivateKeyRefused = "PRIVATE_KEY_REFUSED", exit 2;
    /// The wallet address is malformed.
    InvalidWallet = "INVALID_WALLET", exit 2;
    /// A mixed-case wallet address fails its EIP-55 checksum.
    WalletChecksumMismatch = "WALLET_CHECKSUM_MISMATCH", exit 2;
    /// The zero address cannot receive rewards.
    ZeroWallet = "ZERO_WALLET", exit 2;
    /// The worker id breaks `^[a-z0-9][a-z0-9-]{1,62}$`.
    InvalidWorkerId = "INVALID_WORKER_ID", exit 2;
    /// The runtime is not echo, ollama or vllm.
    UnknownRuntime = "UNKNOWN_RUNTIME", exit 2;
    /// Some other argument is invalid; the message says which and why.
    InvalidArgument = "INVALID_ARGUMENT", exit 2;
    // files
    /// The env file path is outside the allowed directories.
    EnvPathNotAllowed = "ENV_PATH_NOT_ALLOWED", exit 2;
    /// The env file path is (or passes through) a symbolic link.
    EnvPathSymlink = "ENV_PATH_SYMLINK", exit 2;
    /// The env file could not be parsed; the message has the line number.
    EnvParseError = "ENV_PARSE_ERROR", exit 2;
    /// The env file lacks a key this action needs.
    EnvIncomplete = "ENV_INCOMPLETE", exit 2;
    /// basis.toml (or an environment override) is invalid.
    ConfigInvalid = "CONFIG_INVALID", exit 2;
    /// A file could not be read or written.
    IoError = "IO_ERROR", exit 1;
    /// An MCP client's config file cannot be parsed, or is not the shape its client documents;
    /// it was left as it was.
    McpConfigInvalid = "MCP_CONFIG_INVALID", exit 2;
    /// The MCP client's config already has a different `basis` server; replacing it needs
    /// `--force`.
    McpConfigConflict = "MCP_CONFIG_CONFLICT", exit 3;
    /// submit_output's output_file is outside basis's work directory (and allowed_env_dirs),
    /// is a credentials, key or env file, or is not a regular file of its own: not read.
    OutputFileNotAllowed = "OUTPUT_FILE_NOT_ALLOWED", exit 2;
    /// The env file is readable or writable by other users, or belongs to another user: not
    /// used until its mode (`chmod 600`) or owner is fixed.
    EnvFileInsecure = "ENV_FILE_INSECURE", exit 2;
    /// The env file path names an existing file that is not a worker env file (not basis's
    /// header, not only `BASIS_*` settings): not replaced unless write_env is given `force`.
    EnvFileForeign = "ENV_FILE_FOREIGN", exit 2;
    // internal
    /// A bug: please report it.
    Internal = "INTERNAL", exit 1;
    // orchestrator
    /// The worker id is registered with another token: re-registering needs the current token
    /// (`Authorization: Bearer`) or the operator's admin key.
    WorkerIdTaken = "WORKER_ID_TAKEN", exit 3;
    /// No worker with this id is registered.
    WorkerNotFound = "WORKER_NOT_FOUND", exit 3;
    /// Registration needs an enrollment key from the operator, and none was sent.
    RegistrationGated = "REGISTRATION_GATED", exit 2;
    /// The enrollment key sent is not the one the operator configured.
    EnrollmentKeyInvalid = "ENROLLMENT_KEY_INVALID", exit 2;
    /// The orchestrator does not accept new registrations.
    RegistrationClosed = "REGISTRATION_CLOSED", exit 3;
    /// Too many requests (or failed authentications) from this address; retry after the delay.
    RateLimited = "RATE_LIMITED", exit 1;
    /// The request body is larger than the orchestrator accepts.
    PayloadTooLarge = "PAYLOAD_TOO_LARGE", exit 2;
    /// The request body is not valid JSON, or not the expected shape.
    InvalidJson = "INVALID_JSON", exit 2;
    /// No such route or method on the orchestrator.
    NotFound = "NOT_FOUND", exit 2;
    /// The orchestrator cannot be reached (connection refused, DNS, TLS, connect timeout).
    OrchestratorUnreachable = "ORCHESTRATOR_UNREACHABLE", exit 1;
    /// The orchestrator accepted the connection but did not answer in time.
    OrchestratorTimeout = "ORCHESTRATOR_TIMEOUT", exit 1;
    /// The orchestrator failed (5xx) or answered with an error this basis does not know.
    OrchestratorError = "ORCHESTRATOR_ERROR", exit 1;
    /// The orchestrator's answer could not be understood.
    BadResponse = "BAD_RESPONSE", exit 1;
    // supervisor
    /// A supervisor (and its worker) is already running on this host; the message has its pid.
    WorkerAlreadyRunning = "WORKER_ALREADY_RUNNING", exit 3;
    /// The supervisor could not be started or did not answer in time; the message has its
    /// last log lines.
    SupervisorStartFailed = "SUPERVISOR_START_FAILED", exit 1;
    /// The supervisor process is alive but its control socket does not answer.
    SupervisorUnreachable = "SUPERVISOR_UNREACHABLE", exit 1;
    // gateway
    /// The gateway needs a client key (`Authorization: Bearer <client key>`) and none was sent.
    ClientKeyRequired = "CLIENT_KEY_REQUIRED", exit 2;
    /// The key sent is not a client key of this orchestrator (it was not shown).
    ClientKeyInvalid = "CLIENT_KEY_INVALID", exit 2;
    /// The client key used its quota (requests per minute or tokens per UTC day); retry after
    /// Retry-After, or ask the operator for a higher limit (`keys set-limits`).
    QuotaExceeded = "QUOTA_EXCEEDED", exit 1;
    /// No API key has the id given (`key:` + hex of its sha256, as `keys list` shows).
    KeyNotFound = "KEY_NOT_FOUND", exit 3;
    /// The worker's capabilities (GPU, VRAM, labels, runtime, models) lack what the task
    /// requires; the message says what is missing.
    CapabilityMismatch = "CAPABILITY_MISMATCH", exit 3;
    /// The worker channel was opened without the worker's token, or with a wrong one.
    WorkerTokenInvalid = "WORKER_TOKEN_INVALID", exit 2;
    /// A worker request's signature (RFC 9421, by its device key) is missing, malformed, stale,
    /// replayed, made for another orchestrator, or not by the worker's registered key.
    WorkerSignatureInvalid = "WORKER_SIGNATURE_INVALID", exit 2;
    /// An admin revoked this worker's key: nothing it signs is accepted until an admin
    /// re-registers it.
    WorkerRevoked = "WORKER_REVOKED", exit 3;
    /// No online, ready worker with free capacity serves the model now; retry after Retry-After.
    NoWorkerAvailable = "NO_WORKER_AVAILABLE", exit 1;
    /// The worker running the job disconnected or stopped heartbeating before it finished.
    WorkerLost = "WORKER_LOST", exit 1;
    /// The worker's runtime does not serve the requested model.
    ModelNotFound = "MODEL_NOT_FOUND", exit 1;
    /// The worker's runtime is not reachable.
    RuntimeDown = "RUNTIME_DOWN", exit 1;
    /// The job did not finish before its deadline.
    JobTimeout = "JOB_TIMEOUT", exit 1;
    /// The worker's runtime answered something that is not a valid completion.
    RuntimeBadResponse = "RUNTIME_BAD_RESPONSE", exit 1;
    /// The job was cancelled on the worker.
    JobCancelled = "JOB_CANCELLED", exit 1;
    /// The worker could not take the job (draining or at capacity); retry.
    WorkerBusy = "WORKER_BUSY", exit 1;
    /// The orchestrator is shutting down and takes no new jobs or worker connections.
    OrchestratorDraining = "ORCHESTRATOR_DRAINING", exit 1;
    /// The orchestrator cannot reach its database right now (restarting, failing over);
    /// nothing was changed. Retry after Retry-After.
    StoreUnavailable = "STORE_UNAVAILABLE", exit 1;
    /// A replica-to-replica call was not signed with this deployment's replica secret, was
    /// meant for another replica, or was stale or replayed.
    ReplicaAuthFailed = "REPLICA_AUTH_FAILED", exit 2;
    /// The replica holding the worker's connection could not be reached, or its answer broke
    /// off; the job's outcome is unknown and no receipt claims success.
    ReplicaUnreachable = "REPLICA_UNREACHABLE", exit 1;
    /// No receipt with this id or hash is stored.
    ReceiptNotFound = "RECEIPT_NOT_FOUND", exit 3;
    /// The receipt's `receipt_hash` is not the keccak256 of its canonical JSON: it was changed
    /// after it was sealed (or is not a receipt).
    ReceiptInvalid = "RECEIPT_INVALID", exit 3;
    /// A receipt log does not verify; the message names the first line where it breaks.
    ReceiptLogInvalid = "RECEIPT_LOG_INVALID", exit 3;
    /// A settlement batch file does not verify: a proof, the total, the typed data or its
    /// digest (the message names which, and the leaf).
    BatchInvalid = "BATCH_INVALID", exit 3;
    // settlement (docs/SETTLEMENT.md)
    /// No settlement batch has this id.
    BatchNotFound = "BATCH_NOT_FOUND", exit 3;
    /// No pending credit made before the watermark pays anything: no batch was closed.
    NothingToSettle = "NOTHING_TO_SETTLE", exit 3;
    /// The settlement change conflicts with what is recorded (a watermark earlier than the
    /// newest batch's, a batch already paid, a transaction hash recorded for another batch);
    /// nothing changed.
    SettlementConflict = "SETTLEMENT_CONFLICT", exit 3;
    /// `[settlement]` (token, chain id, verifying contract) is not in orchestrator.toml, so no
    /// batch can be closed.
    SettlementNotConfigured = "SETTLEMENT_NOT_CONFIGURED", exit 3;
    // task market (docs/TASK_MARKET.md)
    /// No task with this id exists.
    TaskNotFound = "TASK_NOT_FOUND", exit 3;
    /// The task is not open for claims (claimed, submitted, settled, expired or abandoned).
    TaskNotOpen = "TASK_NOT_OPEN", exit 3;
    /// Another worker holds the claim on this task.
    AlreadyClaimed = "ALREADY_CLAIMED", exit 3;
    /// This worker already holds an active claim on another task (and is not multi-task).
    ActiveClaimExists = "ACTIVE_CLAIM_EXISTS", exit 3;
    /// This worker does not hold the claim on the task (never claimed, released, or lost it).
    NotClaimHolder = "NOT_CLAIM_HOLDER", exit 3;
    /// The claim's lease ran out before the output was submitted.
    ClaimExpired = "CLAIM_EXPIRED", exit 3;
    /// The output_hash sent is not keccak256 of the output's raw bytes.
    HashMismatch = "HASH_MISMATCH", exit 2;
    /// The output does not match the task's output_format (json must parse, bytes must be
    /// base64, ipfs_cid must be a CID).
    OutputFormatInvalid = "OUTPUT_FORMAT_INVALID", exit 2;
    /// The task was already submitted with a different output.
    AlreadySubmitted = "ALREADY_SUBMITTED", exit 3;
    /// No submission with this id exists.
    SubmissionNotFound = "SUBMISSION_NOT_FOUND", exit 3;
    /// The submission was already evaluated; an evaluation is final (dispute instead).
    AlreadyEvaluated = "ALREADY_EVALUATED", exit 3;
    /// Evaluating needs an evaluator key (`Authorization: Bearer <evaluator key>`).
    EvaluatorKeyRequired = "EVALUATOR_KEY_REQUIRED", exit 2;
    /// The key sent is not an evaluator key of this orchestrator (it was not shown).
    EvaluatorKeyInvalid = "EVALUATOR_KEY_INVALID", exit 2;
    /// Only a rejected submission can be disputed, and only once.
    NotDisputable = "NOT_DISPUTABLE", exit 3;
    /// The dispute window of this submission has closed.
    DisputeWindowClosed = "DISPUTE_WINDOW_CLOSED", exit 3;
    /// The submission is not under dispute, so there is nothing to resolve.
    NotDisputed = "NOT_DISPUTED", exit 3;
    /// The task has no inference input to execute: produce the output yourself, then submit it.
    TaskHasNoInput = "TASK_HAS_NO_INPUT", exit 2;
    /// The output fetched from the orchestrator does not hash to its recorded output_hash.
    OutputTampered = "OUTPUT_TAMPERED", exit 1;
    /// The admin key is missing or wrong for an operator-only action.
    AdminKeyRequired = "ADMIN_KEY_REQUIRED", exit 2;
    // service (`basis service`)
    /// Another unit (or launchd property list) is already installed where `basis service
    /// install` writes; `--force` replaces it.
    ServiceUnitExists = "SERVICE_UNIT_EXISTS", exit 3;
    /// `systemctl` or `launchctl` failed; the message has the command and its output.
    ServiceManagerFailed = "SERVICE_MANAGER_FAILED", exit 1;
    /// This OS has no service manager basis installs into (systemd on Linux, launchd on macOS).
    ServiceUnsupported = "SERVICE_UNSUPPORTED", exit 1;
    /// Reading a submission needs a credential (the poster's client key, an evaluator key, the
    /// submitting worker's token or the admin key) and none was sent.
    SubmissionCredentialRequired = "SUBMISSION_CREDENTIAL_REQUIRED", exit 2;
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An actionable failure. `message` never contains a secret: every error converted into a
/// `Problem` is built from typed errors whose texts were written not to echo input.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, thiserror::Error)]
#[error("{code}: {message}")]
pub struct Problem {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Problem {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            fix: None,
        }
    }

    #[must_use]
    pub fn with_fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_names_match_serde_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let json = serde_json::to_value(code).unwrap();
            assert_eq!(json, serde_json::Value::String(code.as_str().into()));
            assert!(seen.insert(code.as_str()));
        }
    }
}
