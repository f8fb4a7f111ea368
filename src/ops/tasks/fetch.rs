//! `fetch_tasks`: one page of the orchestrator's tasks (highest reward first), filtered, each
//! marked with whether this worker's capabilities match it. Read-only; works before
//! onboarding too (then nothing but capability-free tasks match).
//!
//! A registered worker's capabilities are what the orchestrator holds for it (its registered
//! runtime, models, hardware and labels: docs/TASK_MARKET.md, "Capabilities"), the same a
//! claim is checked against; by default it is shown only the tasks it can claim (`?fits=`).
//! Before registering, they come from the env file (runtime, models, labels).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{capabilities, client, read_env};
use crate::client::ClientError;
use crate::domain::{Amount, ErrorCode, Problem, TaskStatus, WorkerId};
use crate::guard::{GuardText, Guarded, SecretRefused};
use crate::ops::Context;
use crate::wire::{
    Capabilities, MAX_CAPABILITIES, MAX_CAPABILITY_LEN, TASKS_PAGE_MAX, Task, TaskQuery,
};

/// Filters; all optional.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Input {
    /// open (default), claimed, submitted, completed, rejected, disputed, abandoned or expired.
    #[serde(default)]
    pub status: Option<String>,
    /// Only tasks whose required capabilities are all among these, e.g. ["runtime:vllm",
    /// "model:llama3.2:1b"]. Capabilities are `runtime:<echo|ollama|vllm>` and
    /// `model:<name>`.
    #[serde(default)]
    pub capabilities: Option<Vec<String>>,
    /// Only tasks this worker can claim: its registered capabilities and GPU memory (before
    /// registering, the env file's runtime, models and labels). Default true when no
    /// `capabilities` are given; false lists every task, each marked with what this worker
    /// lacks. Not together with `capabilities`.
    #[serde(default)]
    pub only_matching: Option<bool>,
    /// Only tasks paying at least this, in atomic units, as a decimal string (e.g. "1000").
    #[serde(default)]
    pub min_reward: Option<String>,
    /// Only tasks whose deadline is at least this many seconds away (time to do the work).
    #[serde(default)]
    pub deadline_buffer_s: Option<u64>,
    /// The next_cursor of the previous page.
    #[serde(default)]
    pub cursor: Option<String>,
    /// Tasks per page, 1 to 50 (default 20).
    #[serde(default)]
    pub limit: Option<u32>,
    /// The env file naming this worker (default: worker.env in the config directory).
    #[serde(default)]
    pub env_file: Option<String>,
}

impl Guarded for Input {
    fn check_secrets(&self) -> Result<(), SecretRefused> {
        self.status.guard("status")?;
        self.capabilities.guard("capabilities")?;
        self.min_reward.guard("min_reward")?;
        self.cursor.guard("cursor")?;
        self.env_file.guard("env_file")
    }
}

/// A task, and whether this worker can do it.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct TaskView {
    #[serde(flatten)]
    pub task: Task,
    /// Every capability the task requires is one of this worker's.
    pub capabilities_match: bool,
    /// The required capabilities this worker lacks.
    pub missing_capabilities: Vec<String>,
    /// The task carries an inference input that execute_task can run on this host's runtime;
    /// without one, the agent produces the output itself.
    pub has_input: bool,
}

/// One page of tasks.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct Output {
    pub tasks: Vec<TaskView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// This host's worker, when the env file names one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_id: Option<WorkerId>,
    /// This worker's capabilities (`runtime:…`, `model:…`, `gpu`/`cpu-only`, `gpu:…`,
    /// `compute:…`, `label:…`): as registered, or from the env file before registering.
    pub worker_capabilities: Vec<String>,
    /// MiB of this worker's largest GPU, as registered (what `min_vram_mib` is checked
    /// against).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_vram_mib: Option<u64>,
    pub orchestrator_url: String,
    pub next_step: String,
}

/// The query `input` asks for, with `mine` as this worker's capabilities and `registered` its
/// id when the orchestrator knows it (then the orchestrator filters by what it registered).
fn query(
    input: &Input,
    mine: &[String],
    registered: Option<&WorkerId>,
) -> Result<TaskQuery, Problem> {
    let invalid = |message: String, fix: &str| {
        Err(Problem::new(ErrorCode::InvalidArgument, message).with_fix(fix))
    };
    let status = match input.status.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => match s.parse::<TaskStatus>() {
            Ok(status) => Some(status),
            Err(e) => return invalid(format!("status: {e}"), "omit status to list open tasks"),
        },
    };
    let only_matching = input.only_matching.unwrap_or(input.capabilities.is_none());
    let fits = registered.filter(|_| only_matching && input.capabilities.is_none());
    let capabilities = match (&input.capabilities, only_matching) {
        (None, true) if fits.is_some() => None,
        (Some(_), true) => {
            return invalid(
                "capabilities and only_matching cannot be combined".into(),
                "use only_matching for this worker's own capabilities, or list capabilities",
            );
        }
        (Some(list), false) => Some(list.clone()),
        (None, true) => Some(mine.to_vec()),
        (None, false) => None,
    };
    if let Some(list) = &capabilities {
        let bad = list.iter().any(|c| {
            c.is_empty() || c.len() > MAX_CAPABILITY_LEN || c.contains(',') || c.trim() != c
        });
        if list.len() > MAX_CAPABILITIES || bad {
            return invalid(
                format!(
                    "capabilities: at most {MAX_CAPABILITIES}, each 1-{MAX_CAPABILITY_LEN} \
                     characters without commas or surrounding spaces"
                ),
                "list capabilities like \"runtime:vllm\" or \"model:llama3.2:1b\"",
            );
        }
    }
    let min_reward = match input.min_reward.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(s) => match Amount::parse(s) {
            Ok(a) => Some(a),
            Err(e) => {
                return invalid(
                    format!("min_reward: {e}"),
                    "give min_reward as a decimal string of atomic units, e.g. \"1000\"",
                );
            }
        },
    };
    let max = u32::try_from(TASKS_PAGE_MAX).unwrap_or(u32::MAX);
    if let Some(limit) = input.limit
        && !(1..=max).contains(&limit)
    {
        return invalid(
            format!("limit must be between 1 and {TASKS_PAGE_MAX}"),
            "ask for at most 50 tasks per page and follow next_cursor",
        );
    }
    Ok(TaskQuery {
        status,
        // An empty list means "no capabilities": only tasks that require none.
        capabilities: capabilities.map(|list| list.join(",")),
        fits: fits.cloned(),
        min_reward,
        deadline_buffer_s: input.deadline_buffer_s,
        cursor: input.cursor.clone().filter(|c| !c.is_empty()),
        limit: input.limit.and_then(|l| usize::try_from(l).ok()),
    })
}

/// Lists one page of tasks.
pub async fn run(ctx: &Context, input: &Input) -> Result<Output, Problem> {
    input.check_secrets()?;
    let env = read_env(ctx, input.env_file.as_deref())?;
    let (client, url) = client(ctx, env.as_ref())?;
    let worker_id = env.as_ref().and_then(|e| e.worker_id.clone());
    // As registered, when the orchestrator knows this worker; else from the env file.
    let record = match &worker_id {
        Some(id) => match client.worker(id).await {
            Ok(record) => Some(record),
            Err(ClientError::Api { problem, .. }) if problem.code == ErrorCode::WorkerNotFound => {
                None
            }
            Err(e) => return Err(e.into()),
        },
        None => None,
    };
    let mine = match &record {
        Some(r) => Capabilities {
            tags: r.capabilities.clone(),
            vram_mib: r.vram_mib,
        },
        None => Capabilities {
            tags: env.as_ref().map(capabilities).unwrap_or_default(),
            vram_mib: None,
        },
    };
    let registered = record.as_ref().map(|r| &r.worker_id);
    let query = query(input, &mine.tags, registered)?;
    let page = client.tasks(&query).await?;
    let tasks: Vec<TaskView> = page
        .tasks
        .into_iter()
        .map(|task| {
            let missing = mine.missing(&task.required_capabilities, task.min_vram_mib);
            TaskView {
                capabilities_match: missing.is_empty(),
                missing_capabilities: missing,
                has_input: task.input.is_some(),
                task,
            }
        })
        .collect();
    let next_step = if worker_id.is_none() {
        "onboard this host (write_env, register_worker) before claiming a task"
    } else if let Some(t) = tasks
        .iter()
        .find(|t| t.capabilities_match && t.task.status == TaskStatus::Open)
    {
        if t.has_input {
            "claim a matching open task with claim_task (highest reward first), then execute_task"
        } else {
            "claim a matching open task with claim_task, produce its output, then submit_output"
        }
    } else if page.next_cursor.is_some() {
        "no matching open task on this page: fetch the next page with cursor"
    } else {
        "no open task matches this worker now: fetch again later"
    };
    Ok(Output {
        tasks,
        next_cursor: page.next_cursor,
        worker_id,
        worker_capabilities: mine.tags,
        worker_vram_mib: mine.vram_mib,
        orchestrator_url: url.to_string(),
        next_step: next_step.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_follows_the_filters() {
        let mine = vec!["runtime:echo".to_owned(), "model:m".to_owned()];
        // By default only what this worker matches: by its registration once registered.
        let q = query(&Input::default(), &mine, None).unwrap();
        assert_eq!(q.capabilities.as_deref(), Some("runtime:echo,model:m"));
        let id = WorkerId::parse("gpu-1").unwrap();
        let q = query(&Input::default(), &mine, Some(&id)).unwrap();
        assert_eq!(q.fits.as_ref(), Some(&id));
        assert_eq!(q.capabilities, None);
        let all = Input {
            only_matching: Some(false),
            ..Input::default()
        };
        assert_eq!(query(&all, &mine, Some(&id)).unwrap(), TaskQuery::default());
        let input = Input {
            status: Some("claimed".into()),
            only_matching: Some(true),
            min_reward: Some("15".into()),
            limit: Some(50),
            ..Input::default()
        };
        let q = query(&input, &mine, None).unwrap();
        assert_eq!(q.status, Some(TaskStatus::Claimed));
        assert_eq!(q.capabilities.as_deref(), Some("runtime:echo,model:m"));
        assert_eq!(q.min_reward, Some(Amount::from_atomic(15)));
        assert_eq!(q.limit, Some(50));
    }

    #[test]
    fn bad_filters_are_invalid_arguments() {
        let bad = [
            Input {
                status: Some("done".into()),
                ..Input::default()
            },
            Input {
                limit: Some(51),
                ..Input::default()
            },
            Input {
                limit: Some(0),
                ..Input::default()
            },
            Input {
                min_reward: Some("1.5".into()),
                ..Input::default()
            },
            Input {
                capabilities: Some(vec!["a,b".into()]),
                ..Input::default()
            },
            Input {
                capabilities: Some(vec![]),
                only_matching: Some(true),
                ..Input::default()
            },
        ];
        for input in bad {
            let p = query(&input, &[], None).unwrap_err();
            assert_eq!(p.code, ErrorCode::InvalidArgument, "{input:?}");
            assert!(p.fix.is_some());
        }
    }
}
