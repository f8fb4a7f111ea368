//! MCP prompts: `onboard_gpu_worker`, which walks an agent through onboarding this host as a
//! worker, with the rules it must keep. Its arguments are guarded like tool arguments: a
//! refused value is never quoted back into the prompt. `completion/complete` offers the runtimes.

use rmcp::ErrorData;
use rmcp::model::{
    CompleteRequestParams, CompleteResult, CompletionInfo, GetPromptResult, JsonObject,
    ListPromptsResult, Prompt, PromptArgument, PromptMessage, Role,
};
use serde_json::Value;

use crate::domain::Problem;
use crate::guard;

pub const ONBOARD: &str = "onboard_gpu_worker";

const RUNTIMES: [&str; 3] = ["echo", "ollama", "vllm"];

const RULES: &str = "\
Rules (they always hold):
- The wallet is a PUBLIC address (0x + 40 hex) that receives rewards. Never ask the user for, \
accept, paste or store a private key, a seed phrase (mnemonic), a keystore file or an API key: \
this system never needs one, and the tools refuse them (SECRET_REFUSED).
- The worker's device key is generated on this host and lives only in the 0600 env file; it \
never leaves the host (basis signs with it) and you never see it. Results show its fingerprint \
(SHA256:...) only. Do not try to read the env file directly: the resource basis://worker/env \
shows it with the key masked.
- When a tool returns isError, its text is a JSON object {code, message, fix}: apply the fix \
and retry; do not work around a refusal.";

/// Every prompt this server offers.
pub fn list() -> ListPromptsResult {
    let arg = |name: &str, description: &str| {
        PromptArgument::new(name)
            .with_description(description)
            .with_required(false)
    };
    let mut prompt = Prompt::new(
        ONBOARD,
        Some(
            "Onboard this machine as a GPU worker: check the hardware, write the env file, \
             register with the orchestrator, start the worker and verify it is online. Public \
             address only.",
        ),
        Some(vec![
            arg("runtime", "echo (no GPU, proves the path), ollama or vllm"),
            arg("worker_id", "the worker's name, e.g. gpu-box-1"),
            arg(
                "orchestrator_url",
                "the orchestrator to join, e.g. http://127.0.0.1:8787",
            ),
        ]),
    );
    prompt.title = Some("Onboard a GPU worker".to_owned());
    ListPromptsResult::with_all_items(vec![prompt])
}

/// The prompt `name` with `arguments` filled in.
pub fn get(name: &str, arguments: Option<&JsonObject>) -> Result<GetPromptResult, ErrorData> {
    if name != ONBOARD {
        return Err(ErrorData::invalid_params(
            format!(
                "no prompt {}; prompts/list shows the ones this server has",
                guard::redact_line(name)
            ),
            None,
        ));
    }
    let arg = |key: &str| -> Result<Option<String>, ErrorData> {
        let Some(value) = arguments.and_then(|a| a.get(key)) else {
            return Ok(None);
        };
        guard::check_json(key, value).map_err(|refused| refusal(&refused.into()))?;
        Ok(match value {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            _ => None,
        })
    };
    let runtime = arg("runtime")?;
    let worker_id = arg("worker_id")?;
    let orchestrator = arg("orchestrator_url")?;
    let text = onboarding_text(
        runtime.as_deref(),
        worker_id.as_deref(),
        orchestrator.as_deref(),
    );
    Ok(
        GetPromptResult::new(vec![PromptMessage::new_text(Role::User, text)])
            .with_description("Onboard this machine as a basis GPU worker"),
    )
}

fn refusal(problem: &Problem) -> ErrorData {
    ErrorData::invalid_params(
        format!("{}: {}", problem.code, problem.message),
        serde_json::to_value(problem).ok(),
    )
}

fn onboarding_text(
    runtime: Option<&str>,
    worker_id: Option<&str>,
    orchestrator: Option<&str>,
) -> String {
    let runtime = runtime.map_or_else(
        || "the runtime check_hardware recommends (echo if there is no GPU)".to_owned(),
        |r| format!("runtime \"{r}\""),
    );
    let worker_id = worker_id.map_or_else(
        || "a worker_id the user chooses (2-63 lowercase letters, digits, '-')".to_owned(),
        |w| format!("worker_id \"{w}\""),
    );
    let orchestrator = orchestrator.map_or_else(
        || "the configured orchestrator (omit orchestrator_url to use it)".to_owned(),
        |o| format!("orchestrator_url \"{o}\""),
    );
    format!(
        "Onboard this machine as a basis GPU worker, using the basis MCP tools in this order.\n\n\
         1. check_hardware: see the GPUs, drivers, container runtimes and model runtimes, and \
         which runtime it recommends.\n\
         2. Ask the user for their PUBLIC reward address (0x + 40 hex) if you do not have it. \
         Then write_env with that wallet, {worker_id}, {runtime} and its models, and \
         {orchestrator}. It writes the 0600 env file and generates the device key on this host.\n\
         3. register_worker: registers the worker with the orchestrator, sending only the \
         key's public half and a signature (the private key never leaves the host). Re-running \
         it with the same inputs is safe.\n\
         4. network_status: confirm the orchestrator's posture (registration, job routing, \
         settlement) and that this host's env file is complete and registered.\n\
         5. start_worker: starts the supervisor, which runs the worker and restarts it if it \
         exits.\n\
         6. verify_online with wait_s (e.g. 30): the checklist until the worker is online; apply \
         the fix of any failed item. worker_status and the resource basis://worker/log help \
         when it does not come up.\n\
         7. To earn from the task market: fetch_tasks (only_matching: true), claim_task, then \
         execute_task for a task with an input (or write the output yourself), submit_output \
         before claim_expiry, and get_submission to see the evaluation and the credit.\n\
         Report each step's result (fingerprints, not tokens) to the user.\n\n{RULES}"
    )
}

/// Completion values for the prompt's `runtime` argument; nothing for anything else.
pub fn complete(request: &CompleteRequestParams) -> CompleteResult {
    let is_runtime =
        request.r#ref.as_prompt_name() == Some(ONBOARD) && request.argument.name == "runtime";
    let values = if is_runtime {
        let typed = request.argument.value.to_ascii_lowercase();
        RUNTIMES
            .iter()
            .filter(|r| r.starts_with(&typed))
            .map(|r| (*r).to_owned())
            .collect()
    } else {
        Vec::new()
    };
    let completion = CompletionInfo::with_all_values(values).unwrap_or_default();
    CompleteResult::new(completion)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{ArgumentInfo, Reference};

    #[test]
    fn a_secret_in_a_prompt_argument_is_refused_not_echoed() {
        let key = format!("0x{}", "ab".repeat(32));
        let mut args = JsonObject::new();
        args.insert("worker_id".into(), Value::String(key.clone()));
        let err = get(ONBOARD, Some(&args)).unwrap_err();
        assert!(err.message.contains("SECRET_REFUSED"));
        assert!(!serde_json::to_string(&err).unwrap().contains(&key));
    }

    #[test]
    fn the_prompt_names_every_step_and_the_rules() {
        let text = onboarding_text(Some("echo"), None, None);
        for step in [
            "check_hardware",
            "write_env",
            "register_worker",
            "network_status",
            "fetch_tasks",
            "submit_output",
            "PUBLIC",
        ] {
            assert!(text.contains(step), "{step}");
        }
    }

    #[test]
    fn runtimes_complete_by_prefix() {
        let request = CompleteRequestParams::new(
            Reference::for_prompt(ONBOARD),
            ArgumentInfo::new("runtime", "o"),
        );
        assert_eq!(complete(&request).completion.values, vec!["ollama"]);
    }
}
