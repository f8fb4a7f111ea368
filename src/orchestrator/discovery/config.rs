//! `[discovery]` in orchestrator.toml: how the network presents itself in its ERC-8004
//! registration file, where it is reached from outside, and how long leaderboard figures are
//! cached.

use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::domain::AgentRegistry;

/// How long computed leaderboard figures are reused, by default.
pub const DEFAULT_LEADERBOARD_CACHE_S: u64 = 10;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDiscovery {
    public_url: Option<String>,
    name: Option<String>,
    description: Option<String>,
    image: Option<String>,
    mcp_url: Option<String>,
    agent_registry: Option<String>,
    agent_id: Option<u64>,
    leaderboard_cache_s: Option<u64>,
}

/// The resolved `[discovery]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// The origin the network is reached at from outside (`https://…`); `None`: taken from
    /// each request's `Host`.
    pub public_url: Option<Url>,
    pub name: String,
    pub description: String,
    /// The image URL; `None`: the orchestrator's own `/.well-known/basis.svg`.
    pub image: Option<Url>,
    /// A streamable-HTTP MCP endpoint to advertise (`basis mcp --http` deployed by the
    /// operator); `None`: not advertised.
    pub mcp_url: Option<Url>,
    /// The network's own on-chain registration, once its operator made one.
    pub registration: Option<(AgentRegistry, u64)>,
    pub leaderboard_cache: Duration,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self {
            public_url: None,
            name: "basis network".to_owned(),
            description: "A basis compute network: an OpenAI-compatible gateway served by \
                          contributor GPU workers, and a task market with receipts anyone can \
                          check."
                .to_owned(),
            image: None,
            mcp_url: None,
            registration: None,
            leaderboard_cache: Duration::from_secs(DEFAULT_LEADERBOARD_CACHE_S),
        }
    }
}

fn http_url(key: &str, text: &str) -> Result<Url, String> {
    let url = Url::parse(text).map_err(|e| format!("[discovery] {key}: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(format!(
            "[discovery] {key} must be an http(s) URL with a host"
        ));
    }
    Ok(url)
}

impl DiscoveryConfig {
    pub fn resolve(raw: &RawDiscovery) -> Result<Self, String> {
        let defaults = Self::default();
        let text = |key: &str, v: &Option<String>, default: String| -> Result<String, String> {
            match v {
                Some(s) if s.trim().is_empty() || s.len() > 1000 => {
                    Err(format!("[discovery] {key} must be 1 to 1000 characters"))
                }
                Some(s) => Ok(s.clone()),
                None => Ok(default),
            }
        };
        let registration = match (&raw.agent_registry, raw.agent_id) {
            (Some(registry), Some(id)) => Some((
                AgentRegistry::parse(registry)
                    .map_err(|e| format!("[discovery] agent_registry: {e}"))?,
                id,
            )),
            (None, None) => None,
            _ => {
                return Err(
                    "[discovery] agent_registry and agent_id go together (the network's \
                     ERC-8004 registration)"
                        .into(),
                );
            }
        };
        Ok(Self {
            public_url: raw
                .public_url
                .as_deref()
                .map(|u| http_url("public_url", u))
                .transpose()?,
            name: text("name", &raw.name, defaults.name)?,
            description: text("description", &raw.description, defaults.description)?,
            image: raw
                .image
                .as_deref()
                .map(|u| http_url("image", u))
                .transpose()?,
            mcp_url: raw
                .mcp_url
                .as_deref()
                .map(|u| http_url("mcp_url", u))
                .transpose()?,
            registration,
            leaderboard_cache: Duration::from_secs(
                raw.leaderboard_cache_s
                    .unwrap_or(DEFAULT_LEADERBOARD_CACHE_S)
                    .min(3600),
            ),
        })
    }
}
