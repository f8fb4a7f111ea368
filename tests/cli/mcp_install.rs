//! `basis mcp install` as a user runs it, for every client, with `HOME` and the current
//! directory in temp dirs: the documented file and entry shape, merging beside other servers,
//! conflicts and `--force`, the no-op, `--dry-run`, malformed files, unsupported scopes.

use std::error::Error;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{Value, json};

type Result<T = ()> = std::result::Result<T, Box<dyn Error>>;

/// A temp `HOME` and a temp project directory (the current directory).
struct Env {
    dir: tempfile::TempDir,
}

impl Env {
    fn new() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        fs::create_dir(dir.path().join("home"))?;
        fs::create_dir(dir.path().join("project"))?;
        Ok(Self { dir })
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn project(&self) -> PathBuf {
        self.dir.path().join("project")
    }

    fn install(&self, args: &[&str]) -> Result<Output> {
        Ok(Command::new(env!("CARGO_BIN_EXE_basis"))
            .args(["mcp", "install"])
            .args(args)
            .env("HOME", self.home())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("CODEX_HOME")
            .env_remove("VSCODE_APPDATA")
            .env_remove("BASIS_HOME")
            .env_remove("BASIS_CONFIG")
            .current_dir(self.project())
            .stdin(Stdio::null())
            .output()?)
    }

    /// Runs with `--json`; the exit status and the printed JSON.
    fn json(&self, args: &[&str]) -> Result<(i32, Value)> {
        let out = self.install(&[args, &["--json"]].concat())?;
        let value = serde_json::from_slice(&out.stdout).map_err(|e| {
            format!(
                "stdout is not JSON ({e}): {}\nstderr: {}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        })?;
        Ok((out.status.code().ok_or("killed")?, value))
    }

    /// The config file of `client` in `scope`, where its documentation puts it.
    fn path(&self, client: &Client, scope: &str) -> PathBuf {
        if scope == "project" {
            self.project().join(client.project.unwrap_or_default())
        } else {
            self.home().join(client.user)
        }
    }
}

/// What each client's documentation says (see src/ops/mcp_install/clients.rs for the sources).
struct Client {
    name: &'static str,
    /// Relative to `HOME` (Linux layout; `XDG_CONFIG_HOME` unset).
    user: &'static str,
    /// Relative to the project, when the client has a project scope.
    project: Option<&'static str>,
    servers_key: &'static str,
    toml: bool,
    typed: bool,
    env: bool,
}

const CLIENTS: &[Client] = &[
    Client {
        name: "claude-code",
        user: ".claude.json",
        project: Some(".mcp.json"),
        servers_key: "mcpServers",
        toml: false,
        typed: true,
        env: true,
    },
    Client {
        name: "claude-desktop",
        user: if cfg!(target_os = "macos") {
            "Library/Application Support/Claude/claude_desktop_config.json"
        } else {
            ".config/Claude/claude_desktop_config.json"
        },
        project: None,
        servers_key: "mcpServers",
        toml: false,
        typed: false,
        env: false,
    },
    Client {
        name: "cursor",
        user: ".cursor/mcp.json",
        project: Some(".cursor/mcp.json"),
        servers_key: "mcpServers",
        toml: false,
        typed: false,
        env: false,
    },
    Client {
        name: "windsurf",
        user: ".codeium/windsurf/mcp_config.json",
        project: None,
        servers_key: "mcpServers",
        toml: false,
        typed: false,
        env: false,
    },
    Client {
        name: "vscode",
        user: if cfg!(target_os = "macos") {
            "Library/Application Support/Code/User/mcp.json"
        } else {
            ".config/Code/User/mcp.json"
        },
        project: Some(".vscode/mcp.json"),
        servers_key: "servers",
        toml: false,
        typed: true,
        env: false,
    },
    Client {
        name: "codex",
        user: ".codex/config.toml",
        project: Some(".codex/config.toml"),
        servers_key: "mcp_servers",
        toml: true,
        typed: false,
        env: false,
    },
    Client {
        name: "gemini",
        user: ".gemini/settings.json",
        project: Some(".gemini/settings.json"),
        servers_key: "mcpServers",
        toml: false,
        typed: false,
        env: false,
    },
];

impl Client {
    fn scopes(&self) -> Vec<&'static str> {
        let mut scopes = vec!["user"];
        if self.project.is_some() {
            scopes.push("project");
        }
        scopes
    }

    /// The entry this binary should write.
    fn want(&self, args: &[&str]) -> Result<Value> {
        let exe = fs::canonicalize(env!("CARGO_BIN_EXE_basis"))?;
        let mut entry = json!({"command": exe.to_str().ok_or("non-UTF-8 path")?, "args": args});
        if self.typed {
            entry["type"] = json!("stdio");
        }
        if self.env {
            entry["env"] = json!({});
        }
        Ok(entry)
    }

    /// The whole file, parsed (TOML as JSON).
    fn parse(&self, path: &Path) -> Result<Value> {
        let text = fs::read_to_string(path)?;
        Ok(if self.toml {
            serde_json::to_value(toml::from_str::<toml::Table>(&text)?)?
        } else {
            serde_json::from_str(&text)?
        })
    }

    /// The basis entry in the file.
    fn entry(&self, path: &Path) -> Result<Value> {
        Ok(self.parse(path)?[self.servers_key]["basis"].clone())
    }

    /// A file with another server and another setting (and, in TOML, comments).
    fn existing(&self) -> String {
        if self.toml {
            "# codex settings, kept by hand\nmodel = \"o3\" # trailing comment\n\n[mcp_servers.docs]\ncommand = \"docs-server\"\nargs = [\"--port\", \"1\"]\n".to_owned()
        } else {
            json!({"theme": "dark", self.servers_key: {"other": {"command": "other-server", "args": ["x"]}}})
                .to_string()
        }
    }

    /// A file whose basis entry differs from this binary's.
    fn stale(&self) -> String {
        if self.toml {
            "[mcp_servers.basis]\ncommand = \"basis\"\nargs = [\"mcp\"]\n".to_owned()
        } else {
            json!({self.servers_key: {"basis": {"command": "basis", "args": ["mcp"]}}}).to_string()
        }
    }

    fn malformed(&self) -> &'static str {
        if self.toml {
            "model = \"o3\"\n[mcp_servers.docs\ncommand = \"d\"\n"
        } else {
            "{\n  // a comment\n  \"mcpServers\": {},\n}\n"
        }
    }
}

fn write(path: &Path, text: &str) -> Result {
    fs::create_dir_all(path.parent().ok_or("no parent")?)?;
    fs::write(path, text)?;
    Ok(())
}

#[test]
fn a_fresh_install_writes_each_clients_documented_file_and_shape() -> Result {
    for client in CLIENTS {
        for scope in client.scopes() {
            let env = Env::new()?;
            let path = env.path(client, scope);
            let (code, out) = env.json(&["--client", client.name, "--scope", scope])?;
            assert_eq!(code, 0, "{} {scope}: {out}", client.name);
            assert_eq!(out["action"], "created", "{out}");
            assert_eq!(out["path"], path.display().to_string(), "{out}");
            assert_eq!(out["key"], format!("{}.basis", client.servers_key));
            let entry = client.entry(&path)?;
            assert_eq!(entry, client.want(&["mcp"])?, "{}: {entry}", client.name);
            assert_eq!(out["entry"], entry);
            let command = Path::new(entry["command"].as_str().ok_or("no command")?);
            assert!(command.is_absolute() && command.is_file(), "{command:?}");
            // The file holds only that entry.
            let whole = client.parse(&path)?;
            assert_eq!(whole.as_object().map(serde_json::Map::len), Some(1));
        }
    }
    Ok(())
}

#[test]
fn read_only_adds_the_flag() -> Result {
    let env = Env::new()?;
    let client = &CLIENTS[0];
    let (code, out) = env.json(&["--client", client.name, "--read-only"])?;
    assert_eq!(code, 0, "{out}");
    assert_eq!(
        client.entry(&env.path(client, "user"))?,
        client.want(&["mcp", "--read-only"])?
    );
    Ok(())
}

#[test]
fn merging_keeps_other_servers_settings_and_comments() -> Result {
    for client in CLIENTS {
        let env = Env::new()?;
        let path = env.path(client, "user");
        write(&path, &client.existing())?;
        let (code, out) = env.json(&["--client", client.name])?;
        assert_eq!(code, 0, "{}: {out}", client.name);
        assert_eq!(out["action"], "added", "{out}");
        let whole = client.parse(&path)?;
        let servers = &whole[client.servers_key];
        assert_eq!(servers["basis"], client.want(&["mcp"])?, "{whole}");
        if client.toml {
            assert_eq!(servers["docs"]["command"], "docs-server");
            assert_eq!(whole["model"], "o3");
            let text = fs::read_to_string(&path)?;
            assert!(text.starts_with(&client.existing()), "{text}");
        } else {
            assert_eq!(
                servers["other"],
                json!({"command": "other-server", "args": ["x"]})
            );
            assert_eq!(whole["theme"], "dark");
        }
    }
    Ok(())
}

#[test]
fn a_different_basis_entry_is_refused_unless_forced() -> Result {
    for client in CLIENTS {
        let env = Env::new()?;
        let path = env.path(client, "user");
        write(&path, &client.stale())?;
        let (code, out) = env.json(&["--client", client.name])?;
        assert_eq!(code, 3, "{}: {out}", client.name);
        assert_eq!(out["error"]["code"], "MCP_CONFIG_CONFLICT");
        assert!(
            out["error"]["fix"]
                .as_str()
                .unwrap_or("")
                .contains("--force"),
            "{out}"
        );
        assert_eq!(fs::read_to_string(&path)?, client.stale(), "left as it was");
        let (code, out) = env.json(&["--client", client.name, "--force"])?;
        assert_eq!(code, 0, "{out}");
        assert_eq!(out["action"], "replaced");
        assert_eq!(client.entry(&path)?, client.want(&["mcp"])?);
    }
    Ok(())
}

#[test]
fn an_identical_entry_is_a_no_op() -> Result {
    for client in CLIENTS {
        let env = Env::new()?;
        let path = env.path(client, "user");
        assert_eq!(env.json(&["--client", client.name])?.0, 0);
        let before = fs::read(&path)?;
        let inode = fs::metadata(&path)?.ino();
        let (code, out) = env.json(&["--client", client.name])?;
        assert_eq!(code, 0, "{out}");
        assert_eq!(out["action"], "unchanged", "{out}");
        assert!(out.get("mode").is_none(), "{out}");
        assert_eq!(fs::read(&path)?, before);
        assert_eq!(fs::metadata(&path)?.ino(), inode, "not even rewritten");
        let human = env.install(&["--client", client.name])?;
        let text = String::from_utf8(human.stdout)?;
        assert!(text.contains("already installed"), "{text}");
    }
    Ok(())
}

#[test]
fn dry_run_writes_nothing() -> Result {
    for client in CLIENTS {
        for scope in client.scopes() {
            let env = Env::new()?;
            let path = env.path(client, scope);
            let (code, out) =
                env.json(&["--client", client.name, "--scope", scope, "--dry-run"])?;
            assert_eq!(code, 0, "{out}");
            assert_eq!(out["dry_run"], true);
            assert_eq!(out["action"], "created");
            assert!(!path.exists(), "{}", path.display());
            let parent = path.parent().ok_or("no parent")?;
            assert!(
                parent == env.home() || parent == env.project() || !parent.exists(),
                "no directory is created either: {}",
                parent.display()
            );
        }
        let env = Env::new()?;
        let path = env.path(client, "user");
        write(&path, &client.existing())?;
        let out = env.install(&["--client", client.name, "--dry-run"])?;
        assert!(out.status.success());
        let text = String::from_utf8(out.stdout)?;
        assert!(text.starts_with("dry run: would add basis to"), "{text}");
        let exe = fs::canonicalize(env!("CARGO_BIN_EXE_basis"))?;
        assert!(
            text.contains(&*exe.to_string_lossy()),
            "the snippet: {text}"
        );
        assert_eq!(fs::read_to_string(&path)?, client.existing());
    }
    Ok(())
}

#[test]
fn a_malformed_file_is_refused_and_left_byte_identical() -> Result {
    for client in CLIENTS {
        let env = Env::new()?;
        let path = env.path(client, "user");
        write(&path, client.malformed())?;
        for force in [false, true] {
            let args: &[&str] = if force {
                &["--client", client.name, "--force"]
            } else {
                &["--client", client.name]
            };
            let (code, out) = env.json(args)?;
            assert_eq!(code, 2, "{}: {out}", client.name);
            assert_eq!(out["error"]["code"], "MCP_CONFIG_INVALID", "{out}");
            let message = out["error"]["message"].as_str().unwrap_or("");
            assert!(message.contains("line "), "{message}");
            let fix = out["error"]["fix"].as_str().unwrap_or("");
            assert!(fix.contains("basis"), "the fix shows the entry: {fix}");
            assert_eq!(fs::read_to_string(&path)?, client.malformed());
        }
    }
    Ok(())
}

#[test]
fn a_scope_the_client_does_not_have_is_refused() -> Result {
    for client in CLIENTS.iter().filter(|c| c.project.is_none()) {
        let env = Env::new()?;
        let (code, out) = env.json(&["--client", client.name, "--scope", "project"])?;
        assert_eq!(code, 2, "{out}");
        assert_eq!(out["error"]["code"], "INVALID_ARGUMENT");
        assert!(
            out["error"]["fix"]
                .as_str()
                .unwrap_or("")
                .contains("--scope user"),
            "{out}"
        );
        assert_eq!(fs::read_dir(env.project())?.count(), 0);
    }
    let env = Env::new()?;
    let out = env.install(&["--client", "cursor", "--scope", "local"])?;
    assert_eq!(out.status.code(), Some(2), "clap refuses an unknown scope");
    let out = env.install(&["--client", "notepad"])?;
    assert_eq!(out.status.code(), Some(2));
    Ok(())
}

#[test]
fn human_output_names_the_file_the_entry_and_the_next_step() -> Result {
    let env = Env::new()?;
    let out = env.install(&["--client", "claude-code"])?;
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout)?;
    let path = env.home().join(".claude.json");
    assert!(
        text.starts_with(&format!("created {} (mode 0600)", path.display())),
        "{text}"
    );
    assert!(text.contains("mcpServers.basis: {"), "{text}");
    assert!(text.contains("next: restart Claude Code, then `claude mcp list` shows basis"));
    Ok(())
}
