//! Tests of `worker.env` reading and writing (§3), through the public API of this module.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tempfile::TempDir;

use super::*;
use crate::domain::{Runtime, WalletAddress, WorkerId, WorkerToken};
use crate::ops::{ErrorCode, Problem};

const WALLET: &str = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed";

struct Fx {
    _tmp: TempDir,
    base: PathBuf,
    config: PathBuf,
    allowed: AllowedDirs,
}

impl Fx {
    fn new() -> Self {
        let tmp = TempDir::new().unwrap();
        let base = tmp.path().canonicalize().unwrap();
        let config = base.join("config");
        let cwd = base.join("cwd");
        fs::create_dir_all(&cwd).unwrap();
        let allowed = AllowedDirs::new(&config, &cwd, []);
        Self {
            _tmp: tmp,
            base,
            config,
            allowed,
        }
    }

    fn env_path(&self) -> PathBuf {
        self.config.join("worker.env")
    }
}

fn full_env() -> WorkerEnv {
    WorkerEnv {
        worker_id: Some(WorkerId::parse("gpu-box-1").unwrap()),
        wallet: Some(WalletAddress::parse(WALLET).unwrap()),
        runtime: Some(Runtime::Ollama),
        models: vec!["llama3.2:3b".into(), "qwen2.5:7b".into()],
        ollama_model: Some("llama3.2:3b".into()),
        ollama_url: Some("http://127.0.0.1:11434".parse().unwrap()),
        vllm_url: Some("http://10.0.0.2:8000/v1".parse().unwrap()),
        orchestrator_url: Some("https://orch.example".parse().unwrap()),
        token: Some(WorkerToken::generate()),
        extra: vec![
            ("CUDA_VISIBLE_DEVICES".into(), "0,1".into()),
            ("GREETING".into(), "hello world".into()),
            ("QUOTED".into(), "it's \"x\" $HOME \\ `y`".into()),
            ("EMPTY".into(), String::new()),
        ],
    }
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn dir_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn secret(env: &WorkerEnv) -> String {
    env.token.as_ref().unwrap().expose_secret().to_owned()
}

#[test]
fn mode_is_0600_after_every_write() {
    let fx = Fx::new();
    let path = fx.env_path();
    let env = full_env();
    let first = env.write(&path, &fx.allowed).unwrap();
    assert!(!first.replaced);
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(mode_of(&fx.config), 0o700, "created config dir is private");

    let second = env.write(&path, &fx.allowed).unwrap();
    assert!(second.replaced);
    assert_eq!(mode_of(&path), 0o600);

    fs::set_permissions(&path, fs::Permissions::from_mode(0o666)).unwrap();
    env.write(&path, &fx.allowed).unwrap();
    assert_eq!(mode_of(&path), 0o600);

    // A pre-existing loose file written by someone else.
    let other = fx.base.join("cwd/worker.env");
    fs::write(&other, "OLD=1\n").unwrap();
    fs::set_permissions(&other, fs::Permissions::from_mode(0o644)).unwrap();
    env.write(Path::new("worker.env"), &fx.allowed).unwrap();
    assert_eq!(mode_of(&other), 0o600);
    assert_eq!(dir_names(&fx.config), ["worker.env"]);
}

#[test]
fn write_outcome_lists_keys_and_fingerprint_not_token() {
    let fx = Fx::new();
    let env = full_env();
    let out = env.write(&fx.env_path(), &fx.allowed).unwrap();
    assert_eq!(out.path, fx.env_path());
    assert_eq!(&out.keys[..9], KNOWN_KEYS);
    assert_eq!(
        &out.keys[9..],
        ["CUDA_VISIBLE_DEVICES", "GREETING", "QUOTED", "EMPTY"]
    );
    assert_eq!(
        out.token_fingerprint.as_ref(),
        Some(&env.token.as_ref().unwrap().fingerprint())
    );
    assert!(!format!("{out:?}").contains(&secret(&env)));
}

#[test]
fn symlink_target_refused_and_link_target_untouched() {
    let fx = Fx::new();
    fs::create_dir_all(&fx.config).unwrap();
    let victim = fx.base.join("victim");
    fs::write(&victim, "precious\n").unwrap();
    symlink(&victim, fx.env_path()).unwrap();
    let err = full_env().write(&fx.env_path(), &fx.allowed).unwrap_err();
    assert!(matches!(err, EnvFileError::Symlink { .. }), "{err:?}");
    assert_eq!(Problem::from(err).code, ErrorCode::EnvPathSymlink);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious\n");
    assert_eq!(dir_names(&fx.config), ["worker.env"]);
    assert!(
        fs::symlink_metadata(fx.env_path())
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[test]
fn path_through_symlinked_directory_refused() {
    let fx = Fx::new();
    let outside = fx.base.join("outside");
    fs::create_dir_all(&outside).unwrap();
    fs::create_dir_all(&fx.config).unwrap();
    symlink(&outside, fx.config.join("sub")).unwrap();
    let err = full_env()
        .write(&fx.config.join("sub/worker.env"), &fx.allowed)
        .unwrap_err();
    assert!(matches!(err, EnvFileError::Symlink { .. }), "{err:?}");
    assert!(dir_names(&outside).is_empty());
}

#[test]
fn interrupted_write_leaves_old_file_and_no_temp() {
    let fx = Fx::new();
    let path = fx.env_path();
    let old = full_env();
    old.write(&path, &fx.allowed).unwrap();
    let before = fs::read(&path).unwrap();

    let mut new = full_env();
    new.worker_id = Some(WorkerId::parse("another").unwrap());
    let prepared = atomic::prepare(&path, new.render().as_bytes(), ENV_FILE_MODE).unwrap();
    assert_eq!(
        dir_names(&fx.config).len(),
        2,
        "temp file sits next to the target"
    );
    drop(prepared); // crash before rename

    assert_eq!(fs::read(&path).unwrap(), before);
    assert_eq!(dir_names(&fx.config), ["worker.env"]);
    let read = WorkerEnv::read(&path).unwrap();
    assert_eq!(read.worker_id.unwrap().as_str(), "gpu-box-1");
}

#[test]
fn rewrite_keeps_token_and_unknown_keys_in_order() {
    let fx = Fx::new();
    let path = fx.env_path();
    fs::create_dir_all(&fx.config).unwrap();
    let token = WorkerToken::generate();
    fs::write(
        &path,
        format!(
            "# hand written\nZED=last\nexport BASIS_WORKER_ID=old-name\nALPHA='a b'\n\
             BASIS_WORKER_TOKEN={}\nMIDDLE=m\n",
            token.expose_secret()
        ),
    )
    .unwrap();

    let mut env = WorkerEnv::read(&path).unwrap();
    env.merge(WorkerEnv {
        worker_id: Some(WorkerId::parse("new-name").unwrap()),
        runtime: Some(Runtime::Echo),
        extra: vec![
            ("ALPHA".into(), "changed".into()),
            ("NEW".into(), "n".into()),
        ],
        ..WorkerEnv::default()
    });
    assert!(!env.ensure_token(), "an existing token is kept");
    env.write(&path, &fx.allowed).unwrap();

    let back = WorkerEnv::read(&path).unwrap();
    assert!(back.token.as_ref().unwrap().ct_eq(&token));
    assert_eq!(back.worker_id.as_ref().unwrap().as_str(), "new-name");
    assert_eq!(back.runtime, Some(Runtime::Echo));
    let extra: Vec<(&str, &str)> = back
        .extra
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        extra,
        [
            ("ZED", "last"),
            ("ALPHA", "changed"),
            ("MIDDLE", "m"),
            ("NEW", "n")
        ]
    );
    let text = fs::read_to_string(&path).unwrap();
    assert!(!text.contains("hand written"), "comments are not kept");
    assert!(!text.contains("export"));

    // A new token replaces the old one only when given.
    let mut again = back.clone();
    let fresh = WorkerToken::generate();
    again.merge(WorkerEnv {
        token: Some(fresh.clone()),
        ..WorkerEnv::default()
    });
    assert!(again.token.unwrap().ct_eq(&fresh));
}

#[test]
fn ensure_token_generates_when_absent() {
    let mut env = WorkerEnv::default();
    assert!(env.ensure_token());
    assert!(env.token.is_some());
}

#[test]
fn dot_dot_and_outside_refused() {
    let fx = Fx::new();
    let env = full_env();
    for p in [
        PathBuf::from("../worker.env"),
        fx.config.join("../outside/worker.env"),
    ] {
        let err = env.write(&p, &fx.allowed).unwrap_err();
        assert!(
            matches!(err, EnvFileError::ParentComponent { .. }),
            "{err:?}"
        );
        assert_eq!(Problem::from(err).code, ErrorCode::EnvPathNotAllowed);
    }
    let outside = fx.base.join("outside/worker.env");
    let err = env.write(&outside, &fx.allowed).unwrap_err();
    assert!(matches!(err, EnvFileError::NotAllowed { .. }), "{err:?}");
    let problem = Problem::from(err);
    assert_eq!(problem.code, ErrorCode::EnvPathNotAllowed);
    assert!(problem.fix.unwrap().contains("allowed_env_dirs"));
    assert!(!outside.exists());
    assert!(!fx.base.join("outside").exists());
}

#[test]
fn round_trips_through_parse() {
    let env = full_env();
    let text = env.render();
    let back = WorkerEnv::parse(&text).unwrap();
    assert_eq!(back.render(), text);
    assert!(
        back.token
            .as_ref()
            .unwrap()
            .ct_eq(env.token.as_ref().unwrap())
    );
    assert_eq!(back.extra, env.extra);
    assert_eq!(back.models, env.models);
    assert_eq!(back.vllm_url, env.vllm_url);
    // Plain KEY=value lines for the known keys: no quotes, no export.
    assert!(text.contains("\nBASIS_WORKER_WALLET=0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed\n"));
    assert!(text.contains("\nOLLAMA_URL=http://127.0.0.1:11434\n"));
    assert!(text.contains("\nBASIS_WORKER_MODELS=llama3.2:3b,qwen2.5:7b\n"));
    assert!(
        text.contains("\nGREETING=hello world\n"),
        "inner spaces need no quotes"
    );
    assert!(text.contains("\nEMPTY=\n"));
    assert!(
        text.contains(r#"QUOTED="it's \"x\" \$HOME \\ \`y\`""#),
        "{text}"
    );
    assert!(text.starts_with("# "));
    assert!(text.contains("0600"));
    // The default (empty) env renders to the header only and parses back empty.
    let empty = WorkerEnv::parse(&WorkerEnv::default().render()).unwrap();
    assert!(empty.keys().is_empty());
}

#[test]
fn parse_accepts_dotenv_forms() {
    let token = WorkerToken::generate();
    let text = format!(
        "\u{feff}# comment\r\n\r\n  export BASIS_WORKER_WALLET={}\r\nBASIS_WORKER_RUNTIME=\"vllm\" # trailing\n\
         BASIS_WORKER_TOKEN='{}'\nBASIS_WORKER_MODELS= a , b,,\nBASIS_OLLAMA_MODEL=\nX = \"q\\\"uote\"\n",
        WALLET.to_lowercase(),
        token.expose_secret()
    );
    let env = WorkerEnv::parse(&text).unwrap();
    assert_eq!(env.wallet.unwrap().checksummed(), WALLET);
    assert_eq!(env.runtime, Some(Runtime::Vllm));
    assert!(env.token.as_ref().unwrap().ct_eq(&token));
    assert_eq!(env.models, ["a", "b"]);
    assert_eq!(env.ollama_model, None);
    assert_eq!(env.extra, [("X".to_owned(), "q\"uote".to_owned())]);
    assert_eq!(
        env.effective_ollama_url().as_str(),
        "http://127.0.0.1:11434/"
    );
    assert_eq!(env.effective_vllm_url().as_str(), "http://127.0.0.1:8000/");
}

fn parse_err(text: &str) -> (usize, String) {
    match WorkerEnv::parse(text).unwrap_err() {
        EnvFileError::Parse { line, reason, .. } => (line, reason),
        other => panic!("expected a parse error, got {other:?}"),
    }
}

#[test]
fn parse_errors_carry_line_and_never_the_value() {
    let cases = [
        ("A=1\n\nnot a pair sekrit-value\n", 3, "KEY=value"),
        ("# c\n1BAD=sekrit-value\n", 2, "key"),
        ("A=\"sekrit-value\n", 1, "unterminated"),
        ("A='sekrit-value\n", 1, "unterminated"),
        ("A='x' sekrit-value\n", 1, "after the closing quote"),
        ("A=1\nBASIS_WORKER_ID=Sekrit-Value\n", 2, "worker_id"),
        ("\n\n\nBASIS_WORKER_RUNTIME=sekrit-value\n", 4, "echo"),
        ("OLLAMA_URL=ftp://sekrit-value\n", 1, "http"),
        ("BASIS_ORCHESTRATOR_URL=sekrit-value\n", 1, "URL"),
        ("A=1\nA=sekrit-value\n", 2, "line 1"),
    ];
    for (text, line, needle) in cases {
        let (got, reason) = parse_err(text);
        assert_eq!(got, line, "{text:?}: {reason}");
        assert!(reason.contains(needle), "{text:?}: {reason}");
        assert!(
            !reason.to_lowercase().contains("sekrit"),
            "{text:?}: {reason}"
        );
    }
}

#[test]
fn wallet_errors_give_the_rule_and_the_private_key_message() {
    let key = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";
    let (line, reason) = parse_err(&format!("A=1\nBASIS_WORKER_WALLET=0x{key}\n"));
    assert_eq!(line, 2);
    assert!(reason.contains("PRIVATE KEY"), "{reason}");
    assert!(!reason.contains(key));

    let (line, reason) = parse_err(&format!("\n\n\nBASIS_WORKER_WALLET={key}\n"));
    assert_eq!(line, 4);
    assert!(reason.contains("PRIVATE KEY"));

    let flipped = WALLET.replacen('a', "A", 1);
    let (_, reason) = parse_err(&format!("BASIS_WORKER_WALLET={flipped}\n"));
    assert!(reason.contains("EIP-55"), "{reason}");
    assert!(!reason.to_lowercase().contains(&WALLET[2..].to_lowercase()));

    let (_, reason) = parse_err("BASIS_WORKER_WALLET=0x1234\n");
    assert!(reason.contains("40 hex"), "{reason}");
}

#[test]
fn token_never_shown_in_debug_masked_or_errors() {
    let env = full_env();
    let token = secret(&env);
    let fingerprint = env.token.as_ref().unwrap().fingerprint();
    for shown in [format!("{env:?}"), format!("{env:#?}"), env.masked()] {
        assert!(!shown.contains(&token), "{shown}");
        assert!(shown.contains(fingerprint.as_str()), "{shown}");
    }
    assert!(env.masked().contains(&format!(
        "BASIS_WORKER_TOKEN=<redacted, fingerprint {fingerprint}>"
    )));
    // Unknown values may be secrets too: Debug and masked show their keys only.
    assert!(!format!("{env:?}").contains("hello world"));
    assert!(!env.masked().contains("hello world"));
    assert!(env.masked().contains("GREETING=<not shown>"));

    // Malformed tokens (one char short, uppercase, quoted badly) are never echoed.
    let bad_tokens = [
        token[..63].to_owned(),
        token.to_uppercase(),
        format!("{token}0"),
    ];
    for bad in &bad_tokens {
        let text = format!("A=1\nBASIS_WORKER_TOKEN={bad}\n");
        let err = WorkerEnv::parse(&text).unwrap_err();
        let shown = [
            err.to_string(),
            format!("{err:?}"),
            serde_json::to_string(&Problem::from(err)).unwrap(),
        ];
        for s in &shown {
            assert!(!s.contains(&bad[..32]), "{s}");
        }
        assert!(shown[0].contains("line 2"), "{}", shown[0]);
        assert!(shown[2].contains("line 2"), "{}", shown[2]);
    }
    let err = WorkerEnv::parse(&format!("BASIS_WORKER_TOKEN=\"{token}\n")).unwrap_err();
    assert!(!format!("{err} {err:?}").contains(&token));
}

#[test]
fn invalid_values_refused_at_write_and_file_untouched() {
    let fx = Fx::new();
    let path = fx.env_path();
    full_env().write(&path, &fx.allowed).unwrap();
    let before = fs::read(&path).unwrap();
    let bad_envs = [
        WorkerEnv {
            ollama_model: Some("llama\nBASIS_WORKER_TOKEN=x".into()),
            ..WorkerEnv::default()
        },
        WorkerEnv {
            ollama_model: Some("#hidden".into()),
            ..WorkerEnv::default()
        },
        WorkerEnv {
            ollama_model: Some(" padded".into()),
            ..WorkerEnv::default()
        },
        WorkerEnv {
            models: vec!["a\"b".into()],
            ..WorkerEnv::default()
        },
        WorkerEnv {
            models: vec!["a,b".into()],
            ..WorkerEnv::default()
        },
        WorkerEnv {
            extra: vec![("BAD KEY".into(), "v".into())],
            ..WorkerEnv::default()
        },
        WorkerEnv {
            extra: vec![("BASIS_WORKER_TOKEN".into(), "v".into())],
            ..WorkerEnv::default()
        },
        WorkerEnv {
            extra: vec![("K".into(), "two\nlines".into())],
            ..WorkerEnv::default()
        },
    ];
    for env in bad_envs {
        let err = env.write(&path, &fx.allowed).unwrap_err();
        assert!(matches!(err, EnvFileError::InvalidValue { .. }), "{err:?}");
        assert_eq!(Problem::from(err).code, ErrorCode::InvalidArgument);
    }
    assert_eq!(fs::read(&path).unwrap(), before);
}

#[test]
fn read_reports_missing_file_and_path_in_parse_errors() {
    let fx = Fx::new();
    let path = fx.env_path();
    assert!(matches!(
        WorkerEnv::read(&path),
        Err(EnvFileError::Missing { .. })
    ));
    assert!(WorkerEnv::read_optional(&path).unwrap().is_none());
    fs::create_dir_all(&fx.config).unwrap();
    fs::write(&path, b"A=1\nB=\xff\n").unwrap();
    let err = WorkerEnv::read(&path).unwrap_err();
    assert!(
        matches!(err, EnvFileError::Parse { line: 2, .. }),
        "{err:?}"
    );
    fs::write(&path, "A=1\n\nbroken\n").unwrap();
    let err = WorkerEnv::read(&path).unwrap_err();
    assert!(
        err.to_string()
            .contains(&format!("{} line 3", path.display())),
        "{err}"
    );
}

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn reading_a_loose_file_warns_without_the_token() {
    let fx = Fx::new();
    let path = fx.env_path();
    let env = full_env();
    env.write(&path, &fx.allowed).unwrap();
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();

    tracing::subscriber::with_default(subscriber, || {
        WorkerEnv::read(&path).unwrap();
        assert!(
            captured.0.lock().unwrap().is_empty(),
            "0600 needs no warning"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        WorkerEnv::read(&path).unwrap();
    });
    let log = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(log.contains("WARN"), "{log}");
    assert!(log.contains("644"), "{log}");
    assert!(!log.contains(&secret(&env)));
}
