//! `schemas/` is a snapshot of what agents and other processes see, generated from the Rust
//! types (JSON Schema 2020-12): every MCP tool (`tools/<name>.json`: metadata, input and
//! output schemas), the error codes (`errors.json`), the orchestrator API bodies (`api/`), the
//! worker channel messages (`channel/`) and the receipt.
//!
//! The snapshot test regenerates them in memory and fails on any drift, missing or stale file,
//! printing the command that rewrites them: `UPDATE_SCHEMAS=1 cargo test --test schemas`
//! (never under `CI=true`). The metadata test holds the rules every tool must follow.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use basis::domain::{BatchFile, ErrorCode, Evaluation, HashedReceipt, Problem};
use basis::wire::schema::StandardFormats;
use basis::wire::{
    ApiErrorBody, BatchLeaves, BatchList, Claim, ClaimRequest, CloseBatchRequest, CloseBatchResult,
    DisputeRequest, Health, KeyList, KeyUsageReport, MarkPaidRequest, OnboardingStatus,
    OrchestratorMessage, PostTaskRequest, RegisterRequest, ResolveRequest, Rewards,
    SettlementBatchInfo, Submission, SubmitRequest, Task, TaskList, WalletRewards, WorkerList,
    WorkerMessage, WorkerRecord,
};
use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

type Result<T = ()> = std::result::Result<T, Box<dyn std::error::Error>>;

const UPDATE_COMMAND: &str = "UPDATE_SCHEMAS=1 cargo test --test schemas";
const COMMENT: &str = "Generated from the Rust types by tests/schemas.rs; regenerate with UPDATE_SCHEMAS=1 cargo test --test schemas";

/// The schema of `T` as it is written (`serialize`) or as it is accepted.
fn schema<T: JsonSchema>(serialize: bool) -> Result<Value> {
    let mut settings = SchemaSettings::draft2020_12().with_transform(StandardFormats);
    if serialize {
        settings = settings.for_serialize();
    }
    let mut value = serde_json::to_value(settings.into_generator().into_root_schema_for::<T>())?;
    if let Value::Object(map) = &mut value {
        map.insert("$comment".into(), json!(COMMENT));
    }
    Ok(value)
}

fn tool_files() -> Result<BTreeMap<PathBuf, Value>> {
    let mut files = BTreeMap::new();
    for tool in basis::fronts::mcp::catalogue() {
        let mut value = serde_json::to_value(&tool)?;
        if let Value::Object(map) = &mut value {
            map.insert("$comment".into(), json!(COMMENT));
        }
        files.insert(PathBuf::from(format!("tools/{}.json", tool.name)), value);
    }
    Ok(files)
}

/// `errors.json`: the schema of the `{code, message, fix}` problem, and a table of every code
/// with its meaning and the CLI exit status.
fn errors_file() -> Result<Value> {
    let mut value = schema::<Problem>(true)?;
    let descriptions: BTreeMap<String, String> = value["$defs"]["ErrorCode"]["oneOf"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            Some((
                v["const"].as_str()?.to_owned(),
                v["description"].as_str()?.to_owned(),
            ))
        })
        .collect();
    let codes: Vec<Value> = ErrorCode::ALL
        .iter()
        .map(|code| {
            json!({
                "code": code.as_str(),
                "exit_code": code.exit_code(),
                "description": descriptions.get(code.as_str()).cloned().unwrap_or_default(),
            })
        })
        .collect();
    let map = value
        .as_object_mut()
        .ok_or("the Problem schema is not an object")?;
    map.insert(
        "description".into(),
        json!(
            "An actionable failure: MCP tool results with isError carry it as the JSON text of their \
             one content block (no structuredContent), the orchestrator API as {\"error\": …}, \
             the CLI with --json on stdout. Agents branch on `code`."
        ),
    );
    map.insert("x-codes".into(), Value::Array(codes));
    Ok(value)
}

fn expected() -> Result<BTreeMap<PathBuf, Value>> {
    let mut files = tool_files()?;
    files.insert("errors.json".into(), errors_file()?);
    let others = [
        ("api/health.json", schema::<Health>(true)?),
        (
            "api/onboarding_status.json",
            schema::<OnboardingStatus>(true)?,
        ),
        (
            "api/register_request.json",
            schema::<RegisterRequest>(false)?,
        ),
        ("api/worker_record.json", schema::<WorkerRecord>(true)?),
        ("api/worker_list.json", schema::<WorkerList>(true)?),
        ("api/error.json", schema::<ApiErrorBody>(true)?),
        (
            "api/post_task_request.json",
            schema::<PostTaskRequest>(false)?,
        ),
        ("api/task.json", schema::<Task>(true)?),
        ("api/task_list.json", schema::<TaskList>(true)?),
        ("api/claim_request.json", schema::<ClaimRequest>(false)?),
        ("api/claim.json", schema::<Claim>(true)?),
        ("api/submit_request.json", schema::<SubmitRequest>(false)?),
        ("api/submission.json", schema::<Submission>(true)?),
        ("api/evaluation.json", schema::<Evaluation>(false)?),
        ("api/dispute_request.json", schema::<DisputeRequest>(false)?),
        ("api/resolve_request.json", schema::<ResolveRequest>(false)?),
        ("api/rewards.json", schema::<Rewards>(true)?),
        ("api/wallet_rewards.json", schema::<WalletRewards>(true)?),
        ("api/key_list.json", schema::<KeyList>(true)?),
        ("api/key_usage_report.json", schema::<KeyUsageReport>(true)?),
        (
            "api/close_batch_request.json",
            schema::<CloseBatchRequest>(false)?,
        ),
        (
            "api/close_batch_result.json",
            schema::<CloseBatchResult>(true)?,
        ),
        ("api/batch_list.json", schema::<BatchList>(true)?),
        ("api/batch_leaves.json", schema::<BatchLeaves>(true)?),
        (
            "api/settlement_batch.json",
            schema::<SettlementBatchInfo>(true)?,
        ),
        (
            "api/mark_paid_request.json",
            schema::<MarkPaidRequest>(false)?,
        ),
        (
            "channel/worker_message.json",
            schema::<WorkerMessage>(true)?,
        ),
        (
            "channel/orchestrator_message.json",
            schema::<OrchestratorMessage>(true)?,
        ),
        ("receipt.json", schema::<HashedReceipt>(true)?),
        ("settlement_batch_file.json", schema::<BatchFile>(true)?),
    ];
    files.extend(others.into_iter().map(|(p, v)| (PathBuf::from(p), v)));
    Ok(files)
}

fn schemas_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas")
}

/// Every `.json` under `dir`, relative to `root`.
fn json_files(dir: &Path, root: &Path, out: &mut Vec<PathBuf>) -> Result {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            json_files(&path, root, out)?;
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path.strip_prefix(root)?.to_path_buf());
        }
    }
    Ok(())
}

#[test]
fn the_schemas_snapshot_matches_the_rust_types() -> Result {
    let root = schemas_dir();
    let update = std::env::var("UPDATE_SCHEMAS").is_ok_and(|v| v == "1")
        && std::env::var("CI").map_or(true, |v| v != "true");
    let expected = expected()?;
    let mut drift = Vec::new();
    for (rel, value) in &expected {
        let text = format!("{}\n", serde_json::to_string_pretty(value)?);
        let path = root.join(rel);
        match fs::read_to_string(&path) {
            Ok(current) if current == text => {}
            found => {
                drift.push(format!(
                    "{} ({})",
                    rel.display(),
                    if found.is_ok() { "stale" } else { "missing" }
                ));
                if update {
                    fs::create_dir_all(path.parent().ok_or("no parent")?)?;
                    fs::write(&path, text)?;
                }
            }
        }
    }
    let mut present = Vec::new();
    json_files(&root, &root, &mut present)?;
    for rel in present.into_iter().filter(|p| !expected.contains_key(p)) {
        drift.push(format!("{} (no longer generated)", rel.display()));
        if update {
            fs::remove_file(root.join(&rel))?;
        }
    }
    if update && !drift.is_empty() {
        eprintln!("rewrote schemas/: {}", drift.join(", "));
        return Ok(());
    }
    assert!(
        drift.is_empty(),
        "schemas/ is out of date with the Rust types:\n  {}\nRun `{UPDATE_COMMAND}` and review the diff.",
        drift.join("\n  ")
    );
    Ok(())
}

#[test]
fn every_schema_compiles_as_json_schema() -> Result {
    for (rel, value) in expected()? {
        let mut schemas = vec![value.clone()];
        if rel.starts_with("tools") {
            schemas = vec![value["inputSchema"].clone(), value["outputSchema"].clone()];
        }
        for schema in schemas {
            assert!(
                jsonschema::validator_for(&schema).is_ok(),
                "{} is not a valid schema",
                rel.display()
            );
        }
    }
    Ok(())
}

/// Every `format` keyword under `value` that JSON Schema 2020-12 does not define (schemars
/// writes `uint64`, `int32`, `double`…; strict validators such as Ajv warn on each).
fn non_standard_formats(value: &Value, at: &str, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(format)) = map.get("format")
                && !basis::wire::schema::STANDARD_FORMATS.contains(&format.as_str())
            {
                out.push(format!("{at}: format {format}"));
            }
            for (key, child) in map {
                non_standard_formats(child, &format!("{at}/{key}"), out);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                non_standard_formats(child, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

#[test]
fn schemas_use_only_json_schema_formats() -> Result {
    let mut found = Vec::new();
    for (rel, value) in expected()? {
        non_standard_formats(&value, &rel.display().to_string(), &mut found);
    }
    non_standard_formats(
        &basis::orchestrator::openapi::document(),
        "openapi.json",
        &mut found,
    );
    assert!(
        found.is_empty(),
        "non-standard formats:\n  {}",
        found.join("\n  ")
    );
    Ok(())
}

#[test]
fn every_tool_has_a_title_a_description_schemas_and_all_four_hints() {
    let tools = basis::fronts::mcp::catalogue();
    assert!(!tools.is_empty());
    for tool in tools {
        let name = tool.name.as_ref();
        assert!(
            tool.title.as_deref().is_some_and(|t| !t.is_empty()),
            "{name}: no title"
        );
        let description = tool.description.as_deref().unwrap_or_default();
        assert!(
            description.len() >= 120,
            "{name}: the description is too short to guide an agent"
        );
        assert!(
            description.to_lowercase().contains("next"),
            "{name}: the description does not say what comes next"
        );
        let a = tool
            .annotations
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no annotations"));
        assert!(a.title.is_some(), "{name}: annotations.title");
        assert!(a.read_only_hint.is_some(), "{name}: readOnlyHint not set");
        assert!(
            a.destructive_hint.is_some(),
            "{name}: destructiveHint not set"
        );
        assert!(
            a.idempotent_hint.is_some(),
            "{name}: idempotentHint not set"
        );
        assert!(a.open_world_hint.is_some(), "{name}: openWorldHint not set");
        let input = &tool.input_schema;
        assert_eq!(
            input.get("type"),
            Some(&json!("object")),
            "{name}: inputSchema is not an object"
        );
        for combinator in ["anyOf", "oneOf", "allOf", "not"] {
            assert!(
                !input.contains_key(combinator),
                "{name}: inputSchema has a top-level {combinator}"
            );
        }
        let output = tool
            .output_schema
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no outputSchema"));
        assert_eq!(
            output.get("type"),
            Some(&json!("object")),
            "{name}: outputSchema is not an object"
        );
    }
}

#[test]
fn errors_json_lists_every_code_once() -> Result {
    let file = errors_file()?;
    let codes: Vec<&str> = file["x-codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_str().unwrap())
        .collect();
    assert_eq!(codes.len(), ErrorCode::ALL.len());
    for code in ErrorCode::ALL {
        assert_eq!(
            codes.iter().filter(|c| **c == code.as_str()).count(),
            1,
            "{code}"
        );
    }
    for entry in file["x-codes"].as_array().unwrap() {
        assert!(
            !entry["description"].as_str().unwrap().is_empty(),
            "{entry}"
        );
    }
    Ok(())
}

#[test]
fn the_skill_allows_exactly_the_read_only_tools() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("skills/basis-worker/SKILL.md");
    let text = fs::read_to_string(path).unwrap();
    let front = text
        .strip_prefix("---\n")
        .and_then(|t| t.split("\n---\n").next())
        .unwrap();
    let field = |name: &str| {
        front
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("SKILL.md frontmatter has no {name}"))
    };
    assert_eq!(field("name"), "basis-worker");
    assert!(field("description").len() > 80);
    let mut allowed: Vec<&str> = field("allowed-tools").split(',').map(str::trim).collect();
    allowed.sort_unstable();
    // Claude Code names a tool `mcp__<server>__<tool>`; a plugin's server is
    // `plugin:<plugin>:<server>`, normalised to `plugin_<plugin>_<server>`. Both ways of
    // installing the server (the `basis` plugin, `claude mcp add basis`) are allowed.
    let mut read_only: Vec<String> = basis::fronts::mcp::catalogue()
        .iter()
        .filter(|t| basis::fronts::mcp::is_read_only(t))
        .flat_map(|t| {
            [
                format!("mcp__plugin_basis_basis__{}", t.name),
                format!("mcp__basis__{}", t.name),
            ]
        })
        .collect();
    read_only.sort_unstable();
    assert_eq!(
        allowed, read_only,
        "allowed-tools must name exactly the read-only tools"
    );
}

/// The Claude Code plugin (`.claude-plugin/`): the plugin and server names the skill's
/// `mcp__plugin_basis_basis__` prefix is made of, and the repository as its marketplace.
#[test]
fn the_plugin_is_basis_and_serves_basis_mcp() -> Result {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| -> Result<Value> {
        Ok(serde_json::from_str(&fs::read_to_string(root.join(p))?)?)
    };
    let plugin = read(".claude-plugin/plugin.json")?;
    assert_eq!(plugin["name"], "basis");
    // The plugin's version and license are the crate's.
    assert_eq!(plugin["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(plugin["license"], env!("CARGO_PKG_LICENSE"));
    assert_eq!(
        plugin["mcpServers"],
        json!({"basis": {"command": "basis", "args": ["mcp"]}})
    );
    let market = read(".claude-plugin/marketplace.json")?;
    let entries = market["plugins"].as_array().ok_or("no plugins")?;
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0]["name"], "basis");
    assert_eq!(entries[0]["source"], "./");
    Ok(())
}
