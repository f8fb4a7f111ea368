//! Tests of `basis.toml` loading: defaults, precedence flag > env > file > default, unknown
//! keys and invalid values naming their source.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::settings::*;
use super::{ConfigError, Dirs, Origin};

fn dirs(tmp: &TempDir) -> Dirs {
    Dirs {
        config_dir: tmp.path().join("config"),
        state_dir: tmp.path().join("state"),
    }
}

fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
    let map: HashMap<String, String> = pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |k| map.get(k).cloned()
}

fn write_toml(d: &Dirs, text: &str) {
    std::fs::create_dir_all(&d.config_dir).unwrap();
    std::fs::write(d.settings_file(), text).unwrap();
}

#[test]
fn missing_file_gives_defaults() {
    let tmp = TempDir::new().unwrap();
    let d = dirs(&tmp);
    let s = Settings::load(&d, &Overrides::default(), env(&[])).unwrap();
    assert_eq!(s.orchestrator_url.as_str(), "http://127.0.0.1:8787/");
    assert_eq!(s.mcp.http_bind.to_string(), DEFAULT_MCP_HTTP_BIND);
    assert!(!s.mcp.read_only);
    assert_eq!(s.dirs, d);
    assert!(s.allowed_env_dirs.is_empty());
    assert_eq!(s.origins.orchestrator_url, Origin::Default);
}

#[test]
fn precedence_flag_env_file_default() {
    let tmp = TempDir::new().unwrap();
    let d = dirs(&tmp);
    write_toml(
        &d,
        "orchestrator_url = \"https://file.example\"\nstate_dir = \"st\"\n\
         allowed_env_dirs = [\"/etc/basis\", \"sub\"]\n\n[mcp]\nhttp_bind = \"127.0.0.1:1\"\nread_only = true\n",
    );
    let file_env = env(&[]);
    let s = Settings::load(&d, &Overrides::default(), file_env).unwrap();
    assert_eq!(s.orchestrator_url.as_str(), "https://file.example/");
    assert!(matches!(
        s.origins.orchestrator_url,
        Origin::File { line: Some(1), .. }
    ));
    assert_eq!(s.dirs.state_dir, d.config_dir.join("st"));
    assert_eq!(s.mcp.http_bind.port(), 1);
    assert!(s.mcp.read_only);
    assert!(matches!(
        s.origins.mcp_read_only,
        Origin::File { line: Some(7), .. }
    ));
    assert_eq!(
        s.allowed_env_dirs,
        [PathBuf::from("/etc/basis"), d.config_dir.join("sub")]
    );

    let vars = [
        (ENV_ORCHESTRATOR_URL, "http://env.example:9"),
        (ENV_MCP_HTTP_BIND, "127.0.0.1:2"),
        (ENV_MCP_READ_ONLY, "no"),
        (ENV_STATE_DIR, "/env/state"),
    ];
    let s = Settings::load(&d, &Overrides::default(), env(&vars)).unwrap();
    assert_eq!(s.orchestrator_url.as_str(), "http://env.example:9/");
    assert_eq!(
        s.origins.orchestrator_url,
        Origin::Env(ENV_ORCHESTRATOR_URL)
    );
    assert_eq!(s.mcp.http_bind.port(), 2);
    assert!(!s.mcp.read_only);
    assert_eq!(s.dirs.state_dir, Path::new("/env/state"));
    assert_eq!(s.dirs.config_dir, d.config_dir);

    let flags = Overrides {
        orchestrator_url: Some("https://flag.example".into()),
        state_dir: Some("/flag/state".into()),
        mcp_http_bind: Some("[::1]:3".into()),
        mcp_read_only: Some(true),
    };
    let s = Settings::load(&d, &flags, env(&vars)).unwrap();
    assert_eq!(s.orchestrator_url.as_str(), "https://flag.example/");
    assert_eq!(
        s.origins.orchestrator_url,
        Origin::Flag("--orchestrator-url")
    );
    assert_eq!(s.mcp.http_bind.to_string(), "[::1]:3");
    assert!(s.mcp.read_only);
    assert_eq!(s.dirs.state_dir, Path::new("/flag/state"));
}

#[test]
fn unknown_keys_rejected_with_name_and_line() {
    let tmp = TempDir::new().unwrap();
    let d = dirs(&tmp);
    for (text, key, line) in [
        (
            "orchestrator_url = \"http://a\"\norchestrator = \"x\"\n",
            "orchestrator",
            2,
        ),
        ("[mcp]\nread_only = true\nbind = \"x\"\n", "bind", 3),
    ] {
        write_toml(&d, text);
        let err = Settings::load(&d, &Overrides::default(), env(&[])).unwrap_err();
        let ConfigError::Syntax {
            line: got, message, ..
        } = &err
        else {
            panic!("expected a syntax error, got {err:?}");
        };
        assert_eq!(*got, Some(line), "{message}");
        assert!(message.contains(key), "{message}");
        assert!(err.to_string().contains(&format!("line {line}")));
    }
}

#[test]
fn bad_values_name_their_source() {
    let tmp = TempDir::new().unwrap();
    let d = dirs(&tmp);
    write_toml(&d, "\norchestrator_url = \"ftp://x\"\n");
    let err = Settings::load(&d, &Overrides::default(), env(&[])).unwrap_err();
    assert!(
        matches!(
            &err,
            ConfigError::Invalid {
                key: "orchestrator_url",
                origin: Origin::File { line: Some(2), .. },
                ..
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("line 2"));

    let err = Settings::load(
        &d,
        &Overrides::default(),
        env(&[(ENV_ORCHESTRATOR_URL, "not a url")]),
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("environment variable BASIS_ORCHESTRATOR_URL")
    );

    write_toml(&d, "");
    let flags = Overrides {
        mcp_http_bind: Some("localhost".into()),
        ..Overrides::default()
    };
    let err = Settings::load(&d, &flags, env(&[])).unwrap_err();
    assert!(err.to_string().contains("flag --http-bind"), "{err}");

    let err = Settings::load(
        &d,
        &Overrides::default(),
        env(&[(ENV_MCP_READ_ONLY, "maybe")]),
    )
    .unwrap_err();
    assert!(err.to_string().contains(ENV_MCP_READ_ONLY));

    let err = Settings::load(
        &d,
        &Overrides {
            orchestrator_url: Some("https://user:hunter2@h.example".into()),
            ..Overrides::default()
        },
        env(&[]),
    )
    .unwrap_err();
    assert!(!err.to_string().contains("hunter2"));
}

#[test]
fn wrong_type_in_file_is_a_syntax_error_with_line() {
    let tmp = TempDir::new().unwrap();
    let d = dirs(&tmp);
    write_toml(&d, "[mcp]\n\nread_only = \"yes\"\n");
    let err = Settings::load(&d, &Overrides::default(), env(&[])).unwrap_err();
    assert!(
        matches!(err, ConfigError::Syntax { line: Some(3), .. }),
        "{err:?}"
    );
}

#[test]
fn url_rules() {
    assert!(parse_http_url("http://127.0.0.1:8787").is_ok());
    assert!(parse_http_url("https://orch.example/api").is_ok());
    for bad in [
        "",
        "127.0.0.1:8787",
        "ws://x",
        "file:///etc/passwd",
        "http://u:p@x",
    ] {
        assert!(parse_http_url(bad).is_err(), "{bad}");
    }
}
