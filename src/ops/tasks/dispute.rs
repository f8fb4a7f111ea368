//! `dispute_output`: this worker disputes the rejection of its submission, with a reason, before
//! the dispute window closes; the orchestrator's operator then resolves it.

use schemars::JsonSchema;
use serde::Deserialize;

use super::submission::{self, checked};
use super::{Worker, host_secrets, submission_id};
use crate::domain::{ErrorCode, Problem};
use crate::guard::{GuardText, Guarded, HostSecrets, SecretRefused, check_free_text};
use crate::ops::Context;
use crate::wire::{DisputeRequest, MAX_DISPUTE_REASON_LEN};

#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// The rejected submission (sub- + 32 hex).
    pub submission_id: String,
    /// Why the rejection is wrong, for the operator: which criteria the output meets and how.
    pub reason: String,
    /// The env file naming this worker (default: worker.env in the config directory).
    #[serde(default)]
    pub env_file: Option<String>,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.submission_id.guard("submission_id")?;
        self.reason.guard_free_text("reason")?;
        self.env_file.guard("env_file")
    }
}

/// The submission, now disputed.
pub type Output = submission::Output;

/// Raises the dispute.
pub async fn run(ctx: &Context, input: &Input) -> Result<Output, Problem> {
    input.check_secrets()?;
    let id = submission_id(&input.submission_id)?;
    let reason = input.reason.trim();
    if reason.is_empty() || reason.len() > MAX_DISPUTE_REASON_LEN {
        return Err(Problem::new(
            ErrorCode::InvalidArgument,
            format!("reason must be 1 to {MAX_DISPUTE_REASON_LEN} bytes"),
        )
        .with_fix("say briefly which criteria the output meets and why the rejection is wrong"));
    }
    let worker = Worker::load(ctx, input.env_file.as_deref())?;
    let secrets = host_secrets(&worker.env);
    let known: Vec<&[u8]> = secrets.iter().map(|s| s.as_slice()).collect();
    let wallets: Vec<_> = worker.env.wallet.into_iter().collect();
    let host = HostSecrets {
        known: &known,
        wallets: &wallets,
        token_hashes: &[],
    };
    check_free_text("reason", reason, &host)?;
    let request = DisputeRequest {
        worker_id: worker.id.clone(),
        reason: reason.to_owned(),
    };
    let disputed = worker.client.dispute(&id, &request, worker.auth()).await?;
    Ok(checked(disputed))
}
