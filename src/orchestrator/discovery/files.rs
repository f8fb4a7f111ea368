//! ERC-8004 registration files (docs/DISCOVERY.md, "ERC-8004 registration files"): the
//! network's, served at `/.well-known/agent-registration.json`, and one per worker at
//! `/api/workers/{id}/agent-registration.json`. Built from the registry row and what the
//! orchestrator counted; no field comes from a secret (the token's hash and fingerprint are
//! left out on purpose: a registration file is public and permanent).

use super::config::DiscoveryConfig;
use crate::orchestrator::store::{AgentLink, WorkerRow, WorkerStats};
use crate::wire::{
    AgentCounters, AgentRegistration, AgentRegistrationRef, AgentService, REGISTRATION_TYPE,
    WorkerRecord,
};

/// The MCP protocol revision advertised with a configured MCP endpoint.
pub const MCP_VERSION: &str = "2025-06-18";
/// The trust model basis supports: reputation from evaluator attestations.
const TRUST: &str = "reputation";
/// The image served when none is configured.
pub const IMAGE_PATH: &str = "/.well-known/basis.svg";
pub const IMAGE_SVG: &str = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 64 64\">\
<rect width=\"64\" height=\"64\" rx=\"12\" fill=\"#111827\"/>\
<path d=\"M18 14h16a10 10 0 0 1 0 20H18zm0 20h18a10 10 0 0 1 0 20H18z\" fill=\"none\" \
stroke=\"#34d399\" stroke-width=\"5\"/></svg>";

fn service(name: &str, endpoint: String, version: Option<&str>) -> AgentService {
    AgentService {
        name: name.to_owned(),
        endpoint,
        version: version.map(str::to_owned),
    }
}

fn image(cfg: &DiscoveryConfig, base: &str) -> String {
    cfg.image
        .as_ref()
        .map_or_else(|| format!("{base}{IMAGE_PATH}"), ToString::to_string)
}

/// The network's file. `base` is the public origin, without a trailing slash.
pub fn network(cfg: &DiscoveryConfig, base: &str) -> AgentRegistration {
    let mut services = vec![
        service("web", format!("{base}/"), None),
        service("OpenAI", format!("{base}/v1"), Some("v1")),
        service("basis-tasks", format!("{base}/api/tasks"), None),
        service("OpenAPI", format!("{base}/openapi.json"), Some("3.1.0")),
    ];
    if let Some(mcp) = &cfg.mcp_url {
        services.push(service("MCP", mcp.to_string(), Some(MCP_VERSION)));
    }
    AgentRegistration {
        kind: REGISTRATION_TYPE.to_owned(),
        name: cfg.name.clone(),
        description: cfg.description.clone(),
        image: image(cfg, base),
        services,
        x402_support: false,
        active: true,
        registrations: cfg
            .registration
            .iter()
            .map(|(registry, id)| AgentRegistrationRef {
                agent_id: *id,
                agent_registry: registry.to_string(),
            })
            .collect(),
        supported_trust: vec![TRUST.to_owned()],
        agent_wallet: None,
        runtime: None,
        models: Vec::new(),
        hardware: None,
        labels: Vec::new(),
        counters: None,
        updated: None,
    }
}

/// A worker's file: `record` is its public registry view (for `online`), `stats` its
/// all-time counts.
pub fn worker(
    cfg: &DiscoveryConfig,
    base: &str,
    row: &WorkerRow,
    record: &WorkerRecord,
    stats: Option<&WorkerStats>,
    links: &[AgentLink],
) -> AgentRegistration {
    let hardware = row.hardware.as_ref().and_then(|h| {
        h.gpus.first().map(|g| {
            format!(
                "{} × {}",
                h.gpus.len(),
                g.name.as_deref().unwrap_or(g.vendor.as_str())
            )
        })
    });
    let description = format!(
        "A basis contributor worker of {} on the {} runtime serving {}{}. Its work reaches \
         clients through the network's gateway and task market; its record is what the \
         orchestrator observed.",
        cfg.name,
        row.runtime,
        if row.models.is_empty() {
            "no model yet".to_owned()
        } else {
            row.models.join(", ")
        },
        hardware.map_or_else(String::new, |h| format!(" on {h}")),
    );
    AgentRegistration {
        kind: REGISTRATION_TYPE.to_owned(),
        name: format!("basis worker {}", row.worker_id),
        description,
        image: image(cfg, base),
        services: vec![
            service("web", format!("{base}/api/workers/{}", row.worker_id), None),
            service("OpenAI", format!("{base}/v1"), Some("v1")),
        ],
        x402_support: false,
        active: record.online,
        registrations: links
            .iter()
            .map(|l| AgentRegistrationRef {
                agent_id: l.agent_id,
                agent_registry: l.agent_registry.clone(),
            })
            .collect(),
        supported_trust: vec![TRUST.to_owned()],
        agent_wallet: Some(row.wallet),
        runtime: Some(row.runtime),
        models: row.models.clone(),
        hardware: row.hardware.clone(),
        labels: row.labels.clone(),
        counters: Some(AgentCounters {
            jobs_completed: row.jobs_completed,
            jobs_failed: row.jobs_failed,
            tasks_passed: stats.map_or(0, |s| s.tasks_passed),
            tasks_failed: stats.map_or(0, |s| s.tasks_failed),
            disputes_lost: stats.map_or(0, |s| s.disputes_lost),
            tokens_served: stats.map_or(0, |s| s.tokens_served),
        }),
        updated: Some(record.last_seen.unwrap_or(0).max(row.updated_at)),
    }
}
