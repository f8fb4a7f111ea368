//! Unit tests of `install` on a temp-dir [`Host`]: what the CLI tests cannot set up cheaply
//! (a symlinked config, a kept mode, the macOS layout).

use std::os::unix::fs::{PermissionsExt, symlink};

use serde_json::json;
use tempfile::TempDir;

use super::*;

struct Temp {
    _dir: TempDir,
    host: Host,
}

fn temp(platform: Platform) -> Temp {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let cwd = dir.path().join("project");
    fs::create_dir_all(&home).unwrap();
    fs::create_dir_all(&cwd).unwrap();
    let exe = dir.path().join("basis");
    fs::write(&exe, b"").unwrap();
    Temp {
        host: Host {
            user_config_dir: home.join(".config"),
            codex_home: None,
            vscode_appdata: None,
            home,
            cwd,
            exe,
            platform,
        },
        _dir: dir,
    }
}

fn input(client: &str) -> Input {
    Input {
        client: client.to_owned(),
        ..Input::default()
    }
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_symlinked_config_is_written_through_to_its_file_and_stays_a_link() {
    let t = temp(Platform::Linux);
    let real = t.host.home.join("dotfiles-claude.json");
    fs::write(&real, r#"{"mcpServers": {"other": {"command": "o"}}}"#).unwrap();
    let link = t.host.home.join(".claude.json");
    symlink(&real, &link).unwrap();
    let out = install(&t.host, &input("claude-code")).unwrap();
    assert_eq!(out.action, Action::Added);
    assert_eq!(out.path, link.display().to_string());
    assert_eq!(
        out.resolved_path.as_deref(),
        Some(real.canonicalize().unwrap().to_str().unwrap())
    );
    assert!(atomic::is_symlink(&link).unwrap());
    let value: Value = serde_json::from_str(&fs::read_to_string(&real).unwrap()).unwrap();
    assert_eq!(value["mcpServers"]["other"], json!({"command": "o"}));
    assert_eq!(value["mcpServers"]["basis"]["args"], json!(["mcp"]));
}

#[test]
fn modes_new_files_private_projects_shared_existing_kept() {
    let t = temp(Platform::Linux);
    let out = install(&t.host, &input("gemini")).unwrap();
    assert_eq!(out.mode.as_deref(), Some("0600"));
    assert_eq!(mode_of(&t.host.home.join(".gemini/settings.json")), 0o600);
    assert_eq!(mode_of(&t.host.home.join(".gemini")), 0o700);

    let project = Input {
        scope: Some("project".to_owned()),
        ..input("gemini")
    };
    let out = install(&t.host, &project).unwrap();
    assert_eq!(out.mode.as_deref(), Some("0644"));
    assert_eq!(mode_of(&t.host.cwd.join(".gemini/settings.json")), 0o644);

    let cursor = t.host.home.join(".cursor/mcp.json");
    fs::create_dir_all(cursor.parent().unwrap()).unwrap();
    fs::write(&cursor, "{}").unwrap();
    fs::set_permissions(&cursor, fs::Permissions::from_mode(0o640)).unwrap();
    let out = install(&t.host, &input("cursor")).unwrap();
    assert_eq!(out.action, Action::Added);
    assert_eq!(out.mode.as_deref(), Some("0640"));
    assert_eq!(mode_of(&cursor), 0o640);
}

#[test]
fn read_only_and_dry_run_and_macos_paths() {
    let t = temp(Platform::MacOs);
    let out = install(
        &t.host,
        &Input {
            read_only: true,
            dry_run: true,
            ..input("claude-desktop")
        },
    )
    .unwrap();
    let want = t
        .host
        .home
        .join("Library/Application Support/Claude/claude_desktop_config.json");
    assert_eq!(out.path, want.display().to_string());
    assert_eq!(out.action, Action::Created);
    assert!(out.dry_run);
    assert_eq!(out.entry["args"], json!(["mcp", "--read-only"]));
    assert!(out.snippet.contains("--read-only"), "{}", out.snippet);
    assert!(!t.host.home.join("Library").exists());
}

#[test]
fn bad_names_and_scopes_are_refused_with_a_fix() {
    let t = temp(Platform::Linux);
    let err = install(&t.host, &input("notepad")).unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    assert!(err.fix.unwrap().contains("claude-code"));
    let err = install(
        &t.host,
        &Input {
            scope: Some("local".to_owned()),
            ..input("cursor")
        },
    )
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    let err = install(
        &t.host,
        &Input {
            scope: Some("project".to_owned()),
            ..input("windsurf")
        },
    )
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidArgument);
    assert!(err.fix.unwrap().contains("--scope user"));
}
