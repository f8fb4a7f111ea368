//! The MCP clients `basis mcp install` knows: where each keeps its server list per scope, the
//! shape of one server entry, and what to do after it is written.
//!
//! Each location and shape below was checked against the client's documentation (found with
//! the docs search; the pages named are the ones relied on):
//!
//! - Claude Code (docs.anthropic.com/en/docs/claude-code/mcp, "MCP installation scopes"): user
//!   scope is the top-level `mcpServers` of `~/.claude.json`, project scope is `.mcp.json` at
//!   the project root; a stdio entry is `{"type":"stdio","command","args","env"}` (the shape
//!   `claude mcp add` writes). The third scope, `local`, lives under `projects.<path>` in
//!   `~/.claude.json` and is not offered here.
//! - Claude Desktop (modelcontextprotocol.io/docs/develop/connect-local-servers, formerly
//!   /quickstart/user): `claude_desktop_config.json` in `~/Library/Application Support/Claude`
//!   on macOS, `mcpServers` with `command`/`args`; one file per user, no project scope. Anthropic
//!   ships no Linux build; the community Linux builds read `~/.config/Claude` (the path the
//!   client guides list for Linux), taken here as `$XDG_CONFIG_HOME/Claude`.
//! - Cursor (cursor.com/docs/mcp): `~/.cursor/mcp.json` (global) or `.cursor/mcp.json` in the
//!   project, `mcpServers` with `command`/`args`.
//! - Windsurf (docs.windsurf.com/windsurf/cascade/mcp, "mcp_config.json"):
//!   `~/.codeium/windsurf/mcp_config.json`, the Claude Desktop schema (`mcpServers`); per user
//!   only.
//! - VS Code (code.visualstudio.com/docs/copilot/reference/mcp-configuration): `mcp.json` in
//!   the workspace (`.vscode/mcp.json`) or in the user profile, top-level `servers` (not
//!   `mcpServers`), and `"type": "stdio"` is required for a stdio server. The default profile's
//!   folder is `Code/User` under the app-data dir, which VS Code's `getDefaultUserDataPath`
//!   (src/vs/platform/environment/node/userDataPath.js) takes from `$VSCODE_APPDATA`, else
//!   `~/Library/Application Support` (macOS) or `$XDG_CONFIG_HOME` / `~/.config` (Linux).
//! - Codex (developers.openai.com/codex/config-reference and /codex/environment-variables):
//!   `config.toml` in `$CODEX_HOME` (default `~/.codex`), one `[mcp_servers.<name>]` table with
//!   `command` and `args`; project-scoped overrides live in `.codex/config.toml`, which Codex
//!   loads only for a project the user trusts.
//! - Gemini CLI (geminicli.com/docs/cli/configuration and docs/tools/mcp-server.md):
//!   `~/.gemini/settings.json` (user) or `.gemini/settings.json` (project), `mcpServers` with
//!   `command`/`args`.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// The name the entry is written under in every client.
pub const SERVER_NAME: &str = "basis";

/// The `--client` values, in the order `--help` lists them.
pub const CLIENT_NAMES: &[&str] = &[
    "claude-code",
    "claude-desktop",
    "cursor",
    "windsurf",
    "vscode",
    "codex",
    "gemini",
];

/// The `--scope` values.
pub const SCOPE_NAMES: &[&str] = &["user", "project"];

/// An MCP client with a documented config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    ClaudeCode,
    ClaudeDesktop,
    Cursor,
    Windsurf,
    VsCode,
    Codex,
    Gemini,
}

/// Whose config is written: the user's (every project) or the current directory's project.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    User,
    Project,
}

impl Scope {
    pub fn parse(name: &str) -> Option<Scope> {
        match name {
            "user" => Some(Scope::User),
            "project" => Some(Scope::Project),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::User => "user",
            Scope::Project => "project",
        }
    }
}

/// The operating systems whose per-user paths differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Platform {
    Linux,
    MacOs,
}

/// What the operation reads from the process: directories, the running binary, the OS.
#[derive(Debug, Clone)]
pub struct Host {
    /// `$HOME`.
    pub home: PathBuf,
    /// `$XDG_CONFIG_HOME`, else `$HOME/.config` (used on Linux).
    pub user_config_dir: PathBuf,
    /// `$CODEX_HOME` when set to an absolute path.
    pub codex_home: Option<PathBuf>,
    /// `$VSCODE_APPDATA` when set to an absolute path.
    pub vscode_appdata: Option<PathBuf>,
    /// The current directory (project scope).
    pub cwd: PathBuf,
    /// The canonical path of this basis binary.
    pub exe: PathBuf,
    pub platform: Platform,
}

/// How a client's file holds its servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A JSON object whose `servers_key` maps names to entries.
    Json {
        servers_key: &'static str,
        /// The entry carries `"type": "stdio"`.
        typed: bool,
        /// The entry carries an empty `env` object.
        env: bool,
    },
    /// TOML with one `[mcp_servers.<name>]` table per server.
    Toml,
}

impl Format {
    /// The table or key that maps server names to entries.
    pub fn servers_key(self) -> &'static str {
        match self {
            Format::Json { servers_key, .. } => servers_key,
            Format::Toml => "mcp_servers",
        }
    }
}

impl Client {
    pub fn parse(name: &str) -> Option<Client> {
        Some(match name {
            "claude-code" => Client::ClaudeCode,
            "claude-desktop" => Client::ClaudeDesktop,
            "cursor" => Client::Cursor,
            "windsurf" => Client::Windsurf,
            "vscode" => Client::VsCode,
            "codex" => Client::Codex,
            "gemini" => Client::Gemini,
            _ => return None,
        })
    }

    /// The `--client` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Client::ClaudeCode => "claude-code",
            Client::ClaudeDesktop => "claude-desktop",
            Client::Cursor => "cursor",
            Client::Windsurf => "windsurf",
            Client::VsCode => "vscode",
            Client::Codex => "codex",
            Client::Gemini => "gemini",
        }
    }

    /// The product name people know.
    pub fn title(self) -> &'static str {
        match self {
            Client::ClaudeCode => "Claude Code",
            Client::ClaudeDesktop => "Claude Desktop",
            Client::Cursor => "Cursor",
            Client::Windsurf => "Windsurf",
            Client::VsCode => "VS Code",
            Client::Codex => "Codex",
            Client::Gemini => "Gemini CLI",
        }
    }

    /// The scopes the client documents.
    pub fn has_scope(self, scope: Scope) -> bool {
        match self {
            Client::ClaudeDesktop | Client::Windsurf => scope == Scope::User,
            _ => true,
        }
    }

    pub fn format(self) -> Format {
        match self {
            Client::ClaudeCode => Format::Json {
                servers_key: "mcpServers",
                typed: true,
                env: true,
            },
            Client::VsCode => Format::Json {
                servers_key: "servers",
                typed: true,
                env: false,
            },
            Client::Codex => Format::Toml,
            Client::ClaudeDesktop | Client::Cursor | Client::Windsurf | Client::Gemini => {
                Format::Json {
                    servers_key: "mcpServers",
                    typed: false,
                    env: false,
                }
            }
        }
    }

    /// The config file for `scope` (which the caller has checked with [`Client::has_scope`]).
    pub fn path(self, scope: Scope, host: &Host) -> PathBuf {
        let home = &host.home;
        let project = &host.cwd;
        let mac_support = || home.join("Library").join("Application Support");
        match (self, scope) {
            (Client::ClaudeCode, Scope::User) => home.join(".claude.json"),
            (Client::ClaudeCode, Scope::Project) => project.join(".mcp.json"),
            (Client::ClaudeDesktop, _) => {
                let dir = match host.platform {
                    Platform::MacOs => mac_support(),
                    Platform::Linux => host.user_config_dir.clone(),
                };
                dir.join("Claude").join("claude_desktop_config.json")
            }
            (Client::Cursor, Scope::User) => home.join(".cursor").join("mcp.json"),
            (Client::Cursor, Scope::Project) => project.join(".cursor").join("mcp.json"),
            (Client::Windsurf, _) => home
                .join(".codeium")
                .join("windsurf")
                .join("mcp_config.json"),
            (Client::VsCode, Scope::User) => {
                let dir = match (&host.vscode_appdata, host.platform) {
                    (Some(dir), _) => dir.clone(),
                    (None, Platform::MacOs) => mac_support(),
                    (None, Platform::Linux) => host.user_config_dir.clone(),
                };
                dir.join("Code").join("User").join("mcp.json")
            }
            (Client::VsCode, Scope::Project) => project.join(".vscode").join("mcp.json"),
            (Client::Codex, Scope::User) => host
                .codex_home
                .clone()
                .unwrap_or_else(|| home.join(".codex"))
                .join("config.toml"),
            (Client::Codex, Scope::Project) => project.join(".codex").join("config.toml"),
            (Client::Gemini, Scope::User) => home.join(".gemini").join("settings.json"),
            (Client::Gemini, Scope::Project) => project.join(".gemini").join("settings.json"),
        }
    }

    /// The server entry, as JSON (a TOML client gets the same keys as a table).
    pub fn entry(self, command: &str, args: &[String]) -> Value {
        let mut entry = Map::new();
        if let Format::Json { typed: true, .. } = self.format() {
            entry.insert("type".to_owned(), json!("stdio"));
        }
        entry.insert("command".to_owned(), json!(command));
        entry.insert("args".to_owned(), json!(args));
        if let Format::Json { env: true, .. } = self.format() {
            entry.insert("env".to_owned(), json!({}));
        }
        Value::Object(entry)
    }

    /// What to do once the entry is in place.
    pub fn next_step(self, scope: Scope) -> &'static str {
        match (self, scope) {
            (Client::ClaudeCode, Scope::User) => {
                "restart Claude Code, then `claude mcp list` shows basis"
            }
            (Client::ClaudeCode, Scope::Project) => {
                "start Claude Code in this directory and approve the project's basis server; `claude mcp list` then shows it"
            }
            (Client::ClaudeDesktop, _) => {
                "quit Claude Desktop completely and reopen it; basis then appears among its connectors"
            }
            (Client::Cursor, _) => {
                "restart Cursor (or open Cursor Settings > MCP) and check that basis is enabled"
            }
            (Client::Windsurf, _) => {
                "open Windsurf's MCP panel in Cascade and press refresh; basis is then listed"
            }
            (Client::VsCode, _) => {
                "in VS Code run `MCP: List Servers` from the Command Palette and start basis"
            }
            (Client::Codex, Scope::User) => {
                "start a new Codex session; `codex mcp list` shows basis"
            }
            (Client::Codex, Scope::Project) => {
                "start Codex in this directory and trust the project (Codex reads .codex/config.toml only then); `/mcp` shows basis"
            }
            (Client::Gemini, _) => "restart Gemini CLI; `/mcp` shows basis",
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn host(platform: Platform) -> Host {
        Host {
            home: "/h".into(),
            user_config_dir: "/xdg".into(),
            codex_home: None,
            vscode_appdata: None,
            cwd: "/p".into(),
            exe: "/bin/basis".into(),
            platform,
        }
    }

    #[test]
    fn every_name_parses_back() {
        for name in CLIENT_NAMES {
            assert_eq!(Client::parse(name).map(Client::as_str), Some(*name));
        }
        for name in SCOPE_NAMES {
            assert_eq!(Scope::parse(name).map(Scope::as_str), Some(*name));
        }
        assert_eq!(Client::parse("Claude-Code"), None);
    }

    #[test]
    fn documented_paths() {
        let linux = host(Platform::Linux);
        let mac = host(Platform::MacOs);
        let cases: &[(Client, Scope, &Host, &str)] = &[
            (Client::ClaudeCode, Scope::User, &linux, "/h/.claude.json"),
            (Client::ClaudeCode, Scope::Project, &linux, "/p/.mcp.json"),
            (
                Client::ClaudeDesktop,
                Scope::User,
                &linux,
                "/xdg/Claude/claude_desktop_config.json",
            ),
            (
                Client::ClaudeDesktop,
                Scope::User,
                &mac,
                "/h/Library/Application Support/Claude/claude_desktop_config.json",
            ),
            (Client::Cursor, Scope::User, &linux, "/h/.cursor/mcp.json"),
            (
                Client::Cursor,
                Scope::Project,
                &linux,
                "/p/.cursor/mcp.json",
            ),
            (
                Client::Windsurf,
                Scope::User,
                &mac,
                "/h/.codeium/windsurf/mcp_config.json",
            ),
            (
                Client::VsCode,
                Scope::User,
                &linux,
                "/xdg/Code/User/mcp.json",
            ),
            (
                Client::VsCode,
                Scope::User,
                &mac,
                "/h/Library/Application Support/Code/User/mcp.json",
            ),
            (
                Client::VsCode,
                Scope::Project,
                &linux,
                "/p/.vscode/mcp.json",
            ),
            (Client::Codex, Scope::User, &linux, "/h/.codex/config.toml"),
            (
                Client::Codex,
                Scope::Project,
                &linux,
                "/p/.codex/config.toml",
            ),
            (
                Client::Gemini,
                Scope::User,
                &linux,
                "/h/.gemini/settings.json",
            ),
            (
                Client::Gemini,
                Scope::Project,
                &linux,
                "/p/.gemini/settings.json",
            ),
        ];
        for (client, scope, host, want) in cases {
            assert!(client.has_scope(*scope), "{client:?} {scope:?}");
            assert_eq!(client.path(*scope, host), Path::new(want), "{client:?}");
        }
        let mut set = host(Platform::MacOs);
        set.codex_home = Some("/c".into());
        set.vscode_appdata = Some("/v".into());
        assert_eq!(
            Client::Codex.path(Scope::User, &set),
            Path::new("/c/config.toml")
        );
        assert_eq!(
            Client::VsCode.path(Scope::User, &set),
            Path::new("/v/Code/User/mcp.json")
        );
        assert!(!Client::ClaudeDesktop.has_scope(Scope::Project));
        assert!(!Client::Windsurf.has_scope(Scope::Project));
    }

    #[test]
    fn entry_shapes() {
        let args = vec!["mcp".to_owned()];
        assert_eq!(
            Client::ClaudeCode.entry("/b", &args),
            json!({"type": "stdio", "command": "/b", "args": ["mcp"], "env": {}})
        );
        assert_eq!(
            Client::VsCode.entry("/b", &args),
            json!({"type": "stdio", "command": "/b", "args": ["mcp"]})
        );
        for client in [
            Client::ClaudeDesktop,
            Client::Cursor,
            Client::Windsurf,
            Client::Codex,
            Client::Gemini,
        ] {
            assert_eq!(
                client.entry("/b", &args),
                json!({"command": "/b", "args": ["mcp"]})
            );
        }
        assert_eq!(Client::VsCode.format().servers_key(), "servers");
        assert_eq!(Client::Codex.format().servers_key(), "mcp_servers");
    }
}
